"""Golden versus live on the embedded ClickHouse engine: golden runs through the simulator
(real openai SDK, the simulator's judge), a live window written as the worker writes it
(traces, heuristic flags, judge scores from the same judge), then the comparison, its
drift events, the Evidently report, the Slack summary, and promotion of the failures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import orjson
import pytest

from pipeline.config import Settings, load_settings
from pipeline.demo_traffic import queries
from pipeline.golden.banking77 import banking77_cases
from pipeline.golden.cases import dataset_version
from pipeline.golden.comparison import compare_with_live
from pipeline.golden.job import run_golden, stored_cases
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
from pipeline.golden.store import case_rows, json_each_row
from pipeline.scorers.heuristics import HeuristicScorer
from pipeline.scorers.judge import Judge, JudgeItem, JudgeResult, load_rubric
from pipeline.simulator import SimulatorConfig, SimulatorThread
from pipeline.sql_client import run_query
from tests.unit.test_slack_alerts import Recorder

#: the static embedder's table takes ~2 minutes to build: one cache for every test run
EMBEDDER_CACHE = Path.home() / ".cache" / "driftline" / "embedders"
OFF_TOPIC = (
    "What is the weather in {x} tomorrow?", "Recommend a good pizza restaurant in {x}.",
    "Who won the football match in {x} yesterday?", "How many people live in {x}?",
    "What time does the museum in {x} open?", "Write a short poem about {x}.",
)
CITIES = ("Paris", "Berlin", "Madrid", "Lisbon", "Rome", "Oslo", "Vienna", "Prague",
          "Dublin", "Athens", "Warsaw", "Zurich")


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    # sim-b answers the golden set (154 cases) well, then refuses 30 % of questions.
    config = SimulatorConfig(base_refusal_rate=0.03, drop_model="sim-b", drop_after=154,
                             drop_rate=0.3, seed=5)
    with SimulatorThread(config) as s:
        yield s


@pytest.fixture
def slack() -> Iterator[Recorder]:
    server = Recorder()
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings_for(tmp: Path, sim: SimulatorThread, **extra: object) -> Settings:
    return load_settings(data_dir=tmp, web_port=1, model_base_url=sim.base_url,
                         judge_base_url=sim.base_url, judge_model="sim-judge",
                         embedder_cache_dir=EMBEDDER_CACHE, **extra)


async def _live_answers(sim: SimulatorThread, asks: list[tuple[str, str]]) -> list[str]:
    """The simulator as the production model: one chat call per live question."""
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="unused")
    gate = asyncio.Semaphore(32)

    async def ask(model: str, text: str) -> str:
        async with gate:
            r = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": text}])
            return r.choices[0].message.content or ""

    try:
        return list(await asyncio.gather(*(ask(m, t) for m, t in asks)))
    finally:
        await client.close()


async def _judged(sim: SimulatorThread, items: list[JudgeItem]) -> list[JudgeResult]:
    judge = Judge(load_rubric("helpfulness"), model="sim-judge", base_url=sim.base_url,
                  concurrency=32)
    try:
        return await judge.score_many(items)
    finally:
        await judge.aclose()


def live_traffic(settings: Settings, sim: SimulatorThread, now: datetime) -> None:
    """Written as the worker writes it (traces, heuristic flags, judge scores) for three
    segments with golden results and one without: support-bot|sim-a as good as golden,
    support-bot|sim-b after its quality drop, card-assistant|sim-a half off-topic (far
    from every golden input), and support-bot|sim-c, which no golden run replayed."""
    rng = random.Random(11)
    pool = queries()
    plan = [("support-bot", "sim-a", 400, 0.0), ("support-bot", "sim-b", 400, 0.0),
            ("card-assistant", "sim-a", 400, 0.5), ("support-bot", "sim-c", 60, 0.0)]
    rows = []
    for app, model, n, off_topic in plan:
        for i in range(n):
            if rng.random() < off_topic:
                text, intent = rng.choice(OFF_TOPIC).format(x=rng.choice(CITIES)), "other"
            else:
                text, intent = pool[rng.randrange(len(pool))]
            ts = (now - timedelta(minutes=rng.uniform(1, 600))).isoformat()
            rows.append((f"{app}-{model}-{i:04d}", ts, app, model, text, intent))
    outputs = asyncio.run(_live_answers(sim, [(r[3], r[4]) for r in rows]))
    verdicts = asyncio.run(_judged(sim, [JudgeItem(r[0], r[4], o)
                                         for r, o in zip(rows, outputs, strict=True)]))
    heuristics = HeuristicScorer()
    traces, scores = [], []
    for (trace_id, ts, app, model, text, intent), output, v in zip(rows, outputs, verdicts,
                                                                    strict=True):
        segment = f"{app}|{model}"
        traces.append({"trace_id": trace_id, "ts": ts, "segment": segment, "app": app,
                       "route": intent, "model": model, "input": text, "output": output,
                       "feedback": -1.0 if trace_id.endswith("-0000") else None,
                       "error": ""})
        for name, value, label in heuristics.score(text, output, model=model):
            scores.append({"trace_id": trace_id, "ts": ts, "segment": segment,
                           "scorer": "heuristics", "name": name, "value": value,
                           "label": label})
        assert v.ok and v.score is not None
        scores.append({"trace_id": trace_id, "ts": ts, "segment": segment,
                       "scorer": "judge", "name": "helpfulness", "value": (v.score - 1) / 4,
                       "label": v.label, "sample_rate": 1.0})
    run_query(settings, json_each_row("traces", traces), migrate=True)
    run_query(settings, json_each_row("scores", scores))


def test_compare_flags_the_segments_that_differ_and_promotes_their_failures(
        tmp_path: Path, sim: SimulatorThread, slack: Recorder) -> None:
    settings = settings_for(tmp_path, sim, slack_webhook_url=slack.url)
    cases = banking77_cases(per_intent=1, apps=("support-bot", "card-assistant"))
    version = dataset_version(cases)
    run_query(settings, json_each_row("golden_cases", case_rows(
        cases, version, settings.segment_fields, "curated")), migrate=True)
    for model in ("sim-a", "sim-b"):
        outcome = run_golden(settings.model_copy(update={"model_name": model}), cases,
                             run_id=f"night-{model}", concurrency=32)
        assert outcome.verdict.passed, outcome.verdict.reasons
    now = datetime.now(UTC)
    live_traffic(settings, sim, now)

    result = compare_with_live(settings, compare_id="cmp1", now=now)

    by_segment = {c.segment: c for c in result.comparisons}
    assert sorted(by_segment) == ["card-assistant|sim-a", "support-bot|sim-a",
                                  "support-bot|sim-b"]
    assert result.unmatched == ["support-bot|sim-c"]
    assert by_segment["support-bot|sim-a"].reasons == []
    assert set(by_segment["support-bot|sim-b"].flagged_signals) == {"judge", "refusal"}
    assert by_segment["card-assistant|sim-a"].flagged_signals == ["coverage"]
    cover = by_segment["card-assistant|sim-a"].coverage
    assert cover is not None and 0.4 < cover.uncovered_fraction < 0.7
    # The uncovered clusters are the off-topic questions.
    examples = [e for c in cover.clusters for e in c.examples]
    assert examples and all(any(city in e for city in CITIES) for e in examples)
    # Reference: each segment's own golden results (golden app and model).
    assert by_segment and all(s.golden.run_id == f"night-{s.live.segment.split('|')[1]}"
                              for s in result.segments)

    _, events = run_query(settings, "SELECT segment, signal, severity, reference_version, "
                                    "details['report'] FROM drift_events FINAL WHERE "
                                    "detector = 'golden_compare' ORDER BY segment, signal")
    assert [(e[0], e[1]) for e in events] == [
        ("card-assistant|sim-a", "coverage"), ("support-bot|sim-b", "judge"),
        ("support-bot|sim-b", "refusal")]
    assert {e[3] for e in events} == {"night-sim-a", "night-sim-b"}
    assert result.report is not None and {e[4] for e in events} == {str(result.report)}
    html = result.report.read_text()
    assert "support-bot|sim-b" in html and "DIFFERS" in html and "Input embedding drift" in html
    assert len(slack.bodies) == 1 and str(result.report) in slack.bodies[0]["text"]
    assert "2 of 3 segments differ" in slack.bodies[0]["text"]

    # Re-running the same comparison replaces its rows rather than adding to them.
    compare_with_live(settings, compare_id="cmp1", now=now, report=False)
    _, count = run_query(settings, "SELECT count() FROM drift_events FINAL "
                                   "WHERE detector = 'golden_compare'")
    assert count == [[3]]

    # Promotion: refusals of sim-b, the negative feedback, the off-topic clusters.
    window = Window(now - timedelta(hours=24), now)
    candidates = dedupe(failing_traces(settings, window, per_segment=500)
                        + uncovered_candidates(settings, window))
    sources = {c.trace_id for c in candidates}
    _, refused = run_query(settings, "SELECT trace_id FROM scores_all WHERE segment = "
                                     "'support-bot|sim-b' AND name = 'refusal' AND value = 1")
    # Identical refusals of the same question collapse into one candidate.
    assert len(refused) > 60 and len({r[0] for r in refused} & sources) > 60
    assert "support-bot-sim-a-0000" in sources  # thumbs down
    uncovered = [c for c in candidates if any(r.startswith("uncovered") for r in c.reasons)]
    assert uncovered and all(c.segment == "card-assistant|sim-a" for c in uncovered)
    out = tmp_path / "candidates.jsonl"
    write_candidates(out, candidates)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert all(line["source_trace_id"] == line["id"].removeprefix("prod-") for line in lines)
    assert all(line["review"]["reasons"] for line in lines)
    # The reviewer keeps ten.
    out.write_bytes(b"\n".join(out.read_bytes().splitlines()[:10]))
    new_version = store_version(settings, cases, version_sources(settings, version),
                                read_reviewed(out))
    stored_version, stored = stored_cases(settings)
    assert stored_version == new_version and len(stored) == len(cases) + 10
    _, promoted = run_query(settings, "SELECT count() FROM golden_cases FINAL WHERE "
                                      f"dataset_version = '{new_version}' AND source = "
                                      "'production' AND source_trace_id != ''")
    assert promoted == [[10]]
