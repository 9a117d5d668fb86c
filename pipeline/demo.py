"""`driftline demo`: broker, worker and BANKING77 traffic with a drift injected part-way."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import kafka_local
from pipeline.config import Settings
from pipeline.demo_traffic import Scenario, count_invalid, generate
from pipeline.producer import Delivery, publish
from pipeline.sql_client import worker_query, worker_stats
from pipeline.worker_process import WorkerProcess

SUMMARY_SQL = """
SELECT segment, count() AS traces,
       round(avgIf(heuristics['refusal'], ts < toDateTime64('{drift_ts}', 3, 'UTC')), 3)
           AS refusal_before,
       round(avgIf(heuristics['refusal'], ts >= toDateTime64('{drift_ts}', 3, 'UTC')), 3)
           AS refusal_after
FROM traces FINAL
GROUP BY segment ORDER BY segment
"""
EVENTS_SQL = """
SELECT detected_at, segment, signal, detector, trace_id, round(mean_before, 3),
       round(mean_after, 3)
FROM drift_events FINAL WHERE detected_at > toDateTime64('{since}', 3, 'UTC')
ORDER BY detected_at
"""


@dataclass(frozen=True, slots=True)
class DemoResult:
    published: int
    stored: int
    dead_lettered: int
    drift_events: list[list[object]]
    seconds: float


def demo_settings(base: Settings, run_id: str) -> Settings:
    data_dir = base.data_dir / "demo"
    return base.model_copy(update={
        "traces_topic": f"driftline.demo.{run_id}.traces",
        "dlq_topic": f"driftline.demo.{run_id}.traces.dlq",
        "scoring_topic": f"driftline.demo.{run_id}.scoring",
        "control_topic": f"driftline.demo.{run_id}.control",
        "app_id": f"driftline-demo-{run_id}",
        "data_dir": data_dir,
        "clickhouse_url": f"chdb://{(data_dir / 'clickhouse').resolve()}",
    })


def run_demo(base: Settings, scenario: Scenario, *, rate: float, console: Console) -> DemoResult:
    started = time.monotonic()
    run_id = time.strftime("%Y%m%d%H%M%S")
    settings = demo_settings(base, run_id)
    scenario = Scenario(**{**{f: getattr(scenario, f) for f in scenario.__slots__},
                           "run_id": run_id})
    started_broker = False
    if kafka_local.run("status", settings) != 0:
        console.print("[bold]Starting the local Kafka broker[/bold] (first run fetches its jars)")
        if kafka_local.run("start", settings) != 0:
            raise SystemExit("could not start the local Kafka broker")
        started_broker = True
    # The demo's store is its own and starts empty, so its summary is this run's.
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    console.print(f"[bold]Starting the worker[/bold] (log: {worker.log_path})")
    worker.start()
    try:
        return _drive(settings, scenario, worker, rate=rate, console=console, started=started)
    finally:
        worker.stop()
        if started_broker:
            kafka_local.run("stop", settings)


def _drive(settings: Settings, scenario: Scenario, worker: WorkerProcess, *, rate: float,
           console: Console, started: float) -> DemoResult:
    invalid = count_invalid(scenario)
    total = scenario.n + invalid
    sent = [0]
    delivery: list[Delivery] = []

    def paced() -> object:
        t0 = time.monotonic()
        for i, message in enumerate(generate(scenario)):
            if rate and i % 100 == 0:
                ahead = i / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)  # pacing the demo's traffic, not synchronisation
            yield message

    def publisher() -> None:
        delivery.append(publish(settings, paced(),
                                on_sent=lambda: sent.__setitem__(0, sent[0] + 1)))

    thread = threading.Thread(target=publisher, name="publisher", daemon=True)
    console.print(f"[bold]Publishing {scenario.n:,} BANKING77 traces[/bold] "
                  f"({invalid} invalid) to {settings.traces_topic}; the refusal rate of "
                  f"[cyan]{scenario.drift_segment.key if scenario.drift_segment else '-'}[/cyan]"
                  f" jumps from {scenario.base_refusal:.0%} to {scenario.drifted_refusal:.0%} "
                  f"after {scenario.drift_at:.0%} of the stream")
    thread.start()
    seen: list[list[object]] = []
    since = "1970-01-01 00:00:00"
    stats: dict[str, object] = {}
    deadline = time.monotonic() + 600
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        pub = progress.add_task("published", total=total)
        done = progress.add_task("processed", total=total)
        while True:
            stats = worker_stats(settings)
            processed = int(stats.get("stored", 0)) + int(stats.get("dead_lettered_total", 0))
            progress.update(pub, completed=sent[0])
            progress.update(done, completed=processed)
            _, rows = worker_query(settings, EVENTS_SQL.format(since=since))
            for row in rows:
                seen.append(row)
                since = str(row[0])
                progress.console.print(
                    f"[red bold]DRIFT[/red bold] {row[1]}  signal={row[2]} ({row[3]}) "
                    f"rate {row[5]} -> {row[6]} (ADWIN kept the recent window)  at trace {row[4]}")
            if processed >= total and not thread.is_alive():
                break
            if not worker.alive():
                raise SystemExit(f"the worker stopped:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not all traces processed after 600s:\n{worker.tail()}")
            time.sleep(0.5)  # refresh rate of the live view
    thread.join()
    _summary(settings, scenario, seen, stats, console)
    return DemoResult(published=delivery[0].delivered if delivery else 0,
                      stored=int(stats.get("stored", 0)),
                      dead_lettered=int(stats.get("dead_lettered_total", 0)),
                      drift_events=seen, seconds=time.monotonic() - started)



def _summary(settings: Settings, scenario: Scenario, events: list[list[object]],
             stats: dict[str, object], console: Console) -> None:
    drift_from = int(scenario.n * scenario.drift_at)
    drift_ts = scenario.timestamp(drift_from)
    columns, rows = worker_query(settings, SUMMARY_SQL.format(
        drift_ts=drift_ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]))
    table = Table(title=f"Per segment, from ClickHouse (before/after {scenario.drift_at:.0%} "
                        "of the stream)")
    for c in (*columns, "alarms", "delay"):
        table.add_column(c.replace("_", " "))
    n_seg = len(scenario.segments)
    for row in rows:
        alarms = [e for e in events if e[1] == row[0]]
        delay = "-"
        if alarms and scenario.drift_segment and row[0] == scenario.drift_segment.key:
            first = int(str(alarms[0][4]).rsplit("-", 1)[1])
            delay = f"{(first - drift_from) // n_seg} traces"
        table.add_row(*(str(v) for v in row), str(len(alarms)), delay)
    console.print(table)
    console.print(f"stored {stats.get('stored')} traces, dead-lettered "
                  f"{stats.get('dead_lettered_total')} {stats.get('dead_lettered')}")
    console.print(f"Query it yourself: DRIFTLINE_CLICKHOUSE_URL={settings.clickhouse_url} "
                  "driftline sql \"SELECT segment, count() FROM traces FINAL GROUP BY segment\"")
