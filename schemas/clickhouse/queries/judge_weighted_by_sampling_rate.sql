-- Judge scores weighted back by sampling rate, per segment, rubric and day (14 days). Only
-- sampled traces are judged, and risky ones are sampled more often, so the plain mean
-- over-represents them. Each judged trace stands for 1 / sample_rate traces; the
-- weighted (Horvitz-Thompson) mean is the estimate for all traffic. traffic_estimate
-- should be close to traces when the sampler's rates are right.
SELECT
    s.day AS day, s.segment AS segment, s.rubric AS rubric,
    s.judged AS judged, t.traces AS traces,
    round(s.judged / t.traces, 4) AS judged_share,
    round(s.plain_mean, 4) AS judge_mean_sampled,
    round(s.weighted_mean, 4) AS judge_mean_weighted,
    round(s.weighted_mean - s.plain_mean, 4) AS sampling_bias,
    round(s.traffic_estimate) AS traffic_estimate
FROM
(
    SELECT toDate(hour) AS day, segment, name AS rubric,
           countMerge(n) AS judged,
           avgMerge(value_avg) AS plain_mean,
           sumMerge(weighted_sum) / sumMerge(weight_sum) AS weighted_mean,
           sumMerge(weight_sum) AS traffic_estimate
    FROM segment_hourly_scores
    WHERE scorer = 'judge' AND hour >= toStartOfDay(now()) - INTERVAL 14 DAY
    GROUP BY day, segment, rubric
) AS s
LEFT JOIN
(
    SELECT toDate(hour) AS day, segment, countMerge(traces) AS traces
    FROM segment_hourly_traces
    WHERE hour >= toStartOfDay(now()) - INTERVAL 14 DAY
    GROUP BY day, segment
) AS t ON t.day = s.day AND t.segment = s.segment
ORDER BY day DESC, segment, rubric
