"""Dev stack pieces that need no Kafka or Redis: config rendering, the Metadata probe,
pid files, process-group stopping, readiness errors, and the error messages."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from leadflow.devstack import base
from leadflow.devstack import kafka as kafka_mod
from leadflow.devstack import redis as redis_mod
from leadflow.devstack.base import (
    ManagedProcess,
    PidRecord,
    is_alive,
    port_is_free,
    process_group_members,
    process_start_ticks,
    tail_lines,
)
from leadflow.devstack.exceptions import (
    JarFetchError,
    NotReadyError,
    PortInUseError,
    ProcessExitedError,
    ToolMissingError,
)
from leadflow.devstack.kafka import KafkaServer, metadata_broker_ids
from leadflow.devstack.kafka_config import new_cluster_id, render_properties, server_properties
from leadflow.devstack.redis import RedisServer, render_redis_conf
from leadflow.devstack.stack import DevStack
from streams.settings import load_settings

SLEEP = "/bin/sleep" if os.path.exists("/bin/sleep") else "sleep"


def wait_until_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def processes():
    """ManagedProcesses a test starts; stopped afterwards whatever happens."""
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop(timeout=2)


def make_process(tmp_path: Path, argv: list[str], name: str = "child", **kwargs) -> ManagedProcess:
    return ManagedProcess(name, argv, log_file=tmp_path / f"{name}.log", pid_file=tmp_path / f"{name}.pid", **kwargs)


# --- Kafka config and probe --------------------------------------------------------------


def test_server_properties_single_node_kraft_on_loopback(tmp_path):
    props = server_properties(port=39092, controller_port=39093, log_dir=tmp_path / "logs")

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert props["log.dirs"] == str(tmp_path / "logs")
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.num.partitions"] == "8"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "1"


def test_render_properties_is_key_value_lines_with_escaped_backslashes():
    text = render_properties({"a.b": "1", "log.dirs": r"C:\kafka"})
    assert text == "a.b=1\nlog.dirs=C:\\\\kafka\n"


def test_cluster_id_is_a_kafka_uuid():
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


Broker = tuple[int, str, int, "str | None"]  # node id, host, port, rack


def _metadata_v4_response(correlation_id: int, brokers: list[Broker]) -> bytes:
    body = struct.pack(">iii", correlation_id, 0, len(brokers))
    for node_id, host, port, rack in brokers:
        body += struct.pack(">ih", node_id, len(host)) + host.encode() + struct.pack(">i", port)
        if rack is None:
            body += struct.pack(">h", -1)
        else:
            body += struct.pack(">h", len(rack)) + rack.encode()
    body += struct.pack(">h", -1) + struct.pack(">ii", 1, 0)  # cluster id, controller, topics
    return struct.pack(">i", len(body)) + body


def test_metadata_probe_sends_metadata_v4_and_parses_brokers():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received: dict[str, bytes] = {}

    def serve_once() -> None:
        conn, _ = server.accept()
        with conn:
            (size,) = struct.unpack(">i", conn.recv(4))
            request = b""
            while len(request) < size:
                request += conn.recv(size - len(request))
            received["request"] = request
            (correlation_id,) = struct.unpack_from(">i", request, 4)
            conn.sendall(
                _metadata_v4_response(correlation_id, [(1, "127.0.0.1", port, None), (7, "other-host", 9092, "rack-a")])
            )

    thread = threading.Thread(target=serve_once)
    thread.start()
    try:
        assert metadata_broker_ids("127.0.0.1", port, timeout=2) == [1, 7]
    finally:
        thread.join(5)
        server.close()
    api_key, api_version = struct.unpack_from(">hh", received["request"], 0)
    assert (api_key, api_version) == (3, 4)
    assert received["request"].endswith(struct.pack(">ib", 0, 0))  # no topics, no auto-create


def test_metadata_probe_on_a_closed_port_raises_connection_error():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    with pytest.raises(OSError):
        metadata_broker_ids("127.0.0.1", port, timeout=0.5)


# --- Kafka jars and tools ------------------------------------------------------------------


def _fake_tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


def _kafka(tmp_path: Path, **kwargs) -> KafkaServer:
    return KafkaServer(
        "9.9.9", port=1, controller_port=2, data_dir=tmp_path / "data", jar_cache_dir=tmp_path / "jars", **kwargs
    )


def test_cached_jars_are_used_without_maven(tmp_path, monkeypatch):
    server = _kafka(tmp_path)
    server.libs_dir.mkdir(parents=True)
    (server.libs_dir / "kafka_2.13-9.9.9.jar").write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no mvn reachable

    assert server.ensure_jars() == server.libs_dir


def test_maven_failure_explains_what_to_check_and_leaves_no_partial_cache(tmp_path, monkeypatch):
    _fake_tool(
        tmp_path / "bin", "mvn", 'echo "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13"\nexit 1\n'
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    server = _kafka(tmp_path)

    with pytest.raises(JarFetchError) as caught:
        server.ensure_jars()

    message = str(caught.value)
    assert "Maven Central" in message and "JDK 17" in message and "mvn" in message
    assert "Could not transfer artifact" in message
    assert "-Dkafka.version=9.9.9" in message
    assert not server.libs_dir.exists()
    assert list(server.libs_dir.parent.iterdir()) == []  # staging dir removed


def test_successful_fetch_lands_atomically_in_the_version_cache(tmp_path, monkeypatch):
    # The fake mvn writes one jar into -DoutputDirectory=... like copy-dependencies does.
    _fake_tool(
        tmp_path / "bin",
        "mvn",
        textwrap.dedent("""\
        for arg in "$@"; do
          case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
        done
        touch "$out/kafka_2.13-9.9.9.jar"
        """),
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    server = _kafka(tmp_path)

    libs = server.ensure_jars()

    assert libs == tmp_path / "jars" / "9.9.9" / "libs"
    assert [p.name for p in libs.iterdir()] == ["kafka_2.13-9.9.9.jar"]
    assert sorted(p.name for p in libs.parent.iterdir()) == ["libs"]


def test_missing_maven_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolMissingError, match="mvn not found"):
        _kafka(tmp_path).ensure_jars()


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolMissingError, match="JDK 17"):
        kafka_mod.find_java()


def test_kafka_refuses_a_port_taken_by_someone_else(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = KafkaServer("3.9.1", port=port, controller_port=port, data_dir=tmp_path, jar_cache_dir=tmp_path)
        with pytest.raises(PortInUseError, match=str(port)):
            server.launch()


# --- Redis config and install ----------------------------------------------------------------


def test_redis_conf_is_private_durable_and_foreground(tmp_path):
    conf = render_redis_conf(port=36379, data_dir=tmp_path / 'we"ird', log_file=tmp_path / "r.log")
    lines = conf.splitlines()

    assert "bind 127.0.0.1" in lines
    assert "port 36379" in lines
    assert "protected-mode yes" in lines
    assert "daemonize no" in lines
    assert "appendonly yes" in lines
    assert 'save ""' in lines
    assert f'dir "{tmp_path}/we\\"ird"' in lines
    assert f'logfile "{tmp_path}/r.log"' in lines


def test_missing_redis_without_root_says_what_to_run(monkeypatch):
    monkeypatch.setattr(redis_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(ToolMissingError, match="apt-get install -y redis-server"):
        redis_mod.ensure_redis_installed()


def test_redis_refuses_a_port_taken_by_someone_else(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(PortInUseError, match=str(port)):
            RedisServer(port, tmp_path).launch()


def test_stack_layout_follows_settings(tmp_path):
    settings = load_settings(
        stack_dir=tmp_path,
        kafka_port=39092,
        kafka_controller_port=39093,
        redis_port=36379,
        kafka_version="3.9.1",
        kafka_heap="256m",
    )
    stack = DevStack.from_settings(settings)

    assert stack.kafka.data_dir == tmp_path / "kafka-data-39092"
    assert stack.kafka.libs_dir == tmp_path / "kafka" / "3.9.1" / "libs"
    assert stack.kafka.heap == "256m"
    assert stack.kafka.bootstrap == "127.0.0.1:39092"
    assert stack.redis.data_dir == tmp_path / "redis-data-36379"
    assert stack.redis.url == "redis://127.0.0.1:36379/0"
    assert DevStack.from_settings(settings, jar_cache_dir=tmp_path / "shared").kafka.libs_dir == (
        tmp_path / "shared" / "3.9.1" / "libs"
    )


# --- ManagedProcess: pid files and stopping ---------------------------------------------------


def test_start_writes_a_pid_file_that_identifies_the_process(tmp_path, processes):
    process = make_process(tmp_path, [SLEEP, "30"])
    processes.append(process)

    pid = process.start()

    record = json.loads(process.pid_file.read_text())
    assert record == {"pid": pid, "argv": [SLEEP, "30"], "start_ticks": process_start_ticks(pid)}
    assert os.getpgid(pid) == pid  # own process group (start_new_session)
    assert process.status().running and process.status().pid == pid
    assert process.start() == pid  # idempotent


def test_stop_terminates_and_removes_pid_file(tmp_path, processes):
    process = make_process(tmp_path, [SLEEP, "30"])
    processes.append(process)
    pid = process.start()

    assert process.stop(timeout=5) is True

    assert not is_alive(pid)
    assert not process.pid_file.exists()
    assert process.stop() is False  # nothing left to stop


def test_a_later_invocation_finds_and_stops_the_process(tmp_path):
    # Another interpreter starts the process and exits, like `leadflow dev up` would.
    script = textwrap.dedent(f"""
        from pathlib import Path
        from leadflow.devstack.base import ManagedProcess
        p = ManagedProcess("child", [{SLEEP!r}, "60"], log_file=Path({str(tmp_path / "c.log")!r}),
                           pid_file=Path({str(tmp_path / "c.pid")!r}))
        print(p.start())
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    pid = int(out.stdout)
    later = ManagedProcess("child", [SLEEP, "60"], log_file=tmp_path / "c.log", pid_file=tmp_path / "c.pid")
    try:
        assert later.running_pid() == pid
        assert later.stop(timeout=5) is True
        assert wait_until_gone(pid)
    finally:
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_pid_file_of_a_recycled_pid_is_never_signalled(tmp_path, processes):
    # A live process that is *not* the one the pid file describes (different argv).
    bystander = make_process(tmp_path, [SLEEP, "31"], name="bystander")
    processes.append(bystander)
    pid = bystander.start()
    pid_file = tmp_path / "ours.pid"
    PidRecord(pid, [SLEEP, "999"], process_start_ticks(pid)).write(pid_file)
    ours = ManagedProcess("ours", [SLEEP, "999"], log_file=tmp_path / "o.log", pid_file=pid_file)

    assert ours.running_pid() is None
    assert ours.stop(timeout=1) is False
    assert is_alive(pid)


