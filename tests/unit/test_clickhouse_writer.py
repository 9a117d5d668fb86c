"""The writer's buffer on the real engine: batching, backpressure, outages, idempotence."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from detectors.registry import SegmentRegistry
from pipeline.ingest import TRACE_COLUMNS, Ingestor, Record
from pipeline.metrics import Counters
from schemas.limits import Limits
from sinks.clickhouse_client import connect
from sinks.clickhouse_schema import apply_migrations
from sinks.clickhouse_writer import ENCODINGS, ClickHouseWriter, TableBatch

COLUMNS = ("trace_id", "ts", "segment", "name", "value", "sample_rate")
TS = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chdb allows one directory per process at a time: one for the whole module.
    path: Path = tmp_path_factory.mktemp("chdb-writer")
    c = connect(f"chdb://{path}")
    apply_migrations(c)
    yield c
    c.close()


class OutageClient:
    """Inserts fail while ``down`` is set, as during a ClickHouse restart; records blocks."""

    def __init__(self, inner: Client) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.blocks: list[int] = []
        self.failed = 0

    def insert(self, table: str, rows: list[Any], **kwargs: Any) -> Any:
        if self.down.is_set():
            self.failed += 1
            raise ConnectionError("connection refused")
        self.blocks.append(len(rows))
        return self.inner.insert(table, rows, **kwargs)

    def raw_insert(self, table: str, columns: list[str], data: bytes, **kwargs: Any) -> Any:
        if self.down.is_set():
            self.failed += 1
            raise ConnectionError("connection refused")
        self.blocks.append(data.count(b"\n") + 1)
        return self.inner.raw_insert(table, columns, data, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.query(*args, **kwargs)

    def close(self) -> None:
        """The module's client stays open for the other tests."""


def batch(prefix: str, start: int, n: int, encoding: str = "native") -> TableBatch:
    return TableBatch("scores", COLUMNS,
                      [[f"{prefix}-{i}", TS, "s", "refusal", 0.0, 1.0]
                       for i in range(start, start + n)], encoding)


def count(client: Client, prefix: str, final: bool = True) -> int:
    sql = (f"SELECT count() FROM scores {'FINAL' if final else ''} "
           f"WHERE trace_id LIKE '{prefix}-%'")
    return int(client.query(sql).result_rows[0][0])


