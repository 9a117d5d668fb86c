"""The `driftline` command."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pipeline.bench import bench_app
from pipeline.config import ConfigError, Settings, load_settings
from pipeline.golden.cli import golden_app

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="driftline: drift detection for LLM applications in production.")
kafka_app = typer.Typer(no_args_is_help=True, help="The local Apache Kafka broker (KRaft).")
app.add_typer(kafka_app, name="kafka")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter topic.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(bench_app, name="bench")
drift_app = typer.Typer(no_args_is_help=True, help="Drift alarms: list open ones, acknowledge.")
app.add_typer(drift_app, name="drift")
app.add_typer(golden_app, name="golden")
# Tables are the output: a pipe or CI log gets a readable width, not 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


def _settings() -> Settings:
    return load_settings()


@app.command()
def worker() -> None:
    """Run a Faust worker: traces in, ClickHouse rows, dead letters and drift events out."""
    from pipeline.topics import TopicError
    from pipeline.worker import run_worker

    try:
        run_worker(_settings())
    except TopicError as exc:
        raise SystemExit(f"driftline worker: {exc}") from None


@app.command()
def produce(
    file: Annotated[Path | None, typer.Option(help="JSONL of traces, one per line")] = None,
    demo: Annotated[int, typer.Option(help="publish N generated BANKING77 traces")] = 0,
    drift_at: Annotated[float, typer.Option(help="fraction of --demo after which to drift")] = 0.5,
    invalid_every: Annotated[int, typer.Option(help="with --demo, 1 invalid per N")] = 0,
) -> None:
    """Publish traces to the traces topic through confluent-kafka."""
    from pipeline.demo_traffic import Scenario, generate
    from pipeline.producer import publish, segment_key
    from pipeline.topics import ensure_topics

    settings = _settings()
    ensure_topics(settings)
    if file is not None:
        def lines() -> object:
            with file.open("rb") as fh:
                for line in fh:
                    line = line.rstrip(b"\r\n")
                    if not line:
                        continue
                    try:
                        key = segment_key(orjson.loads(line), settings.segment_fields).encode()
                    except (orjson.JSONDecodeError, AttributeError):
                        key = None  # published anyway: the worker dead-letters it with a reason
                    yield key, line
        messages = lines()
    elif demo:
        messages = generate(Scenario(n=demo, drift_at=drift_at, invalid_every=invalid_every))
    else:
        raise typer.BadParameter("give --file or --demo N")
    delivery = publish(settings, messages)  # type: ignore[arg-type]
    console.print(f"delivered {delivery.delivered:,} to {settings.traces_topic}, "
                  f"failed {delivery.failed}")
    if delivery.failed:
        err.print("\n".join(delivery.errors))
        raise typer.Exit(1)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL to run")] = None,
    file: Annotated[Path | None, typer.Option(help="read the SQL from this file")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Run SQL on driftline's ClickHouse (through the worker when it owns chdb)."""
    from pipeline.sql_client import SqlError, run_query

    if file is not None:
        query = file.read_text()
    if not query:
        raise typer.BadParameter("give a query or --file")
    try:
        columns, rows = run_query(_settings(), query)
    except SqlError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if fmt is Format.json:
        for row in rows:
            sys.stdout.write(orjson.dumps(dict(zip(columns, row, strict=True)),
                                          default=str).decode() + "\n")
    elif fmt is Format.csv:
        out = csv.writer(sys.stdout)
        out.writerow(columns)
        out.writerows(rows)
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


@app.command("demo")
def demo_command(
    traces: Annotated[int, typer.Option(help="number of traces")] = 20_000,
    rate: Annotated[float, typer.Option(help="traces per second (0: as fast as possible)")]
    = 4000.0,
    drift_at: Annotated[float, typer.Option(help="fraction of the stream before drift")] = 0.5,
) -> None:
    """Broker + worker + BANKING77 traffic with a drift injected part-way; prints what is seen."""
    from pipeline.demo import run_demo
    from pipeline.demo_traffic import Scenario

    result = run_demo(_settings(), Scenario(n=traces, drift_at=drift_at, invalid_every=500),
                      rate=rate, console=console)
    console.print(f"demo finished in {result.seconds:.1f}s")


