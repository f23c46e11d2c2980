"""Rendering chaos results: one line per scenario, a summary line, the markdown table, and the
results block of docs/reliability.md (between markers, so the prose around it stays)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from leadflow.chaos.runner import ScenarioReport

BEGIN, END = "<!-- chaos-results:begin -->", "<!-- chaos-results:end -->"


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def _recover(report: ScenarioReport) -> str:
    if not report.recover_s:
        return "-"
    if any(r is None for r in report.recover_s):
        return "never"
    return _secs(max(r for r in report.recover_s if r is not None)) + (
        f" (max of {len(report.recover_s)})" if len(report.recover_s) > 1 else ""
    )


def verdict(report: ScenarioReport) -> str:
    failures = report.failures()
    return "OK" if not failures else "FAIL " + ", ".join(f"{k}={v}" for k, v in failures.items())


def line(report: ScenarioReport) -> str:
    d = report.divergence
    parts = [f"{report.name:<11} {report.title}: published {report.published}"]
    if report.error:
        parts.append(f"error {report.error}")
    if d is not None:
        parts += [
            f"MQLs lost {d.mql_lost} extra {d.mql_extra} (ids lost {d.mql_ids_lost} extra {d.mql_ids_extra}, "
            f"several ids {d.mql_multi_id}; upgrades lost {d.upgrades_lost} extra {d.upgrades_extra})",
            f"assignments missing {d.assign_missing} extra {d.assign_extra} duplicated {d.assign_duplicated} "
            f"(owner differs {d.owner_changed})",
            f"final stage diverged {d.stage_diverged}, score {d.score_diverged}, leads missing {d.leads_missing}",
            f"breaches duplicated {d.breach_duplicated} (missing {d.breach_missing}, extra {d.breach_extra})",
        ]
    else:
        parts.append(f"outputs {report.counts}")
    parts.append(f"recover {_recover(report)}, drained {_secs(report.drained_s)} after the last event")
    if report.cpu_outage_pct is not None:
        parts.append(f"worker CPU in outage {report.cpu_outage_pct:.1f}%")
    parts += report.notes
    parts.append(f"orphans {len(report.orphans)} -> {verdict(report)}")
    return " | ".join(parts)


def summary_line(reports: list[ScenarioReport], meta: dict[str, Any]) -> str:
    compared = [r for r in reports if r.name != "baseline"]
    failed = [r for r in reports if r.failures()]
    head = (
        f"chaos: {len(compared)} scenarios vs baseline, {meta['events']} events (seed {meta['seed']}, "
        f"workload {meta['fingerprint']}, {meta['rate']:.0f} events/s), {meta['wall_min']:.1f} min: "
    )
    if not failed:
        return head + "all OK"
    return head + f"{len(failed)} FAILED (" + "; ".join(f"{r.name}: {verdict(r)[5:]}" for r in failed) + ")"


def markdown_table(reports: list[ScenarioReport]) -> str:
    rows = [
        "| scenario | fault | MQLs lost / extra | assignments missing / duplicated (owner differs) | "
        "final stage / score diverged | breaches duplicated (missing / extra) | recovery | drained | "
        "orphans | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        d = r.divergence
        cpu = f"; worker CPU {r.cpu_outage_pct:.1f}% of a core" if r.cpu_outage_pct is not None else ""
        if d is None:
            cells = ["-", "-", "-", "-"] if r.name == "baseline" else ["?"] * 4
        else:
            cells = [
                f"{d.mql_lost} / {d.mql_extra}",
                f"{d.assign_missing} / {d.assign_duplicated} ({d.owner_changed})",
                f"{d.stage_diverged} / {d.score_diverged}",
                f"{d.breach_duplicated} ({d.breach_missing} / {d.breach_extra})",
            ]
        rows.append(
            f"| {r.name} | {r.title}{cpu} | "
            + " | ".join(cells)
            + f" | {_recover(r)} | {_secs(r.drained_s)} | {len(r.orphans)} | {verdict(r)} |"
        )
    return "\n".join(rows)


def results_block(reports: list[ScenarioReport], meta: dict[str, Any]) -> str:
    base = next((r for r in reports if r.name == "baseline"), None)
    counts = ", ".join(f"{k} {v}" for k, v in base.counts.items()) if base else "-"
    return (
        f"{BEGIN}\nLatest run: {meta['when']}, code state `{meta['code_state']}`; {meta['events']} events "
        f"(seed {meta['seed']}, workload `{meta['fingerprint']}`, {meta['rate']:.0f} events/s over "
        f"{meta['span_s']:.0f} s), {meta['wall_min']:.1f} min in all. Baseline outputs: {counts}.\n\n"
        f"{markdown_table(reports)}\n\n{summary_line(reports, meta)}\n{END}"
    )


def update_doc(path: Path, block: str) -> None:
    """Replace the results block of ``path`` (append one if it has none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")
