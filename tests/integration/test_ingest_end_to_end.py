"""N traces in means N rows in ClickHouse, the invalid ones in the dead-letter topic,
and drift events only where the signal shifted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.demo_traffic import DEFAULT_SEGMENTS, Scenario, count_invalid, generate
from pipeline.producer import publish
from pipeline.sql_client import worker_query
from pipeline.topics import ensure_topics
from sinks.dead_letter import reason_of
from tests.conftest import wait_for
from tests.integration.conftest import drain_topic, make_settings, scalar, stats

N = 10_000
SCENARIO = Scenario(n=N, invalid_every=200, drift_at=0.5, drifted_refusal=0.30, seed=11,
                    run_id="e2e")
OVERSIZE = orjson.dumps({"trace_id": "big", "timestamp": 1_700_000_000_000, "input": "x",
                         "output": "y" * 8000})


@pytest.fixture(scope="module")
def run(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pipeline.worker_process import WorkerProcess

    tmp: Path = tmp_path_factory.mktemp("e2e")
    settings = make_settings(tmp, broker, max_message_bytes=4096)
    ensure_topics(settings)
    messages = [*generate(SCENARIO), (b"x|y", OVERSIZE)]
    delivery = publish(settings, messages)
    assert delivery.delivered == len(messages), delivery.errors
    worker = WorkerProcess(settings, tmp / "worker.log")
    worker.start()
    try:
        expected = len(messages)
        wait_for(lambda: (s := stats(settings))["stored"] + s["dead_lettered_total"] >= expected,
                 timeout=240, what=f"{expected} messages processed")
        yield settings, messages
    finally:
        worker.stop()


def test_every_valid_trace_is_one_row(run: tuple[Settings, list[Any]]) -> None:
    settings, _ = run
    assert scalar(settings, "SELECT count() FROM traces FINAL") == N
    assert scalar(settings, "SELECT uniqExact(trace_id) FROM traces") == N
    per_segment = scalar(settings, "SELECT groupArray(c) FROM (SELECT count() AS c "
                                   "FROM traces FINAL GROUP BY segment)")
    assert sorted(per_segment) == [N // len(DEFAULT_SEGMENTS)] * len(DEFAULT_SEGMENTS)
    assert scalar(settings, "SELECT countIf(mapContains(heuristics, 'refusal')) "
                            "FROM traces FINAL") == N


def test_invalid_messages_are_dead_lettered_with_reason_and_original_bytes(
    run: tuple[Settings, list[Any]],
) -> None:
    settings, messages = run
    invalid = count_invalid(SCENARIO) + 1  # + the oversize one
    dead = drain_topic(settings, settings.dlq_topic, invalid)
    assert len(dead) == invalid
    reasons = Counter(reason_of(m.headers()) for m in dead)
    assert reasons == {"invalid_json": 20, "not_an_object": 10, "missing_field": 10,
                       "invalid_field": 10, "too_large": 1}
    sent_invalid = Counter(v for _, v in messages if not v.startswith(b'{"trace_id":"e2e-'))
    assert Counter(m.value() for m in dead) == sent_invalid
    assert stats(settings)["dead_lettered_total"] == invalid
    # each on the partition its record came from (``driftline.source``: topic/partition/offset)
    for m in dead:
        source = dict(m.headers())["driftline.source"].decode()
        assert m.partition() == int(source.split("/")[-2])


def test_shift_raises_drift_only_for_the_shifted_segment(run: tuple[Settings, list[Any]]) -> None:
    settings, _ = run
    _, rows = worker_query(
        settings, "SELECT segment, trace_id FROM drift_events FINAL ORDER BY detected_at")
    shifted = SCENARIO.drift_segment
    assert shifted is not None
    segments = {segment for segment, _ in rows}
    assert segments == {shifted.key}, f"drift events for stable segments: {rows}"
    first = int(rows[0][1].rsplit("-", 1)[1])
    drift_from = int(SCENARIO.n * SCENARIO.drift_at)
    # Detected after the shift, within 400 traces of that segment (ADWIN delta=0.002).
    assert drift_from <= first < drift_from + 400 * len(DEFAULT_SEGMENTS)


def test_metrics_expose_counters_and_lag_reaches_zero(run: tuple[Settings, list[Any]]) -> None:
    import urllib.request

    settings, _ = run

    def metrics() -> dict[str, float]:
        with urllib.request.urlopen(f"{settings.web_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    values = metrics()
    assert values["driftline_stored_total"] == N
    assert values['driftline_dead_lettered_total{reason="too_large"}'] == 1
    assert values['driftline_clickhouse_rows_total{table="traces"}'] >= N
    assert {'driftline_consumer_seeks_total{kind="reseek"}',
            'driftline_consumer_seeks_total{kind="rewind"}'} <= values.keys()
    # Offsets are committed only after rows are stored, and then all of them are.
    def lags() -> dict[str, float]:
        found = {k: v for k, v in metrics().items() if k.startswith("driftline_consumer_lag")}
        return found if found and all(v == 0 for v in found.values()) else {}

    assert len(wait_for(lags, timeout=60, what="consumer lag 0 on every partition")) == 4
    # /stats says which partitions the consumer fetches, and why not the others
    body = stats(settings)
    assert body["lag"] == {"0": 0, "1": 0, "2": 0, "3": 0}
    assert body["consumer"]["fetching"] == [0, 1, 2, 3] and body["consumer"]["flow_active"]
    assert body["consumer"]["paused"] == body["consumer"]["buffer_paused"] == []


def test_dead_letters_are_queryable_by_reason(run: tuple[Settings, list[Any]]) -> None:
    settings, _ = run
    _, rows = worker_query(settings, "SELECT reason, count() FROM dead_letters FINAL "
                                     "WHERE source_topic = '" + settings.traces_topic + "' "
                                     "GROUP BY reason ORDER BY reason")
    assert dict(rows) == {"invalid_field": 10, "invalid_json": 20, "missing_field": 10,
                          "not_an_object": 10, "too_large": 1}


def test_dlq_replay_sends_failures_back_once(run: tuple[Settings, list[Any]]) -> None:
    """Replaying unfixed dead letters: each fails again and lands in the DLQ once more,
    marked as a replay; a second replay leaves them there."""
    from pipeline.dlq import replay, summarize

    settings, _ = run
    invalid = count_invalid(SCENARIO) + 1
    before = stats(settings)["dead_lettered_total"]
    first = replay(settings)
    assert first.republished == invalid
    wait_for(lambda: stats(settings)["dead_lettered_total"] == before + invalid, timeout=60,
             what="replayed letters to fail again")
    summary = summarize(settings)
    assert summary["total"] == 2 * invalid
    assert summary["replayed_copies"] == invalid
    second = replay(settings)
    assert second.republished == 0
    assert second.skipped_replayed == invalid
    assert scalar(settings, "SELECT count() FROM traces FINAL") == N
