-- Readable views over the aggregate tables: the states merged, one row per group.
-- segment_hourly_scores_merged is long (one row per score name); segment_hourly is the
-- daily dashboard, wide: traffic, latency, tokens, cost, judge (every rubric of
-- scorer 'judge' together), guardrail flag rates.
CREATE VIEW IF NOT EXISTS segment_hourly_scores_merged AS
SELECT
    hour, segment, model_version, scorer, name,
    countMerge(n)                                  AS scores,
    avgMerge(value_avg)                            AS mean,
    quantilesTDigestMerge(0.1, 0.5, 0.9)(value_q)         AS quantiles_10_50_90,
    minMerge(value_min)                            AS min,
    maxMerge(value_max)                            AS max,
    sumMerge(weighted_sum) / sumMerge(weight_sum)  AS weighted_mean,
    sumMerge(weight_sum)                           AS traffic_estimate,
    sumMerge(cost_usd)                             AS scoring_cost_usd
FROM segment_hourly_scores
GROUP BY hour, segment, model_version, scorer, name;

CREATE VIEW IF NOT EXISTS segment_hourly AS
SELECT
    t.hour AS hour, t.segment AS segment, t.model_version AS model_version,
    t.traces, t.errors, t.latency_avg_ms, t.latency_p50_ms, t.latency_p90_ms,
    t.latency_p99_ms, t.input_tokens, t.output_tokens, t.cost_usd, t.feedback_avg,
    s.judged, s.judge_mean, s.judge_p10, s.judge_p50, s.judge_p90, s.judge_weighted_mean,
    s.refusal_rate, s.pii_rate, s.empty_rate, s.truncated_rate, s.format_invalid_rate
FROM
(
    SELECT
        hour, segment, model_version,
        countMerge(traces)                              AS traces,
        sumMerge(errors)                                AS errors,
        avgMerge(latency_avg)                           AS latency_avg_ms,
        quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_q)       AS latency_q,
        latency_q[1]                                    AS latency_p50_ms,
        latency_q[2]                                    AS latency_p90_ms,
        latency_q[3]                                    AS latency_p99_ms,
        sumMerge(input_tokens)                          AS input_tokens,
        sumMerge(output_tokens)                         AS output_tokens,
        sumMerge(cost_usd)                              AS cost_usd,
        avgMerge(feedback_avg)                          AS feedback_avg
    FROM segment_hourly_traces
    GROUP BY hour, segment, model_version
) AS t
LEFT JOIN
(
    SELECT
        hour, segment, model_version,
        countMergeIf(n, scorer = 'judge')                              AS judged,
        avgMergeIf(value_avg, scorer = 'judge')                        AS judge_mean,
        quantilesTDigestMergeIf(0.1, 0.5, 0.9)(value_q, scorer = 'judge')     AS judge_q,
        judge_q[1]                                                   AS judge_p10,
        judge_q[2]                                                   AS judge_p50,
        judge_q[3]                                                   AS judge_p90,
        sumMergeIf(weighted_sum, scorer = 'judge')
            / sumMergeIf(weight_sum, scorer = 'judge')                 AS judge_weighted_mean,
        avgMergeIf(value_avg, name = 'refusal')                      AS refusal_rate,
        avgMergeIf(value_avg, name = 'pii')                          AS pii_rate,
        avgMergeIf(value_avg, name = 'empty')                        AS empty_rate,
        avgMergeIf(value_avg, name = 'truncated')                    AS truncated_rate,
        1 - avgMergeIf(value_avg, name = 'format_valid')             AS format_invalid_rate
    FROM segment_hourly_scores
    GROUP BY hour, segment, model_version
) AS s ON t.hour = s.hour AND t.segment = s.segment AND t.model_version = s.model_version
SETTINGS join_use_nulls = 1
