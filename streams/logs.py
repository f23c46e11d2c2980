"""Logging for every entry point: text (terminals, the default) or JSON lines (log shippers).

One place configures it: :func:`logging_config` returns a ``logging.config.dictConfig`` dict that
the CLI applies at start (:func:`configure_logging`) and the worker hands to Faust's Worker
(``faust.Worker(logging_config=...)``), because mode's Worker clears the root handlers and
re-runs dictConfig when it starts; with our dict its handler is ours, so Faust's and aiokafka's
records come out in the same format as leadflow's.

Both formats pass every record through :class:`RedactEmails`: anything email-shaped in the
message, the exception text or the stack is masked. Leads are named by lead id (``ld_...``);
this filter is the safety net for a message that quotes input, a library's error text, etc.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import threading
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal

import orjson

from streams.kafka_outage import KafkaOutageLogFilter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EMAIL_MASK = "<email>"

# Local part, @, a domain with at least one dot. Bounded repetitions keep matching linear-ish
# on hostile input; the "@" fast path skips the regex for almost every record.
_EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """``text`` with every email-shaped substring replaced by ``<email>``."""
    if "@" not in text:
        return text
    return _EMAIL.sub(EMAIL_MASK, text)


class RedactEmails(logging.Filter):
    """Masks email-shaped text in a record's message, exception and stack (never drops it).

    Installed on the handler, so it sees records of every logger (leadflow, Faust, aiokafka).
    The message is rendered once here (msg % args) and stored without args.
    """

    _exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: let logging report it
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO-8601, ms), level, logger, message, [exc], [stack],
    plus scalar ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in doc and not key.startswith("_"):
                if isinstance(value, str):
                    doc[key] = redact(value)
                elif isinstance(value, (int, float, bool)) or value is None:
                    doc[key] = value
        return orjson.dumps(doc, default=str).decode()


def logging_config(log_format: LogFormat = "text", level: int | str = logging.INFO) -> dict[str, Any]:
    """The dictConfig for ``log_format``: one stderr handler on the root logger, redacting."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        # Loggers created at import time (streams.*, aiokafka...) keep working.
        "disable_existing_loggers": False,
        # kafka_outage first: it keys on the message template, before redaction renders it.
        "filters": {"kafka_outage": {"()": KafkaOutageLogFilter}, "redact_emails": {"()": RedactEmails}},
        "formatters": {"leadflow": formatter},
        "handlers": {
            "leadflow": {
                "class": "logging.StreamHandler",
                # stderr as it is now: mode later swaps sys.stdout/sys.stderr for proxies that
                # log what is printed, and a handler writing to such a proxy would loop.
                "stream": sys.stderr,
                "formatter": "leadflow",
                "filters": ["kafka_outage", "redact_emails"],
            },
        },
        "root": {"level": level, "handlers": ["leadflow"]},
    }


_installed: dict[str, Any] = {"format": "text"}


def configure_logging(log_format: LogFormat = "text", level: int | str = logging.INFO) -> None:
    """Apply :func:`logging_config`; in JSON mode also route warnings and uncaught exceptions
    through logging, so nothing else reaches stderr as free text."""
    logging.config.dictConfig(logging_config(log_format, level))
    logging.captureWarnings(True)
    _installed["format"] = log_format
    if log_format == "json":
        sys.excepthook = _log_uncaught
        # typeshed lets a thread's exc_value be None; an exception that ended a thread is never None
        threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)  # type: ignore[arg-type]


def active_format() -> LogFormat:
    """The format last applied by :func:`configure_logging`."""
    log_format: LogFormat = _installed["format"]
    return log_format


def _log_uncaught(exc_type: type[BaseException], exc_value: BaseException, exc_traceback: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, exc_traceback)
        return
    logging.getLogger("leadflow").critical("uncaught exception", exc_info=(exc_type, exc_value, exc_traceback))
