//! The backup API against an in-process server over loopback.

use super::{Before, Load, check_copy};
use crate::common::{TestServer, send};
use serde_json::{Value, json};
use std::time::Instant;

/// A server with a funded unlimited key, a channel to the mock and `filler` extra log rows.
async fn server(filler: u32) -> (TestServer, String) {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(100_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    if filler > 0 {
        let sql = super::filler_sql(filler);
        t.state
            .store
            .writer
            .exec(move |c| Ok(c.execute_batch(&sql)?))
            .await
            .unwrap();
    }
    (t, key)
}

fn db(t: &TestServer) -> std::path::PathBuf {
    t.dir.path().join("sluice.db")
}

fn backups_dir(t: &TestServer) -> std::path::PathBuf {
    t.dir.path().join("backups")
}

/// Entries of the backups directory, sorted.
fn dir_entries(t: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(backups_dir(t))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_write_load_is_complete_and_the_ledger_reconciles() {
    let (t, key) = server(150_000).await;
    let load = Load::start(&t.base, &key, 4);
    load.wait_for(20).await;
    let before = Before::read(&db(&t));
    let started = Instant::now();
    let r = t.api("POST", "/api/backups", None).await;
    let ended = Instant::now();
    assert_eq!(r.status, 201, "{}", r.text());
    let during = load.within(started, ended);
    load.wait_for(load.completed() + 20).await;
    let total = load.finish().await;
    t.relays_idle().await;
    let info = r.json();
    let name = info["name"].as_str().unwrap().to_string();
    assert_eq!(info["integrity"], "ok");
    assert_eq!(
        info["schema_version"].as_i64().unwrap(),
        i64::from(sluice::store::migrate::latest_version())
    );
    let path = backups_dir(&t).join(&name);
    assert_eq!(
        info["bytes"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len()
    );
    let consumed = check_copy(&path, &before);
    assert!(consumed >= 20, "the copy holds the calls made before it");
    assert!(
        during >= 1,
        "relayed calls completed while the backup ran ({:?}); {total} calls in all",
        ended - started
    );
    // the audit trail says who made it
    let who: String = t
        .db()
        .query_row(
            "SELECT content FROM logs WHERE type = 3 AND content LIKE 'made backup%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(who.contains(&name), "{who}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_copy_under_write_load_is_complete_and_leaves_no_file() {
    let (t, key) = server(150_000).await;
    let load = Load::start(&t.base, &key, 4);
    load.wait_for(20).await;
    let before = Before::read(&db(&t));
    let started = Instant::now();
    let r = t.api("GET", "/api/backup/hot-copy", None).await;
    let ended = Instant::now();
    assert_eq!(r.status, 200, "{}", r.text());
    let during = load.within(started, ended);
    load.wait_for(load.completed() + 20).await;
    load.finish().await;
    t.relays_idle().await;

    assert_eq!(r.headers["content-type"], "application/vnd.sqlite3");
    assert_eq!(
        r.headers["content-length"].to_str().unwrap(),
        r.body.len().to_string()
    );
    let cd = r.headers["content-disposition"].to_str().unwrap();
    assert!(
        cd.starts_with("attachment; filename=\"sluice-") && cd.ends_with(".db\""),
        "{cd}"
    );
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("hot.db");
    std::fs::write(&file, &r.body).unwrap();
    check_copy(&file, &before);
    assert!(
        during >= 1,
        "relayed calls completed while the hot copy ran"
    );
    assert!(dir_entries(&t).is_empty(), "left: {:?}", dir_entries(&t));
    assert_eq!(
        t.get("/api/backups").await,
        json!([]),
        "not kept as a backup"
    );
    let audited: i64 = t
        .db()
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE type = 3 AND content LIKE 'took a hot copy%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
    t.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_download_leaves_no_file_and_the_next_copy_runs() {
    use http_body_util::{BodyExt, Full};
    let (t, _) = server(20_000).await;
    let req = http::Request::get(t.url("/api/backup/hot-copy"))
        .header("authorization", format!("Bearer {}", t.admin))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = crate::common::client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let len: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.len() < len, "the download is still going");
    // the copy has no name any more while it streams, and none after the client leaves
    assert!(dir_entries(&t).is_empty(), "{:?}", dir_entries(&t));
    drop(body);
    let r = t.api("GET", "/api/backup/hot-copy", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), len);
    assert!(dir_entries(&t).is_empty());
    t.stop().await;
}

#[tokio::test]
async fn list_download_and_keep_newest_seven() {
    let (t, _) = server(0).await;
    assert_eq!(t.get("/api/backups").await, json!([]));
    let mut made = Vec::new();
    for _ in 0..8 {
        let r = t.api("POST", "/api/backups", None).await;
        assert_eq!(r.status, 201, "{}", r.text());
        made.push(r.json()["name"].as_str().unwrap().to_string());
    }
    let list = t.get("/api/backups").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = made.iter().rev().take(7).map(String::as_str).collect();
    assert_eq!(names, newest_first, "the default policy keeps the newest 7");
    for b in list.as_array().unwrap() {
        assert_eq!(b["integrity"], "ok");
        assert!(b["bytes"].as_u64().unwrap() > 0);
        assert!(b["created_at"].as_i64().unwrap() > 1_700_000_000);
    }
    // the oldest was pruned with its sidecar
    let oldest = &made[0];
    assert!(!backups_dir(&t).join(oldest).exists());
    assert!(
        !backups_dir(&t)
            .join(oldest.replace(".db", ".json"))
            .exists()
    );
    let r = t.api("GET", &format!("/api/backups/{oldest}"), None).await;
    assert_eq!(r.status, 404);

    let newest = &made[7];
    let r = t.api("GET", &format!("/api/backups/{newest}"), None).await;
    assert_eq!(r.status, 200);
    let on_disk = std::fs::read(backups_dir(&t).join(newest)).unwrap();
    assert_eq!(r.body.as_ref(), on_disk.as_slice());
    assert_eq!(r.headers["content-type"], "application/vnd.sqlite3");
    assert_eq!(
        r.headers["content-length"].to_str().unwrap(),
        on_disk.len().to_string()
    );
    assert_eq!(
        r.headers["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{newest}\"")
    );
    let downloads: i64 = t
        .db()
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE type = 3 AND content = ?1",
            [format!("downloaded backup {newest}")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(downloads, 1);
    t.stop().await;
}

#[tokio::test]
async fn bad_names_and_traversal_are_refused() {
    let (t, _) = server(0).await;
    let made = t.post("/api/backups", Value::Null).await;
    let name = made["name"].as_str().unwrap();
    // files that exist but are not backups
    std::fs::write(backups_dir(&t).join("notes.db"), b"x").unwrap();
    std::fs::write(t.dir.path().join("secret.db"), b"x").unwrap();
    let sidecar = name.replace(".db", ".json");
    for path in [
        "/api/backups/notes.db".to_string(),
        format!("/api/backups/{sidecar}"),
        "/api/backups/sluice.db".into(),
        "/api/backups/sluice-20990101-000000.db".into(),
        "/api/backups/sluice-20261301-000000.db".into(),
        format!("/api/backups/{name}.json"),
        format!("/api/backups/{}", name.to_uppercase()),
        "/api/backups/..%2Fsluice.db".into(),
        "/api/backups/..%2F..%2Fsecret.db".into(),
        "/api/backups/%2e%2e%2fsluice.db".into(),
        "/api/backups/../sluice.db".into(),
        "/api/backups/..".into(),
        "/api/backups/.".into(),
        "/api/backups/%00".into(),
        "/api/backups/..%5Csluice.db".into(),
    ] {
        let r = t.api("GET", &path, None).await;
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: {} {}",
            r.status,
            r.text()
        );
        assert_ne!(
            r.headers["content-type"], "application/vnd.sqlite3",
            "{path}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn only_admins_reach_backups_and_one_runs_at_a_time() {
    let (t, _) = server(0).await;
    let made = t.post("/api/backups", Value::Null).await;
    let name = made["name"].as_str().unwrap();
    t.post(
        "/api/users",
        json!({"username": "plain", "password": "plain-user-password", "role": "user"}),
    )
    .await;
    let token = t.login_token("plain", "plain-user-password").await;
    let auth = format!("Bearer {token}");
    for (method, path) in [
        ("GET", "/api/backups".to_string()),
        ("POST", "/api/backups".into()),
        ("GET", format!("/api/backups/{name}")),
        ("GET", "/api/backup/hot-copy".into()),
    ] {
        let r = send(method, &t.url(&path), &[("authorization", &auth)], None).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        let r = send(method, &t.url(&path), &[], None).await;
        assert_eq!(r.status, 401, "{method} {path} signed out");
    }
    // A backup in progress (held here) turns both kinds away with 409.
    let held = t.state.backups.try_begin().unwrap();
    let r = t.api("POST", "/api/backups", None).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "conflict");
    let r = t.api("GET", "/api/backup/hot-copy", None).await;
    assert_eq!(r.status, 409);
    drop(held);
    assert_eq!(t.api("POST", "/api/backups", None).await.status, 201);
    t.stop().await;
}

#[tokio::test]
async fn metrics_count_backups() {
    let (t, _) = server(0).await;
    t.post("/api/backups", Value::Null).await;
    let stats = t.get("/api/stats").await;
    assert_eq!(stats["backups"]["ok"], 1);
    assert!(stats["backups"]["last_ok_at"].as_i64().unwrap() > 0);
    let r = t.api("GET", "/metrics", None).await;
    assert!(
        r.text().contains("sluice_backups_total{result=\"ok\"} 1"),
        "{}",
        r.text()
    );
    t.stop().await;
}

#[tokio::test]
async fn the_keep_count_is_an_option_applied_live() {
    let (t, _) = server(0).await;
    t.put("/api/option", json!({"backup.keep": 2})).await;
    for _ in 0..3 {
        assert_eq!(t.api("POST", "/api/backups", None).await.status, 201);
    }
    assert_eq!(t.get("/api/backups").await.as_array().unwrap().len(), 2);
    let r = t
        .api("PUT", "/api/option", Some(json!({"backup.keep": 0})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
