//! Encoding model events as an OpenAI Responses stream (to a client): the event sequence the
//! SDKs' `responses.stream()` checks: `response.created`, `response.in_progress`, per output
//! item `response.output_item.added` / its deltas / its `.done` events /
//! `response.output_item.done`, and last `response.completed` (or `response.incomplete`)
//! carrying the usage: the tail, written after the charge commits. Every event has a
//! `sequence_number`; a failure mid-stream ends with `response.failed`.

use super::client_answer::{
    call_item, envelope, message_item, reasoning_item, response_id, status, usage,
};
use crate::billing::Usage;
use crate::formats::model::{Event, Finish};
use serde_json::{Value, json};

#[derive(Debug)]
enum ItemKind {
    Message {
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        args: String,
    },
    Reasoning {
        text: String,
        signature: String,
    },
}

#[derive(Debug)]
struct Item {
    /// The model's block index.
    block: usize,
    id: String,
    kind: ItemKind,
    done: bool,
    /// The finished item, for the final `response` object.
    final_item: Option<Value>,
}

/// The stream encoder's state for one call.
pub struct StreamEncoder {
    model: String,
    created: u64,
    id: String,
    started: bool,
    seq: u64,
    /// Output items in the order they were added (`output_index` = position).
    items: Vec<Item>,
    finish: Option<Finish>,
}

impl StreamEncoder {
    pub fn new(model: &str, created: u64) -> StreamEncoder {
        StreamEncoder {
            model: model.to_string(),
            created,
            id: String::new(),
            started: false,
            seq: 0,
            items: Vec::new(),
            finish: None,
        }
    }

    fn event(&mut self, name: &str, data: Value, out: &mut Vec<u8>) {
        // `type` and `sequence_number` first, as OpenAI writes them.
        let mut o = serde_json::Map::new();
        o.insert("type".into(), Value::String(name.to_string()));
        o.insert("sequence_number".into(), Value::from(self.seq));
        if let Value::Object(rest) = data {
            o.extend(rest);
        }
        let data = Value::Object(o);
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(data.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn start(&mut self, upstream_id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(upstream_id);
        let r = envelope(
            &self.id,
            &self.model,
            self.created,
            "in_progress",
            Vec::new(),
            Value::Null,
        );
        self.event("response.created", json!({"response": r}), out);
        self.event("response.in_progress", json!({"response": r}), out);
    }

    fn item_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            self.id.trim_start_matches("resp_"),
            self.items.len()
        )
    }

