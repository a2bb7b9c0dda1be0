//! OpenAI chat/completions, both as a client format and as an upstream one.

pub mod client_answer;
pub mod client_request;
pub mod upstream_answer;
pub mod upstream_request;

use super::model::Finish;

/// OpenAI's `finish_reason` for a [`Finish`].
pub fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

/// The [`Finish`] of OpenAI's `finish_reason` (`function_call` is the legacy tool call).
pub fn parse_finish(s: &str) -> Finish {
    match s {
        "length" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}
