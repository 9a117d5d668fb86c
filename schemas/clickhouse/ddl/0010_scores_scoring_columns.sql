-- Columns for the scoring work (LLM judge, rubric versions, guardrail labels). Scores
-- stay in long format: one row per (trace, scorer, name). Naming contract for the views
-- (pipeline/scorers):
--   scorer = 'judge'       the LLM judge, name = the rubric (e.g. 'helpfulness'), value in
--                          [0, 1], higher is better; nan with `error` set when the call failed
--   scorer = 'heuristics'  0/1 flags 'refusal', 'pii', 'empty', 'truncated', 'format_valid'
--                          (1 = valid), and measures 'length_ratio', 'latency_ms', 'cost_usd'
-- model_version is copied from the trace so quality by model version needs no join.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS scorer LowCardinality(String) DEFAULT '' AFTER name;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS label LowCardinality(String) DEFAULT '' AFTER value;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS rubric_version LowCardinality(String) DEFAULT '' AFTER label;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS cost_usd Float64 DEFAULT 0 AFTER rubric_version;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS model_version LowCardinality(String) DEFAULT '' AFTER segment;
