"""`driftline golden load|list|run`."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.config import Settings, load_settings
from pipeline.golden.cases import GoldenCase, GoldenFileError, dataset_version, load_cases
from pipeline.golden.gate import Baseline, RunSummary, evaluate
from pipeline.golden.runner import CaseResult, Endpoint, run_cases
from pipeline.golden.scoring import GoldenScorer
from pipeline.golden.store import LIST_SQL, case_rows, json_each_row, result_rows, run_row
from pipeline.sql_client import SqlError, run_query

golden_app = typer.Typer(no_args_is_help=True,
                         help="The golden set: load, list, replay nightly, gate.")
console = Console()


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
    file: Annotated[Path, typer.Option(help="golden JSONL to replay")],
    run_id: Annotated[str | None, typer.Option(help="resume this run")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=512)] = 16,
    gate: Annotated[bool, typer.Option(help="exit 1 on a regression")] = False,
    min_pass_rate: Annotated[float | None, typer.Option()] = None,
    min_mean_score: Annotated[float | None, typer.Option()] = None,
    no_judge: Annotated[bool, typer.Option(help="heuristics and expectations only")] = False,
) -> None:
    """Replay the golden set through the model endpoint, score it like live traffic,
    store the results, and (with --gate) fail on a confident regression against the
    thresholds or the previous run of the same golden version."""
    settings = load_settings()
    try:
        cases = load_cases(file)
    except GoldenFileError as exc:
        raise SystemExit(f"driftline golden run: {exc}") from None
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    checkpoint = settings.data_dir / "golden" / "runs" / f"{run_id}.jsonl"
    endpoint = Endpoint(model=settings.model_name, base_url=settings.model_base_url,
                        api_key=_secret(settings.model_api_key),
                        system_prompt=settings.system_prompt)
    scorer = GoldenScorer(judge=None if no_judge else _judge(settings),
                          model=settings.model_name)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with Progress(TextColumn("golden run {task.fields[run]}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("run", total=len(cases), run=run_id)
        results = asyncio.run(run_cases(cases, endpoint, scorer, checkpoint=checkpoint,
                                        concurrency=concurrency,
                                        on_done=lambda _: progress.advance(task)))
    seconds = time.perf_counter() - t0
    summary = _summary(run_id, results)
    previous = _previous(settings, dataset_version(cases), run_id)
    verdict = evaluate(summary, Baseline(min_pass_rate=min_pass_rate,
                                         min_mean_score=min_mean_score, previous=previous))
    _store(settings, cases, results, run_id, started, verdict.passed)
    console.print(f"run {run_id}: {len(cases)} cases in {seconds:.1f}s "
                  f"({len(cases) / seconds:.1f} cases/s); pass rate {verdict.pass_rate}; "
                  f"mean judge score {verdict.mean_score}; baseline: {verdict.baseline}")
    for reason in verdict.reasons:
        console.print(f"[red]regression:[/red] {reason}")
    if gate and not verdict.passed:
        raise typer.Exit(1)


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else "unused"  # type: ignore[attr-defined]


def _judge(settings: Settings) -> object:
    from pipeline.scorers.judge import Judge, load_rubric

    return Judge(load_rubric(settings.judge_rubric), model=settings.judge_model,
                 base_url=settings.judge_base_url, api_key=_secret(settings.judge_api_key),
                 concurrency=settings.judge_concurrency)


def _summary(run_id: str, results: list[CaseResult]) -> RunSummary:
    return RunSummary(run_id, [r.passed for r in results],
                      [r.judge_score for r in results if r.judge_score is not None])


def _previous(settings: Settings, version: str, run_id: str) -> RunSummary | None:
    """The last gate-passing run of the same golden version: the baseline."""
    try:
        run_query(settings, "SELECT 1", migrate=True)
        _, rows = run_query(settings, (
            "SELECT run_id FROM golden_runs FINAL WHERE dataset_version = "
            f"'{version}' AND gate_passed = 1 AND run_id != '{run_id}' "
            "ORDER BY started_at DESC LIMIT 1"))
        if not rows:
            return None
        prev = rows[0][0]
        _, cases = run_query(settings, (
            "SELECT case_id, max(passed), maxIf(value, name = 'judge'), countIf(name = "
            f"'judge') FROM golden_results FINAL WHERE run_id = '{prev}' GROUP BY case_id"))
    except SqlError:
        return None
    return RunSummary(prev, [bool(c[1]) for c in cases], [c[2] for c in cases if c[3]])


def _store(settings: Settings, cases: list[GoldenCase], results: list[CaseResult],
           run_id: str, started: datetime, gate_passed: bool) -> None:
    version = dataset_version(cases)
    run_query(settings, json_each_row("golden_results", result_rows(
        run_id, cases, results, settings.segment_fields, settings.model_name)), migrate=True)
    run_query(settings, json_each_row("golden_runs", [run_row(
        run_id, version, cases, results, started, gate_passed, settings.model_name)]))
