"""Creating and deleting a deployment's topics on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from pipeline.config import Settings
from pipeline.topics import TopicError, admin, delete_topics, ensure_topics
from tests.conftest import wait_for
from tests.integration.conftest import make_settings


def topics(settings: Settings) -> set[str]:
    return set(admin(settings).list_topics(timeout=10).topics)


def test_delete_topics_takes_the_deployment_s_topics_and_faust_s_and_nothing_else(
        tmp_path: Path, broker: str) -> None:
    settings = make_settings(tmp_path, broker)
    ensure_topics(settings)
    app = settings.app_id
    faust_own = [f"{app}-detector-state-changelog", f"{app}-__assignor-__leader"]
    # same prefix, not Faust's: a user's topic must survive
    bystander = f"{app}-audit"
    client = admin(settings)  # alive until its futures are: they fail with the handle
    futures = client.create_topics(
        [NewTopic(t, num_partitions=1, replication_factor=-1) for t in [*faust_own, bystander]])
    for future in futures.values():
        future.result()
    ours = {settings.traces_topic, settings.dlq_topic, settings.scoring_topic,
            settings.control_topic, *faust_own}
    try:
        # a created topic reaches the metadata a moment after CreateTopics returns
        wait_for(lambda: ours | {bystander} <= topics(settings), timeout=30,
                 what="the created topics in the metadata")

        assert set(delete_topics(settings)) == ours

        wait_for(lambda: not ours & topics(settings), timeout=30,
                 what="the deleted topics gone from the metadata")
        assert bystander in topics(settings)
        assert delete_topics(settings) == []
    finally:
        client.delete_topics([bystander])[bystander].result()


def test_a_topic_partitioned_unlike_the_traces_topic_stops_start_up(tmp_path: Path,
                                                                    broker: str) -> None:
    settings = make_settings(tmp_path, broker)
    client = admin(settings)
    client.create_topics([NewTopic(settings.dlq_topic, num_partitions=1,
                                   replication_factor=-1)])[settings.dlq_topic].result()
    with pytest.raises(TopicError, match=f"topic {settings.dlq_topic} has 1 partitions, the "
                                         f"traces topic {settings.traces_topic} "
                                         f"{settings.topic_partitions}"):
        ensure_topics(settings)
