-- Relayed calls' rows, durable before the response ends, not yet folded into `logs`.
-- A call used to commit its log row (and nine index pages), two rollup rows and two balance
-- rows alone: 14 pages, ~60 KiB written per call at one connection. It now commits
-- one row here, a table without secondary indexes whose rows append to its last page. The
-- writer folds the rows (before any other write or read, per 1,024 rows, at least every second)
-- (src/store/journal.rs): into `logs`, the rollups and the users' and keys' balances, then
-- deletes them. Rows left by a crash are the durable truth: start-up folds them before the
-- balances are loaded.
-- The columns are those of `logs`, plus whom the row charges: charge_user and charge_key are
-- NULL for a row that moves no balance (an error row); charge_key is set for a playground call
-- too, whose log row has no key_id.
CREATE TABLE log_journal (
    id                INTEGER PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    type              INTEGER NOT NULL,
    request_id        TEXT    NOT NULL,
    user_id           INTEGER,
    username          TEXT,
    key_id            INTEGER,
    key_name          TEXT,
    channel_id        INTEGER,
    user_group        TEXT,
    model             TEXT,
    upstream_model    TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    quota             INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER,
    ttfb_ms           INTEGER,
    is_stream         INTEGER NOT NULL DEFAULT 0,
    status            INTEGER,
    usage_source      TEXT,
    content           TEXT,
    key_charge        INTEGER NOT NULL DEFAULT 0,
    charge_user       INTEGER,
    charge_key        INTEGER
);

