"""``leadflow bench --profile``: the worker started under pyinstrument or cProfile, and the
profiler's report rendered next to the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadflow.bench.options import BenchOptions
from leadflow.simulator.harness import HarnessError


def worker_profiler(opts: BenchOptions, run_id: str) -> tuple[list[str], Path | None]:
    """The interpreter arguments that run the worker under ``opts.profile``, and the file the
    profiler will write (none without a profiler)."""
    wrapper: list[str] = []
    profile_out = None
    if opts.profile == "pyinstrument":
        import importlib.util

        if importlib.util.find_spec("pyinstrument") is None:
            raise HarnessError(
                "--profile pyinstrument needs pyinstrument (`pip install pyinstrument`, the "
                "'bench' extra); --profile cprofile needs nothing"
            )
        profile_out = opts.results_dir / f"{run_id}.worker.pyisession"
        # 5 ms sampling: a few minutes of worker stay a few MB (the default 1 ms makes ~1 MB/s).
        wrapper = ["-m", "pyinstrument", "-i", "0.005", "-r", "pyisession", "-o", str(profile_out)]
    elif opts.profile == "cprofile":
        profile_out = opts.results_dir / f"{run_id}.worker.prof"
        wrapper = ["-m", "cProfile", "-o", str(profile_out)]
    elif opts.profile:
        raise HarnessError(f"unknown profiler {opts.profile!r}; use pyinstrument or cprofile")
    return wrapper, profile_out


def render_profile(kind: str | None, path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"error": f"the profiler wrote no {path.name} (did the worker exit cleanly?)"}
    if kind == "pyinstrument":
        from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
        from pyinstrument.session import Session

        session = Session.load(str(path))
        text = ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False).render(session)
        text_path = path.with_suffix(".txt")
        text_path.write_text(text)
        path.with_suffix(".html").write_text(HTMLRenderer().render(session))
        return {"session": str(path), "text": str(text_path), "html": str(path.with_suffix(".html"))}
    import pstats

    text_path = path.with_suffix(".txt")
    with text_path.open("w") as fh:
        stats = pstats.Stats(str(path), stream=fh)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
    return {"pstats": str(path), "text": str(text_path)}
