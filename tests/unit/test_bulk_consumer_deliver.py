"""BulkConsumer hands table-changelog and control records to Faust one at a time, and
stops at the first record after a rebalance begins, as Faust's own fetch loop does.

Running on through the batch delivered records nobody would process (Faust's flow
control clears its queues when it resumes) and marked them read: once table recovery
had sought the partition back, every replayed record up to there was skipped as already
seen. No broker is needed: the consumer is built, not started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from pipeline.bulk_consumer import BulkConsumer, bulk_transport
from pipeline.worker import App

CHANGELOG = TP("app-detector-state-changelog", 0)
OFFSETS = range(10, 20)


def stop_flow(consumer: BulkConsumer) -> None:
    consumer.stop_flow()


def new_generation(consumer: BulkConsumer) -> None:
    consumer.app.consumer_generation_id += 1


@pytest.mark.parametrize("rebalance", [stop_flow, new_generation])
def test_delivery_stops_at_the_first_record_after_a_rebalance_begins(
        rebalance: Callable[[BulkConsumer], None]) -> None:
    delivered: list[int] = []

    async def run() -> BulkConsumer:
        app = App("deliver-test", broker="kafka://127.0.0.1:1", store="memory://",
                  autodiscover=False, web_enabled=False)
        app.bulk_transport_cls = bulk_transport({"traces": 10})

        async def on_message(message: object) -> None:
            delivered.append(message.offset)  # type: ignore[attr-defined]
            if len(delivered) == 2:
                rebalance(consumer)

        async def ignore(*_: object) -> None:
            return None

        consumer = app.transport.create_consumer(
            callback=on_message, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
        assert isinstance(consumer, BulkConsumer)
        consumer.resume_flow()
        batch = [ConsumerRecord(CHANGELOG.topic, CHANGELOG.partition, offset, 0, 0, b"k",
                                b"v", None, 1, 1, []) for offset in OFFSETS]
        await consumer._deliver(CHANGELOG, batch, app.consumer_generation_id)
        return consumer

    consumer = asyncio.run(run())
    assert delivered == [10, 11]
    # the record being delivered when the rebalance began counts as read, as in Faust's
    # loop; the rest will be accepted when recovery reads the partition again
    assert consumer._read_offset[CHANGELOG] == 11
