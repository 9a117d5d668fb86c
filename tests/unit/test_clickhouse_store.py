"""The schema and the writer against the real ClickHouse engine (chdb), in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from schemas.clickhouse import migrations
from sinks.clickhouse_client import check_url, connect, redact
from sinks.clickhouse_schema import apply_migrations
from sinks.clickhouse_writer import ClickHouseWriter, TableBatch


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chdb allows one directory per process at a time: one for the whole module.
    path: Path = tmp_path_factory.mktemp("chdb")
    c = connect(f"chdb://{path}")
    yield c
    c.close()


def test_migrations_apply_once(client: Client) -> None:
    first = apply_migrations(client)
    assert first == [m.version for m in migrations()]
    assert apply_migrations(client) == []
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert {"traces", "scores", "drift_events", "schema_migrations", "traces_dedup"} <= tables


def test_traces_merge_column_by_column_at_any_size(client: Client) -> None:
    # Horizontal merges of small parts held 3-5x the memory (DDL 0024).
    apply_migrations(client)
    ddl = client.command("SHOW CREATE TABLE traces")
    assert "vertical_merge_algorithm_min_rows_to_activate = 1" in str(ddl)


class FlakyClient:
    """Fails the first ``failures`` inserts, as a ClickHouse restart would."""

    def __init__(self, inner: Client, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("connection refused")
        return self.inner.insert(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.query(*args, **kwargs)


def score_batch(ids: list[str]) -> TableBatch:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return TableBatch("scores", ("trace_id", "ts", "segment", "name", "value", "sample_rate"),
                      [[i, ts, "s", "refusal", 0.0, 1.0] for i in ids])


def test_writer_retries_until_stored_and_replays_do_not_duplicate(client: Client) -> None:
    apply_migrations(client)
    flaky = FlakyClient(client, failures=2)
    writer = ClickHouseWriter(flaky, max_backoff=0.05)  # type: ignore[arg-type]
    ids = [f"w-{i}" for i in range(100)]
    asyncio.run(writer.write([score_batch(ids)]))
    asyncio.run(writer.write([score_batch(ids[:50])]))  # a replay after a crash
    assert writer.stats.retries == 2
    assert "connection refused" in writer.stats.last_error
    count = client.query("SELECT count() FROM scores FINAL WHERE trace_id LIKE 'w-%'")
    assert count.result_rows[0][0] == 100


def test_urls() -> None:
    assert redact("http://u:secret@h:8123/db") == "http://u:***@h:8123/db"
    assert "secret" not in redact("https://u:secret@h/db")
    with pytest.raises(ValueError, match="unsupported scheme"):
        check_url("postgres://h/db")
    with pytest.raises(ValueError, match="needs a directory"):
        check_url("chdb://")