def test_pid_file_with_other_start_time_is_stale_and_removed(tmp_path, processes):
    bystander = make_process(tmp_path, [SLEEP, "32"], name="bystander")
    processes.append(bystander)
    pid = bystander.start()
    pid_file = tmp_path / "ours.pid"
    PidRecord(pid, [SLEEP, "32"], process_start_ticks(pid) - 1).write(pid_file)  # same argv
    ours = ManagedProcess("ours", [SLEEP, "32"], log_file=tmp_path / "o.log", pid_file=pid_file)

    assert ours.stop(timeout=1) is False
    assert is_alive(pid)
    assert not pid_file.exists()


def test_pid_file_of_a_dead_process_is_removed(tmp_path):
    dead = subprocess.Popen([SLEEP, "0"])
    dead.wait()
    pid_file = tmp_path / "dead.pid"
    PidRecord(dead.pid, [SLEEP, "0"], None).write(pid_file)
    process = ManagedProcess("dead", [SLEEP, "0"], log_file=tmp_path / "d.log", pid_file=pid_file)

    assert process.status().running is False
    assert not pid_file.exists()


def test_unreadable_pid_file_counts_as_not_running(tmp_path):
    (tmp_path / "x.pid").write_text("not json")
    process = make_process(tmp_path, [SLEEP, "1"], name="x")
    assert process.running_pid() is None


