-- Segments that drifted in the last 24 hours, one row per alarm (newest first): detector,
-- signal, statistic against threshold, mean before -> after, the triggering trace, and
-- the traces around the alarm (up to 50 within 5 minutes either side, in time order, as
-- (ts, trace_id, value of the drifted signal)). Feed a trace_id to worst_traces_of_segment
-- or to: SELECT * FROM traces FINAL WHERE trace_id = '...'.
WITH alarms AS
(
    SELECT event_id, detected_at, segment, detector, signal, severity, trace_id, statistic,
           threshold, mean_before, mean_after, window
    FROM drift_events FINAL
    WHERE detected_at >= now64(3) - INTERVAL 24 HOUR
)
SELECT
    a.segment AS segment, a.detector AS detector, a.signal AS signal,
    a.detected_at AS detected_at, a.severity AS severity,
    round(a.statistic, 4) AS statistic, round(a.threshold, 4) AS threshold,
    round(a.mean_before, 4) AS mean_before, round(a.mean_after, 4) AS mean_after,
    a.window AS window, a.trace_id AS triggering_trace,
    arraySort(x -> x.1, groupArray(50)((n.ts, n.trace_id, n.value))) AS traces_around
FROM alarms AS a
INNER JOIN
(
    SELECT segment, name, ts, trace_id, value
    FROM scores_all
    WHERE ts >= now64(3) - INTERVAL 25 HOUR AND segment IN (SELECT segment FROM alarms)
) AS n ON n.segment = a.segment AND n.name = a.signal
WHERE n.ts BETWEEN a.detected_at - INTERVAL 5 MINUTE AND a.detected_at + INTERVAL 5 MINUTE
GROUP BY a.event_id, a.segment, a.detector, a.signal, a.detected_at, a.severity, a.statistic,
         a.threshold, a.mean_before, a.mean_after, a.window, a.trace_id
ORDER BY detected_at DESC
-- A replayed row has the same ts, so the same day partition: FINAL need not merge
-- across partitions, which makes it many times faster.
SETTINGS do_not_merge_across_partitions_select_final = 1
