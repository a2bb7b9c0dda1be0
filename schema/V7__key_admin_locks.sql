-- Which settings of an API key an admin set on another account's key: the key's owner cannot
-- loosen them (src/server/api/keys.rs). A JSON array of field names from
-- enabled, quota, models, expires_at, rpm_limit, tpm_limit. Keys from before this migration
-- carry no locks: nothing recorded who set their fields.
ALTER TABLE api_keys ADD COLUMN admin_locked TEXT NOT NULL DEFAULT '[]';
