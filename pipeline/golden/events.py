"""A golden-versus-live comparison as ``drift_events`` rows: detector ``golden_compare``,
one alarm per signal that differs (``judge``, a guardrail flag, ``coverage``).

Each alarm compares the live window with golden results, so ``mean_before`` is the
golden value, ``mean_after`` the live one, ``window`` the live sample size and
``reference_version`` the golden run; ``trace_id`` names the comparison, which makes a
re-run of the same comparison replace its rows instead of adding to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from pipeline.golden.compare import DEFAULT_CONFIG, CompareConfig, SegmentComparison
from pipeline.golden.sources import Side
from pipeline.ingest import DRIFT_COLUMNS, drift_row
from schemas.events import DriftEvent

DETECTOR = "golden_compare"


def comparison_events(comparison: SegmentComparison, golden: Side, live: Side, *,
                      compare_id: str, at: datetime, report: str = "",
                      config: CompareConfig = DEFAULT_CONFIG) -> list[DriftEvent]:
    common = {"golden_run_id": golden.run_id, "golden_segment": golden.segment,
              "compare_id": compare_id, "report": report}
    out: list[DriftEvent] = []

    def event(signal: str, statistic: float, threshold: float, before: float, after: float,
              window: int, **details: object) -> None:
        out.append(DriftEvent(
            detected_at=at, segment=comparison.segment, detector=DETECTOR, signal=signal,
            trace_id=f"{DETECTOR}:{compare_id}", statistic=float(statistic),
            threshold=float(threshold), mean_before=float(before), mean_after=float(after),
            window=int(window),
            details={**common, **{k: str(v) for k, v in details.items()}}))

    shift = comparison.judge
    if "judge" in comparison.flagged_signals and shift is not None:
        # statistic: how much more often live scores lower than golden (-Cliff's delta).
        event("judge", -shift.cliffs_delta.estimate, config.min_effect,
              float(np.mean(golden.judge)), float(np.mean(live.judge)), shift.n_a,
              p_value=f"{shift.p_value:.3g}", cliffs_delta=str(shift.cliffs_delta),
              magnitude=shift.magnitude, golden_n=shift.n_b)
    for name, diff in comparison.flag_rates.items():
        if name not in comparison.flagged_signals:
            continue
        k_gold, n_gold = golden.flags[name]
        k_live, n_live = live.flags[name]
        event(name, diff.estimate, 0.0, k_gold / n_gold, k_live / n_live, n_live,
              rate_difference=str(diff), golden_n=n_gold)
    cover = comparison.coverage
    if "coverage" in comparison.flagged_signals and cover is not None:
        examples = [f"{c.size}: " + " / ".join(e[:120] for e in c.examples)
                    for c in cover.clusters]
        event("coverage", cover.uncovered_fraction, config.max_uncovered,
              config.coverage_quantile, cover.uncovered_fraction, cover.live,
              similarity_threshold=f"{cover.threshold:.3f}", clusters="\n".join(examples))
    return out


def event_rows(events: list[DriftEvent]) -> list[dict[str, Any]]:
    """Rows for ``INSERT ... FORMAT JSONEachRow``, naming the golden run compared with."""
    rows = []
    for e in events:
        row = dict(zip(DRIFT_COLUMNS, drift_row(e), strict=True))
        row["detected_at"] = e.detected_at.isoformat()
        row["reference_version"] = e.details["golden_run_id"]
        rows.append(row)
    return rows
