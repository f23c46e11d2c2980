"""The routing and SLA files in compressed business time: every SLA, escalation and recycling
duration divided by the demo's ``speed`` (also used by `make chaos`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agents.domain.durations import format_seconds, is_duration, parse_duration_ms
from agents.domain.yamlio import read_yaml
from leadflow.simulator.harness import HarnessError
from streams.settings import Settings

_UNSCALED_KEYS = frozenset({"clock_skew_tolerance"})  # real clock skew, not business time


def compress_sla_config(raw: Any, speed: float) -> Any:
    """Every duration string ('2h', '30d', ...) divided by ``speed``; sweep buckets of 1 s."""

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if key not in _UNSCALED_KEYS and is_duration(node):
            return format_seconds(max(parse_duration_ms(node) / speed, 1))
        return node

    out = walk(raw)
    if isinstance(out, dict):
        out.setdefault("sweep", {})
        if isinstance(out["sweep"], dict):
            out["sweep"]["bucket_seconds"] = 1
        out["version"] = f"{out.get('version', 'sla')}-demo-x{speed:g}"
    return out


def compress_routing_config(raw: Any, speed: float) -> Any:
    """First-touch SLA minutes (per priority and per segment override) divided by ``speed``."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    out["priorities"] = {
        p: {**rule, "first_touch_sla_minutes": round(float(rule["first_touch_sla_minutes"]) / speed, 4)}
        if isinstance(rule, dict) and "first_touch_sla_minutes" in rule
        else rule
        for p, rule in (raw.get("priorities") or {}).items()
    }
    if isinstance(raw.get("segment_sla_overrides"), dict):
        out["segment_sla_overrides"] = {
            seg: {p: round(float(m) / speed, 4) for p, m in (prios or {}).items()}
            for seg, prios in raw["segment_sla_overrides"].items()
        }
    out["version"] = f"{raw.get('version', 'routing')}-demo-x{speed:g}"
    return out


def write_compressed_configs(base: Settings, run_dir: Path, speed: float) -> dict[str, Path]:
    """Compressed copies of the routing and SLA files that exist; {setting name: path}."""
    written: dict[str, Path] = {}
    for setting, compress in (
        ("routing_config_path", compress_routing_config),
        ("sla_config_path", compress_sla_config),
    ):
        source = Path(getattr(base, setting))
        if not source.exists():
            continue
        # The configuration files' own reader: a duplicate key must not vanish in the copy.
        variable = f"LEADFLOW_{setting.upper()}"

        def unreadable(problems: list[str], path: str, variable: str = variable) -> HarnessError:
            return HarnessError(f"cannot read {path} ({variable}): {problems[0]}")

        raw = read_yaml(source, unreadable)
        target = run_dir / f"{source.stem}.demo-x{speed:g}.yaml"
        header = f"# {source.name} with every SLA duration divided by {speed:g} (leadflow demo)\n"
        target.write_text(header + yaml.safe_dump(compress(raw, speed), sort_keys=False), encoding="utf-8")
        written[setting] = target
    return written
