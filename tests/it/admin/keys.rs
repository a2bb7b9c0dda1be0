//! API keys: the secret shown once, validation, ownership, changes reaching the relay.

use super::*;

#[tokio::test]
async fn key_secret_is_shown_once_and_stored_only_as_a_digest() {
    let t = TestServer::start().await;
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 100})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let secret = v["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sk-"), "{secret}");
    assert!(secret.len() >= 43, "{secret} is too short");
    assert_eq!(v["name"], "k");
    assert_eq!(v["remain_quota"], 100);
    assert_eq!(v["unlimited"], false);
    assert_eq!(v["enabled"], true);
    assert_eq!(v["user_id"], 1);
    let id = v["id"].as_i64().unwrap();

    // Not in the database, in any table …
    let found = db_values_containing(&t, &secret);
    assert!(found.is_empty(), "the key secret is stored in {found:?}");
    // … in particular not in api_keys, whose row is there.
    let n: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM api_keys WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    // Not in any later response.
    for path in [format!("/api/keys/{id}"), "/api/keys".to_string()] {
        let r = t.api("GET", &path, None).await;
        assert_eq!(r.status, 200);
        assert!(
            !r.text().contains(&secret),
            "GET {path} shows the secret: {}",
            r.text()
        );
        assert!(
            !r.text().contains(&secret[8..]),
            "GET {path} shows most of the secret"
        );
    }
    assert!(t.get(&format!("/api/keys/{id}")).await.get("key").is_none());
    // And it works.
    assert_eq!(models(&t, &secret).await.status, 200);
}

#[tokio::test]
async fn key_create_validation() {
    let t = TestServer::start().await;
    let r = t.api("POST", "/api/keys", Some(json!({"name": "k"}))).await;
    assert_error(&r, 400, "invalid_request");
    let r = t
        .api("POST", "/api/keys", Some(json!({"name": "k", "quota": -5})))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = t
        .api("POST", "/api/keys", Some(json!({"name": "", "quota": 5})))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 5, "expires_at": 1_000_000})),
        )
        .await;
    // A time already past is a key created expired.
    assert_eq!(r.status, 201, "{}", r.text());
    let expired = r.json()["id"].as_i64().unwrap();
    t.api("DELETE", &format!("/api/keys/{expired}"), None).await;
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 5, "expires_at": i64::MAX})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 5, "colour": "red"})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert!(
        t.get("/api/keys").await.as_array().unwrap().is_empty(),
        "a refused create made a key"
    );

    let later = now_secs() + 3600;
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 5, "expires_at": later})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["expires_at"], later);
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "u", "unlimited": true})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["unlimited"], true);
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn users_see_and_change_only_their_own_keys() {
    let t = TestServer::start().await;
    let (root_key_id, root_key) = t.key(json!({"quota": 100})).await;
    let (bob, bob_token) = new_user(&t, "bob", "user").await;
    let r = with_token(
        &t,
        &bob_token,
        "POST",
        "/api/keys",
        Some(json!({"name": "bobs", "quota": 10})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["user_id"], bob);
    let bob_key_id = r.json()["id"].as_i64().unwrap();

    for path in ["/api/keys", "/api/keys?user_id=1"] {
        let r = with_token(&t, &bob_token, "GET", path, None).await;
        assert_eq!(r.status, 200);
        let ids: Vec<i64> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [bob_key_id], "GET {path} as bob");
    }
    // Root (an admin) sees both, or one user's.
    assert_eq!(t.get("/api/keys").await.as_array().unwrap().len(), 2);
    let only_bob = t.get(&format!("/api/keys?user_id={bob}")).await;
    assert_eq!(only_bob.as_array().unwrap().len(), 1);
    assert_eq!(only_bob[0]["id"], bob_key_id);

    // Root's key is invisible to bob: 404, as if it did not exist.
    let p = format!("/api/keys/{root_key_id}");
    assert_error(
        &with_token(&t, &bob_token, "GET", &p, None).await,
        404,
        "not_found",
    );
    assert_error(
        &with_token(&t, &bob_token, "PATCH", &p, Some(json!({"enabled": false}))).await,
        404,
        "not_found",
    );
    assert_error(
        &with_token(&t, &bob_token, "DELETE", &p, None).await,
        404,
        "not_found",
    );
    let v = t.get(&p).await;
    assert_eq!(v["enabled"], true);
    assert_eq!(models(&t, &root_key).await.status, 200);
    // Nor may bob make keys for others.
    let r = with_token(
        &t,
        &bob_token,
        "POST",
        "/api/keys",
        Some(json!({"name": "x", "quota": 1, "user_id": 1})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    // His own he can change.
    let r = with_token(
        &t,
        &bob_token,
        "PATCH",
        &format!("/api/keys/{bob_key_id}"),
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "renamed");
}

#[tokio::test]
async fn key_patch_and_delete_apply_to_the_relay_at_once() {
    let t = TestServer::start().await;
    let (id, key) = t.key(json!({"quota": 100})).await;
    let p = format!("/api/keys/{id}");
    assert_eq!(models(&t, &key).await.status, 200);

    let r = t.api("PATCH", &p, Some(json!({"enabled": false}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    assert_error(&models(&t, &key).await, 403, "forbidden");
    t.patch(&p, json!({"enabled": true})).await;
    assert_eq!(models(&t, &key).await.status, 200);

    let r = t.api("PATCH", &p, Some(json!({"quota": 5}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["remain_quota"], 5);
    assert_eq!(t.get(&p).await["remain_quota"], 5);
    assert_eq!(t.key_balance(id).0, 5);
    assert_error(
        &t.api("PATCH", &p, Some(json!({"quota": -1}))).await,
        400,
        "invalid_request",
    );
    assert_eq!(t.get(&p).await["remain_quota"], 5);

    assert_error(
        &t.api("PATCH", "/api/keys/9999", Some(json!({"enabled": false})))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &t.api("DELETE", "/api/keys/9999", None).await,
        404,
        "not_found",
    );

    let r = t.api("DELETE", &p, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_error(&t.api("GET", &p, None).await, 404, "not_found");
    assert_error(&models(&t, &key).await, 401, "invalid_api_key");
}
