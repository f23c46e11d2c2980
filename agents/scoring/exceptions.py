"""Errors raised by the pure scoring model."""

from __future__ import annotations

from agents.domain.config_errors import bounded_problems


class ScoringError(ValueError):
    """An event or state the scoring rules cannot apply (a wiring bug, not bad input data)."""


class ModelError(ValueError):
    """The scoring-model configuration is invalid.

    ``problems`` lists every defect found, each naming the key and the bad value, e.g.
    ``signals.pricing_page_visit.points: expected a number, got 'abc'``.
    """

    def __init__(self, problems: list[str], source: str = "scoring model") -> None:
        self.problems = bounded_problems(list(problems))  # a bounded message, whatever the input
        self.source = source
        super().__init__(f"invalid {source}: " + "; ".join(self.problems))


class ShadowModelError(ModelError):
    """The candidate model (LEADFLOW_SHADOW_MODEL_PATH) is invalid: the same checks as the live one."""