def test_sigterm_ignoring_process_is_killed_after_timeout(tmp_path, processes):
    process = make_process(tmp_path, ["sh", "-c", f"trap '' TERM; exec {SLEEP} 60"])
    processes.append(process)
    pid = process.start()
    time.sleep(0.2)  # let the shell install the trap before exec

    started = time.monotonic()
    assert process.stop(timeout=0.5)

    assert not is_alive(pid)
    assert time.monotonic() - started < 5


def test_stop_leaves_no_member_of_the_process_group(tmp_path, processes):
    # The leader exits on SIGTERM, a background child ignores it: the sweep must get it.
    script = f"(trap '' TERM; exec {SLEEP} 60) & exec {SLEEP} 60"
    process = make_process(tmp_path, ["sh", "-c", script])
    processes.append(process)
    pid = process.start()
    deadline = time.monotonic() + 5
    while len(process_group_members(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(process_group_members(pid)) == 2

    process.stop(timeout=5)

    deadline = time.monotonic() + 5
    while process_group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_group_members(pid) == []


def test_child_tied_to_parent_dies_when_the_parent_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from leadflow.devstack.base import ManagedProcess
        p = ManagedProcess("tied", [{SLEEP!r}, "60"], log_file=Path({str(tmp_path / "t.log")!r}),
                           pid_file=Path({str(tmp_path / "t.pid")!r}), tie_to_parent=True)
        print(p.start(), flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3]
    )
    child_pid = None
    try:
        child_pid = int(parent.stdout.readline())
        assert is_alive(child_pid)
        parent.kill()  # kill -9: no cleanup code runs in the parent
        parent.wait()
        assert wait_until_gone(child_pid)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        if child_pid and is_alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


# --- readiness ---------------------------------------------------------------------------------


def test_readiness_reports_early_exit_with_code_and_log_tail(tmp_path, processes):
    process = make_process(tmp_path, ["sh", "-c", "for i in $(seq 1 40); do echo line-$i; done; echo boom >&2; exit 3"])
    processes.append(process)
    process.start()

    with pytest.raises(ProcessExitedError) as caught:
        process.wait_ready(lambda: False, timeout=10, what="listening")

    message = str(caught.value)
    assert "exited with code 3 before it was listening" in message
    assert "boom" in message and "line-40" in message
    assert "line-12\n" in message and "line-11\n" not in message  # last 30 of 41 lines
    assert not process.pid_file.exists()


def test_readiness_timeout_names_last_error_and_shows_log(tmp_path, processes):
    process = make_process(tmp_path, ["sh", "-c", f"echo warming up; exec {SLEEP} 30"])
    processes.append(process)
    pid = process.start()

    def check() -> bool:
        raise ConnectionRefusedError("port closed")

    started = time.monotonic()
    with pytest.raises(NotReadyError) as caught:
        process.wait_ready(check, timeout=0.5, interval=0.05, what="answering")
    assert time.monotonic() - started < 3

    message = str(caught.value)
    assert f"pid {pid}" in message and "not answering after" in message
    assert "ConnectionRefusedError('port closed')" in message
    assert "warming up" in message


def test_readiness_returns_once_the_check_passes(tmp_path, processes):
    process = make_process(tmp_path, [SLEEP, "30"])
    processes.append(process)
    process.start()
    calls = iter([False, False, True])

    waited = process.wait_ready(lambda: next(calls), timeout=5, interval=0.01)

    assert 0 <= waited < 2


def test_retitled_process_is_still_found_after_readiness(tmp_path, processes):
    # Programs like redis-server rewrite argv; readiness re-records what /proc shows.
    process = make_process(tmp_path, [SLEEP, "30"])
    processes.append(process)
    pid = process.start()
    PidRecord(pid, ["stale-title"], process_start_ticks(pid)).write(process.pid_file)
    process.wait_ready(lambda: True, timeout=1)

    later = ManagedProcess("child", ["whatever"], log_file=process.log_file, pid_file=process.pid_file)
    assert later.running_pid() == pid


# --- small helpers -------------------------------------------------------------------------------


def test_tail_lines(tmp_path):
    path = tmp_path / "log"
    assert tail_lines(path) == ""
    path.write_text("".join(f"l{i}\n" for i in range(100)))
    assert tail_lines(path, 3) == "l97\nl98\nl99"
    assert len(tail_lines(path).splitlines()) == base.LOG_TAIL_LINES
