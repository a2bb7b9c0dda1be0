//! One's own account and the end of sign-ins: `POST /api/me/password`, the first-run
//! `must_change_password`, and sessions and access tokens ended by a password change or a
//! disable (issue 11, item 10).

use crate::common::{ROOT_PASSWORD, Resp, TestServer, send, with_token};
use bytes::Bytes;
use serde_json::{Value, json};

const PASSWORD: &str = "a-long-enough-password";
const NEW_PASSWORD: &str = "another-long-password";

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

/// A cookie session.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    async fn start(t: &TestServer, username: &str, password: &str) -> Session {
        let r = login(t, username, password).await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text());
        let cookie = r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        Session {
            cookie,
            csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn call(&self, t: &TestServer, method: &str, path: &str, body: Option<Value>) -> Resp {
        send(
            method,
            &t.url(path),
            &[
                ("cookie", &self.cookie),
                ("x-csrf-token", &self.csrf),
                ("content-type", "application/json"),
            ],
            body.map(|b| Bytes::from(b.to_string())),
        )
        .await
    }

    /// A personal access token made from this session.
    async fn token(&self, t: &TestServer) -> String {
        let r = self.call(t, "POST", "/api/me/access-token", None).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }
}

fn change(current: &str, new: &str) -> Option<Value> {
    Some(json!({"current_password": current, "new_password": new}))
}

/// Root makes a plain user with `PASSWORD`; returns its id.
async fn new_user(t: &TestServer, username: &str) -> i64 {
    t.post(
        "/api/users",
        json!({"username": username, "password": PASSWORD}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

fn manage_rows(t: &TestServer) -> Vec<(Option<i64>, String)> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT user_id, content FROM logs WHERE type = 3 ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn own_password_change_keeps_this_session_and_ends_the_others_and_the_token() {
    let t = TestServer::start().await;
    let bob = new_user(&t, "bob").await;
    let here = Session::start(&t, "bob", PASSWORD).await;
    let elsewhere = Session::start(&t, "bob", PASSWORD).await;
    let token = elsewhere.token(&t).await;
    // Root's sign-ins are not touched by bob's change.
    let root = Session::start(&t, "root", ROOT_PASSWORD).await;

    let r = here
        .call(
            &t,
            "POST",
            "/api/me/password",
            change(PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"ok": true}));

    assert_eq!(here.call(&t, "GET", "/api/me", None).await.status, 200);
    assert_eq!(elsewhere.call(&t, "GET", "/api/me", None).await.status, 401);
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        401
    );
    assert_eq!(root.call(&t, "GET", "/api/me", None).await.status, 200);
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 401);
    assert_eq!(login(&t, "bob", NEW_PASSWORD).await.status, 200);
    let rows = manage_rows(&t);
    let (uid, content) = rows.last().unwrap();
    assert_eq!(*uid, Some(bob));
    assert!(
        content.contains("changed own password")
            && content.contains("ended 1 session(s) and the access token"),
        "{content}"
    );
    assert!(!content.contains(NEW_PASSWORD) && !content.contains(PASSWORD));
}

