//! `GET` / `DELETE /v1/responses/{id}`: passed to the channel that created the response, for
//! the user whose key created it; anyone else, and any id sluice did not see created, a 404.

use super::{priced, responses};
use crate::common::{TestServer, send};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

async fn call(t: &TestServer, method: &str, key: &str, id: &str) -> crate::common::Resp {
    let auth = format!("Bearer {key}");
    send(
        method,
        &t.url(&format!("/v1/responses/{id}")),
        &[("authorization", &auth)],
        None,
    )
    .await
}

/// A key of a second user, "ivy".
async fn other_users_key(t: &TestServer) -> String {
    t.post(
        "/api/users",
        json!({"username": "ivy", "password": PASSWORD, "quota": 1_000_000}),
    )
    .await;
    let tok = t.login_token("ivy", PASSWORD).await;
    let r = crate::common::with_token(
        t,
        &tok,
        "POST",
        "/api/keys",
        Some(json!({"name": "ivykey", "unlimited": true})),
    )
    .await;
    r.json()["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_stored_response_is_read_and_deleted_through_its_channel_by_its_owner_only() {
    let (t, key) = priced().await;
    // Two channels serve the model; the response lives at the one that made it.
    let a = t.channel(&["gpt-x"], json!({"name": "a"})).await;
    t.channel(&["gpt-y"], json!({"name": "b"})).await;
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-x", "input": "hi", "max_output_tokens": 3}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    // A streamed one is remembered too (its id from response.created).
    let s = responses(
        &t,
        &key,
        json!({"model": "gpt-x", "input": "hi", "max_output_tokens": 3, "stream": true}),
    )
    .await;
    let sid = super::sse(&s)[0].1["response"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.relays_idle().await;

    // The owner's other key reads it.
    let (_, key2) = t.key(json!({"unlimited": true})).await;
    let g = call(&t, "GET", &key2, &id).await;
    assert_eq!(g.status, 200, "{}", g.text());
    assert_eq!(g.json()["id"], id.as_str());
    assert_eq!(
        g.json()["output"][0]["content"][0]["text"],
        "hello hello hello"
    );
    let sent = t.mock.last_request().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", &*format!("/v1/responses/{id}"))
    );
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Bearer sk-upstream-secret-canary"),
        "the channel's key, not the client's"
    );
    assert_eq!(call(&t, "GET", &key, &sid).await.status, 200);

    // Another user: 404, and nothing asked upstream.
    let ivy = other_users_key(&t).await;
    let calls = t.mock.calls();
    for method in ["GET", "DELETE"] {
        let r = call(&t, method, &ivy, &id).await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "not_found", "{}", r.text());
    }
    assert_eq!(
        t.mock.calls(),
        calls,
        "another user's request never reaches upstream"
    );

    // An id sluice never saw created: 404 with the reason.
    let r = call(&t, "GET", &key, "resp_unknown").await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restart"),
        "{}",
        r.text()
    );

    let d = call(&t, "DELETE", &key, &id).await;
    assert_eq!(d.status, 200, "{}", d.text());
    assert_eq!(d.json()["deleted"], true);
    assert_eq!(t.mock.last_request().unwrap().method, "DELETE");
    assert_eq!(
        call(&t, "GET", &key, &id).await.status,
        404,
        "forgotten once deleted"
    );
    let _ = a;
}

#[tokio::test]
async fn a_restart_forgets_stored_responses_with_a_clear_404() {
    let (t, key) = priced().await;
    t.channel(&["gpt-x"], json!({})).await;
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-x", "input": "hi", "max_output_tokens": 3}),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(call(&t, "GET", &key, &id).await.status, 200);
    let dir = t.stop().await;
    let t = TestServer::start_in(dir, |_| {}).await;
    let r = call(&t, "GET", &key, &id).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restart"),
        "{}",
        r.text()
    );
}
