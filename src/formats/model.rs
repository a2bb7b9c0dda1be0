//! The internal model of a call, between formats. It holds what every format can say and
//! what the conversions must keep (a thinking block's signature, a tool call's id); what a
//! single format alone has is passed through natively and never modelled.

use crate::billing::Usage;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub model: String,
    /// System instructions, in order (OpenAI `system`/`developer` messages, Anthropic `system`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// The output limit (the relay writes the reserved one).
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// Extended thinking / reasoning asked for: a token budget.
    pub thinking_budget: Option<u64>,
    /// The end user, for the provider's abuse tracking (OpenAI `user`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<String>,
    pub parallel_tool_calls: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// Inline image bytes, base64 (a remote URL is refused before it gets here).
    Image {
        media_type: String,
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        /// The arguments as JSON text (OpenAI's form; Anthropic's object is serialised).
        arguments: String,
    },
    ToolResult {
        tool_use_id: String,
        content: Vec<Part>,
        is_error: bool,
    },
    /// Reasoning shown to the client; the signature lets a provider check it on the next turn.
    Thinking {
        text: String,
        signature: Option<String>,
    },
    RedactedThinking(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of the arguments, passed on as it is.
    pub schema: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Any,
    Tool(String),
}

/// Why generation ended (FORMATS.md has the table between formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    /// A stop sequence was met (OpenAI says `stop` for it too).
    StopSequence,
    Length,
    ToolCalls,
    ContentFilter,
}

/// A whole (non-stream) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: String,
    pub model: String,
    /// The assistant's parts: thinking, text, tool calls, in order.
    pub parts: Vec<Part>,
    pub finish: Option<Finish>,
    pub usage: Option<Usage>,
}

/// One step of a stream. `index` is the block's position in the answer: each text, thinking
/// or tool call block has its own, so parallel tool calls never mix their fragments.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start {
        id: String,
        model: String,
    },
    TextDelta {
        index: usize,
        text: String,
    },
    ThinkingDelta {
        index: usize,
        text: String,
    },
    Signature {
        index: usize,
        signature: String,
    },
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        fragment: String,
    },
    BlockStop {
        index: usize,
    },
    Finish(Finish),
    /// Usage so far (cumulative where the provider's figures are).
    Usage(Usage),
    /// The upstream reported an error in the stream.
    Error {
        kind: String,
        message: String,
    },
    /// The upstream's final event.
    Done,
}
