"""Terminal report of a calibration (rich tables), and the formatting both reports share."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table

from leadflow.calibration.analysis import Calibration, Proposal
from leadflow.calibration.maths import Band, ThresholdRow


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def day(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def band_label(band: Band) -> str:
    return f"{band.low:g}–{band.high:g}" if band.high is not None else f"≥ {band.low:g}"


def cohort_lines(cal: Calibration) -> list[tuple[str, str]]:
    c = cal.cohort
    rate = c.converted / c.decided if c.decided else None
    return [
        ("window (MQL time)", f"{day(c.window_from_ms)} → {day(c.window_to_ms)}"),
        ("target", f"{c.target} (converted = reached it; lost = rejected or closed_lost)"),
        ("MQLs in the window", f"{c.handoffs:,}"),
        (
            "with a decided outcome",
            f"{c.decided:,} ({c.converted:,} converted, {c.decided - c.converted:,} lost; {pct(rate)})",
        ),
        ("still open (left out)", f"{c.open:,}"),
        ("outcomes without an MQL", f"{c.outcomes_without_mql:,} leads (recall cannot see them)"),
        ("erased leads (left out)", f"{c.erased_leads:,}"),
        ("model versions", ", ".join(f"{v} ({n:,})" for v, n in sorted(c.model_versions.items())) or "–"),
        ("sources", ", ".join(f"{s} ({n:,})" for s, n in sorted(c.sources.items())) or "–"),
        ("rejections by disposition", ", ".join(f"{d} {n:,}" for d, n in sorted(c.dispositions.items())) or "–"),
    ]


def proposal_line(p: Proposal, label: str = "Proposed MQL threshold") -> str:
    live = p.live_row
    if p.row is None:
        return f"{label}: none satisfies the rule ({p.rule.describe()}); the live threshold stays {p.live_threshold:g}"
    r = p.row
    change = (r.mqls - live.mqls) / live.mqls if live.mqls else 0.0
    return (
        f"{label}: score > {r.threshold:g} (rule: {p.rule.describe()}) — {r.mqls:,} MQLs ({change:+.0%} vs "
        f"> {p.live_threshold:g}), precision {pct(r.precision)} (live {pct(live.precision)}), "
        f"recall {pct(r.recall)}"
    )


def render(cal: Calibration, console: Console) -> None:
    summary = Table(title="Cohort", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for key, value in cohort_lines(cal):
        summary.add_row(key, value)
    console.print(summary)
    console.print(_bands_table("Conversion by score band (score at handoff)", cal.bands))
    console.print(_threshold_table(cal))
    console.print(proposal_line(cal.proposal))
    lifts = Table(title="Lift per signal (conversion with the signal / cohort conversion)")
    for name in ("signal", "MQLs with it", "converted with", "converted without", "lift"):
        lifts.add_column(name, justify="left" if name == "signal" else "right")
    for s in cal.lifts:
        lifts.add_row(
            s.signal,
            f"{s.mqls_with:,}",
            pct(s.rate_with),
            pct(s.rate_without),
            "–" if s.lift is None else f"{s.lift:.2f}",
        )
    console.print(lifts)
    if cal.refit is not None:
        _render_refit(cal, console)


def _bands_table(title: str, bands: tuple[Band, ...]) -> Table:
    table = Table(title=title)
    for name in ("score", "MQLs", "converted", "rate", "95% interval"):
        table.add_column(name, justify="left" if name == "score" else "right")
    for b in bands:
        interval = "–" if b.rate_low is None else f"{pct(b.rate_low, 0)}–{pct(b.rate_high, 0)}"
        table.add_row(band_label(b), f"{b.mqls:,}", f"{b.converted:,}", pct(b.rate), interval)
    return table


def _threshold_table(cal: Calibration) -> Table:
    table = Table(title="Candidate thresholds (MQL when score > threshold)")
    for name in ("threshold", "MQLs", "volume", "converted", "precision", "recall"):
        table.add_column(name, justify="right")
    total = cal.cohort.decided
    proposed = cal.proposal.row.threshold if cal.proposal.row else None
    for r in _with_marks(cal.thresholds, cal.proposal):
        mark = (" live" if r.threshold == cal.proposal.live_threshold else "") + (
            " ★" if r.threshold == proposed else ""
        )
        table.add_row(
            f"{r.threshold:g}{mark}", f"{r.mqls:,}", pct(r.mqls / total if total else None), f"{r.converted:,}",
            pct(r.precision), pct(r.recall),
        )  # fmt: skip
    return table


def _with_marks(rows: tuple[ThresholdRow, ...], p: Proposal) -> list[ThresholdRow]:
    """The table's rows plus the live and proposed thresholds' own rows, in order."""
    extra = [p.live_row] + ([p.row] if p.row is not None else [])
    known = {r.threshold for r in rows}
    return sorted([*rows, *(r for r in extra if r.threshold not in known)], key=lambda r: r.threshold)


def _render_refit(cal: Calibration, console: Console) -> None:
    refit = cal.refit
    assert refit is not None
    fit = refit.fit
    table = Table(
        title=f"Refitted points (L2 logistic regression, λ = {fit.l2:g}, {fit.iterations} Newton steps"
        f"{'' if fit.converged else ', NOT converged'}; {refit.scale:.1f} points per logit; "
        f"{'practitioner ranges' if refit.bounded else 'unbounded'})"
    )
    for name in ("signal", "MQLs with it", "live", "logit/unit", "fitted", "new", "note"):
        table.add_column(name, justify="left" if name in ("signal", "note") else "right")
    for s in refit.signals:
        table.add_row(
            s.signal, f"{s.mqls_with:,}", f"{s.live_points:g}", "–" if s.coefficient is None else f"{s.coefficient:+.3f}",
            "–" if s.fitted_points is None else f"{s.fitted_points:+.1f}", f"{s.points:g}", s.note,
        )  # fmt: skip
    console.print(table)
    console.print(_bands_table("Conversion by band under the refitted points", cal.refit_bands))
    if cal.refit_proposal is not None:
        console.print(proposal_line(cal.refit_proposal, "Threshold for the refitted points"))
