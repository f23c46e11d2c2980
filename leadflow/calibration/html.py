"""The calibration report as one self-contained HTML page: inline CSS and SVG charts, no
scripts, fonts or images from elsewhere, and only aggregates (no lead ids, no emails)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from leadflow.calibration.analysis import Calibration, Proposal
from leadflow.calibration.maths import Band, SignalLift, ThresholdRow
from leadflow.calibration.report import band_label, cohort_lines, pct, proposal_line

_W, _H = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 56, 20, 44
_BLUE, _ORANGE, _GREY, _GREEN, _RED = "#2563eb", "#ea580c", "#cbd5e1", "#16a34a", "#dc2626"
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#0f172a}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin:28px 0 8px}
.sub{color:#475569;margin-top:0} .grid{display:grid;grid-template-columns:1fr 1fr;gap:24px}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 10px;border-bottom:1px solid #e2e8f0;text-align:right}
td:first-child,th:first-child,table.kv td{text-align:left} .proposal{background:#f0fdf4;border-left:4px solid #16a34a;padding:10px 14px}
.note{color:#475569;font-size:13px} svg text{font-size:11px;fill:#334155} .live{color:#64748b}
"""


def render_html(cal: Calibration, *, title: str = "leadflow calibration") -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='sub'>Scoring model {escape(cal.model_version)}; {cal.cohort.decided:,} MQLs with a decided "
        f"outcome (target: {escape(cal.cohort.target)}).</p>",
        f"<p class='proposal'>{escape(proposal_line(cal.proposal))}</p>",
    ]
    if cal.refit_proposal is not None:
        parts.append(
            f"<p class='proposal'>{escape(proposal_line(cal.refit_proposal, 'Threshold for the refitted points'))}</p>"
        )
    parts.append("<div class='grid'><div><h2>Cohort</h2><table class='kv'>")
    parts += [f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in cohort_lines(cal)]
    parts.append("</table></div><div><h2>Conversion by score band</h2>")
    parts.append(_bands_svg(cal.bands))
    parts.append("</div></div><h2>Precision, recall and MQL volume per threshold</h2>")
    parts.append(_thresholds_svg(cal.thresholds, cal.proposal, cal.cohort.decided))
    parts.append(_threshold_rows(cal))
    parts.append("<h2>Lift per signal</h2>")
    parts.append(_lift_svg(cal.lifts))
    if cal.refit is not None:
        parts.append(_refit_section(cal))
    parts.append("</body></html>")
    return "\n".join(parts)


