-- Cost per segment and model version over the last 30 days: traces, model cost (from
-- the traces' cost_usd), scoring cost (judge calls, from scores.cost_usd), cost per
-- 1,000 traces, tokens in and out. Most expensive first.
SELECT
    t.segment AS segment, t.model_version AS model_version, t.traces AS traces,
    round(t.model_cost, 4) AS model_cost_usd,
    round(ifNull(s.scoring_cost, 0), 4) AS scoring_cost_usd,
    round(1000 * (t.model_cost + ifNull(s.scoring_cost, 0)) / t.traces, 4)
        AS cost_per_1k_traces_usd,
    t.input_tokens AS input_tokens, t.output_tokens AS output_tokens
FROM
(
    SELECT segment, model_version, countMerge(traces) AS traces,
           ifNull(sumMerge(cost_usd), 0) AS model_cost,
           ifNull(sumMerge(input_tokens), 0) AS input_tokens,
           ifNull(sumMerge(output_tokens), 0) AS output_tokens
    FROM segment_hourly_traces
    WHERE hour >= now() - INTERVAL 30 DAY
    GROUP BY segment, model_version
) AS t
LEFT JOIN
(
    SELECT segment, model_version, sumMerge(cost_usd) AS scoring_cost
    FROM segment_hourly_scores
    WHERE hour >= now() - INTERVAL 30 DAY
    GROUP BY segment, model_version
) AS s ON s.segment = t.segment AND s.model_version = t.model_version
ORDER BY model_cost_usd + scoring_cost_usd DESC
SETTINGS join_use_nulls = 1
