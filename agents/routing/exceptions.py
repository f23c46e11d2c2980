"""Errors raised by the pure routing modules (configuration, roster, rules)."""

from __future__ import annotations

from agents.domain.config_errors import bounded_problems


class _ProblemsError(ValueError):
    """A validation error that lists every defect found, each naming its entry and value."""

    what = "input"

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = bounded_problems(list(problems))  # a bounded message, whatever the input
        self.source = source or self.what
        super().__init__(f"invalid {self.source}: " + "; ".join(self.problems))


class RoutingConfigError(_ProblemsError):
    """``config/routing.yaml`` is invalid, e.g. ``priorities.P1.first_touch_sla_minutes:
    expected a number, got 'soon'``."""

    what = "routing config"


class RosterError(_ProblemsError):
    """The roster is invalid. Each problem names the entry, e.g.
    ``reps[2] (id 'sdr-sam').capacity: must be greater than 0, got 0`` or
    ``rules[0] (name 'na-enterprise').default_owner: 'ae-old' is inactive``."""

    what = "roster"


class RoutingError(ValueError):
    """An MQL record the rules cannot route (a wiring bug or a contract change)."""
