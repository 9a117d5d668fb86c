"""The gate's error rates, measured on simulated runs where the truth is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.golden.cases import Expected, GoldenFileError, load_cases
from pipeline.golden.expectations import check
from pipeline.golden.gate import Baseline, RunSummary, evaluate


def simulated_run(rng: np.random.Generator, p_pass: float, mean: float, n: int,
                  name: str) -> RunSummary:
    return RunSummary(name, list(rng.random(n) < p_pass),
                      list(np.clip(rng.normal(mean, 0.15, n), 0, 1)))


def test_equal_quality_rarely_fails_the_gate() -> None:
    rng = np.random.default_rng(7)
    fails = sum(
        not evaluate(simulated_run(rng, 0.9, 0.8, 200, "now"),
                     Baseline(previous=simulated_run(rng, 0.9, 0.8, 200, "before"))).passed
        for _ in range(400))
    # Two one-sided 2.5 % tests (pass rate, mean score): at most ~5 % false fails.
    assert fails / 400 <= 0.06


def test_a_real_regression_fails_the_gate() -> None:
    rng = np.random.default_rng(8)
    caught = sum(
        not evaluate(simulated_run(rng, 0.75, 0.7, 200, "now"),
                     Baseline(previous=simulated_run(rng, 0.9, 0.8, 200, "before"))).passed
        for _ in range(200))
    assert caught / 200 >= 0.95


def test_thresholds() -> None:
    run = RunSummary("r", [True] * 60 + [False] * 40, [0.5] * 100)
    result = evaluate(run, Baseline(min_pass_rate=0.9, min_mean_score=0.8))
    assert not result.passed and len(result.reasons) == 2
    assert evaluate(run, Baseline(min_pass_rate=0.6, min_mean_score=0.5)).passed


def test_expectations() -> None:
    expected = Expected(must_include=("refund",), must_exclude=("password",),
                        json_schema={"type": "object", "required": ["answer"]})
    checks = {c.name: c.passed for c in check(expected, '{"answer": "Your refund is due"}')}
    assert checks == {"includes:refund": True, "excludes:password": True, "json_schema": True}
    checks = {c.name: c.passed for c in check(expected, "password: no refund")}
    assert checks == {"includes:refund": True, "excludes:password": False, "json_schema": False}


@pytest.mark.parametrize(("line", "message"), [
    (b'{"id": "a"}', "input: Field required"),
    (b"{oops", "not JSON"),
    (b'{"id": "a", "input": "x", "expected": {"must_contain": ["y"]}}', "must_contain"),
])
def test_bad_golden_files_name_the_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_bytes(b'{"id": "ok", "input": "fine"}\n' + line + b"\n")
    with pytest.raises(GoldenFileError, match=message) as info:
        load_cases(path)
    assert ":2:" in str(info.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_bytes(b'{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n')
    with pytest.raises(GoldenFileError, match="duplicate"):
        load_cases(path)
