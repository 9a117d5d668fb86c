"""Faust's Kafka consumer, with chosen topics handed over in batches.

Faust delivers each record to its streams one at a time: two tasks raced per record in
the fetch loop, a lock, an event, a queue put, a stream step and a processor call.
Profiled at a few thousand traces/s that machinery took most of the worker's main
thread, more than parsing, scoring and detection together (tests/benchmarks/e2e). And
one fetch loop serves every topic: when one stream's queue is full, Faust's loop waits
for it, so a slow judge held back ingestion. The ingest and scoring stages work on
batches anyway, so this consumer diverts the records of their topics, as they are
fetched, into one bounded buffer per topic; other topics (table changelogs, the control
topic) go Faust's usual way.

Offsets stay Faust's: a diverted record is acked with ``Consumer.ack`` once the batch it
fed is done, and Faust's commit loop commits acked offsets as usual. A buffer holding
more than its bound pauses its partitions (Faust's ``on_buffer_full``) until half of it
is taken, so memory is bounded and other topics keep flowing. Records of a partition
this worker loses are dropped from the buffers (the new owner reads them from the
committed offset); the buffers are cleared with Faust's own queues when a rebalance
starts and when the flow resumes after table recovery, and nothing is taken while the
flow is suspended.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, Message


class _Buffer(deque[Message]):
    """One diverted topic's records, with what the taker and the fetch loop share."""

    # Faust's flow control keeps the queues it clears in a WeakSet: hashable by identity.
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound
        self.ready = asyncio.Event()
        self.paused: set[TP] = set()


class BulkConsumer(AIOKafkaConsumer):
    #: topic -> how many fetched records may wait before its partitions pause
    bulk_topics: dict[str, int] = {}  # noqa: RUF012 - set per app by bulk_transport()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers = {topic: _Buffer(bound) for topic, bound in self.bulk_topics.items()}
        self._flow_managed = False

    # -- the taking side ---------------------------------------------------------------

    async def take(self, topic: str, max_records: int, timeout: float) -> list[Message]:
        """Up to ``max_records`` diverted records of ``topic``, waiting at most
        ``timeout`` for the first; fewer when fewer are buffered (the fetch batches).

        Waits while Faust's flow control is suspended (a rebalance, table recovery):
        detector state must be restored before the first record of a segment is seen.
        """
        flow = self.app.flow_control
        if not self._flow_managed:
            # Faust clears the queues it manages when a rebalance starts and when the flow
            # resumes; the records are read again from the committed offsets.
            for buffer in self._buffers.values():
                flow.manage_queue(buffer)
            self._flow_managed = True
        await flow.acquire()
        buffer = self._buffers[topic]
        self._resume_drained(buffer)  # also after Faust cleared the buffer on a rebalance
        if not buffer:
            buffer.ready.clear()
            try:
                await asyncio.wait_for(buffer.ready.wait(), timeout)
            except TimeoutError:
                return []
        taken = [buffer.popleft() for _ in range(min(max_records, len(buffer)))]
        self._resume_drained(buffer)
        return taken

    def _resume_drained(self, buffer: _Buffer) -> None:
        if buffer.paused and len(buffer) <= buffer.bound // 2:
            for tp in buffer.paused:
                self.on_buffer_drop(tp)
            buffer.paused.clear()

    def ack_all(self, messages: Iterable[Message]) -> None:
        """Ack done records of partitions still assigned here (a revoked partition's
        records are its new owner's to commit)."""
        assigned = self.assignment()
        for message in messages:
            if message.tp in assigned:
                self.ack(message)

    def drop_revoked(self, revoked: set[TP]) -> int:
        dropped = 0
        for buffer in self._buffers.values():
            kept = [m for m in buffer if m.tp not in revoked]
            dropped += len(buffer) - len(kept)
            buffer.clear()  # in place: the fetch loop holds this deque
            buffer.extend(kept)
            buffer.paused -= revoked
        return dropped

    # -- the fetching side: Faust's loop, with the bulk topics diverted ------------------

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        buffers = self._buffers
        flow_suspended = self.suspend_flow.is_set
        yield_every = 100
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                filled: set[str] = set()
                async for tp, message in ait:
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if not (r_offset is None or offset >= r_offset):
                        continue  # already seen (Faust logs these as dropped)
                    gap = offset - (r_offset or 0)
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    buffer = buffers.get(message.topic)
                    if buffer is not None:
                        if flow_suspended():
                            continue  # a rebalance: re-read from the committed offset
                        buffer.append(message)
                        set_read_offset(tp, offset)
                        filled.add(message.topic)
                        if len(buffer) > buffer.bound and tp not in buffer.paused:
                            # Faust's own TP type: its partition sets assert on it, and
                            # the fetch may hand over aiokafka's look-alike
                            paused = TP(tp.topic, tp.partition)
                            buffer.paused.add(paused)
                            self.on_buffer_full(paused)
                        continue
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                if filled:
                    for topic in filled:
                        buffers[topic].ready.set()
                    await asyncio.sleep(0)  # let the takers run between fetches
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise


def bulk_transport(topics: dict[str, int]) -> type[AIOKafkaTransport]:
    """A Faust transport whose consumer diverts ``topics`` (topic -> buffer bound)."""
    consumer = type("BulkConsumer", (BulkConsumer,), {"bulk_topics": dict(topics)})
    return type("BulkTransport", (AIOKafkaTransport,), {"Consumer": consumer})


class BulkApp:
    """Mixin for :class:`faust.App`: its consumer transport is ``bulk_transport_cls``."""

    bulk_transport_cls: type[AIOKafkaTransport]

    def _new_transport(self) -> AIOKafkaTransport:
        return self.bulk_transport_cls(self.conf.broker_consumer, self)  # type: ignore[attr-defined]
