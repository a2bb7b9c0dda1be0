-- Several upstream keys per channel and kind-specific settings. (V12: V11 is the formats
-- work's cache-aware log columns, written at the same time.)
-- `api_key` may now hold one key per line. `key_disables` lists the keys the health checks
-- turned off (upstream refused them), each by a SHA-256 prefix of the key, never the key:
-- [{"digest","at","reason","status"}]. `settings` holds what only some kinds take, typed in
-- src/store/channel_settings.rs (an azure channel's api_version and route): {} for most.

ALTER TABLE channels ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE channels ADD COLUMN key_disables TEXT NOT NULL DEFAULT '[]';
