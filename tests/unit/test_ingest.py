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


def make(load_state=lambda s: None) -> tuple[Ingestor, Counters]:  # type: ignore[no-untyped-def]
    counters = Counters()
    ingestor = Ingestor(segment_fields=("app", "model"),
                        registry=SegmentRegistry({"refusal": Adwin}), counters=counters,
                        limits=Limits(max_message_bytes=10_000, max_age=None),
                        load_state=load_state)
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


def test_state_is_loaded_once_per_unknown_segment() -> None:
    donor, _ = make()
    donor.process([record(trace(i, "ok"), i) for i in range(500)])
    snapshot = donor.registry.snapshot("bot|m")
    asked: list[str] = []

    def load(segment: str) -> bytes | None:
        asked.append(segment)
        return snapshot if segment == "bot|m" else None

    ingestor, counters = make(load)
    ingestor.process([record(trace(i, "ok", app=a), i) for i, a in enumerate(["bot", "x"] * 5)])
    assert asked == ["bot|m", "x|m"] or sorted(asked) == ["bot|m", "x|m"]
    assert counters.restored_segments == 1
