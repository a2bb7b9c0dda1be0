//! CORS for browser front-ends on the relay routes (issue 11, item 16): off by default, only
//! listed origins, preflights without a key, and never on `/api`.

use crate::common::{Resp, TestServer, send};
use serde_json::json;

const PAGE: &str = "https://chat.example.com";
const OTHER: &str = "https://evil.example.net";

async fn preflight(t: &TestServer, path: &str, origin: &str, method: &str) -> Resp {
    send(
        "OPTIONS",
        &t.url(path),
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            (
                "access-control-request-headers",
                "authorization, content-type, x-stainless-os",
            ),
        ],
        None,
    )
    .await
}

/// A chat call with the key, as a page at `origin` makes it.
async fn chat_from(t: &TestServer, key: &str, origin: &str, stream: bool) -> Resp {
    let auth = format!("Bearer {key}");
    send(
        "POST",
        &t.url("/v1/chat/completions"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
            ("origin", origin),
        ],
        Some(
            json!({"model": "m", "messages": [{"role": "user", "content": "hello"}],
                   "max_tokens": 3, "stream": stream})
            .to_string()
            .into(),
        ),
    )
    .await
}

fn acao(r: &Resp) -> Option<&str> {
    r.headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

async fn server_with_key() -> (TestServer, String) {
    let t = TestServer::start().await;
    t.channel(&["m"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    (t, key)
}

#[tokio::test]
async fn off_by_default_nothing_answers_cross_origin() {
    let (t, key) = server_with_key().await;
    let r = preflight(&t, "/v1/chat/completions", PAGE, "POST").await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(acao(&r), None);
    let r = chat_from(&t, &key, PAGE, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(acao(&r), None);
}

#[tokio::test]
async fn a_listed_origin_gets_preflights_without_a_key_and_readable_answers() {
    let (t, key) = server_with_key().await;
    t.put("/api/option", json!({"cors.allowed_origins": [PAGE]}))
        .await;

    let r = preflight(&t, "/v1/chat/completions", PAGE, "POST").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(acao(&r), Some(PAGE));
    let h = |n: &str| r.headers[n].to_str().unwrap().to_string();
    assert_eq!(h("access-control-allow-methods"), "POST, OPTIONS");
    assert_eq!(
        h("access-control-allow-headers"),
        "authorization, content-type, x-stainless-os"
    );
    assert_eq!(h("access-control-max-age"), "600");
    assert_eq!(h("vary"), "Origin");
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    let r = preflight(&t, "/v1/models", PAGE, "GET").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-allow-methods"], "GET, OPTIONS");

    // The answers themselves, plain, streamed and refused, carry the origin.
    for stream in [false, true] {
        let r = chat_from(&t, &key, PAGE, stream).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(acao(&r), Some(PAGE));
        let expose = r.headers["access-control-expose-headers"].to_str().unwrap();
        assert!(
            expose.contains("x-request-id") && expose.contains("x-ratelimit-remaining-requests")
        );
    }
    let r = chat_from(&t, "sk-not-a-key", PAGE, false).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        acao(&r),
        Some(PAGE),
        "the page must be able to read the error"
    );

    // max-age follows its option.
    t.put("/api/option", json!({"cors.max_age_secs": 60})).await;
    let r = preflight(&t, "/v1/chat/completions", PAGE, "POST").await;
    assert_eq!(r.headers["access-control-max-age"], "60");
}

#[tokio::test]
async fn an_unlisted_origin_is_refused_and_api_routes_never_answer_cross_origin() {
    let (t, key) = server_with_key().await;
    t.put("/api/option", json!({"cors.allowed_origins": [PAGE]}))
        .await;
    let r = preflight(&t, "/v1/chat/completions", OTHER, "POST").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(acao(&r), None);
    // A look-alike that merely starts with the allowed origin is another origin.
    let r = preflight(
        &t,
        "/v1/chat/completions",
        "https://chat.example.com.evil.net",
        "POST",
    )
    .await;
    assert_eq!(r.status, 403);
    // Without a browser's preflight there is nothing to refuse, but the answer is not readable
    // by the other page.
    let r = chat_from(&t, &key, OTHER, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(acao(&r), None);

    // Even with every origin allowed, /api stays same-site.
    t.put("/api/option", json!({"cors.allowed_origins": ["*"]}))
        .await;
    let r = preflight(&t, "/v1/chat/completions", OTHER, "POST").await;
    assert_eq!(r.status, 204);
    assert_eq!(acao(&r), Some("*"));
    for path in ["/api/me", "/api/keys", "/api/auth/login"] {
        let r = preflight(&t, path, OTHER, "POST").await;
        assert_eq!(acao(&r), None, "{path}");
        assert_ne!(r.status, 204, "{path}");
    }
    let auth = format!("Bearer {}", t.admin);
    let r = send(
        "GET",
        &t.url("/api/me"),
        &[("authorization", &auth), ("origin", OTHER)],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(acao(&r), None);
}

#[tokio::test]
async fn origins_must_be_given_as_browsers_send_them() {
    let t = TestServer::start().await;
    for bad in [
        json!(["https://chat.example.com/"]),
        json!(["chat.example.com"]),
        json!(["https://chat.example.com/app"]),
        json!("https://chat.example.com"),
    ] {
        let r = t
            .api(
                "PUT",
                "/api/option",
                Some(json!({"cors.allowed_origins": bad})),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("cors.allowed_origins"), "{}", r.text());
    }
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({"cors.max_age_secs": 86_401})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
