"""A worker killed mid-stream (SIGKILL: no commit, no flush) loses and duplicates nothing,
and its replacement picks the detector state up from the changelog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.demo_traffic import Scenario, generate
from pipeline.producer import publish
from pipeline.topics import ensure_topics
from tests.conftest import wait_for
from tests.integration.conftest import make_settings, scalar, stats

N = 12_000


def test_kill_and_restart_mid_stream(broker: str, tmp_path: Path, worker_factory: Any) -> None:
    # A stream without a shift: it must also end with no drift event.
    scenario = Scenario(n=N, drift_segment=None, seed=23, run_id="restart")
    settings = make_settings(tmp_path, broker, batch_size=500)
    ensure_topics(settings)
    assert publish(settings, generate(scenario)).delivered == N

    first = worker_factory(settings)
    wait_for(lambda: stats(settings)["stored"] >= 3_000, timeout=120,
             what="the first worker to store 3,000 traces")
    first.kill()

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
