"""The producer helper: never blocks, counts drops and deliveries (real local broker)."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.trace_producer import TraceProducer
from tests.unit.test_formats_payloads import plain

BOOTSTRAP = "127.0.0.1:9092"
QUIET = {"log_level": 0}


@pytest.fixture(scope="module")
def broker() -> AdminClient:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    try:
        admin.list_topics(timeout=3)
    except KafkaException:
        pytest.fail("no Kafka broker on 127.0.0.1:9092: these tests need the real broker; "
                    "run them with `make test` (or `driftline kafka start`)", pytrace=False)
    return admin


def new_topic(admin: AdminClient, partitions: int = 2) -> str:
    name = f"test.trace-producer.{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions,
                                  replication_factor=1)])[name].result(10)
    return name


def consume_all(topic: str, n: int, timeout: float = 20.0) -> list:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            got += [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
    finally:
        consumer.close()
    return got


def test_delivers_keyed_by_segment_and_counts(broker: AdminClient) -> None:
    topic = new_topic(broker)
    seen: list[object] = []
    with TraceProducer(BOOTSTRAP, topic, on_delivery=lambda err, msg: seen.append(err),
                       config=QUIET) as producer:
        for i in range(200):
            assert producer.send(plain(i))
        assert producer.flush(10) == 0
    stats = producer.stats()
    assert (stats["accepted"], stats["delivered"], stats["failed"], stats["dropped"]) == (
        200, 200, 0, 0)
    assert seen == [None] * 200
    messages = consume_all(topic, 200)
    assert len(messages) == 200
    assert {m.key() for m in messages} == {b"support-bot|gpt-4o-mini"}
    assert orjson.loads(messages[0].value())["app"] == "support-bot"
    broker.delete_topics([topic])


def test_full_queue_drops_without_blocking() -> None:
    producer = TraceProducer("127.0.0.1:1", "t", max_queue=10, delivery_timeout_ms=300,
                             config=QUIET)
    # a send that waited for room would see the queue drain (message.timeout.ms) and
    # succeed: exactly 10 accepted means none of the 1,000 sends waited
    results = [producer.send(plain(i)) for i in range(1000)]
    assert results.count(True) == 10 and results.count(False) == 990
    assert producer.stats()["dropped"] == 990
    # with no broker, queued traces fail after message.timeout.ms: counted, not lost silently
    producer.flush(5)
    assert producer.stats()["failed"] == 10
    producer.close(timeout=1)


def test_closed_and_unserialisable_traces_are_counted_drops() -> None:
    producer = TraceProducer("127.0.0.1:1", "t", config=QUIET)
    assert not producer.send({"trace_id": object()})
    producer.close(timeout=0)
    assert not producer.send(plain())
    stats = producer.stats()
    assert stats["dropped"] == 2 and stats["last_error"] == "producer is closed"
