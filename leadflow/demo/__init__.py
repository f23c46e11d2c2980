"""`leadflow demo`: the newcomer's run - the whole pipeline on realistic traffic, in the terminal.

What it does, in order:
1. starts the local stack (Kafka + Redis) unless it already runs (``--no-stack``: use the
   configured broker as it is);
2. gives this run its own topic prefix, app id, Redis key prefix and data dir
   (``demo-HHMMSS``), so earlier runs and a ``leadflow run`` never interfere;
3. writes time-compressed copies of the routing and SLA configuration (every SLA, escalation
   and recycling duration divided by ``speed``, default 60: a 10-minute P1 SLA becomes 10 s)
   and points the worker at them; loads the roster into Redis when the routing capability
   is installed;
4. starts one worker (a child process) and waits until its consumer group is ready;
5. publishes simulator traffic at ``rate`` events/s; simulated CRM reps react to the
   assignments they see (first touches, some late, dispositions, some missing) - at the
   ``rep_timing`` pace ("demo": accepted, SQL, converted and rejected leads within the
   first minute at 60x);
6. shows what happens: MQLs, assignments with owner and reason, SLA breaches,
   dispositions, data-quality issues, dead letters, with a live summary (events/s,
   event->MQL and event->assignment latency, speed-to-lead p50/p95 in business time, SLA
   compliance) and the worker's metrics URL.

Ctrl-C (or ``--duration``) stops everything it started: publisher, worker, the stack if it
started it; the run's topics are deleted unless ``--keep-topics``.

Modules: ``options`` (DemoOptions), ``compressed_time`` (the routing and SLA files with business
time divided by ``speed``), ``run`` (stack, per-run settings, roster, worker, clean-up),
``traffic`` (simulator and CRM traffic published, the outputs read), ``state`` (what the run
has seen), ``views`` (the live and the line-by-line terminal output).
"""
