"""Local table stores are trusted only after a clean stop.

Why. Faust writes a table change to the local RocksDB store at once, and sends its changelog
record and the outputs afterwards. A worker killed in between (``kill -9``, OOM, node loss)
leaves a local store that is *ahead* of Kafka: it holds state changes whose outputs and
changelog records never reached the broker, for input records whose offsets were not
committed. Restarted on that store, the worker re-reads those inputs, finds their ids already
in the lead's state (the redelivery dedup) and skips them: their outputs are lost for good
(``make chaos``: two leads never scored and two MQLs missing over five kill -9).

The changelog is not ahead of the outputs: outputs are sent before the table write, and
``streams.faust_flush`` sends a changelog record only once the outputs sent before it are
acknowledged. So a store rebuilt from the changelog is consistent with what was published.

:func:`claim` is called once at worker start: if the previous worker on this data directory
did not stop cleanly (its marker is still there), the local table stores are deleted and Faust
restores them from the changelogs. :func:`release` removes the marker after a clean stop.
The price is a full restore after a crash (standby replicas make failover independent of it).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".leadflow-worker-running"
TABLES = Path("v1") / "tables"  # Faust's table directory under its data dir


def claim(data_dir: Path) -> bool:
    """Mark the data directory as in use; returns True when the local stores were discarded
    because the previous worker did not stop cleanly."""
    data_dir = Path(data_dir)
    marker = data_dir / MARKER
    discarded = False
    if marker.exists():
        tables = data_dir / TABLES
        if tables.exists():
            shutil.rmtree(tables)
            discarded = True
            log.warning(
                "the previous worker on %s did not stop cleanly: local table stores discarded, "
                "restoring them from the changelog topics",
                data_dir,
            )
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n")
    return discarded


def release(data_dir: Path) -> None:
    """After a clean stop: the local stores match the changelogs and may be reused."""
    (Path(data_dir) / MARKER).unlink(missing_ok=True)
