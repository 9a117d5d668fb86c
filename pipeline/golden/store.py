"""SQL that writes and reads the golden set in ClickHouse (tables from schemas/clickhouse)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.golden.cases import GoldenCase
from pipeline.producer import segment_key


def json_each_row(table: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """One INSERT statement with its rows inline: runs through `driftline sql`'s path,
    so it works while a worker owns the embedded engine."""
    body = "\n".join(orjson.dumps(r, default=str).decode() for r in rows)
    return f"INSERT INTO {table} FORMAT JSONEachRow\n{body}"


def case_rows(cases: Sequence[GoldenCase], version: str, segment_fields: Sequence[str],
              source: str) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        segment = _segment(case, segment_fields)
        rows.append({
            "case_id": case.id, "dataset_version": version, "segment": segment,
            "app": case.app or "", "route": case.route or "",
            "input": orjson.dumps(case.model_dump(mode="json")["input"]).decode(),
            "expected": orjson.dumps(case.expected.model_dump(mode="json")).decode(),
            "tags": list(case.tags), "source": source,
            "source_trace_id": case.source_trace_id or "",
        })
    return rows


LIST_SQL = """
SELECT dataset_version, count() AS cases, uniqExact(segment) AS segments,
       countIf(source_trace_id != '') AS from_production, max(created_at) AS loaded_at
FROM golden_cases FINAL
GROUP BY dataset_version
ORDER BY loaded_at DESC
"""


def _segment(case: GoldenCase, fields: Sequence[str], model: str | None = None) -> str:
    """The live segment a case's result speaks for: the case's app and route, and the
    model the run replayed it through; other segment fields stay unset ("-") and match
    any live value (see :func:`pipeline.golden.sources.match_segment`)."""
    return segment_key({"app": case.app, "route": case.route, "model": model},
                       tuple(fields))


def sql_str(value: str) -> str:
    """A ClickHouse string literal.

    >>> print(sql_str("it's"))
    'it\\'s'
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


LATEST_VERSION_SQL = """
SELECT dataset_version FROM golden_cases FINAL
GROUP BY dataset_version ORDER BY max(created_at) DESC LIMIT 1
"""


def cases_sql(version: str) -> str:
    return ("SELECT case_id, input, expected, tags, app, route, source_trace_id, source "
            f"FROM golden_cases FINAL WHERE dataset_version = {sql_str(version)} "
            "AND active = 1 ORDER BY case_id")


def case_from_row(row: Sequence[Any]) -> GoldenCase:
    """A case back from its ``golden_cases`` row (the inverse of :func:`case_rows`)."""
    case_id, raw_input, expected, tags, app, route, source_trace_id = row[:7]
    return GoldenCase.model_validate({
        "id": case_id, "input": orjson.loads(raw_input), "expected": orjson.loads(expected),
        "tags": list(tags), "app": app or None, "route": route or None,
        "source_trace_id": source_trace_id or None})


def result_rows(run_id: str, cases: Sequence[GoldenCase], results: Sequence[Any],
                segment_fields: Sequence[str], model: str) -> list[dict[str, Any]]:
    """Long format, like live ``scores``: one row per (case, score name)."""
    now = datetime.now(UTC).isoformat()
    rows = []
    for case, r in zip(cases, results, strict=True):
        for name, value in r.scores.items():
            rows.append({
                "run_id": run_id, "case_id": case.id, "ts": now,
                "segment": _segment(case, segment_fields, model), "model_version": model,
                "name": name, "scorer": "judge" if name == "judge" else "golden",
                "value": value, "label": r.labels.get(name, ""), "passed": int(r.passed),
                "output": r.answer.output, "latency_ms": r.answer.latency_ms,
                "cost_usd": r.cost_usd if name == "judge" else 0.0})
    return rows


def run_row(run_id: str, version: str, cases: Sequence[GoldenCase], results: Sequence[Any],
            started: datetime, gate_passed: bool, model: str) -> dict[str, Any]:
    return {"run_id": run_id, "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(), "dataset_version": version,
            "segment": "", "model": model, "model_version": model, "prompt_version": "",
            "rubric_version": "", "cases": len(cases),
            "passed": sum(1 for r in results if r.passed), "gate_passed": int(gate_passed),
            "details": {}}
