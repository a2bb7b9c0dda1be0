//! Response bodies, written straight into byte buffers (no serde on the way out: the mock must
//! keep up with the gateway at tens of thousands of requests per second on one core).

use std::io::Write as _;
use std::sync::LazyLock;

use bytes::Bytes;

/// The most words a completion has.
pub(crate) const MAX_WORDS: u64 = 4096;
/// Size of the `mock-huge` content.
pub(crate) const HUGE_LEN: usize = 8 * 1024 * 1024;

/// `"hello hello …"` with `MAX_WORDS` words; a completion of n words is a prefix of it.
static WORDS: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::with_capacity(6 * MAX_WORDS as usize);
    s.push_str("hello");
    for _ in 1..MAX_WORDS {
        s.push_str(" hello");
    }
    s
});

static HUGE: LazyLock<String> = LazyLock::new(|| "a".repeat(HUGE_LEN));

pub(crate) const MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"mock"},{"id":"gpt-4o","object":"model","created":1700000000,"owned_by":"mock"},{"id":"text-embedding-3-small","object":"model","created":1700000000,"owned_by":"mock"},{"id":"mock-slow-300","object":"model","created":1700000000,"owned_by":"mock"},{"id":"mock-500","object":"model","created":1700000000,"owned_by":"mock"}]}"#;

pub(crate) const ERROR_500: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that! (mock-500)","type":"server_error","param":null,"code":null}}"#;
pub(crate) const ERROR_429: &str = r#"{"error":{"message":"Rate limit reached for requests (mock-429). Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
pub(crate) const ERROR_401: &str = r#"{"error":{"message":"Incorrect API key provided (mock-401). You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
pub(crate) const ERROR_404: &str = r#"{"error":{"message":"Unknown request URL. The mock serves /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models.","type":"invalid_request_error","param":null,"code":"unknown_url"}}"#;
pub(crate) const ERROR_405: &str = r#"{"error":{"message":"Method not allowed on this URL.","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}"#;
pub(crate) const ERROR_BOTH_LIMITS: &str = r#"{"error":{"message":"Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported. (mock-strict)","type":"invalid_request_error","param":"max_tokens","code":"invalid_parameter_combination"}}"#;
pub(crate) const ERROR_BAD_JSON: &str = r#"{"error":{"message":"The request body is not valid JSON for this endpoint.","type":"invalid_request_error","param":null,"code":"invalid_json"}}"#;

const EMBEDDING: &str = "[0.125,-0.25,0.375,-0.5,0.625,-0.75,0.875,-1.0]";

/// Token counts for the `usage` object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
}

/// What the completion says.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Content {
    /// `n` words of "hello".
    Words(u64),
    /// `n` words of "hello", then `HUGE_LEN` bytes of 'a' in one piece.
    Huge(u64),
}

impl Content {
    fn full(self) -> std::borrow::Cow<'static, str> {
        match self {
            Content::Words(n) => words(0, n).into(),
            Content::Huge(0) => HUGE.as_str().into(),
            Content::Huge(n) => format!("{}{}", words(0, n), &*HUGE).into(),
        }
    }
    /// How many streamed pieces (content events) there are.
    pub(crate) fn piece_count(self) -> usize {
        match self {
            Content::Words(n) => n as usize,
            Content::Huge(n) => n as usize + 1,
        }
    }
    /// The streamed pieces: one per word, then (for `Huge`) the whole huge content.
    fn pieces(self) -> impl Iterator<Item = &'static str> {
        let (words_n, huge) = match self {
            Content::Words(n) => (n, false),
            Content::Huge(n) => (n, true),
        };
        (0..words_n)
            .map(|i| words(i, 1))
            .chain(huge.then_some(&HUGE[..]))
    }
}

/// Words `from..from+n` of WORDS, each after the first with its leading space.
fn words(from: u64, n: u64) -> &'static str {
    let from = from.min(MAX_WORDS);
    let to = (from + n).min(MAX_WORDS);
    let start = if from == 0 {
        0
    } else {
        5 + 6 * (from as usize - 1)
    };
    let end = if to == 0 {
        0
    } else {
        5 + 6 * (to as usize - 1)
    };
    &WORDS[start..end]
}

/// Chat (`chat.completion`) or legacy (`text_completion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Text,
}

/// Fields every response carries.
pub(crate) struct Head<'a> {
    pub(crate) kind: Kind,
    pub(crate) id: u64,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
}

struct Out(Vec<u8>);

