"""Messages to a topic as one record batch per partition, not one send each.

Faust's ``Topic.send`` spends its event loop's time per message (a pending message, its
callbacks, a future, then aiokafka's own ``send`` and future): the ingest stage sends
its sampled traces (the 1 % sample plus every risky trace, several hundred a batch)
that way, and the profile of the worker's main thread showed it. Here aiokafka's
``create_batch`` / ``send_batch`` put them on the same producer (its acks, retries and
ordering) with one future per record batch.

Keys are placed as Kafka's default partitioner places them (murmur2, as the producer
and :func:`pipeline.ingest.partition_of` do), so a segment's messages still land on the
partition its detectors live on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer


async def send_batched(producer: AIOKafkaProducer, topic: str,
                       messages: Sequence[tuple[bytes, bytes]],
                       partition_of: Callable[[bytes], int]) -> list[asyncio.Future[object]]:
    """Queue ``messages`` ((key, value) pairs) on ``producer``, in their order within
    each partition; the futures resolve once every batch is acknowledged."""
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in messages:
        by_partition.setdefault(partition_of(key), []).append((key, value))
    futures: list[asyncio.Future[object]] = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                # full: send it and start the next (a batch always takes its first message,
                # whatever its size)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures
