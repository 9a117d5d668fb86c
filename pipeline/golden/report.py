"""The HTML report of a golden-versus-live comparison, built with Evidently.

Per segment, Evidently compares the golden results (reference) with the live window
(current): a ``ValueDrift`` per score (judge, guardrail flags, length ratio), and input
embedding drift from Evidently's drift methods called directly (a classifier telling
golden from live inputs, and the cosine distance between their means, both against a
bootstrap), not through ``EmbeddingsDrift``, whose t-SNE plot takes minutes. The
segments' widgets and driftline's own verdicts go into one self-contained HTML page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.golden.compare import SegmentComparison
from pipeline.golden.sources import FLAGS, MEASURES, Side


@dataclass(slots=True)
class SegmentData:
    comparison: SegmentComparison
    golden: Side
    live: Side
    golden_embeddings: np.ndarray | None = None
    live_embeddings: np.ndarray | None = None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def overview_rows(segments: Sequence[SegmentData]) -> list[list[str]]:
    rows = []
    for s in segments:
        c = s.comparison
        shift = c.judge
        cover = c.coverage
        rows.append([
            c.segment, "DIFFERS" if c.flagged else "in line", s.golden.run_id,
            f"{len(s.golden.rows)} / {len(s.live.rows)}",
            f"{_fmt(_mean(s.golden.judge))} → {_fmt(_mean(s.live.judge))}",
            (f"{shift.cliffs_delta} {shift.magnitude}, p={shift.p_value:.2g}"
             if shift else "too few scores"),
            ", ".join(f"{k} {v}" for k, v in c.flag_rates.items() if k in c.flagged_signals)
            or "none above golden",
            f"{cover.uncovered_fraction:.1%} (sim < {cover.threshold:.2f})" if cover else "-",
        ])
    return rows


OVERVIEW_COLUMNS = ["segment", "verdict", "golden run", "cases / live traces",
                    "mean judge golden → live", "Cliff's delta [95% CI]",
                    "flag rates above golden (live - golden [99% CI])", "uncovered inputs"]


def _frame(side: Side) -> Any:
    import pandas as pd

    cols: dict[str, list[Any]] = {"judge": [], **{f: [] for f in FLAGS},
                                  **{m: [] for m in MEASURES}}
    for r in side.rows:
        cols["judge"].append(np.nan if r["judge"] is None else r["judge"])
        for f in FLAGS:
            cols[f].append(str(r[f]))
        for m in MEASURES:
            cols[m].append(np.nan if r[m] is None else r[m])
    return pd.DataFrame(cols)


def _usable(frame: Any, column: str) -> bool:
    return bool(frame[column].notna().sum() >= 2)


def segment_widgets(s: SegmentData) -> list[Any]:
    """Evidently's drift widgets for one segment, plus tables of driftline's findings."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance, model
    from evidently.legacy.renderers.html_widgets import table_data, text_widget
    from evidently.metrics import ValueDrift

    widgets: list[Any] = []
    c = s.comparison
    verdict = ("\n".join(f"* {r}" for r in c.reasons) if c.flagged
               else "Live traffic is in line with the golden results.")
    widgets.append(text_widget(title="driftline verdict", text=verdict))
    if s.golden_embeddings is not None and s.live_embeddings is not None \
            and len(s.golden_embeddings) >= 10 and len(s.live_embeddings) >= 10:
        ref = pd.DataFrame(s.golden_embeddings)
        cur = pd.DataFrame(s.live_embeddings)
        rows = []
        for label, method in (
                ("classifier ROC AUC (golden vs live inputs)", model(bootstrap=True)),
                ("cosine distance between mean embeddings",
                 distance(dist="cosine", bootstrap=True))):
            score, drifted, _ = method(cur.copy(), ref.copy())
            rows.append([label, f"{float(score):.3f}", "yes" if drifted else "no"])
        widgets.append(table_data(title="Input embedding drift (Evidently drift methods, "
                                        "bootstrap at 95 %)",
                                  column_names=["method", "score", "drift"], data=rows))
    if c.coverage is not None and c.coverage.clusters:
        widgets.append(table_data(
            title=f"Uncovered live inputs: {c.coverage.uncovered} of {c.coverage.live} far "
                  f"from every golden input, by cluster"
                  + ("" if "coverage" in c.flagged_signals
                     else " (about 5 % is the usual tail)"),
            column_names=["traces", "examples"],
            data=[[str(k.size), " · ".join(e[:160] for e in k.examples)]
                  for k in c.coverage.clusters]))
    reference, current = _frame(s.golden), _frame(s.live)
    numeric = [m for m in ("judge", *MEASURES)
               if _usable(reference, m) and _usable(current, m)]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=list(FLAGS))
    metrics = [ValueDrift(column=col) for col in (*numeric, *FLAGS)]
    if len(reference) and len(current):
        snapshot = Report(metrics).run(
            Dataset.from_pandas(current[numeric + list(FLAGS)], data_definition=definition),
            Dataset.from_pandas(reference[numeric + list(FLAGS)], data_definition=definition))
        widgets.extend(snapshot.to_snapshot_model().widgets)
    return widgets


def build_report(path: Path, segments: Sequence[SegmentData], *, title: str,
                 notes: Sequence[str] = ()) -> Path:
    """Write the report to ``path`` (one HTML file, scripts inlined) and return it."""
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import group_widget, table_data, text_widget

    flagged = sum(s.comparison.flagged for s in segments)
    intro = "\n\n".join([f"**{flagged} of {len(segments)} segments differ from the golden "
                         "results.** Reference: the golden results of the last accepted run "
                         "per segment; current: the live window.", *notes])
    widgets = [text_widget(title=title, text=intro),
               table_data(title="Segments", column_names=OVERVIEW_COLUMNS,
                          data=overview_rows(segments))]
    # Segments that differ first: they are what a reader opens the report for.
    for s in sorted(segments, key=lambda s: (not s.comparison.flagged, s.comparison.segment)):
        mark = "DIFFERS" if s.comparison.flagged else "in line"
        widgets.append(group_widget(title=f"{s.comparison.segment} · {mark}",
                                    widgets=segment_widgets(s)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_widgets(widgets), encoding="utf-8")
    tmp.replace(path)
    return path
