-- Worst traces of each segment in the last 7 days: the 10 lowest judge scores per segment
-- (scorer 'judge', a trace's worst rubric; ties: newest first) with the rubric, the
-- judge's label, the guardrail flags raised, model version, latency, cost and the start
-- of input and output. For one segment add
-- `AND segment = 'app|model'` to the first WHERE.
-- No FINAL: a replayed row is identical to the first, so `LIMIT 1 BY trace_id` removes
-- duplicates exactly and skips FINAL's merge of every part (twice as fast at 10M traces).
WITH worst AS
(
    SELECT segment, trace_id, ts, judge, rubric, label
    FROM
    (
        SELECT segment, trace_id, ts, value AS judge, name AS rubric, label
        FROM scores
        WHERE scorer = 'judge' AND isFinite(value) AND ts >= now64(3) - INTERVAL 7 DAY
        ORDER BY judge ASC, ts DESC
        LIMIT 1 BY segment, trace_id
    )
    ORDER BY judge ASC, ts DESC
    LIMIT 10 BY segment
)
SELECT
    w.segment AS segment, w.trace_id AS trace_id, w.ts AS ts, round(w.judge, 3) AS judge,
    w.rubric AS rubric, w.label AS judge_label, t.flags AS flags,
    t.model_version AS model_version,
    t.latency_ms AS latency_ms, t.cost_usd AS cost_usd,
    substring(t.input, 1, 160) AS input_start, substring(t.output, 1, 160) AS output_start
FROM worst AS w
LEFT JOIN
(
    SELECT trace_id, model_version, latency_ms, cost_usd, input, output,
           arrayConcat(
               mapKeys(mapFilter((k, v) -> k IN ('refusal', 'pii', 'empty', 'truncated')
                                           AND v > 0, heuristics)),
               if(heuristics['format_valid'] = 0 AND mapContains(heuristics, 'format_valid'),
                  ['format_invalid'], [])) AS flags
    FROM traces
    WHERE ts >= now64(3) - INTERVAL 7 DAY AND trace_id IN (SELECT trace_id FROM worst)
    LIMIT 1 BY trace_id
) AS t ON t.trace_id = w.trace_id
ORDER BY segment, judge ASC, ts DESC
