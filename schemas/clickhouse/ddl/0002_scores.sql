-- Long format: one row per (trace, score name). sample_rate is the probability with
-- which the trace was scored, so SQL can weight scores back to the full traffic.
CREATE TABLE IF NOT EXISTS scores
(
    trace_id    String,
    ts          DateTime64(3, 'UTC'),
    segment     LowCardinality(String),
    name        LowCardinality(String),
    value       Float64,
    sample_rate Float32 DEFAULT 1,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(ts)
ORDER BY (segment, name, trace_id);
