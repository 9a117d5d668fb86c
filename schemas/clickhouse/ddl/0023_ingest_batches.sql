-- One row per ingest batch: what came in and where it went. consumed messages become
-- stored traces, dead letters, or skipped spans (non-LLM spans of OTel messages), plus
-- traces rerouted to their segment's partition (stored when they get there) and
-- duplicates of a trace_id the worker stored recently (stored once). Cheap: two rows a
-- second per worker. A batch replayed after a crash counts again here; exact trace
-- counts come from traces FINAL.
CREATE TABLE IF NOT EXISTS ingest_batches
(
    ts            DateTime64(3, 'UTC') DEFAULT now64(3),
    worker        LowCardinality(String),
    consumed      UInt32,
    stored        UInt32,
    dead_lettered UInt32,
    duplicates    UInt32,
    skipped_spans UInt32,
    truncated     UInt32,
    rerouted      UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY ts
TTL toDateTime(ts) + INTERVAL 90 DAY;

-- Per hour: the ingestion counters, and dead letters by reason next to them.
CREATE VIEW IF NOT EXISTS ingest_hourly AS
SELECT
    b.hour AS hour, b.consumed AS consumed, b.stored AS stored,
    b.dead_lettered AS dead_lettered, b.duplicates AS duplicates,
    b.skipped_spans AS skipped_spans, b.truncated AS truncated, b.rerouted AS rerouted,
    d.by_reason AS dead_by_reason
FROM
(
    SELECT toStartOfHour(ts) AS hour, sum(consumed) AS consumed, sum(stored) AS stored,
           sum(dead_lettered) AS dead_lettered, sum(duplicates) AS duplicates,
           sum(skipped_spans) AS skipped_spans, sum(truncated) AS truncated,
           sum(rerouted) AS rerouted
    FROM ingest_batches GROUP BY hour
) AS b
LEFT JOIN
(
    SELECT hour, CAST(sumMap(map(reason, toUInt64(1))) AS Map(String, UInt64)) AS by_reason
    FROM (SELECT toStartOfHour(ts) AS hour, reason FROM dead_letters FINAL)
    GROUP BY hour
) AS d ON d.hour = b.hour
