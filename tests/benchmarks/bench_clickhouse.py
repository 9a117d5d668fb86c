"""ClickHouse benchmark: insert rows/s by batch size, and cookbook and view query times
at 10 million traces, on the embedded engine (chdb).

    /tmp/venv/bin/python tests/benchmarks/bench_clickhouse.py [--traces 10000000]

Inserts go through clickhouse_connect exactly as the writer sends them (Python rows of
the ``traces`` shape). The 10 million traces are generated inside ClickHouse with
``INSERT ... SELECT FROM numbers()`` (fast), spread over the last 30 days across 24
segments, with a judge score on one trace in five and refusal / pii flags on every one.
Each query runs 3 times; the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from clickhouse_connect.driver.client import Client

from pipeline.ingest import TRACE_COLUMNS
from sinks.clickhouse_client import connect
from sinks.clickhouse_schema import apply_migrations
from sinks.clickhouse_writer import ClickHouseWriter, TableBatch
from tests.benchmarks.machine import describe

BATCH_SIZES = (100, 1_000, 5_000, 20_000, 100_000)

GEN_TRACES = """
INSERT INTO traces (trace_id, ts, segment, app, model, model_version, prompt_version,
                    tenant, user_id, input, output, latency_ms, input_tokens, output_tokens,
                    cost_usd, error, kafka_partition, kafka_offset)
SELECT
    concat('g-', toString(number)) AS trace_id,
    now64(3) - toIntervalMillisecond(intHash64(number) % (30 * 86400000)) AS ts,
    concat('app-', toString(number % 6), '|model-', toString(number % 4)) AS segment,
    concat('app-', toString(number % 6)), concat('model-', toString(number % 4)),
    if(intHash32(number) % 2 = 0, '2026-10', '2026-11'), 'p1',
    concat('tenant-', toString(number % 50)), concat('user-', toString(number % 100000)),
    concat('How do I reset my card? question ', toString(number)),
    concat('You can reset it in the app. answer ', toString(number)),
    if(number % 11 = 0, NULL, 100 + (intHash32(number) % 3000)),
    10 + number % 500, 10 + number % 900, (number % 1000) / 100000.0,
    if(number % 97 = 0, 'timeout', ''), number % 4, number
FROM numbers({start}, {count})
"""

GEN_SCORES = """
INSERT INTO scores (trace_id, ts, segment, model_version, name, scorer, value, label,
                    rubric_version, cost_usd, sample_rate)
SELECT trace_id, ts, segment, model_version, name, scorer, value, '', 'r1', cost, rate
FROM
(
    SELECT concat('g-', toString(number)) AS trace_id,
           now64(3) - toIntervalMillisecond(intHash64(number) % (30 * 86400000)) AS ts,
           concat('app-', toString(number % 6), '|model-', toString(number % 4)) AS segment,
           if(intHash32(number) % 2 = 0, '2026-10', '2026-11') AS model_version,
           arrayJoin(if(number % 5 = 0, ['helpfulness', 'refusal', 'pii'], ['refusal', 'pii']))
               AS name,
           if(name = 'helpfulness', 'judge', 'heuristics') AS scorer,
           multiIf(name = 'helpfulness', (intHash32(number * 3 + 1) % 1000) / 1000.0,
                   name = 'refusal', toFloat64(intHash32(number * 3 + 2) % 100 < 4),
                   toFloat64(intHash32(number * 7 + 3) % 1000 < 5)) AS value,
           if(name = 'helpfulness', 0.0004, 0.0) AS cost,
           if(name = 'helpfulness', 0.2, 1.0) AS rate
    FROM numbers({start}, {count})
)
"""

GEN_EVENTS = """
INSERT INTO drift_events (event_id, episode_id, detected_at, segment, detector, signal,
                          severity, trace_id, statistic, threshold, mean_before, mean_after,
                          window)
SELECT concat('ev-', toString(number)), concat('ep-', toString(number % 20)),
       now64(3) - toIntervalMinute(number * 7), concat('app-', toString(number % 6),
       '|model-', toString(number % 4)), 'adwin', 'refusal', 'warning',
       concat('g-', toString(number * 1000)), 0.2, 0.05, 0.03, 0.3, 400
