//! The relay's side of the format axis: whether a channel's answer passes through or is
//! converted, and what the converters need to know of the call.

use super::prepare::Prepared;
use crate::formats::Format;
use crate::formats::convert::CallInfo;
use crate::store::channels::ChannelRow;

/// How an answer reaches the client.
pub enum Lane {
    /// The channel speaks the client's format: bytes pass through (today's path).
    Pass,
    /// The channel speaks `upstream`: the answer is decoded and re-encoded.
    Convert { upstream: Format, info: CallInfo },
}

pub fn call_info(p: &Prepared) -> CallInfo {
    CallInfo {
        model: p.model.clone(),
        tools: p
            .model_request()
            .map(|r| r.tools.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default(),
        input_estimate: p.prompt,
        client_wants_usage: p.client_wants_usage,
        created: crate::util::now_secs().max(0) as u64,
    }
}

/// The format a channel is spoken to in, for a client of `client`'s format: its kind's,
/// except that an OpenAI-shaped channel with the Responses API serves a Responses client
/// natively (passthrough to its `/v1/responses`).
pub fn upstream_format(channel: &ChannelRow, client: Format) -> Format {
    let native = Format::of_kind(&channel.kind).unwrap_or(Format::OpenAiChat);
    if client == Format::Responses && native == Format::OpenAiChat && has_responses_api(channel) {
        Format::Responses
    } else {
        native
    }
}

/// Whether an OpenAI-shaped channel has the Responses API: its `settings.responses_api`
/// (an openai channel has it unless marked `false`; an azure one on the v1 route only).
pub fn has_responses_api(channel: &ChannelRow) -> bool {
    channel.settings.responses_api(&channel.kind)
}