impl Out {
    fn with_capacity(n: usize) -> Out {
        Out(Vec::with_capacity(n))
    }
    fn s(&mut self, s: &str) -> &mut Out {
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn n(&mut self, n: u64) -> &mut Out {
        // Writing into a Vec cannot fail.
        let _ = write!(self.0, "{n}");
        self
    }
    /// A JSON string literal, escaped.
    fn json(&mut self, s: &str) -> &mut Out {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        } else if serde_json::to_writer(&mut self.0, s).is_err() {
            // Unreachable for a &str; keep the output valid JSON anyway.
            self.0.extend_from_slice(b"\"\"");
        }
        self
    }
    fn usage(&mut self, u: Usage) -> &mut Out {
        self.s(r#"{"prompt_tokens":"#)
            .n(u.prompt)
            .s(r#","completion_tokens":"#)
            .n(u.completion)
            .s(r#","total_tokens":"#)
            .n(u.prompt + u.completion)
            .s("}")
    }
    /// `{"id":…,"object":…,"created":…,"model":…,` — the start of every completion object.
    fn head(&mut self, head: &Head<'_>, object: &str) -> &mut Out {
        let prefix = match head.kind {
            Kind::Chat => "chatcmpl-mock",
            Kind::Text => "cmpl-mock",
        };
        self.s(r#"{"id":""#)
            .s(prefix)
            .n(head.id)
            .s(r#"","object":""#)
            .s(object)
            .s(r#"","created":"#)
            .n(head.created)
            .s(r#","model":"#)
            .json(head.model)
            .s(",")
    }
    fn into_bytes(self) -> Bytes {
        Bytes::from(self.0)
    }
}

/// A non-stream completion.
pub(crate) fn completion(head: &Head<'_>, content: Content, usage: Option<Usage>) -> Bytes {
    let full = content.full();
    let text: &str = &full;
    let mut out = Out::with_capacity(text.len() + 320 + head.model.len());
    match head.kind {
        Kind::Chat => out
            .head(head, "chat.completion")
            .s(r#""choices":[{"index":0,"message":{"role":"assistant","content":""#)
            .s(text)
            .s(r#"","refusal":null},"logprobs":null,"finish_reason":"stop"}]"#),
        Kind::Text => out
            .head(head, "text_completion")
            .s(r#""choices":[{"text":""#)
            .s(text)
            .s(r#"","index":0,"logprobs":null,"finish_reason":"stop"}]"#),
    };
    if let Some(u) = usage {
        out.s(r#","usage":"#).usage(u);
    }
    out.s("}");
    out.into_bytes()
}

/// A streamed completion as SSE events, one `Bytes` per event: one per content piece, then the
/// usage chunk when `usage` is given, then `[DONE]`. `usage_null` adds `"usage":null` to the
/// content chunks, as OpenAI does when `stream_options.include_usage` is set.
pub(crate) fn stream(
    head: &Head<'_>,
    content: Content,
    usage: Option<Usage>,
    usage_null: bool,
) -> Vec<Bytes> {
    let count = content.piece_count();
    let content_len = match content {
        Content::Words(n) => 6 * n as usize,
        Content::Huge(n) => 6 * n as usize + HUGE_LEN,
    };
    let per_event = 200 + head.model.len();
    let mut out = Out::with_capacity(content_len + per_event * (count + 2));
    let mut ends = Vec::with_capacity(count + 2);
    let object = match head.kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Text => "text_completion",
    };
    for (i, piece) in content.pieces().enumerate() {
        let finish = if i + 1 == count { r#""stop""# } else { "null" };
        out.s("data: ").head(head, object);
        match head.kind {
            Kind::Chat => {
                out.s(r#""choices":[{"index":0,"delta":{"#);
                if i == 0 {
                    out.s(r#""role":"assistant","#);
                }
                out.s(r#""content":""#)
                    .s(piece)
                    .s(r#""},"logprobs":null,"finish_reason":"#)
            }
            Kind::Text => out
                .s(r#""choices":[{"text":""#)
                .s(piece)
                .s(r#"","index":0,"logprobs":null,"finish_reason":"#),
        };
        out.s(finish).s("}]");
        if usage_null {
            out.s(r#","usage":null"#);
        }
        out.s("}\n\n");
        ends.push(out.0.len());
    }
    if let Some(u) = usage {
        out.s("data: ")
            .head(head, object)
            .s(r#""choices":[],"usage":"#)
            .usage(u)
            .s("}\n\n");
        ends.push(out.0.len());
    }
    out.s("data: [DONE]\n\n");
    ends.push(out.0.len());
    let all = out.into_bytes();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let event = all.slice(start..end);
            start = end;
            event
        })
        .collect()
}

/// An embeddings list: `inputs` vectors of 8 floats.
pub(crate) fn embeddings(model: &str, inputs: usize, usage: Option<u64>) -> Bytes {
    let mut out = Out::with_capacity(128 + model.len() + inputs * (EMBEDDING.len() + 48));
    out.s(r#"{"object":"list","data":["#);
    for i in 0..inputs {
        if i > 0 {
            out.s(",");
        }
        out.s(r#"{"object":"embedding","index":"#)
            .n(i as u64)
            .s(r#","embedding":"#)
            .s(EMBEDDING)
            .s("}");
    }
    out.s(r#"],"model":"#).json(model);
    if let Some(words) = usage {
        out.s(r#","usage":{"prompt_tokens":"#)
            .n(words)
            .s(r#","total_tokens":"#)
            .n(words)
            .s("}");
    }
    out.s("}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_slices_are_words() {
        assert_eq!(words(0, 1), "hello");
        assert_eq!(words(0, 3), "hello hello hello");
        assert_eq!(words(1, 1), " hello");
        assert_eq!(words(4095, 1), " hello");
        assert_eq!(words(0, MAX_WORDS).len(), 5 + 6 * 4095);
    }
}
