-- Exact, replay-safe view of traces for ad-hoc SQL.
CREATE VIEW IF NOT EXISTS traces_dedup AS SELECT * FROM traces FINAL;
