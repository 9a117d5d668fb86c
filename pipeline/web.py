"""The worker's web port: health, counters, and SQL against the store the worker owns."""

from __future__ import annotations

from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from pipeline.metrics import Counters
from sinks.clickhouse_writer import ClickHouseWriter


def _json(web: Any, body: Any, status: int = 200) -> Response:
    # orjson with str() fallback: ClickHouse hands back datetimes, decimals, UUIDs.
    return web.bytes(orjson.dumps(body, default=str), content_type="application/json",
                     status=status)


def register_views(
    app: faust.App, writer: ClickHouseWriter, counters: Counters, *, sql_enabled: bool
) -> None:
    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            try:
                await writer.query("SELECT 1")
            except Exception as exc:
                return _json(self, {"status": "clickhouse unavailable", "error": str(exc)}, 503)
            return _json(self, {"status": "ok"})

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            writer_stats = {"rows": writer.stats.rows, "inserts": writer.stats.inserts,
                            "retries": writer.stats.retries,
                            "last_error": writer.stats.last_error}
            return _json(self, {**counters.as_dict(), "clickhouse": writer_stats})

    if not sql_enabled:
        return

    @app.page("/sql")
    class Sql(View):
        """Lets `driftline sql` query the embedded engine this process owns."""

        async def post(self, request: Request) -> Response:
            body = await request.json()
            query = body.get("query") if isinstance(body, dict) else None
            if not isinstance(query, str) or not query.strip():
                return _json(self, {"error": "POST a JSON object {\"query\": \"...\"}"}, 400)
            try:
                columns, rows = await writer.query(query)
            except Exception as exc:
                return _json(self, {"error": f"{type(exc).__name__}: {exc}"}, 400)
            return _json(self, {"columns": columns, "rows": rows})
