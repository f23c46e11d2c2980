"""Running a worker: topics first, then Redis reachable, metrics served, then Faust."""

from __future__ import annotations

import asyncio
import logging

from streams.connections import check_kafka
from streams.settings import Settings
from streams.topics import ensure_topics, message_limit

log = logging.getLogger(__name__)


def use_event_loop(settings: Settings) -> None:
    """Every loop made from here on is ``settings.event_loop``'s (before prepare and Faust)."""
    if settings.event_loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())


def prepare(settings: Settings) -> int:
    """Create topics before Faust subscribes (a consumer that subscribes to a missing topic
    ignores it until its next metadata refresh, minutes later). Returns the topics' message
    size limit (``streams.topics.message_limit``), for ``create_app``."""
    loop = asyncio.new_event_loop()
    try:
        # One connection first, so a wrong address, CA or password is one clear line
        # (KafkaUnavailable) instead of aiokafka's retry logs.
        loop.run_until_complete(check_kafka(settings))
        loop.run_until_complete(ensure_topics(settings))
        limit = loop.run_until_complete(message_limit(settings))
    finally:
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())
    log.info("topics accept records up to %d bytes: producer limit and dead-letter size", limit)
    return limit


def run_worker(settings: Settings, *, loglevel: str = "info") -> int:
    import faust
    from mode.utils.logging import level_number

    from agents.routing.roster_presence_store import RosterWatch, check_roster_at_start
    from agents.routing.roster_store import check_routing_owners
    from leadflow.compose import create_app, load_configs
    from streams import local_state
    from streams.gc_tuning import collect_fully_less_often, collect_only_when_a_store_closes, freeze_what_is_alive
    from streams.health import Health, HealthService
    from streams.kafka_outage import exit_when_stop_waits_on_kafka, install
    from streams.logs import logging_config
    from streams.redis_client import wait_for_redis
    from streams.startup_checks import check_data_dir

    configs = load_configs(settings)  # before any connection: a bad YAML file is one line, at once
    check_data_dir(settings)  # likewise an unusable LEADFLOW_DATA_DIR, named with its path
    # A store left by a worker that did not stop cleanly may be ahead of Kafka: rebuild it.
    local_state.claim(settings.data_dir)
    use_event_loop(settings)
    collect_fully_less_often(settings.gc_full_collection_every)
    collect_only_when_a_store_closes()  # no full collection per table at every rebalance
    limit = prepare(settings)
    # Reconnect backoff, outage log line and readiness for every Kafka client Faust makes from here.
    kafka_outage = install(settings)
    pipeline = create_app(settings, configs=configs, message_limit=limit)
    pipeline.metrics.set_worker_info(app_id=settings.app_id)
    redis_client = wait_for_redis(settings, pipeline.metrics)
    try:
        check_roster_at_start(redis_client, settings, pipeline.metrics.roster_loaded)
        check_routing_owners(redis_client, configs.routing, settings)  # StartupError if the roster lacks them
    finally:
        redis_client.close()
    health = Health()
    pipeline.metrics.serve(settings.metrics_port, settings.metrics_host, health=health)  # logs the bound address

    class Worker(faust.Worker):
        def _schedule_shutdown(self, signal) -> None:  # mode's hook for SIGTERM and SIGINT
            if not self._signal_stop_time:  # the first signal
                exit_when_stop_waits_on_kafka(kafka_outage, settings.kafka_outage_stop_timeout_s)
            super()._schedule_shutdown(signal)

        def stop_and_shutdown(self) -> None:
            super().stop_and_shutdown()
            # Stopped by a signal, not crashed: the stores match the changelogs and may be reused.
            if self._signal_stop_time and not self.crash_reason and not pipeline.app.crash_reason:
                local_state.release(settings.data_dir)

    worker = Worker(
        pipeline.app,
        # Starts before the app (whose timers wait for table recovery): heartbeat, Redis PING
        # (with routing's roster presence in the same round trip).
        HealthService(
            pipeline.app,
            health,
            settings,
            pipeline.metrics,
            kafka_outage=kafka_outage,
            redis_probes=[RosterWatch(settings, pipeline.metrics.roster_loaded).probe()],
            on_first_ready=freeze_what_is_alive if settings.gc_freeze_at_ready else None,
        ),
        loglevel=loglevel,
        quiet=True,
        # mode's Worker re-runs dictConfig at start: same format and redaction as the CLI.
        logging_config=logging_config(settings.log_format, level_number(loglevel)),
    )
    # Faust's terminal spinner sets the root logger to DEBUG to animate itself: ~9% of CPU.
    worker.spinner = None
    worker.execute_from_commandline()  # exits the process when stopped
    return 0
