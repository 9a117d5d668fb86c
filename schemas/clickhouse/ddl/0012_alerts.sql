-- One row per alert message (an episode's opening, its recovery, or a digest), rewritten
-- as its delivery progresses: status 'pending' -> 'sent' | 'failed' | 'suppressed'. The
-- alerter reloads open episodes and cooldowns from here at start-up, so a restart does
-- not re-send. The webhook URL is never stored.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id     String,
    episode_id   String,
    kind         LowCardinality(String),
    segment      LowCardinality(String),
    detector     LowCardinality(String),
    signal       LowCardinality(String),
    severity     LowCardinality(String),
    status       LowCardinality(String),
    event_id     String,
    opened_at    DateTime64(3, 'UTC'),
    closed_at    Nullable(DateTime64(3, 'UTC')),
    sent_at      Nullable(DateTime64(3, 'UTC')),
    attempts     UInt16,
    last_error   String,
    summary      String,
    episodes     Array(String),
    updated_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(opened_at)
ORDER BY alert_id;
