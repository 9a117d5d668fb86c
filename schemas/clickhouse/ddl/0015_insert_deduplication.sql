-- Lets an insert retried with the same insert_deduplication_token (the writer gives
-- each block one token for all its attempts) be stored once even when the first
-- attempt succeeded but its answer was lost; also keeps the views' counts exact then.
-- Replicated tables deduplicate blocks by default; this is for plain MergeTree.
ALTER TABLE traces MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE scores MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE drift_events MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE alerts MODIFY SETTING non_replicated_deduplication_window = 1000
