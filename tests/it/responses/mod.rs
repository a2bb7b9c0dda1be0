//! OpenAI Responses clients (`/v1/responses`) over real HTTP: passthrough to an openai
//! channel, conversion for chat-only channels (anthropic; the chat upstream's side of the
//! conversion is in src/formats/responses/tests.rs), streamed and not; refusals; billing
//! exactness and a race; stored responses
//! read and deleted through the channel that made them; the official `openai` Python SDK.

mod billing;
mod convert;
mod passthrough;
mod sdk;
mod stored;

use crate::common::{Resp, TestServer, send};
use bytes::Bytes;
use serde_json::Value;

pub use crate::formats::{anthropic_channel, priced, sse, usage_row};

/// `POST /v1/responses` with the key as a bearer token.
pub async fn responses(t: &TestServer, key: &str, body: Value) -> Resp {
    let auth = format!("Bearer {key}");
    send(
        "POST",
        &t.url("/v1/responses"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(Bytes::from(body.to_string())),
    )
    .await
}

/// The event types of a Responses stream, in order, checking each `data:` names its event and
/// the sequence numbers count up from 0 without a gap.
pub fn event_types(r: &Resp) -> Vec<String> {
    let events = sse(r);
    let mut out = Vec::new();
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"].as_str(), Some(name.as_str()), "{}", r.text());
        if name != "error" {
            assert_eq!(data["sequence_number"], i as u64, "{}", r.text());
        }
        out.push(name.clone());
    }
    out
}
