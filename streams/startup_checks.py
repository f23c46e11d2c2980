"""What a worker checks at start, before it consumes: a problem stops it with one line.

- the data directory (LEADFLOW_DATA_DIR): created and writable, named as such with its path
  (RocksDB failing inside Faust later reads like a broker problem);
- the routing config's named owners against the roster in Redis: the nurture owner must be an
  active rep of the loaded roster (``roster load`` checks the same; a roster loaded before the
  routing config changed is caught here). No roster yet: a warning, the check runs at
  ``roster load``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

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
        raise StartupError(f"LEADFLOW_DATA_DIR={shown}: cannot create the data directory "
                           f"(tables' RocksDB files): {exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise StartupError(f"LEADFLOW_DATA_DIR={shown}: the data directory is not writable: "
                           f"{exc.strerror or exc}") from None
    return path


def check_routing_owners(redis_client: Any, settings: Settings, *, now_ms: int | None = None) -> list[str]:
    """Check the routing config's owners against the roster in Redis (a sync client).

    Returns the warnings (also logged); raises StartupError naming every owner problem."""
    import orjson

    from agents.routing.config import load_routing_config
    from agents.routing.roster import Roster
    from agents.routing.roster_validation import check_config_owners
    from streams.roster_store import roster_keys

    config = load_routing_config(settings.routing_config_path)
    raw = redis_client.get(roster_keys(settings.redis_key_prefix)[1])
    if raw is None:
        warnings = [f"no roster loaded yet: the routing config's nurture_owner {config.nurture_owner!r} and "
                    f"fallback.owner_id {config.fallback.owner_id!r} are checked when one is (`leadflow roster load`)"]
    else:
        try:
            reps = Roster.from_dict(orjson.loads(raw)["roster"]).reps
        except Exception as exc:  # noqa: BLE001 - routing copes with a corrupt document; say so
            warnings = [f"the roster in Redis cannot be read ({type(exc).__name__}); routing's owners not checked"]
        else:
            problems: list[str] = []
            warnings = []
            check_config_owners(config, reps, now_ms if now_ms is not None else int(time.time() * 1000),
                                problems, warnings)
            if problems:
                raise StartupError(f"routing config {settings.routing_config_path} does not match the roster in "
                                   f"Redis: {'; '.join(problems)}; fix LEADFLOW_ROUTING_CONFIG_PATH or load a "
                                   "roster that has them (`leadflow roster load`)")
    for warning in warnings:
        log.warning("%s", warning)
    return warnings
