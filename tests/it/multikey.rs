//! Several upstream keys per channel (issue 14): one key per line, used in turn; a key
//! upstream refuses (401/403) is turned off alone and the channel only when every key is;
//! a passing test turns them back on. Keys are never shown, only their last 4 characters.

use crate::common::TestServer;
use serde_json::{Value, json};

const K1: &str = "sk-first-key-00000001";
const K2: &str = "sk-second-key-0000002";

/// The bearer keys of the calls the mock received, oldest first.
fn keys_seen(t: &TestServer) -> Vec<String> {
    t.mock
        .requests()
        .iter()
        .filter_map(|r| {
            r.authorization
                .as_deref()?
                .strip_prefix("Bearer ")
                .map(str::to_string)
        })
        .collect()
}

async fn channel(t: &TestServer, id: i64) -> Value {
    t.get(&format!("/api/channels/{id}")).await
}

/// (content, status) of the channel's manage rows, oldest first.
fn manage_rows(t: &TestServer, id: i64) -> Vec<(String, Option<i64>)> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT content, status FROM logs WHERE type = 3 AND channel_id = ?1 ORDER BY id")
        .unwrap();
    st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn calls_take_the_keys_in_turn_and_the_api_shows_only_fingerprints() {
    let t = TestServer::start().await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Blank lines and a CRLF are tidied away.
    let id = t
        .channel(
            &["gpt-4o-mini"],
            json!({"api_key": format!("{K1}\r\n\n{K2}\n")}),
        )
        .await;
    for _ in 0..6 {
        let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let seen = keys_seen(&t);
    assert_eq!(seen.len(), 6);
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "in turn: {seen:?}");
    }
    assert_eq!(seen.iter().filter(|k| *k == K1).count(), 3, "{seen:?}");

    let c = channel(&t, id).await;
    assert_eq!(
        (&c["key_count"], &c["keys_disabled"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(c["keys"][0]["fingerprint"], "…0001");
    assert_eq!(c["keys"][1]["fingerprint"], "…0002");
    assert_eq!(c["keys"][1]["enabled"], true);
    let text = c.to_string();
    assert!(!text.contains(K1) && !text.contains(K2), "{text}");
    let list = t.get("/api/channels").await.to_string();
    assert!(!list.contains(K1) && !list.contains(K2));

    // A key given twice, or with a space inside, is refused with a message.
    for (bad, words) in [
        (format!("{K1}\n{K1}"), "same key twice"),
        (format!("{K1} {K2}"), "one per line"),
        (format!(" {K1}"), "spaces"),
    ] {
        let r = t
            .api(
                "PATCH",
                &format!("/api/channels/{id}"),
                Some(json!({"api_key": bad})),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(words), "{}", r.text());
    }
}

#[tokio::test]
async fn one_refused_key_of_two_is_turned_off_alone_and_calls_still_succeed() {
    let t = TestServer::start().await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let bad = "sk-mock-key-401-00000009";
    let id = t
        .channel(&["gpt-4o-mini"], json!({"api_key": format!("{bad}\n{K2}")}))
        .await;
    for _ in 0..4 {
        let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
        assert_eq!(
            r.status,
            200,
            "the call moves on to the next key: {}",
            r.text()
        );
    }
    t.relays_idle().await;
    let seen = keys_seen(&t);
    assert_eq!(
        seen.iter().filter(|k| *k == bad).count(),
        1,
        "refused once, then never used: {seen:?}"
    );
    assert_eq!(seen.iter().filter(|k| *k == K2).count(), 4, "{seen:?}");
    let c = channel(&t, id).await;
    assert_eq!(c["status"], "enabled", "the channel stays up: {c}");
    assert_eq!(
        (&c["key_count"], &c["keys_disabled"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(c["keys"][0]["enabled"], false);
    assert_eq!(c["keys"][0]["fingerprint"], "…0009");
    assert!(
        c["keys"][0]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{c}"
    );
    assert!(c["keys"][0]["disabled_at"].as_i64().unwrap() > 0);
    assert_eq!(c["keys"][1]["enabled"], true);
    let rows = manage_rows(&t, id);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].0.contains("key …0009 turned off"), "{rows:?}");
    assert!(!rows[0].0.contains(bad), "{rows:?}");
    assert_eq!(rows[0].1, Some(401));

    // Survives a reload of the channels (and a restart): the disable is stored.
    t.state.catalog.reload_channels().await.unwrap();
    let before = keys_seen(&t).len();
    for _ in 0..2 {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    }
    assert!(keys_seen(&t)[before..].iter().all(|k| k == K2));

    // Replacing the bad key: the new one starts on.
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"api_key": format!("{K1}\n{K2}")}),
    )
    .await;
    let c = channel(&t, id).await;
    assert_eq!(c["keys_disabled"], 0, "{c}");
}

