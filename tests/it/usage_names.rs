//! Usage split by user, key or channel names the ids its points carry (issue 12): the console
//! named series by listing 100 users, keys or channels, so the 101st and later showed `#id`.
//! The names come with the series, for exactly its ids; an own series names only the caller's.

use crate::common::{TestServer, with_token};
use serde_json::{Value, json};
use sluice::store::logs::{self, LogEntry, LogType};
use sluice::store::synthetic::{self, Spec};
use std::collections::{BTreeMap, BTreeSet};

const PASSWORD: &str = "a-long-enough-password";

/// 7 named channels (the ids synthetic rows use), then 3 users × 40 keys = 120 keys with calls
/// spread over the last day.
async fn many_keys() -> TestServer {
    let t = TestServer::start().await;
    for i in 1..=7 {
        let id = t
            .channel(&["gpt-4o"], json!({"name": format!("channel number {i}")}))
            .await;
        assert_eq!(id, i, "synthetic rows use channels 1..=7");
    }
    let store = t.state.store.clone();
    let spec = Spec {
        rows: 3_000,
        days: 1,
        users: 3,
        keys_per_user: 40,
        seed: 12,
    };
    tokio::task::spawn_blocking(move || synthetic::generate(&store, &spec, |_| {}))
        .await
        .unwrap()
        .unwrap();
    t
}

