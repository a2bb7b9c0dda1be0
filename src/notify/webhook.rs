//! Webhook: `POST` JSON `{type, title, content, values, timestamp}`, with the content rendered.
//!
//! With a secret, `X-Sluice-Signature: t=<unix>,v1=<hex>` where the hex is
//! `HMAC-SHA256(secret, "<t>.<raw body>")`. The timestamp is signed with the body, so a receiver
//! that rejects signatures older than a few minutes rejects replays (docs/api.md shows how).
//! Each attempt is signed afresh, so a retried delivery carries a current timestamp.

use super::message::Message;
use super::outbound::{Method, Request};
use crate::secret::Secret;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-sluice-signature";

/// The JSON body.
pub fn body(msg: &Message) -> Vec<u8> {
    json!({
        "type": msg.event,
        "title": msg.title,
        "content": msg.content(),
        "values": msg.values,
        "timestamp": msg.timestamp,
    })
    .to_string()
    .into_bytes()
}

/// `t=<t>,v1=<hex hmac-sha256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error arm cannot happen but must not panic.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The request for one attempt, signed at `now`.
pub fn request(url: &str, secret: Option<&Secret>, msg: &Message, now: i64) -> Request {
    let body = body(msg);
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(s) = secret {
        headers.push((
            SIGNATURE_HEADER,
            signature(s.expose().as_bytes(), now, &body),
        ));
    }
    Request {
        method: Method::Post,
        url: url.to_string(),
        headers,
        body: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // python3: hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn body_has_filled_content_and_values() {
        let m = Message::quota_warning("ann", None, 10, 100, 5);
        let v: serde_json::Value = serde_json::from_slice(&body(&m)).unwrap();
        assert_eq!(v["type"], "quota_warning");
        assert_eq!(v["values"]["balance"], 10);
        assert_eq!(v["timestamp"], 5);
        let c = v["content"].as_str().unwrap();
        assert!(c.contains("10") && !c.contains("{{"), "{c}");
    }
}
