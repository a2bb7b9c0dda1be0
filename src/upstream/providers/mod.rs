//! Upstream provider kinds. Each kind is one file implementing [`Provider`]: how to build the
//! upstream request from the client's OpenAI-shaped body, and how to read usage and text from
//! the answer. Adding a provider = one new file + one line in [`get`] and [`KINDS`].

mod anthropic;
mod azure;
mod openai;

pub use anthropic::DEFAULT_VERSION as ANTHROPIC_VERSION;

use super::Endpoint;
use crate::billing::Usage;
use crate::secret::Secret;
use crate::store::channels::ChannelRow;
use bytes::Bytes;
use http_body_util::Full;

/// A channel whose settings cannot make a request (a key that is not a valid header value,
/// an unusable base URL). The text is what the relay's failure list and a channel test show.
#[derive(Debug, thiserror::Error)]
#[error("internal error: {0}")]
pub struct BuildError(pub String);

pub const KINDS: &[&str] = &["openai", "azure", "anthropic"];

pub trait Provider: Send + Sync {
    /// The upstream request for `endpoint` with the (already mapped) JSON body, sent with
    /// `key` (one of the channel's keys) for `model` (the channel's name for the model: the
    /// mapping's, else the client's).
    fn build_request(
        &self,
        channel: &ChannelRow,
        key: &Secret,
        model: &str,
        endpoint: Endpoint,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, BuildError>;

    /// Usage and generated text of a complete (non-stream) answer.
    fn read_response(&self, endpoint: Endpoint, body: &[u8], text: &mut String) -> Option<Usage>;

    /// One SSE `data:` payload of a stream: appends generated text, returns usage if the event
    /// carries it and whether the event carries nothing else (the injected usage chunk).
    fn read_event(&self, endpoint: Endpoint, data: &[u8], text: &mut String) -> EventInfo;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct EventInfo {
    pub usage: Option<Usage>,
    pub usage_only: bool,
}

pub fn get(kind: &str) -> Option<&'static dyn Provider> {
    match kind {
        "openai" => Some(&openai::OpenAi),
        "azure" => Some(&azure::Azure),
        "anthropic" => Some(&anthropic::Anthropic),
        _ => None,
    }
}