#[tokio::test]
async fn every_key_refused_turns_the_channel_off_and_a_passing_test_turns_all_back_on() {
    let t = TestServer::start().await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // The mock answers 401 to any key for model mock-401: both keys get refused.
    let id = t
        .channel(
            &["mock-401", "gpt-4o-mini"],
            json!({"api_key": format!("{K1}\n{K2}")}),
        )
        .await;
    let r = t.chat(&key, "mock-401", 1, false).await;
    assert_eq!(r.status, 502, "{}", r.text());
    t.relays_idle().await;
    assert_eq!(keys_seen(&t).len(), 2, "each key tried once");
    let c = channel(&t, id).await;
    assert_eq!(c["status"], "auto_disabled", "{c}");
    assert_eq!(c["keys_disabled"], 2, "{c}");
    let reason = c["auto_disabled_reason"].as_str().unwrap();
    assert!(reason.contains("every one of its 2 keys"), "{reason}");
    let rows = manage_rows(&t, id);
    // One key's row, then the channel's (which says the last key's refusal).
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].0.contains("turned off"), "{rows:?}");
    assert!(rows[1].0.contains("auto-disabled"), "{rows:?}");
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 404, "no channel left: {}", r.text());

    // A failing test changes nothing; a passing one turns every key and the channel back on.
    let v = t
        .post(
            &format!("/api/channels/{id}/test"),
            json!({"model": "mock-401"}),
        )
        .await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(false), &json!("auto_disabled"))
    );
    let v = t
        .post(
            &format!("/api/channels/{id}/test"),
            json!({"model": "gpt-4o-mini"}),
        )
        .await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(true), &json!("enabled")),
        "{v}"
    );
    assert_eq!(v["keys"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["keys"][0]["fingerprint"], "…0001");
    assert_eq!(v["keys"][1]["enabled"], true);
    assert!(!v.to_string().contains(K1));
    let c = channel(&t, id).await;
    assert_eq!(
        (&c["status"], &c["keys_disabled"]),
        (&json!("enabled"), &json!(0))
    );
    let before = keys_seen(&t).len();
    for _ in 0..2 {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    }
    let after = &keys_seen(&t)[before..];
    assert!(
        after.contains(&K1.to_string()) && after.contains(&K2.to_string()),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_test_turns_off_the_key_it_finds_refused_and_names_it() {
    let t = TestServer::start().await;
    let bad = "sk-mock-key-403-00000007";
    let id = t
        .channel(&["gpt-4o-mini"], json!({"api_key": format!("{K1}\n{bad}")}))
        .await;
    let v = t.post(&format!("/api/channels/{id}/test"), json!({})).await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(true), &json!("enabled")),
        "{v}"
    );
    assert_eq!(v["keys"][1]["status"], 403, "{v}");
    assert_eq!(v["keys"][1]["enabled"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("key …0007"), "{v}");
    assert!(!v.to_string().contains(bad), "{v}");
    let c = channel(&t, id).await;
    assert_eq!(
        (&c["status"], &c["keys_disabled"]),
        (&json!("enabled"), &json!(1))
    );
    assert_eq!(c["keys"][1]["enabled"], false);
}
