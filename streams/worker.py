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

    from mode.utils.logging import level_number

    from streams.app import check_config_files, create_app
    from streams.health import Health, HealthService, check_roster_at_start
    from streams.logs import logging_config
    from streams.redis_client import wait_for_redis

    check_config_files(settings)  # before any connection: a bad YAML file is one line, at once
    prepare(settings)
    pipeline = create_app(settings)
    pipeline.metrics.set_worker_info(app_id=settings.app_id)
    redis_client = wait_for_redis(settings, pipeline.metrics)
    check_roster_at_start(redis_client, settings, pipeline.metrics)
    redis_client.close()
    health = Health()
    pipeline.metrics.serve(settings.metrics_port, settings.metrics_host, health=health)  # logs the bound address
    worker = faust.Worker(
        pipeline.app,
        # Starts before the app (whose timers wait for table recovery): heartbeat, Redis PING.
        HealthService(pipeline.app, health, settings, pipeline.metrics),
        loglevel=loglevel,
        quiet=True,
        # mode's Worker re-runs dictConfig at start: same format and redaction as the CLI.
        logging_config=logging_config(settings.log_format, level_number(loglevel)),
    )
    # Faust's terminal spinner sets the root logger to DEBUG to animate itself: ~9% of CPU.
    worker.spinner = None
    worker.execute_from_commandline()  # returns when stopped by a signal
    return 0
