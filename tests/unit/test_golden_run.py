"""A golden run against the OpenAI-compatible simulator, through the real SDK: every case
answered and scored, a killed run resumes without resending, a regressed model fails the
gate and a good one passes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.golden.cases import Expected, GoldenCase
from pipeline.golden.gate import Baseline, RunSummary, evaluate
from pipeline.golden.runner import Endpoint, load_checkpoint, run_cases
from pipeline.golden.scoring import GoldenScorer
from pipeline.scorers.judge import Judge, load_rubric
from pipeline.simulator import SimulatorConfig, SimulatorThread

CASES = [GoldenCase(id=f"c{i}", input=f"Question {i}: where is my card?", tags=("card",),
                    expected=Expected(must_exclude=("password",)))
         for i in range(120)]


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    config = SimulatorConfig(base_refusal_rate=0.02, drop_model="sim-bad", drop_rate=0.4,
                             seed=3)
    with SimulatorThread(config) as s:
        yield s


def run(sim: SimulatorThread, model: str, checkpoint: Path) -> list:  # type: ignore[type-arg]
    judge = Judge(load_rubric("helpfulness"), model="sim-judge", base_url=sim.base_url)
    scorer = GoldenScorer(judge=judge, model=model)
    endpoint = Endpoint(model=model, base_url=sim.base_url, system_prompt="Be brief.")
    return asyncio.run(run_cases(CASES, endpoint, scorer, checkpoint=checkpoint,
                                 concurrency=16))


def summary(name: str, results: list) -> RunSummary:  # type: ignore[type-arg]
    return RunSummary(name, [r.passed for r in results],
                      [r.judge_score for r in results if r.judge_score is not None])


def test_run_scores_every_case_and_the_gate_tells_good_from_bad(
        sim: SimulatorThread, tmp_path: Path) -> None:
    good = run(sim, "sim-good", tmp_path / "good.jsonl")
    assert len(good) == len(CASES) and all(r.answer.output for r in good)
    assert all(r.judge_score is not None for r in good)
    bad = run(sim, "sim-bad", tmp_path / "bad.jsonl")
    baseline = Baseline(previous=summary("good", good))
    assert not evaluate(summary("bad", bad), baseline).passed
    again = run(sim, "sim-good", tmp_path / "good-again.jsonl")
    assert evaluate(summary("again", again), baseline).passed


def test_a_resumed_run_sends_only_what_is_missing(sim: SimulatorThread, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.jsonl"
    first = run(sim, "sim-good", checkpoint)
    lines = checkpoint.read_bytes().splitlines()
    # A run killed after 50 cases, its last line cut mid-write:
    checkpoint.write_bytes(b"\n".join(lines[:50]) + b"\n" + lines[50][:20])
    assert len(load_checkpoint(checkpoint)) == 50
    before = sim.stats.chat_by_model["sim-good"]
    resumed = run(sim, "sim-good", checkpoint)
    assert sim.stats.chat_by_model["sim-good"] - before == len(CASES) - 50
    assert [r.answer.case_id for r in resumed] == [r.answer.case_id for r in first]
