//! Token counting with tiktoken (o200k for the GPT-4o family and newer, cl100k otherwise).
//!
//! BPE merging can go quadratic on adversarial input (a megabyte of one repeated character), so
//! at most [`MAX_COUNTED_BYTES`] of any text is run through the tokenizer; the rest is
//! extrapolated from that sample's bytes-per-token.

use serde_json::Value;
use std::sync::LazyLock;
use tiktoken_rs::CoreBPE;

/// Longest text fed to the tokenizer in one call.
pub const MAX_COUNTED_BYTES: usize = 64 * 1024;

/// How to count: a cheap estimate (for reservations, on the request path: no tokenizer, no
/// tens of MiB of BPE tables unless needed) or tiktoken's exact count (for billing when upstream
/// reports no usage; CPU-heavy on first use, so call it off the async threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Estimate,
    Exact,
}

/// An estimate that is at or above tiktoken's count for ordinary text and code: a token per 3
/// ASCII letters or digits (English words average 4–5), one per ASCII symbol (code and JSON
/// are dense in them) and two per other character (cl100k splits many CJK characters in two).
pub fn estimate_text(text: &str) -> u64 {
    let (mut alnum, mut symbols, mut other) = (0u64, 0u64, 0u64);
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            alnum += 1;
        } else if c.is_ascii_punctuation() {
            symbols += 1;
        } else if !c.is_ascii() {
            other += 1;
        }
    }
    alnum.div_ceil(3) + symbols + 2 * other
}

fn tokens(model: &str, text: &str, mode: Mode) -> u64 {
    match mode {
        Mode::Estimate => estimate_text(text),
        Mode::Exact => count_text(model, text),
    }
}

fn encoder(model: &str) -> &'static CoreBPE {
    let m = model.to_ascii_lowercase();
    let o200k = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "chatgpt-4o",
    ];
    // Loading a tokenizer parses 100–200k tokens into a table grown by doubling: the smaller
    // tables it outgrew are freed into the loading thread's malloc arena, where glibc keeps them;
    // give those pages back once, after the load.
    static O200K: LazyLock<&'static CoreBPE> = LazyLock::new(|| {
        let bpe = tiktoken_rs::o200k_base_singleton();
        pprof::trim_heap();
        bpe
    });
    static CL100K: LazyLock<&'static CoreBPE> = LazyLock::new(|| {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        pprof::trim_heap();
        bpe
    });
    if o200k.iter().any(|p| m.starts_with(p)) {
        *O200K
    } else {
        *CL100K
    }
}

/// Tokens in `text` for `model`.
pub fn count_text(model: &str, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let bpe = encoder(model);
    if text.len() <= MAX_COUNTED_BYTES {
        return bpe.count_ordinary(text) as u64;
    }
    let mut cut = MAX_COUNTED_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let sample = bpe.count_ordinary(&text[..cut]).max(1) as f64;
    (sample * text.len() as f64 / cut as f64).ceil() as u64
}

/// Prompt tokens of a chat request: per message 3 + content (+ name + 1), and 3 for the reply's
/// priming, as OpenAI counts them. Image parts count a flat 85 (a low-detail tile).
pub fn chat_prompt_tokens(model: &str, body: &serde_json::Map<String, Value>, mode: Mode) -> u64 {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    let mut total = 3u64;
    for m in messages {
        total += 3;
        match m.get("content") {
            Some(Value::String(s)) => total += tokens(model, s, mode),
            Some(Value::Array(parts)) => {
                for p in parts {
                    match p.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            let text = p.get("text").and_then(Value::as_str).unwrap_or("");
                            total += tokens(model, text, mode)
                        }
                        Some(_) => total += 85,
                        None => {}
                    }
                }
            }
            _ => {}
        }
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            total += tokens(model, name, mode) + 1;
        }
        if let Some(calls) = m.get("tool_calls") {
            total += tokens(model, &calls.to_string(), mode);
        }
    }
    if let Some(tools) = body.get("tools") {
        total += tokens(model, &tools.to_string(), mode);
    }
    total
}

/// Bytes in the longest token of any tokenizer sluice expects upstream: cl100k's and o200k's
/// longest are runs of 128 spaces (see the tests), and other BPE vocabularies (Llama 3,
/// Qwen, Mistral's Tekken) are built the same way. Text of N bytes is therefore at least
/// N / 128 tokens.
pub const MAX_TOKEN_BYTES: u64 = 128;

/// Prompt tokens no tokenizer can count fewer of: the text's bytes / [`MAX_TOKEN_BYTES`].
/// Only lengths are read (no character is scanned), so it costs nothing on the request path;
/// an upstream reporting fewer is wrong about the prompt (the anomaly report shows it).
/// Message overhead, images and tools are left out: a floor, not an estimate.
pub fn chat_prompt_floor(body: &serde_json::Map<String, Value>) -> u64 {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    let mut bytes = 0u64;
    for m in messages {
        match m.get("content") {
            Some(Value::String(s)) => bytes += s.len() as u64,
            Some(Value::Array(parts)) => {
                for p in parts {
                    if let Some(text) = p.get("text").and_then(Value::as_str) {
                        bytes += text.len() as u64;
                    }
                }
            }
            _ => {}
        }
    }
    bytes / MAX_TOKEN_BYTES
}

/// The same floor for a `prompt` or `input`: text bytes / [`MAX_TOKEN_BYTES`], plus token ids
/// (each exactly one token).
pub fn input_floor(v: Option<&Value>) -> u64 {
    let (mut bytes, mut ids) = (0u64, 0u64);
    match v {
        Some(Value::String(s)) => bytes = s.len() as u64,
        Some(Value::Array(items)) => {
            for i in items {
                match i {
                    Value::String(s) => bytes += s.len() as u64,
                    Value::Number(_) => ids += 1,
                    Value::Array(a) => ids += a.len() as u64,
                    _ => {}
                }
            }
        }
        _ => {}
    }
    bytes / MAX_TOKEN_BYTES + ids
}

