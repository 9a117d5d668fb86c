-- The golden set (versioned cases), its nightly runs, and each run's per-case scores,
-- named like live scores (judge, refusal, ...) so golden and live compare on one scale.
CREATE TABLE IF NOT EXISTS golden_cases
(
    case_id         String,
    dataset_version String,
    segment         LowCardinality(String),
    app             LowCardinality(String),
    route           LowCardinality(String),
    input           String CODEC(ZSTD(3)),
    expected        String CODEC(ZSTD(3)),
    tags            Array(LowCardinality(String)),
    source          LowCardinality(String),
    source_trace_id String,
    active          UInt8 DEFAULT 1,
    created_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (dataset_version, case_id);

CREATE TABLE IF NOT EXISTS golden_runs
(
    run_id          String,
    started_at      DateTime64(3, 'UTC'),
    finished_at     Nullable(DateTime64(3, 'UTC')),
    dataset_version String,
    segment         LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    prompt_version  LowCardinality(String),
    rubric_version  LowCardinality(String),
    cases           UInt32,
    passed          UInt32,
    gate_passed     UInt8,
    details         Map(String, String),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY run_id;

CREATE TABLE IF NOT EXISTS golden_results
(
    run_id         String,
    case_id        String,
    ts             DateTime64(3, 'UTC'),
    segment        LowCardinality(String),
    model_version  LowCardinality(String),
    name           LowCardinality(String),
    scorer         LowCardinality(String),
    value          Float64,
    label          LowCardinality(String),
    rubric_version LowCardinality(String),
    passed         UInt8,
    output         String CODEC(ZSTD(3)),
    latency_ms     Nullable(Float64),
    cost_usd       Float64 DEFAULT 0,
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (run_id, name, case_id);
