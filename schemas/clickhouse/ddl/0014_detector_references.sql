-- Reference sets the detectors compare live traffic against, versioned per segment,
-- detector and signal: summary statistics, a sample of values, an embedding centroid,
-- or an opaque serialized payload. active marks the version in use; a new version is a
-- new row (never an update), so drift_events.reference_version always resolves.
CREATE TABLE IF NOT EXISTS detector_references
(
    segment      LowCardinality(String),
    detector     LowCardinality(String),
    signal       LowCardinality(String),
    version      String,
    created_at   DateTime64(3, 'UTC') DEFAULT now64(3),
    source       LowCardinality(String),
    window_start Nullable(DateTime64(3, 'UTC')),
    window_end   Nullable(DateTime64(3, 'UTC')),
    n            UInt64,
    stats        Map(String, Float64),
    sample       Array(Float64),
    centroid     Array(Float32),
    payload      String CODEC(ZSTD(3)),
    active       UInt8 DEFAULT 1,
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (segment, detector, signal, version);