FROM numbers(300)
"""

MV_VS_BASE = {
    "traces per segment and hour, 30 days": (
        "SELECT hour, segment, countMerge(traces), "
        "quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_q), "
        "sumMerge(cost_usd) FROM segment_hourly_traces GROUP BY hour, segment",
        "SELECT toStartOfHour(ts) AS hour, segment, count(), "
        "quantilesTDigest(0.5, 0.9, 0.99)(latency_ms), sum(cost_usd) FROM traces FINAL "
        "GROUP BY hour, segment"),
    "judge mean + quantiles per segment and day": (
        "SELECT toDate(hour) AS d, segment, avgMerge(value_avg), "
        "quantilesTDigestMerge(0.1, 0.5, 0.9)(value_q) FROM segment_hourly_scores "
        "WHERE scorer = 'judge' GROUP BY d, segment",
        "SELECT toDate(ts) AS d, segment, avg(value), quantilesTDigest(0.1, 0.5, 0.9)(value) "
        "FROM scores FINAL WHERE scorer = 'judge' GROUP BY d, segment"),
    "dashboard view segment_hourly (last 24 h)": (
        "SELECT * FROM segment_hourly WHERE hour >= now() - INTERVAL 24 HOUR",
        "SELECT toStartOfHour(t.ts) AS h, t.segment, count(), avg(t.latency_ms), "
        "avgIf(s.value, s.name = 'refusal') FROM traces AS t FINAL "
        "LEFT JOIN (SELECT trace_id, name, value FROM scores FINAL "
        "           WHERE ts >= now() - INTERVAL 25 HOUR) AS s ON s.trace_id = t.trace_id "
        "WHERE t.ts >= now() - INTERVAL 24 HOUR GROUP BY h, t.segment"),
}


def machine() -> str:
    return f"{describe()}"


def timed(client: Client, sql: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.query(sql)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def trace_rows(n: int, prefix: str) -> list[list[object]]:
    now = datetime.now(UTC)
    return [[f"{prefix}-{i}", now - timedelta(seconds=i % 86400), f"app-{i % 6}|model-{i % 4}",
             f"app-{i % 6}", "", f"model-{i % 4}", "2026-11", "p1", "t", "u", "s",
             f"How do I reset my card? {i}", f"You can reset it in the app. {i}",
             float(100 + i % 3000), 10 + i % 500, 10 + i % 900, 0.0001, None, "", {}, 0, i,
             "plain", []]
            for i in range(n)]


def bench_inserts(client: Client, per_size_rows: int) -> None:
    print("\n## insert throughput, clickhouse_connect insert of Python rows (traces, "
          f"{len(TRACE_COLUMNS)} columns, 2 views attached)")
    print(f"{'batch rows':>10} {'rows':>8} {'inserts':>7} {'seconds':>8} {'rows/s':>9}")
    for size in BATCH_SIZES:
        total = max(size, per_size_rows if size >= 1000 else per_size_rows // 10)
        rows = trace_rows(total, f"ins{size}")
        started = time.perf_counter()
        for i in range(0, total, size):
            client.insert("traces", rows[i:i + size], column_names=list(TRACE_COLUMNS))
        took = time.perf_counter() - started
        print(f"{size:>10,} {total:>8,} {total // size:>7} {took:>8.2f} {total / took:>9,.0f}")
    # The writer end to end: many small submits (Faust-sized batches) coalesced.
    rows = trace_rows(per_size_rows, "writer")
    writer = ClickHouseWriter(client)

    async def run() -> None:
        tickets = [await writer.submit([TableBatch("traces", TRACE_COLUMNS, rows[i:i + 500])])
                   for i in range(0, len(rows), 500)]
        for ticket in tickets:
            await ticket

    started = time.perf_counter()
    asyncio.run(run())
    took = time.perf_counter() - started
    print(f"ClickHouseWriter, submits of 500 rows coalesced to {writer.batch_rows:,}-row "
          f"blocks: {per_size_rows:,} rows in {took:.2f}s = {per_size_rows / took:,.0f} rows/s "
          f"({writer.stats.inserts} inserts)")


def generate(client: Client, traces: int) -> None:
    step = 1_000_000
    started = time.perf_counter()
    for start in range(0, traces, step):
        count = min(step, traces - start)
        client.command(GEN_TRACES.format(start=start, count=count))
        client.command(GEN_SCORES.format(start=start, count=count))
    client.command(GEN_EVENTS)
    now = datetime.now(UTC)
    client.insert("golden_runs", [["run-1", now, "v1", "app-0|model-0", "model-0", "2026-11",
                                   100, 90, 1]],
                  column_names=["run_id", "started_at", "dataset_version", "segment", "model",
                                "model_version", "cases", "passed", "gate_passed"])
    client.insert("golden_results", [["run-1", f"c{i}", now, "app-0|model-0", name,
                                      (i % 10) / 10, int(i % 10 > 2)]
                                     for i in range(100) for name in ("helpfulness", "refusal")],
                  column_names=["run_id", "case_id", "ts", "segment", "name", "value",
                                "passed"])
    took = time.perf_counter() - started
    sizes = client.query("SELECT table, rows FROM table_sizes WHERE table IN "
                         "('traces', 'scores', 'segment_hourly_traces', "
                         "'segment_hourly_scores') ORDER BY table").result_rows
    print(f"\ngenerated {traces:,} traces in {took:.0f}s (views maintained on insert): "
          + ", ".join(f"{t} {r:,} rows" for t, r in sizes))


def bench_queries(client: Client) -> None:
    print("\n## views (AggregatingMergeTree, -Merge) against the same question on base "
          "tables (FINAL), median of 3")
    print(f"{'question':<45} {'view s':>8} {'base s':>8} {'speed-up':>9}")
    for name, (view_sql, base_sql) in MV_VS_BASE.items():
        v, b = timed(client, view_sql), timed(client, base_sql)
        print(f"{name:<45} {v:>8.3f} {b:>8.3f} {b / v:>8.0f}x")
    print("\n## cookbook (schemas/clickhouse/queries), median of 3")
    folder = resources.files("schemas.clickhouse").joinpath("queries")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".sql"):
            sql = path.read_text()
            rows = len(client.query(sql).result_rows)
            print(f"{path.name:<45} {timed(client, sql):>8.3f} s  ({rows} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000_000)
    parser.add_argument("--insert-rows", type=int, default=200_000,
                        help="rows inserted per batch size (a tenth for 100-row batches)")
    parser.add_argument("--dir", type=Path, default=None, help="chdb directory (default: temp)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("note: chdb (ClickHouse in-process), one client thread; numbers from a shared "
          "machine are indicative only")
    with tempfile.TemporaryDirectory(prefix="bench-ch-") as tmp:
        client = connect(f"chdb://{args.dir or tmp}")
        version = client.query("SELECT version()").result_rows[0][0]
        print(f"ClickHouse engine {version}")
        apply_migrations(client)
        bench_inserts(client, args.insert_rows)
        client.command("TRUNCATE TABLE traces")
        client.command("TRUNCATE TABLE segment_hourly_traces")
        client.command("TRUNCATE TABLE ingest_minutely")
        generate(client, args.traces)
        bench_queries(client)
        client.close()


if __name__ == "__main__":
    main()
