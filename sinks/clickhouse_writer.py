"""Batched, retrying ClickHouse inserts through a bounded buffer, on one dedicated thread.

Rows are submitted per table and coalesced into insert blocks of up to ``batch_rows``
rows, flushed when a table has that many, when the oldest row has waited
``flush_interval`` seconds (up to ``max_flush_interval`` while rows arrive fast enough to
fill a block by then), or when a caller asks (``write`` and ``flush`` do). The
buffer holds at most ``max_buffered_rows`` rows not yet stored; ``submit`` waits for
room beyond that, so a slow or dead ClickHouse pauses the consumer instead of growing
memory, and rows stay in the buffer until an insert succeeds, so nothing is lost.

Flush-before-commit: the Faust agent awaits :meth:`ClickHouseWriter.write` (or the
ticket :meth:`ClickHouseWriter.submit` returns) before it acknowledges the Kafka events
of a batch, so offsets are committed only for rows that are stored.

Idempotence: each insert block carries an ``insert_deduplication_token`` that stays the
same across its retries, so a retry whose first attempt did land is dropped by
ClickHouse (tables set ``non_replicated_deduplication_window``); a replay from Kafka
after a crash writes rows with the same ids, which ReplacingMergeTree collapses under
``FINAL``. Inserts are synchronous (``async_insert=0``) whatever the server's or the
user's profile says: an asynchronous insert ignores the token unless
``async_insert_deduplicate`` is on, and chdb turns ``async_insert`` on by default, where
it also cost 12 % more CPU per row (21.8 against 19.1 µs, traces rows in 5,000-row
blocks, measured). Nor does an insert collapse its own block as a merge would
(``optimize_on_insert=0``): readers that need one row per id use ``FINAL`` anyway, the
worker drops a trace id it stored recently before it reaches a block, and the collapse
cost 3-5 µs of the engine's CPU a traces row (13.7-14.0 against 17.1-18.9 µs, 1M rows in
20,000-row blocks, measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson
from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Measured in tests/benchmarks/bench_clickhouse.py: rows/s flattens out from about
#: 5,000-20,000 rows per insert (ClickHouse advises at least a thousand rows per insert).
DEFAULT_BATCH_ROWS = 20_000
DEFAULT_FLUSH_INTERVAL = 0.5
DEFAULT_MAX_BUFFERED_ROWS = 200_000


#: How a block travels to ClickHouse. ``native``: the driver's Native encoder, any value
#: its column type takes. ``json``: the block as one orjson array of row arrays, its outer
#: brackets cut, so rows arrive comma-separated, as JSONCompactEachRow accepts them. The
#: orjson encoder is C, so the writer's thread holds the GIL ~1.3 µs a row instead of
#: 7.5-8.6, and a Python thread beside it keeps ~0.9 of its speed instead of ~0.65
#: (measured; end to end see README, Throughput). For rows whose floats are all finite
#: (JSON has no NaN: orjson writes null) and whose datetimes are aware.
ENCODINGS = ("native", "json")


@dataclass(slots=True)
class TableBatch:
    table: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    encoding: str = "native"


class _Target(NamedTuple):
    table: str
    columns: tuple[str, ...]
    encoding: str


@dataclass(slots=True)
class WriterStats:
    rows: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    retries: int = 0
    last_error: str = ""
    #: rows submitted and not yet stored, now and at most
    buffered_rows: int = 0
    peak_buffered_rows: int = 0
    #: how often and how long submitters waited for room (backpressure)
    backpressure_waits: int = 0
    backpressure_seconds: float = 0.0
    #: ``SYSTEM JEMALLOC PURGE`` calls (see ``purge_interval``)
    purges: int = 0


class _Ticket:
    """Completes when every chunk of one ``submit`` call is stored."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], remaining: int) -> None:
        self.future, self.remaining = future, remaining

    def chunk_stored(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            # RuntimeError: its event loop is closed, so nobody awaits it any more.
            with contextlib.suppress(RuntimeError):
                self.future.set_result(None)


@dataclass(slots=True, eq=False)
class _Chunk:
    """One submitted TableBatch; ``done`` rows of it are stored already."""

    seq: int
    rows: list[Sequence[Any]]
    ticket: _Ticket
    enqueued: float
    done: int = 0


class WriteTicket:
    """Awaitable: resolves once the rows of one ``submit`` are stored in ClickHouse."""

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, None]:
        return self._future.__await__()


