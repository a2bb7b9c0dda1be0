//! Google Gemini upstreams (`kind` = `gemini`): the key in `x-goog-api-key` — never in the
//! URL's `?key=` query, which would land in access logs and error messages —, the base URL as
//! Google's SDKs take it (`https://generativelanguage.googleapis.com`), and the route naming
//! the model and whether the call streams: `POST {base}/v1beta/models/{model}:generateContent`
//! or `…:streamGenerateContent?alt=sse` (SSE, each event a whole `GenerateContentResponse`).
//!
//! Bodies are Gemini's own, made by [`crate::formats::gemini`] from the internal model: a
//! gemini channel always converts (no client route speaks Gemini).

use super::{BuildError, EventInfo, Provider};
use crate::billing::Usage;
use crate::formats::convert::answer_text;
use crate::formats::gemini::{upstream_answer, upstream_request};
use crate::formats::model::Event;
use crate::secret::Secret;
use crate::store::channels::ChannelRow;
use crate::upstream::Endpoint;
use bytes::Bytes;
use http::Request;
use http::header::HeaderName;
use http_body_util::Full;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

pub struct Gemini;

/// Escaped in a model name: what a path segment cannot hold, and `:` (the method separator).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// The URL of one call (a base URL given with `/v1beta` or `/v1` is taken as well; a model
/// named `models/…`, as Google's model list names them, is the same model).
pub fn url(base: &str, model: &str, stream: bool) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_suffix("/v1beta")
        .or_else(|| base.strip_suffix("/v1"))
        .unwrap_or(base);
    let model = model.strip_prefix("models/").unwrap_or(model);
    let model = utf8_percent_encode(model, SEGMENT);
    if stream {
        format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/v1beta/models/{model}:generateContent")
    }
}

/// The request for one call: `body` is a Gemini request, `model` the channel's name for the
/// model, `key` one of the channel's keys.
pub fn request(
    ch: &ChannelRow,
    key: &Secret,
    model: &str,
    stream: bool,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, BuildError> {
    let key = super::openai::header_value(ch, key.expose())?;
    super::openai::post(
        ch,
        url(&ch.base_url, model, stream),
        HeaderName::from_static("x-goog-api-key"),
        key,
        body,
    )
}

impl Provider for Gemini {
    /// From an OpenAI-shaped chat body (the channel test's): converted through the model, not
    /// streamed. The relay builds its converted calls with [`request`].
    fn build_request(
        &self,
        ch: &ChannelRow,
        key: &Secret,
        model: &str,
        _endpoint: Endpoint,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        let bad = |e: String| BuildError(format!("cannot make a Gemini request: {e}"));
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let r = crate::formats::openai::client_request::decode(&v).map_err(|e| bad(e.0))?;
        let doc = upstream_request::encode(&r).map_err(|e| bad(e.0))?;
        let bytes = serde_json::to_vec(&doc).map_err(|e| bad(e.to_string()))?;
        request(ch, key, model, false, Bytes::from(bytes))
    }

    fn read_response(&self, _endpoint: Endpoint, body: &[u8], text: &mut String) -> Option<Usage> {
        let r = upstream_answer::decode(body)?;
        text.push_str(&answer_text(&r));
        r.usage
    }

    fn read_event(&self, _endpoint: Endpoint, data: &[u8], text: &mut String) -> EventInfo {
        let mut events = Vec::new();
        upstream_answer::StreamDecoder::new().push(data, &mut events);
        let mut usage = None;
        for e in events {
            match e {
                Event::TextDelta { text: t, .. } | Event::ThinkingDelta { text: t, .. } => {
                    text.push_str(&t)
                }
                Event::ToolArgs { fragment, .. } => text.push_str(&fragment),
                Event::Usage(u) => usage = Some(u),
                _ => {}
            }
        }
        EventInfo {
            usage,
            usage_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_names_the_model_and_the_stream() {
        let g = "https://generativelanguage.googleapis.com";
        assert_eq!(
            url(g, "gemini-2.5-flash", false),
            format!("{g}/v1beta/models/gemini-2.5-flash:generateContent")
        );
        assert_eq!(
            url(&format!("{g}/v1beta/"), "models/gemini-2.5-pro", true),
            format!("{g}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
        );
        // A name cannot change the route or add a query (the key is never in one anyway).
        assert_eq!(
            url(g, "x/../y:z?key=1", false),
            format!("{g}/v1beta/models/x%2F..%2Fy%3Az%3Fkey=1:generateContent")
        );
    }
}
