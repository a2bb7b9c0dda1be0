-- Per-key rate limits. NULL = use the ratelimit.key_rpm / ratelimit.key_tpm option;
-- 0 = unlimited. The counts themselves live in memory only (see src/ratelimit).
ALTER TABLE api_keys ADD COLUMN rpm_limit INTEGER CHECK (rpm_limit >= 0);
ALTER TABLE api_keys ADD COLUMN tpm_limit INTEGER CHECK (tpm_limit >= 0);
