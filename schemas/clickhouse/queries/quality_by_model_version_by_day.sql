-- Quality by model version by day (last 30 days), per segment: traffic, errors, judge
-- score (scorer 'judge', every rubric: mean, p10, p50, and weighted back by sampling
-- rate), guardrail flag rates,
-- latency p90 and cost. Reads the hourly aggregate tables, so it stays fast as traces grow.
SELECT
    t.day AS day, t.segment AS segment, t.model_version AS model_version,
    t.traces AS traces, t.errors AS errors,
    s.judged AS judged,
    round(s.judge_mean, 3) AS judge_mean,
    round(s.judge_q[1], 3) AS judge_p10,
    round(s.judge_q[2], 3) AS judge_p50,
    round(s.judge_weighted, 3) AS judge_weighted_mean,
    round(s.refusal_rate, 4) AS refusal_rate,
    round(s.pii_rate, 4) AS pii_rate,
    round(s.truncated_rate, 4) AS truncated_rate,
    round(t.latency_p90_ms, 1) AS latency_p90_ms,
    round(t.cost_usd, 4) AS cost_usd
FROM
(
    SELECT toDate(hour) AS day, segment, model_version,
           countMerge(traces) AS traces, sumMerge(errors) AS errors,
           quantilesTDigestMerge(0.5, 0.9, 0.99)(latency_q)[2] AS latency_p90_ms,
           sumMerge(cost_usd) AS cost_usd
    FROM segment_hourly_traces
    WHERE hour >= toStartOfDay(now()) - INTERVAL 30 DAY
    GROUP BY day, segment, model_version
) AS t
LEFT JOIN
(
    SELECT toDate(hour) AS day, segment, model_version,
           countMergeIf(n, scorer = 'judge') AS judged,
           avgMergeIf(value_avg, scorer = 'judge') AS judge_mean,
           quantilesTDigestMergeIf(0.1, 0.5, 0.9)(value_q, scorer = 'judge') AS judge_q,
           sumMergeIf(weighted_sum, scorer = 'judge') / sumMergeIf(weight_sum, scorer = 'judge')
               AS judge_weighted,
           avgMergeIf(value_avg, name = 'refusal') AS refusal_rate,
           avgMergeIf(value_avg, name = 'pii') AS pii_rate,
           avgMergeIf(value_avg, name = 'truncated') AS truncated_rate
    FROM segment_hourly_scores
    WHERE hour >= toStartOfDay(now()) - INTERVAL 30 DAY
    GROUP BY day, segment, model_version
) AS s ON t.day = s.day AND t.segment = s.segment AND t.model_version = s.model_version
ORDER BY day DESC, segment, model_version
SETTINGS join_use_nulls = 1
