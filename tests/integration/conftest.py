"""Integration fixtures: the real Kafka broker (started by `make test`) and real workers.

These tests never skip: without a broker they fail and say how to start one.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from pipeline.config import Settings, load_settings
from pipeline.sql_client import worker_query, worker_stats
from pipeline.topics import TopicError, check_broker, delete_topics
from pipeline.worker_process import WorkerProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker() -> str:
    settings = load_settings()
    try:
        check_broker(settings, timeout=15)
    except TopicError as exc:
        pytest.fail(f"{exc}\nIntegration tests need the real broker: run them with `make test`.",
                    pytrace=False)
    return settings.kafka_bootstrap


#: every deployment a test made, for its topics to be deleted at the session's end
_made: list[Settings] = []


@pytest.fixture(scope="session", autouse=True)
def delete_test_topics(broker: str) -> Iterator[None]:
    """Each test runs on topics of its own; left behind, they pile up on a long-lived
    broker (see :func:`pipeline.topics.delete_topics`)."""
    yield
    for settings in _made:
        delete_topics(settings)


def make_settings(tmp: Path, broker: str, **overrides: Any) -> Settings:
    run = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap": broker,
        "traces_topic": f"test.{run}.traces",
        "dlq_topic": f"test.{run}.traces.dlq",
        "scoring_topic": f"test.{run}.scoring",
        "control_topic": f"test.{run}.control",
        "app_id": f"test-{run}",
        "data_dir": tmp,
        "clickhouse_url": f"chdb://{tmp / 'clickhouse'}",
        "web_port": free_port(),
        "batch_size": 1000,
        "batch_seconds": 0.2,
        "log_format": "json",
    }
    values.update(overrides)
    settings = load_settings(**values)
    _made.append(settings)
    return settings


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()


def stats(settings: Settings) -> dict[str, Any]:
    # The web port answers between batches; a batch in which detectors calibrate at the
    # end of their warm-up holds it for a second or more on a loaded machine.
    return worker_stats(settings, timeout=30)


def scalar(settings: Settings, sql: str) -> Any:
    _, rows = worker_query(settings, sql)
    return rows[0][0]


def topic_size(settings: Settings, topic: str) -> int:
    """Messages in ``topic`` (sum of its partitions' high watermarks; 0 if it is missing)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"size-{uuid.uuid4().hex}"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in meta.partitions)
    finally:
        consumer.close()


def drain_topic(settings: Settings, topic: str, expected: int, timeout: float = 60.0
                ) -> list[Any]:
    """Every message of ``topic`` from the beginning, until ``expected`` arrived or time ran out."""
    import time

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"drain-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
        # One more short poll: more than expected is a failure the test must see.
        extra = consumer.consume(num_messages=100, timeout=1.0)
        messages.extend(m for m in extra if m.error() is None)
        return messages
    finally:
        consumer.close()
