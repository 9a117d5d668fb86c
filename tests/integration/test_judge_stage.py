"""Sampled traces through the real broker to the LLM judge (the OpenAI-compatible
simulator, through the real SDK): scores land in ClickHouse with their sampling rate,
the judge never goes over its budget, and a quality drop in one segment raises a judge
drift event for that segment only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo_traffic import Scenario, generate
from pipeline.producer import publish
from pipeline.simulator import SimulatorConfig, SimulatorThread
from pipeline.sql_client import worker_query
from pipeline.topics import ensure_topics
from tests.conftest import wait_for
from tests.integration.conftest import make_settings, scalar, stats

N = 12_000


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig()) as s:
        yield s


def test_sampled_traces_are_judged_and_a_quality_drop_is_detected(
        broker: str, tmp_path: Path, worker_factory: Any, sim: SimulatorThread) -> None:
    # The drifting segment starts refusing 30 % of questions; the judge scores refusals low.
    scenario = Scenario(n=N, drift_at=0.5, drifted_refusal=0.30, seed=31, run_id="judge")
    settings = make_settings(tmp_path, broker, judge_base_url=sim.base_url,
                             judge_model="sim-judge", sample_rate=0.2,
                             judge_calls_per_minute=100_000, embedder="hashing",
                             embedding_drift=True, embedding_warmup=200)
    ensure_topics(settings)
    assert publish(settings, generate(scenario)).delivered == N
    worker_factory(settings)
    wait_for(lambda: stats(settings)["stored"] == N, timeout=240, what=f"{N} traces stored")
    def all_judged() -> int:
        s = stats(settings)
        return int(s["sampled"]) if s["judged"] == s["sampled"] > 0 else 0

    sampled = wait_for(all_judged, timeout=240, what="every sampled trace judged")
    # 20 % of traffic plus every refusal (a guardrail flag always gets judged).
    assert 0.2 * N < sampled < 0.3 * N
    # Identical (question, answer) pairs are answered from the judge's cache.
    assert 0.95 * sampled <= sim.stats.requests["chat"] <= sampled
    judged = scalar(settings, "SELECT count() FROM scores FINAL WHERE scorer = 'judge'")
    assert judged == sampled
    rates = scalar(settings, "SELECT groupUniqArray(sample_rate) FROM scores FINAL "
                             "WHERE scorer = 'judge'")
    assert sorted(rates) == [pytest.approx(0.2), 1.0]
    _, rows = worker_query(settings, "SELECT DISTINCT segment FROM drift_events FINAL "
                                     "WHERE signal = 'judge'")
    assert rows == [[scenario.drift_segment.key]] if scenario.drift_segment else False
    # The base-rate sample's inputs were embedded (risk-boosted traces are not: they would
    # bias the input distribution), each row saying whether the input was novel.
    embedded = scalar(settings, "SELECT count() FROM scores FINAL WHERE scorer = 'embedding'")
    base_rate = scalar(settings, "SELECT count() FROM scores FINAL WHERE scorer = 'judge' "
                                 "AND sample_rate < 1")
    assert embedded == base_rate == stats(settings)["embedded"]
    labels = scalar(settings, "SELECT groupUniqArray(label) FROM scores FINAL "
                              "WHERE scorer = 'embedding'")
    assert sorted(labels)[0] == "known" and "warmup" in labels
