//! The admin and self-service API over real HTTP: sign-in, sessions and CSRF, users, keys,
//! channels, options, the manage log and the error shape.

use crate::common::{ROOT_PASSWORD, Resp, TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

/// The upstream secret the harness gives channels (see `TestServer::channel`).
const CANARY: &str = "sk-upstream-secret-canary";
/// Password for the accounts the tests create.
const PASSWORD: &str = "a-long-enough-password";

// ---------------------------------------------------------------------------------------------
// helpers

/// A raw `POST /api/auth/login`.
async fn login(t: &TestServer, username: &str, password: &str) -> Resp {
    send(
        "POST",
        &t.url("/api/auth/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"username": username, "password": password})
                .to_string()
                .into(),
        ),
    )
    .await
}

/// A cookie session: the `name=value` pair to send back and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    /// A call with the cookie, the CSRF token and a JSON content type.
    async fn call(&self, t: &TestServer, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(t, method, path, &[("x-csrf-token", &self.csrf)], body)
            .await
    }

    /// A call with the cookie, a JSON content type and only the `extra` headers.
    async fn call_with(
        &self,
        t: &TestServer,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut headers = vec![
            ("cookie", self.cookie.as_str()),
            ("content-type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        send(
            method,
            &t.url(path),
            &headers,
            body.map(|b| Bytes::from(b.to_string())),
        )
        .await
    }
}

/// The `sluice_session=…` pair from a login response's `Set-Cookie`.
fn session_cookie(r: &Resp) -> String {
    let set = r.headers["set-cookie"].to_str().unwrap();
    let pair = set.split(';').next().unwrap().trim().to_string();
    assert!(
        pair.starts_with("sluice_session=") && pair.len() > "sluice_session=".len(),
        "{set}"
    );
    pair
}

/// Signs in with a cookie session (asserting success).
async fn sign_in(t: &TestServer, username: &str, password: &str) -> Session {
    let r = login(t, username, password).await;
    assert_eq!(r.status, 200, "login {username}: {}", r.text());
    Session {
        cookie: session_cookie(&r),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// A call with a personal access token (no cookie, no CSRF token).
async fn with_token(
    t: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let auth = format!("Bearer {token}");
    send(
        method,
        &t.url(path),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.map(|b| Bytes::from(b.to_string())),
    )
    .await
}

/// Root creates an account with `PASSWORD`; returns its id and a personal access token for it.
async fn new_user(t: &TestServer, username: &str, role: &str) -> (i64, String) {
    let v = t
        .post(
            "/api/users",
            json!({"username": username, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(v["role"], role);
    let id = v["id"].as_i64().unwrap();
    (id, t.login_token(username, PASSWORD).await)
}

/// `GET /v1/models` with an API key.
async fn models(t: &TestServer, key: &str) -> Resp {
    let auth = format!("Bearer {key}");
    send(
        "GET",
        &t.url("/v1/models"),
        &[("authorization", &auth)],
        None,
    )
    .await
}

/// A chat call that fails the test instead of hanging it when the relay never answers.
async fn chat_within(t: &TestServer, key: &str, model: &str) -> Resp {
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        t.chat(key, model, 2, false),
    )
    .await
    .unwrap_or_else(|_| panic!("the relay did not answer a {model} call within 15 s"))
}

/// The response is an error of this status and code, in the documented shape.
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let ct = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("");
    assert!(ct.starts_with("application/json"), "content type {ct:?}");
    let v = r.json();
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(e["code"], code, "{v}");
}

/// (request_id, user_id, username, content) of every `manage` (type 3) log row, oldest first.
fn manage_rows(t: &TestServer) -> Vec<(String, Option<i64>, Option<String>, String)> {
    let db = t.db();
    let mut st = db
        .prepare(
            "SELECT request_id, user_id, username, content FROM logs WHERE type = 3 ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every text or blob value in every table of the database that contains `needle`.
fn db_values_containing(t: &TestServer, needle: &str) -> Vec<String> {
    let db = t.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let mut st = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, name) in names.iter().enumerate() {
                let bytes: &[u8] = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b,
                    _ => continue,
                };
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{table}.{name}"));
                }
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// sign-in

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

// ---------------------------------------------------------------------------------------------
// users

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

// ---------------------------------------------------------------------------------------------
// keys

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

// ---------------------------------------------------------------------------------------------
// channels

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

// ---------------------------------------------------------------------------------------------
// options

/// The rows of the options table.
fn stored_options(t: &TestServer) -> Vec<(String, String)> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT key, value FROM options ORDER BY key")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The flat value of one option, as GET /api/option/export gives it.
async fn option(t: &TestServer, name: &str) -> Value {
    t.get("/api/option/export").await[name].clone()
}

#[tokio::test]
async fn options_are_listed_with_defaults_and_descriptions() {
    let t = TestServer::start().await;
    let list = t.get("/api/option").await;
    let list = list.as_array().unwrap();
    let find = |n: &str| list.iter().find(|o| o["name"] == n).cloned().unwrap();
    let r = find("log.retention_days");
    assert_eq!(
        (r["value"].clone(), r["default"].clone()),
        (json!(90), json!(90))
    );
    assert!(r["description"].as_str().unwrap().len() > 10, "{r}");
    assert_eq!(
        find("pricing.allow_unpriced_models")["value"],
        true,
        "the harness turns it on"
    );
    assert!(find("pricing.model_ratio")["value"]["gpt-4o-mini"].is_number());
    for o in list {
        assert!(o["name"].as_str().unwrap().contains('.'), "{o}");
        assert!(!o["description"].as_str().unwrap().is_empty(), "{o}");
    }
}

#[tokio::test]
async fn options_are_validated() {
    let t = TestServer::start().await;
    let v = t.get("/api/option/export").await;
    let stored = stored_options(&t);
    assert!(v["pricing.model_ratio"]["gpt-4o-mini"].is_number(), "{v}");
    assert_eq!(
        v["pricing.allow_unpriced_models"], true,
        "the harness turns it on"
    );

    for bad in [
        json!({"pricing.model_ratio": {"x": -1}}),
        json!({"pricing.group_ratio": {"default": -0.5}}),
        json!({"pricing.model_ratio": {"": 1}}),
        json!({"pricing.model_ratio": "cheap"}),
        json!({"pricing.allow_unpriced_models": "yes"}),
        json!({"no_such_option": 1}),
        json!({"pricing.no_such_option": 1}),
        json!({"log.retention_days": -1}),
        json!({"relay.retries": 11}),
        json!({"display.currency": "EUR"}),
        json!({"pricing.allow_unpriced_models": false, "no_such_option": 1}),
    ] {
        let r = t.api("PUT", "/api/option", Some(bad.clone())).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = t
        .api("PUT", "/api/option", Some(json!({"relay.retries": 11})))
        .await;
    assert!(
        r.text().contains("relay.retries"),
        "names the option: {}",
        r.text()
    );
    // Nothing of the refused changes stuck, in memory or in the database.
    assert_eq!(t.get("/api/option/export").await, v);
    assert_eq!(stored_options(&t), stored);
}

#[tokio::test]
async fn option_changes_apply_live() {
    let t = TestServer::start().await;
    t.channel(&["unpriced-model"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    assert_eq!(chat_within(&t, &key, "unpriced-model").await.status, 200);

    let v = t
        .put(
            "/api/option",
            json!({"pricing.allow_unpriced_models": false}),
        )
        .await;
    assert_eq!(v["changed"], json!(["pricing.allow_unpriced_models"]));
    assert_eq!(v["options"]["pricing.allow_unpriced_models"], false);
    assert!(
        v["options"]["pricing.model_ratio"]["gpt-4o-mini"].is_number(),
        "other options were dropped: {v}"
    );
    assert_eq!(option(&t, "pricing.allow_unpriced_models").await, false);
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_error(&r, 403, "forbidden");

    t.put(
        "/api/option",
        json!({"pricing.allow_unpriced_models": true}),
    )
    .await;
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A price applies to the next call: 0.001 USD per call = 500 quota units.
    t.put(
        "/api/option",
        json!({"pricing.model_price": {"unpriced-model": 0.001}}),
    )
    .await;
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1), (2, 500));

    // A relay limit applies to the next call too.
    t.put("/api/option", json!({"relay.max_body_bytes": 1024}))
        .await;
    let big = "x".repeat(4096);
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "unpriced-model", "messages": [{"role": "user", "content": big}]}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
}

#[tokio::test]
async fn options_export_and_import_round_trip() {
    let t = TestServer::start().await;
    t.put(
        "/api/option",
        json!({"log.retention_days": 30, "display.currency": "CNY", "pricing.group_ratio": {"default": 1, "vip": 0.5}}),
    )
    .await;
    let doc = t.get("/api/option/export").await;
    assert_eq!(doc["log.retention_days"], 30);
    assert_eq!(doc["display.currency"], "CNY");

    // Another instance takes the document whole.
    let u = TestServer::start().await;
    let r = u.api("PUT", "/api/option/import", Some(doc.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let changed = r.json()["changed"].as_array().unwrap().clone();
    assert!(
        changed.contains(&json!("log.retention_days")),
        "{changed:?}"
    );
    assert_eq!(u.get("/api/option/export").await, doc);
    // Importing again changes nothing and writes no manage row.
    let before = manage_rows(&u).len();
    let r = u.api("PUT", "/api/option/import", Some(doc)).await;
    assert_eq!(r.json()["changed"], json!([]));
    assert_eq!(manage_rows(&u).len(), before);
    // Only root may export secrets.
    let (_, bob) = new_user(&u, "bobadmin", "admin").await;
    let r = with_token(&u, &bob, "GET", "/api/option/export?secrets=include", None).await;
    assert_error(&r, 403, "forbidden");
}

// ---------------------------------------------------------------------------------------------
// the manage log

#[tokio::test]
async fn admin_changes_write_manage_log_rows() {
    let t = TestServer::start().await;
    let before = manage_rows(&t).len();

    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "dora", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201);
    let uid = r.json()["id"].as_i64().unwrap();
    let rid = r.request_id();
    let r = t
        .api(
            "PATCH",
            &format!("/api/users/{uid}"),
            Some(json!({"quota": 42})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .api(
            "POST",
            "/api/channels",
            Some(json!({"name": "logged", "base_url": "https://example.com/v1", "api_key": CANARY, "models": ["m"]})),
        )
        .await;
    assert_eq!(r.status, 201);
    let rid_channel = r.request_id();
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({"pricing.model_ratio": {"m": 2}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let rid_options = r.request_id();
    let (kid, _) = t.key(json!({"quota": 1})).await;
    let r = t.api("DELETE", &format!("/api/keys/{kid}"), None).await;
    assert_eq!(r.status, 204);
    let rid_key = r.request_id();
    let r = t.api("DELETE", &format!("/api/users/{uid}"), None).await;
    assert_eq!(r.status, 204);
    let rid_delete = r.request_id();

    let rows = manage_rows(&t);
    assert_eq!(rows.len(), before + 7, "{rows:#?}");
    // Every row names the admin who acted.
    for (_, user_id, username, content) in &rows[before..] {
        assert_eq!(*user_id, Some(1), "{content}");
        assert_eq!(username.as_deref(), Some("root"), "{content}");
    }
    // Rows are found by the request id of the call that made them (see also the ignored
    // `user_patch_manage_row_carries_the_request_id`).
    let row = |rid: &str| {
        rows.iter()
            .find(|r| r.0 == rid)
            .unwrap_or_else(|| panic!("no manage row for request {rid}: {rows:#?}"))
            .3
            .clone()
    };
    assert!(row(&rid).contains("dora"), "{}", row(&rid));
    assert!(
        row(&rid_channel).contains("logged"),
        "{}",
        row(&rid_channel)
    );
    assert!(
        row(&rid_options).contains("model_ratio"),
        "{}",
        row(&rid_options)
    );
    assert!(row(&rid_key).contains("deleted key"), "{}", row(&rid_key));
    assert!(
        row(&rid_delete).contains("deleted user \"dora\""),
        "{}",
        row(&rid_delete)
    );
    let patched: Vec<_> = rows
        .iter()
        .filter(|r| r.3.contains("updated user \"dora\""))
        .collect();
    assert_eq!(patched.len(), 1, "{rows:#?}");
    assert!(patched[0].3.contains("42"), "{:?}", patched[0]);
    // The type is stored as the number 3.
    let t3: i64 = t
        .db()
        .query_row("SELECT type FROM logs WHERE request_id = ?1", [&rid], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(t3, 3);

    // A refused change writes nothing.
    let n = manage_rows(&t).len();
    assert_error(
        &t.api("PATCH", "/api/users/1", Some(json!({"quota": -1})))
            .await,
        400,
        "invalid_request",
    );
    assert_eq!(manage_rows(&t).len(), n);
}

// Regression: the row was once built on the writer thread, outside the request's task-local
// request id, and carried "SYSTEM".
#[tokio::test]
async fn user_patch_manage_row_carries_the_request_id() {
    let t = TestServer::start().await;
    let (uid, _) = new_user(&t, "erin", "user").await;
    let r = t
        .api(
            "PATCH",
            &format!("/api/users/{uid}"),
            Some(json!({"quota": 42})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The manage row, and the top-up row carrying the balance difference.
    let mut rows = t.log_rows(&r.request_id());
    rows.sort();
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        vec![(1, 42), (3, 0)],
        "rows under the PATCH's request id {}: {:#?}",
        r.request_id(),
        manage_rows(&t)
    );
    assert!(
        manage_rows(&t).iter().all(|r| r.0 != "SYSTEM"),
        "{:#?}",
        manage_rows(&t)
    );
}

// ---------------------------------------------------------------------------------------------
// request errors

#[tokio::test]
async fn bad_bodies_and_unknown_routes_get_json_errors() {
    let t = TestServer::start().await;
    let auth = format!("Bearer {}", t.admin);
    let post_users = |ct: &'static str, body: &'static str| {
        let auth = auth.clone();
        let url = t.url("/api/users");
        async move {
            send(
                "POST",
                &url,
                &[("authorization", &auth), ("content-type", ct)],
                Some(Bytes::from(body)),
            )
            .await
        }
    };
    assert_error(
        &post_users("application/json", "{not json").await,
        400,
        "invalid_request",
    );
    assert_error(
        &post_users("application/json", "").await,
        400,
        "invalid_request",
    );
    assert_error(
        &post_users("application/json", "[1, 2]").await,
        400,
        "invalid_request",
    );
    let valid = r#"{"username": "ted", "password": "a-long-enough-password"}"#;
    assert_error(
        &post_users("text/plain", valid).await,
        415,
        "unsupported_media_type",
    );
    assert_error(
        &post_users("application/x-www-form-urlencoded", "username=ted").await,
        415,
        "unsupported_media_type",
    );
    assert_eq!(
        t.get("/api/users").await.as_array().unwrap().len(),
        1,
        "a refused body made an account"
    );
    // With a charset it is still JSON.
    let r = post_users("application/json; charset=utf-8", valid).await;
    assert_eq!(r.status, 201, "{}", r.text());

    for (method, path) in [
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/api/users/1/keys"),
    ] {
        let r = t.api(method, path, None).await;
        assert_error(&r, 404, "not_found");
    }
    // A known path with another method: 405 with the allowed ones.
    let r = t.api("DELETE", "/api/option", None).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, PUT");
    // Unknown routes need no auth to be told apart (and are JSON even without it).
    let r = send("GET", &t.url("/api/nope"), &[], None).await;
    assert_error(&r, 404, "not_found");
    // Every response has a request id.
    assert_eq!(r.request_id().len(), 26);
}
