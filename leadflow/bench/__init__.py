"""`leadflow bench`: the full pipeline against the ceiling of any Python pipeline here.

In one run, on the same broker, with the same messages (the same bytes and keys, N of them):

(a) **pass-through**: a minimal aiokafka loop - ``getmany`` a batch, ``send`` every record to
    another topic, wait for the acks, commit - from a pre-filled topic. No decoding, no state:
    the ceiling for a Python consume->produce pipeline on this machine and broker. Run
    ``passthrough_runs`` times (fresh consumer group each), median reported.
(b) **pipeline, throughput**: the three input topics pre-filled with the same N simulator
    events, then one ``leadflow worker`` (a child process, its own topic prefix and app id) is
    started; throughput = N / (last ``lead_scored`` output - first record the worker wrote),
    the worker being done when its committed offsets reach the end of every input and internal
    topic.
(c) **pipeline, latency**: the same worker, fed live at a fraction of (b)'s throughput for a
    few seconds; p50/p95/p99 of input broker timestamp -> ``lead_scored`` / MQL / assignment
    (when a routing agent runs) broker timestamp.

Also reported: worker peak RSS (VmHWM), CPU seconds per phase (worker, Kafka, this process,
everything else on the machine) and events per worker CPU-second, which is much less
sensitive to other load on a shared machine than events per wall second.

``profile="pyinstrument"|"cprofile"`` runs the worker under that profiler and writes its
report next to the results (``<run>.worker-profile.txt`` / ``.prof``).

Modules: ``options`` (BenchOptions, the goal, the run's own settings), ``run`` (``run_bench``:
the stack, the same messages for every measurement, one run per security protocol), ``floors``
((a) raw aiokafka and (a2) Faust no-op pass-through), ``pipeline`` ((b) and (c): the leadflow
worker), ``profiling`` (the worker under a profiler), ``topic_io`` (pre-fill, drain, read back,
delete the run's topics), ``results`` (figures, ratios, the summary table's rows), ``patches``
(``PATCHES``, prototype code patches) and ``worker`` (the processes the bench starts:
``python -m leadflow.bench.worker ...``).
"""
