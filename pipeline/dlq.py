"""The dead-letter topic: count it by reason, and replay it into the traces topic.

Functions only; the CLI (``driftline dlq show`` / ``driftline dlq replay``) wires them.

Replay semantics ("those that still fail stay in the dead-letter topic, once"):

* :func:`replay` reads the DLQ with its own consumer group (``<app_id>-dlq-replay``) from
  that group's committed offset up to the end offsets seen when it starts, republishes each
  record's original bytes and key to the traces topic with two headers,
  ``driftline.replay_of`` (``dlq-topic/partition/offset``) and ``driftline.replays``
  (how many times it has been replayed, +1), and commits the end offsets only after
  every republished message is acknowledged. A second run starts where the first ended,
  so no record is replayed twice by accident.
* The worker, when it dead-letters a message, copies these two headers onto the new
  dead letter (an ingest change). A record that still fails therefore comes back to
  the DLQ exactly once, marked ``driftline.replays=1``, and :func:`replay` leaves
  records at ``max_replays`` alone: no replay loop.
* With ``delete_replayed=True`` the replayed range is then removed from the DLQ
  (``DeleteRecords`` up to the committed offsets), so the topic holds each still-failing
  message once and the fixed ones not at all. Off by default: it is destructive, and
  only safe because every replayed message was acknowledged by the traces topic first.
* Republishing a message that partly succeeded before (an OTLP request with one bad span)
  is harmless: ClickHouse keeps one row per ``trace_id``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline.config import Settings
from pipeline.producer import make_producer

REASON_HEADER = "driftline.reason"  # the name sinks/dead_letter.py writes
REPLAY_OF_HEADER = "driftline.replay_of"
REPLAYS_HEADER = "driftline.replays"


@dataclass(slots=True)
class ReplayResult:
    read: int = 0
    republished: int = 0
    #: already replayed ``max_replays`` times: left where they are
    skipped_replayed: int = 0
    #: records without a value (tombstones): nothing to replay
    skipped_empty: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    #: partition -> offset committed for the replay group (empty if nothing was committed)
    committed: dict[int, int] = field(default_factory=dict)
    deleted: bool = False
    dry_run: bool = False


def summarize(settings: Settings, *, timeout: float = 30.0) -> dict[str, Any]:
    """Count the whole dead-letter topic by reason (reads it; commits nothing).

    Returns ``{"topic", "total", "by_reason", "replayed_copies", "partitions"}`` where
    ``replayed_copies`` counts dead letters that failed again after a replay.
    """
    consumer = _consumer(settings, f"{settings.app_id}-dlq-summary-{uuid.uuid4().hex[:8]}")
    try:
        ranges = _ranges(consumer, settings.dlq_topic, timeout, start_at_committed=False)
        reasons: Counter[str] = Counter()
        replayed = 0
        for msg in _read(consumer, settings.dlq_topic, ranges, timeout):
            headers = _headers(msg)
            reasons[headers.get(REASON_HEADER, "unknown")] += 1
            replayed += REPLAYS_HEADER in headers
    finally:
        consumer.close()
    return {
        "topic": settings.dlq_topic,
        "total": sum(reasons.values()),
        "by_reason": dict(reasons.most_common()),
        "replayed_copies": replayed,
        "partitions": {p: {"low": lo, "high": hi} for p, (lo, hi) in sorted(ranges.items())},
    }


def replay(
    settings: Settings,
    *,
    max_replays: int = 1,
    dry_run: bool = False,
    delete_replayed: bool = False,
    timeout: float = 60.0,
    producer: Producer | None = None,
) -> ReplayResult:
    """Republish dead letters' original bytes to the traces topic (see the module doc)."""
    result = ReplayResult(dry_run=dry_run)
    group = f"{settings.app_id}-dlq-replay"
    consumer = _consumer(settings, group)
    producer = producer or (None if dry_run else make_producer(settings))
    deliveries: list[KafkaError | None] = []
    try:
        ranges = _ranges(consumer, settings.dlq_topic, timeout, start_at_committed=True)
        for msg in _read(consumer, settings.dlq_topic, ranges, timeout):
            result.read += 1
            headers = _headers(msg)
            replays = _int(headers.get(REPLAYS_HEADER))
            if replays >= max_replays:
                result.skipped_replayed += 1
                continue
            if msg.value() is None:
                result.skipped_empty += 1
                continue
            if dry_run:
                result.republished += 1
                continue
            out_headers = [
                (REPLAY_OF_HEADER, f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
                (REPLAYS_HEADER, str(replays + 1).encode()),
            ]
            _produce(producer, settings.traces_topic, msg, out_headers, deliveries)
            result.republished += 1
        if producer is not None and not dry_run:
            left = producer.flush(timeout)
            if left:
                result.errors.append(f"{left} republished messages not acknowledged")
        result.failed = sum(1 for err in deliveries if err is not None)
        result.errors += [str(err) for err in deliveries if err is not None][:10]
        if not dry_run and not result.errors:
            # only now: a crash before this point replays the same range again (harmless)
            ends = {p: hi for p, (lo, hi) in ranges.items() if hi > lo}
            if ends:
                consumer.commit(offsets=[TopicPartition(settings.dlq_topic, p, off)
                                         for p, off in ends.items()], asynchronous=False)
                result.committed = ends
            if delete_replayed and ends:
                _delete(settings, ends, timeout)
                result.deleted = True
    finally:
        consumer.close()
    return result


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    })