OPEN_ALARMS_SQL = """
SELECT segment, signal, detector, count() AS alarms, min(detected_at) AS first,
       max(detected_at) AS last
FROM drift_events FINAL WHERE acknowledged = 0
GROUP BY segment, signal, detector ORDER BY last DESC
"""


@drift_app.command("list")
def drift_list() -> None:
    """Alarms not acknowledged yet, per segment and signal."""
    from pipeline.sql_client import SqlError, run_query

    try:
        columns, rows = run_query(_settings(), OPEN_ALARMS_SQL, migrate=True)
    except SqlError as exc:
        raise SystemExit(f"driftline drift list: {exc}") from None
    table = Table(*columns, title="open drift alarms")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


@drift_app.command("ack")
def drift_ack(
    segment: Annotated[str, typer.Argument(help="the segment, e.g. 'support-bot|gpt-4o'")],
    signal: Annotated[str, typer.Option(help="one signal only (default: all of them)")] = "",
    by: Annotated[str, typer.Option(help="who acknowledges (recorded with the alarms)")]
    = "",
) -> None:
    """Close a segment's open alarm episode: its detectors re-arm (on whichever worker
    holds the segment) and its alarms are marked acknowledged."""
    import getpass

    from pipeline.control import Ack
    from pipeline.producer import make_producer
    from pipeline.topics import ensure_topics

    settings = _settings()
    ensure_topics(settings)
    key, value = Ack(segment, signal, by or getpass.getuser()).encode()
    producer = make_producer(settings)
    producer.produce(settings.control_topic, key=key, value=value)
    if producer.flush(30) != 0:
        raise SystemExit("driftline drift ack: the command was not delivered to Kafka")
    console.print(f"acknowledged {segment} ({signal or 'all signals'}): the worker holding "
                  "it re-arms its detectors")


@dlq_app.command("show")
def dlq_show() -> None:
    """Count the dead-letter topic by reason."""
    from pipeline.dlq import summarize

    summary = summarize(_settings())
    title = f"{summary['topic']}: {summary['total']:,} dead letters"
    table = Table("reason", "messages", title=title)
    for reason, n in sorted(summary["by_reason"].items(), key=lambda kv: -kv[1]):
        table.add_row(reason, f"{n:,}")
    console.print(table)
    if summary.get("replayed_copies"):
        console.print(f"{summary['replayed_copies']:,} of them failed again after a replay")


@dlq_app.command("replay")
def dlq_replay(
    dry_run: Annotated[bool, typer.Option(help="count what would be replayed")] = False,
    delete_replayed: Annotated[bool, typer.Option(
        help="delete the replayed range from the DLQ afterwards (destructive)")] = False,
    max_replays: Annotated[int, typer.Option(help="skip letters already replayed this often")]
    = 1,
) -> None:
    """Send dead letters back through ingestion (after a fix); those that still fail
    return to the DLQ once."""
    from pipeline.dlq import replay

    result = replay(_settings(), max_replays=max_replays, dry_run=dry_run,
                    delete_replayed=delete_replayed)
    console.print(f"read {result.read:,}, republished {result.republished:,}, skipped "
                  f"{result.skipped_replayed:,} already replayed, failed {result.failed:,}"
                  + (" (dry run)" if result.dry_run else ""))
    if result.failed:
        err.print("\n".join(result.errors))
        raise typer.Exit(1)


def _kafka(command: str) -> None:
    from pipeline import kafka_local

    raise typer.Exit(kafka_local.run(command, _settings()))


@kafka_app.command("start")
def kafka_start() -> None:
    """Fetch the broker's jars if needed and start one KRaft node on 127.0.0.1."""
    _kafka("start")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker by its pid."""
    _kafka("stop")


@kafka_app.command("status")
def kafka_status() -> None:
    """Exit 0 when the local broker is running and accepting connections."""
    _kafka("status")


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]driftline: {exc}[/red]")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
