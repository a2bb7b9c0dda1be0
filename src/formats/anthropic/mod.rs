//! Anthropic Messages (`/v1/messages`), both as a client format and as an upstream one.

pub mod client_answer;
pub mod client_request;
pub mod upstream_answer;
pub mod upstream_request;

use super::model::Finish;

/// Anthropic's `stop_reason` for a [`Finish`].
pub fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::StopSequence => "stop_sequence",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

/// The [`Finish`] of Anthropic's `stop_reason` (`pause_turn` is a turn that may go on: a stop).
pub fn parse_stop(s: &str) -> Finish {
    match s {
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "tool_use" => Finish::ToolCalls,
        "stop_sequence" => Finish::StopSequence,
        "refusal" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}