def _ranges(
    consumer: Consumer, topic: str, timeout: float, *, start_at_committed: bool
) -> dict[int, tuple[int, int]]:
    """partition -> (first offset to read, end offset snapshot) of the topic."""
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise RuntimeError(f"dead-letter topic {topic} not found: "
                           f"{getattr(meta, 'error', 'missing')}")
    parts = sorted(meta.partitions)
    committed: dict[int, int] = {}
    if start_at_committed:
        for tp in consumer.committed([TopicPartition(topic, p) for p in parts],
                                     timeout=timeout):
            if tp.offset != OFFSET_INVALID and tp.offset >= 0:
                committed[tp.partition] = tp.offset
    out = {}
    for p in parts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        out[p] = (max(low, committed.get(p, low)), high)
    return out


def _read(consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]],
          timeout: float) -> Any:
    """Every record in the ranges, then stop (the topic may keep growing meanwhile)."""
    todo = {p: r for p, r in ranges.items() if r[1] > r[0]}
    if not todo:
        return
    consumer.assign([TopicPartition(topic, p, lo) for p, (lo, _) in todo.items()])
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic}: partitions {sorted(todo)} not finished "
                               f"after {timeout:.0f}s")
        batch = consumer.consume(1000, timeout=0.5)
        if not batch:
            # gaps (compaction, transaction markers) mean the last offset may never arrive
            for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                if tp.offset >= todo[tp.partition][1]:
                    del todo[tp.partition]
        for msg in batch:
            if msg.error() is not None:
                continue
            p = msg.partition()
            if p not in todo or msg.offset() >= todo[p][1]:
                continue
            yield msg
            if msg.offset() + 1 >= todo[p][1]:
                del todo[p]


def _produce(producer: Producer, topic: str, msg: Message,
             headers: list[tuple[str, bytes]], deliveries: list[KafkaError | None]) -> None:
    while True:
        try:
            producer.produce(topic, value=msg.value(), key=msg.key(), headers=headers,
                             on_delivery=lambda err, _m: deliveries.append(err))
            break
        except BufferError:
            producer.poll(0.05)  # a CLI run, not a request path: waiting is right here
    producer.poll(0)


def _delete(settings: Settings, ends: dict[int, int], timeout: float) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.delete_records(
        [TopicPartition(settings.dlq_topic, p, off) for p, off in ends.items()],
        request_timeout=timeout)
    for future in futures.values():
        future.result(timeout)


def _headers(msg: Message) -> dict[str, str]:
    out = {}
    for name, value in msg.headers() or ():
        if value is not None:
            out[name] = value.decode(errors="replace")
    return out


def _int(text: str | None) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return 0
