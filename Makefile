# Each target does its own setup (scripts/bootstrap.sh is idempotent and fast when done).
.PHONY: setup lint run demo test unit integration bench bench-api bench-recovery bench-scoring bench-sla chaos broker-outage clean

setup:
	@bash scripts/bootstrap.sh

run: setup
	.venv/bin/leadflow run

demo: setup
	.venv/bin/leadflow demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: setup
	.venv/bin/python -m pytest -q --durations=15

unit: setup
	.venv/bin/python -m pytest -q tests/unit

integration: setup
	.venv/bin/python -m pytest -q -m integration

bench: setup
	.venv/bin/leadflow bench

# Issue 14's recovery goals with 1M leads in state (cold, warm, standby failover, RSS, bytes/lead);
# ~15 min on 2 cores. RECOVERY_ARGS e.g. "--leads 200000 --no-failover".
bench-recovery: setup
	.venv/bin/python -m leadflow.bench.recovery --leads 1000000 --output benchmarks/results $(RECOVERY_ARGS)

# The lead API's latency (two workers, ~half the requests forwarded) under 1,000 input events/s.
bench-api: setup
	.venv/bin/python -m leadflow.bench.api --output benchmarks/results $(API_ARGS)

bench-scoring: setup
	.venv/bin/python scripts/bench_scoring.py

bench-sla: setup
	.venv/bin/python scripts/bench_sla_sweep.py

# Fault injection (not part of `make test`: ~20 min). Holds Kafka/Redis ports 29800/29850 while it runs.
chaos: setup
	.venv/bin/python scripts/chaos.py $(CHAOS_ARGS)

# A worker through a 60 s broker outage: CPU, log lines, /readyz, recovery, SIGTERM (own Kafka + Redis).
broker-outage: setup
	.venv/bin/python scripts/broker_outage.py $(OUTAGE_ARGS)

clean:
	-.venv/bin/leadflow dev down
	rm -rf .leadflow/worker .leadflow/kafka-data-* .leadflow/redis-data-*
