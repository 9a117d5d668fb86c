-- Why a score could not be computed (a judge call that timed out, was rate limited, or
-- returned nonsense); such rows carry value = nan and are left out of the hourly views.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS error String DEFAULT '' AFTER sample_rate
