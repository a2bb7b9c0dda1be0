-- One row per relayed request (consume / error) and per admin action (manage).
-- type: 1 top-up, 2 consume, 3 manage, 4 system, 5 error, 6 refund (the reference's numbering).
CREATE TABLE logs (
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
    content           TEXT
);
CREATE INDEX logs_created ON logs (created_at);
CREATE INDEX logs_user_created ON logs (user_id, created_at);
CREATE INDEX logs_request ON logs (request_id);
CREATE INDEX logs_key ON logs (key_id);
