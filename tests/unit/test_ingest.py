from datetime import UTC, datetime, timedelta

import orjson

from detectors.adwin import Adwin
from detectors.registry import SegmentRegistry
from pipeline.ingest import TRACE_COLUMNS, Ingestor, Record
from pipeline.metrics import Counters
from schemas.limits import Limits


def record(value: bytes, offset: int, partition: int = 0) -> Record:
    return Record(value=value, key=b"k", topic="traces", partition=partition, offset=offset)


def trace(i: int, output: str, app: str = "bot") -> bytes:
    ts = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    return orjson.dumps({"trace_id": f"t{i}", "timestamp": ts.isoformat(), "input": "question",
                         "output": output, "app": app, "model": "m"})


def make(registry: SegmentRegistry | None = None) -> tuple[Ingestor, Counters]:
    counters = Counters()
    ingestor = Ingestor(segment_fields=("app", "model"),
                        registry=registry or SegmentRegistry({"refusal": Adwin}),
                        counters=counters,
                        limits=Limits(max_message_bytes=10_000, max_age=None))
    return ingestor, counters


def test_batch_splits_into_rows_and_dead_letters() -> None:
    ingestor, counters = make()
    out = ingestor.process([record(trace(0, "fine"), 0), record(b"oops", 1),
                            record(trace(1, "I'm sorry, I can't."), 2, partition=3)])
    assert [r[0] for r in out.traces.rows] == ["t0", "t1"]
    assert len(out.traces.rows[0]) == len(TRACE_COLUMNS)
    row = dict(zip(TRACE_COLUMNS, out.traces.rows[1], strict=True))
    assert (row["segment"], row["kafka_partition"], row["kafka_offset"]) == ("bot|m", 3, 2)
    heuristics = {r[0]: r[TRACE_COLUMNS.index("heuristics")] for r in out.traces.rows}
    assert set(heuristics["t0"]) >= {"refusal", "pii", "empty", "length_ratio"}
    assert {t: h["refusal"] for t, h in heuristics.items()} == {"t0": 0.0, "t1": 1.0}
    [dead] = out.dead
    assert (dead.value, dead.reason, dead.source_offset) == (b"oops", "invalid_json", 1)
    assert counters.consumed == 3
    assert out.segments == {"bot|m": 3}


def test_shift_produces_one_drift_row_for_the_segment() -> None:
    ingestor, _ = make()
    records = [record(trace(i, "I'm sorry, I can't." if i >= 2000 and i % 2 else "ok"), i)
               for i in range(3000)]
    out = ingestor.process(records)
    assert out.events and {e.segment for e in out.events} == {"bot|m"}
    assert len(out.drift.rows) == len(out.events)
    assert all(int(e.trace_id[1:]) >= 2000 for e in out.events)


def test_state_is_loaded_once_per_unknown_segment_and_saved_per_signal() -> None:
    donor, _ = make()
    donor.process([record(trace(i, "ok"), i) for i in range(500)])
    saved = {(seg, sig): blob for seg, sig, blob in donor.registry.take_dirty(["bot|m"])}
    assert set(saved) == {("bot|m", "refusal")}
    assert donor.registry.take_dirty(["bot|m"]) == []  # nothing moved since
    asked: list[tuple[str, str]] = []

    def load(segment: str, signal: str) -> bytes | None:
        asked.append((segment, signal))
        return saved.get((segment, signal))

    ingestor, _ = make(SegmentRegistry({"refusal": Adwin}, loader=load))
    ingestor.process([record(trace(i, "ok", app=a), i) for i, a in enumerate(["bot", "x"] * 5)])
    assert sorted(asked) == [("bot|m", "refusal"), ("x|m", "refusal")]
    assert ingestor.registry.restored == 1
    restored = ingestor.registry.detector("bot|m", "refusal")
    assert restored is not None and restored.width == 505  # 500 + 5, nothing lost


def test_guardrail_flag_rate_feeds_a_calibrated_cusum() -> None:
    from functools import partial

    from detectors.rate import BernoulliCusum

    registry = SegmentRegistry({"guardrail": partial(BernoulliCusum, ert=20_000, warmup=1000,
                                                     min_p0=0.005)})
    ingestor, _ = make(registry)
    # No flag at all in the warm-up: the reference rate is floored at 0.5 %, so the
    # first flags after it are no alarm; a jump to 5 % empty answers is.
    calm = ingestor.process([record(trace(i, "ok"), i) for i in range(1500)])
    assert calm.events == []
    detector = registry.detector("bot|m", "guardrail")
    assert detector is not None and detector.p0 == 0.005  # type: ignore[attr-defined]
    out = ingestor.process([record(trace(i, "" if i % 20 == 0 else "ok"), i)
                            for i in range(1500, 4000)])
    assert [e.signal for e in out.events] == ["guardrail"]  # one alarm for the episode
    assert out.events[0].detector == "bernoulli_cusum"
    assert 1500 <= int(out.events[0].trace_id[1:]) < 2500


def test_a_duplicate_trace_id_is_counted_and_stored_once() -> None:
    from pipeline.recent_ids import RecentIds

    ingestor, counters = make()
    ingestor.recent = RecentIds(1000)
    out = ingestor.process([record(trace(1, "ok"), 0), record(trace(2, "ok"), 1),
                            record(trace(1, "ok"), 2)])  # a producer's retry
    assert [r[0] for r in out.traces.rows] == ["t1", "t2"]
    assert out.duplicates == counters.duplicates == 1
    assert out.counts.rows == [["", 3, 2, 0, 1, 0, 0, 0]]
    detector = ingestor.registry.detector("bot|m", "refusal")
    assert detector is not None and detector.width == 2  # the retry did not count twice


def test_traces_off_their_segments_partition_are_rerouted_keyed() -> None:
    from pipeline.ingest import partition_of

    ingestor, counters = make()
    ingestor.partitions = 4
    home = partition_of("bot|m", 4)
    out = ingestor.process([record(trace(1, "ok"), 0, partition=home),
                            record(trace(2, "ok"), 1, partition=(home + 1) % 4)])
    assert [r[0] for r in out.traces.rows] == ["t1"]
    [(key, value, headers)] = out.rerouted
    assert key == b"bot|m" and orjson.loads(value)["trace_id"] == "t2"
    assert dict(headers) == {"driftline.source_format": b"plain"}
    assert counters.rerouted == 1
