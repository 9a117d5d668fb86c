"""One golden run (replay, score, store, gate) and the nightly job (a run, then the
comparison with live traffic): shared by `driftline golden run` and `golden schedule`."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import Settings
from pipeline.golden.cases import GoldenCase, dataset_version
from pipeline.golden.comparison import ComparisonResult, compare_with_live
from pipeline.golden.gate import Baseline, GateResult, RunSummary, evaluate
from pipeline.golden.runner import CaseResult, Endpoint, run_cases
from pipeline.golden.scoring import GoldenScorer
from pipeline.golden.store import (
    LATEST_VERSION_SQL,
    case_from_row,
    case_rows,
    cases_sql,
    json_each_row,
    result_rows,
    run_row,
    sql_str,
)
from pipeline.scorers.judge import Judge, load_rubric
from pipeline.sql_client import SqlError, run_query


class NoGoldenSet(LookupError):
    pass


@dataclass(slots=True)
class RunOutcome:
    run_id: str
    version: str
    cases: int
    verdict: GateResult
    seconds: float
    comparison: ComparisonResult | None = None

    def describe(self) -> str:
        return (f"run {self.run_id} (golden {self.version}): {self.cases} cases in "
                f"{self.seconds:.1f}s ({self.cases / max(self.seconds, 1e-9):.1f} cases/s); "
                f"pass rate {self.verdict.pass_rate}; mean judge score "
                f"{self.verdict.mean_score}; baseline: {self.verdict.baseline}")

    def gate_line(self) -> str:
        state = "passed" if self.verdict.passed else "FAILED: " + "; ".join(
            self.verdict.reasons)
        return f"run `{self.run_id}` {state}"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def stored_cases(settings: Settings, version: str | None = None
                 ) -> tuple[str, list[GoldenCase]]:
    """A stored golden version (the newest loaded when ``version`` is None)."""
    run_query(settings, "SELECT 1", migrate=True)
    if version is None:
        _, rows = run_query(settings, LATEST_VERSION_SQL)
        if not rows:
            raise NoGoldenSet("no golden set stored: run `driftline golden load FILE` first")
        version = str(rows[0][0])
    _, rows = run_query(settings, cases_sql(version))
    if not rows:
        raise NoGoldenSet(f"no golden version {version!r}")
    return version, [case_from_row(r) for r in rows]


def _judge(settings: Settings) -> Judge:
    key = settings.judge_api_key.get_secret_value() if settings.judge_api_key else "unused"
    return Judge(load_rubric(settings.judge_rubric), model=settings.judge_model,
                 base_url=settings.judge_base_url, api_key=key,
                 concurrency=settings.judge_concurrency)


def run_golden(settings: Settings, cases: list[GoldenCase], *, run_id: str,
               concurrency: int = 16, judge: bool = True, min_pass_rate: float | None = None,
               min_mean_score: float | None = None, console: Console | None = None
               ) -> RunOutcome:
    """Replay ``cases`` through the model endpoint, score them like live traffic, store
    the results and apply the gate (the verdict is stored with the run)."""
    console = console or Console(quiet=True)
    checkpoint = settings.data_dir / "golden" / "runs" / f"{run_id}.jsonl"
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else "unused"
    endpoint = Endpoint(model=settings.model_name, base_url=settings.model_base_url,
                        api_key=key, system_prompt=settings.system_prompt)
    scorer = GoldenScorer(judge=_judge(settings) if judge else None, model=settings.model_name)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with Progress(TextColumn("golden run {task.fields[run]}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("run", total=len(cases), run=run_id)
        async def replay() -> list[CaseResult]:
            try:
                return await run_cases(cases, endpoint, scorer, checkpoint=checkpoint,
                                       concurrency=concurrency,
                                       on_done=lambda _: progress.advance(task))
            finally:
                if scorer.judge is not None:
                    await scorer.judge.aclose()

        results = asyncio.run(replay())
    seconds = time.perf_counter() - t0
    version = dataset_version(cases)
    verdict = evaluate(_summary(run_id, results), Baseline(
        min_pass_rate=min_pass_rate, min_mean_score=min_mean_score,
        previous=_previous(settings, version, run_id)))
    _store_cases_once(settings, cases, version)
    run_query(settings, json_each_row("golden_results", result_rows(
        run_id, cases, results, settings.segment_fields, settings.model_name)), migrate=True)
    run_query(settings, json_each_row("golden_runs", [run_row(
        run_id, version, cases, results, started, verdict.passed, settings.model_name)]))
    return RunOutcome(run_id, version, len(cases), verdict, seconds)


def _store_cases_once(settings: Settings, cases: list[GoldenCase], version: str) -> None:
    """A run of a file never loaded still needs its cases' inputs stored: the comparison
    with live traffic measures coverage against them."""
    _, rows = run_query(settings, "SELECT count() FROM golden_cases WHERE dataset_version = "
                                  f"{sql_str(version)}", migrate=True)
    if not rows[0][0]:
        run_query(settings, json_each_row("golden_cases", case_rows(
            cases, version, settings.segment_fields, "run")))


def _summary(run_id: str, results: list[CaseResult]) -> RunSummary:
    return RunSummary(run_id, [r.passed for r in results],
                      [r.judge_score for r in results if r.judge_score is not None])


def _previous(settings: Settings, version: str, run_id: str) -> RunSummary | None:
    """The last gate-passing run of the same golden version: the baseline."""
    try:
        run_query(settings, "SELECT 1", migrate=True)
        _, rows = run_query(settings, (
            "SELECT run_id FROM golden_runs FINAL WHERE dataset_version = "
            f"{sql_str(version)} AND gate_passed = 1 AND run_id != {sql_str(run_id)} "
            "ORDER BY started_at DESC LIMIT 1"))
        if not rows:
            return None
        prev = rows[0][0]
        _, cases = run_query(settings, (
            "SELECT case_id, max(passed), maxIf(value, name = 'judge'), countIf(name = "
            f"'judge') FROM golden_results FINAL WHERE run_id = {sql_str(prev)} "
            "GROUP BY case_id"))
    except SqlError:
        return None
    return RunSummary(prev, [bool(c[1]) for c in cases], [c[2] for c in cases if c[3]])


def nightly(settings: Settings, *, version: str | None = None, concurrency: int = 16,
            compare: bool = True, report: bool = True, console: Console | None = None
            ) -> RunOutcome:
    """The scheduled job: replay the newest golden version, then compare with live."""
    version, cases = stored_cases(settings, version)
    outcome = run_golden(settings, cases, run_id=new_run_id(), concurrency=concurrency,
                         judge=settings.judge_enabled, console=console)
    if compare:
        outcome.comparison = compare_with_live(settings, compare_id=outcome.run_id,
                                               report=report, gate=outcome.gate_line(),
                                               console=console)
    return outcome
