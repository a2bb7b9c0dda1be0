-- Notifications: per-user settings, quota-warning de-duplication state, and the delivery log.

-- One row per user who has saved settings. A column per field rather than one JSON column:
-- each field gets its own type and CHECK (kind, priority range), a partial update is a plain
-- UPDATE of the fields sent, and the two secrets sit in columns of their own that masked reads
-- never need. Secrets are stored as given because they must be sent to the receiver.
CREATE TABLE notify_settings (
    user_id         INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    kind            TEXT    CHECK (kind IN ('email', 'webhook', 'bark', 'gotify')),
    threshold       INTEGER CHECK (threshold >= 0),
    email           TEXT,
    webhook_url     TEXT,
    webhook_secret  TEXT,
    bark_url        TEXT,
    gotify_url      TEXT,
    gotify_token    TEXT,
    gotify_priority INTEGER NOT NULL DEFAULT 5 CHECK (gotify_priority BETWEEN 0 AND 10),
    updated_at      INTEGER NOT NULL
);

-- Warning de-duplication per subject (a user or a key) and warning kind, loaded at start so a
-- restart neither repeats a warning nor forgets the per-window count.
CREATE TABLE notify_warnings (
    subject_type   TEXT    NOT NULL CHECK (subject_type IN ('user', 'key')),
    subject_id     INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    armed          INTEGER NOT NULL,
    window_start   INTEGER NOT NULL,
    sent_in_window INTEGER NOT NULL,
    last_sent_at   INTEGER,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id, kind)
) WITHOUT ROWID;

-- One row per delivery attempt. target_host is host[:port] only: never a path, query or token.
-- No foreign key on user_id, so the log outlives a deleted account.
CREATE TABLE notify_deliveries (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    user_id     INTEGER,
    kind        TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    target_host TEXT,
    attempt     INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'refused')),
    status      INTEGER,
    reason      TEXT,
    request_id  TEXT
);
CREATE INDEX notify_deliveries_user ON notify_deliveries (user_id, id);
CREATE INDEX notify_deliveries_kind ON notify_deliveries (kind, id);
