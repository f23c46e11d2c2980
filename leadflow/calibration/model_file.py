"""Writing a calibrated model: a copy of the live model file with a new version, the proposed
threshold and (with ``--refit``) new points; the live file is never written.

The copy is edited line by line so its comments survive; the edited text is then parsed and
compared with the intended document, and if the two differ (a layout the line edits do not
know), the intended document is written with ``yaml.safe_dump`` instead (comments lost, content
right). Either way the result must load with ``agents.scoring.model.load_model``.
"""

from __future__ import annotations

import copy
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.domain.yamlio import load_yaml_text, read_yaml
from agents.scoring.evaluation import INACTIVITY_SIGNAL
from agents.scoring.exceptions import ModelError
from agents.scoring.model import ScoringModel, load_model

FIT_SIGNALS = ("senior_title", "company_size", "icp_industry", "free_email", "competitor_domain")


class ModelWriteError(RuntimeError):
    """The calibrated model cannot be written; one line saying why."""


@dataclass(frozen=True, slots=True)
class ModelChanges:
    version: str
    description: str
    mql_threshold: float | None = None
    points: Mapping[str, float] | None = None  # signal -> new points (fit, behavioural, inactivity)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 2)


def changed_document(live: dict[str, Any], changes: ModelChanges) -> dict[str, Any]:
    """The live model's parsed document with the changes applied (caps keep their size in
    units of the signal's points; thresholds keep their order)."""
    doc = copy.deepcopy(live)
    doc["version"] = changes.version
    doc["description"] = changes.description
    for signal, points in (changes.points or {}).items():
        if signal in doc.get("signals", {}):
            rule = doc["signals"][signal]
            cap_units = rule["cap"] / rule["points"]
            rule["points"], rule["cap"] = _number(points), _number(points * cap_units)
        elif signal in FIT_SIGNALS:
            doc["fit_signals"][signal]["points"] = _number(points)
        elif signal == INACTIVITY_SIGNAL:
            doc["inactivity"]["points"] = _number(points)
        else:
            raise ModelWriteError(f"signal {signal!r} is not in the model")
    if changes.mql_threshold is not None:
        thresholds = doc["thresholds"]
        old, new = float(thresholds["mql"]), float(changes.mql_threshold)
        thresholds["mql"] = _number(new)
        thresholds["fast_track"] = _number(max(float(thresholds["fast_track"]), new))
        if thresholds.get("mql_rearm_at") is not None:  # the same distance below the threshold
            thresholds["mql_rearm_at"] = _number(min(new, float(thresholds["mql_rearm_at"]) + new - old))
    return doc


def _edited_text(text: str, doc: dict[str, Any]) -> str:
    """The live text with the numbers, version and description of ``doc`` put in place."""
    lines = text.splitlines()
    out: list[str] = [
        f"# Calibrated by `leadflow calibrate` ({doc['version']}): points and thresholds changed, the",
        "# comments beside them still describe the model it was copied from.",
    ]
    section = None
    skipping_description = blank_after_description = False
    for line in lines:
        top = re.match(r"^([A-Za-z_]\w*):", line)
        if skipping_description:
            if line.startswith((" ", "\t")) or not line.strip():
                blank_after_description = not line.strip()
                continue
            skipping_description = False
            if blank_after_description:
                out.append("")
        if top:
            section = top.group(1)
            if section == "version":
                out.append(f"version: {_quoted(doc['version'])}")
                continue
            if section == "description":
                wrapped = textwrap.wrap(doc["description"], 90) or [""]
                out.extend(["description: >-", *("  " + w for w in wrapped)])
                skipping_description = True
                continue
        out.append(_edited_line(line, section, doc))
    return "\n".join(out) + "\n"


def _edited_line(line: str, section: str | None, doc: dict[str, Any]) -> str:
    flow = re.match(r"^(\s+)([a-z]\w*):(\s*)\{([^}]*)\}(.*)$", line)
    if flow and section in ("signals", "fit_signals") and flow.group(2) in doc.get(section, {}):
        values = doc[section][flow.group(2)]
        inner = flow.group(4)
        for key in ("points", "cap"):
            if key in values:
                inner = re.sub(rf"\b{key}:\s*-?[\d.]+", f"{key}: {values[key]}", inner)
        return f"{flow.group(1)}{flow.group(2)}:{flow.group(3)}{{{inner}}}{flow.group(5)}"
    scalar = re.match(r"^(\s+)([a-z_]+):(\s*)(-?[\d.]+)(.*)$", line)
    if scalar and section in ("thresholds", "inactivity"):
        key = scalar.group(2)
        if (section, key) in (
            ("thresholds", "mql"),
            ("thresholds", "fast_track"),
            ("thresholds", "mql_rearm_at"),
            ("inactivity", "points"),
        ):
            value = doc[section].get(key)
            if value is not None:
                return f"{scalar.group(1)}{key}:{scalar.group(3)}{value}{scalar.group(5)}"
    return line


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_model(live_path: Path, out_path: Path, changes: ModelChanges, *, overwrite: bool = False) -> ScoringModel:
    """Write the calibrated copy of ``live_path`` to ``out_path`` and load it back."""
    if out_path.resolve() == live_path.resolve():
        raise ModelWriteError(f"{out_path} is the live model file; write the calibrated model to another path")
    if out_path.exists() and not overwrite:
        raise ModelWriteError(f"{out_path} already exists; choose another --out (or --overwrite)")
    live = read_yaml(live_path, ModelError)
    doc = changed_document(live, changes)
    text = _edited_text(live_path.read_text(encoding="utf-8"), doc)
    try:
        same = load_yaml_text(text) == doc
    except Exception:  # noqa: BLE001 - any parse problem means: fall back to a plain dump
        same = False
    if not same:
        header = f"# leadflow scoring model {changes.version} (written by leadflow calibrate)\n"
        text = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    try:
        return load_model(out_path)
    except ModelError as exc:
        out_path.unlink(missing_ok=True)
        raise ModelWriteError(f"the calibrated model does not validate, nothing written: {exc}") from None
