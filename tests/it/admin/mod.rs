//! The admin and self-service API over real HTTP: sign-in, sessions and CSRF, users, keys,
//! channels, options, the manage log and the error shape.

use crate::common::{ROOT_PASSWORD, Resp, TestServer, send, with_token};

mod channels;
mod errors;
mod keys;
mod manage_log;
mod options;
mod signin;
mod users;
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
