"""`driftline golden load|list|run|compare|promote|schedule|demo-set`."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

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
