//! One channel test: a small non-streaming chat request straight to the channel through the
//! relay's upstream client. No key, no reservation, no charge: it tests the channel, not a user.

use super::Host;
use super::tracker::{Outcome, describe_status};
use crate::store::channels::ChannelRow;
use crate::upstream::{Endpoint, SendError, providers};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Instant;

/// Most of an upstream answer read for a test: enough for an error message.
const MAX_ANSWER: usize = 64 * 1024;
/// Longest wait for a test's answer (and between its chunks).
const TEST_TIMEOUT_MS: u64 = 30_000;
/// Longest error message kept on the channel.
const MAX_ERROR_CHARS: usize = 300;

/// What the test saw.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub ok: bool,
    pub outcome: Outcome,
    pub latency_ms: i64,
    pub error: Option<String>,
}

impl TestRun {
    fn failed(outcome: Outcome, started: Instant, error: String) -> TestRun {
        TestRun {
            ok: false,
            outcome,
            latency_ms: millis(started),
            error: Some(error),
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Status(s) => Some(s),
            Outcome::Timeout | Outcome::Connect => None,
        }
    }
}

fn millis(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The model a test asks for: the one given, else the channel's test model, else its first.
pub fn model_for(channel: &ChannelRow, requested: Option<String>) -> Option<String> {
    requested
        .or_else(|| channel.test_model.clone())
        .or_else(|| channel.models.first().cloned())
}

/// Sends one `max_tokens: 1` chat request for `model` to the channel with its key `key`
/// (an index into its keys) and times the whole answer.
pub async fn run<H: Host>(state: &H, channel: &ChannelRow, key: usize, model: &str) -> TestRun {
    let started = Instant::now();
    let Some(secret) = channel.keys.secret(key) else {
        return TestRun::failed(
            Outcome::Connect,
            started,
            "the channel has no such key".into(),
        );
    };
    let Some(provider) = providers::get(&channel.kind) else {
        return TestRun::failed(
            Outcome::Connect,
            started,
            format!("unknown provider kind {:?}", channel.kind),
        );
    };
    let upstream_model = channel
        .model_mapping
        .get(model)
        .map_or(model, String::as_str);
    let body = serde_json::json!({
        "model": upstream_model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1,
        "stream": false,
    });
    let req = match provider.build_request(
        channel,
        secret,
        upstream_model,
        Endpoint::Chat,
        Bytes::from(body.to_string()),
    ) {
        Ok(r) => r,
        Err(e) => return TestRun::failed(Outcome::Connect, started, e.to_string()),
    };
    let mut relay = state.catalog().options().relay.clone();
    // A one-token answer is quick; a hanging upstream must not hold a scheduled pass for the
    // relay's long first-byte timeout (made for long generations).
    relay.first_byte_timeout_ms = relay.first_byte_timeout_ms.min(TEST_TIMEOUT_MS);
    relay.idle_timeout_ms = relay.idle_timeout_ms.min(TEST_TIMEOUT_MS);
    let resp = match state.upstream().send(req, &relay).await {
        Ok(r) => r,
        Err(e) => {
            let outcome = match e {
                SendError::Timeout => Outcome::Timeout,
                SendError::Connect(_) => Outcome::Connect,
            };
            return TestRun::failed(outcome, started, e.to_string());
        }
    };
    let status = resp.status();
    let body = tokio::time::timeout(
        relay.idle_timeout(),
        http_body_util::Limited::new(resp.into_body(), MAX_ANSWER).collect(),
    )
    .await;
    let outcome = Outcome::Status(status.as_u16());
    let body = match body {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            return TestRun::failed(
                outcome,
                started,
                format!("upstream answered {status} but the body could not be read"),
            );
        }
        Err(_) => {
            return TestRun::failed(
                Outcome::Timeout,
                started,
                "upstream went silent mid-answer (idle timeout)".into(),
            );
        }
    };
    if status.is_success() {
        return TestRun {
            ok: true,
            outcome,
            latency_ms: millis(started),
            error: None,
        };
    }
    let mut error = format!("upstream answered {}", describe_status(status.as_u16()));
    if let Some(m) = upstream_message(&body) {
        error.push_str(": ");
        error.push_str(&m);
    }
    TestRun::failed(outcome, started, clean(&error, &channel.api_key))
}

/// Keys tested at once: a channel with many keys is tested in about the time of a few, without
/// flooding its upstream.
const KEYS_AT_ONCE: usize = 8;

/// [`run`] with every key of the channel, a few at a time; `result[i]` is key `i`'s.
pub async fn run_keys<H: Host>(state: &Arc<H>, channel: &ChannelRow, model: &str) -> Vec<TestRun> {
    let n = channel.keys.len();
    let row = Arc::new(channel.clone());
    let mut runs: Vec<Option<TestRun>> = vec![None; n];
    let mut todo = (0..n).rev().collect::<Vec<_>>();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < KEYS_AT_ONCE
            && let Some(key) = todo.pop()
        {
            let (state, row, model) = (state.clone(), row.clone(), model.to_string());
            set.spawn(async move { (key, run(&*state, &row, key, &model).await) });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        if let Ok((key, r)) = done
            && let Some(slot) = runs.get_mut(key)
        {
            *slot = Some(r);
        }
    }
    runs.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| TestRun {
                ok: false,
                outcome: Outcome::Connect,
                latency_ms: 0,
                error: Some("the test of this key did not finish".into()),
            })
        })
        .collect()
}

/// OpenAI's `error.message` (or a bare `message`) from an error body.
fn upstream_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))
        .and_then(serde_json::Value::as_str)?;
    Some(m.to_string())
}

/// Shortened, on one line, and without any of the channel's keys should upstream echo one back.
fn clean(message: &str, secret: &crate::secret::Secret) -> String {
    let mut m = message.replace(['\n', '\r'], " ");
    for key in crate::store::channel_keys::split(secret) {
        if key.len() >= 4 && m.contains(key) {
            m = m.replace(key, "[channel key]");
        }
    }
    if m.chars().count() > MAX_ERROR_CHARS {
        m = m.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_read_shortened_and_never_hold_the_key() {
        assert_eq!(
            upstream_message(br#"{"error":{"message":"Incorrect API key","type":"x"}}"#),
            Some("Incorrect API key".into())
        );
        assert_eq!(upstream_message(b"<html>"), None);
        let keys = crate::secret::Secret::new("sk-secret-1\nsk-secret-2");
        let m = clean("bad key sk-secret-1\nagain, sk-secret-2", &keys);
        assert_eq!(m, "bad key [channel key] again, [channel key]");
        let k = crate::secret::Secret::new("k");
        assert_eq!(clean(&"x".repeat(500), &k).chars().count(), 301);
    }
}
