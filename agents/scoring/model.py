"""The scoring model: a versioned YAML file (``config/scoring-model.yaml``) validated at load.

Everything a RevOps lead may want to tune lives in the file, not in code: thresholds,
half-life, inactivity penalty, fit and behavioural points with their caps, the mapping of
input events to signals, ICP rules and grades, seniority keywords, free / competitor /
disposable domain lists, the source taxonomy, handoff phrases and opener templates.

Validation happens in two passes so every message names the key and the bad value:
1. pydantic (strict types, ``extra='forbid'``) for shape and types;
2. ``model_checks.semantic_problems`` for rules across keys (caps share the sign of their points,
   referenced signals and channels exist, thresholds are ordered, templates only use
   known placeholders...).

``ScoringModel`` (``model_shape.py``) is frozen; lookups derived from it (normalized sets, compiled rules) are
cached properties computed once per loaded model.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from agents.domain.config_errors import describe_error, removed_key_problems
from agents.domain.yamlio import read_yaml
from agents.scoring.exceptions import ModelError
from agents.scoring.model_checks import semantic_problems

# The shape (pass 1) lives below this module and model_checks, which both read it; re-exported here.
from agents.scoring.model_shape import DAY_MS, GRADES, ScoringModel  # noqa: F401

# Keys that existed once: a model file still setting one fails at load saying what to do instead.
REMOVED_KEYS = {
    "priority_hints": "the priority is routing's (config/routing.yaml: lead_types, default_lead_type, "
    "fast_track_priority, fit_bump); scoring's priority_hint is derived from it (lead_qualified v3)",
}

# --- Loading --------------------------------------------------------------------------


def load_model(path: str | Path) -> ScoringModel:
    """Read and validate a scoring model file; raises ModelError naming every bad key/value."""
    return parse_model(read_yaml(path, ModelError), source=str(path))


def parse_model(raw: object, *, source: str = "scoring model") -> ScoringModel:
    """Validate an already-parsed mapping (what the YAML file holds)."""
    if not isinstance(raw, dict):
        raise ModelError([f"expected a mapping at the top level, got {type(raw).__name__}"], source)
    removed = removed_key_problems(raw, REMOVED_KEYS)
    if removed:
        raise ModelError(removed, source)
    try:
        model = ScoringModel.model_validate(raw)
    except ValidationError as exc:
        raise ModelError([describe_error(err) for err in exc.errors()], source) from None
    problems = semantic_problems(model)
    if problems:
        raise ModelError(problems, source)
    return model
