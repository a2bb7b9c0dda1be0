-- Cache-aware billing (issue 14): a call's input tokens read from and written to the
-- provider's prompt cache, and its output tokens spent reasoning. `prompt_tokens` keeps its
-- meaning (every input token, cached or not: src/billing/mod.rs `Usage`), so these are parts
-- of it (and reasoning of `completion_tokens`), shown and priced apart, never added to it.
ALTER TABLE logs ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_journal ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_journal ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_journal ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_journal ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
