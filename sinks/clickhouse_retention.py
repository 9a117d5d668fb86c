"""How long raw rows are kept: a TTL on ``traces`` and ``scores`` set from a setting.

The DDL files are fixed SQL, applied once; retention is an operator's choice that may
change between restarts. So it is not a migration: at every start-up the worker
compares the tables' current TTL with the setting and alters only on a difference
(``ALTER TABLE ... MODIFY TTL`` / ``REMOVE TTL``). Both tables are partitioned by day
and set ``ttl_only_drop_parts``, so expiry drops whole parts instead of rewriting them.
Aggregates (``segment_hourly_*``), drift events, alerts and golden data are kept.
"""

from __future__ import annotations

import logging
import re

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

RETENTION_TABLES = ("traces", "scores")
_TTL = re.compile(r"\bTTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")


def current_ttl_days(client: Client, table: str) -> int | None:
    """The table's TTL in days, or None when it has none."""
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name = {table:String}", parameters={"table": table}).result_rows
    if not rows:
        raise LookupError(f"table {table!r} does not exist: apply the migrations first")
    match = _TTL.search(rows[0][0])
    return int(match.group(1)) if match else None


def apply_retention(client: Client, days: int | None) -> list[str]:
    """Keep raw rows ``days`` days (0: forever; None: leave as is); returns tables altered."""
    if days is None:
        return []
    if days < 0:
        raise ValueError("retention days must be >= 0 (0 keeps rows forever)")
    altered = []
    for table in RETENTION_TABLES:
        have = current_ttl_days(client, table)
        want = days or None
        if have == want:
            continue
        if want is None:
            client.command(f"ALTER TABLE {table} REMOVE TTL")
        else:
            client.command(f"ALTER TABLE {table} MODIFY SETTING ttl_only_drop_parts = 1")
            client.command(f"ALTER TABLE {table} MODIFY TTL toDateTime(ts) + INTERVAL {want} DAY")
        log.info("retention changed", extra={"table": table, "from_days": have,
                                             "to_days": want})
        altered.append(table)
    return altered
