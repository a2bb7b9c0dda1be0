//! Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`), as an upstream format
//! only: no client route speaks it. A request is encoded from the model
//! ([`upstream_request`]); an answer, whole or chunk by chunk, decoded into it
//! ([`upstream_answer`]).

pub mod schema;
pub mod upstream_answer;
pub mod upstream_request;

use super::model::Finish;

/// Marks a Gemini thought signature carried in the model as a thinking part's signature, so it
/// goes back only to Gemini (another provider's signatures mean nothing to it, and its mean
/// nothing to them). Gemini puts one on a `functionCall` part when the model thought first, and
/// its newer models refuse a function-calling history that comes back without it.
pub const SIGNATURE_PREFIX: &str = "gemini:";

/// A Gemini `thoughtSignature` as the model's signature.
pub fn wrap_signature(sig: &str) -> String {
    format!("{SIGNATURE_PREFIX}{sig}")
}

/// The [`Finish`] of Gemini's `finishReason`. Every reason that means the answer was withheld
/// or cut for its content is a content filter; `MALFORMED_FUNCTION_CALL`, `OTHER` and reasons
/// this build does not know end the turn (a stop).
pub fn parse_finish(s: &str) -> Finish {
    match s {
        "MAX_TOKENS" => Finish::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}
