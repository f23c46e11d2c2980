"""What `leadflow demo` runs with (the command's options, and two for development)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoOptions:
    rate: float = 20.0  # input events per second
    seed: int | None = None  # None: random (printed, so a run can be repeated)
    speed: float = 60.0  # business time runs this many times faster (SLAs, reps' delays)
    # How fast simulated reps move a lead on after the first touch (business minutes, then
    # divided by speed): "demo" - qualified on the first call, SQL and opportunity within the
    # business hour, so a minute of traffic at 60x shows every outcome; "realistic" - hours to
    # days (leadflow.simulator.crm.REP_TIMINGS).
    rep_timing: str = "demo"
    duration: float | None = None  # seconds; None = until Ctrl-C
    mix: dict[str, float] | None = None
    bad_share: float = 0.003  # deliberately bad events (dead letters) among the traffic
    manage_stack: bool = True
    keep_stack: bool = False
    keep_topics: bool = False
    plain: bool = False  # line-by-line output instead of the live view (auto when not a TTY)
    feed_lines: int = 14
    # Development: run the worker as another module (e.g. "leadflow.bench.worker" with LEADFLOW_BENCH_*
    # in worker_env to try a capability before it is wired into streams.app).
    worker_module: str = "leadflow.cli"
    worker_env: dict[str, str] = field(default_factory=dict)
