"""CLI errors are one actionable line: tail roles, YAML files, --version, packaging metadata."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from importlib.metadata import version

import click
import pytest
import tomllib
from click.testing import CliRunner

from agents.domain.config_errors import yaml_error_line
from leadflow.cli import main, tail_topic
from streams.settings import REPO_ROOT

pytestmark = pytest.mark.usefixtures("restore_logging")  # CliRunner runs the entry point in-process
BROKEN_YAML = "version: 1\nsignals:\n  a: 1\n b: 2\n"  # bad indentation on line 4


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    # Nothing listens here: a command that reached Kafka or Redis would fail differently.
    env.update(
        LEADFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{_unused_port()}",
        LEADFLOW_REDIS_URL=f"redis://127.0.0.1:{_unused_port()}/0",
        LEADFLOW_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=_env(**env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


# --- tail roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, topic",
    [
        ("mqls", "acme.out.mqls"),
        ("lead_scored", "acme.out.lead-scored"),
        ("lead-scored", "acme.out.lead-scored"),
        ("dead_letters", "acme.dlq"),
        ("acme.dlq", "acme.dlq"),  # a full name of ours
        ("other.team.topic", "other.team.topic"),  # any dotted name: someone else's topic
    ],
)
def test_tail_topic_accepts_roles_and_full_names(acme_topics, role, topic):
    assert tail_topic(acme_topics, role) == topic


@pytest.mark.parametrize("role", ["mql", "all", "inputs", "from_settings", "MQLS", ""])
def test_tail_topic_rejects_a_bare_unknown_word_listing_the_roles(acme_topics, role):
    with pytest.raises(click.BadParameter) as info:
        tail_topic(acme_topics, role)
    message = info.value.format_message()
    assert f"unknown role {role!r}" in message
    assert "form_submits" in message and "mqls" in message and "dead_letters" in message
    assert "acme.out.mqls" in message  # how to give a full name


def test_tail_unknown_role_is_one_line_before_any_connection():
    started = time.monotonic()
    result = CliRunner().invoke(main, ["tail", "mql", "--timeout", "1"], env=_env())
    assert result.exit_code == 2
    assert time.monotonic() - started < 5
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and "unknown role 'mql'; roles: form_submits" in error_lines[0]


# --- operational failures: one line, no traceback -------------------------------------------------


class _StackUp:
    """DevStack.from_settings's stand-in: the stack "starts" (or raises ``fail``)."""

    fail: Exception | None = None

    @classmethod
    def from_settings(cls, settings, secure=False):
        return cls()

    def up(self):
        if self.fail is not None:
            raise self.fail
        return type("Report", (), {"summary": lambda self: "stack up (test double)"})()


def test_dev_up_whose_topics_cannot_be_created_ends_in_one_line(monkeypatch):
    from leadflow import devstack, worker
    from streams.topics import TopicError

    def refuse(settings):
        raise TopicError("cannot create Kafka topic 'leadflow.dlq': PolicyViolationError (quota)")

    monkeypatch.setattr(devstack, "DevStack", _StackUp)
    monkeypatch.setattr(worker, "prepare", refuse)
    result = CliRunner().invoke(main, ["dev", "up"], env=_env())
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == ["Error: cannot create Kafka topic 'leadflow.dlq': PolicyViolationError (quota)"]


def test_dev_up_on_a_busy_port_ends_in_one_line(monkeypatch):
    from leadflow import devstack
    from leadflow.devstack.exceptions import PortInUseError

    monkeypatch.setattr(devstack, "DevStack", _StackUp)
    monkeypatch.setattr(_StackUp, "fail", PortInUseError("port 19092 is in use by another process"))
    result = CliRunner().invoke(main, ["dev", "up"], env=_env())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.strip() == "Error: port 19092 is in use by another process"


def test_a_bug_still_shows_its_traceback(monkeypatch):
    """Only known failures are shortened: anything else is a bug, and keeps its traceback."""
    from leadflow import devstack

    monkeypatch.setattr(devstack, "DevStack", _StackUp)
    monkeypatch.setattr(_StackUp, "fail", KeyError("surprise"))
    result = CliRunner().invoke(main, ["dev", "up"], env=_env())
    assert isinstance(result.exception, KeyError)


# --- YAML configuration files: one line, the file and the variable named ---------------------------


@pytest.mark.parametrize(
    "variable",
    [
        "LEADFLOW_SCORING_MODEL_PATH",
        "LEADFLOW_ROUTING_CONFIG_PATH",
        "LEADFLOW_SLA_CONFIG_PATH",
    ],
)
def test_worker_with_a_broken_yaml_file_says_so_in_one_line(variable, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN_YAML)
    started = time.monotonic()
    result = _cli("worker", **{variable: str(bad), "LEADFLOW_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 1
    assert time.monotonic() - started < 20, "checked before connecting to anything"
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and "not valid YAML at line 4, column 2" in lines[0]
    assert variable in lines[0], "says which setting points at the file"


def test_worker_with_a_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = _cli("worker", LEADFLOW_SLA_CONFIG_PATH=str(missing), LEADFLOW_DATA_DIR=str(tmp_path / "data"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"cannot read {missing}" in lines[0] and "LEADFLOW_SLA_CONFIG_PATH" in lines[0]


def test_roster_with_broken_yaml_is_one_line(tmp_path):
    bad = tmp_path / "roster.yaml"
    bad.write_text("reps:\n  - {id: a, name: A\n")
    result = _cli("roster", "load", "--dry-run", str(bad))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: roster {bad} is invalid: not valid YAML at line 3")


def test_yaml_error_line_is_one_line_with_the_position():
    import yaml

    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load(BROKEN_YAML)
    assert str(info.value).count("\n") > 2  # PyYAML's own text: several lines with an excerpt
    line = yaml_error_line(info.value)
    assert "\n" not in line
    assert re.fullmatch(r"not valid YAML at line 4, column 2: expected <block end>, but found .+", line)
    assert yaml_error_line(ValueError("plain")) == "not valid YAML: plain"


# --- --version and packaging --------------------------------------------------------------------


def test_version_comes_from_package_metadata():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"leadflow {version('leadflow')}\n"


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    setuptools = next(r for r in project["build-system"]["requires"] if r.startswith("setuptools"))
    minimum = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert minimum and int(minimum.group(1)) >= 77, "PEP 639 license strings need setuptools 77+"
