"""Capture: decoded publisher records -> validated ``LeadEvent``s (pure rules, no I/O)."""

from agents.capture.exceptions import REASON_CODES, Rejected
from agents.capture.rules import CaptureLimits, derived_event_id, to_lead_event

__all__ = ["REASON_CODES", "CaptureLimits", "Rejected", "derived_event_id", "to_lead_event"]
