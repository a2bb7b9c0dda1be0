//! A key's owner cannot undo what an admin set on it (issue 11, item 9): each lockable setting,
//! the owner's own settings staying theirs, and an admin lifting the locks.

use crate::common::{TestServer, send, with_token};
use serde_json::json;

const PASSWORD: &str = "a-long-enough-password";

/// Root makes `username` (plain user) and signs it in: (id, personal access token).
async fn user(t: &TestServer, username: &str) -> (i64, String) {
    let id = t
        .post(
            "/api/users",
            json!({"username": username, "password": PASSWORD}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    (id, t.login_token(username, PASSWORD).await)
}

/// A relay call with the key: the admin-set restrictions must still hold there.
async fn models_status(t: &TestServer, key: &str) -> u16 {
    let auth = format!("Bearer {key}");
    send(
        "GET",
        &t.url("/v1/models"),
        &[("authorization", &auth)],
        None,
    )
    .await
    .status
}

fn future() -> i64 {
    sluice::util::now_secs() + 86_400
}

#[tokio::test]
async fn an_owner_cannot_undo_any_setting_an_admin_set() {
    let t = TestServer::start().await;
    let (bob, bob_token) = user(&t, "bob").await;
    let expiry = future();
    let created = t
        .post(
            "/api/keys",
            json!({"name": "handed-out", "user_id": bob, "quota": 100, "models": ["m1"],
                   "expires_at": expiry, "rpm_limit": 5, "tpm_limit": 1000}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    assert_eq!(
        created["admin_locked"],
        json!(["quota", "models", "expires_at", "rpm_limit", "tpm_limit"])
    );
    let path = format!("/api/keys/{id}");
    t.patch(&path, json!({"enabled": false})).await;
    let before = t.get(&path).await;
    assert_eq!(before["enabled"], false);
    assert_eq!(
        before["admin_locked"],
        json!([
            "enabled",
            "quota",
            "models",
            "expires_at",
            "rpm_limit",
            "tpm_limit"
        ])
    );

    for (field, body) in [
        ("enabled", json!({"enabled": true})),
        ("quota", json!({"quota": 1_000_000})),
        ("quota", json!({"unlimited": true})),
        ("models", json!({"models": null})),
        ("models", json!({"models": ["m1", "m2"]})),
        ("expires_at", json!({"expires_at": null})),
        ("expires_at", json!({"expires_at": expiry + 86_400})),
        ("rpm_limit", json!({"rpm_limit": 0})),
        ("rpm_limit", json!({"rpm_limit": null})),
        ("rpm_limit", json!({"rpm_limit": 500})),
        ("tpm_limit", json!({"tpm_limit": 0})),
        ("tpm_limit", json!({"tpm_limit": null})),
        ("admin_locked", json!({"admin_locked": []})),
    ] {
        let r = with_token(&t, &bob_token, "PATCH", &path, Some(body.clone())).await;
        assert_eq!(r.status, 403, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "forbidden");
        assert!(r.text().contains(field), "{body}: {}", r.text());
    }
    let mut after = t.get(&path).await;
    let mut want = before.clone();
    // Nothing moved (last_used_at aside, which no call here touches).
    after.as_object_mut().unwrap().remove("last_used_at");
    want.as_object_mut().unwrap().remove("last_used_at");
    assert_eq!(after, want);
    assert_eq!(
        models_status(&t, &secret).await,
        403,
        "the key is still disabled"
    );

    // What is left to the owner: the name, and deleting the key.
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "mine");
    let r = with_token(&t, &bob_token, "DELETE", &path, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn owners_keep_what_they_set_and_may_always_disable() {
    let t = TestServer::start().await;
    let (_, bob_token) = user(&t, "bob").await;
    let r = with_token(
        &t,
        &bob_token,
        "POST",
        "/api/keys",
        Some(json!({"name": "own", "quota": 50, "rpm_limit": 5, "tpm_limit": 100})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["admin_locked"], json!([]));
    let path = format!("/api/keys/{}", r.json()["id"]);
    // The owner's own settings stay theirs.
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"rpm_limit": 50, "quota": 60})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // An admin tightens the rpm limit: that one is locked now, the tpm limit is still bob's.
    let v = t.patch(&path, json!({"rpm_limit": 1})).await;
    assert_eq!(v["admin_locked"], json!(["rpm_limit"]));
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"rpm_limit": 50})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"tpm_limit": 0, "quota": 70})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rpm_limit"], 1);

    // An admin turns the key on explicitly: bob may still turn it off (stricter), not on again.
    t.patch(&path, json!({"enabled": true})).await;
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // The admin hands everything back.
    let v = t.patch(&path, json!({"admin_locked": []})).await;
    assert_eq!(v["admin_locked"], json!([]));
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &path,
        Some(json!({"enabled": true, "rpm_limit": 50})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An unknown setting name is a bad request.
    let r = t
        .api("PATCH", &path, Some(json!({"admin_locked": ["name"]})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn admin_locks_bind_an_admin_owner_too_and_show_in_the_manage_log() {
    let t = TestServer::start().await;
    let admin = t
        .post(
            "/api/users",
            json!({"username": "ada", "password": PASSWORD, "role": "admin"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let ada = t.login_token("ada", PASSWORD).await;
    let v = t
        .post(
            "/api/keys",
            json!({"name": "k", "user_id": admin, "quota": 10}),
        )
        .await;
    let path = format!("/api/keys/{}", v["id"]);
    // Root set the quota; ada (an admin, but the owner here) cannot raise it.
    let r = with_token(&t, &ada, "PATCH", &path, Some(json!({"quota": 1_000_000}))).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let content: String = t
        .db()
        .query_row(
            "SELECT content FROM logs WHERE type = 3 AND content LIKE 'created key%' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(content.contains("locked for the owner: quota"), "{content}");
}
