-- Every valid trace, one row each. ReplacingMergeTree on the sorting key collapses the
-- rows a replay after a crash writes again; query with FINAL (or the traces_dedup view)
-- for exact counts before background merges have run.
CREATE TABLE IF NOT EXISTS traces
(
    trace_id        String,
    ts              DateTime64(3, 'UTC'),
    segment         LowCardinality(String),
    app             LowCardinality(String),
    route           LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    prompt_version  LowCardinality(String),
    tenant          LowCardinality(String),
    user_id         String,
    session_id      String,
    input           String CODEC(ZSTD(3)),
    output          String CODEC(ZSTD(3)),
    latency_ms      Nullable(Float64),
    input_tokens    Nullable(UInt32),
    output_tokens   Nullable(UInt32),
    cost_usd        Nullable(Float64),
    feedback        Nullable(Float32),
    error           String,
    metadata        Map(String, String),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(ts)
ORDER BY (segment, trace_id);
