//! The format axis of the relay: one internal model of a call ([`model`]) and, per wire
//! format, one file per direction of work — decode a client request, encode an upstream
//! request, decode an upstream answer or stream, encode the client's answer or stream.
//!
//! The relay picks a pair from (the route's client format, the channel's kind). The same format
//! in and out is passed through (bodies untouched but the model name) and never comes here;
//! only a call that crosses formats is decoded into the model and encoded out of it. A stream
//! crosses through [`convert::StreamConverter`], a state machine per call (one block per
//! index; parallel tool calls each their own).
//!
//! Pure: no I/O, no shared state. Every input is untrusted: bad client bodies are a
//! [`FormatError`] naming the field (the relay answers 400 in the client's format); nothing
//! here panics on input.

pub mod anthropic;
pub mod convert;
pub mod gemini;
pub mod model;
pub mod names;
pub mod openai;
pub mod responses;
#[cfg(test)]
mod tests;

/// A wire format: what a client speaks on a route, what an upstream kind speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat/completions (and completions, embeddings: passed through only).
    OpenAiChat,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Google Gemini `generateContent`: an upstream format only (no client route speaks it).
    Gemini,
    /// OpenAI Responses (`/v1/responses`): what an `openai` channel speaks to a Responses
    /// client (`relay::convert::upstream_format`); never a kind's own format.
    Responses,
}

impl Format {
    /// The format an upstream kind speaks (`None` for a kind this build does not know).
    pub fn of_kind(kind: &str) -> Option<Format> {
        match kind {
            "openai" | "azure" => Some(Format::OpenAiChat),
            "anthropic" => Some(Format::Anthropic),
            "gemini" => Some(Format::Gemini),
            _ => None,
        }
    }
}

/// A request the client sent that cannot be converted: the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl FormatError {
    pub fn field(field: &str, why: &str) -> FormatError {
        FormatError(format!("'{field}' {why}"))
    }
}

/// serde's message says which field is missing or has the wrong type, and where.
pub(crate) fn body_error(e: serde_json::Error) -> FormatError {
    FormatError(format!("the request body does not fit this API: {e}"))
}
