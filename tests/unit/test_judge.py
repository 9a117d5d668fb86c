"""The judge through the real openai SDK against the local simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import orjson
import pytest

from pipeline.scorers.judge import Judge, JudgeItem, JudgeStats, load_rubric
from pipeline.scorers.sampler import Budget
from pipeline.simulator import SimulatorConfig, SimulatorThread


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(hang_seconds=30.0, retry_after_ms=10)) as s:
        yield s


def _judge(sim: SimulatorThread, **kw: object) -> Judge:
    opts: dict[str, object] = {"timeout_s": 2.0, "max_retries": 2, "concurrency": 4}
    opts.update(kw)
    return Judge(load_rubric("helpfulness"), model="gpt-4o-mini", base_url=sim.base_url,
                 api_key="test-key", **opts)  # type: ignore[arg-type]


def test_structured_output_parsed_with_usage_and_cost(sim: SimulatorThread) -> None:
    judge = _judge(sim)
    good, bad = asyncio.run(judge.score_many([
        JudgeItem("t1", "Where is my card?", "It ships in 2 days; track it under Cards."),
        JudgeItem("t2", "Where is my card?", "I'm sorry, but I can't help with that."),
    ]))
    assert good.ok and good.score in (4.0, 5.0) and good.label == "good" and good.reason
    assert bad.ok and bad.score == 1.0 and bad.label == "bad"
    assert good.rubric_version == "helpfulness-v1"
    assert good.input_tokens > 0 and good.output_tokens > 0
    assert good.cost_usd == pytest.approx(
        (good.input_tokens * 0.15 + good.output_tokens * 0.60) / 1e6)
    row = good.row(sample_rate=0.05)
    assert (row.scorer, row.name, row.rubric_version, row.sample_rate) == (
        "judge", "helpfulness", "helpfulness-v1", 0.05)
    assert good.score is not None and row.value == (good.score - 1) / 4  # 1..5 -> 0..1
    assert sim.stats.requests["chat"] == 2


def test_429_then_success_is_retried(sim: SimulatorThread) -> None:
    result = asyncio.run(_judge(sim).score("t1", "Q?", "Fine answer [[sim:429-once:k1]]"))
    assert result.ok, result
    assert sim.stats.outcomes["429"] == 1
    assert sim.stats.requests["chat"] == 2


def test_failures_are_recorded_while_other_calls_go_on(sim: SimulatorThread) -> None:
    judge = _judge(sim, timeout_s=0.3, max_retries=1)
    items = [JudgeItem(f"ok{i}", f"Question {i}?", f"Answer number {i}.") for i in range(12)]
    items[3] = JudgeItem("e500", "Q?", "boom [[sim:500]]")
    items[6] = JudgeItem("hang", "Q?", "slow [[sim:timeout]]")
    items[9] = JudgeItem("bad", "Q?", "garbled [[sim:malformed]]")
    results = asyncio.run(judge.score_many(items))
    by_id = {r.trace_id: r for r in results}
    assert by_id["e500"].error == "http_500"
    assert by_id["hang"].error == "timeout"
    assert by_id["bad"].error == "malformed_json"
    assert math.isnan(by_id["bad"].row(1.0).value) and by_id["bad"].row(1.0).error
    assert all(r.ok for r in results if r.trace_id.startswith("ok")), results
    # 9 good + malformed once + 500 and timeout twice each (one retry)
    assert sim.stats.requests["chat"] == 9 + 1 + 2 + 2
    stats = JudgeStats()
    for r in results:
        stats.add(r)
    assert stats.ok == 9 and stats.errors == {"http_500": 1, "timeout": 1,
                                              "malformed_json": 1}


def test_cache_by_rubric_version_and_content(sim: SimulatorThread) -> None:
    judge = _judge(sim)

    async def twice() -> tuple[object, object]:
        first = await judge.score("a", "Q?", "Same answer.")
        second = await judge.score("b", "Q?", "Same answer.")
        return first, second

    first, second = asyncio.run(twice())
    assert second.cached and second.score == first.score and second.trace_id == "b"  # type: ignore[attr-defined]
    assert sim.stats.requests["chat"] == 1
    # A second event loop (a batch job after a Faust agent) reuses the cache and works.
    third = asyncio.run(judge.score("c", "Q?", "Same answer."))
    assert third.cached and sim.stats.requests["chat"] == 1


def test_budget_is_never_exceeded_under_a_burst(sim: SimulatorThread) -> None:
    budget = Budget(calls_per_minute=5, dollars_per_day=10.0)
    judge = _judge(sim, budget=budget, concurrency=16)
    items = [JudgeItem(f"t{i}", "Q?", f"Distinct answer {i}.") for i in range(60)]
    results = asyncio.run(judge.score_many(items))
    assert sum(r.ok for r in results) == 5
    assert sum(r.error == "budget_exhausted" for r in results) == 55
    assert sim.stats.requests["chat"] == 5

    tight = Budget(calls_per_minute=1000, dollars_per_day=0.0005)
    judge2 = _judge(sim, budget=tight, concurrency=16)
    before = sim.stats.requests["chat"]
    asyncio.run(judge2.score_many(
        [JudgeItem(f"u{i}", "Q?", f"Other answer {i}.") for i in range(200)]))
    assert tight.spent_today <= 0.0005
    assert 0 < sim.stats.requests["chat"] - before < 200


def test_scoring_stage_judges_embeds_and_survives_failures(sim: SimulatorThread) -> None:
    from datetime import UTC, datetime
    from functools import partial

    from detectors.adwin import Adwin
    from detectors.embedding import EmbeddingDrift
    from detectors.registry import SegmentRegistry
    from pipeline.sampled import score_sampled
    from pipeline.scorers.embedders import OpenAIEmbedder

    now = datetime(2026, 11, 22, tzinfo=UTC).isoformat()

    def request(i: int, segment: str, question: str, answer: str,
                reason: str = "rate") -> bytes:
        return orjson.dumps({"trace_id": f"t{i}", "ts": now, "segment": segment,
                             "model_version": "v1", "question": question, "answer": answer,
                             "rate": 0.1 if reason == "rate" else 1.0, "reason": reason})

    batch = [request(i, "bot|gpt", f"Where is my card number {i}?", f"It ships in {i} days.")
             for i in range(40)]
    batch.append(request(99, "bot|gpt", "Q?", "I'm sorry, but I can't help.", "risk:flag"))
    batch.append(request(98, "bot|llama", "Fine [[sim:500]]", "Fine [[sim:500]]"))
    registry = SegmentRegistry({"judge": Adwin,
                                "embedding": partial(EmbeddingDrift, warmup=200)})
    out = asyncio.run(score_sampled(
        _judge(sim, max_retries=0),
        OpenAIEmbedder("sim-embed", base_url=sim.base_url, max_retries=0), registry, batch))
    rows = {(r[0], r[4]): r for r in out.scores.rows}
    assert out.judged == 42 and out.judge_errors == 1
    assert rows[("t98", "judge")][-1] == "http_500"  # recorded, the others went on
    assert 0.0 <= rows[("t1", "judge")][6] <= 1.0  # the rubric's 1..5 on [0, 1]
    # Embeddings: the base-rate sample only (the risk-boosted t99 would bias the input
    # distribution), one failed batch for the segment whose text breaks the embedder.
    assert ("t99", "embedding") not in rows
    assert out.embedded == 40 and out.embed_errors == 1
    assert rows[("t98", "embedding")][-1].startswith("InternalServerError")
    assert rows[("t1", "embedding")][7] == "warmup"  # no reference yet: nan, not a guess
    assert registry.detector("bot|gpt", "embedding") is not None


def test_the_scoring_stage_calibrates_a_warmed_up_detector_off_the_event_loop(
        sim: SimulatorThread) -> None:
    import threading
    from datetime import UTC, datetime
    from functools import partial

    from detectors.embedding import EmbeddingDrift
    from detectors.registry import SegmentRegistry
    from pipeline.sampled import score_sampled
    from pipeline.scorers.embedders import OpenAIEmbedder

    calibrated_in: list[int] = []

    class Recording(EmbeddingDrift):
        def set_reference(self, reference: object, **kw: object) -> None:
            calibrated_in.append(threading.get_ident())
            super().set_reference(reference, **kw)  # type: ignore[arg-type]

    now = datetime(2026, 11, 22, tzinfo=UTC).isoformat()
    batch = [orjson.dumps({"trace_id": f"t{i}", "ts": now, "segment": "bot|gpt",
                           "model_version": "v1", "question": f"Where is card {i} of mine?",
                           "answer": "Soon.", "rate": 0.1, "reason": "rate"})
             for i in range(260)]
    registry = SegmentRegistry({"embedding": partial(Recording, warmup=200,
                                                     defer_calibration=True)})
    out = asyncio.run(score_sampled(
        None, OpenAIEmbedder("sim-embed", base_url=sim.base_url), registry, batch))
    detector = registry.detector("bot|gpt", "embedding")
    assert detector is not None and detector.calibrated  # type: ignore[attr-defined]
    assert calibrated_in and threading.get_ident() not in calibrated_in
    labels = [r[7] for r in out.scores.rows]
    # the 200 of the warm-up, then every later input judged against the new reference
    assert labels[:199] == ["warmup"] * 199
    assert set(labels[200:]) <= {"known", "novel"} and len(labels) == 260
    assert detector.n == 60  # type: ignore[attr-defined]  # none lost to the calibration


def test_dollar_budget_needs_a_priced_model() -> None:
    with pytest.raises(ValueError, match="no price"):
        Judge(load_rubric("helpfulness"), model="my-local-judge",
              budget=Budget(calls_per_minute=1, dollars_per_day=1.0))


def test_simulator_schedules_a_quality_drop_for_one_model() -> None:
    import openai

    from pipeline.scorers.heuristics import refusal

    config = SimulatorConfig(drop_model="llama", drop_after=10, drop_rate=1.0,
                             base_refusal_rate=0.0)
    with SimulatorThread(config) as sim:

        async def answers(model: str) -> list[str]:
            client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="k")
            out = []
            for i in range(20):  # sequential: the drop is scheduled by request count
                r = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"question {i}"}])
                out.append(r.choices[0].message.content or "")
            await client.close()
            return out

        llama, gpt = asyncio.run(answers("llama")), asyncio.run(answers("gpt"))
        assert [refusal(a) for a in llama] == [0.0] * 10 + [1.0] * 10
        assert not any(refusal(a) for a in gpt)
        assert sim.stats.chat_by_model == {"llama": 20, "gpt": 20}