#[tokio::test]
async fn own_password_change_with_the_token_ends_every_session_and_the_token() {
    let t = TestServer::start().await;
    new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    let token = s.token(&t).await;
    let r = with_token(
        &t,
        &token,
        "POST",
        "/api/me/password",
        change(PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        401
    );
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 401);
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_counts_toward_the_sign_in_lockout() {
    let t = TestServer::start().await;
    new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    for _ in 0..5 {
        let r = s
            .call(
                &t,
                "POST",
                "/api/me/password",
                change("not-the-password", NEW_PASSWORD),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "forbidden");
        assert!(
            r.text().contains("current password is wrong"),
            "{}",
            r.text()
        );
    }
    // Locked now: even the right password waits, and so does a sign-in.
    let r = s
        .call(
            &t,
            "POST",
            "/api/me/password",
            change(PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 429);
    // Nothing changed, nobody was signed out.
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 200);
    assert!(
        !manage_rows(&t)
            .iter()
            .any(|(_, c)| c.contains("changed own password"))
    );
}

#[tokio::test]
async fn weak_unchanged_or_malformed_new_passwords_are_400_and_change_nothing() {
    let t = TestServer::start().await;
    new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    let other = Session::start(&t, "bob", PASSWORD).await;
    for body in [
        change(PASSWORD, "short"),
        change(PASSWORD, &"x".repeat(1025)),
        change(PASSWORD, PASSWORD),
        Some(json!({"current_password": PASSWORD})),
        Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1})),
        Some(json!({"current_password": PASSWORD, "new_password": 12345678})),
    ] {
        let r = s.call(&t, "POST", "/api/me/password", body.clone()).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_request");
    }
    assert_eq!(other.call(&t, "GET", "/api/me", None).await.status, 200);
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 200);
    // Cookie sessions need the CSRF token here as on every state change.
    let r = send(
        "POST",
        &t.url("/api/me/password"),
        &[("cookie", &s.cookie), ("content-type", "application/json")],
        Some(change(PASSWORD, NEW_PASSWORD).unwrap().to_string().into()),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn root_must_change_the_generated_password_and_the_file_goes_when_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir, |c| c.root_password = sluice::secret::Secret::new("")).await;
    let file = t.dir.path().join("initial-root-password");
    let generated = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let me = t.get("/api/me").await;
    assert_eq!(me["must_change_password"], true, "{me}");
    // Only root is asked.
    new_user(&t, "bob").await;
    let bob = Session::start(&t, "bob", PASSWORD).await;
    assert_eq!(
        bob.call(&t, "GET", "/api/me", None).await.json()["must_change_password"],
        false
    );

    let root = Session::start(&t, "root", &generated).await;
    let r = root
        .call(
            &t,
            "POST",
            "/api/me/password",
            change(&generated, NEW_PASSWORD),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!file.exists(), "the generated password file is still there");
    let me = root.call(&t, "GET", "/api/me", None).await.json();
    assert_eq!(me["must_change_password"], false, "{me}");
    assert_eq!(login(&t, "root", &generated).await.status, 401);
}

#[tokio::test]
async fn a_configured_root_password_asks_for_no_change() {
    let t = TestServer::start().await;
    assert_eq!(t.get("/api/me").await["must_change_password"], false);
}

#[tokio::test]
async fn an_admin_setting_a_password_ends_that_accounts_sessions_and_token() {
    let t = TestServer::start().await;
    let bob = new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    let token = s.token(&t).await;
    t.patch(
        &format!("/api/users/{bob}"),
        json!({"password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 401);
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        401
    );
    assert_eq!(login(&t, "bob", NEW_PASSWORD).await.status, 200);
    let rows = manage_rows(&t);
    assert!(
        rows.last()
            .unwrap()
            .1
            .contains("password, ended 1 session(s) and the access token"),
        "{rows:?}"
    );
    // Root (the actor) stays signed in.
    assert_eq!(t.api("GET", "/api/me", None).await.status, 200);
}

#[tokio::test]
async fn a_disable_ends_sessions_and_the_token_for_good() {
    let t = TestServer::start().await;
    let bob = new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    let token = s.token(&t).await;
    let path = format!("/api/users/{bob}");
    t.patch(&path, json!({"enabled": false})).await;
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 401);
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        401
    );
    // Enabled again, the old credentials stay dead: bob signs in afresh.
    t.patch(&path, json!({"enabled": true})).await;
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 401);
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        401
    );
    assert_eq!(login(&t, "bob", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn other_changes_leave_sign_ins_alone() {
    let t = TestServer::start().await;
    let bob = new_user(&t, "bob").await;
    let s = Session::start(&t, "bob", PASSWORD).await;
    let token = s.token(&t).await;
    t.patch(
        &format!("/api/users/{bob}"),
        json!({"group": "vip", "quota": 5, "enabled": true}),
    )
    .await;
    assert_eq!(s.call(&t, "GET", "/api/me", None).await.status, 200);
    assert_eq!(
        with_token(&t, &token, "GET", "/api/me", None).await.status,
        200
    );
}