def _rows_left(queue: deque[_Chunk]) -> int:
    return sum(len(c.rows) - c.done for c in queue)


def _report_crash(task: asyncio.Task[None]) -> None:
    # The flusher only ends by cancellation; anything else is a bug worth a loud log
    # (the next submit starts a new flusher, and the rows are still buffered).
    if not task.cancelled() and task.exception() is not None:
        log.error("clickhouse flusher crashed", exc_info=task.exception())


class ClickHouseWriter:
    """Owns the ClickHouse client; every client call runs on its single thread.

    chdb is synchronous and one process owns its directory, so queries from the web
    port (``driftline sql``) and the alerter share this thread with the inserts instead
    of opening the directory twice.
    """

    def __init__(
        self,
        client: Client,
        *,
        max_backoff: float = 30.0,
        executor: ThreadPoolExecutor | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_flush_interval: float | None = None,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        dedup_tokens: bool = True,
        purge_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_flush_interval`` (default: ``flush_interval``): how long rows may wait
        past ``flush_interval`` while they arrive fast enough to fill a block of
        ``batch_rows`` by then (see :meth:`_due`).

        ``purge_interval``: at most this often, after an insert, ``SYSTEM JEMALLOC
        PURGE``, for the embedded engine. Its allocator keeps the pages that merges free:
        inserting 1.5M trace rows alone grew the process by ~270 MiB while the engine's
        own accounting stayed under 20 MiB, and a purge gave back 209 MiB of it
        (measured). ``None``: never (a server looks after its own memory)."""
        max_flush_interval = flush_interval if max_flush_interval is None else max_flush_interval
        if batch_rows < 1 or max_buffered_rows < 1 or flush_interval < 0:
            raise ValueError("batch_rows and max_buffered_rows must be >= 1, "
                             "flush_interval >= 0")
        if max_flush_interval < flush_interval:
            raise ValueError("max_flush_interval must be >= flush_interval")
        self.client = client
        self.max_backoff = max_backoff
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.max_flush_interval = max_flush_interval
        self._clock = clock
        self.max_buffered_rows = max_buffered_rows
        self.dedup_tokens = dedup_tokens
        self.purge_interval = purge_interval
        self._purged_at = clock()
        self.stats = WriterStats()
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        self._queues: dict[_Target, deque[_Chunk]] = {}
        # Unique per writer instance, so tokens never collide across restarts.
        self._token_prefix = uuid.uuid4().hex
        self._seq = 0
        self._force = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._space: asyncio.Condition | None = None
        self._flusher: asyncio.Task[None] | None = None

    # -- running things on the ClickHouse thread -------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the ClickHouse thread from another thread (not the event loop's)."""
        return self._executor.submit(fn, *args, **kwargs).result()

    async def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = await self.run(self.client.query, sql)
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    # -- writing ---------------------------------------------------------------------

    async def write(self, batches: Sequence[TableBatch]) -> None:
        """Store every non-empty batch now; returns once all their rows are stored."""
        ticket = await self.submit(batches)
        self._request_flush()
        await ticket

    async def submit(self, batches: Sequence[TableBatch]) -> WriteTicket:
        """Buffer the rows, waiting for room while the buffer is full (backpressure).

        Returns a ticket to await before acknowledging whatever produced the rows; the
        rows go out with the next size- or time-triggered flush.
        """
        self._ensure_loop()
        assert self._loop is not None and self._space is not None
        batches = [b for b in batches if b.rows]
        future: asyncio.Future[None] = self._loop.create_future()
        n = sum(len(b.rows) for b in batches)
        if n == 0:
            future.set_result(None)
            return WriteTicket(future)
        if not self._has_room(n):
            self.stats.backpressure_waits += 1
            started = time.monotonic()
            self._request_flush()  # no point waiting out flush_interval with a full buffer
            async with self._space:
                await self._space.wait_for(lambda: self._has_room(n))
            self.stats.backpressure_seconds += time.monotonic() - started
        ticket = _Ticket(future, len(batches))
        now = self._clock()
        for batch in batches:
            if batch.encoding not in ENCODINGS:
                raise ValueError(f"encoding {batch.encoding!r} is not one of {ENCODINGS}")
            key = _Target(batch.table, tuple(batch.columns), batch.encoding)
            self._seq += 1
            # A copy: the caller may reuse its list once submit returns.
            self._queues.setdefault(key, deque()).append(
                _Chunk(self._seq, list(batch.rows), ticket, now))
        self.stats.buffered_rows += n
        self.stats.peak_buffered_rows = max(self.stats.peak_buffered_rows,
                                            self.stats.buffered_rows)
        self._wake_flusher()
        return WriteTicket(future)

    async def flush(self) -> None:
        """Store everything submitted so far (waits through retries)."""
        self._ensure_loop()
        assert self._space is not None
        self._request_flush()
        async with self._space:
            await self._space.wait_for(lambda: self.stats.buffered_rows == 0)

    def _has_room(self, n: int) -> bool:
        # An empty buffer takes any batch, so one larger than the bound still goes through.
        buffered = self.stats.buffered_rows
        return buffered == 0 or buffered + n <= self.max_buffered_rows

    def _request_flush(self) -> None:
        self._force = True
        self._wake_flusher()

    def _wake_flusher(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _ensure_loop(self) -> None:
        """Bind the flusher to the running loop (again, if a new loop took over)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._flusher is not None and not self._flusher.done():
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._space = asyncio.Condition()
        # Tickets of a previous, finished loop can never be awaited again; their rows
        # are still buffered and will be stored by this loop's flusher.
        self._flusher = loop.create_task(self._flush_loop(), name="clickhouse-flusher")
        self._flusher.add_done_callback(_report_crash)

    def _oldest(self) -> float | None:
        heads = [q[0].enqueued for q in self._queues.values() if q]
        return min(heads) if heads else None

    def _queued(self) -> int:
        """Rows waiting in the fullest table."""
        return max(map(_rows_left, self._queues.values()), default=0)

    def _due(self) -> bool:
        """Flush when asked, when a table holds a block, or once the oldest row is
        ``flush_interval`` old; but while rows arrive fast enough to fill a block within
        ``max_flush_interval``, wait for that block (up to then). Under a backlog that
        makes blocks of ``batch_rows`` instead of a flush interval's worth: fewer parts,
        and ClickHouse merges less (measured: README, Throughput); at a trickle rows
        still go out after ``flush_interval``."""
        if self._force:
            return True
        queued = self._queued()
        if queued >= self.batch_rows:
            return True
        oldest = self._oldest()
        if oldest is None:
            return False
        age = self._clock() - oldest
        if age < self.flush_interval:
            return False
        # the rows gathered in ``age`` would not reach batch_rows by max_flush_interval
        return (age >= self.max_flush_interval
                or queued <= self.batch_rows * age / self.max_flush_interval)

    def _next_check(self) -> float | None:
        """Seconds until :meth:`_due` may turn true with no new rows (submit wakes the
        flusher for those)."""
        oldest = self._oldest()
        if oldest is None:
            return None
        age = self._clock() - oldest
        if age < self.flush_interval:
            return self.flush_interval - age
        # deferred: the rate so far no longer fills a block once age passes this
        flip = self._queued() * self.max_flush_interval / self.batch_rows
        return max(0.0, min(self.max_flush_interval, flip) - age)

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        while True:
            if not self._due():
                timeout = self._next_check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                continue
            self._force = False
            await self._drain()

    async def _drain(self) -> None:
        """Insert everything buffered, one block of at most ``batch_rows`` at a time."""
        for target, queue in list(self._queues.items()):
            while queue:
                block, parts = self._next_block(queue)
                token = self._token(parts)
                await self._insert_with_retry(target, block, token)
                self._mark_stored(queue, parts)
            if not queue:
                self._queues.pop(target, None)

    def _next_block(self, queue: deque[_Chunk]) -> tuple[list[Sequence[Any]],
                                                         list[tuple[_Chunk, int]]]:
        block: list[Sequence[Any]] = []
        parts: list[tuple[_Chunk, int]] = []
        for chunk in queue:
            room = self.batch_rows - len(block)
            if room <= 0:
                break
            take = chunk.rows[chunk.done:chunk.done + room]
            block.extend(take)
            parts.append((chunk, len(take)))
        return block, parts

    def _token(self, parts: list[tuple[_Chunk, int]]) -> str:
        # Deterministic in the block's content, so a block re-formed after a cancelled
        # attempt gets the same token and ClickHouse drops the duplicate.
        first, last = parts[0], parts[-1]
        return (f"{self._token_prefix}-{first[0].seq}.{first[0].done}-"
                f"{last[0].seq}.{last[0].done + last[1]}")

    def _mark_stored(self, queue: deque[_Chunk], parts: list[tuple[_Chunk, int]]) -> None:
        stored = 0
        for chunk, n in parts:
            chunk.done += n
            stored += n
            if chunk.done >= len(chunk.rows):
                queue.popleft()
                chunk.ticket.chunk_stored()
        self.stats.buffered_rows -= stored
        assert self._loop is not None
        self._loop.create_task(self._notify_space())

    async def _notify_space(self) -> None:
        assert self._space is not None
        async with self._space:
            self._space.notify_all()

    def _insert_settings(self, token: str) -> dict[str, Any]:
        settings: dict[str, Any] = {"async_insert": 0, "optimize_on_insert": 0}
        if self.dedup_tokens:
            settings["insert_deduplication_token"] = token
        return settings

    def _insert(self, target: _Target, rows: list[Sequence[Any]],
                settings: dict[str, Any]) -> None:
        """One insert, on the ClickHouse thread."""
        if target.encoding == "json":
            # One call for the block: a call per row measured 3.4-4.9 µs a row at 20,000-
            # row blocks (a bytes object per row), 1.2-1.4 for one call.
            data = memoryview(orjson.dumps(rows))[1:-1]
            self.client.raw_insert(target.table, list(target.columns), data,
                                   settings=settings, fmt="JSONCompactEachRow")
        else:
            self.client.insert(target.table, rows, column_names=list(target.columns),
                               settings=settings)
        if self.purge_interval is not None and \
                self._clock() - self._purged_at >= self.purge_interval:
            self._purge()

    def _purge(self) -> None:
        """On the ClickHouse thread, between inserts."""
        self._purged_at = self._clock()
        try:
            self.client.command("SYSTEM JEMALLOC PURGE")
        except Exception as exc:  # an engine built without jemalloc: stop asking
            self.purge_interval = None
            log.warning("clickhouse allocator purge unavailable, not retried",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            return
        self.stats.purges += 1

    async def _insert_with_retry(
        self, target: _Target, rows: list[Sequence[Any]], token: str
    ) -> None:
        table = target.table
        settings = self._insert_settings(token)
        delay = 0.2
        while True:
            try:
                await self.run(self._insert, target, rows, settings)
            except Exception as exc:  # any failure of the store is retried, never dropped
                self.stats.retries += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning(
                    "clickhouse insert failed, retrying",
                    extra={"table": table, "rows": len(rows),
                           "retry_in_s": round(delay, 2), "error": self.stats.last_error},
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
                continue
            self._count_insert(table, len(rows))
            return

    def _count_insert(self, table: str, rows: int) -> None:
        self.stats.inserts += 1
        self.stats.rows[table] = self.stats.rows.get(table, 0) + rows

    # -- shutting down ---------------------------------------------------------------

    def close(self) -> None:
        """Try once to store what is still buffered, then close the client.

        Rows that cannot be stored now were never acknowledged to Kafka, so they are
        consumed again after the restart; the count is logged.
        """
        if (self._flusher is not None and not self._flusher.done() and self._loop is not None
                and not self._loop.is_closed() and not self._loop.is_running()):
            self._flusher.cancel()
        left = self._executor.submit(self._drain_once).result()
        if left:
            log.warning("clickhouse writer closed with rows not stored",
                        extra={"rows": left, "error": self.stats.last_error})
        self._executor.submit(self.client.close).result()
        self._executor.shutdown(wait=True)

    def _drain_once(self) -> int:
        """On the ClickHouse thread: one attempt per buffered block; rows left unstored."""
        left = 0
        for target, queue in list(self._queues.items()):
            while queue:
                block, parts = self._next_block(queue)
                settings = self._insert_settings(self._token(parts))
                try:
                    self._insert(target, block, settings)
                except Exception as exc:
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    left += _rows_left(queue)
                    break
                self._count_insert(target.table, len(block))
                for chunk, n in parts:
                    chunk.done += n
                    self.stats.buffered_rows -= n
                    if chunk.done >= len(chunk.rows):
                        queue.popleft()
        return left
