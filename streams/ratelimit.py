"""Rate-limited logging for repeated events: the first of a kind now, the rest as a summary.

A fuzz run once wrote 48,000 dead-letter warnings; the counter metric already says how many,
so the log needs an example and a periodic tally, not every occurrence::

    summary = LogSummary(log, "dead-lettered {total:,} events in the last {interval}", interval_s=10)
    summary.event("invalid_email", "dead-lettered %s[%d]@%d: %s", topic, partition, offset, reason)
    ...
    summary.flush()  # from a timer; also called by event() when an interval has passed

Per key: the first event is logged at once (with its details); the following ones are only
counted. At most once per interval a summary line gives the counts of every key seen in
that interval (``too_large=3, invalid_email=1,231``), if any event was held back. A key
that saw no event for a whole interval is "new" again, so a later burst logs an example
first. Result: at most one line per key and one summary line per interval.

Not thread-safe by design: one instance belongs to one event loop (a Faust worker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


def _seconds(value: float) -> str:
    return f"{value:g}s"


class LogSummary:
    def __init__(
        self,
        logger: logging.Logger,
        summary: str,
        *,
        interval_s: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``summary`` is a str.format template with ``{total}``, ``{interval}`` (e.g. "10s")
        and ``{counts}`` (``key=n, ...``, most frequent first); ``{counts}`` is appended after
        a colon if the template does not place it."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.logger = logger
        self.summary = summary if "{counts}" in summary else summary + ": {counts}"
        self.interval_s = interval_s
        self.level = level
        self.clock = clock
        self._window_start = clock()
        self._counts: dict[str, int] = {}  # this interval, every event
        self._held = 0  # this interval, events not logged individually
        self._recent: set[str] = set()  # keys logged individually and active since

    def event(self, key: str, msg: str, *args: object) -> bool:
        """Count one event of ``key``; log ``msg % args`` now if it is the first of its kind.

        Returns True if this event was logged individually."""
        self.flush()
        self._counts[key] = self._counts.get(key, 0) + 1
        if key in self._recent:
            self._held += 1
            return False
        self._recent.add(key)
        self.logger.log(self.level, msg, *args)
        return True

    def flush(self, *, force: bool = False) -> str | None:
        """Close the interval if it has ended (or ``force``): log the summary if events were
        held back. Returns the summary line logged, if any."""
        now = self.clock()
        if not force and now - self._window_start < self.interval_s:
            return None
        line = None
        if self._held:
            ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
            line = self.summary.format(
                total=sum(self._counts.values()),
                interval=_seconds(round(now - self._window_start, 1)),
                counts=", ".join(f"{key}={count:,}" for key, count in ranked),
            )
            self.logger.log(self.level, "%s", line)
        # Keys quiet for the whole interval get an individual line again next time.
        self._recent &= set(self._counts)
        self._counts = {}
        self._held = 0
        self._window_start = now
        return line
