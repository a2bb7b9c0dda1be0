//! Users: creation, roles, quota, disable, deletion; hashes never leave the server.

use super::*;

#[tokio::test]
async fn root_creates_users_who_can_sign_in() {
    let t = TestServer::start().await;
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["username"], "alice");
    assert_eq!(v["role"], "user");
    assert_eq!(v["group"], "default");
    assert_eq!(v["quota"], 0);
    assert_eq!(v["enabled"], true);
    let id = v["id"].as_i64().unwrap();
    assert_eq!(
        t.get(&format!("/api/users/{id}")).await["username"],
        "alice"
    );
    let listed: Vec<String> = t
        .get("/api/users")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ["root", "alice"]);

    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_error(&r, 409, "conflict");
    let long = "x".repeat(65);
    for bad in ["bad name", "", "semi;colon", long.as_str()] {
        let r = t
            .api(
                "POST",
                "/api/users",
                Some(json!({"username": bad, "password": PASSWORD})),
            )
            .await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "bob", "password": "short"})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    // Unknown fields are refused, not ignored.
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "bob", "password": PASSWORD, "is_admin": true})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "bob", "password": PASSWORD, "quota": -1})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    // Nobody makes another root.
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "bob", "password": PASSWORD, "role": "root"})),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(
        t.get("/api/users").await.as_array().unwrap().len(),
        2,
        "a refused create made an account"
    );

    // The new user signs in, and is a plain user.
    let s = sign_in(&t, "alice", PASSWORD).await;
    let r = s.call_with(&t, "GET", "/api/me", &[], None).await;
    assert_eq!(r.json()["username"], "alice");
    let r = s.call_with(&t, "GET", "/api/users", &[], None).await;
    assert_error(&r, 403, "forbidden");
    let r = s
        .call(
            &t,
            "POST",
            "/api/users",
            Some(json!({"username": "mallory", "password": PASSWORD})),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = s
        .call(&t, "PATCH", "/api/users/1", Some(json!({"quota": 1})))
        .await;
    assert_error(&r, 403, "forbidden");
}

