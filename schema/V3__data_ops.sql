-- Data operations: indexes for log search, hourly rollups, totals kept for rows retention
-- deletes, and an opening entry per account so every balance is explained by log rows.

-- What a charge took from the key's own limit (0 for an unlimited key). The key's balance is
-- reconciled against this, the user's against `quota`.
ALTER TABLE logs ADD COLUMN key_charge INTEGER NOT NULL DEFAULT 0;
UPDATE logs SET key_charge = quota
 WHERE type = 2 AND key_id IN (SELECT id FROM api_keys WHERE unlimited = 0);

-- One index per search filter, each ending in created_at so "filter, newest first, LIMIT n"
-- walks the index and stops.
DROP INDEX logs_key;
CREATE INDEX logs_key_created ON logs (key_id, created_at);
CREATE INDEX logs_model_created ON logs (model, created_at);
CREATE INDEX logs_channel_created ON logs (channel_id, created_at);
CREATE INDEX logs_type_created ON logs (type, created_at);
CREATE INDEX logs_group_created ON logs (user_group, created_at);
CREATE INDEX logs_status_created ON logs (status, created_at);

-- Consume and error rows summed per hour, written in the same transaction as the row, so the
-- rollups always equal the rows they summarise. Kept when retention deletes the rows.
-- channel_id 0 = no channel answered; '' = no model/group recorded.
CREATE TABLE usage_hourly (
    hour              INTEGER NOT NULL,
    type              INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    channel_id        INTEGER NOT NULL,
    user_group        TEXT    NOT NULL,
    status            INTEGER NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    quota             INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, type, user_id, key_id, model, channel_id, user_group, status)
) WITHOUT ROWID;
CREATE INDEX usage_hourly_user ON usage_hourly (user_id, hour);
CREATE INDEX usage_hourly_key ON usage_hourly (key_id, hour);
CREATE INDEX usage_hourly_model ON usage_hourly (model, hour);
CREATE INDEX usage_hourly_channel ON usage_hourly (channel_id, hour);

INSERT INTO usage_hourly (hour, type, user_id, key_id, model, channel_id, user_group, status,
                          requests, prompt_tokens, completion_tokens, quota, latency_ms)
SELECT created_at - created_at % 3600, type, COALESCE(user_id, 0), COALESCE(key_id, 0),
       COALESCE(model, ''), COALESCE(channel_id, 0), COALESCE(user_group, ''), COALESCE(status, 0),
       COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota), SUM(COALESCE(latency_ms, 0))
  FROM logs WHERE type IN (2, 5)
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- The same per UTC day, so long ranges and daily charts read a few thousand rows, not hundreds of
-- thousands.
CREATE TABLE usage_daily (
    day               INTEGER NOT NULL,
    type              INTEGER NOT NULL,
    user_id           INTEGER NOT NULL,
    key_id            INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    channel_id        INTEGER NOT NULL,
    user_group        TEXT    NOT NULL,
    status            INTEGER NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    quota             INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, type, user_id, key_id, model, channel_id, user_group, status)
) WITHOUT ROWID;

INSERT INTO usage_daily (day, type, user_id, key_id, model, channel_id, user_group, status,
                         requests, prompt_tokens, completion_tokens, quota, latency_ms)
SELECT hour - hour % 86400, type, user_id, key_id, model, channel_id, user_group, status,
       SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota), SUM(latency_ms)
  FROM usage_hourly
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- Per (user, key): what the consume rows deleted by retention had charged, so reconciliation
-- still adds up after they are gone.
CREATE TABLE log_purged (
    user_id    INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    rows       INTEGER NOT NULL DEFAULT 0,
    quota      INTEGER NOT NULL DEFAULT 0,
    key_charge INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, key_id)
) WITHOUT ROWID;

-- Opening entries: a top-up row (type 1) per account carrying its balance before this
-- migration, so from here on balance = top-ups − charges holds row for row. Later balance
-- changes each write their own top-up row. A key's row has key_id set; a user's has it NULL.
INSERT INTO logs (created_at, type, request_id, user_id, username, quota, content)
SELECT CAST(strftime('%s', 'now') AS INTEGER), 1, 'migration-v3', id, username, quota + used_quota,
       'opening balance (schema V3)'
  FROM users WHERE quota + used_quota <> 0;
INSERT INTO logs (created_at, type, request_id, user_id, username, key_id, key_name, quota, content)
SELECT CAST(strftime('%s', 'now') AS INTEGER), 1, 'migration-v3', k.user_id, u.username, k.id, k.name,
       k.remain_quota + (SELECT COALESCE(SUM(key_charge), 0) FROM logs l WHERE l.type = 2 AND l.key_id = k.id),
       'opening key limit (schema V3)'
  FROM api_keys k JOIN users u ON u.id = k.user_id
 WHERE k.remain_quota + (SELECT COALESCE(SUM(key_charge), 0) FROM logs l WHERE l.type = 2 AND l.key_id = k.id) <> 0;

-- Options are named <module>.<field> from this version (see src/settings).
UPDATE options SET key = 'pricing.' || key
 WHERE key IN ('model_ratio', 'completion_ratio', 'group_ratio', 'model_price', 'allow_unpriced_models');
