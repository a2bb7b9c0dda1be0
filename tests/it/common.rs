//! The test harness: a real sluice (in-process, port 0, temp data dir, real SQLite file)
//! in front of the project's mock upstream, both over loopback HTTP.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sluice::config::Config;
use sluice::mock::MockUpstream;
use sluice::state::AppState;
use std::sync::Arc;
use tokio::net::TcpListener;

pub const ROOT_PASSWORD: &str = "root-password-for-tests";

pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn request_id(&self) -> String {
        self.headers["x-request-id"].to_str().unwrap().to_string()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One request over loopback; the whole body is read.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Bytes>) -> Resp {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body.unwrap_or_default())).unwrap();
    let resp = client().request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

/// A call with a personal access token (no cookie, no CSRF token).
pub async fn with_token(
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

/// Signs in at `base` and creates a personal access token: (token, session cookie).
pub async fn sign_in(base: &str, user: &str, password: &str) -> (String, String) {
    let r = send(
        "POST",
        &format!("{base}/api/auth/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"username": user, "password": password})
                .to_string()
                .into(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "login: {}", r.text());
    let cookie = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let r = send(
        "POST",
        &format!("{base}/api/me/access-token"),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(r.status, 201, "access token: {}", r.text());
    (r.json()["token"].as_str().unwrap().to_string(), cookie)
}

pub struct TestServer {
    pub base: String,
    pub mock: MockUpstream,
    pub state: Arc<AppState>,
    pub dir: tempfile::TempDir,
    /// Root's personal access token.
    pub admin: String,
    /// The rate limiter's clock: it stands still unless a test moves it, so no limit refills
    /// and no refusal-row window passes on wall time.
    pub clock: sluice::ratelimit::ManualClock,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Defaults for tests: unpriced models allowed at ratio 1 (so quota = prompt + completion),
    /// short timeouts.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_full(tempfile::tempdir().unwrap(), tweak, json!({})).await
    }

    /// Starts with run-time options (`module.field` → value) stored before the server reads them.
    pub async fn start_with_options(options: Value) -> TestServer {
        Self::start_full(tempfile::tempdir().unwrap(), |_| {}, options).await
    }

    /// Starts on an existing data directory: after [`TestServer::stop`], this is a restart
    /// on the same database.
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_full(dir, tweak, json!({})).await
    }

    async fn start_full(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut Config),
        options: Value,
    ) -> TestServer {
        let mut opts = json!({
            "pricing.allow_unpriced_models": true,
            "relay.first_byte_timeout_ms": 2000,
            "relay.idle_timeout_ms": 2000,
            "relay.retries": 1,
        });
        for (k, v) in options.as_object().unwrap() {
            opts[k] = v.clone();
        }
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.root_password = sluice::secret::Secret::new(ROOT_PASSWORD);
        config.shutdown_grace_secs = 10;
        tweak(&mut config);
        let mock = MockUpstream::start(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let cfg = config.clone();
        let store = tokio::task::spawn_blocking(move || {
            let store = sluice::app::open_store(&cfg).unwrap();
            sluice::app::ensure_root(&store, &cfg).unwrap();
            store
                .writer
                .exec_blocking(move |c| {
                    for (k, v) in opts.as_object().unwrap() {
                        sluice::store::options::set(c, k, &v.to_string(), 0)?;
                    }
                    Ok(())
                })
                .unwrap();
            store
        })
        .await
        .unwrap();
        // An empty configured password makes sluice generate one (the first-run case).
        let root_password = if config.root_password.is_empty() {
            let file = config
                .data_dir
                .join(sluice::auth::INITIAL_ROOT_PASSWORD_FILE);
            std::fs::read_to_string(file).unwrap().trim().to_string()
        } else {
            config.root_password.expose().to_string()
        };
        let clock = sluice::ratelimit::ManualClock::default();
        let limiter = sluice::ratelimit::Limiter::with_clock(Box::new(clock.clone()));
        let state = sluice::app::build_state_with(config, store, limiter)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sluice::app::run(
            state.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
            sluice::systemd::Notifier::disabled(),
        ));
        let mut t = TestServer {
            base,
            mock,
            state,
            dir,
            admin: String::new(),
            clock,
            shutdown: Some(tx),
            task: Some(task),
        };
        t.admin = t.login_token("root", &root_password).await;
        t
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in and returns a personal access token for the account.
    pub async fn login_token(&self, user: &str, password: &str) -> String {
        sign_in(&self.base, user, password).await.0
    }

    /// An admin API call as root.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {}", self.admin);
        send(
            method,
            &self.url(path),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.map(|b| Bytes::from(b.to_string())),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let r = self.api("PUT", path, Some(body)).await;
        assert!(r.status < 300, "PUT {path}: {} {}", r.status, r.text());
        r.json()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.api("POST", path, Some(body)).await;
        assert!(r.status < 300, "POST {path}: {} {}", r.status, r.text());
        r.json()
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        let r = self.api("PATCH", path, Some(body)).await;
        assert!(r.status < 300, "PATCH {path}: {} {}", r.status, r.text());
        r.json()
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.api("GET", path, None).await;
        assert!(r.status < 300, "GET {path}: {} {}", r.status, r.text());
        r.json()
    }

    /// A channel to the mock serving `models`; returns its id.
    pub async fn channel(&self, models: &[&str], extra: Value) -> i64 {
        let mut body = json!({
            "name": "mock",
            "base_url": self.mock.base_url(),
            "api_key": "sk-upstream-secret-canary",
            "models": models,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/api/channels", body).await["id"]
            .as_i64()
            .unwrap()
    }

    /// Sets root's balance.
    pub async fn fund(&self, quota: i64) {
        self.patch("/api/users/1", json!({"quota": quota})).await;
    }

    /// A key for root with `body` (e.g. {"quota": 100} or {"unlimited": true}); returns (id, secret).
    pub async fn key(&self, body: Value) -> (i64, String) {
        let mut b = json!({"name": "test"});
        if let (Some(b), Some(e)) = (b.as_object_mut(), body.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let v = self.post("/api/keys", b).await;
        (
            v["id"].as_i64().unwrap(),
            v["key"].as_str().unwrap().to_string(),
        )
    }

    /// A relay call with an API key.
    pub async fn relay(&self, key: &str, path: &str, body: Value) -> Resp {
        let auth = format!("Bearer {key}");
        send(
            "POST",
            &self.url(path),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(Bytes::from(body.to_string())),
        )
        .await
    }

    /// A chat completion with one user message "hello" (7 prompt tokens by both the mock's
    /// rule and tiktoken) and `max_tokens` completion tokens.
    pub async fn chat(&self, key: &str, model: &str, max_tokens: u64, stream: bool) -> Resp {
        self.relay(
            key,
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
                   "max_tokens": max_tokens, "stream": stream}),
        )
        .await
    }

    /// A read connection to the database file, once the log journal is folded (as every
    /// read through the server is): the rows and balances of every call made so far are in
    /// `logs` and the balance columns.
    pub fn db(&self) -> rusqlite::Connection {
        self.state.store.writer.fold_blocking().unwrap();
        rusqlite::Connection::open(self.dir.path().join("sluice.db")).unwrap()
    }

    pub fn user_balance(&self, id: i64) -> (i64, i64) {
        self.db()
            .query_row(
                "SELECT quota, used_quota FROM users WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    pub fn key_balance(&self, id: i64) -> (i64, i64) {
        self.db()
            .query_row(
                "SELECT remain_quota, used_quota FROM api_keys WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// (type, quota, status, prompt, completion, usage_source) of the log rows of a request.
    pub fn log_rows(&self, request_id: &str) -> Vec<(i64, i64, i64, i64, i64, Option<String>)> {
        let db = self.db();
        let mut st = db
            .prepare("SELECT type, quota, COALESCE(status, 0), prompt_tokens, completion_tokens, usage_source FROM logs WHERE request_id = ?1")
            .unwrap();
        st.query_map([request_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Sum of consume charges of a user.
    pub fn charged(&self, user_id: i64) -> i64 {
        self.db()
            .query_row(
                "SELECT COALESCE(SUM(quota),0) FROM logs WHERE type = 2 AND user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Waits until every relay task (including streams drained after a client left) is done.
    pub async fn relays_idle(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            self.state.relays.wait_idle(),
        )
        .await
        .expect("relays did not finish");
    }

    /// Graceful stop: drains, flushes the writer, checkpoints.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.dir
    }
}
