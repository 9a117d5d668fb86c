"""Creates driftline's Kafka topics with the partition counts the settings ask for."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline.config import Settings

log = logging.getLogger(__name__)


class TopicError(RuntimeError):
    pass


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def check_broker(settings: Settings, timeout: float = 10.0) -> None:
    """Fail with a clear message when no broker answers at the configured address."""
    try:
        admin(settings).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise TopicError(
            f"no Kafka broker answers at {settings.kafka_bootstrap} (DRIFTLINE_KAFKA_BOOTSTRAP): "
            f"{exc}. Start the local one with `driftline kafka start`."
        ) from None


def _wait_for_metadata(client: AdminClient, names: list[str], timeout: float) -> dict:
    """Topic metadata once every name is in it: a just-created topic reaches the
    broker's metadata a moment after CreateTopics returns."""
    deadline = time.monotonic() + timeout
    while True:
        topics = client.list_topics(timeout=timeout).topics
        ready = all(n in topics and topics[n].partitions and not topics[n].error
                    for n in names)
        if ready:
            return topics
        if time.monotonic() > deadline:
            missing = [n for n in names if n not in topics]
            raise TopicError(f"topics {missing} not in the metadata of "
                             f"{len(topics)} topics after {timeout:.0f}s")
        time.sleep(0.1)  # polling the broker's metadata until the deadline


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Create driftline's four topics if missing; refuse a wrong partition count.

    The traces topic's partition count fixes which worker owns which segment (the key),
    and detector state is partitioned the same way, so a mismatch is an error, not a
    warning.
    """
    client = admin(settings)
    wanted = {settings.traces_topic: settings.topic_partitions,
              settings.dlq_topic: settings.topic_partitions,
              settings.scoring_topic: settings.topic_partitions,
              settings.control_topic: settings.topic_partitions}
    try:
        existing = client.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise TopicError(f"cannot list topics on {settings.kafka_bootstrap}: {exc}") from None
    missing = [NewTopic(name, num_partitions=n, replication_factor=-1)
               for name, n in wanted.items() if name not in existing]
    if missing:
        for name, future in client.create_topics(missing, request_timeout=timeout).items():
            try:
                future.result()
                log.info("topic created", extra={"topic": name,
                                                 "partitions": wanted[name]})
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise TopicError(f"cannot create topic {name}: {exc}") from None
        existing = _wait_for_metadata(client, list(wanted), timeout)
    have = len(existing[settings.traces_topic].partitions)
    if have != settings.topic_partitions:
        raise TopicError(
            f"topic {settings.traces_topic} has {have} partitions but "
            f"DRIFTLINE_TOPIC_PARTITIONS={settings.topic_partitions}; set it to {have} "
            "(detector state is partitioned like the traces topic)"
        )
    for name in wanted:
        other = len(existing[name].partitions)
        if other != have:
            raise TopicError(
                f"topic {name} has {other} partitions, the traces topic "
                f"{settings.traces_topic} {have}; they must match (a segment's sampled "
                "traces, dead letters and control commands go to the partition its traces "
                f"use): recreate {name} with {have} partitions, or point the setting that "
                "names it at another topic"
            )


def delete_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Delete the topics of one deployment: the four the settings name and Faust's own
    (its table changelogs and assignor topic, named after ``app_id``). For benchmark and
    test runs, each on topics of its own: left behind, thousands of their partitions
    made a long-lived local broker's heap run concurrent GC cycles every few seconds
    (~0.5 of a core for 1-2 s each, measured). Returns the topics deleted."""
    client = admin(settings)
    named = {settings.traces_topic, settings.dlq_topic, settings.scoring_topic,
             settings.control_topic}
    existing = client.list_topics(timeout=timeout).topics
    faust = f"{settings.app_id}-"
    doomed = sorted(t for t in existing if t in named or (
        t.startswith(faust) and t.endswith(("-changelog", "-__assignor-__leader"))))
    if not doomed:
        return []
    for name, future in client.delete_topics(doomed, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if "UNKNOWN_TOPIC_OR_PART" not in str(exc):
                raise TopicError(f"cannot delete topic {name}: {exc}") from None
    return doomed
