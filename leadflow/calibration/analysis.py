"""One calibration run on a cohort: the figures every report shows, and the proposals.

Pure (no Kafka, no files): ``calibrate(cohort, model, options)`` -> ``Calibration``, or
``TooFewOutcomes`` when the cohort cannot support any conclusion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from agents.scoring.model import ScoringModel
from leadflow.calibration.cohort import Cohort
from leadflow.calibration.maths import (
    Band,
    FloatArray,
    SignalLift,
    ThresholdRow,
    ThresholdRule,
    candidate_thresholds,
    conversion_by_band,
    propose_threshold,
    signal_lift,
    threshold_table,
)
from leadflow.calibration.refit import Refit, refit_weights, signal_weights, units_matrix


class TooFewOutcomes(ValueError):
    """Fewer decided outcomes than the minimum (or only one kind): nothing honest to say."""


@dataclass(frozen=True, slots=True)
class Options:
    min_outcomes: int  # Settings.calibration_min_outcomes
    rule: ThresholdRule = ThresholdRule("recall", 0.9)
    band_width: float = 10.0
    table_step: float = 5.0  # rows shown; the rule looks at every point
    refit: bool = False
    l2: float = 1.0
    min_signal_mqls: int = 20
    ranges: Mapping[str, tuple[float, float]] | None = None  # None with refit: unbounded


@dataclass(frozen=True, slots=True)
class Proposal:
    rule: ThresholdRule
    row: ThresholdRow | None  # None: no threshold satisfies the rule
    live_threshold: float
    live_row: ThresholdRow


@dataclass(frozen=True, slots=True)
class Calibration:
    cohort: Cohort
    model_version: str
    bands: tuple[Band, ...]
    thresholds: tuple[ThresholdRow, ...]  # every table_step points
    proposal: Proposal
    lifts: tuple[SignalLift, ...]
    refit: Refit | None = None
    refit_bands: tuple[Band, ...] = ()
    refit_proposal: Proposal | None = None


def check_enough(cohort: Cohort, minimum: int) -> None:
    if cohort.decided < minimum:
        raise TooFewOutcomes(
            f"too few outcomes to calibrate: {cohort.decided} MQLs with a decided outcome "
            f"(target {cohort.target}: converted or lost) among {cohort.handoffs} MQLs in the window; "
            f"the minimum is {minimum} (LEADFLOW_CALIBRATION_MIN_OUTCOMES). Widen --from/--to, add "
            "--csv history, or wait for more outcomes."
        )
    if cohort.converted in (0, cohort.decided):
        kind = "none" if cohort.converted == 0 else "all"
        raise TooFewOutcomes(
            f"{kind} of the {cohort.decided} decided MQLs converted (target {cohort.target}): a threshold "
            "cannot be calibrated without both outcomes"
        )


def calibrate(cohort: Cohort, model: ScoringModel, options: Options) -> Calibration:
    check_enough(cohort, options.min_outcomes)
    scores = np.array([r.handoff.score for r in cohort.rows], dtype=np.float64)
    converted = np.array([r.converted for r in cohort.rows], dtype=np.bool_)
    weights = signal_weights(model)
    names, units = units_matrix([r.handoff.points for r in cohort.rows], weights)
    carried = units != 0
    shown = [j for j in range(len(names)) if carried[:, j].any()]
    lifts = signal_lift(carried[:, shown], converted, [names[j] for j in shown])
    proposal, table = _propose(scores, converted, options, model.thresholds.mql)
    refit: Refit | None = None
    refit_bands: tuple[Band, ...] = ()
    refit_proposal: Proposal | None = None
    if options.refit:
        with_breakdown = np.array([bool(r.handoff.points) for r in cohort.rows])
        refit = refit_weights(
            names,
            units[with_breakdown],
            converted[with_breakdown],
            weights,
            l2=options.l2,
            min_signal_mqls=options.min_signal_mqls,
            ranges=options.ranges,
        )
        new_scores = refit.rescore(scores, names, units)
        refit_bands = tuple(conversion_by_band(new_scores, converted, width=options.band_width))
        refit_proposal, _ = _propose(new_scores, converted, options, model.thresholds.mql)
    return Calibration(
        cohort=cohort,
        model_version=model.version,
        bands=tuple(conversion_by_band(scores, converted, width=options.band_width)),
        thresholds=table,
        proposal=proposal,
        lifts=tuple(sorted(lifts, key=lambda s: -(s.lift or 0.0))),
        refit=refit,
        refit_bands=refit_bands,
        refit_proposal=refit_proposal,
    )


def _propose(
    scores: FloatArray, converted: np.ndarray, options: Options, live: float
) -> tuple[Proposal, tuple[ThresholdRow, ...]]:
    beta = options.rule.value if options.rule.kind == "fbeta" else 1.0
    every_point = candidate_thresholds(scores, 1.0)
    rows = threshold_table(scores, converted, every_point, beta=beta)
    chosen = propose_threshold(rows, options.rule)
    live_row = threshold_table(scores, converted, np.array([live]), beta=beta)[0]
    shown = candidate_thresholds(scores, options.table_step)
    table = tuple(threshold_table(scores, converted, shown, beta=beta))
    return Proposal(options.rule, chosen, live, live_row), table
