-- Per segment, model version, scorer, score name and hour: count, mean, quantiles
-- (t-digest), min/max, and the sums that weight sampled scores back to all traffic (each
-- score counts 1 / sample_rate traces). Judge scores are scorer = 'judge' (name = rubric);
-- guardrail flags are 0/1, so their mean is the flag rate. Failed scores (nan) are left
-- out. Same replay caveat as segment_hourly_traces.
CREATE TABLE IF NOT EXISTS segment_hourly_scores
(
    hour           DateTime('UTC'),
    segment        LowCardinality(String),
    model_version  LowCardinality(String),
    scorer         LowCardinality(String),
    name           LowCardinality(String),
    n              AggregateFunction(count),
    value_avg      AggregateFunction(avg, Float64),
    value_q        AggregateFunction(quantilesTDigest(0.1, 0.5, 0.9), Float64),
    value_min      AggregateFunction(min, Float64),
    value_max      AggregateFunction(max, Float64),
    weight_sum     AggregateFunction(sum, Float64),
    weighted_sum   AggregateFunction(sum, Float64),
    cost_usd       AggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (segment, model_version, scorer, name, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS segment_hourly_scores_mv TO segment_hourly_scores AS
SELECT
    toStartOfHour(ts)                              AS hour,
    segment,
    model_version,
    scorer,
    name,
    countState()                                   AS n,
    avgState(value)                                AS value_avg,
    quantilesTDigestState(0.1, 0.5, 0.9)(value)           AS value_q,
    minState(value)                                AS value_min,
    maxState(value)                                AS value_max,
    sumState(1 / toFloat64(greatest(sample_rate, 1e-6)))     AS weight_sum,
    sumState(value / toFloat64(greatest(sample_rate, 1e-6))) AS weighted_sum,
    sumState(cost_usd)                             AS cost_usd
FROM scores
WHERE isFinite(value)
GROUP BY hour, segment, model_version, scorer, name;

INSERT INTO segment_hourly_scores
SETTINGS insert_deduplication_token = 'driftline-backfill-0017'
SELECT
    toStartOfHour(ts), segment, model_version, scorer, name, countState(), avgState(value),
    quantilesTDigestState(0.1, 0.5, 0.9)(value), minState(value), maxState(value),
    sumState(1 / toFloat64(greatest(sample_rate, 1e-6))),
    sumState(value / toFloat64(greatest(sample_rate, 1e-6))), sumState(cost_usd)
FROM scores
WHERE isFinite(value)
  AND ingested_at < (SELECT min(metadata_modification_time) FROM system.tables
                     WHERE database = currentDatabase() AND name = 'segment_hourly_scores_mv')
GROUP BY 1, 2, 3, 4, 5
