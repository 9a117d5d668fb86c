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

The buffers hold aiokafka's records as fetched, not Faust messages: building a Faust
message per record, then acking it one by one, cost 3.5-4 µs of the main thread's ~70
per trace (tests/benchmarks/e2e). Offsets stay Faust's: once the batch a record fed is
done its offset is acked (:meth:`BulkConsumer.ack_all`, what ``Consumer.ack`` does, once
per partition) and Faust's commit loop commits acked offsets as usual. A buffer holding
more than its bound pauses its partitions (Faust's ``on_buffer_full``) until it is back
within it, so memory is bounded and other topics keep flowing. Resumed there, not lower:
a refill takes a call into Faust's consumer thread, which decodes the fetched records
while the busy loop holds the GIL (0.3-1.2 s after the resume for ~38,000 traces,
measured), and the bound must cover what the loop processes meanwhile. Resumed at half
of a 20,000 bound, the buffer ran dry for ~0.3 s at a time, a fifth of a 400,000-trace
drain; at the bound, about once per refill; with 40,000 at the bound, once in 20 s.
Records of a partition this worker loses are dropped from the buffers (the new owner
reads them from the committed offset); the buffers are cleared with Faust's own queues
when a rebalance starts and when the flow resumes after table recovery, and nothing is
taken while the flow is suspended. Records dropped that way, or refused while the flow
is suspended, are read again: once the rebalance and recovery are over, the diverted
topics' partitions are sought back to their committed offsets
(:meth:`BulkConsumer._reseek`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer as AIOKafkaClient
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

#: Seconds a fetch waits for records of the partitions active when it began (Faust's
#: loop waits 1 s). A full buffer takes its partitions out of that set, and the fetch in
#: flight does not see them come back: with every traces partition paused and the judge
#: off, only the idle control topic is left, and a resumed partition could wait out the
#: whole timeout before its next fetch. Not shown by measurement: judge off, 300,000
#: traces, 0.1 against 1 s read 26,727 / 19,398 and 22,685 / 24,256 traces/s.
FETCH_WAIT = 0.1


def offsets_of(records: Iterable[ConsumerRecord]) -> dict[tuple[str, int], list[int]]:
    """(topic, partition) -> offsets of ``records``: what acking them needs, without
    holding the records (and their values) until then."""
    offsets: dict[tuple[str, int], list[int]] = {}
    for record in records:
        offsets.setdefault((record.topic, record.partition), []).append(record.offset)
    return offsets


class _Buffer(deque[ConsumerRecord]):
    """One diverted topic's records, with what the taker and the fetch loop share."""

    # Faust's flow control keeps the queues it clears in a WeakSet: hashable by identity.
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound
        self.ready = asyncio.Event()
        self.paused: set[TP] = set()
        #: records Faust's flow control cleared away (see BulkConsumer._reseek)
        self.cleared = 0

    def clear(self) -> None:
        # Only Faust's flow control calls this (drop_revoked uses deque.clear): the
        # records are gone, and the fetch position is already past them.
        self.cleared += len(self)
        super().clear()


class BulkConsumer(AIOKafkaConsumer):
    #: topic -> how many fetched records may wait before its partitions pause
    bulk_topics: dict[str, int] = {}  # noqa: RUF012 - set per app by bulk_transport()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffers = {topic: _Buffer(bound) for topic, bound in self.bulk_topics.items()}
        self._flow_managed = False
        #: fetched records were refused during a rebalance (see _reseek)
        self._dropped = False
        self.reseeks = 0
        #: partitions sought back to fetched records not delivered (see _rewind)
        self.rewinds = 0

    # -- the taking side ---------------------------------------------------------------

    async def take(self, topic: str, max_records: int, timeout: float
                   ) -> list[ConsumerRecord]:
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
        if buffer.paused and len(buffer) <= buffer.bound:
            for tp in buffer.paused:
                self.on_buffer_drop(tp)
            buffer.paused.clear()

    def ack_all(self, records: Iterable[ConsumerRecord]) -> None:
        """Ack done records of partitions still assigned here (a revoked partition's
        records are its new owner's to commit): ``Consumer.ack``'s bookkeeping, once
        per partition rather than per record."""
        self.ack_offsets(offsets_of(records))

    def ack_offsets(self, offsets: Mapping[tuple[str, int], list[int]]) -> None:
        """:meth:`ack_all` for records already reduced to their offsets (``offsets_of``)."""
        assigned = self.assignment()
        acks_enabled_for = self.app.topics.acks_enabled_for
        with ack_lock:  # shared with Faust's own acks, as Consumer.ack takes it
            for (topic, partition), done in offsets.items():
                tp = TP(topic, partition)  # Faust's type: its offset maps are keyed by it
                if tp not in assigned or not acks_enabled_for(topic):
                    continue
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                fresh = [o for o in done
                         if (committed is None or o >= committed) and o not in index]
                index.update(fresh)
                self._acked[tp].extend(fresh)
                self._n_acked += len(fresh)
            notify(self._waiting_for_ack)

    def drop_revoked(self, revoked: set[TP]) -> int:
        dropped = 0
        for buffer in self._buffers.values():
            kept = [r for r in buffer if (r.topic, r.partition) not in revoked]
            dropped += len(buffer) - len(kept)
            deque.clear(buffer)  # in place (the fetch loop holds it); theirs to read now
            buffer.extend(kept)
            buffer.paused -= revoked
        return dropped

    # -- the fetching side: Faust's loop, with the bulk topics diverted ------------------

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's
        # Faust's loop, reading each fetch per partition rather than through its
        # per-record async generator: for the diverted topics the end offset is tracked,
        # the read offset advanced and the buffer extended once per partition and fetch
        # (that generator, a lag lookup per record included, was a tenth of the worker's
        # main thread). Other topics (control, table changelogs) go record by record to
        # Faust's callback, as before.
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, active = await self._wait_next_records(FETCH_WAIT)
                await self.sleep(0)
                if self._reseek_due():
                    await self._reseek()
                    continue  # this fetch may predate the seek: it is read again
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    try:
                        await self.perform_seek()  # as Faust's getmany does
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    await self._rewind({tp: batch[0].offset for tp, batch in records.items()
                                        if batch}, records)
                    continue
                generation = self.app.consumer_generation_id
                filled: set[str] = set()
                unread: dict[Any, int] = {}  # partition -> its first record not handed over
                for tp, batch in records.items():
                    if not batch:
                        continue
                    if not self._still_current(generation):
                        self._dropped = True  # a rebalance began: read again after it
                        unread[tp] = batch[0].offset
                        continue
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        unread[tp] = batch[0].offset  # paused since the fetch
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    buffer = self._buffers.get(tp.topic)
                    if buffer is None:
                        stopped_at = await self._deliver(tp, batch, generation)
                        if stopped_at is not None:
                            unread[tp] = stopped_at
                    elif self.suspend_flow.is_set():
                        self._dropped = True  # refused: read again once the flow resumes
                        unread[tp] = batch[0].offset
                    elif await self._divert(tp, batch, buffer):
                        filled.add(tp.topic)
                if unread:
                    await self._rewind(unread, records)
                if filled:
                    for topic in filled:
                        self._buffers[topic].ready.set()
                    await asyncio.sleep(0)  # let the takers run between fetches
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _new_offsets(self, tp: TP, batch: list[Any]) -> list[Any]:
        """The records of ``batch`` not read yet, gaps in their offsets recorded (as
        Faust's loop does, so commits move past compacted or aborted offsets)."""
        r_offset = self._read_offset[tp]
        acks = self.app.topics.acks_enabled_for(tp.topic)
        fresh = []
        for record in batch:
            offset = record.offset
            if not (r_offset is None or offset >= r_offset):
                continue  # already seen (Faust logs these as dropped)
            if acks and r_offset and offset - r_offset > 1:
                await self._add_gap(tp, r_offset + 1, offset)
            fresh.append(record)
            r_offset = offset
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        return fresh

    def _reseek_due(self) -> bool:
        """Records were dropped, and the rebalance and table recovery are over."""
        return ((self._dropped or any(b.cleared for b in self._buffers.values()))
                and self.flow_active and not self.suspend_flow.is_set()
                and not self.app.in_recovery)

    async def _reseek(self) -> None:
        """Read the diverted topics again from their committed offsets after a
        rebalance dropped fetched records.

        Faust's flow control clears the buffers when it resumes, *after* its recovery
        has sought the partitions back to their committed offsets, and records fetched
        while the flow is suspended are refused. Either way the fetch position is past
        them: without another seek, a partition with no later records is never read
        again (its lag stays) and one with later records shows an offset jump that the
        commit takes for a gap and moves past (the records are lost). Both happened in
        the two-worker benchmark. Only the diverted topics' partitions are sought (a
        table's changelog must keep its recovery position); records read twice are
        duplicates, which the worker recognises (ClickHouse keeps one row per trace)."""
        self._dropped = False
        dropped = 0
        for buffer in self._buffers.values():
            dropped += buffer.cleared + len(buffer)
            buffer.cleared = 0
            deque.clear(buffer)
        offsets = {tp: self._committed_offset.get(tp) or 0 for tp in self.assignment()
                   if tp.topic in self._buffers}
        self.reseeks += 1
        self.log.info(f"re-reading {sorted(offsets.items())} after a rebalance dropped "
                      f"{dropped} fetched records")
        await self.seek_wait(offsets)

    async def _divert(self, tp: TP, batch: list[Any], buffer: _Buffer) -> bool:
        fresh = await self._new_offsets(tp, batch)
        if not fresh:
            return False
        buffer.extend(fresh)
        self._read_offset[tp] = fresh[-1].offset
        if len(buffer) > buffer.bound and tp not in buffer.paused:
            # Faust's own TP type: its partition sets assert on it, and the fetch may
            # hand over aiokafka's look-alike
            paused = TP(tp.topic, tp.partition)
            buffer.paused.add(paused)
            self.on_buffer_full(paused)
        return True

    def _still_current(self, generation: int) -> bool:
        """The flow runs and no rebalance began since the fetch of ``generation``."""
        return self.flow_active and generation == self.app.consumer_generation_id

    async def _deliver(self, tp: TP, batch: list[Any], generation: int) -> int | None:
        """Hand ``batch`` to Faust record by record; the offset of the first record not
        handed over if the flow stopped or the generation changed first, else None."""
        # Stops as Faust's own loop does: each record's offset is marked read even when
        # the suspended flow refused it, so running on through the batch would mark
        # records read that nobody saw, and, if table recovery has meanwhile sought the
        # partition back, set the read offset past the records it must replay.
        to_message = self._to_message
        for record in await self._new_offsets(tp, batch):
            if not self._still_current(generation):
                return int(record.offset)
            await self.wait_first(self.callback(to_message(tp, record)),
                                  self.suspend_flow.wait())
            self._read_offset[tp] = record.offset
        return None

    async def _rewind(self, unread: dict[Any, int], records: Mapping[Any, list[Any]]) -> None:
        """Seek each partition of ``unread`` back to its first record that was fetched
        but not handed over, unless something sought the partition since the fetch.

        A fetch can return while the flow is stopped: one that began before a rebalance
        waits in aiokafka for the new assignment, then returns what it fetched from it
        while Faust's table recovery still runs. Faust drops such records and seeks back
        to the committed offsets, but aiokafka seeks only partitions that have one: a
        table changelog never has, nor has a traces partition before its first commit,
        and their position stays past the dropped records: the first 18 traces of a new
        partition were stored by no one (the commit later passed them as a gap), and a
        recovery whose changelog backlog fits in one fetch never receives a record."""
        spans = {tp: (first, records[tp][-1].offset + 1) for tp, first in unread.items()}
        rewound = await self._thread.call_thread(
            _rewind_unsought, self._thread._ensure_consumer(), spans)
        if rewound:
            self.rewinds += len(rewound)
            self.log.info(f"re-reading {sorted(rewound)}: fetched, not delivered")


def _rewind_unsought(client: AIOKafkaClient, spans: dict[Any, tuple[int, int]]
                     ) -> list[tuple[str, int, int]]:
    """Seek each partition to ``first`` if its position is still ``end``, where the
    fetch of records ``first..end-1`` left it. Runs in the consumer's thread, so no
    seek (table recovery's, say) can come between the check and this one."""
    subscription = client._subscription
    rewound = []
    for tp, (first, end) in spans.items():
        if not subscription.is_assigned(tp):
            continue
        state = subscription.subscription.assignment.state_value(tp)
        if state.has_valid_position and state.position == end:
            client.seek(tp, first)
            rewound.append((tp.topic, tp.partition, first))
    return rewound


def bulk_transport(topics: dict[str, int], consumer_base: type[BulkConsumer] = BulkConsumer
                   ) -> type[AIOKafkaTransport]:
    """A Faust transport whose consumer (a ``consumer_base``) diverts ``topics``
    (topic -> buffer bound)."""
    consumer = type("BulkConsumer", (consumer_base,), {"bulk_topics": dict(topics)})
    return type("BulkTransport", (AIOKafkaTransport,), {"Consumer": consumer})


class BulkApp:
    """Mixin for :class:`faust.App`: its consumer transport is ``bulk_transport_cls``."""

    bulk_transport_cls: type[AIOKafkaTransport]

    def _new_transport(self) -> AIOKafkaTransport:
        return self.bulk_transport_cls(self.conf.broker_consumer, self)  # type: ignore[attr-defined]
