//! Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`), as an upstream format
//! only: no client route speaks it. A request is encoded from the model
//! ([`upstream_request`]); an answer, whole or chunk by chunk, decoded into it
//! ([`upstream_answer`]).

pub mod schema;
pub mod upstream_answer;
pub mod upstream_request;

use super::model::Finish;

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
