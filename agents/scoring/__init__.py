"""Lead scoring: the pure model (fit gate, decaying engagement, MQL crossings, handoff).

Plain Python - no Faust, Kafka, Redis or Prometheus imports (a unit test enforces it); the
Faust wiring in ``agents/scoring/agent.py`` moves state and outputs between topics and tables.

Public API:
- ``load_model(path) -> ScoringModel`` (``ModelError`` names the bad key and value)
- ``apply_event``, ``review``, ``next_review_at_ms``, ``reset_score`` (rules.py)
- ``apply_visitor_event``, ``link_visitor`` (visitors.py)
- ``LeadState``, ``VisitorState`` (state.py); outputs ``ScoredOutput``, ``QualifiedOutput``,
  ``VisitorLinked`` (outputs.py); ``evaluate`` for a score at any time (evaluation.py)

Module map: model/model_checks (configuration), state, intake (event -> state), fit (ICP
gate and grade), attribution (source taxonomy), decay (half-life maths), evaluation (score
and breakdown), handoff (rep context), lead_facts (the MQL's structured facts and routing's
priority on them), outputs (Avro records), rules (state machine),
visitors (anonymous buffering).
"""

from agents.scoring.evaluation import Evaluation, evaluate
from agents.scoring.exceptions import ModelError, ScoringError
from agents.scoring.model import ScoringModel, load_model, parse_model
from agents.scoring.outputs import BreakdownItem, Output, QualifiedOutput, ScoredOutput, VisitorLinked
from agents.scoring.rules import (
    DEFAULT_DEDUP_WINDOW,
    apply_event,
    apply_visitor_event,
    link_visitor,
    next_review_at_ms,
    reset_score,
    review,
)
from agents.scoring.state import LeadState, VisitorState

__all__ = [
    "BreakdownItem",
    "DEFAULT_DEDUP_WINDOW",
    "Evaluation",
    "LeadState",
    "ModelError",
    "Output",
    "QualifiedOutput",
    "ScoredOutput",
    "ScoringError",
    "ScoringModel",
    "VisitorLinked",
    "VisitorState",
    "apply_event",
    "apply_visitor_event",
    "evaluate",
    "link_visitor",
    "load_model",
    "next_review_at_ms",
    "parse_model",
    "reset_score",
    "review",
]
