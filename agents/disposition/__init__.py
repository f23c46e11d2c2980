"""Dispositions: what sales said about a lead (accepted, rejected with a reason, converted,
closed) and where the lead goes next (recycled to nurture with checkpoints, competitive
recapture, permanent exclusion, an opportunity on the existing account).

- ``rules.py`` (pure): the status/reason -> outcome table, checkpoints, data-quality issues,
  record builders and account matching. The scoring rules apply its effects to lead state.
- ``agent.py`` (Faust wiring): conversions, matched to the existing account through a Redis
  registry shared by all workers.
"""
