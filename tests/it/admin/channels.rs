//! Channels: the write-only secret, validation, who may touch them.

use super::*;

#[tokio::test]
async fn channel_secret_is_write_only() {
    let t = TestServer::start().await;
    let body = json!({"name": "mock", "base_url": t.mock.base_url(), "api_key": CANARY, "models": ["gpt-4o-mini"]});
    let r = t.api("POST", "/api/channels", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_i64().unwrap();
    let masked = v["api_key"].as_str().unwrap();
    assert!(masked.ends_with('…'), "{masked}");
    assert!(masked.chars().count() <= 7, "{masked}");
    assert!(
        !r.text().contains(CANARY) && !r.text().contains("secret-canary"),
        "{}",
        r.text()
    );
    assert_eq!(v["kind"], "openai");
    assert_eq!(v["groups"], json!(["default"]));
    assert_eq!(v["weight"], 1);
    assert_eq!(v["enabled"], true);
    for path in ["/api/channels".to_string(), format!("/api/channels/{id}")] {
        let r = t.api("GET", &path, None).await;
        assert_eq!(r.status, 200);
        assert!(
            !r.text().contains(CANARY) && !r.text().contains("secret-canary"),
            "GET {path}: {}",
            r.text()
        );
    }
    assert_eq!(
        t.get(&format!("/api/channels/{id}")).await["api_key"],
        masked
    );
    assert_eq!(t.get("/api/channels").await[0]["api_key"], masked);
    // Nor in a log row.
    let logged: Vec<String> = manage_rows(&t).into_iter().map(|r| r.3).collect();
    assert!(logged.iter().all(|c| !c.contains("canary")), "{logged:?}");
}

#[tokio::test]
async fn channel_validation() {
    let t = TestServer::start().await;
    let base =
        || json!({"name": "c", "base_url": t.mock.base_url(), "api_key": CANARY, "models": ["m"]});
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let bad = [
        with("base_url", json!("ftp://x")),
        with("base_url", json!("not a url")),
        with("base_url", json!("http://")),
        with("base_url", json!("https://api.example.com/v1?x=1")),
        with("models", json!([])),
        with("models", json!([" "])),
        with("kind", json!("martian")),
        with("api_key", json!("")),
        with("api_key", json!("has space")),
        with("name", json!("")),
        with("groups", json!([])),
        with("weight", json!(-1)),
        with("colour", json!("red")),
    ];
    for b in bad {
        let r = t.api("POST", "/api/channels", Some(b.clone())).await;
        assert_error(&r, 400, "invalid_request");
        assert!(
            !r.text().contains(CANARY),
            "an error echoed the secret: {}",
            r.text()
        );
    }
    let mut missing = base();
    missing.as_object_mut().unwrap().remove("api_key");
    assert_error(
        &t.api("POST", "/api/channels", Some(missing)).await,
        400,
        "invalid_request",
    );
    assert!(
        t.get("/api/channels").await.as_array().unwrap().is_empty(),
        "a refused create made a channel"
    );
    let r = t.api("POST", "/api/channels", Some(base())).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // A PATCH is validated the same way after merging.
    let id = r.json()["id"].as_i64().unwrap();
    let r = t
        .api(
            "PATCH",
            &format!("/api/channels/{id}"),
            Some(json!({"base_url": "ftp://x"})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(
        t.get(&format!("/api/channels/{id}")).await["base_url"],
        t.mock.base_url()
    );
}

#[tokio::test]
async fn plain_users_cannot_touch_channels() {
    let t = TestServer::start().await;
    let id = t.channel(&["m"], json!({})).await;
    let (_, bob) = new_user(&t, "bob", "user").await;
    assert_error(
        &with_token(&t, &bob, "GET", "/api/channels", None).await,
        403,
        "forbidden",
    );
    assert_error(
        &with_token(&t, &bob, "GET", &format!("/api/channels/{id}"), None).await,
        403,
        "forbidden",
    );
    let body =
        json!({"name": "x", "base_url": "https://example.com/v1", "api_key": "k", "models": ["m"]});
    assert_error(
        &with_token(&t, &bob, "POST", "/api/channels", Some(body)).await,
        403,
        "forbidden",
    );
    assert_error(
        &with_token(
            &t,
            &bob,
            "PATCH",
            &format!("/api/channels/{id}"),
            Some(json!({"priority": 9})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &with_token(&t, &bob, "DELETE", &format!("/api/channels/{id}"), None).await,
        403,
        "forbidden",
    );
    let v = t.get(&format!("/api/channels/{id}")).await;
    assert_eq!(v["priority"], 0);
    assert_eq!(t.get("/api/channels").await.as_array().unwrap().len(), 1);
    // Nor options.
    assert_error(
        &with_token(&t, &bob, "GET", "/api/option", None).await,
        403,
        "forbidden",
    );
    assert_error(
        &with_token(
            &t,
            &bob,
            "PUT",
            "/api/option",
            Some(json!({"pricing.allow_unpriced_models": false})),
        )
        .await,
        403,
        "forbidden",
    );
}

#[tokio::test]
async fn channel_patch_keeps_the_secret_and_delete_removes_the_channel() {
    let t = TestServer::start().await;
    let id = t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let p = format!("/api/channels/{id}");

    let r = t
        .api("PATCH", &p, Some(json!({"priority": 5, "name": "renamed"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["priority"], 5);
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["models"], json!(["gpt-4o-mini"]));
    assert!(!r.text().contains(CANARY));
    assert_eq!(t.get(&p).await["priority"], 5);
    // The stored secret is unchanged …
    let stored: String = t
        .db()
        .query_row("SELECT api_key FROM channels WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, CANARY);
    // … and is what upstream still receives.
    let r = chat_within(&t, &key, "gpt-4o-mini").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer sk-upstream-secret-canary")
    );
    // The log row names the channel.
    let db = t.db();
    let ch: Option<i64> = db
        .query_row(
            "SELECT channel_id FROM logs WHERE request_id = ?1 AND type = 2",
            [r.request_id()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ch, Some(id));

    assert_error(
        &t.api("DELETE", "/api/channels/9999", None).await,
        404,
        "not_found",
    );
    assert_error(
        &t.api("PATCH", "/api/channels/9999", Some(json!({"priority": 1})))
            .await,
        404,
        "not_found",
    );
    let r = t.api("DELETE", &p, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_error(&t.api("GET", &p, None).await, 404, "not_found");
    assert!(t.get("/api/channels").await.as_array().unwrap().is_empty());
    let calls = t.mock.calls();
    let r = chat_within(&t, &key, "gpt-4o-mini").await;
    assert_error(&r, 404, "model_not_found");
    assert_eq!(t.mock.calls(), calls, "a deleted channel was still used");
}
