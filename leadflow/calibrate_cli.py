"""`leadflow calibrate`: is the MQL threshold right, and what are the signals worth?

Reads the MQLs' scores and breakdowns at handoff and the CRM outcomes that followed
(``leadflow.calibration``), prints the report, optionally writes it as HTML and a calibrated
copy of the scoring model (docs/model-tuning.md, "Calibration").
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from leadflow.cli_context import kafka_settings_from, settings_from

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel
    from leadflow.calibration.analysis import Calibration
    from leadflow.calibration.sources import History

_RULE_DEFAULTS = {"recall": 0.9, "precision": 0.3, "fbeta": 1.0}


def _iso_ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    from streams.codec.json import iso_to_epoch_ms

    text = value if ("T" in value or " " in value) else value + "T00:00:00Z"
    try:
        return iso_to_epoch_ms(text)
    except Exception:  # noqa: BLE001 - one message for every malformed time
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time with a zone", param_hint=name) from None


@click.command()
@click.option(
    "--from", "window_from", metavar="ISO", help="First MQL time to include (e.g. 2026-01-01 or ...T00:00:00Z)."
)
@click.option("--to", "window_to", metavar="ISO", help="MQLs before this time only.")
@click.option("--csv", "csv_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="History predating leadflow (columns: docs/model-tuning.md); repeatable.")  # fmt: skip
@click.option("--no-kafka", is_flag=True, help="Use only the --csv files, not leadflow's topics.")
@click.option("--target", type=click.Choice(["sql", "opportunity", "won"]), default="sql", show_default=True, help="What counts as converted.")  # fmt: skip
@click.option("--rule", type=click.Choice(list(_RULE_DEFAULTS)), default="recall", show_default=True, help="How the threshold is proposed.")  # fmt: skip
@click.option("--rule-value", type=float, help="recall: conversions to keep (0.9); precision: floor (0.3); fbeta: beta (1).")  # fmt: skip
@click.option("--band-width", type=click.FloatRange(min=1), default=10.0, show_default=True, help="Score band width.")  # fmt: skip
@click.option("--step", type=click.FloatRange(min=1), default=5.0, show_default=True, help="Threshold table step.")
@click.option("--refit", is_flag=True, help="Refit signal points (L2 logistic regression).")
@click.option("--l2", type=click.FloatRange(min=0), default=5.0, show_default=True, help="L2 penalty of the refit.")
@click.option("--min-signal-mqls", type=click.IntRange(min=1), default=20, show_default=True, help="Fewer MQLs carrying a signal: it keeps its points.")  # fmt: skip
@click.option("--unbounded", is_flag=True, help="Do not clamp refitted points to the practitioner ranges.")
@click.option("--ranges", "ranges_path", type=click.Path(dir_okay=False, path_type=Path), help="Practitioner ranges file (default config/calibration-ranges.yaml).")  # fmt: skip
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), help="Base model (default LEADFLOW_SCORING_MODEL_PATH).")  # fmt: skip
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the calibrated model here (never the live file).")  # fmt: skip
@click.option(
    "--version", "new_version", help="Version of the written model (default: base version + calibration date)."
)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as one HTML page.")  # fmt: skip
@click.pass_context
def calibrate(  # noqa: PLR0913 - one parameter per option
    ctx: click.Context,
    window_from: str | None,
    window_to: str | None,
    csv_files: tuple[Path, ...],
    no_kafka: bool,
    target: str,
    rule: str,
    rule_value: float | None,
    band_width: float,
    step: float,
    refit: bool,
    l2: float,
    min_signal_mqls: int,
    unbounded: bool,
    ranges_path: Path | None,
    model_path: Path | None,
    out_path: Path | None,
    new_version: str | None,
    html_path: Path | None,
) -> None:
    """Calibrate the MQL threshold (and, with --refit, the signal points) from CRM outcomes:
    conversion by score band, precision/recall/volume per threshold, lift per signal."""
    from rich.console import Console

    from agents.scoring.model import load_model
    from leadflow.calibration.analysis import Options, TooFewOutcomes
    from leadflow.calibration.analysis import calibrate as run
    from leadflow.calibration.cohort import build_cohort
    from leadflow.calibration.maths import ThresholdRule
    from leadflow.calibration.refit import DEFAULT_RANGES_PATH, RangesError, load_ranges
    from leadflow.calibration.report import render

    settings = settings_from(ctx)
    if no_kafka and not csv_files:
        raise click.UsageError("--no-kafka needs at least one --csv file")
    base_path = model_path or settings.scoring_model_path
    model = load_model(base_path)
    value = rule_value if rule_value is not None else _RULE_DEFAULTS[rule]
    if rule != "fbeta" and not 0 < value <= 1:
        raise click.BadParameter(f"a {rule} floor is a share in (0, 1], got {value}", param_hint="--rule-value")
    if rule == "fbeta" and value <= 0:
        raise click.BadParameter(f"beta must be > 0, got {value}", param_hint="--rule-value")
    try:
        ranges = None if unbounded else load_ranges(ranges_path or DEFAULT_RANGES_PATH)
    except RangesError as exc:
        raise click.ClickException(str(exc)) from None
    history = _read_history(ctx, csv_files, use_kafka=not no_kafka)
    cohort = build_cohort(
        history.handoffs,
        history.outcomes,
        target=target,
        from_ms=_iso_ms(window_from, "--from"),
        to_ms=_iso_ms(window_to, "--to"),
    )
    options = Options(
        min_outcomes=settings.calibration_min_outcomes,
        rule=ThresholdRule(rule, value),  # type: ignore[arg-type] # click.Choice checked it
        band_width=band_width,
        table_step=step,
        refit=refit,
        l2=l2,
        min_signal_mqls=min_signal_mqls,
        ranges=ranges,
    )
    try:
        result = run(cohort, model, options)
    except TooFewOutcomes as exc:
        raise click.ClickException(str(exc)) from None

    console = Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
    skipped = ", ".join(f"{n:,} {reason}" for reason, n in sorted(history.skipped.items()))
    console.print(
        f"read {len(history.handoffs):,} MQLs and {len(history.outcomes):,} CRM statuses in {history.read_seconds:.1f} s"
        + (f" (skipped: {skipped})" if skipped else "")
    )
    render(result, console)
    if html_path is not None:
        from leadflow.calibration.html import render_html

        html_path.write_text(render_html(result), encoding="utf-8")
        console.print(f"HTML report: {html_path}")
    if out_path is None:
        console.print("Nothing written; add --out FILE to write these proposals as a new model file.")
        return
    written = _write_model(base_path, out_path, new_version or _default_version(model.version), result)
    console.print(
        f"wrote {out_path} (version {written.version}, MQL threshold {written.thresholds.mql:g}); the live model "
        f"{base_path} is unchanged. Run it as the shadow model before promoting it."
    )


def _read_history(ctx: click.Context, csv_files: tuple[Path, ...], *, use_kafka: bool) -> History:
    from leadflow.calibration.sources import History, HistoryError, read_csv, read_kafka
    from streams.app import build_codec

    history = History()
    try:
        for path in csv_files:
            history.extend(read_csv(path))
        if use_kafka:
            settings = kafka_settings_from(ctx)
            history.extend(read_kafka(settings, build_codec(settings, register=False)))
    except HistoryError as exc:
        raise click.ClickException(str(exc)) from None
    return history


def _default_version(base: str) -> str:
    return f"{base[:40]}-cal{datetime.now(timezone.utc).strftime('%Y%m%d%H%M')}"


def _write_model(base_path: Path, out_path: Path, version: str, result: Calibration) -> ScoringModel:
    from leadflow.calibration.model_file import ModelChanges, ModelWriteError, write_model

    proposal = result.refit_proposal if result.refit_proposal is not None else result.proposal
    cohort = result.cohort
    description = (
        f"Calibrated by leadflow calibrate from {result.model_version} on {cohort.decided} MQL outcomes "
        f"(target {cohort.target}; threshold rule: {proposal.rule.describe()}"
        + ("; refitted points" if result.refit is not None else "")
        + ")."
    )
    changes = ModelChanges(
        version=version,
        description=description,
        mql_threshold=proposal.row.threshold if proposal.row is not None else None,
        points=result.refit.changed() if result.refit is not None else None,
    )
    try:
        return write_model(base_path, out_path, changes)
    except ModelWriteError as exc:
        raise click.ClickException(str(exc)) from None
