-- Channel health: the last test's result, and the automatic disable kept apart from the admin's
-- switch. `enabled` stays the admin's (manual) on/off; `auto_disabled_at` is set only by the
-- health checks and cleared only by a passing test or an admin re-enabling the channel, so a
-- channel an admin turned off is never turned back on by a test (the reference mixed the two).

ALTER TABLE channels ADD COLUMN test_model TEXT;
ALTER TABLE channels ADD COLUMN auto_disabled_at INTEGER;
ALTER TABLE channels ADD COLUMN auto_disabled_reason TEXT;
ALTER TABLE channels ADD COLUMN test_status TEXT CHECK (test_status IN ('ok', 'error'));
ALTER TABLE channels ADD COLUMN test_http_status INTEGER;
ALTER TABLE channels ADD COLUMN test_latency_ms INTEGER;
ALTER TABLE channels ADD COLUMN tested_at INTEGER;
ALTER TABLE channels ADD COLUMN test_error TEXT;