async def until(probe: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait on a condition with a deadline (yielding to the loop), never a blind sleep."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_outage_loses_nothing_and_pauses_the_producer(client: Client) -> None:
    flaky = OutageClient(client)
    writer = ClickHouseWriter(flaky, max_backoff=0.02, batch_rows=500,  # type: ignore[arg-type]
                              flush_interval=0.01, max_buffered_rows=1000)
    produced: list[int] = []

    async def producer() -> None:
        # The Faust agent's shape: submit a batch, then ack only once it is stored.
        pending = []
        for k in range(20):
            pending.append(await writer.submit([batch("outage", k * 200, 200)]))
            produced.append(k)
        for ticket in pending:
            await ticket

    async def scenario() -> None:
        flaky.down.set()
        task = asyncio.create_task(producer())
        await until(lambda: writer.stats.backpressure_waits > 0 and flaky.failed >= 3,
                    "the producer to be paused by a full buffer during the outage")
        # Paused, not growing: at most the bound is held, and the producer stopped early.
        assert writer.stats.buffered_rows <= 1000
        assert len(produced) <= 5
        assert not task.done()
        flaky.down.clear()  # ClickHouse is back
        await asyncio.wait_for(task, 20)

    run(scenario())
    assert writer.stats.peak_buffered_rows <= 1000
    assert writer.stats.retries >= 3
    assert writer.stats.buffered_rows == 0
    assert count(client, "outage") == 4000
    assert count(client, "outage", final=False) == 4000  # no retried block stored twice


def test_batches_by_size_and_by_time(client: Client) -> None:
    recorder = OutageClient(client)
    writer = ClickHouseWriter(recorder, batch_rows=1000,  # type: ignore[arg-type]
                              flush_interval=0.05, max_buffered_rows=100_000)

    async def scenario() -> None:
        # Many small submits coalesce into blocks of batch_rows...
        tickets = [await writer.submit([batch("size", k * 100, 100)]) for k in range(25)]
        await until(lambda: sum(recorder.blocks) >= 2000, "two full blocks by size")
        assert recorder.blocks[:2] == [1000, 1000]
        # ...and the remainder goes out once the oldest row waited flush_interval.
        for ticket in tickets:
            await ticket
        assert recorder.blocks == [1000, 1000, 500]

    run(scenario())
    assert count(client, "size") == 2500


def test_write_is_stored_on_return_and_oversized_batches_pass(client: Client) -> None:
    writer = ClickHouseWriter(client, batch_rows=300, max_buffered_rows=100)
    run(writer.write([batch("big", 0, 1000), TableBatch("scores", COLUMNS, [])]))
    assert count(client, "big") == 1000  # larger than the bound: alone, split into blocks
    assert writer.stats.inserts == 4


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_retried_block_that_had_landed_is_not_stored_twice(client: Client,
                                                           encoding: str) -> None:
    class LostAnswer(OutageClient):
        """The first insert lands but its answer is lost: the writer must retry it."""

        def insert(self, table: str, rows: list[Any], **kwargs: Any) -> Any:
            return self._lose_first(self.inner.insert, table, rows, **kwargs)

        def raw_insert(self, table: str, columns: list[str], data: bytes,
                       **kwargs: Any) -> Any:
            return self._lose_first(self.inner.raw_insert, table, columns, data, **kwargs)

        def _lose_first(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            sent.append(kwargs["settings"])
            result = call(*args, **kwargs)
            if not self.failed:
                self.failed += 1
                raise TimeoutError("read timed out")
            return result

    sent: list[dict[str, Any]] = []
    writer = ClickHouseWriter(LostAnswer(client), max_backoff=0.01)  # type: ignore[arg-type]
    run(writer.write([batch(f"lost-{encoding}", 0, 300, encoding)]))
    assert writer.stats.retries == 1
    # Even before merges (no FINAL): the token dropped the second copy.
    assert count(client, f"lost-{encoding}", final=False) == 300
    # one token for both attempts, and synchronous inserts, where tokens always count
    assert len(sent) == 2 and sent[0] == sent[1]
    assert sent[0]["async_insert"] == 0 and sent[0]["insert_deduplication_token"]
    assert sent[0]["optimize_on_insert"] == 0  # the block is not collapsed on insert


def test_flush_and_close_store_what_is_buffered(client: Client) -> None:
    writer = ClickHouseWriter(OutageClient(client), flush_interval=3600)  # type: ignore[arg-type]

    async def scenario() -> None:
        await writer.submit([batch("flush", 0, 10)])
        await writer.flush()
        assert count(client, "flush") == 10
        await writer.submit([batch("close", 0, 10)])

    run(scenario())
    writer.close()  # the loop is gone; close still tries once to store the rest
    assert count(client, "close") == 10


def test_both_encodings_store_the_same_traces_rows(client: Client) -> None:
    # Real rows from ingest, plus the values JSON could change: floats of every
    # magnitude, escapes and control characters, the token columns' bounds, NULLs.
    rng = random.Random(7)
    now = int(time.time() * 1000)
    traces = [orjson.dumps({
        "trace_id": f"enc-{i}", "timestamp": now - rng.randrange(10**9),
        "input": [{"role": "user", "content": f"q{i} \u00e9\u2028\"\\\n\t\x00"}],
        "output": rng.choice(["", "ok", "call +44 20 7946 0958", "\U0001f600" * 3]),
        "latency_ms": rng.choice([None, 0.0, 5e-324, 1.7976931348623157e308,
                                  rng.random() * 10 ** rng.randrange(-12, 12)]),
        "cost_usd": rng.choice([None, rng.random() / 3]),
        "input_tokens": rng.choice([None, 0, 2**32 - 1]),
        "feedback": rng.choice([None, -1, 0.1, "up"]),
        "metadata": {"k\"ey": "v\nal", "finish_reason": rng.choice(["length", "stop"])},
        "app": rng.choice(["a", "b|c"]), "error": rng.choice([None, "timeout"]),
    }) for i in range(2000)]
    out = Ingestor(segment_fields=("app",), registry=SegmentRegistry({}), counters=Counters(),
                   limits=Limits()).process(
        [Record(v, None, "t", 0, i) for i, v in enumerate(traces)])
    assert len(out.traces.rows) == 2000 and out.traces.encoding == "json"
    client.command("CREATE TABLE IF NOT EXISTS traces_native AS traces")
    writer = ClickHouseWriter(client)
    run(writer.write([out.traces, TableBatch("traces_native", TRACE_COLUMNS,
                                             out.traces.rows, "native")]))
    columns = ", ".join(TRACE_COLUMNS)
    one = f"SELECT {columns} FROM traces WHERE trace_id LIKE 'enc-%'"
    other = f"SELECT {columns} FROM traces_native"
    assert client.query(f"SELECT count() FROM ({one})").result_rows == [(2000,)]
    assert client.query(f"{one} EXCEPT {other}").result_rows == []
    assert client.query(f"{other} EXCEPT {one}").result_rows == []



def test_a_fast_stream_waits_for_a_full_block_and_a_trickle_does_not(client: Client) -> None:
    # The trigger on a clock the test moves; no await between moves and checks, so the
    # flusher task cannot run in between.
    now = [0.0]

    def writer() -> ClickHouseWriter:
        return ClickHouseWriter(client, batch_rows=1000, flush_interval=0.5,
                                max_flush_interval=2.0, clock=lambda: now[0])

    async def scenario() -> None:
        fast, trickle, steady = writer(), writer(), writer()
        now[0] = 0.0
        await fast.submit([batch("fast", 0, 400)])
        await trickle.submit([batch("trickle", 0, 10)])
        now[0] = 0.49
        assert not fast._due() and not trickle._due()  # younger than flush_interval
        now[0] = 0.6
        assert trickle._due()  # 10 rows in 0.6 s will not make a block: go now
        # 400 rows in 0.6 s make 1,000 by 1.5 s: wait, until the rate says otherwise
        assert not fast._due()
        assert fast._next_check() == pytest.approx(0.2)  # 400 rows fill by 2 s until 0.8 s
        now[0] = 0.8
        assert fast._due()
        await steady.submit([batch("steady", 0, 999)])
        now[0] = 2.79  # the steady writer's rows are 1.99 s old
        assert not steady._due()
        now[0] = 2.8
        assert steady._due()  # max_flush_interval: no longer, whatever the rate
        now[0] = 100.0
        for w in (fast, trickle, steady):
            await w.flush()

    run(scenario())
    assert (count(client, "fast"), count(client, "trickle"), count(client, "steady")) == \
        (400, 10, 999)


def test_without_a_max_flush_interval_rows_go_at_flush_interval(client: Client) -> None:
    now = [0.0]
    w = ClickHouseWriter(client, batch_rows=1000, flush_interval=0.5, clock=lambda: now[0])

    async def scenario() -> None:
        await w.submit([batch("plain", 0, 900)])
        now[0] = 0.5
        assert w._due()
        now[0] = 100.0
        await w.flush()

    run(scenario())
    assert count(client, "plain") == 900
    with pytest.raises(ValueError, match="max_flush_interval"):
        ClickHouseWriter(client, flush_interval=1.0, max_flush_interval=0.5)


def test_the_engine_s_allocator_is_purged_at_most_once_per_interval(client: Client) -> None:
    now = [0.0]
    w = ClickHouseWriter(client, batch_rows=10, purge_interval=10.0, clock=lambda: now[0])

    async def insert_at(t: float, start: int) -> None:
        now[0] = t
        await w.write([batch("purge", start, 10)])

    async def scenario() -> None:
        await insert_at(0.0, 0)  # the interval counts from the writer's start
        await insert_at(9.9, 10)
        assert w.stats.purges == 0
        await insert_at(10.0, 20)
        await insert_at(15.0, 30)
        assert w.stats.purges == 1
        await insert_at(20.0, 40)
        assert w.stats.purges == 2

    run(scenario())
    assert count(client, "purge") == 50
    # counted only when the engine took the command; a failure would have switched
    # purging off
    assert w.purge_interval == 10.0
