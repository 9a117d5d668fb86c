"""Applies the numbered DDL files of ``schemas.clickhouse`` once each, at start-up."""

from __future__ import annotations

import logging

from clickhouse_connect.driver.client import Client

from schemas.clickhouse import migrations
from sinks.clickhouse_retention import apply_retention

log = logging.getLogger(__name__)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


def apply_migrations(client: Client, *, retention_days: int | None = None) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (empty when current).

    ``retention_days`` (when not None) then sets the TTL of raw rows, see
    :mod:`sinks.clickhouse_retention`; 0 keeps them forever.

    Every statement is idempotent (``IF NOT EXISTS``), so two workers starting together
    at worst both apply a version, which changes nothing.
    """
    client.command(_VERSION_TABLE)
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for migration in migrations():
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert("schema_migrations", [[migration.version, migration.name]],
                      column_names=["version", "name"])
        log.info("schema migration applied", extra={"version": migration.version,
                                                    "migration": migration.name})
        applied.append(migration.version)
    apply_retention(client, retention_days)
    return applied
