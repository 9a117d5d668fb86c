-- Ingestion counters, cheap: per minute of arrival, rows stored and how late they
-- arrived (ingested_at - ts), and a view of rows and bytes on disk per table.
CREATE TABLE IF NOT EXISTS ingest_minutely
(
    minute    DateTime('UTC'),
    segment   LowCardinality(String),
    rows      AggregateFunction(count),
    lag_q     AggregateFunction(quantilesTDigest(0.5, 0.99), Float64),
    newest_ts AggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, segment)
TTL minute + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_minutely_mv TO ingest_minutely AS
SELECT
    toStartOfMinute(ingested_at)                                     AS minute,
    segment,
    countState()                                                     AS rows,
    quantilesTDigestState(0.5, 0.99)(toFloat64(dateDiff('millisecond', ts, ingested_at)) / 1000)
                                                                     AS lag_q,
    maxState(ts)                                                     AS newest_ts
FROM traces
GROUP BY minute, segment;

CREATE VIEW IF NOT EXISTS table_sizes AS
SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk, count() AS parts
FROM system.parts
WHERE active AND database = currentDatabase()
GROUP BY table
