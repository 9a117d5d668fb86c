"""Publishing traces to Kafka with confluent-kafka, keyed by segment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaError, Message, Producer

from pipeline.config import Settings
from schemas.trace import MISSING, SEGMENT_SEPARATOR


def segment_key(trace: dict[str, object], fields: tuple[str, ...]) -> str:
    """The Kafka key of a trace given as a dict (same rule as :meth:`Trace.segment_key`)."""
    return SEGMENT_SEPARATOR.join(str(trace.get(f) or MISSING) for f in fields)


@dataclass(slots=True)
class Delivery:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            if len(self.errors) < 10:
                self.errors.append(str(err))


def make_producer(settings: Settings, **overrides: object) -> Producer:
    config: dict[str, object] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        # murmur2 is the Java client's and aiokafka's partitioner: a segment key lands on
        # the same partition whoever publishes it.
        "partitioner": "murmur2_random",
        "compression.type": "zstd",
        "linger.ms": 20,
        "enable.idempotence": True,
        "message.max.bytes": max(settings.max_message_bytes * 2, 1_000_000),
    }
    config.update(overrides)
    return Producer(config)


def publish(
    settings: Settings,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    producer: Producer | None = None,
    on_sent: object = None,
) -> Delivery:
    """Publish (key, value) pairs to the traces topic and wait until all are acknowledged."""
    producer = producer or make_producer(settings)
    delivery = Delivery()
    topic = settings.traces_topic
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivery)
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: let deliveries drain it
        producer.poll(0)
        if callable(on_sent):
            on_sent()
    producer.flush(60)
    return delivery


def encode(trace: dict[str, object], fields: tuple[str, ...]) -> tuple[bytes, bytes]:
    return segment_key(trace, fields).encode(), orjson.dumps(trace)
