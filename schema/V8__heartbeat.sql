-- The health ping's write. A ping that changes no page commits nothing, so it cannot notice a
-- full disk or a read-only file; updating this one row makes every ping append to the WAL like
-- a charge does, and fail when a charge would. One row, rewritten in place: it never grows.

CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at INTEGER NOT NULL,
    beats INTEGER NOT NULL
);
