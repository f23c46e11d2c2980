"""Bad configuration fails at start, naming the key (issue 12, item 3).

One table: each row builds a bad setting or configuration file, runs the loader a worker runs
at start, and lists what the error must say (the key, the file, the allowed range...). Every
message is also checked to be one bounded line. Rows marked CLI go through `leadflow worker`
(no Kafka or Redis needed: each fails before connecting)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from agents.domain.config_errors import MAX_PROBLEMS, describe_error
from agents.domain.yamlio import load_yaml_text, read_yaml
from agents.routing.config import load_routing_config
from agents.routing.exceptions import RosterError, RoutingConfigError
from agents.routing.roster import parse_roster
from agents.scoring.exceptions import ModelError
from agents.scoring.model import load_model
from agents.sla.config import load_sla_config
from agents.sla.exceptions import SlaConfigError
from streams.settings import REPO_ROOT, Settings, SettingsError, _allowed_range, load_settings, unknown_variables
from streams.startup_checks import StartupError, check_data_dir
from streams.topics import creation_errors
from tests.unit.leadflow.test_cli_errors import _cli

CONFIG_DIR = REPO_ROOT / "config"
FILES = {"scoring": "scoring-model.yaml", "routing": "routing.yaml", "sla": "sla.yaml", "roster": "roster.yaml"}
ERRORS = (SettingsError, StartupError, ModelError, RoutingConfigError, SlaConfigError, RosterError)
MAX_MESSAGE_CHARS = 2_000
# ~10^9 nodes once expanded, in a few hundred bytes: the fuzz run's 2.3 GB error message.
ALIAS_BOMB = "bomb:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


def load(kind: str, path: Path) -> Any:
    """The loader a worker (or `roster load`) runs for that file."""
    if kind == "scoring":
        return load_model(path)
    if kind == "routing":
        return load_routing_config(path)
    if kind == "sla":
        return load_sla_config(path)
    routing = load_routing_config(CONFIG_DIR / FILES["routing"])
    return parse_roster(read_yaml(path, RosterError), config=routing, source=str(path))


def with_value(kind: str, dotted: str, value: Any) -> Callable[[Path], Path]:
    """The shipped file with one key (``a.b.0.c``) set to ``value``."""

    def build(tmp: Path) -> Path:
        raw = yaml.safe_load((CONFIG_DIR / FILES[kind]).read_text())
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value
        path = tmp / FILES[kind]
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return build


def with_text(kind: str, extra: str = "", replace: tuple[str, str] | None = None) -> Callable[[Path], Path]:
    """The shipped file's text with ``extra`` appended or one passage replaced."""

    def build(tmp: Path) -> Path:
        text = (CONFIG_DIR / FILES[kind]).read_text()
        if replace:
            assert replace[0] in text
            text = text.replace(replace[0], replace[1], 1)
        path = tmp / FILES[kind]
        path.write_text(text + "\n" + extra)
        return path

    return build


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path, pytest.MonkeyPatch], Any]  # raises the error under test
    expect: tuple[str, ...]  # in the message; "{path}" = the file the row wrote


def file_case(id: str, kind: str, build: Callable[[Path], Path], *expect: str) -> Case:
    return Case(id, lambda tmp, _: load(kind, build(tmp)), ("{path}", *expect))


