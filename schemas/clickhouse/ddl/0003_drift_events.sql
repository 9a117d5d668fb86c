-- One row per detector alarm; event_id is derived from (segment, detector, signal,
-- triggering trace), so an alarm replayed after a crash stays one row under FINAL.
CREATE TABLE IF NOT EXISTS drift_events
(
    event_id    String,
    detected_at DateTime64(3, 'UTC'),
    segment     LowCardinality(String),
    detector    LowCardinality(String),
    signal      LowCardinality(String),
    trace_id    String,
    statistic   Float64,
    threshold   Float64,
    mean_before Float64,
    mean_after  Float64,
    window      UInt32,
    details     Map(String, String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (segment, event_id);
