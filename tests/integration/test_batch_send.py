"""send_batched on the real broker: every message once, on its key's partition, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaProducer

from pipeline.batch_send import send_batched
from pipeline.ingest import partition_of
from pipeline.topics import ensure_topics
from tests.integration.conftest import drain_topic, make_settings


def test_messages_land_once_on_their_key_s_partition_in_order(tmp_path: Path,
                                                              broker: str) -> None:
    settings = make_settings(tmp_path, broker)
    ensure_topics(settings)
    parts = settings.topic_partitions
    keys = [f"app-{i % 7}|model".encode() for i in range(700)]
    # 300-byte values in 2 KiB batches: several batches per partition; one value larger
    # than a whole batch must still go (a batch takes its first message whatever its size)
    messages = [(k, f"{i:06d}".encode() * 50, [("n", str(i).encode())] if i % 2 else [])
                for i, k in enumerate(keys)]
    messages.insert(350, (keys[0], b"big" * 2000, []))

    async def send() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=broker, max_batch_size=2048)
        await producer.start()
        try:
            futures = await send_batched(producer, settings.scoring_topic, (
                (partition_of(k.decode(), parts), k, v, h) for k, v, h in messages))
            await asyncio.gather(*futures)
            return len(futures)
        finally:
            await producer.stop()

    batches = asyncio.run(send())
    assert batches > parts  # split into several batches, not one per partition

    got = drain_topic(settings, settings.scoring_topic, len(messages))
    assert len(got) == len(messages)
    for m in got:
        assert m.partition() == partition_of(m.key().decode(), parts)
    for p in range(parts):
        sent = [(v, h) for k, v, h in messages if partition_of(k.decode(), parts) == p]
        arrived = [(m.value(), m.headers() or []) for m in sorted(got, key=lambda m: m.offset())
                   if m.partition() == p]
        assert arrived == sent