def settings_case(id: str, env: dict[str, str], *expect: str) -> Case:
    def run(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return Case(id, run, expect)


def sla_case(id: str, dotted: str, value: Any, *expect: str) -> Case:
    return file_case(id, "sla", with_value("sla", dotted, value), *expect)


NAN, INF, FINITE = float("nan"), float("inf"), "expected a finite number (not NaN or infinity)"
LADDER = [{"after": "2h", "role": "rep"}, {"after": "4h", "role": "vp_sales"}]

CASES = [
    # 1. NaN and infinity, in settings and every YAML file, named by key.
    *[
        file_case(
            f"{kind}-{value}-{key}", kind, with_value(kind, key, value), f"{shown or key}: {what}", f"got {value}"
        )
        for kind, key, value, shown, what in (
            ("scoring", "thresholds.mql", NAN, None, FINITE),
            ("scoring", "decay.half_life_days", INF, None, FINITE),
            ("scoring", "signals.blog_visit.points", -INF, None, FINITE),
            ("routing", "priorities.P1.first_touch_sla_minutes", NAN, None, FINITE),
            ("routing", "segment_sla_overrides.enterprise.P2", INF, None, FINITE),
            ("sla", "sweep.bucket_seconds", NAN, None, "expected an integer"),
            ("roster", "rules.0.match.min_score", NAN, "rules[0] (name 'na-enterprise').match.min_score", FINITE),
        )
    ],
    settings_case("settings-nan", {"LEADFLOW_SWEEP_INTERVAL_S": "nan"}, "LEADFLOW_SWEEP_INTERVAL_S", "finite number"),
    settings_case(
        "settings-inf",
        {"LEADFLOW_BROKER_SESSION_TIMEOUT_S": "inf"},
        "LEADFLOW_BROKER_SESSION_TIMEOUT_S",
        "finite number",
    ),
    # 2. Topic names Kafka would refuse.
    settings_case(
        "topic-prefix-chars",
        {"LEADFLOW_TOPIC_PREFIX": "bad prefix!"},
        "LEADFLOW_TOPIC_PREFIX",
        "'bad prefix!'",
        "only letters, digits, '.', '_' and '-'",
    ),
    settings_case(
        "topic-prefix-length",
        {"LEADFLOW_TOPIC_PREFIX": "p" * 230},
        "LEADFLOW_TOPIC_PREFIX is too long",
        "Kafka allows 249",
    ),
    settings_case("app-id-chars", {"LEADFLOW_APP_ID": "lead/flow"}, "LEADFLOW_APP_ID", "only letters"),
    # 3. SLA roles and contacts that name nobody.
    sla_case(
        "sla-role-without-contact",
        "escalation.P1.tiers",
        LADDER,
        "escalation.P1.tiers[1].role: role 'vp_sales' names nobody",
        "add contacts.vp_sales",
    ),
    sla_case(
        "sla-breach-role-without-contact",
        "first_touch.breach_role",
        "duty_desk",
        "first_touch.breach_role: role 'duty_desk' names nobody",
    ),
    sla_case("sla-empty-contact", "contacts.director", {}, "contacts.director: names nobody"),
    sla_case(
        "sla-contact-by-team-only",
        "contacts.head_of_sales",
        {"by_team": {"na-sales": "hos-hana"}},
        "escalation.P1.tiers[2].role: role 'head_of_sales' names nobody for leads of teams other than",
        "add contacts.head_of_sales.default",
    ),
    sla_case(
        "sla-blank-contact-id",
        "contacts.head_of_sales.default",
        " ",
        "contacts.head_of_sales.default: expected a contact id",
    ),
    # 4. One YAML reader: duplicate keys, alias bombs, sizes; the file named every time.
    *[
        file_case(
            f"{kind}-duplicate-key",
            kind,
            with_text(kind, f"{key}: again\n"),
            f"duplicate key '{key}'",
            "not valid YAML at line",
        )
        for kind, key in (("scoring", "version"), ("routing", "version"), ("sla", "version"), ("roster", "label"))
    ],
    file_case(
        "sla-duplicate-nested-key",
        "sla",
        with_text("sla", replace=("  bucket_seconds: 2\n", "  bucket_seconds: 2\n  bucket_seconds: 5\n")),
        "duplicate key 'bucket_seconds'",
    ),
    *[
        file_case(f"{kind}-alias-bomb", kind, with_text(kind, ALIAS_BOMB), "more than 1,000,000 nodes", "alias bomb")
        for kind in FILES
    ],
    file_case("recursive-alias", "routing", with_text("routing", "loop: &loop [*loop]\n"), "recursive alias"),
    file_case("deep-nesting", "sla", with_text("sla", "deep: " + "[" * 50_000 + "]" * 50_000), "nested too deeply"),
    file_case("too-large", "sla", with_text("sla", "#" * (9 * 1024 * 1024)), "larger than 8,388,608 bytes"),
    file_case("huge-integer", "scoring", with_text("scoring", "huge: " + "9" * 5000 + "\n"), "not valid YAML"),
    # 7. Values echoed in messages are bounded.
    file_case(
        "long-value-echo",
        "routing",
        with_value("routing", "nurture_owner", "n" * 100_000),
        "nurture_owner: string should have at most 128 characters",
        "...",
    ),
    # 8. The data directory, named as such.
    Case(
        "data-dir-under-a-file",
        lambda tmp, _: check_data_dir(load_settings(data_dir=_file(tmp) / "data")),
        ("LEADFLOW_DATA_DIR=", "cannot create the data directory", "Not a directory"),
    ),
    Case(
        "data-dir-not-writable",
        lambda tmp, _: check_data_dir(load_settings(data_dir="/sys")),
        ("LEADFLOW_DATA_DIR=/sys: the data directory is not writable",),
    ),
    # 9. Bounds, with the allowed range.
    settings_case(
        "redis-key-prefix-empty", {"LEADFLOW_REDIS_KEY_PREFIX": ""}, "LEADFLOW_REDIS_KEY_PREFIX", "at least 1 character"
    ),
    settings_case(
        "sweep-bucket-1e20", {"LEADFLOW_SWEEP_BUCKET_S": "1e20"}, "LEADFLOW_SWEEP_BUCKET_S", "allowed: >= 1 and <= 3600"
    ),
    settings_case(
        "sweep-bucket-huge-int",
        {"LEADFLOW_SWEEP_BUCKET_S": "1" + "0" * 20},
        "LEADFLOW_SWEEP_BUCKET_S",
        "less than or equal to 3600",
        "allowed: >= 1 and <= 3600",
    ),
    settings_case(
        "buffer-absurd",
        {"LEADFLOW_STREAM_BUFFER_MAXSIZE": "1000000000"},
        "LEADFLOW_STREAM_BUFFER_MAXSIZE",
        "allowed: >= 1 and <= 1000000",
    ),
    settings_case("linger-negative", {"LEADFLOW_PRODUCER_LINGER_MS": "-1"}, "LEADFLOW_PRODUCER_LINGER_MS", ">= 0"),
    settings_case("event-loop-unknown", {"LEADFLOW_EVENT_LOOP": "trio"}, "LEADFLOW_EVENT_LOOP", "uvloop", "asyncio"),
    # 10. Keys that were removed (lead_qualified v3: routing is the one owner of priority) are
    # refused by name with what to do, not silently ignored or reported as a bare unknown key.
    file_case(
        "scoring-removed-priority-hints",
        "scoring",
        with_text("scoring", "priority_hints:\n  default: P2\n"),
        "priority_hints: removed, delete it",
        "config/routing.yaml",
    ),
    file_case(
        "routing-removed-use-priority-hint",
        "routing",
        with_value("routing", "default_lead_type", {"name": "other", "priority": "P2", "use_priority_hint": True}),
        "default_lead_type.use_priority_hint: removed, delete it",
        "routing alone decides the priority",
    ),
]


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("x")
    return path


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_configuration_is_refused_naming_it(case: Case, tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ERRORS) as info:
        case.run(tmp_path, monkeypatch)
    message = str(info.value)
    for expected in case.expect:
        if expected == "{path}":
            assert str(tmp_path) in message, message[:MAX_MESSAGE_CHARS]
        else:
            assert expected in message, message[:MAX_MESSAGE_CHARS]
    assert len(message) < MAX_MESSAGE_CHARS and "\n" not in message, message[:MAX_MESSAGE_CHARS]


@pytest.mark.parametrize("kind", FILES)
def test_the_shipped_files_pass_the_same_checks(kind):
    assert load(kind, CONFIG_DIR / FILES[kind])


def test_yaml_merge_keys_are_not_duplicates():
    assert load_yaml_text("base: &b {x: 1, y: 1}\nuse: {<<: *b, x: 2}\n") == {
        "base": {"x": 1, "y": 1},
        "use": {"x": 2, "y": 1},
    }


@pytest.mark.parametrize("role", ["owner", "rep", "manager"])
def test_roles_that_need_no_contact(role, tmp_path):
    """owner/rep are the lead's owner; manager falls back on the owner's roster manager."""
    build = with_value("sla", "escalation.P1.tiers", [{"after": "2h", "role": role}])
    assert load_sla_config(build(tmp_path)).escalation_for("P1").tiers[0].role == role


NUMERIC_SETTINGS = [name for name, field in Settings.model_fields.items() if field.annotation in (int, float)]


@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_every_numeric_setting_has_a_range(name):
    """A new numeric setting gets bounds too: 1e20 is refused with the range, not accepted."""
    bounds = _allowed_range(name) or ""
    assert ">" in bounds and "<" in bounds, f"LEADFLOW_{name.upper()}: no lower and upper bound"
    with pytest.raises(SettingsError, match=f"LEADFLOW_{name.upper()}.*allowed: "):
        load_settings(**{name: 10**20})


# --- 6. unknown LEADFLOW_* variables: a warning with the closest setting ------------------------------


@pytest.mark.parametrize(
    "environ, warnings",
    [
        (
            {"LEADFLOW_TOPIC_PARTITONS": "8"},
            [
                "LEADFLOW_TOPIC_PARTITONS is not a leadflow setting and is ignored; did you mean LEADFLOW_TOPIC_PARTITIONS?"
            ],
        ),
        (
            {"leadflow_redis_key_prefx": "x"},
            [
                "leadflow_redis_key_prefx is not a leadflow setting and is ignored; "
                "did you mean LEADFLOW_REDIS_KEY_PREFIX?"
            ],
        ),
        ({"LEADFLOW_ZZZ": "1"}, ["LEADFLOW_ZZZ is not a leadflow setting and is ignored"]),
        # Settings (any case), leadflow's own test/bench variables and other prefixes: nothing.
        (
            {
                "LEADFLOW_TOPIC_PARTITIONS": "8",
                "leadflow_app_id": "a",
                "LEADFLOW_TEST_KAFKA_PORT": "1",
                "LEADFLOW_BENCH_FAUST": "1",
                "HOME": "/root",
            },
            [],
        ),
    ],
)
def test_unknown_variables_warn_with_a_suggestion(environ, warnings):
    assert unknown_variables(environ) == warnings


def test_the_cli_warns_about_a_misspelt_setting_and_goes_on():
    result = _cli("topics", "list", LEADFLOW_TOPIC_PARTITONS="8")
    assert result.returncode == 0 and "leadflow.out.mqls" in result.stdout
    assert "did you mean LEADFLOW_TOPIC_PARTITIONS?" in result.stderr


# --- 2. a topic the broker refuses (the CreateTopics response) --------------------------------------


def test_creation_errors_ignore_topics_that_already_exist():
    response = SimpleNamespace(
        topic_errors=[
            ("p.ok", 0, None),
            ("p.raced", 36, "Topic 'p.raced' already exists."),
            ("p.bad", 38, "Replication factor: 3 larger than\navailable brokers: 1."),
            ("p.v0", 37),
        ]
    )
    assert creation_errors(response) == [
        "'p.bad': InvalidReplicationFactorError (Replication factor: 3 larger than available brokers: 1.)",
        "'p.v0': InvalidPartitionsError",
    ]


# --- 7. bounded messages ---------------------------------------------------------------------------------


def test_messages_are_bounded_whatever_the_input():
    huge = {
        "type": "string_type",
        "loc": ("a", 0),
        "msg": "Input should be a valid string",
        "input": ["x" * 10**6] * 10**4,
    }
    assert len(describe_error(huge)) < 300
    error = ModelError([f"signals.s{i}: {'x' * 10_000}" for i in range(10_000)], source="m.yaml")
    assert len(error.problems) == MAX_PROBLEMS + 1 and error.problems[-1] == "... and 9950 more problems"
    assert len(str(error)) < 30_000


# --- through the real CLI: one `Error:` line, before any connection -----------------------------------


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"LEADFLOW_TOPIC_PREFIX": "bad prefix!"}, "LEADFLOW_TOPIC_PREFIX (topic_prefix) = 'bad prefix!'"),
        ({"LEADFLOW_DATA_DIR": "{file}/data"}, "LEADFLOW_DATA_DIR="),
        ({"LEADFLOW_SCORING_MODEL_PATH": "{nan_model}"}, "thresholds.mql: expected a finite number"),
    ],
)
def test_worker_stops_in_one_line(env, expected, tmp_path):
    nan_model = with_value("scoring", "thresholds.mql", float("nan"))(tmp_path)
    env = {k: v.format(file=_file(tmp_path), nan_model=nan_model) for k, v in env.items()}
    result = _cli("worker", **{"LEADFLOW_DATA_DIR": str(tmp_path / "data"), **env})
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.stderr
