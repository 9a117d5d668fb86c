"""BulkConsumer on the real broker, in a Faust app of its own: records that Faust's flow
control clears from the buffers are read again, whether more records follow or not.

At the end of a rebalance with a table, Faust's recovery seeks the partitions to their
committed offsets and only then resumes the flow, which clears every queue it manages,
the bulk buffers included, with the fetch position already past the cleared records.
Before ``BulkConsumer._reseek``, a partition with nothing after them was never read
again (a hang) and one with later records committed past them as a gap (a loss): both
showed in the two-worker benchmark, but only sometimes, since they need a fetch to land
between the seek and the resume. This test makes that ordering certain by calling the
same flow-control methods Faust's recovery does while the buffer holds records; against
the code before the fix it sees 1,100 of the 6,000 records.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import faust

from pipeline.bulk_consumer import BulkConsumer, bulk_transport
from pipeline.producer import publish
from pipeline.topics import ensure_topics
from pipeline.worker import App
from tests.integration.conftest import make_settings

BACKLOG, LATER = 5000, 1000


def records(start: int, n: int) -> list[tuple[None, bytes]]:
    return [(None, str(i).encode()) for i in range(start, start + n)]


def bulk_app(settings: Any, tmp_path: Path, transport: type[Any]) -> App:
    """A Faust app of its own on the real broker, whose one topic must reach the bulk
    buffers only."""
    app = App(settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}",
              store="memory://", autodiscover=False, topic_partitions=1,
              consumer_auto_offset_reset="earliest", web_enabled=False,
              datadir=str(tmp_path / "faust"))
    app.bulk_transport_cls = transport
    source = app.topic(settings.traces_topic, key_serializer="raw", value_serializer="raw",
                       partitions=1)

    @app.agent(source)
    async def subscribe(stream: faust.Stream) -> None:
        async for event in stream.events():
            raise AssertionError(f"a record reached the stream: {event.message.offset}")

    return app


def test_records_cleared_by_flow_control_are_read_again(broker: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, broker, topic_partitions=1)
    ensure_topics(settings)
    topic = settings.traces_topic
    assert publish(settings, records(0, BACKLOG)).delivered == BACKLOG
    taken: set[int] = set()

    async def run() -> tuple[int, BulkConsumer]:
        app = bulk_app(settings, tmp_path, bulk_transport({topic: 200}))
        cleared = asyncio.Event()
        buffered_at_clear = 0

        @app.task
        async def take() -> None:
            nonlocal buffered_at_clear
            consumer: BulkConsumer = app.consumer  # type: ignore[assignment]
            while not app.should_stop:
                messages = await consumer.take(topic, 100, 1.0)
                taken.update(m.offset for m in messages)
                consumer.ack_all(messages)
                buffered = len(consumer._buffers[topic])
                if messages and not cleared.is_set() and buffered:
                    buffered_at_clear = buffered
                    # what Recovery.on_recovery_completed does after its seek
                    app.flow_control.suspend()
                    app.flow_control.resume()
                    cleared.set()

        await app.start()
        try:
            await asyncio.wait_for(cleared.wait(), 60)
            later = await asyncio.to_thread(publish, settings, records(BACKLOG, LATER))
            assert later.delivered == LATER
            deadline = time.monotonic() + 60
            while len(taken) < BACKLOG + LATER and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return buffered_at_clear, app.consumer  # type: ignore[return-value]
        finally:
            await app.stop()

    buffered_at_clear, consumer = asyncio.run(run())
    assert buffered_at_clear > 0, "the buffer was empty when flow control cleared it"
    missing = set(range(BACKLOG + LATER)) - taken
    assert not missing, (f"{len(missing)} records never taken (of {BACKLOG + LATER}; "
                         f"{buffered_at_clear} were buffered when cleared), e.g. "
                         f"{sorted(missing)[:3]}")
    assert consumer.reseeks >= 1


class StopsOnItsFirstFetch(BulkConsumer):
    """Stops the flow as its first fetch of records returns, as a rebalance does when it
    begins while a fetch is in flight, and resumes it once the loop has refused them."""

    refused = 0

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active = await super()._wait_next_records(timeout)
        if records and not self.refused:
            self.refused = sum(len(batch) for batch in records.values())
            self.stop_flow()
        return records, active

    async def perform_seek(self) -> None:
        await super().perform_seek()
        if self.refused and not self.flow_active:
            self.resume_flow()


def test_records_fetched_while_the_flow_stops_are_read_again(broker: str,
                                                             tmp_path: Path) -> None:
    """The fetched records are refused (Faust's rule) and the consumer seeks back to the
    committed offsets, but this partition has none yet (nor has a table changelog ever):
    before ``BulkConsumer._rewind``, the records of that first fetch were never read."""
    settings = make_settings(tmp_path, broker, topic_partitions=1)
    ensure_topics(settings)
    topic = settings.traces_topic
    assert publish(settings, records(0, BACKLOG)).delivered == BACKLOG
    taken: set[int] = set()

    async def run() -> StopsOnItsFirstFetch:
        app = bulk_app(settings, tmp_path,
                       bulk_transport({topic: 10_000}, consumer_base=StopsOnItsFirstFetch))

        @app.task
        async def take() -> None:
            consumer: BulkConsumer = app.consumer  # type: ignore[assignment]
            while not app.should_stop:
                messages = await consumer.take(topic, 500, 1.0)
                taken.update(m.offset for m in messages)
                consumer.ack_all(messages)

        await app.start()
        try:
            deadline = time.monotonic() + 60
            while len(taken) < BACKLOG and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return app.consumer  # type: ignore[return-value]
        finally:
            await app.stop()

    consumer = asyncio.run(run())
    assert consumer.refused > 0, "no fetch was refused"
    missing = set(range(BACKLOG)) - taken
    assert not missing, (f"{len(missing)} of {BACKLOG} records never taken "
                         f"({consumer.refused} were refused while the flow stopped), "
                         f"e.g. {sorted(missing)[:3]}")
    assert consumer.rewinds >= 1
