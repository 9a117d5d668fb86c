"""The analysis schema on the real engine (chdb): migrations, views, retention, cookbook."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from schemas.clickhouse import migrations
from sinks.clickhouse_client import connect
from sinks.clickhouse_retention import apply_retention, current_ttl_days
from sinks.clickhouse_schema import apply_migrations
from sinks.clickhouse_writer import ClickHouseWriter, TableBatch

TRACE_COLUMNS = ("trace_id", "ts", "segment", "app", "model", "model_version", "input",
                 "output", "latency_ms", "input_tokens", "output_tokens", "cost_usd",
                 "feedback", "error", "heuristics")
SCORE_COLUMNS = ("trace_id", "ts", "segment", "model_version", "name", "scorer", "value",
                 "label", "rubric_version", "cost_usd", "sample_rate")
SEGMENTS = ("support-bot|gpt-4o-mini", "support-bot|llama-3.1-8b", "card-assistant|haiku")
QUERIES = sorted(p.name for p in resources.files("schemas.clickhouse")
                 .joinpath("queries").iterdir() if p.name.endswith(".sql"))


def make_rows(n: int, seed: int = 7) -> tuple[list[list[object]], list[list[object]]]:
    """Traces over the last few hours with judge and guardrail scores, some NULL fields."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    traces, scores = [], []
    for i in range(n):
        segment = SEGMENTS[i % 3]
        version = "2026-10" if i % 2 else "2026-11"
        ts = now - timedelta(minutes=rng.randrange(0, 300))
        latency = None if i % 11 == 0 else rng.uniform(100, 3000)
        cost = None if i % 13 == 0 else rng.uniform(0, 0.01)
        # Heuristic flags live on the trace row (DDL 0022).
        flags = {flag: float(rng.random() < 0.1) for flag in ("refusal", "pii", "truncated")}
        traces.append([f"t-{i}", ts, segment, segment.split("|")[0], segment.split("|")[1],
                       version, f"question {i}", f"answer {i}", latency,
                       rng.randrange(10, 500), rng.randrange(10, 900), cost,
                       None if i % 5 else rng.choice([-1.0, 1.0]), "" if i % 17 else "boom",
                       flags])
        rate = 0.2 if i % 4 else 1.0
        if i % 3 != 2:  # a sample of traces is judged (pipeline/scorers/judge.py's shape)
            failed = i % 29 == 0  # a failed judge call: nan, left out of the views
            scores.append([f"t-{i}", ts, segment, version, "helpfulness", "judge",
                           math.nan if failed else rng.random(), rng.choice(["good", "bad"]),
                           "helpfulness-v1", 0.0005, rate])
    return traces, scores


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chdb allows one directory per process at a time: one for the whole module.
    path: Path = tmp_path_factory.mktemp("chdb-sql")
    c = connect(f"chdb://{path}")
    apply_migrations(c)
    traces, scores = make_rows(3000)
    writer = ClickHouseWriter(c, batch_rows=1000)
    asyncio.run(writer.write([TableBatch("traces", TRACE_COLUMNS, traces),
                              TableBatch("scores", SCORE_COLUMNS, scores)]))
    seed_events(c)
    yield c
    c.close()


def seed_events(c: Client) -> None:
    now = datetime.now(UTC)
    c.insert("drift_events", [["e1", "ep1", now - timedelta(hours=1), SEGMENTS[1], "adwin",
                               "refusal", "warning", "t-1", 0.2, 0.1, 0.03, 0.3, 500]],
             column_names=["event_id", "episode_id", "detected_at", "segment", "detector",
                           "signal", "severity", "trace_id", "statistic", "threshold",
                           "mean_before", "mean_after", "window"])
    c.insert("golden_runs", [["run1", now - timedelta(hours=2), "v1", SEGMENTS[0], "gpt-4o-mini",
                              "2026-11", 2, 1, 1]],
             column_names=["run_id", "started_at", "dataset_version", "segment", "model",
                           "model_version", "cases", "passed", "gate_passed"])
    c.insert("golden_results", [["run1", f"c{i}", now, SEGMENTS[0], "helpfulness", v,
                                 int(v > 0.5)]
                                for i, v in enumerate((0.9, 0.4))],
             column_names=["run_id", "case_id", "ts", "segment", "name", "value", "passed"])


def one(c: Client, sql: str) -> tuple[object, ...]:
    return tuple(c.query(sql).result_rows[0])


def _close(x: float, y: float, tol: float) -> bool:
    # Both NaN agree: the quantiles of an hour whose every latency is NULL (it happens
    # when the oldest hour holds one trace of a segment and version, as at 02:55 once).
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=tol, abs_tol=tol)


