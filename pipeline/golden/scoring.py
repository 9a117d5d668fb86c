"""Scores a golden answer with the live rubric: the same heuristics, the same judge, plus
the case's own expectations, so golden and live results sit on one scale."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.golden.cases import GoldenCase
from pipeline.golden.expectations import check
from pipeline.golden.runner import CaseResult, ModelAnswer
from pipeline.scorers.heuristics import FLAG_NAMES, HeuristicScorer
from pipeline.scorers.judge import Judge


@dataclass
class GoldenScorer:
    judge: Judge | None = None
    heuristics: HeuristicScorer = field(default_factory=HeuristicScorer)
    #: a judged answer passes from this normalised score up (0..1; 0.5 = the scale's middle)
    pass_score: float = 0.5
    model: str | None = None

    async def __call__(self, case: GoldenCase, answer: ModelAnswer) -> CaseResult:
        """Passed = the model answered, every expectation holds, no guardrail flag fired,
        and the judge (when it answered) scored at least ``pass_score``. A judge failure is
        recorded and leaves the verdict to the other checks: a judge outage must not
        fail a deploy gate."""
        result = CaseResult(answer=answer, passed=False)
        if answer.error:
            result.failures.append(f"model_error: {answer.error}")
            return result
        for c in check(case.expected, answer.output):
            result.scores[c.name] = float(c.passed)
            if not c.passed:
                result.failures.append(f"{c.name}: {c.detail}")
        for name, value, label in self.heuristics.score(
                case.input_text, answer.output, model=self.model, latency_ms=answer.latency_ms,
                input_tokens=answer.input_tokens, output_tokens=answer.output_tokens):
            result.scores[name] = value
            if label:
                result.labels[name] = label
            if name in FLAG_NAMES and value:
                result.failures.append(f"{name}{': ' + label if label else ''}")
        result.cost_usd = result.scores.get("cost_usd", 0.0)
        if self.judge is not None:
            verdict = await self.judge.score(case.id, case.input_text, answer.output)
            result.cost_usd += verdict.cost_usd
            if verdict.ok and verdict.value is not None:
                result.judge_score = verdict.value
                result.scores["judge"] = result.judge_score
                result.labels["judge"] = verdict.label
                if result.judge_score < self.pass_score:
                    result.failures.append(f"judge: {verdict.label} ({verdict.reason})")
                if case.expected.label and verdict.label != case.expected.label:
                    result.failures.append(f"judge label {verdict.label!r}, expected "
                                           f"{case.expected.label!r}")
            else:
                result.labels["judge_error"] = verdict.error
        result.passed = not result.failures
        return result
