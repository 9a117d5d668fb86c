"""Batched, retrying ClickHouse inserts on one dedicated thread.

The Faust agent awaits :meth:`ClickHouseWriter.write` before it acknowledges the
Kafka events of a batch, so offsets are committed only for rows that are stored. While
ClickHouse is down the write keeps retrying with backoff and the agent stops taking
new events: backpressure instead of unbounded memory or loss.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class TableBatch:
    table: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)


@dataclass(slots=True)
class WriterStats:
    rows: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    retries: int = 0
    last_error: str = ""


class ClickHouseWriter:
    """Owns the ClickHouse client; every call runs on its single thread.

    chdb is synchronous and one process owns its directory, so queries from the web
    port (``driftline sql``) share this thread with the inserts instead of opening
    the directory twice.
    """

    def __init__(
        self,
        client: Client,
        *,
        max_backoff: float = 30.0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.client = client
        self.max_backoff = max_backoff
        self.stats = WriterStats()
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="clickhouse")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = await self.run(self.client.query, sql)
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    async def write(self, batches: Sequence[TableBatch]) -> None:
        """Insert every non-empty batch, retrying each until it is stored."""
        for batch in batches:
            if batch.rows:
                await self._insert_with_retry(batch)

    async def _insert_with_retry(self, batch: TableBatch) -> None:
        delay = 0.2
        while True:
            try:
                await self.run(
                    self.client.insert, batch.table, batch.rows, column_names=list(batch.columns)
                )
            except Exception as exc:  # any failure of the store is retried, never dropped
                self.stats.retries += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning(
                    "clickhouse insert failed, retrying",
                    extra={"table": batch.table, "rows": len(batch.rows),
                           "retry_in_s": round(delay, 2), "error": self.stats.last_error},
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
                continue
            self.stats.inserts += 1
            self.stats.rows[batch.table] = self.stats.rows.get(batch.table, 0) + len(batch.rows)
            return

    def close(self) -> None:
        self._executor.submit(self.client.close).result()
        self._executor.shutdown(wait=True)
