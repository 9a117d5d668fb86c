"""BulkConsumer's bookkeeping, without a broker: the consumer is built, not started.

Delivery: table-changelog and control records go to Faust one at a time, stopping at
the first record after a rebalance begins, as Faust's own fetch loop does. Running on
through the batch delivered records nobody would process (Faust's flow control clears
its queues when it resumes) and marked them read: once table recovery had sought the
partition back, every replayed record up to there was skipped as already seen.

Acks: the bulk topics' records are acked once per partition (``ack_all``), and must
leave exactly the offsets Faust's per-record ``Consumer.ack`` leaves, which its commit
loop reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from pipeline.bulk_consumer import BulkConsumer, bulk_transport
from pipeline.worker import App

CHANGELOG = TP("app-detector-state-changelog", 0)
OFFSETS = range(10, 20)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def built_consumer(on_message: Callable[[object], Awaitable[None]]) -> BulkConsumer:
    """A consumer of a fresh app, its flow running; call inside a running loop."""
    app = App("bulk-unit-test", broker="kafka://127.0.0.1:1", store="memory://",
              autodiscover=False, web_enabled=False)
    app.bulk_transport_cls = bulk_transport({"traces": 10})

    async def ignore(*_: object) -> None:
        return None

    consumer = app.transport.create_consumer(
        callback=on_message, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
    assert isinstance(consumer, BulkConsumer)
    consumer.resume_flow()
    return consumer


def stop_flow(consumer: BulkConsumer) -> None:
    consumer.stop_flow()


def new_generation(consumer: BulkConsumer) -> None:
    consumer.app.consumer_generation_id += 1


@pytest.mark.parametrize("rebalance", [stop_flow, new_generation])
def test_delivery_stops_at_the_first_record_after_a_rebalance_begins(
        rebalance: Callable[[BulkConsumer], None]) -> None:
    delivered: list[int] = []

    async def run() -> BulkConsumer:
        async def on_message(message: object) -> None:
            delivered.append(message.offset)  # type: ignore[attr-defined]
            if len(delivered) == 2:
                rebalance(consumer)

        consumer = built_consumer(on_message)
        batch = [record(CHANGELOG, offset) for offset in OFFSETS]
        await consumer._deliver(CHANGELOG, batch, consumer.app.consumer_generation_id)
        return consumer

    consumer = asyncio.run(run())
    assert delivered == [10, 11]
    # the record being delivered when the rebalance began counts as read, as in Faust's
    # loop; the rest will be accepted when recovery reads the partition again
    assert consumer._read_offset[CHANGELOG] == 11


def test_ack_all_leaves_the_offsets_faust_s_per_record_ack_leaves() -> None:
    mine, revoked = TP("traces", 0), TP("traces", 1)
    # partition 0: below its commit (6), a gap (8), a record acked twice, out of order
    batches = [[record(mine, o) for o in (5, 6, 7, 9)] + [record(revoked, 0)],
               [record(mine, o) for o in (9, 11, 10)]]

    async def nothing(_: object) -> None:
        return None

    async def run() -> list[tuple[object, ...]]:
        states = []
        for bulk in (True, False):
            consumer = built_consumer(nothing)
            consumer.assignment = lambda: {mine}  # type: ignore[method-assign]
            consumer.app.topics._acking_topics.add("traces")
            consumer._committed_offset[mine] = 6
            for batch in batches:
                if bulk:
                    consumer.ack_all(batch)
                else:
                    for r in batch:
                        if (r.topic, r.partition) == mine:  # ack_all's assignment check
                            consumer.ack(consumer._to_message(mine, r))
            states.append((dict(consumer._acked), dict(consumer._acked_index),
                           consumer._n_acked, consumer._new_offset(mine)))
        return states

    bulk, per_record = asyncio.run(run())
    assert bulk == per_record
    acked, _, n_acked, new_offset = bulk
    assert set(acked) == {mine} and n_acked == 5  # 6, 7, 9, 11, 10; not 5, not 9 again
    assert new_offset == 8  # the commit stops at the gap


def test_a_full_buffer_pauses_its_partition_until_it_is_back_within_its_bound() -> None:
    # Resumed at the bound, not lower: a refill takes 0.3-1.2 s to arrive, and the bound
    # is the runway the ingest loop has meanwhile (bulk_consumer's docstring).
    tp = TP("traces", 0)

    async def nothing(_: object) -> None:
        return None

    async def run() -> list[tuple[int, bool]]:
        consumer = built_consumer(nothing)
        consumer.assignment = lambda: {tp}  # type: ignore[method-assign]
        consumer.app.flow_control.resume()  # a Faust app starts with it suspended
        buffer = consumer._buffers["traces"]  # bound 10
        await consumer._divert(tp, [record(tp, offset) for offset in range(25)], buffer)
        states = [(len(buffer), tp in consumer._buffered_partitions)]
        for n in (10, 4, 1, 10):
            await asyncio.wait_for(consumer.take("traces", n, timeout=0.1), 10)
            states.append((len(buffer), tp in consumer._buffered_partitions))
        return states

    # paused past 10 records; still at 11, resumed at 10 and below
    assert asyncio.run(run()) == [(25, True), (15, True), (11, True), (10, False),
                                  (0, False)]
