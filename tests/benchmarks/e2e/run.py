"""End-to-end throughput of one worker against the limits of its own path.

    python -m tests.benchmarks.e2e.run [--traces 200000] [--partitions 4]

Starts the local broker if none runs, publishes BANKING77 traces (four segments, one
drifting) as fast as the producer can, then starts a worker on the embedded ClickHouse
engine, with the judge and the embedder on a 1 % sample against the OpenAI-compatible
simulator, and measures: sustained traces/s through the whole path, worker CPU and RSS, and
p50/p99 publish-to-queryable latency at a steady rate. In the same run it measures a bare
aiokafka consumer on the same topic and `json.loads` / `orjson.loads` of the same
payloads, and prints the ratios and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from pipeline import kafka_local
from pipeline.config import Settings, load_settings
from pipeline.demo_traffic import Scenario, count_invalid, generate
from pipeline.producer import make_producer, publish
from pipeline.simulator import SimulatorConfig, SimulatorThread
from pipeline.sql_client import worker_query, worker_stats
from pipeline.topics import delete_topics, ensure_topics
from pipeline.worker_process import WorkerProcess
from tests.benchmarks.e2e import cpu
from tests.benchmarks.machine import describe

console = Console(width=120)


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return cpu, peak


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def progress(settings: Settings, timeout: float = 30.0) -> tuple[int, int]:
    """(traces a worker took from Kafka, traces it stored or dead-lettered) so far."""
    body = worker_stats(settings, timeout=timeout)
    return int(body["consumed"]), int(body["stored"]) + int(body["dead_lettered_total"])


def stored(settings: Settings) -> int:
    return progress(settings)[1]


def bare_consumer_rate(settings: Settings, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    async def run() -> float:
        consumer = AIOKafkaConsumer(settings.traces_topic,
                                    bootstrap_servers=settings.kafka_bootstrap,
                                    group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            seen, size = 0, 0
            t0 = time.perf_counter()
            while seen < n:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        size += len(record.value)
                    seen += len(records)
            return n / (time.perf_counter() - t0)
        finally:
            await consumer.stop()

    return asyncio.run(run())


def parse_rates(payloads: list[bytes]) -> dict[str, float]:
    from schemas.trace import parse_trace

    rates = {}
    for name, fn in (("json.loads", json.loads), ("orjson.loads", orjson.loads),
                     ("parse_trace (orjson + pydantic)", parse_trace)):
        t0 = time.perf_counter()
        for p in payloads:
            fn(p)
        rates[name] = len(payloads) / (time.perf_counter() - t0)
    return rates


def process_rate(settings: Settings, payloads: list[bytes], n: int = 20_000) -> float:
    """Traces/s of CPU through ``Ingestor.process`` alone (parse, validate, heuristics,
    sampling, detectors; no Kafka, no ClickHouse): the ceiling of the worker's own
    per-trace work on one core, after the detectors' warm-up and calibration."""
    from detectors.registry import SegmentRegistry
    from pipeline.ingest import Ingestor, Record
    from pipeline.metrics import Counters
    from pipeline.recent_ids import RecentIds
    from pipeline.scorers.sampler import Sampler
    from pipeline.worker import detector_factories

    ingestor = Ingestor(segment_fields=settings.segment_fields,
                        registry=SegmentRegistry(detector_factories(settings)),
                        counters=Counters(), limits=settings.limits(),
                        sampler=Sampler(settings.sample_rate, settings.sample_rates,
                                        settings.sample_salt),
                        recent=RecentIds(settings.dedup_window), partitions=1)
    records = [Record(v, None, "t", 0, i) for i, v in enumerate(payloads[: 2 * n])]
    ingestor.process(records[:n])
    gc.freeze()  # as the worker does after start-up
    t0 = time.process_time()
    ingestor.process(records[n:])
    return (len(records) - n) / (time.process_time() - t0)


