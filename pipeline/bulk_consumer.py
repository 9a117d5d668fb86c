"""Faust's Kafka consumer, with the traces topic handed over in batches.

Faust delivers each record to its streams one at a time: two tasks raced per record in
the fetch loop, a lock, an event, a queue put, a stream step and a processor call.
Profiled at a few thousand traces/s that machinery took most of the worker's main
thread, more than parsing, scoring and detection together (tests/benchmarks/e2e). The
ingest path works on batches anyway, so this consumer diverts the records of one topic
as they are fetched, in the lists the fetch returns, before any of it; every other topic
(table changelogs, the scoring and control topics) goes Faust's usual way.

Offsets stay Faust's: a diverted record is acked with ``Consumer.ack`` once the batch it
fed is stored, and Faust's commit loop commits acked offsets as usual. When more than
``max_buffered`` diverted records wait, the topic's partitions are paused (Faust's
``on_buffer_full``) until half of them are taken, so memory is bounded and the other
topics keep flowing. Records of a partition this worker loses are dropped from the
buffer (its new owner reads them from the committed offset); the buffer is cleared with
Faust's own queues when a rebalance starts and when the flow resumes after table
recovery, and nothing is taken from it while the flow is suspended.
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
    # Faust's flow control keeps the queues it clears in a WeakSet: hashable by identity.
    __hash__ = object.__hash__  # type: ignore[assignment]


class BulkConsumer(AIOKafkaConsumer):
    bulk_topic: str | None = None
    max_buffered: int = 20_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bulk = _Buffer()
        self._bulk_ready = asyncio.Event()
        self._bulk_paused: set[TP] = set()
        self._flow_managed = False

    # -- the taking side ---------------------------------------------------------------

    async def take(self, max_records: int, timeout: float) -> list[Message]:
        """Up to ``max_records`` diverted records, waiting at most ``timeout`` for the
        first; fewer when fewer are buffered (the fetch already batches them).

        Waits while Faust's flow control is suspended (a rebalance, table recovery):
        detector state must be restored before the first record of a segment is seen.
        """
        flow = self.app.flow_control
        if not self._flow_managed:
            # Faust clears the queues it manages when a rebalance starts and when the flow
            # resumes; the records are read again from the committed offsets.
            flow.manage_queue(self._bulk)
            self._flow_managed = True
        await flow.acquire()
        if not self._bulk:
            self._bulk_ready.clear()
            try:
                await asyncio.wait_for(self._bulk_ready.wait(), timeout)
            except TimeoutError:
                return []
        bulk = self._bulk
        taken = [bulk.popleft() for _ in range(min(max_records, len(bulk)))]
        if self._bulk_paused and len(bulk) <= self.max_buffered // 2:
            for tp in self._bulk_paused:
                self.on_buffer_drop(tp)
            self._bulk_paused.clear()
        return taken

    def ack_all(self, messages: Iterable[Message]) -> None:
        """Ack stored records of partitions still assigned here (a revoked partition's
        records are its new owner's to commit)."""
        assigned = self.assignment()
        for message in messages:
            if message.tp in assigned:
                self.ack(message)

    def drop_revoked(self, revoked: set[TP]) -> int:
        kept = [m for m in self._bulk if m.tp not in revoked]
        dropped = len(self._bulk) - len(kept)
        self._bulk.clear()  # in place: the fetch loop holds this deque
        self._bulk.extend(kept)
        self._bulk_paused -= revoked
        return dropped

    # -- the fetching side: Faust's loop, with the bulk topic diverted -------------------

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        bulk_topic = self.bulk_topic
        bulk = self._bulk
        flow_suspended = self.suspend_flow.is_set
        yield_every = 100
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                fetched = False
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
                    if message.topic == bulk_topic:
                        if flow_suspended():
                            continue  # a rebalance: re-read from the committed offset
                        bulk.append(message)
                        set_read_offset(tp, offset)
                        fetched = True
                        if len(bulk) > self.max_buffered and tp not in self._bulk_paused:
                            self._bulk_paused.add(tp)
                            self.on_buffer_full(tp)
                        continue
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                if fetched:
                    self._bulk_ready.set()
                    await asyncio.sleep(0)  # let the taker run between fetches
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise


def bulk_transport(topic: str, max_buffered: int) -> type[AIOKafkaTransport]:
    """A Faust transport whose consumer diverts ``topic`` (see the module docstring)."""
    consumer = type("BulkConsumer", (BulkConsumer,),
                    {"bulk_topic": topic, "max_buffered": max_buffered})
    return type("BulkTransport", (AIOKafkaTransport,), {"Consumer": consumer})


class BulkApp:
    """Mixin for :class:`faust.App`: its consumer transport is ``bulk_transport_cls``."""

    bulk_transport_cls: type[AIOKafkaTransport]

    def _new_transport(self) -> AIOKafkaTransport:
        return self.bulk_transport_cls(self.conf.broker_consumer, self)  # type: ignore[attr-defined]
