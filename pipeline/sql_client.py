"""Runs SQL for the CLI: through the worker when it owns the embedded engine, else directly."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pipeline.config import Settings
from sinks.clickhouse_client import connect
from sinks.clickhouse_schema import apply_migrations

Rows = tuple[list[str], list[list[Any]]]


class SqlError(RuntimeError):
    pass


def worker_query(settings: Settings, query: str, timeout: float = 60.0) -> Rows:
    request = urllib.request.Request(
        f"{settings.web_url}/sql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        raise SqlError(json.load(exc).get("error", str(exc))) from None
    return body["columns"], body["rows"]


def worker_stats(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """The worker's counters (``GET /stats``)."""
    with urllib.request.urlopen(f"{settings.web_url}/stats", timeout=timeout) as response:
        return dict(json.load(response))


def worker_running(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.web_url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_query(settings: Settings, query: str, *, migrate: bool = False) -> Rows:
    """Query ClickHouse. An embedded directory that a running worker owns is reached
    through the worker's web port, since only one process may open it (and the worker
    has applied the schema). ``migrate`` brings a store no worker has opened yet up to
    the current schema first, for commands that write."""
    if settings.embedded_clickhouse and worker_running(settings):
        return worker_query(settings, query)
    client = connect(settings.clickhouse_url)
    try:
        if migrate:
            apply_migrations(client)
        result = client.query(query)
    except Exception as exc:
        raise SqlError(f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    return list(result.column_names), [list(r) for r in result.result_rows]
