//! A Responses client on an openai channel: the body goes to the upstream's `/v1/responses`
//! untouched but the model name and the reserved `max_output_tokens`; the answer and its
//! events come back as the upstream sent them, `response.completed` held until the charge.

use super::{event_types, priced, responses, sse, usage_row};
use serde_json::json;

#[tokio::test]
async fn a_responses_call_passes_through_to_an_openai_channel_stream_and_not() {
    let (t, key) = priced().await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "gpt-x-mock-cache-800-0-mock-reasoning-2"}}),
    )
    .await;
    // Fields sluice does not model pass on as they are: a built-in tool, a stored
    // conversation's id, `include`.
    let body = json!({"model": "gpt-x", "input": "hi", "max_output_tokens": 4,
        "tools": [{"type": "web_search"}], "previous_response_id": "resp_prev",
        "include": ["reasoning.encrypted_content"], "store": true});
    let r = responses(&t, &key, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    let mut expected = body.clone();
    expected["model"] = json!("gpt-x-mock-cache-800-0-mock-reasoning-2");
    assert_eq!(sent.body, expected, "only the model name changed");
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "hello hello hello hello"
    );
    assert_eq!(
        v["usage"]["input_tokens"], 807,
        "upstream's answer as it was"
    );
    // 807 in of which 800 cached, 4 out of which 2 reasoning: 7 + 800×0.5 + 4×4 = 423.
    assert_eq!(usage_row(&t, &r.request_id()), (807, 4, 800, 0, 0, 2, 423));

    // No limit asked: sluice writes the reserved one in the Responses field.
    let r = responses(&t, &key, json!({"model": "gpt-x", "input": "hi"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap().body;
    assert!(sent["max_output_tokens"].as_u64().is_some(), "{sent}");
    assert!(sent.get("max_tokens").is_none(), "{sent}");

    let mut b = body;
    b["stream"] = json!(true);
    let r = responses(&t, &key, b).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let types = event_types(&r);
    assert_eq!(
        types.first().map(String::as_str),
        Some("response.created"),
        "{}",
        r.text()
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("response.completed"),
        "{}",
        r.text()
    );
    assert_eq!(
        types.iter().filter(|t| *t == "response.completed").count(),
        1
    );
    assert!(
        !r.text().contains("[DONE]"),
        "a Responses stream has no [DONE]"
    );
    let last = sse(&r).last().unwrap().1.clone();
    assert_eq!(
        last["response"]["usage"]["output_tokens_details"]["reasoning_tokens"],
        2
    );
    assert_eq!(usage_row(&t, &r.request_id()), (807, 4, 800, 0, 0, 2, 423));
}

#[tokio::test]
async fn a_background_response_is_refused_since_it_could_not_be_billed() {
    let (t, key) = priced().await;
    t.channel(&["gpt-x"], json!({})).await;
    let calls = t.mock.calls();
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-x", "input": "hi", "background": true}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert!(
        e["message"].as_str().unwrap().contains("'background'"),
        "{e}"
    );
    assert_eq!(t.mock.calls(), calls, "nothing went upstream");
}

#[tokio::test]
async fn an_upstream_failure_mid_stream_is_passed_on_once_and_what_was_generated_is_billed() {
    let (t, key) = priced().await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "gpt-x-mock-midfail"}}),
    )
    .await;
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-x", "input": "hi", "max_output_tokens": 4, "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let types = event_types(&r);
    assert_eq!(
        types.last().map(String::as_str),
        Some("response.failed"),
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "response.failed" || *t == "error")
            .count(),
        1,
        "upstream's failure only, no second error from sluice"
    );
    t.relays_idle().await;
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    // Billed for what was generated (one word), counted locally: upstream sent no usage.
    let (prompt, completion, ..) = usage_row(&t, &r.request_id());
    assert!(prompt > 0 && completion >= 1, "{prompt} {completion}");
}
