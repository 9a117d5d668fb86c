"""Live failures back into the golden set: mine candidates, review them, accept them.

``mine`` reads the live window from ClickHouse and picks traces that failed: a low judge
score, a guardrail flag, negative user feedback, or an input in a cluster of live
traffic far from every golden input. Each becomes a candidate golden case with its
provenance (``source_trace_id``) and, under ``review``, what went wrong. A person keeps
the lines worth keeping (adding expectations where they can), and ``accept`` stores them
with the newest golden version's cases as a new version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.golden.cases import GoldenCase, GoldenFileError, dataset_version
from pipeline.golden.sources import FLAGS, Window
from pipeline.golden.store import case_rows, json_each_row, sql_str
from pipeline.sql_client import run_query

PROMOTED_TAG = "from-production"


@dataclass(slots=True)
class Candidate:
    trace_id: str
    segment: str
    app: str
    route: str
    input: str
    output: str
    reasons: list[str] = field(default_factory=list)
    judge: float | None = None
    feedback: float | None = None

    def line(self) -> dict[str, Any]:
        kinds = sorted({r.split(":")[0] for r in self.reasons})
        return {
            "id": f"prod-{self.trace_id}"[:256], "input": self.input,
            "app": self.app or None, "route": self.route or None,
            "tags": [PROMOTED_TAG, *kinds], "source_trace_id": self.trace_id,
            "review": {"segment": self.segment, "reasons": self.reasons,
                       "output": self.output, "judge": self.judge,
                       "feedback": self.feedback},
        }


def failing_sql(window: Window, *, pass_score: float, per_segment: int) -> str:
    """Traces of the window with a low judge score, a guardrail flag or negative
    feedback, not yet in any golden version; the worst first within each segment."""
    flags = ", ".join(map(sql_str, FLAGS))
    return f"""
        SELECT t.trace_id, t.segment, t.app, t.route, t.input, t.output, t.feedback,
               s.judged, s.judge, s.judge_label, s.flags
        FROM (SELECT trace_id, segment, app, route, input, output, feedback
              FROM traces FINAL WHERE {window.where()}) AS t
        LEFT JOIN (SELECT trace_id,
                          countIf(scorer = 'judge' AND isFinite(value)) AS judged,
                          minIf(value, scorer = 'judge' AND isFinite(value)) AS judge,
                          anyIf(label, scorer = 'judge') AS judge_label,
                          groupArrayIf(name, scorer = 'heuristics' AND name IN ({flags})
                                       AND value > 0) AS flags
                   FROM scores_all WHERE {window.where()}
                   GROUP BY trace_id) AS s ON s.trace_id = t.trace_id
        WHERE ((s.judged > 0 AND s.judge < {pass_score}) OR length(s.flags) > 0
               OR ifNull(t.feedback, 0) < 0)
          AND t.trace_id NOT IN (SELECT source_trace_id FROM golden_cases
                                 WHERE source_trace_id != '')
        ORDER BY t.segment, (s.judged > 0 AND s.judge < {pass_score}) DESC,
                 ifNull(t.feedback, 0), length(s.flags) DESC, t.trace_id
        LIMIT {per_segment} BY t.segment"""


def failing_traces(settings: Settings, window: Window, *, pass_score: float = 0.5,
                   per_segment: int = 50) -> list[Candidate]:
    _, rows = run_query(settings, failing_sql(window, pass_score=pass_score,
                                              per_segment=per_segment), migrate=True)
    out = []
    for trace_id, segment, app, route, text, output, feedback, judged, judge, label, flags \
            in rows:
        c = Candidate(trace_id, segment, app, route, text, output, feedback=feedback)
        if judged and judge < pass_score:
            c.judge = float(judge)
            c.reasons.append(f"low_judge: {float(judge):.2f} {label}".rstrip())
        c.reasons.extend(f"flag: {f}" for f in flags)
        if feedback is not None and feedback < 0:
            c.reasons.append(f"negative_feedback: {feedback:g}")
        out.append(c)
    return out


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per trace (reasons merged) and per input text: the same question
    failing fifty times is one golden case.

    >>> a = Candidate("t1", "s", "app", "", "Where is my card?", "x", ["flag: refusal"])
    >>> b = Candidate("t1", "s", "app", "", "Where is my card?", "x", ["uncovered: c1"])
    >>> c = Candidate("t2", "s", "app", "", "where is my card? ", "y", ["flag: refusal"])
    >>> [(x.trace_id, x.reasons) for x in dedupe([a, b, c])]
    [('t1', ['flag: refusal', 'uncovered: c1'])]
    """
    by_trace: dict[str, Candidate] = {}
    seen_inputs: dict[str, str] = {}
    for c in candidates:
        if c.trace_id in by_trace:
            merged = by_trace[c.trace_id]
            merged.reasons.extend(r for r in c.reasons if r not in merged.reasons)
            continue
        key = " ".join(c.input.lower().split())
        if key in seen_inputs:
            continue
        seen_inputs[key] = c.trace_id
        by_trace[c.trace_id] = c
    return list(by_trace.values())


