//! The store on a real SQLite file: migrations forward from an older schema.

use sluice::store::{Store, migrate};

#[test]
fn a_database_made_by_an_older_schema_migrates_forward_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        migrate::run_to(&mut conn, 1).unwrap();
        assert_eq!(migrate::current_version(&mut conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO users (username, password_hash, role, quota, created_at) VALUES ('old', 'x', 'user', 42, 0)",
            [],
        )
        .unwrap();
        let has_logs: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'logs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_logs, 0, "version 1 has no logs table");
    }
    let store = Store::open(&path).unwrap();
    let (name, quota): (String, i64) = store
        .read_blocking(|c| {
            Ok(c.query_row("SELECT username, quota FROM users", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .unwrap();
    assert_eq!((name.as_str(), quota), ("old", 42));
    store
        .writer
        .exec_blocking(|c| {
            c.execute(
                "INSERT INTO logs (created_at, type, request_id) VALUES (0, 3, 'r')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        migrate::current_version(&mut conn).unwrap(),
        migrate::latest_version()
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