def close(a: object, b: object) -> bool:
    if isinstance(a, list | tuple):
        # Quantiles: the views keep t-digests (small, fast to merge), so they are close
        # to the exact quantiles, not equal.
        return len(a) == len(b) and all(  # type: ignore[arg-type]
            _close(float(x), float(y), 0.05)
            for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if a is None or b is None:
        return a is b
    return _close(float(a), float(b), 1e-9)  # type: ignore[arg-type]


def test_every_migration_applied_once_and_tables_exist(client: Client) -> None:
    versions = [r[0] for r in client.query(
        "SELECT version FROM schema_migrations FINAL ORDER BY version").result_rows]
    assert versions == [m.version for m in migrations()]
    assert apply_migrations(client) == []
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert {"alerts", "golden_cases", "golden_runs", "golden_results", "detector_references",
            "segment_hourly_traces", "segment_hourly_scores", "segment_hourly",
            "segment_hourly_scores_merged", "ingest_minutely", "table_sizes"} <= tables
    columns = {r[0] for r in client.query("DESCRIBE TABLE scores").result_rows}
    assert {"scorer", "label", "rubric_version", "cost_usd", "sample_rate"} <= columns
    client.query("SELECT * FROM ingest_hourly")  # the view's SQL is valid on this engine
    columns = [r[0] for r in client.query("DESCRIBE TABLE ingest_hourly").result_rows]
    assert columns[-1] == "dead_by_reason"
    columns = {r[0] for r in client.query("DESCRIBE TABLE drift_events").result_rows}
    assert {"episode_id", "severity", "reference_version", "acknowledged"} <= columns


def test_hourly_traces_view_agrees_with_base_table(client: Client) -> None:
    view = client.query("""
        SELECT hour, segment, model_version, countMerge(traces), sumMerge(errors),
               avgMerge(latency_avg), quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_q),
               sumMerge(input_tokens), sumMerge(cost_usd), avgMerge(feedback_avg)
        FROM segment_hourly_traces GROUP BY ALL ORDER BY ALL""").result_rows
    base = client.query("""
        SELECT toStartOfHour(ts) AS hour, segment, model_version, count(),
               sum(toUInt64(error != '')), avg(latency_ms),
               quantilesTDigest(0.5, 0.9, 0.99)(latency_ms),
               sum(input_tokens), sum(cost_usd), avg(feedback)
        FROM traces FINAL GROUP BY ALL ORDER BY ALL""").result_rows
    assert len(view) == len(base) > 10
    for v, b in zip(view, base, strict=True):
        assert v[:4] == b[:4]
        assert all(close(x, y) for x, y in zip(v[4:], b[4:], strict=True)), (v, b)


def test_hourly_scores_view_agrees_with_base_table(client: Client) -> None:
    view = client.query("""
        SELECT hour, segment, model_version, scorer, name, scores, mean, quantiles_10_50_90,
               weighted_mean, traffic_estimate
        FROM segment_hourly_scores_merged ORDER BY ALL""").result_rows
    base = client.query("""
        SELECT toStartOfHour(ts) AS hour, segment, model_version, scorer, name, count(),
               avg(value),
               quantilesTDigest(0.1, 0.5, 0.9)(value),
               sum(value / sample_rate) / sum(1 / sample_rate),
               sum(1 / sample_rate)
        FROM scores_all WHERE isFinite(value) GROUP BY ALL ORDER BY ALL""").result_rows
    assert len(view) == len(base) > 10
    assert {row[3] for row in view} == {"judge", "heuristics"}
    for v, b in zip(view, base, strict=True):
        assert v[:6] == b[:6]
        assert all(close(x, y) for x, y in zip(v[6:], b[6:], strict=True)), (v, b)


def test_dashboard_view_pivots_judge_and_flags(client: Client) -> None:
    view = one(client, """SELECT sum(traces), sum(judged), avg(refusal_rate) > 0,
                                 countIf(judged > 0 AND NOT isFinite(judge_mean)),
                                 avg(truncated_rate) > 0 FROM segment_hourly""")
    judged = one(client, "SELECT countIf(scorer = 'judge' AND isFinite(value)) "
                         "FROM scores FINAL")
    assert view[0] == 3000
    assert view[1] == judged[0]
    assert view[2] == 1
    assert view[3] == 0  # failed (nan) judge calls do not poison the means
    assert view[4] == 1


def test_replaying_a_batch_leaves_one_row_per_trace(client: Client) -> None:
    traces, _ = make_rows(50, seed=99)
    for row in traces:
        row[0] = f"replay-{row[0]}"
    writer = ClickHouseWriter(client)
    batch = TableBatch("traces", TRACE_COLUMNS, traces)
    asyncio.run(writer.write([batch]))
    asyncio.run(ClickHouseWriter(client).write([batch]))  # another writer: a crash replay
    assert one(client, "SELECT count() FROM traces FINAL WHERE trace_id LIKE 'replay-%'") == (50,)
    assert one(client, "SELECT count() FROM traces_dedup WHERE trace_id LIKE 'replay-%'") == (50,)
    client.command("DELETE FROM traces WHERE trace_id LIKE 'replay-%'")


def test_retention_is_set_changed_and_removed_from_a_setting(client: Client) -> None:
    assert apply_retention(client, None) == []
    assert apply_retention(client, 30) == ["traces", "scores"]
    assert apply_retention(client, 30) == []  # idempotent at every start-up
    assert current_ttl_days(client, "traces") == 30
    assert apply_migrations(client, retention_days=7) == []
    assert current_ttl_days(client, "scores") == 7
    assert apply_retention(client, 0) == ["traces", "scores"]
    assert current_ttl_days(client, "traces") is None
    with pytest.raises(ValueError):
        apply_retention(client, -1)


@pytest.mark.parametrize("name", QUERIES)
def test_cookbook_query_runs_and_says_what_it_answers(client: Client, name: str) -> None:
    text = resources.files("schemas.clickhouse").joinpath("queries", name).read_text()
    assert text.startswith("-- "), f"{name} must open with a comment saying what it answers"
    result = client.query(text)  # exactly what `driftline sql --file` sends
    assert result.column_names
    assert result.result_rows, f"{name} returned nothing on the seeded data"


def test_cookbook_covers_the_questions() -> None:
    assert {"quality_by_model_version_by_day.sql", "drifted_last_24h.sql",
            "worst_traces_of_segment.sql", "cost_per_segment.sql",
            "judge_weighted_by_sampling_rate.sql", "golden_vs_live.sql"} <= set(QUERIES)