    /// The output index of model block `block`, adding its item (and its first part) when new.
    fn open(&mut self, block: usize, make: ItemKind, out: &mut Vec<u8>) -> usize {
        if let Some(i) = self.items.iter().position(|it| it.block == block) {
            return i;
        }
        self.start("", out);
        // One item streams at a time: a new text or reasoning block finishes the one before
        // (tool calls stay open until the end, as an upstream may interleave their fragments).
        self.close_where(|k| !matches!(k, ItemKind::Call { .. }), out);
        let i = self.items.len();
        let (id, added) = match &make {
            ItemKind::Message { .. } => {
                let id = self.item_id("msg");
                let mut v = message_item(&id, "", "in_progress");
                v["content"] = json!([]);
                (id, v)
            }
            ItemKind::Call { call_id, name, .. } => {
                let id = self.item_id("fc");
                let v = call_item(&id, call_id, name, "", "in_progress");
                (id, v)
            }
            ItemKind::Reasoning { .. } => {
                let id = self.item_id("rs");
                (id.clone(), reasoning_item(&id, None, None))
            }
        };
        self.event(
            "response.output_item.added",
            json!({"output_index": i, "item": added}),
            out,
        );
        match &make {
            ItemKind::Message { .. } => self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": i, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                out,
            ),
            ItemKind::Reasoning { .. } => self.event(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": i, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
                out,
            ),
            ItemKind::Call { .. } => {}
        }
        self.items.push(Item {
            block,
            id,
            kind: make,
            done: false,
            final_item: None,
        });
        i
    }

    /// Finishes item `i`: its `.done` events and `response.output_item.done`.
    fn close(&mut self, i: usize, out: &mut Vec<u8>) {
        let Some(item) = self.items.get(i) else {
            return;
        };
        if item.done {
            return;
        }
        let id = item.id.clone();
        let final_item = match &item.kind {
            ItemKind::Message { text } => {
                let text = text.clone();
                self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": i, "content_index": 0,
                        "text": text, "logprobs": []}),
                    out,
                );
                self.event(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": i, "content_index": 0,
                        "part": {"type": "output_text", "text": text, "annotations": []}}),
                    out,
                );
                message_item(&id, &text, "completed")
            }
            ItemKind::Call {
                call_id,
                name,
                args,
            } => {
                let (call_id, name, args) = (call_id.clone(), name.clone(), args.clone());
                self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": i, "name": name, "arguments": args}),
                    out,
                );
                call_item(&id, &call_id, &name, &args, "completed")
            }
            ItemKind::Reasoning { text, signature } => {
                let (text, signature) = (text.clone(), signature.clone());
                self.event(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "text": text}),
                    out,
                );
                self.event(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": i, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}}),
                    out,
                );
                reasoning_item(&id, Some(&text), Some(&signature))
            }
        };
        self.event(
            "response.output_item.done",
            json!({"output_index": i, "item": final_item}),
            out,
        );
        if let Some(item) = self.items.get_mut(i) {
            item.done = true;
            item.final_item = Some(final_item);
        }
    }

    fn close_where(&mut self, which: impl Fn(&ItemKind) -> bool, out: &mut Vec<u8>) {
        for i in 0..self.items.len() {
            if !self.items[i].done && which(&self.items[i].kind) {
                self.close(i, out);
            }
        }
    }

    pub fn push(&mut self, e: &Event, out: &mut Vec<u8>) {
        match e {
            Event::Start { id, .. } => self.start(id, out),
            Event::TextDelta { index, text } => {
                let i = self.open(
                    *index,
                    ItemKind::Message {
                        text: String::new(),
                    },
                    out,
                );
                if let Some(ItemKind::Message { text: all }) =
                    self.items.get_mut(i).map(|it| &mut it.kind)
                {
                    all.push_str(text);
                }
                let id = self.items[i].id.clone();
                self.event(
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": i, "content_index": 0,
                        "delta": text, "logprobs": []}),
                    out,
                );
            }
            Event::ThinkingDelta { index, text } => {
                let i = self.open(
                    *index,
                    ItemKind::Reasoning {
                        text: String::new(),
                        signature: String::new(),
                    },
                    out,
                );
                if let Some(ItemKind::Reasoning { text: all, .. }) =
                    self.items.get_mut(i).map(|it| &mut it.kind)
                {
                    all.push_str(text);
                }
                let id = self.items[i].id.clone();
                self.event(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "delta": text}),
                    out,
                );
            }
            Event::Signature { index, signature } => {
                if let Some(ItemKind::Reasoning { signature: s, .. }) = self
                    .items
                    .iter_mut()
                    .find(|it| it.block == *index)
                    .map(|it| &mut it.kind)
                {
                    s.push_str(signature);
                }
            }
            Event::ToolStart { index, id, name } => {
                self.open(
                    *index,
                    ItemKind::Call {
                        call_id: id.clone(),
                        name: name.clone(),
                        args: String::new(),
                    },
                    out,
                );
            }
            Event::ToolArgs { index, fragment } => {
                let Some(i) = self.items.iter().position(|it| it.block == *index) else {
                    return;
                };
                if self.items[i].done {
                    return;
                }
                if let ItemKind::Call { args, .. } = &mut self.items[i].kind {
                    args.push_str(fragment);
                }
                let id = self.items[i].id.clone();
                self.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": i, "delta": fragment}),
                    out,
                );
            }
            Event::BlockStop { index } => {
                if let Some(i) = self.items.iter().position(|it| it.block == *index)
                    && !matches!(self.items[i].kind, ItemKind::Call { .. })
                {
                    self.close(i, out);
                }
            }
            Event::Finish(f) => {
                self.finish = Some(*f);
                self.close_where(|_| true, out);
            }
            Event::Usage(_) | Event::Done | Event::Error { .. } => {}
        }
    }

    fn output(&self) -> Vec<Value> {
        self.items
            .iter()
            .filter_map(|it| it.final_item.clone())
            .collect()
    }

    /// After the charge: `response.completed` (or `response.incomplete`) with the whole
    /// response and its usage.
    pub fn tail(&mut self, usage_now: &Usage, out: &mut Vec<u8>) {
        self.start("", out);
        self.close_where(|_| true, out);
        let (st, incomplete) = status(self.finish);
        let mut r = envelope(
            &self.id,
            &self.model,
            self.created,
            st,
            self.output(),
            usage(usage_now),
        );
        r["incomplete_details"] = incomplete;
        let name = if st == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.event(name, json!({"response": r}), out);
    }

    /// A failure mid-stream: `response.failed`, the response's status `failed` with the error.
    pub fn error(&mut self, message: &str, code: &str, out: &mut Vec<u8>) {
        self.start("", out);
        let mut r = envelope(
            &self.id,
            &self.model,
            self.created,
            "failed",
            self.output(),
            Value::Null,
        );
        r["error"] = json!({"code": code, "message": message});
        self.event("response.failed", json!({"response": r}), out);
    }
}

/// OpenAI's Responses `error` event, for a passthrough stream that failed in sluice (the
/// response's own events are upstream's, so sluice cannot write a `response.failed` of it).
pub fn error_event(message: &str, code: &str, out: &mut Vec<u8>) {
    let v = json!({"type": "error", "code": code, "message": message, "param": null});
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
            .collect()
    }

    #[test]
    fn a_tool_turn_streams_in_the_responses_order() {
        let mut enc = StreamEncoder::new("m", 1);
        let mut out = Vec::new();
        for e in [
            Event::Start {
                id: "chatcmpl-x".into(),
                model: "u".into(),
            },
            Event::ThinkingDelta {
                index: 0,
                text: "hm".into(),
            },
            Event::TextDelta {
                index: 1,
                text: "Let".into(),
            },
            Event::BlockStop { index: 1 },
            Event::ToolStart {
                index: 2,
                id: "c1".into(),
                name: "w".into(),
            },
            Event::ToolStart {
                index: 3,
                id: "c2".into(),
                name: "t".into(),
            },
            Event::ToolArgs {
                index: 2,
                fragment: "{}".into(),
            },
            Event::Finish(Finish::ToolCalls),
        ] {
            enc.push(&e, &mut out);
        }
        enc.tail(&Usage::new(10, 5), &mut out);
        let n = names(&out);
        assert_eq!(
            n,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let text = String::from_utf8_lossy(&out);
        let last = text
            .lines()
            .rev()
            .find(|l| l.starts_with("data: "))
            .unwrap();
        let v: Value = serde_json::from_str(&last[6..]).unwrap();
        assert_eq!(v["sequence_number"], 21);
        assert_eq!(v["response"]["id"], "resp_x");
        assert_eq!(v["response"]["output"].as_array().unwrap().len(), 4);
        assert_eq!(v["response"]["usage"]["input_tokens"], 10);
    }
}
