-- Ingestion health over the last hour, per minute: rows stored, arrival lag
-- (ingested_at - trace ts) median and p99 in seconds, and the newest trace seen.
SELECT
    minute, sum(rows) AS rows, max(lag_p50_s) AS lag_p50_s, max(lag_p99_s) AS lag_p99_s,
    max(newest_ts) AS newest_ts
FROM
(
    SELECT minute, segment, countMerge(rows) AS rows,
           quantilesTDigestMerge(0.5, 0.99)(lag_q) AS lag, round(lag[1], 3) AS lag_p50_s,
           round(lag[2], 3) AS lag_p99_s, maxMerge(newest_ts) AS newest_ts
    FROM ingest_minutely
    WHERE minute >= now() - INTERVAL 1 HOUR
    GROUP BY minute, segment
)
GROUP BY minute
ORDER BY minute DESC
