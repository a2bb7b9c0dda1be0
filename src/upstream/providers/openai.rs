//! OpenAI and every OpenAI-compatible upstream: the body passes through as it is.

use super::{BuildError, EventInfo, Provider};
use crate::billing::Usage;
use crate::secret::Secret;
use crate::store::channels::ChannelRow;
use crate::upstream::Endpoint;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::Full;
use serde::Deserialize;

pub struct OpenAi;

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// OpenAI's usage is already the normalised meaning: `prompt_tokens` includes the cached ones,
/// `completion_tokens` the reasoning ones.
impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cache_read: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            ..Usage::default()
        }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    delta: Option<Message<'a>>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

fn collect_text(choices: &[Choice<'_>], text: &mut String) {
    for c in choices {
        for part in [
            c.message.as_ref().and_then(|m| m.content.as_deref()),
            c.delta.as_ref().and_then(|m| m.content.as_deref()),
            c.text.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            text.push_str(part);
        }
    }
}

/// A key as a header value; the error names the channel, never the key.
pub(super) fn header_value(ch: &ChannelRow, v: &str) -> Result<HeaderValue, BuildError> {
    let mut v = HeaderValue::from_str(v).map_err(|_| {
        BuildError(format!(
            "channel {} has a key that is not a valid header",
            ch.id
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// A JSON POST to `url` with the key in `auth_name`.
pub(super) fn post(
    ch: &ChannelRow,
    url: String,
    auth_name: header::HeaderName,
    auth: HeaderValue,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, BuildError> {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(auth_name, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Full::new(body))
        .map_err(|e| BuildError(format!("channel {} has an unusable base URL: {e}", ch.id)))
}

impl Provider for OpenAi {
    fn build_request(
        &self,
        ch: &ChannelRow,
        key: &Secret,
        _model: &str,
        endpoint: Endpoint,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        let url = format!("{}{}", ch.base_url.trim_end_matches('/'), endpoint.path());
        let auth = header_value(ch, &format!("Bearer {}", key.expose()))?;
        post(ch, url, header::AUTHORIZATION, auth, body)
    }

    fn read_response(&self, endpoint: Endpoint, body: &[u8], text: &mut String) -> Option<Usage> {
        if endpoint == Endpoint::Responses {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            return crate::formats::responses::upstream_answer::read_response(&v, text);
        }
        let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
        if let Some(choices) = &answer.choices {
            collect_text(choices, text);
        }
        answer.usage.map(Usage::from)
    }

    fn read_event(&self, endpoint: Endpoint, data: &[u8], text: &mut String) -> EventInfo {
        if endpoint == Endpoint::Responses {
            return EventInfo {
                usage: crate::formats::responses::upstream_answer::read_event(data, text),
                usage_only: false,
            };
        }
        let Ok(ev) = serde_json::from_slice::<Answer<'_>>(data) else {
            return EventInfo::default();
        };
        let no_choices = ev.choices.as_ref().is_none_or(|c| c.is_empty());
        if let Some(choices) = &ev.choices {
            collect_text(choices, text);
        }
        let usage = ev.usage.map(Usage::from);
        EventInfo {
            usage_only: usage.is_some() && no_choices,
            usage,
        }
    }
}
