-- What ingestion refused, one row per dead letter (the bytes themselves stay in the
-- dead-letter topic; a 1 KB sample is kept here for SQL). Keyed by source offset, so a
-- batch replayed after a crash stays one row per message under FINAL.
CREATE TABLE IF NOT EXISTS dead_letters
(
    ts               DateTime64(3, 'UTC') DEFAULT now64(3),
    reason           LowCardinality(String),
    detail           String,
    source_topic     LowCardinality(String),
    source_partition UInt32,
    source_offset    UInt64,
    size_bytes       UInt32,
    sample           String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (source_topic, source_partition, source_offset);

-- Where a trace came from (plain, otel_genai, openinference, otlp_json, otlp_proto) and
-- which of its fields were cut to DRIFTLINE_MAX_TEXT_CHARS.
ALTER TABLE traces ADD COLUMN IF NOT EXISTS source_format LowCardinality(String) DEFAULT 'plain';
ALTER TABLE traces ADD COLUMN IF NOT EXISTS truncated_fields Array(LowCardinality(String));
