"""A worker killed mid-stream (SIGKILL: no commit, no flush) loses and duplicates nothing,
and its replacement picks the detector state up from the changelog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.demo_traffic import Scenario, generate
from pipeline.producer import publish
from pipeline.topics import ensure_topics
from tests.conftest import wait_for
from tests.integration.conftest import make_settings, scalar, stats, topic_size

N = 12_000


def test_kill_and_restart_mid_stream(broker: str, tmp_path: Path, worker_factory: Any) -> None:
    # A stream without a shift: it must also end with no drift event.
    scenario = Scenario(n=N, drift_segment=None, seed=23, run_id="restart")
    settings = make_settings(tmp_path, broker, batch_size=500)
    ensure_topics(settings)
    # Two thirds first: the worker is killed while it works through them (wherever it
    # is then, even between a store and its commit), the rest arrives for its successor.
    messages = list(generate(scenario))
    assert publish(settings, messages[: 2 * N // 3]).delivered == 2 * N // 3

    first = worker_factory(settings)
    wait_for(lambda: stats(settings)["stored"] >= 3_000, timeout=120,
             what="the first worker to store 3,000 traces")
    # ... and to have checkpointed detector state (a kill before that loses nothing
    # either, but leaves no state for the replacement to pick up).
    changelog = f"{settings.app_id}-detector-state-changelog"
    wait_for(lambda: topic_size(settings, changelog) > 0, timeout=60,
             what="detector state in the changelog")
    first.kill()
    assert publish(settings, messages[2 * N // 3:]).delivered == N - 2 * N // 3

    second = worker_factory(settings)
    wait_for(lambda: scalar(settings, "SELECT count() FROM traces FINAL") == N, timeout=180,
             what=f"{N} distinct traces after the restart")
    assert scalar(settings, "SELECT uniqExact(trace_id) FROM traces") == N
    assert scalar(settings, "SELECT countIf(mapContains(heuristics, 'refusal')) "
                            "FROM traces FINAL") == N
    # The replacement restored per-segment detector state instead of starting cold.
    assert stats(settings)["restored_segments"] >= 1
    assert scalar(settings, "SELECT count() FROM drift_events FINAL") == 0
    assert second.alive()
