"""Running a worker: topics first, then Redis reachable, metrics served, then Faust."""

from __future__ import annotations

import asyncio
import logging

from streams.connections import check_kafka
from streams.settings import Settings
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


def prepare(settings: Settings) -> None:
    """Create topics before Faust subscribes (a consumer that subscribes to a missing topic
    ignores it until its next metadata refresh, minutes later)."""
    loop = asyncio.new_event_loop()
    try:
        # One connection first, so a wrong address, CA or password is one clear line
        # (KafkaUnavailable) instead of aiokafka's retry logs.
        loop.run_until_complete(check_kafka(settings))
        loop.run_until_complete(ensure_topics(settings))
    finally:
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_worker(settings: Settings, *, loglevel: str = "info") -> int:
    import faust

    from streams.app import create_app
    from streams.redis_client import wait_for_redis

    prepare(settings)
    pipeline = create_app(settings)
    pipeline.metrics.set_worker_info(app_id=settings.app_id)
    wait_for_redis(settings, pipeline.metrics)
    server = pipeline.metrics.serve(settings.metrics_port)
    if server is not None:
        log.info("metrics on http://127.0.0.1:%d/metrics", settings.metrics_port)
    worker = faust.Worker(pipeline.app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG to animate itself: ~9% of CPU.
    worker.spinner = None
    worker.execute_from_commandline()  # returns when stopped by a signal
    return 0
