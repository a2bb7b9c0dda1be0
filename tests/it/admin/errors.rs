//! Request errors: JSON bodies in the documented shape.

use super::*;

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
