"""What a worker checks at start, before it consumes: a problem stops it with one line.

- the data directory (LEADFLOW_DATA_DIR): created and writable, named as such with its path
  (RocksDB failing inside Faust later reads like a broker problem).

Capabilities add their own checks and raise :class:`StartupError` (routing's owners against the
roster: ``agents.routing.roster_store.check_routing_owners``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from streams.settings import Settings

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The worker cannot start with these settings; the message is one line."""


def check_data_dir(settings: Settings) -> Path:
    """Create the data directory if needed and prove it writable; raises StartupError."""
    path = Path(settings.data_dir)
    shown = str(path)[:200]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"LEADFLOW_DATA_DIR={shown}: cannot create the data directory "
            f"(tables' RocksDB files): {exc.strerror or exc}"
        ) from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise StartupError(
            f"LEADFLOW_DATA_DIR={shown}: the data directory is not writable: {exc.strerror or exc}"
        ) from None
    return path
