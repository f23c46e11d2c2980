"""`make chaos`: the same seeded workload under injected faults, compared with a clean run.

- ``workload``: the pinned, time-compressed simulator workload and its pausable publisher;
- ``compare``: what a run produced (MQLs, assignments, breaches, final lead states) and how a
  faulty run differs from the baseline (pure, unit-tested);
- ``runner``: the scenarios (worker kill -9, broker and Redis outages, standby replicas), the
  consumer-lag probe, recovery times and the orphan-process check.

Entry point: ``scripts/chaos.py``; results and method: ``docs/reliability.md``.
"""
