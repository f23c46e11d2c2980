"""Log formats (text / JSON lines) and email redaction, for leadflow's and libraries' records."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys

import pytest

from streams.logs import EMAIL_MASK, JsonFormatter, RedactEmails, configure_logging, logging_config, redact
from streams.settings import REPO_ROOT


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad address dana@acme.com")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("faust.worker", logging.WARNING, __file__, 1, msg, args or None, exc_info)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lead ld_3f2a9c scored 71", "lead ld_3f2a9c scored 71"),
        ("invalid email dana.o'neil+x@acme.co.uk here", f"invalid email {EMAIL_MASK} here"),
        ("a@b.io,c.d@e-f.example.com", f"{EMAIL_MASK},{EMAIL_MASK}"),
        ("kafka://user@host:9092 and @handle and x@localhost", "kafka://user@host:9092 and @handle and x@localhost"),
    ],
)
def test_redact_masks_email_shaped_text_only(text, expected):
    assert redact(text) == expected


def test_redaction_filter_covers_message_args_and_exception():
    record = _record("dead-lettered %s: %s", "t[0]@12", "invalid_email (Dana@Acme.com)", exc=True)
    assert RedactEmails().filter(record) is True
    assert record.getMessage() == f"dead-lettered t[0]@12: invalid_email ({EMAIL_MASK})"
    assert "acme.com" not in record.exc_text and EMAIL_MASK in record.exc_text
    assert "ValueError" in record.exc_text


def test_json_formatter_one_object_per_line():
    record = _record("line one\nline two", exc=True, lead_id="ld_1", count=3, payload={"x": 1})
    RedactEmails().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "WARNING" and doc["logger"] == "faust.worker"
    assert doc["message"] == "line one\nline two"
    assert doc["ts"].endswith("Z") and doc["ts"][10] == "T"
    assert doc["exc"].startswith("Traceback") and "acme.com" not in doc["exc"]
    assert doc["lead_id"] == "ld_1" and doc["count"] == 3
    assert "payload" not in doc  # only scalar extras


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configured_handler_formats_and_redacts_every_logger(log_format, restore_logging, capsys):
    configure_logging(log_format, logging.INFO)
    for name in ("streams.app", "faust.worker", "aiokafka.consumer", "mode.services"):
        logging.getLogger(name).warning("to %s from %s", "dana@acme.com", name)
    logging.getLogger("aiokafka").debug("below the level")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert all("dana@acme.com" not in line and EMAIL_MASK in line for line in lines)
    if log_format == "json":
        docs = [json.loads(line) for line in lines]
        assert [d["logger"] for d in docs] == ["streams.app", "faust.worker", "aiokafka.consumer", "mode.services"]
    else:
        assert lines[1].split(" ", 2)[2].startswith("WARNING faust.worker: to <email>")


def test_faust_worker_setup_keeps_our_handler(restore_logging):
    """mode's Worker clears the root handlers and runs dictConfig with the dict we give it."""
    from mode.utils.logging import setup_logging

    stream = io.StringIO()
    config = logging_config("json", "info")
    config["handlers"]["leadflow"]["stream"] = stream
    setup_logging(loglevel="info", logging_config=config)
    logging.getLogger("faust.transport.drivers.aiokafka").info("[^--Consumer]: Starting...")
    doc = json.loads(stream.getvalue().splitlines()[-1])
    assert doc["logger"] == "faust.transport.drivers.aiokafka" and doc["level"] == "INFO"


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="'text' or 'json'"):
        logging_config("yaml")  # type: ignore[arg-type]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_cli_error_is_a_json_line_in_json_mode(tmp_path):
    bad = tmp_path / "roster.yaml"
    bad.write_text("reps: [\n")
    result = _cli("roster", "load", "--dry-run", str(bad), LEADFLOW_LOG_FORMAT="json")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    doc = json.loads(lines[0])
    assert doc["level"] == "ERROR" and str(bad) in doc["message"] and "not valid YAML at line 2" in doc["message"]


def test_invalid_log_format_names_the_variable():
    result = _cli("topics", "list", LEADFLOW_LOG_FORMAT="xml")
    assert result.returncode == 1
    assert "LEADFLOW_LOG_FORMAT (log_format) = 'xml'" in result.stderr and "Traceback" not in result.stderr