def keyed(args: argparse.Namespace, messages: Iterable[tuple[bytes | None, bytes]]
          ) -> Iterable[tuple[bytes | None, bytes]]:
    """The messages as published: keyed by segment, or (``--unkeyed``) not keyed."""
    return ((None, value) for _, value in messages) if args.unkeyed else messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--traces", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--latency-traces", type=int, default=20_000)
    ap.add_argument("--latency-rate", type=float, default=4_000.0)
    ap.add_argument("--sample-rate", type=float, default=0.01)
    ap.add_argument("--unkeyed", action="store_true",
                    help="publish without keys, as the OpenTelemetry Collector's Kafka "
                         "exporter does: most traces are rerouted to their segment's partition")
    ap.add_argument("--invalid-every", type=int, default=0,
                    help="one message in this many is invalid (dead-lettered; counted in "
                         "the rate as a message processed); 0: none")
    ap.add_argument("--threads", action="store_true",
                    help="also print CPU per thread name (which ClickHouse pools work)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="driftline-e2e-"))
    run = uuid.uuid4().hex[:8]
    # The judge and the embedder both live behind the OpenAI-compatible simulator, on a
    # 1 % sample (plus risky traces), as in production.
    sim = SimulatorThread(SimulatorConfig()).start()
    # The judge keeps its default budget (600 calls a minute): the sample beyond it is
    # recorded as budget_exhausted, as in production.
    settings = load_settings(judge_base_url=sim.base_url, judge_model="sim-judge",
                             sample_rate=args.sample_rate,
                             embedder="openai:sim-embed", embedding_drift=True,
                             traces_topic=f"bench.{run}.traces", dlq_topic=f"bench.{run}.dlq",
                             scoring_topic=f"bench.{run}.scoring",
                             control_topic=f"bench.{run}.control",
                             app_id=f"bench-{run}", data_dir=tmp, topic_partitions=args.partitions,
                             web_port=16066, log_format="json")
    if kafka_local.run("status", settings) != 0 and kafka_local.run("start", settings) != 0:
        raise SystemExit("no broker")
    ensure_topics(settings)
    scenario = Scenario(n=args.traces, seed=5, run_id=f"b{run}",
                        invalid_every=args.invalid_every)
    # the valid traces: the parse and processing ceilings are measured on them
    payloads = [v for _, v in generate(dataclasses.replace(scenario, invalid_every=0))]
    console.print(f"machine: {describe()}")
    console.print(f"{len(payloads):,} traces, mean {sum(map(len, payloads)) / len(payloads):.0f}"
                  f" bytes, {args.partitions} partitions")

    t0 = time.perf_counter()
    delivery = publish(settings, keyed(args, generate(scenario)))
    produce_rate = delivery.delivered / (time.perf_counter() - t0)

    worker = WorkerProcess(settings, tmp / "worker.log")
    try:
        # every message of the backlog, dead letters (--invalid-every) included
        measure(args, settings, payloads, scenario.n + count_invalid(scenario), produce_rate,
                worker, tmp, run)
    finally:
        # also when the measurement fails: a worker left running would answer the next
        # run's /health on the same port
        worker.stop()
        sim.stop()
        delete_topics(settings)


def measure(args: argparse.Namespace, settings: Settings, payloads: list[bytes],
            backlog: int, produce_rate: float, worker: WorkerProcess, tmp: Path,
            run: str) -> None:
    worker.start()
    assert worker.proc is not None
    pid = worker.proc.pid
    broker = cpu.broker_pid()
    marks = {backlog // 4: 0, backlog // 2: 0, backlog: 0}
    # A point sample catches RSS wherever the writer's buffer and the engine's merges
    # happen to be (they swing it by ~100 MiB); the highest value between two marks says
    # whether it grows with the traces processed.
    ready = rss(pid)
    peaks = dict.fromkeys(marks, 0)
    # From the moment a tenth of the backlog is consumed to the moment all of it is
    # stored: the writer's buffer (up to 200,000 rows) could otherwise hide a store that
    # falls behind, as a window on stored rows alone did once the writer ran niced.
    t_start = None
    while True:
        consumed, done = progress(settings)
        now = time.perf_counter()
        if t_start is None and consumed >= backlog // 10:
            t_start, cpu_start, snap_start = now, proc_stats(pid)[0], cpu.snapshot(pid, broker)
            first = consumed
        now_rss = rss(pid)
        for mark in marks:
            if done >= mark and not marks[mark]:
                marks[mark] = now_rss
        window = next((m for m in marks if done < m), backlog)
        peaks[window] = max(peaks[window], now_rss)
        if done >= backlog:
            t_end, cpu_end, snap_end = now, proc_stats(pid)[0], cpu.snapshot(pid, broker)
            break
        if not worker.alive():
            raise SystemExit(worker.tail())
        time.sleep(0.05)  # sampling interval of the measurement
    assert t_start is not None
    traces = backlog - first
    rate = traces / (t_end - t_start)
    cpu_share = (cpu_end - cpu_start) / (t_end - t_start)
    _, peak = proc_stats(pid)

    # Latency at a steady rate: each trace is stamped when published; ClickHouse stamps
    # ingested_at when the row is inserted, i.e. when it becomes queryable.
    live = Scenario(n=args.latency_traces, seed=9, run_id=f"l{run}")

    def stamped():  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        for i, (key, value) in enumerate(generate(live)):
            ahead = i / args.latency_rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)  # pacing the offered load
            trace = orjson.loads(value)
            trace["timestamp"] = datetime.now(UTC).isoformat()
            yield key, orjson.dumps(trace)

    publish(settings, keyed(args, stamped()), producer=make_producer(settings, **{"linger.ms": 1}))
    total = backlog + args.latency_traces
    while stored(settings) < total:
        time.sleep(0.1)  # sampling interval of the measurement
    _, rows = worker_query(settings, (
        "SELECT quantile(0.5)(d), quantile(0.99)(d), max(d) FROM (SELECT "
        "dateDiff('millisecond', ts, ingested_at) AS d FROM traces "
        f"WHERE trace_id LIKE 'l{run}-%')"))
    p50, p99, worst = rows[0]
    scored = worker_stats(settings)
    worker.stop()

    bare = bare_consumer_rate(settings, backlog)
    parse = parse_rates(payloads[: min(len(payloads), 50_000)])
    own = process_rate(settings, payloads)

    table = Table(title="driftline end to end, one worker")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("producer (confluent-kafka, zstd) traces/s", f"{produce_rate:,.0f}")
    table.add_row("driftline worker traces/s (10% consumed .. all stored)", f"{rate:,.0f}")
    table.add_row("bare aiokafka consumer msgs/s (same topic)", f"{bare:,.0f}")
    for name, r in parse.items():
        table.add_row(f"{name} msgs/s (one core)", f"{r:,.0f}")
    table.add_row("Ingestor.process alone traces/s (one core, CPU time)", f"{own:,.0f}")
    table.add_row("ratio driftline / bare consumer", f"{rate / bare:.2f}")
    table.add_row("ratio driftline / json.loads", f"{rate / parse['json.loads']:.3f}")
    table.add_row("ratio driftline / Ingestor.process alone", f"{rate / own:.2f}")
    table.add_row(f"sampled ({args.sample_rate:.0%} + risky) / judge rows (of which "
                  "errors, mostly over budget) / embedded",
                  f"{scored['sampled']:,} / {scored['judged']:,} ({scored['judge_errors']:,})"
                  f" / {scored['embedded']:,}")
    table.add_row("stored / dead-lettered / rerouted to their segment's partition",
                  f"{scored['stored']:,} / {scored['dead_lettered_total']:,} "
                  f"{scored['dead_lettered'] or ''} / {scored['rerouted']:,}")
    table.add_row("worker CPU (cores busy while draining); CPU µs per trace",
                  f"{cpu_share:.2f}; {cpu_share / rate * 1e6:,.0f}")
    for name, seconds in cpu.breakdown(pid, snap_start, snap_end).items():
        table.add_row(f"  CPU while draining: {name} (cores; µs per trace)",
                      f"{seconds / (t_end - t_start):.2f}; {seconds / traces * 1e6:,.0f}")
    states = cpu.main_thread_states(snap_start, snap_end, t_end - t_start)
    table.add_row("  worker main thread: " + " / ".join(states),
                  " / ".join(f"{v:.0%}" for v in states.values()))
    if args.threads:
        for name, seconds in cpu.by_name(snap_start, snap_end):
            table.add_row(f"    thread {name!r} (µs per trace)", f"{seconds / traces * 1e6:,.1f}")
    table.add_row("  machine idle while draining (share of all cores)",
                  f"{cpu.idle_share(snap_start, snap_end):.0%}")
    table.add_row("worker peak RSS", f"{peak / 2**20:,.0f} MiB")
    # RSS follows how far the store lags the consumer: the rows it buffers are Python lists
    table.add_row("writer buffer, peak rows not yet stored (bounded by "
                  "DRIFTLINE_CLICKHOUSE_MAX_BUFFERED_ROWS)",
                  f"{scored['clickhouse']['peak_buffered_rows']:,} of "
                  f"{settings.clickhouse_max_buffered_rows:,}")
    table.add_row("RSS at 25% / 50% / 100% of backlog",
                  " / ".join(f"{v / 2**20:,.0f}" for v in marks.values()) + " MiB")
    table.add_row("RSS when ready; highest up to 25% / 25-50% / 50-100% of backlog",
                  f"{ready / 2**20:,.0f}; "
                  + " / ".join(f"{v / 2**20:,.0f}" for v in peaks.values()) + " MiB")
    table.add_row(f"publish-to-queryable at {args.latency_rate:,.0f}/s: p50 / p99 / max",
                  f"{p50:,.0f} / {p99:,.0f} / {worst:,.0f} ms")
    console.print(table)
    console.print(f"(worker log: {tmp / 'worker.log'}; topic {settings.traces_topic})")


if __name__ == "__main__":
    main()