/// Tokens of a `prompt` (completions) or `input` (embeddings): a string, a list of strings, or
/// already-tokenised arrays.
pub fn input_tokens(model: &str, v: Option<&Value>, mode: Mode) -> u64 {
    match v {
        Some(Value::String(s)) => tokens(model, s, mode),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => tokens(model, s, mode),
                Value::Number(_) => 1,
                Value::Array(a) => a.len() as u64,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_known_strings() {
        assert_eq!(count_text("gpt-4o-mini", "hello hello hello"), 3);
        assert_eq!(count_text("gpt-3.5-turbo", "hello hello"), 2);
        assert_eq!(count_text("gpt-4o", ""), 0);
    }

    /// The counts OpenAI's own tokenizer (Python `tiktoken` 0.14, given the same rank files and
    /// patterns) gives, so that the vendored crate's compact BPE table (vendor/tiktoken-rs,
    /// `Ranks`) is checked against an independent implementation: prose, code, CJK, emoji and
    /// accents, and pieces of 100 bytes and more (the merge's other path).
    #[test]
    fn counts_match_openais_tokenizer() {
        let cases: [(String, u64, u64); 7] = [
            (
                "The quick brown fox jumps over the lazy dog. It's 2026-12-05, and we're counting tokens!".into(),
                24,
                26,
            ),
            (
                "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{:?}\", x);\n}\n".into(),
                37,
                37,
            ),
            ("日本語のテキストを数える。中文也一样：网关计费。한국어 텍스트도.".into(), 26, 33),
            ("emoji 🦀🚀✨ and accents: café naïve façade Zürich".into(), 15, 20),
            ("a".repeat(300), 38, 38),
            ("supercalifragilisticexpialidocious".repeat(5), 50, 63),
            (format!("x{}yz", "ab".repeat(120)), 63, 121),
        ];
        for (text, o200k, cl100k) in &cases {
            assert_eq!(count_text("gpt-4o-mini", text), *o200k, "o200k: {text}");
            assert_eq!(count_text("gpt-3.5-turbo", text), *cl100k, "cl100k: {text}");
        }
    }

    #[test]
    fn chat_prompt_includes_per_message_overhead() {
        let body = json!({"messages":[{"role":"user","content":"hello"}]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        assert_eq!(chat_prompt_tokens("gpt-4o", &body, Mode::Exact), 3 + 3 + 1);
        assert!(chat_prompt_tokens("gpt-4o", &body, Mode::Estimate) >= 7);
    }

    #[test]
    fn the_estimate_is_not_below_the_count_for_ordinary_text() {
        for text in [
            "Hello, how are you today? I would like a summary of this paragraph.",
            "fn main() { println!(\"{}\", 42); }",
            "你好，世界。今天天气很好。",
            "Ünïcödé mixed with ASCII and numbers 12345",
        ] {
            assert!(estimate_text(text) >= count_text("gpt-4o", text), "{text}");
            assert!(
                estimate_text(text) >= count_text("gpt-3.5-turbo", text),
                "{text}"
            );
        }
    }

    #[test]
    fn no_text_has_fewer_tokens_than_the_floor() {
        // The densest texts for BPE: long runs of one character (spaces merge furthest, to
        // 128-byte tokens), symbols, letters, digits, CJK, emoji, code.
        let n = 64 * 1024;
        let texts = [
            " ".repeat(n),
            "\n".repeat(n),
            "\t".repeat(n),
            "=".repeat(n),
            "-".repeat(n),
            "a".repeat(n),
            "0".repeat(n),
            "abcdefghijklmnopqrstuvwxyz".repeat(n / 26),
            "你好世界".repeat(n / 12),
            "😀".repeat(n / 4),
            "fn main() { println!(\"{}\", 42); }\n".repeat(n / 36),
        ];
        let mut densest = 0.0f64;
        for model in ["gpt-4o", "gpt-3.5-turbo"] {
            for t in &texts {
                let tokens = count_text(model, t);
                let floor = t.len() as u64 / MAX_TOKEN_BYTES;
                assert!(
                    tokens >= floor,
                    "{model}: {tokens} < {floor} for {:?}…",
                    &t[..8]
                );
                densest = densest.max(t.len() as f64 / tokens as f64);
            }
        }
        assert_eq!(
            densest, MAX_TOKEN_BYTES as f64,
            "runs of spaces are the densest"
        );
        let body = json!({"messages": [{"role": "user", "content": "x".repeat(1000)},
            {"role": "user", "content": [{"type": "text", "text": "y".repeat(300)},
                                         {"type": "image_url", "image_url": {"url": "z".repeat(9000)}}]}]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        assert_eq!(chat_prompt_floor(&body), 1300 / 128);
        assert_eq!(
            input_floor(Some(&json!(["a".repeat(256), [1, 2, 3], 7]))),
            2 + 3 + 1
        );
    }

    #[test]
    fn long_text_is_extrapolated_from_a_sample() {
        // 1 MiB of "hello " is ~174,763 tokens; only the first 64 KiB are tokenised.
        let s = "hello ".repeat(1024 * 1024 / 6);
        let n = count_text("gpt-4o", &s);
        let exact = (s.len() / 6) as u64;
        assert!(n.abs_diff(exact) < exact / 100, "{n} vs {exact}");
    }
}
