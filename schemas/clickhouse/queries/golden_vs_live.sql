-- Golden versus live: for each segment's latest golden run, every score name's golden
-- mean and pass rate next to the live mean of the last 24 hours (weighted back by
-- sampling rate), and the gap live - golden. A large negative judge gap means
-- production is harder than the golden set: mine it with `driftline golden promote`.
WITH latest AS
(
    SELECT run_id, segment, model_version, started_at, gate_passed
    FROM golden_runs FINAL
    ORDER BY started_at DESC
    LIMIT 1 BY segment
)
SELECT
    g.segment AS segment, g.name AS name, l.started_at AS golden_run_at,
    l.model_version AS golden_model_version, l.gate_passed AS gate_passed,
    g.cases AS golden_cases, round(g.golden_mean, 4) AS golden_mean,
    round(g.pass_rate, 4) AS golden_pass_rate,
    v.live_scores AS live_scores, round(v.live_mean, 4) AS live_mean,
    round(v.live_mean - g.golden_mean, 4) AS live_minus_golden
FROM
(
    SELECT run_id, segment, name, count() AS cases, avg(value) AS golden_mean,
           avg(passed) AS pass_rate
    FROM golden_results FINAL
    WHERE run_id IN (SELECT run_id FROM latest)
    GROUP BY run_id, segment, name
) AS g
INNER JOIN latest AS l ON l.run_id = g.run_id
LEFT JOIN
(
    SELECT segment, name, countMerge(n) AS live_scores,
           sumMerge(weighted_sum) / sumMerge(weight_sum) AS live_mean
    FROM segment_hourly_scores
    WHERE hour >= now() - INTERVAL 24 HOUR
    GROUP BY segment, name
) AS v ON v.segment = g.segment AND v.name = g.name
ORDER BY segment, name
SETTINGS join_use_nulls = 1
