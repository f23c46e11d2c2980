"""The processes `leadflow bench` starts (``python -m leadflow.bench.worker ...``).

- ``worker ...``: ``leadflow worker`` with LEADFLOW_BENCH_FAUST / LEADFLOW_BENCH_PATCHES applied;
- ``faust-passthrough SOURCE SINK [--table]``: the smallest Faust agent (Faust's own ceiling).

These import ``leadflow.cli`` (the worker runs through the CLI's ``main``), and the CLI's
``bench`` command imports the rest of ``leadflow.bench``; so nothing in the package imports this
module: the bench only names it as the module to run. The patches themselves are
``leadflow.bench.patches.PATCHES``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from leadflow.bench.patches import PATCHES


def _proto_worker(argv: list[str]) -> None:
    """``python -m leadflow.bench.worker worker ...``: ``leadflow worker`` with
    LEADFLOW_BENCH_FAUST (JSON: extra faust.App settings) and LEADFLOW_BENCH_PATCHES (comma-
    separated names from PATCHES) applied. Used by ``leadflow bench --faust/--patch`` to try
    a change before proposing it to the owner of the code."""
    import faust

    overrides = json.loads(os.environ.get("LEADFLOW_BENCH_FAUST") or "{}")
    if overrides:
        base_app = faust.App

        class TunedApp(base_app):  # type: ignore[misc, valid-type]
            def __init__(self, *args, **kwargs):
                kwargs.update(overrides)
                super().__init__(*args, **kwargs)

        faust.App = TunedApp  # type: ignore[misc]  # the patch itself: the worker builds this App
    for name in filter(None, (os.environ.get("LEADFLOW_BENCH_PATCHES") or "").split(",")):
        PATCHES[name.strip()]()
    from leadflow.cli import main  # after the patches, as in a worker that has the change

    main(argv, prog_name="leadflow")


def _faust_passthrough(argv: list[str]) -> None:
    """``python -m leadflow.bench.worker faust-passthrough SOURCE SINK [--table]``: the smallest Faust
    agent - consume SOURCE, (optionally set one table key,) send to SINK - with leadflow's own
    faust.App settings (streams.app.faust_app) and LEADFLOW_* configuration."""
    import faust

    from streams.app import faust_app
    from streams.settings import load_settings

    source, sink, stateful = argv[0], argv[1], "--table" in argv
    settings = load_settings()
    app = faust_app(settings)
    raw: dict[str, Any] = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    src = app.topic(source, partitions=settings.topic_partitions, **raw)
    dst = app.topic(sink, partitions=settings.topic_partitions, **raw)
    table = (
        app.Table("last_value", default=None, partitions=settings.topic_partitions, key_type=bytes, value_type=bytes)
        if stateful
        else None
    )

    @app.agent(src, name="passthrough", concurrency=1)
    async def passthrough_agent(stream):
        async for event in stream.events():
            message = event.message
            if table is not None:
                table[message.key or b""] = message.value
            await dst.send(key=message.key, value=message.value)

    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    if sys.argv[1:2] == ["faust-passthrough"]:
        _faust_passthrough(sys.argv[2:])
    else:
        _proto_worker(sys.argv[1:])
