//! Sign-in, sessions and CSRF.

use super::*;

#[tokio::test]
async fn login_sets_a_strict_http_only_session_cookie() {
    let t = TestServer::start().await;
    let r = login(&t, "root", ROOT_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("sluice_session="), "{set}");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    let v = r.json();
    assert_eq!(v["user"]["username"], "root");
    assert_eq!(v["user"]["role"], "root");
    let csrf = v["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 16, "{csrf}");
    // The cookie is a working session.
    let s = Session {
        cookie: session_cookie(&r),
        csrf: csrf.to_string(),
    };
    let me = s.call_with(&t, "GET", "/api/me", &[], None).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["username"], "root");
    assert_eq!(me.json()["csrf_token"], csrf);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let t = TestServer::start().await;
    let wrong = login(&t, "root", "not-the-password").await;
    assert_error(&wrong, 401, "unauthenticated");
    assert!(wrong.headers.get("set-cookie").is_none());
    let unknown = login(&t, "nobody-here", "not-the-password").await;
    assert_error(&unknown, 401, "unauthenticated");
    assert!(unknown.headers.get("set-cookie").is_none());
    // Nothing tells the two apart.
    assert_eq!(
        wrong.json()["error"]["message"],
        unknown.json()["error"]["message"]
    );
    // A missing field is a bad request, not a failed sign-in.
    let r = send(
        "POST",
        &t.url("/api/auth/login"),
        &[("content-type", "application/json")],
        Some(Bytes::from(json!({"username": "root"}).to_string())),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password() {
    let t = TestServer::start().await;
    for i in 0..5 {
        let r = login(&t, "root", "wrong-password").await;
        assert_error(&r, 401, "unauthenticated");
        assert!(
            r.headers.get("retry-after").is_none(),
            "attempt {i} already throttled"
        );
    }
    let r = login(&t, "root", ROOT_PASSWORD).await;
    assert_error(&r, 429, "rate_limit_exceeded");
    assert!(r.headers.get("set-cookie").is_none());
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&secs), "Retry-After: {secs}");
}

#[tokio::test]
async fn me_shows_the_signed_in_account() {
    let t = TestServer::start().await;
    let s = sign_in(&t, "root", ROOT_PASSWORD).await;
    let r = s.call_with(&t, "GET", "/api/me", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["id"], 1);
    assert_eq!(v["username"], "root");
    assert_eq!(v["role"], "root");
    assert_eq!(v["group"], "default");
    assert!(v["quota"].is_i64(), "{v}");
    assert!(v["used_quota"].is_i64(), "{v}");
    // The same with the access token (no csrf_token then).
    let r = with_token(&t, &t.admin, "GET", "/api/me", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["username"], "root");
    assert!(r.json().get("csrf_token").is_none());

    // Without credentials, or with bad ones: 401.
    let r = send("GET", &t.url("/api/me"), &[], None).await;
    assert_error(&r, 401, "unauthenticated");
    let r = send(
        "GET",
        &t.url("/api/me"),
        &[("cookie", "sluice_session=made-up")],
        None,
    )
    .await;
    assert_error(&r, 401, "unauthenticated");
    let r = with_token(&t, "pat-made-up", "GET", "/api/me", None).await;
    assert_error(&r, 401, "unauthenticated");
}

// ---------------------------------------------------------------------------------------------
// CSRF and sessions

#[tokio::test]
async fn cookie_changes_need_the_csrf_token_and_the_same_origin() {
    let t = TestServer::start().await;
    let s = sign_in(&t, "root", ROOT_PASSWORD).await;
    let body = || Some(json!({"name": "k", "quota": 100}));

    let r = s.call_with(&t, "POST", "/api/keys", &[], body()).await;
    assert_error(&r, 403, "forbidden");
    let r = s
        .call_with(
            &t,
            "POST",
            "/api/keys",
            &[("x-csrf-token", "not-the-token")],
            body(),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = s
        .call_with(
            &t,
            "POST",
            "/api/keys",
            &[("x-csrf-token", &s.csrf), ("origin", "http://evil.example")],
            body(),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    // None of the refused calls made a key.
    assert!(t.get("/api/keys").await.as_array().unwrap().is_empty());

    let r = s.call(&t, "POST", "/api/keys", body()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Our own origin is fine too.
    let r = s
        .call_with(
            &t,
            "POST",
            "/api/keys",
            &[("x-csrf-token", &s.csrf), ("origin", &t.base)],
            body(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Reads need no token.
    let r = s.call_with(&t, "GET", "/api/keys", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 2);

    // A bearer access token needs no CSRF token (browsers do not send it on their own).
    let r = with_token(&t, &t.admin, "POST", "/api/keys", body()).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn logout_ends_the_session() {
    let t = TestServer::start().await;
    let s = sign_in(&t, "root", ROOT_PASSWORD).await;
    let other = sign_in(&t, "root", ROOT_PASSWORD).await;
    // Logging out is a change: it needs the CSRF token too.
    let r = s.call_with(&t, "POST", "/api/auth/logout", &[], None).await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(
        s.call_with(&t, "GET", "/api/me", &[], None).await.status,
        200
    );

    let r = s.call(&t, "POST", "/api/auth/logout", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("sluice_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    let r = s.call_with(&t, "GET", "/api/me", &[], None).await;
    assert_error(&r, 401, "unauthenticated");
    let r = s
        .call(
            &t,
            "POST",
            "/api/keys",
            Some(json!({"name": "k", "quota": 1})),
        )
        .await;
    assert_error(&r, 401, "unauthenticated");
    // Only that session ended.
    assert_eq!(
        other
            .call_with(&t, "GET", "/api/me", &[], None)
            .await
            .status,
        200
    );
}