#[tokio::test]
async fn admins_manage_only_plain_users() {
    let t = TestServer::start().await;
    let (_, adam) = new_user(&t, "adam", "admin").await;
    let (ada_id, _) = new_user(&t, "ada", "admin").await;

    // An admin can list and create plain users …
    assert_eq!(
        with_token(&t, &adam, "GET", "/api/users", None)
            .await
            .status,
        200
    );
    let r = with_token(
        &t,
        &adam,
        "POST",
        "/api/users",
        Some(json!({"username": "pat", "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let pat_id = r.json()["id"].as_i64().unwrap();
    let r = with_token(
        &t,
        &adam,
        "PATCH",
        &format!("/api/users/{pat_id}"),
        Some(json!({"quota": 7})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["quota"], 7);

    // … but cannot make admins, promote users, or touch admins and root.
    let r = with_token(
        &t,
        &adam,
        "POST",
        "/api/users",
        Some(json!({"username": "eve", "password": PASSWORD, "role": "admin"})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(
        &t,
        &adam,
        "PATCH",
        &format!("/api/users/{pat_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(
        &t,
        &adam,
        "PATCH",
        "/api/users/1",
        Some(json!({"quota": 5})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(
        &t,
        &adam,
        "PATCH",
        "/api/users/1",
        Some(json!({"password": "new-root-password"})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(
        &t,
        &adam,
        "PATCH",
        &format!("/api/users/{ada_id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(&t, &adam, "DELETE", &format!("/api/users/{ada_id}"), None).await;
    assert_error(&r, 403, "forbidden");
    let r = with_token(&t, &adam, "DELETE", "/api/users/1", None).await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(t.user_balance(1).0, 0, "root's quota changed");
    assert_eq!(
        login(&t, "root", ROOT_PASSWORD).await.status,
        200,
        "root's password changed"
    );
    assert_eq!(t.get(&format!("/api/users/{pat_id}")).await["role"], "user");
    assert_eq!(
        t.get(&format!("/api/users/{ada_id}")).await["enabled"],
        true
    );

    // Root cannot be deleted by anyone, root included; nor demoted.
    let r = t.api("DELETE", "/api/users/1", None).await;
    assert_error(&r, 403, "forbidden");
    let r = t
        .api("PATCH", "/api/users/1", Some(json!({"role": "admin"})))
        .await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(t.get("/api/users/1").await["role"], "root");
    // Root may change admins.
    let r = t
        .api(
            "PATCH",
            &format!("/api/users/{ada_id}"),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "user");
}

#[tokio::test]
async fn quota_changes_and_deletion() {
    let t = TestServer::start().await;
    let (bob, bob_token) = new_user(&t, "bob", "user").await;
    let path = format!("/api/users/{bob}");

    let r = t.api("PATCH", &path, Some(json!({"quota": 12_345}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["quota"], 12_345);
    assert_eq!(t.get(&path).await["quota"], 12_345);
    assert_eq!(t.user_balance(bob).0, 12_345);
    let r = t.api("PATCH", &path, Some(json!({"quota": -1}))).await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(t.get(&path).await["quota"], 12_345);
    let r = t
        .api(
            "PATCH",
            &path,
            Some(json!({"group": "vip", "nickname": "b"})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(
        t.get(&path).await["group"],
        "default",
        "a refused PATCH changed the group"
    );
    let r = t.api("PATCH", &path, Some(json!({"group": "vip"}))).await;
    assert_eq!(r.json()["group"], "vip");

    // Unknown and malformed ids.
    assert_error(
        &t.api("GET", "/api/users/9999", None).await,
        404,
        "not_found",
    );
    assert_error(
        &t.api("PATCH", "/api/users/9999", Some(json!({"quota": 1})))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &t.api("DELETE", "/api/users/9999", None).await,
        404,
        "not_found",
    );
    assert_error(
        &t.api("GET", "/api/users/abc", None).await,
        400,
        "invalid_request",
    );
    assert_error(
        &t.api("GET", "/api/users/0", None).await,
        400,
        "invalid_request",
    );

    // Bob's key, made by root for him, goes with him.
    let v = t
        .post(
            "/api/keys",
            json!({"name": "bobs", "quota": 10, "user_id": bob}),
        )
        .await;
    assert_eq!(v["user_id"], bob);
    let bob_key = v["key"].as_str().unwrap().to_string();
    assert_eq!(models(&t, &bob_key).await.status, 200);

    let r = t.api("DELETE", &path, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    assert_error(&t.api("GET", &path, None).await, 404, "not_found");
    assert_error(&login(&t, "bob", PASSWORD).await, 401, "unauthenticated");
    assert_error(
        &with_token(&t, &bob_token, "GET", "/api/me", None).await,
        401,
        "unauthenticated",
    );
    assert_error(&models(&t, &bob_key).await, 401, "invalid_api_key");
}

#[tokio::test]
async fn disabled_accounts_are_locked_out_until_enabled_again() {
    let t = TestServer::start().await;
    let (bob, bob_token) = new_user(&t, "bob", "user").await;
    let r = with_token(
        &t,
        &bob_token,
        "POST",
        "/api/keys",
        Some(json!({"name": "bobs", "quota": 10})),
    )
    .await;
    let bob_key = r.json()["key"].as_str().unwrap().to_string();
    let path = format!("/api/users/{bob}");

    let r = t.api("PATCH", &path, Some(json!({"enabled": false}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    assert_error(&login(&t, "bob", PASSWORD).await, 403, "forbidden");
    // The disable revoked the token (see account.rs).
    assert_error(
        &with_token(&t, &bob_token, "GET", "/api/me", None).await,
        401,
        "unauthenticated",
    );
    assert_error(&models(&t, &bob_key).await, 403, "forbidden");
    // Nobody disables themselves.
    assert_error(
        &t.api("PATCH", "/api/users/1", Some(json!({"enabled": false})))
            .await,
        403,
        "forbidden",
    );
    assert_eq!(t.get("/api/users/1").await["enabled"], true);

    t.patch(&path, json!({"enabled": true})).await;
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 200);
    // … for good: enabled again, bob makes a new one.
    assert_error(
        &with_token(&t, &bob_token, "GET", "/api/me", None).await,
        401,
        "unauthenticated",
    );
    assert_eq!(models(&t, &bob_key).await.status, 200);
    // Renaming onto a taken name is a conflict; a free one works and signs in.
    assert_error(
        &t.api("PATCH", &path, Some(json!({"username": "root"})))
            .await,
        409,
        "conflict",
    );
    t.patch(&path, json!({"username": "robert"})).await;
    assert_eq!(login(&t, "robert", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn password_hashes_never_leave_the_server() {
    let t = TestServer::start().await;
    let mut seen = Vec::new();
    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "carol", "password": PASSWORD})),
        )
        .await;
    let id = r.json()["id"].as_i64().unwrap();
    seen.push(r);
    seen.push(t.api("GET", "/api/users", None).await);
    seen.push(t.api("GET", &format!("/api/users/{id}"), None).await);
    seen.push(
        t.api(
            "PATCH",
            &format!("/api/users/{id}"),
            Some(json!({"password": "another-long-password"})),
        )
        .await,
    );
    seen.push(t.api("GET", "/api/me", None).await);
    seen.push(login(&t, "carol", "another-long-password").await);
    seen.push(login(&t, "carol", PASSWORD).await);
    assert_eq!(seen[5].status, 200, "the new password does not work");
    assert_eq!(seen[6].status, 401, "the old password still works");
    // The hashes are there to find …
    let hash: String = t
        .db()
        .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");
    // … and no response has one.
    for r in &seen {
        let text = r.text();
        assert!(
            !text.contains("argon2") && !text.contains(&hash),
            "a password hash leaked: {text}"
        );
        assert!(!text.contains("password_hash"), "{text}");
    }
}