def _svg(width: int, height: int, body: Sequence[str], label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='100%' role='img' "
        f"aria-label='{escape(label)}'>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {extra}>{escape(text)}</text>"


def _axis(height: int, width: int, *, top: float = 1.0, right_label: str | None = None) -> list[str]:
    """Horizontal grid lines with percentage labels from 0 to ``top`` on the left axis."""
    body = []
    for i in range(5):
        y = _TOP + (height - _TOP - _BOTTOM) * (1 - i / 4)
        body.append(f"<line x1='{_LEFT}' x2='{width - _RIGHT}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e2e8f0'/>")
        body.append(_text(_LEFT - 6, y + 4, pct(top * i / 4, 0), "end"))
    if right_label:
        body.append(_text(width - 8, _TOP - 6, right_label, "end"))
    return body


def _bands_svg(bands: tuple[Band, ...]) -> str:
    width, height = 560, _H
    plot_w, plot_h = width - _LEFT - 20, height - _TOP - _BOTTOM
    top = max([b.rate_high or 0.0 for b in bands] + [0.05])
    body = _axis(height, width - _RIGHT + 20, top=top)
    slot = plot_w / max(1, len(bands))
    for i, b in enumerate(bands):
        x = _LEFT + i * slot + slot * 0.15
        if b.rate is not None:
            h = plot_h * b.rate / top * 1.0
            body.append(
                f"<rect x='{x:.1f}' y='{_TOP + plot_h - h:.1f}' width='{slot * 0.7:.1f}' height='{h:.1f}' fill='{_BLUE}'/>"
            )
            if b.rate_low is not None and b.rate_high is not None:
                cx = x + slot * 0.35
                y1, y2 = _TOP + plot_h * (1 - b.rate_low / top), _TOP + plot_h * (1 - b.rate_high / top)
                body.append(f"<line x1='{cx:.1f}' x2='{cx:.1f}' y1='{y1:.1f}' y2='{y2:.1f}' stroke='#0f172a'/>")
            body.append(_text(x + slot * 0.35, _TOP + plot_h - h - 4, pct(b.rate, 0)))
        label = band_label(b) if slot >= 48 else f"{b.low:g}"  # narrow bars: the lower bound only
        body.append(_text(x + slot * 0.35, height - _BOTTOM + 14, label))
        body.append(_text(x + slot * 0.35, height - _BOTTOM + 28, f"n={b.mqls:,}", extra="fill='#64748b'"))
    return _svg(width, height, body, "conversion rate by score band, with 95% intervals")


def _thresholds_svg(rows: tuple[ThresholdRow, ...], proposal: Proposal, total: int) -> str:
    width, height = 1160, 300
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    if not rows:
        return ""
    lo, hi = rows[0].threshold, rows[-1].threshold
    span = max(hi - lo, 1.0)

    def x_of(t: float) -> float:
        return _LEFT + plot_w * (t - lo) / span

    def y_of(v: float) -> float:
        return _TOP + plot_h * (1 - v)

    body = _axis(height, width, right_label="grey bars: MQL volume (share of the cohort)")
    bar = plot_w / max(1, len(rows)) * 0.6
    for r in rows:
        share = r.mqls / total if total else 0.0
        body.append(
            f"<rect x='{x_of(r.threshold) - bar / 2:.1f}' y='{y_of(share):.1f}' width='{bar:.1f}' "
            f"height='{plot_h * share:.1f}' fill='{_GREY}'/>"
        )
        body.append(_text(x_of(r.threshold), height - _BOTTOM + 14, f"{r.threshold:g}"))
    for colour, values, name in (
        (_BLUE, [r.precision for r in rows], "precision"),
        (_ORANGE, [r.recall for r in rows], "recall"),
    ):
        points = " ".join(f"{x_of(r.threshold):.1f},{y_of(v):.1f}" for r, v in zip(rows, values) if v is not None)
        body.append(f"<polyline points='{points}' fill='none' stroke='{colour}' stroke-width='2.5'/>")
        body.append(
            _text(
                width - _RIGHT - 180 + (0 if name == "precision" else 90),
                _TOP + 14,
                f"— {name}",
                "start",
                f"style='fill:{colour};font-weight:600'",
            )
        )
    for t, colour, label in (
        (proposal.live_threshold, "#64748b", "live"),
        (proposal.row.threshold if proposal.row else None, _GREEN, "proposed"),
    ):
        if t is not None and lo <= t <= hi:
            body.append(
                f"<line x1='{x_of(t):.1f}' x2='{x_of(t):.1f}' y1='{_TOP}' y2='{_TOP + plot_h}' stroke='{colour}' stroke-dasharray='5,4' stroke-width='2'/>"
            )
            body.append(
                _text(
                    x_of(t) + 4,
                    _TOP + plot_h * 0.35 + (16 if label == "proposed" else 0),
                    f"{label} > {t:g}",
                    "start",
                    f"style='fill:{colour};font-weight:600'",
                )
            )
    body.append(_text(_LEFT + plot_w / 2, height - 8, "MQL threshold (score > t)"))
    return _svg(width, height, body, "precision, recall and MQL volume per threshold")


def _threshold_rows(cal: Calibration) -> str:
    total = cal.cohort.decided
    live, chosen = cal.proposal.live_threshold, cal.proposal.row.threshold if cal.proposal.row else None
    head = "<tr><th>threshold</th><th>MQLs</th><th>volume</th><th>converted</th><th>precision</th><th>recall</th></tr>"
    rows = []
    for r in cal.thresholds:
        mark = (" (live)" if r.threshold == live else "") + (" ★ proposed" if r.threshold == chosen else "")
        rows.append(
            f"<tr><td>&gt; {r.threshold:g}{escape(mark)}</td><td>{r.mqls:,}</td><td>{pct(r.mqls / total if total else None)}</td>"
            f"<td>{r.converted:,}</td><td>{pct(r.precision)}</td><td>{pct(r.recall)}</td></tr>"
        )
    return f"<details><summary class='note'>table</summary><table>{head}{''.join(rows)}</table></details>"


def _lift_svg(lifts: tuple[SignalLift, ...]) -> str:
    shown = [s for s in lifts if s.lift is not None]
    width, row_h = 1160, 22
    height = _TOP + row_h * max(1, len(shown)) + 30
    label_w = 200
    top = max([s.lift or 0.0 for s in shown] + [2.0])
    plot_w = width - label_w - 220

    def x_of(v: float) -> float:
        return label_w + plot_w * v / top

    body = [
        f"<line x1='{x_of(1):.1f}' x2='{x_of(1):.1f}' y1='{_TOP - 6}' y2='{height - 24}' stroke='#0f172a' stroke-dasharray='3,3'/>"
    ]
    body.append(_text(x_of(1), height - 10, "lift 1 = cohort rate"))
    for i, s in enumerate(shown):
        y = _TOP + i * row_h
        colour = _GREEN if (s.lift or 0) >= 1 else _RED
        body.append(_text(label_w - 8, y + 14, s.signal, "end"))
        body.append(
            f"<rect x='{label_w}' y='{y + 3:.1f}' width='{x_of(s.lift or 0) - label_w:.1f}' height='{row_h - 8}' fill='{colour}' opacity='0.8'/>"
        )
        body.append(
            _text(
                x_of(s.lift or 0) + 6,
                y + 14,
                f"{s.lift:.2f}  ({s.mqls_with:,} MQLs, {pct(s.rate_with, 0)} vs {pct(s.rate_without, 0)} without)",
                "start",
            )
        )
    return _svg(width, height, body, "lift per signal")


def _refit_section(cal: Calibration) -> str:
    refit = cal.refit
    assert refit is not None
    rows = "".join(
        f"<tr><td>{escape(s.signal)}</td><td>{s.mqls_with:,}</td><td>{s.live_points:g}</td>"
        f"<td>{'–' if s.coefficient is None else f'{s.coefficient:+.3f}'}</td>"
        f"<td>{'–' if s.fitted_points is None else f'{s.fitted_points:+.1f}'}</td><td><b>{s.points:g}</b></td>"
        f"<td class='note'>{escape(s.note)}</td></tr>"
        for s in refit.signals
    )
    fit = refit.fit
    return (
        "<h2>Refitted points</h2>"
        f"<p class='note'>L2-regularised logistic regression (λ = {fit.l2:g}, {fit.iterations} Newton steps"
        f"{'' if fit.converged else ', not converged'}) on each signal's units at handoff; {refit.scale:.1f} points "
        f"per logit keep the live model's size; rounded{', clamped to the practitioner ranges' if refit.bounded else ', unbounded'}.</p>"
        "<div class='grid'><div><table><tr><th>signal</th><th>MQLs</th><th>live</th><th>logit/unit</th><th>fitted</th>"
        f"<th>new</th><th>note</th></tr>{rows}</table></div><div><h2>Conversion by band, refitted points</h2>"
        f"{_bands_svg(cal.refit_bands)}</div></div>"
    )
