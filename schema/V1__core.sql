-- Users, API keys, upstream channels, sessions and options.
-- Money columns are integer quota units (500,000 units = 1 USD); CHECKs are the
-- last line of defence behind the in-memory ledger, which never lets them fail.

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    username            TEXT    NOT NULL UNIQUE,
    password_hash       TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN ('root', 'admin', 'user')),
    user_group          TEXT    NOT NULL DEFAULT 'default',
    quota               INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),
    used_quota          INTEGER NOT NULL DEFAULT 0 CHECK (used_quota >= 0),
    request_count       INTEGER NOT NULL DEFAULT 0,
    enabled             INTEGER NOT NULL DEFAULT 1,
    access_token_digest BLOB UNIQUE,
    created_at          INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    digest       BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    unlimited    INTEGER NOT NULL DEFAULT 0,
    remain_quota INTEGER NOT NULL DEFAULT 0 CHECK (remain_quota >= 0),
    used_quota   INTEGER NOT NULL DEFAULT 0 CHECK (used_quota >= 0),
    expires_at   INTEGER,
    models       TEXT,
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE channels (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL DEFAULT 'openai',
    name          TEXT    NOT NULL,
    base_url      TEXT    NOT NULL,
    api_key       TEXT    NOT NULL,
    models        TEXT    NOT NULL DEFAULT '[]',
    model_mapping TEXT    NOT NULL DEFAULT '{}',
    groups        TEXT    NOT NULL DEFAULT '["default"]',
    priority      INTEGER NOT NULL DEFAULT 0,
    weight        INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0),
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    digest     BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE options (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
