"""Errors raised by the pure SLA modules (configuration and clock rules)."""

from __future__ import annotations

from agents.domain.config_errors import bounded_problems


class SlaConfigError(ValueError):
    """``config/sla.yaml`` is invalid. ``problems`` lists every defect, each naming the key and
    the bad value, e.g. ``escalation.P1.tiers[0].after: expected a duration such as '90s',
    '10m', '2h' or '5d', got 'soon'``."""

    def __init__(self, problems: list[str], source: str = "sla config") -> None:
        self.problems = bounded_problems(list(problems))  # a bounded message, whatever the input
        self.source = source
        super().__init__(f"invalid {source}: " + "; ".join(self.problems))


class SlaError(ValueError):
    """An event or clock state the SLA rules cannot apply (a wiring bug or a contract change)."""
