//! Anthropic Messages upstreams (`kind` = `anthropic`): `x-api-key`, `anthropic-version`, the
//! base URL as the Anthropic SDK takes it (`https://api.anthropic.com`, without `/v1`), the
//! path `/v1/messages`. Usage is normalised by [`crate::formats::anthropic`]'s reader.

use super::{BuildError, EventInfo, Provider};
use crate::billing::Usage;
use crate::formats::anthropic::upstream_answer::{self, WireUsage};
use crate::formats::model::{Event, Part};
use crate::secret::Secret;
use crate::store::channels::ChannelRow;
use crate::upstream::Endpoint;
use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::Full;
use serde::Deserialize;

pub struct Anthropic;

/// The API version sent when the client named none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The path under the base URL (a base URL that already ends in `/v1` is taken as well).
fn url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/messages")
}

#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    message: Option<Box<UsageOnly>>,
}

impl Provider for Anthropic {
    fn build_request(
        &self,
        ch: &ChannelRow,
        key: &Secret,
        _model: &str,
        _endpoint: Endpoint,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        let key = super::openai::header_value(ch, key.expose())?;
        let mut req = super::openai::post(
            ch,
            url(&ch.base_url),
            header::HeaderName::from_static("x-api-key"),
            key,
            body,
        )?;
        req.headers_mut().insert(
            "anthropic-version",
            HeaderValue::from_static(DEFAULT_VERSION),
        );
        Ok(req)
    }

    fn read_response(&self, _endpoint: Endpoint, body: &[u8], text: &mut String) -> Option<Usage> {
        let r = upstream_answer::decode(body)?;
        for p in &r.parts {
            match p {
                Part::Text(t) | Part::Thinking { text: t, .. } => text.push_str(t),
                Part::ToolUse {
                    name, arguments, ..
                } => {
                    text.push_str(name);
                    text.push_str(arguments);
                }
                Part::Image { .. } | Part::ToolResult { .. } | Part::RedactedThinking(_) => {}
            }
        }
        r.usage
    }

    fn read_event(&self, _endpoint: Endpoint, data: &[u8], text: &mut String) -> EventInfo {
        // Usage is on `message_start` (input, cache) and `message_delta` (cumulative output);
        // the relay merges the two.
        if let Ok(u) = serde_json::from_slice::<UsageOnly>(data) {
            let wire = u.usage.or_else(|| u.message.and_then(|m| m.usage));
            if let Some(w) = wire {
                return EventInfo {
                    usage: Some(w.normalise()),
                    usage_only: false,
                };
            }
        }
        let mut events = Vec::new();
        upstream_answer::StreamDecoder::new().push(data, &mut events);
        for e in events {
            match e {
                Event::TextDelta { text: t, .. } | Event::ThinkingDelta { text: t, .. } => {
                    text.push_str(&t)
                }
                Event::ToolArgs { fragment, .. } => text.push_str(&fragment),
                _ => {}
            }
        }
        EventInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messages_url_from_either_base() {
        assert_eq!(
            url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("https://api.anthropic.com/v1/"),
            "https://api.anthropic.com/v1/messages"
        );
    }
}
