"""`driftline golden load|list|run|compare|promote|schedule|demo-set`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pipeline.config import Settings, load_settings
from pipeline.golden.cases import GoldenCase, GoldenFileError, dataset_version, load_cases
from pipeline.golden.comparison import ComparisonResult, compare_with_live
from pipeline.golden.job import NoGoldenSet, new_run_id, run_golden, stored_cases
from pipeline.golden.store import LIST_SQL, case_rows, json_each_row
from pipeline.sql_client import run_query

golden_app = typer.Typer(no_args_is_help=True, help=(
    "The golden set: load, list, replay nightly, gate, compare with live, promote."))
# Tables are the output: a pipe or CI log gets a readable width, not 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)


@golden_app.command("load")
def load(file: Path, source: Annotated[str, typer.Option(help="where the cases came from")]
         = "curated") -> None:
    """Validate a golden JSONL file and store it as a new version (a content hash)."""
    settings = load_settings()
    try:
        cases = load_cases(file)
    except GoldenFileError as exc:
        raise SystemExit(f"driftline golden load: {exc}") from None
    version = dataset_version(cases)
    run_query(settings, json_each_row(
        "golden_cases", case_rows(cases, version, settings.segment_fields, source)),
              migrate=True)
    console.print(f"loaded {len(cases)} cases as golden version {version}")


@golden_app.command("list")
def list_versions() -> None:
    """The stored golden-set versions."""
    columns, rows = run_query(load_settings(), LIST_SQL, migrate=True)
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


@golden_app.command("run")
def run(
    file: Annotated[Path | None, typer.Option(
        help="golden JSONL to replay (default: the newest version loaded)")] = None,
    version: Annotated[str | None, typer.Option(help="a stored golden version")] = None,
    model: Annotated[str | None, typer.Option(
        help="the model to replay through (default DRIFTLINE_MODEL_NAME)")] = None,
    run_id: Annotated[str | None, typer.Option(help="resume this run")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 16,
    gate: Annotated[bool, typer.Option(help="exit 1 on a regression")] = False,
    min_pass_rate: Annotated[float | None, typer.Option()] = None,
    min_mean_score: Annotated[float | None, typer.Option()] = None,
    no_judge: Annotated[bool, typer.Option(help="heuristics and expectations only")] = False,
    compare: Annotated[bool, typer.Option(
        help="compare with the live window afterwards (report, drift events, Slack)")] = True,
) -> None:
    """Replay the golden set through the model endpoint, score it like live traffic,
    store the results, compare them with live traffic, and (with --gate) fail on a
    confident regression against the thresholds or the previous accepted run of the
    same golden version."""
    settings = load_settings()
    if model:
        settings = settings.model_copy(update={"model_name": model})
    cases = _cases(settings, file, version, "run")
    outcome = run_golden(settings, cases, run_id=run_id or new_run_id(),
                         concurrency=concurrency,
                         judge=settings.judge_enabled and not no_judge,
                         min_pass_rate=min_pass_rate, min_mean_score=min_mean_score,
                         console=console)
    console.print(outcome.describe())
    for reason in outcome.verdict.reasons:
        console.print(f"[red]regression:[/red] {reason}")
    if compare:
        _show(compare_with_live(settings, compare_id=outcome.run_id,
                                gate=outcome.gate_line(), console=console))
    if gate and not outcome.verdict.passed:
        raise typer.Exit(1)


@golden_app.command("compare")
def compare(
    golden_run: Annotated[str | None, typer.Option(
        help="compare with this golden run (default: the last accepted run per segment)")]
    = None,
    window_hours: Annotated[float | None, typer.Option(
        help="live window in hours (default DRIFTLINE_GOLDEN_WINDOW)", min=0.01)] = None,
    report: Annotated[bool, typer.Option(help="build the HTML report")] = True,
) -> None:
    """Compare the live window of every segment with its golden results: judge scores,
    guardrail flag rates, input coverage. Differences become drift_events
    (detector golden_compare); the summary goes to Slack when a webhook is set."""
    settings = load_settings()
    if window_hours:
        settings = settings.model_copy(update={"golden_window": timedelta(hours=window_hours)})
    _show(compare_with_live(settings, golden_run=golden_run, report=report, console=console))


def _cases(settings: Settings, file: Path | None, version: str | None, command: str
           ) -> list[GoldenCase]:
    if file is not None:
        try:
            return load_cases(file)
        except GoldenFileError as exc:
            raise SystemExit(f"driftline golden {command}: {exc}") from None
    try:
        return stored_cases(settings, version)[1]
    except NoGoldenSet as exc:
        raise SystemExit(f"driftline golden {command}: {exc}") from None


def _show(result: ComparisonResult) -> None:
    if not result.segments:
        console.print("golden vs live: no live segment with golden results in the window"
                      + (f" (live without golden: {', '.join(result.unmatched)})"
                         if result.unmatched else ""))
        return
    table = Table("segment", "verdict", "why", title="golden vs live")
    for c in result.comparisons:
        table.add_row(c.segment, "[red]differs[/red]" if c.flagged else "in line",
                      "\n".join(c.reasons) or "-")
    console.print(table)
    if result.unmatched:
        console.print(f"no golden results for: {', '.join(result.unmatched)}")
    console.print(f"{result.events} drift events (golden_compare)"
                  + (f"; report: {result.report} ({result.report_seconds:.1f}s)"
                     if result.report else ""))
    if result.slack_error:
        console.print(f"[red]Slack summary not sent:[/red] {result.slack_error}")


@golden_app.command("promote")
def promote(
    out: Annotated[Path, typer.Option(help="candidate cases to review (JSONL)")]
    = Path("golden-candidates.jsonl"),
    accept: Annotated[Path | None, typer.Option(
        help="store the reviewed candidates of this file as a new golden version")] = None,
    window_hours: Annotated[float | None, typer.Option(
        help="live window in hours (default DRIFTLINE_GOLDEN_WINDOW)", min=0.01)] = None,
    per_segment: Annotated[int, typer.Option(min=1, help="failing traces per segment")] = 50,
    pass_score: Annotated[float, typer.Option(
        help="a judge score below this (0..1) is a failure")] = 0.5,
    uncovered: Annotated[bool, typer.Option(
        help="also take inputs of the live clusters far from every golden input")] = True,
    golden_out: Annotated[Path | None, typer.Option(
        help="with --accept: also write the new version's cases to this JSONL")] = None,
) -> None:
    """Mine failing live traces (low judge score, guardrail flags, negative feedback,
    uncovered inputs) into candidate golden cases with their source_trace_id; review the
    file, then `--accept FILE` adds the kept ones as a new golden version."""
    from pipeline.golden.promote import (
        dedupe,
        failing_traces,
        read_reviewed,
        store_version,
        uncovered_candidates,
        version_sources,
        write_candidates,
    )
    from pipeline.golden.sources import Window

    settings = load_settings()
    if accept is not None:
        try:
            reviewed = read_reviewed(accept)
            base_version, existing = stored_cases(settings)
            version = store_version(settings, existing,
                                    version_sources(settings, base_version), reviewed)
        except (GoldenFileError, NoGoldenSet) as exc:
            raise SystemExit(f"driftline golden promote: {exc}") from None
        console.print(f"accepted {len(reviewed)} cases: golden version {version} "
                      f"(from {base_version})")
        if golden_out is not None:
            _, cases = stored_cases(settings, version)
            golden_out.write_bytes(b"".join(
                orjson.dumps(c.model_dump(mode="json", exclude_defaults=True)) + b"\n"
                for c in cases))
            console.print(f"wrote {len(cases)} cases to {golden_out}")
        return
    window_len = timedelta(hours=window_hours) if window_hours else settings.golden_window
    end = datetime.now(UTC)
    window = Window(end - window_len, end)
    with console.status("mining failing live traces…"):
        candidates = failing_traces(settings, window, pass_score=pass_score,
                                    per_segment=per_segment)
    if uncovered:
        with console.status("finding live inputs the golden set does not cover…"):
            candidates += uncovered_candidates(settings, window)
    candidates = dedupe(candidates)
    write_candidates(out, candidates)
    if not candidates:
        console.print(f"no failing live traces in the window; {out} is empty")
        return
    table = Table("segment", "candidates", title=f"golden candidates → {out}")
    for segment in sorted({c.segment for c in candidates}):
        table.add_row(segment, str(sum(c.segment == segment for c in candidates)))
    console.print(table)
    console.print(f"review {out} (delete the lines to drop, add expectations), then: "
                  f"driftline golden promote --accept {out}")


@golden_app.command("schedule")
def schedule(
    at: Annotated[str, typer.Option(help="time of day, HH:MM (24 h)")] = "02:00",
    tz: Annotated[str, typer.Option(help="IANA time zone of --at")] = "UTC",
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 16,
) -> None:
    """Run the nightly job every day at --at: replay the newest golden version, gate it,
    compare with live traffic, write the report and post the Slack summary."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from pipeline.golden.job import nightly
    from pipeline.golden.schedule import parse_at, run_daily

    try:
        when, zone = parse_at(at), ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = load_settings()

    def job() -> None:
        outcome = nightly(settings, concurrency=concurrency, console=console)
        console.print(outcome.describe())
        if outcome.comparison is not None:
            _show(outcome.comparison)

    run_daily(job, when, tz=zone,
              on_wait=lambda due: console.print(f"next golden run at {due.isoformat()}"))


@golden_app.command("demo-set")
def demo_set(
    out: Path,
    per_intent: Annotated[int, typer.Option(min=1, max=40)] = 2,
    apps: Annotated[str, typer.Option(help="comma-separated apps")] =
    "support-bot,card-assistant",
) -> None:
    """Write a demo golden set from the BANKING77 test split (CC BY 4.0, see
    pipeline/data/banking77/ATTRIBUTION.md): --per-intent queries of each of the 77
    intents for every app."""
    from pipeline.golden.banking77 import banking77_cases

    cases = banking77_cases(per_intent, tuple(a.strip() for a in apps.split(",") if a.strip()))
    out.write_bytes(b"".join(orjson.dumps(c.model_dump(mode="json", exclude_defaults=True))
                             + b"\n" for c in cases))
    console.print(f"wrote {len(cases)} BANKING77 cases to {out}")
