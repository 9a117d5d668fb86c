"""The regression gate: does this run's quality fall below its baseline, confidently?

A baseline is either fixed thresholds (pass rate, mean judge score) or the previous
accepted run. The gate fails only when the confidence interval lies wholly below the
baseline (beyond an optional tolerance): a golden set of 100 cases cannot tell 88 % from
90 %, and a gate that fails on noise gets switched off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.golden.stats import (
    Interval,
    mean_difference,
    mean_interval,
    proportion_difference,
    wilson,
)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the gate needs of a run: per-case pass/fail and judge scores in [0, 1]."""

    run_id: str
    passed: Sequence[bool]
    scores: Sequence[float]

    @property
    def pass_rate(self) -> Interval:
        return wilson(sum(self.passed), len(self.passed))

    @property
    def mean_score(self) -> Interval:
        return mean_interval(self.scores)


@dataclass(frozen=True, slots=True)
class Baseline:
    min_pass_rate: float | None = None
    min_mean_score: float | None = None
    previous: RunSummary | None = None
    tolerance: float = 0.0

    def describe(self) -> str:
        if self.previous is not None:
            return f"previous accepted run {self.previous.run_id}"
        return (f"thresholds pass_rate>={self.min_pass_rate} "
                f"mean_score>={self.min_mean_score}")


@dataclass(slots=True)
class GateResult:
    passed: bool
    baseline: str
    pass_rate: Interval
    mean_score: Interval
    reasons: list[str] = field(default_factory=list)


def evaluate(run: RunSummary, baseline: Baseline) -> GateResult:
    """Apply the gate.

    >>> good = RunSummary("r1", [True] * 92 + [False] * 8, [0.9] * 50 + [0.8] * 50)
    >>> evaluate(good, Baseline(min_pass_rate=0.85, min_mean_score=0.8)).passed
    True
    >>> bad = RunSummary("r2", [True] * 70 + [False] * 30, [0.7] * 50 + [0.6] * 50)
    >>> result = evaluate(bad, Baseline(previous=good))
    >>> result.passed, result.reasons[0].split(":")[0]
    (False, 'pass rate regressed')
    """
    result = GateResult(True, baseline.describe(), run.pass_rate, run.mean_score)
    tol = baseline.tolerance
    if baseline.previous is not None:
        prev = baseline.previous
        diff = proportion_difference(sum(run.passed), len(run.passed),
                                     sum(prev.passed), len(prev.passed))
        if diff.high < -tol:
            result.reasons.append(f"pass rate regressed: {diff} vs {prev.run_id}")
        if run.scores and prev.scores:
            mdiff = mean_difference(run.scores, prev.scores)
            if mdiff.high < -tol:
                result.reasons.append(f"mean judge score regressed: {mdiff} vs {prev.run_id}")
    if baseline.min_pass_rate is not None and run.pass_rate.high < baseline.min_pass_rate - tol:
        result.reasons.append(f"pass rate {run.pass_rate} below {baseline.min_pass_rate}")
    if (baseline.min_mean_score is not None and run.scores
            and run.mean_score.high < baseline.min_mean_score - tol):
        result.reasons.append(f"mean judge score {run.mean_score} below "
                              f"{baseline.min_mean_score}")
    result.passed = not result.reasons
    return result
