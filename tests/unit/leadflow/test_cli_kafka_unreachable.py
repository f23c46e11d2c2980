"""Kafka unreachable: every command that needs it says so in one actionable line, no traceback.

No broker is needed: the commands are pointed at a loopback port nothing listens on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from streams.settings import REPO_ROOT


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize(
    "args",
    [
        ["worker"],
        ["publish", "form", str(REPO_ROOT / "examples" / "form-submits.jsonl")],
        ["tail", "mqls", "--max", "1"],
        ["topics", "create"],
        ["replay", "form_submits", "--from-offset", "0", "--yes"],
    ],
)
def test_unreachable_kafka_is_one_actionable_line(args, tmp_path):
    bootstrap = f"127.0.0.1:{_unused_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(LEADFLOW_KAFKA_BOOTSTRAP=bootstrap, LEADFLOW_DATA_DIR=str(tmp_path / "data"), LEADFLOW_METRICS_PORT="0")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    err = result.stderr.decode()
    assert result.returncode != 0
    assert time.monotonic() - started < 20
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert bootstrap in lines[0] and "connection refused" in lines[0] and "PLAINTEXT" in lines[0]
    assert "leadflow dev up" in lines[0], "says what to try"
