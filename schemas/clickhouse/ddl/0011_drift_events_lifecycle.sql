-- What the alert lifecycle needs on each alarm. episode_id groups the alarms of one
-- drift episode (same segment, detector, signal, until it recovers); severity is
-- 'info' | 'warning' | 'critical'; reference_version names the detector_references row
-- the detector compared against; acknowledged is set by re-inserting the row (the
-- ReplacingMergeTree keeps the newest ingested_at).
ALTER TABLE drift_events ADD COLUMN IF NOT EXISTS episode_id String DEFAULT '' AFTER event_id;
ALTER TABLE drift_events ADD COLUMN IF NOT EXISTS severity LowCardinality(String) DEFAULT '' AFTER signal;
ALTER TABLE drift_events ADD COLUMN IF NOT EXISTS reference_version String DEFAULT '' AFTER window;
ALTER TABLE drift_events ADD COLUMN IF NOT EXISTS acknowledged UInt8 DEFAULT 0 AFTER reference_version;
ALTER TABLE drift_events ADD COLUMN IF NOT EXISTS acknowledged_by String DEFAULT '' AFTER acknowledged;
