-- Merge traces column by column (ClickHouse's vertical merge algorithm) whatever the
-- merge's size. By default only merges of 131,072 rows or more go vertical; the smaller,
-- frequent merges of freshly inserted parts went horizontal, reading every column of
-- every part at once: the embedded engine held 250-290 MiB during them against 50-90
-- vertically, and spent more CPU a row (2M rows in 20,000-row inserts: 21.6-24.6 µs a
-- row of process CPU against 18.8-20.1; worker RSS 840-1,010 MiB against 770-850).
ALTER TABLE traces MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 1;
