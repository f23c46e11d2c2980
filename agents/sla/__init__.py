"""Speed-to-lead SLAs: first-touch clocks as windowed timeouts, escalation tiers, breaches.

- ``config.py``: ``config/sla.yaml`` loaded and validated (errors name key and value).
- ``rules.py`` (pure): the per-lead clock state machine ``apply(state, event, config, now_ms)
  -> (state, outputs)`` - open on assignment, stop on the first CRM touch, breach each tier
  once when a sweep finds it due - and ``next_due_ms`` for the due-time index.
- ``agent.py`` (Faust wiring): one agent owns the clock table and the bucketed due index; a
  wall-clock timer asks each partition's agent to close the buckets that have ended.
"""
