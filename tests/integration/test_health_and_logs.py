"""Health endpoints, roster presence and JSON logs of a real `leadflow worker` (real Kafka + Redis).

* /livez and /readyz: ready once the worker joined its group and recovered its tables; not
  ready (but live) while Redis is stopped, ready again once it is back; /metrics has
  ``leadflow_worker_ready``.
* roster: a worker started on an empty Redis prefix says so once (WARNING naming the remedy) and
  exports ``leadflow_roster_loaded 0``; ``leadflow roster load --if-empty`` loads the configured
  roster once (a second run leaves it), and the gauge turns 1 without a restart.
* LEADFLOW_LOG_FORMAT=json: every line the worker process writes is a JSON object, Faust's and
  aiokafka's included; dead letters are logged once per reason and then summarised.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from streams.settings import REPO_ROOT
from tests.integration.conftest import WorkerHarness
from tests.integration.factories import as_json, form_submit

pytestmark = pytest.mark.integration

EMAIL_SHAPED = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _get(url: str) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet
        return 0, str(exc)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def _wait(what: str, probe, timeout: float, harness: WorkerHarness, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout}s (last: {result!r})\n{harness.logs()}")


def _metric(port: int, name: str) -> float | None:
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    for line in str(text).splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _roster_load_if_empty(harness: WorkerHarness) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "roster", "load", "--if-empty"],
        env=harness.process_env(0),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_livez_readyz_and_roster_presence_on_a_real_worker(stack, stack_settings, tmp_path):
    harness = WorkerHarness(stack_settings, tmp_path, redis_key_prefix="t" + uuid.uuid4().hex[:10])
    base = f"http://127.0.0.1:{harness.metrics_port}"
    started = time.monotonic()
    process = harness.start()
    try:
        _wait("/livez 200", lambda: _get(base + "/livez")[0] == 200, 60, harness)
        not_ready = _get(base + "/readyz")
        ready = _wait(
            "/readyz 200", lambda: (lambda r: r if r[0] == 200 else None)(_get(base + "/readyz")), 90, harness
        )
        print(f"ready {time.monotonic() - started:.1f}s after start; first answer {not_ready}")
        body = ready[1]
        assert body["ready"] is True and body["failing"] == []
        assert body["checks"] == {
            "event_loop": "ok",
            "consumer_group": "ok",
            "table_recovery": "ok",
            "redis": "ok",
            "kafka": "ok",
        }
        assert body["partitions"] > 0 and body["generation"] >= 1
        _wait(
            "leadflow_worker_ready 1", lambda: _metric(harness.metrics_port, "leadflow_worker_ready") == 1.0, 5, harness
        )
        assert _get(base + "/")[0] == 404 and _get(base + "/metrics/x")[0] == 404

        # No roster in this prefix: said once, loudly, and in a metric; --if-empty loads it once.
        assert _metric(harness.metrics_port, "leadflow_roster_loaded") == 0.0
        warnings = [line for line in process.log_file.read_text().splitlines() if "no sales roster in Redis" in line]
        assert len(warnings) == 1, harness.logs()
        assert "WARNING" in warnings[0] and "leadflow roster load --if-empty" in warnings[0]
        first = _roster_load_if_empty(harness)
        assert first.startswith("loaded ") and "roster version 1;" in first, first
        second = _roster_load_if_empty(harness)
        assert "already loaded" in second and "version 1" in second and "left as is" in second, second
        _wait(
            "leadflow_roster_loaded 1",
            lambda: _metric(harness.metrics_port, "leadflow_roster_loaded") == 1.0,
            10,
            harness,
        )

        # Redis down: not ready (naming Redis), still live; back up: ready again.
        stack.redis.stop()
        try:
            status, body = _wait(
                "/readyz 503 for Redis",
                lambda: (lambda r: r if r[0] == 503 and r[1]["failing"] == ["redis"] else None)(_get(base + "/readyz")),
                20,
                harness,
            )
            assert "Redis at redis://127.0.0.1" in body["checks"]["redis"]
            assert _get(base + "/livez")[0] == 200
            _wait(
                "leadflow_worker_ready 0",
                lambda: _metric(harness.metrics_port, "leadflow_worker_ready") == 0.0,
                5,
                harness,
            )
        finally:
            stack.redis.start()
        _wait("/readyz 200 after Redis is back", lambda: _get(base + "/readyz")[0] == 200, 30, harness)
    finally:
        harness.stop_all()


def test_json_logs_from_a_real_worker_and_dead_letters_summarised(stack, stack_settings, kafka, tmp_path):
    harness = WorkerHarness(stack_settings, tmp_path, log_format="json", redis_key_prefix="t" + uuid.uuid4().hex[:10])
    process = harness.start()
    try:
        _wait("/readyz 200", lambda: _get(f"http://127.0.0.1:{harness.metrics_port}/readyz")[0] == 200, 90, harness)
        topic = harness.topics.form_submits
        kafka.produce(topic, [as_json(form_submit(f"dana{i}@acme-logistics.com")) for i in range(3)])
        kafka.produce(topic, [b"\xff\x00 not json nor avro"] * 20)  # unknown_encoding
        kafka.produce(topic, [b'{"broken json'] * 10)  # undecodable
        total = lambda: sum(  # noqa: E731
            _metric(harness.metrics_port, f'leadflow_dead_letters_total{{reason="{reason}"}}') or 0
            for reason in ("unknown_encoding", "undecodable")
        )
        _wait("30 dead letters counted", lambda: total() == 30, 60, harness)
        # The flush timer runs every 10 s: the tally follows within about 20 s.
        _wait(
            "a dead-letter summary line",
            lambda: re.search(r"dead-lettered [\d,]+ events in the last", process.log_tail(400)),
            30,
            harness,
        )
    finally:
        harness.stop_all()

    lines = process.log_file.read_text().splitlines()
    assert len(lines) > 50
    docs = []
    for number, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} of the worker log is not JSON: {line[:300]!r}") from None
        assert isinstance(doc, dict) and {"ts", "level", "logger", "message"} <= doc.keys(), line
        docs.append(doc)
    loggers = {doc["logger"] for doc in docs}
    assert any(name.startswith("faust.") for name in loggers), loggers
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    assert any(name.startswith("streams.") for name in loggers), loggers
    assert any(doc["message"].endswith("Worker ready") for doc in docs)
    assert not [doc for doc in docs if EMAIL_SHAPED.search(json.dumps(doc))], "no email reaches the log"

    individual = Counter(
        m.group(1) for doc in docs if (m := re.match(r"dead-lettered \S+\[\d+\]@\d+: (\w+):", doc["message"]))
    )
    assert individual == {"unknown_encoding": 1, "undecodable": 1}, individual
    summaries = [doc for doc in docs if re.match(r"dead-lettered [\d,]+ events in the last", doc["message"])]
    assert 1 <= len(summaries) <= 3, summaries
    assert all(doc["level"] == "WARNING" and doc["logger"] == "streams.app" for doc in summaries)
    summarised = Counter()
    for doc in summaries:
        for reason, count in re.findall(r"(\w+)=([\d,]+)", doc["message"]):
            summarised[reason] += int(count.replace(",", ""))
    # Every dead letter is in a tally, except perhaps a first one alone in its interval.
    assert 19 <= summarised["unknown_encoding"] <= 20 and 9 <= summarised["undecodable"] <= 10, summaries


@pytest.mark.parametrize(
    "topic_of, exit_code",
    [
        (lambda names: names.mqls, 0),  # exists, nothing arrives: stops after --timeout
        (lambda names: names.mqls + ".missing", 1),  # no such topic: one line, after --timeout at most
    ],
    ids=["empty-topic", "missing-topic"],
)
def test_tail_honours_timeout_when_nothing_arrives(stack, stack_settings, tmp_path, topic_of, exit_code):
    harness = WorkerHarness(stack_settings, tmp_path)  # creates the topics; no worker
    topic = topic_of(harness.topics)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", "tail", topic, "--timeout", "2"],
        env=harness.process_env(0),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert 2 <= elapsed < 10, elapsed
    assert done.stdout == "" and "Traceback" not in done.stderr
    if exit_code:
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
        assert errors == [
            f"Error: topic {topic!r} has no metadata on Kafka (does it exist? `leadflow topics "
            "list` names leadflow's topics, `leadflow topics create` creates them)"
        ], done.stderr