/// id → name as the table holds it.
fn table_names(t: &TestServer, sql: &str) -> BTreeMap<String, String> {
    let db = t.db();
    let mut st = db.prepare(sql).unwrap();
    st.query_map([], |r| Ok((r.get::<_, i64>(0)?.to_string(), r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The split values the points carry.
fn ofs(v: &Value) -> BTreeSet<String> {
    v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["of"].as_str().unwrap().to_string())
        .collect()
}

fn two_days_by(by: &str) -> String {
    let start = sluice::util::now_secs() - 2 * 86_400;
    format!("/api/usage?bucket=day&start={start}&by={by}")
}

/// Every id in the points is named as its table names it, and nothing else is named.
fn assert_all_named(v: &Value, want: &BTreeMap<String, String>, what: &str) {
    let ids = ofs(v);
    let names = v["names"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no names in the answer"));
    for id in &ids {
        assert_eq!(
            names.get(id).and_then(Value::as_str),
            Some(want[id].as_str()),
            "{what} {id} is named"
        );
    }
    let named: BTreeSet<String> = names.keys().cloned().collect();
    assert_eq!(
        named, ids,
        "{what}: names for exactly the ids in the points"
    );
}

#[tokio::test]
async fn split_by_key_names_keys_past_the_hundredth() {
    let t = many_keys().await;
    let v = t.get(&two_days_by("key")).await;
    let ids = ofs(&v);
    assert!(
        ids.len() > 100,
        "more than 100 keys have calls: {}",
        ids.len()
    );
    let keys = table_names(&t, "SELECT id, name FROM api_keys");
    assert_all_named(&v, &keys, "key");
    // The key with the highest id is past the first 100 in id order (the console's old list).
    let last = ids.iter().map(|s| s.parse::<i64>().unwrap()).max().unwrap();
    assert!(last > 100);
    assert_eq!(v["names"][last.to_string()], keys[&last.to_string()]);
}

#[tokio::test]
async fn split_by_user_and_by_channel_names_them() {
    let t = many_keys().await;
    let v = t.get(&two_days_by("user")).await;
    assert_eq!(ofs(&v).len(), 3, "{v}");
    assert_all_named(
        &v,
        &table_names(&t, "SELECT id, username FROM users"),
        "user",
    );
    let v = t.get(&two_days_by("channel")).await;
    assert_eq!(ofs(&v).len(), 7, "{v}");
    let channels = table_names(&t, "SELECT id, name FROM channels");
    assert_all_named(&v, &channels, "channel");
    assert_eq!(v["names"]["7"], "channel number 7");
    // Split by model (names are the values) or not at all: no names member.
    let v = t.get(&two_days_by("model")).await;
    assert!(v.get("names").is_none(), "{v}");
}

/// A consume row for (user, key) a minute ago, through the store's own write path (rollups too).
async fn call_row(t: &TestServer, user_id: i64, key_id: Option<i64>, tag: &str) {
    let e = LogEntry {
        created_at: sluice::util::now_secs() - 60,
        log_type: LogType::Consume as i64,
        request_id: format!("names-{tag}"),
        user_id: Some(user_id),
        key_id,
        channel_id: Some(1),
        model: Some("gpt-4o".into()),
        prompt_tokens: 5,
        completion_tokens: 5,
        quota: 10,
        status: Some(200),
        ..Default::default()
    };
    t.state
        .store
        .writer
        .exec(move |c| logs::insert(c, &e))
        .await
        .unwrap();
}

#[tokio::test]
async fn own_usage_names_only_the_callers_keys() {
    let t = TestServer::start().await;
    let bob = t
        .post(
            "/api/users",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let token = t.login_token("bob", PASSWORD).await;
    let r = with_token(
        &t,
        &token,
        "POST",
        "/api/keys",
        Some(json!({"name": "bob laptop", "unlimited": true})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bobs = r.json()["id"].as_i64().unwrap();
    let (roots, _) = t
        .key(json!({"name": "root's secret project", "unlimited": true}))
        .await;
    call_row(&t, bob, Some(bobs), "bob").await;
    // A row of bob's carrying root's key id (no call makes one; a broken or restored row
    // might): his series has a point for that id, and its name must still not show.
    call_row(&t, bob, Some(roots), "forged").await;

    let r = with_token(&t, &token, "GET", "/api/usage/self?by=key", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        ofs(&v),
        BTreeSet::from([bobs.to_string(), roots.to_string()]),
        "{v}"
    );
    assert_eq!(v["names"], json!({bobs.to_string(): "bob laptop"}), "{v}");
    assert!(!v.to_string().contains("secret project"), "{v}");

    // An admin's series over the same rows names both.
    let v = t.get(&format!("/api/usage?by=key&user_id={bob}")).await;
    assert_eq!(
        v["names"][roots.to_string()],
        "root's secret project",
        "{v}"
    );
    assert_eq!(v["names"][bobs.to_string()], "bob laptop", "{v}");
}

#[tokio::test]
async fn a_deleted_keys_id_has_no_name() {
    let t = TestServer::start().await;
    let (kept, _) = t.key(json!({"name": "kept key", "unlimited": true})).await;
    let (gone, _) = t.key(json!({"name": "gone key", "unlimited": true})).await;
    call_row(&t, 1, Some(kept), "kept").await;
    call_row(&t, 1, Some(gone), "gone").await;
    let r = t.api("DELETE", &format!("/api/keys/{gone}"), None).await;
    assert_eq!(r.status, 204, "{}", r.text());

    let v = t.get("/api/usage?by=key").await;
    // The rollups keep the deleted key's calls; only its name is gone.
    assert_eq!(
        ofs(&v),
        BTreeSet::from([kept.to_string(), gone.to_string()]),
        "{v}"
    );
    assert_eq!(v["names"], json!({kept.to_string(): "kept key"}), "{v}");
}

#[tokio::test]
async fn the_playgrounds_calls_are_named_as_key_0() {
    let t = TestServer::start().await;
    // The playground's rows have no key id (see relay::PLAYGROUND_KEY_NAME).
    call_row(&t, 1, None, "playground").await;
    let v = t.get("/api/usage?by=key").await;
    assert_eq!(ofs(&v), BTreeSet::from(["0".to_string()]), "{v}");
    assert_eq!(v["names"], json!({"0": "playground"}), "{v}");
    // Split by user, the same row's user is named; no user 0 to name.
    let v = t.get("/api/usage?by=user").await;
    assert_eq!(v["names"], json!({"1": "root"}), "{v}");
}
