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

/// A V2 database with balances, keys, charges and old option names: after the data-operations
/// migration its balances reconcile, its rows are in the rollups, and its options keep their
/// values under the new names.
#[test]
fn a_v2_database_reconciles_and_is_rolled_up_after_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        migrate::run_to(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, role, quota, used_quota, request_count, created_at)
                 VALUES (1, 'ann', 'x', 'user', 700, 300, 2, 0);
             INSERT INTO api_keys (id, user_id, name, digest, prefix, unlimited, remain_quota, used_quota, created_at)
                 VALUES (1, 1, 'lim', x'01', 'sk-a', 0, 800, 200, 0),
                        (2, 1, 'unl', x'02', 'sk-b', 1, 0, 100, 0);
             INSERT INTO logs (created_at, type, request_id, user_id, key_id, model, channel_id, user_group,
                               prompt_tokens, completion_tokens, quota, status)
                 VALUES (7200, 2, 'a', 1, 1, 'm', 1, 'default', 150, 50, 200, 200),
                        (7300, 2, 'b', 1, 2, 'm', 1, 'default', 80, 20, 100, 200),
                        (7400, 5, 'c', 1, 2, 'm', 1, 'default', 0, 0, 0, 502);
             INSERT INTO options (key, value, updated_at) VALUES ('allow_unpriced_models', 'true', 0);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let report = store.read_blocking(sluice::store::reconcile::run).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.users_checked, report.keys_checked), (1, 2));
    let (req, quota): (i64, i64) = store
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT SUM(requests), SUM(quota) FROM usage_hourly WHERE hour = 7200",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!((req, quota), (3, 300));
    let daily: i64 = store
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT SUM(requests) FROM usage_daily WHERE day = 0",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(daily, 3);
    let options = store.read_blocking(sluice::settings::load).unwrap();
    assert!(options.pricing.allow_unpriced_models);
}

/// A V10 database's channels (one key each, no settings) read as before after V12: one key,
/// none turned off, no settings; and a channel with several keys and azure settings
/// round-trips.
#[test]
fn a_v10_channel_migrates_to_keys_and_settings() {
    use sluice::store::channels;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        migrate::run_to(&mut conn, 10).unwrap();
        conn.execute(
            "INSERT INTO channels (kind, name, base_url, api_key, models, auto_disabled_at, auto_disabled_reason, created_at)
             VALUES ('openai', 'old', 'http://x/v1', 'sk-old-key-000000042', '[\"m\"]', 5, 'upstream answered 401', 0)",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let row = store.read_blocking(|c| channels::get(c, 1)).unwrap();
    assert_eq!(row.name, "old");
    assert_eq!(row.api_key.expose(), "sk-old-key-000000042");
    assert_eq!(row.keys.len(), 1);
    assert!(
        !row.keys.all_down(),
        "a V10 disable is the channel's, not a key's"
    );
    assert_eq!(row.health.auto_disabled_at, Some(5));
    assert_eq!(row.settings, channels::ChannelSettings::default());
    let view = serde_json::to_value(row.view()).unwrap();
    assert_eq!(view["key_count"], 1);
    assert_eq!(view["keys"][0]["fingerprint"], "…0042");
    assert_eq!(view["settings"], serde_json::json!({}));

    let mut f = row.fields.clone();
    f.kind = "azure".into();
    f.api_key = sluice::secret::Secret::new("k-one-000000000001\nk-two-000000000002");
    f.settings = channels::ChannelSettings::parse(r#"{"api_version":"2025-04-01-preview"}"#);
    store
        .writer
        .exec_blocking(move |c| channels::replace(c, 1, &f))
        .unwrap();
    let row = store.read_blocking(|c| channels::get(c, 1)).unwrap();
    assert_eq!(row.keys.len(), 2);
    assert_eq!(row.settings.api_version(), "2025-04-01-preview");
}

/// A database sluice creates has 1 KiB pages: a call's commit writes its page whole, twice
/// (WAL and checkpoint), so the page size is most of the bytes a call costs (issue 15).
#[test]
fn a_new_database_has_1_kib_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = Store::open(&path).unwrap();
    let page: i64 = store
        .read_blocking(|c| Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(page, sluice::store::pragmas::PAGE_SIZE);
    assert_eq!(page, 1024);
}

/// The checkpoint thread keeps a descriptor of the database file to sync it before the
/// writer's turn; it is closed with the store, once no connection needs SQLite's locks on the
/// file (closing any descriptor of a file drops them all): a store shut down and dropped
/// leaves no descriptor of its file open.
#[tokio::test]
async fn a_store_shut_down_and_dropped_leaves_no_descriptor_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fd.db");
    let open_on_file = |path: &std::path::Path| {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == path))
            .count()
    };
    let store = Store::open(&path).unwrap();
    store
        .writer
        .exec(|c| Ok(c.execute_batch("CREATE TABLE t (v INTEGER)")?))
        .await
        .unwrap();
    assert!(open_on_file(&path) > 0);
    store.writer.shutdown().await.unwrap();
    drop(store);
    assert_eq!(
        open_on_file(&path),
        0,
        "descriptors of {} left open",
        path.display()
    );
}