def uncovered_candidates(settings: Settings, window: Window, *, per_cluster: int = 3
                         ) -> list[Candidate]:
    """Live inputs from the clusters far from every golden input, the ones nearest each
    cluster's centre, in the segments whose coverage the comparison flags (elsewhere the
    few far inputs are the usual tail, see ``calibrated_threshold``)."""
    from pipeline.golden.compare import coverage_flagged
    from pipeline.golden.comparison import embed_segments, matched_segments, segment_coverage

    segments, _ = matched_segments(settings, window)
    if not segments:
        return []
    embed_segments(settings, segments)
    out = []
    for s in segments:
        cover = segment_coverage(s)
        if cover is None or not coverage_flagged(cover):
            continue
        rows = {r["id"]: r for r in s.live.rows}
        for number, cluster in enumerate(cover.clusters):
            for trace_id in cluster.ids[:per_cluster]:
                r = rows[trace_id]
                out.append(Candidate(
                    trace_id, s.live.segment, *_app_route(settings, s.live.segment),
                    r["input"], r["output"], judge=r["judge"],
                    reasons=[f"uncovered: cluster {number + 1} of {cluster.size} live inputs "
                             f"(similarity < {cover.threshold:.2f})"]))
    return out


def _app_route(settings: Settings, segment: str) -> tuple[str, str]:
    values = dict(zip(settings.segment_fields, segment.split("|"), strict=False))
    app, route = values.get("app", ""), values.get("route", "")
    return ("" if app == "-" else app), ("" if route == "-" else route)


def write_candidates(path: Path, candidates: Sequence[Candidate]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(c.line()) + b"\n" for c in candidates))


def read_reviewed(path: Path) -> list[GoldenCase]:
    """The cases a reviewer kept: candidate lines with their ``review`` notes dropped."""
    cases = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
            raw.pop("review", None)
            cases.append(GoldenCase.model_validate(raw))
        except (orjson.JSONDecodeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise GoldenFileError(f"{path}:{number}: {first}") from None
    if not cases:
        raise GoldenFileError(f"{path}: no cases kept")
    return cases


def merge(existing: Sequence[GoldenCase], accepted: Sequence[GoldenCase]
          ) -> list[GoldenCase]:
    """The new version's cases; an accepted id that exists with other content is an
    error (rename it), the same case twice is kept once."""
    by_id = {c.id: c for c in existing}
    for case in accepted:
        old = by_id.get(case.id)
        if old is not None and old != case:
            raise GoldenFileError(f"case id {case.id!r} is already in the golden set with "
                                  "other content")
        by_id[case.id] = case
    return list(by_id.values())


def store_version(settings: Settings, existing: Sequence[GoldenCase],
                  sources: dict[str, str], accepted: Sequence[GoldenCase]) -> str:
    """Store the merged cases as a new version: existing cases keep their source, the
    accepted ones are marked ``production``."""
    cases = merge(existing, accepted)
    version = dataset_version(cases)
    new_ids = {c.id for c in accepted}
    groups: dict[str, list[GoldenCase]] = {}
    for c in cases:
        source = "production" if c.id in new_ids else sources.get(c.id, "curated")
        groups.setdefault(source, []).append(c)
    for source, group in groups.items():
        run_query(settings, json_each_row("golden_cases", case_rows(
            group, version, settings.segment_fields, source)), migrate=True)
    return version


def version_sources(settings: Settings, version: str) -> dict[str, str]:
    _, rows = run_query(settings, "SELECT case_id, source FROM golden_cases FINAL WHERE "
                                  f"dataset_version = {sql_str(version)}")
    return {str(r[0]): str(r[1]) for r in rows}
