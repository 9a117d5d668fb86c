-- Heuristic scores run on every trace, so they live on the trace's own row (a map of
-- name -> value, and the non-empty labels) instead of seven long rows per trace in
-- `scores`: the same information, one row to insert instead of eight, which measured as
-- the largest single cost of the ingest path (tests/benchmarks/e2e). `scores` keeps the
-- sampled scorers (judge, embeddings) in long format with their sampling rate;
-- `scores_all` is the long view of both, for SQL that wants every score alike.
ALTER TABLE traces ADD COLUMN IF NOT EXISTS heuristics Map(LowCardinality(String), Float64);
ALTER TABLE traces ADD COLUMN IF NOT EXISTS heuristic_labels Map(LowCardinality(String), String);

-- The hourly aggregates keep one shape for every scorer: heuristics feed
-- segment_hourly_scores from traces, with weight 1 (every trace is scored).
CREATE MATERIALIZED VIEW IF NOT EXISTS segment_hourly_heuristics_mv TO segment_hourly_scores AS
SELECT
    toStartOfHour(ts)                     AS hour,
    segment,
    model_version,
    'heuristics'                          AS scorer,
    name,
    countState()                          AS n,
    avgState(value)                       AS value_avg,
    quantilesTDigestState(0.1, 0.5, 0.9)(value) AS value_q,
    minState(value)                       AS value_min,
    maxState(value)                       AS value_max,
    sumState(toFloat64(1))                AS weight_sum,
    sumState(value)                       AS weighted_sum,
    sumState(toFloat64(0))                AS cost_usd
FROM traces
ARRAY JOIN mapKeys(heuristics) AS name, mapValues(heuristics) AS value
WHERE isFinite(value)
GROUP BY hour, segment, model_version, scorer, name;

-- Every score in long format, replay-safe (FINAL inside): heuristics from traces and the
-- sampled scorers from scores. Filter on segment and ts first; both sides use them.
CREATE VIEW IF NOT EXISTS scores_all AS
SELECT trace_id, ts, segment, model_version, scorer, name, value, label, sample_rate,
       rubric_version, cost_usd, error
FROM scores FINAL
UNION ALL
SELECT trace_id, ts, segment, model_version, toLowCardinality('heuristics') AS scorer, name,
       value, toLowCardinality(heuristic_labels[name]) AS label, toFloat32(1) AS sample_rate,
       toLowCardinality('') AS rubric_version, toFloat64(0) AS cost_usd, '' AS error
FROM traces FINAL
ARRAY JOIN mapKeys(heuristics) AS name, mapValues(heuristics) AS value
