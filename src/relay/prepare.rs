//! Reading a relay request: parse and check the body, price the model, estimate the prompt,
//! read the output limits asked for; and, once the reservation has fixed the limit, the body
//! each channel is sent.

use super::limit::{self, Asked};
use crate::auth::KeyCaller;
use crate::billing::{Price, PricingError, tokens};
use crate::error::ApiError;
use crate::formats::{self, Format, model};
use crate::settings::modules::RelayOptions;
use crate::state::AppState;
use crate::store::channels::ChannelRow;
use crate::upstream::Endpoint;
use crate::web;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What the client asked for, after parsing and checks.
pub struct Prepared {
    /// The request as sent upstream: the client's, with the output limit written (see
    /// [`Prepared::set_limit`]) and, for a stream, usage asked for.
    pub doc: Arc<Map<String, Value>>,
    /// The client's format (the route's).
    pub client: Format,
    /// The request in OpenAI's chat shape, which the token counter reads, for an Anthropic
    /// client (an OpenAI client's is `doc`: no second reference, so writing the limit into it
    /// copies nothing).
    count_doc: Option<Arc<Map<String, Value>>>,
    /// The request in the model, for a channel of another format: decoded once, on first use
    /// (an OpenAI client on an OpenAI channel never decodes it).
    model_req: std::sync::OnceLock<Result<model::Request, formats::FormatError>>,
    /// `anthropic-version` and `anthropic-beta` from the client, for an anthropic channel.
    pub anthropic_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// `doc` serialised, for a channel that maps no model name. Never the client's own bytes:
    /// a key sent twice (`"model"`, `"max_tokens"`) is its last value here but its first in
    /// some upstream JSON parsers (cJSON), so a relayed body could ask for a model or an
    /// output other than the one priced and reserved; the parsed document has one of each.
    pub body: Bytes,
    pub endpoint: Endpoint,
    pub model: String,
    pub stream: bool,
    pub client_wants_usage: bool,
    /// Prompt tokens, estimated (never below tiktoken's count for ordinary text).
    pub prompt: u64,
    /// Prompt tokens no tokenizer can count fewer of ([`tokens::chat_prompt_floor`]).
    pub prompt_floor: u64,
    pub asked: Asked,
    /// The output limit written into the request; `None` for embeddings.
    pub limit: Option<u64>,
    pub price: Price,
}

/// The client's `anthropic-version` and `anthropic-beta`, passed on to anthropic channels.
fn anthropic_headers(parts: &http::request::Parts) -> Vec<(http::HeaderName, http::HeaderValue)> {
    ["anthropic-version", "anthropic-beta"]
        .into_iter()
        .filter_map(|n| {
            let v = parts.headers.get(n)?.clone();
            Some((http::HeaderName::from_static(n), v))
        })
        .collect()
}

pub fn prepare(
    state: &AppState,
    caller: &KeyCaller,
    endpoint: Endpoint,
    client: Format,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Prepared, ApiError> {
    let value: Value = web::parse_json(parts, &body)?;
    // An Anthropic request is checked whole here (the message names the field at fault) and
    // turned into OpenAI's shape for the token counter.
    let decoded = match client {
        Format::Anthropic => Some(
            formats::anthropic::client_request::decode(&value)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        // No route speaks Gemini to clients.
        Format::OpenAiChat | Format::Gemini => None,
        // Read leniently, for the count only: a passthrough may carry what conversion refuses
        // (built-in tools, previous_response_id); a converting channel decodes it strictly
        // (`model_request`).
        Format::Responses => Some(
            formats::responses::client_request::decode_for_count(&value)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
    };
    let Value::Object(mut doc) = value else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let model = match doc.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(ApiError::BadRequest(
                "'model' is required and must be a string".into(),
            ));
        }
    };
    if let Some(allowed) = &caller.key.models
        && !allowed.contains(&model)
    {
        return Err(ApiError::ModelNotAllowed(format!(
            "this API key may not use model {model:?}"
        )));
    }
    super::route::ensure_served(&state.catalog.channels(), &model, &caller.user.group)?;
    let price = state
        .catalog
        .options()
        .pricing
        .price(&model, &caller.user.group)
        .map_err(|e| match e {
            PricingError::Unpriced(_) => ApiError::Forbidden(e.to_string()),
            PricingError::Invalid(m) => ApiError::Internal(m),
        })?;
    if client == Format::Responses && doc.get("background").and_then(Value::as_bool) == Some(true) {
        // A background response is generated after the call has answered: its usage never
        // reaches sluice, so it could not be billed.
        return Err(ApiError::BadRequest(
            "'background' responses cannot be used through this gateway: it bills a call when its answer ends, and a background response ends after the call has returned; leave 'background' out".into(),
        ));
    }
    let stream = endpoint != Endpoint::Embeddings
        && doc.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut asked = limit::asked(endpoint, &doc)?;
    let count_doc = match &decoded {
        Some(r) => {
            // Cache writes cost more than full rate: reserve for them when asked for.
            asked.writes_cache = body.windows(15).any(|w| w == b"\"cache_control\"");
            Arc::new(formats::openai::upstream_request::encode(r))
        }
        None => Arc::new(Map::new()),
    };
    let counted = if decoded.is_some() { &count_doc } else { &doc };
    let prompt = prompt_tokens(endpoint, &model, counted, tokens::Mode::Estimate);
    let prompt_floor = match endpoint {
        Endpoint::Chat | Endpoint::Responses => tokens::chat_prompt_floor(counted),
        Endpoint::Completions => tokens::input_floor(doc.get("prompt")),
        Endpoint::Embeddings => tokens::input_floor(doc.get("input")),
    };
    let mut client_wants_usage = false;
    if stream && client == Format::OpenAiChat {
        // Ask upstream for usage in the last chunk; hide that chunk from a client that did not ask.
        let opts = doc
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = opts {
            client_wants_usage = o
                .get("include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !client_wants_usage {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        } else {
            return Err(ApiError::BadRequest(
                "'stream_options' must be an object".into(),
            ));
        }
    }
    // Chat and completions are serialised once their limit is written (set_limit).
    let body = match endpoint {
        Endpoint::Embeddings => serialise(&doc)?,
        Endpoint::Chat | Endpoint::Completions | Endpoint::Responses => Bytes::new(),
    };
    let doc = Arc::new(doc);
    let decoded_some = decoded.is_some();
    let model_req = std::sync::OnceLock::new();
    if let Some(r) = decoded
        && client == Format::Anthropic
    {
        let _ = model_req.set(Ok(r));
    }
    Ok(Prepared {
        count_doc: decoded_some.then_some(count_doc),
        doc,
        client,
        model_req,
        anthropic_headers: anthropic_headers(parts),
        body,
        endpoint,
        model,
        stream,
        client_wants_usage,
        prompt,
        prompt_floor,
        asked,
        limit: None,
        price,
    })
}

/// Prompt tokens of a request body: estimated for the reservation, exact when billing a call
/// whose upstream reported no usage.
pub fn prompt_tokens(
    endpoint: Endpoint,
    model: &str,
    doc: &Map<String, Value>,
    mode: tokens::Mode,
) -> u64 {
    match endpoint {
        // A Responses request is counted in chat's shape (see `Prepared::count_doc`).
        Endpoint::Chat | Endpoint::Responses => tokens::chat_prompt_tokens(model, doc, mode),
        Endpoint::Completions => tokens::input_tokens(model, doc.get("prompt"), mode),
        Endpoint::Embeddings => tokens::input_tokens(model, doc.get("input"), mode),
    }
}

impl Prepared {
    /// Tokens counted against tokens-per-minute limits at admission: the prompt and the
    /// output asked for, or `relay.default_completion_estimate` (at most the model's limit)
    /// when none was (corrected to the real count at settle).
    pub fn rate_tokens(&self, o: &RelayOptions) -> u64 {
        let output = match self.endpoint {
            Endpoint::Embeddings => 0,
            _ => self.asked.max.unwrap_or_else(|| {
                limit::model_cap(self.endpoint, &self.model, o).min(o.default_completion_estimate)
            }),
        };
        self.prompt
            .saturating_add(output.saturating_mul(self.asked.copies))
    }

    /// The most this call can cost with output `limit`.
    pub fn cost(&self, limit: u64) -> i64 {
        limit::cost(&self.price, self.prompt, &self.asked, limit)
    }

    /// Writes the reserved output `limit` into the request (in the field the client's model
    /// takes) and serialises it once.
    pub fn set_limit(&mut self, limit: u64, o: &RelayOptions) -> Result<(), ApiError> {
        let field = limit::field_in(self.client, self.endpoint, &self.model, o);
        let doc = Arc::make_mut(&mut self.doc);
        limit::write(doc, field, limit);
        self.limit = Some(limit);
        self.body = serialise(doc)?;
        // The OpenAI shape of an Anthropic request is the body an OpenAI channel gets: the
        // limit goes in it too (its only reference: nothing is copied).
        if let Some(cd) = &mut self.count_doc {
            let field = limit::field_in(Format::OpenAiChat, self.endpoint, &self.model, o);
            limit::write(Arc::make_mut(cd), field, limit);
        }
        Ok(())
    }

    /// The body for one channel. A channel of the client's format gets the client's body
    /// (passthrough): the prepared bytes, or re-serialised with the channel's model name (and
    /// the limit in the field that model takes). One of another format gets the request
    /// converted through the model.
    pub fn body_for(
        &self,
        channel: &ChannelRow,
        upstream: Format,
        o: &RelayOptions,
    ) -> Result<Bytes, ApiError> {
        if upstream != self.client {
            return self.converted(channel, upstream, o);
        }
        let Some(mapped) = channel.model_mapping.get(&self.model) else {
            return Ok(self.body.clone());
        };
        let mut doc = (*self.doc).clone();
        doc.insert("model".into(), Value::String(mapped.clone()));
        if let Some(limit) = self.limit {
            limit::write(
                &mut doc,
                limit::field_in(upstream, self.endpoint, mapped, o),
                limit,
            );
        }
        serialise(&doc)
    }

    /// The request as the token counter reads it (OpenAI's chat shape).
    pub fn counted(&self) -> Arc<Map<String, Value>> {
        self.count_doc.clone().unwrap_or_else(|| self.doc.clone())
    }

    /// The request in the model (decoded on first use).
    pub fn model_request(&self) -> Result<&model::Request, ApiError> {
        let decoded = self.model_req.get_or_init(|| match self.client {
            Format::OpenAiChat | Format::Gemini => {
                formats::openai::client_request::decode(&Value::Object((*self.doc).clone()))
            }
            Format::Anthropic => {
                formats::anthropic::client_request::decode(&Value::Object((*self.doc).clone()))
            }
            Format::Responses => {
                formats::responses::client_request::decode(&Value::Object((*self.doc).clone()))
            }
        });
        decoded
            .as_ref()
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }

    fn converted(
        &self,
        channel: &ChannelRow,
        upstream: Format,
        o: &RelayOptions,
    ) -> Result<Bytes, ApiError> {
        let mapped = channel.model_mapping.get(&self.model);
        // Only an Anthropic request's counting shape is its OpenAI body: a Responses request's
        // is read leniently (for a passthrough's count), so its conversion decodes it strictly
        // below and refuses what a chat upstream cannot do.
        if upstream == Format::OpenAiChat
            && self.client == Format::Anthropic
            && let Some(cd) = &self.count_doc
        {
            // Made once in `prepare` (for the token count), the limit written in `set_limit`.
            let Some(mapped) = mapped else {
                return serialise(cd);
            };
            let mut doc = (**cd).clone();
            doc.insert("model".into(), Value::String(mapped.clone()));
            if let Some(limit) = self.limit {
                limit::write(
                    &mut doc,
                    limit::field_in(upstream, self.endpoint, mapped, o),
                    limit,
                );
            }
            return serialise(&doc);
        }
        let mut r = self.model_request()?.clone();
        if let Some(mapped) = mapped {
            r.model = mapped.clone();
        }
        r.max_tokens = self.limit.or(r.max_tokens);
        r.stream = self.stream;
        let mut doc = match upstream {
            Format::OpenAiChat => formats::openai::upstream_request::encode(&r),
            Format::Anthropic => formats::anthropic::upstream_request::encode(&r),
            // Gemini's limit is `generationConfig.maxOutputTokens`, written by the encoder.
            Format::Gemini => {
                let doc = formats::gemini::upstream_request::encode(&r)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                return serialise(&doc);
            }
            // Only a Responses client reaches a Responses upstream, and that is passed through.
            Format::Responses => {
                return Err(ApiError::Internal(
                    "no conversion into the Responses format exists".into(),
                ));
            }
        };
        if let Some(limit) = self.limit {
            // The converted request is a chat one whatever the client's route was.
            let field = limit::field_in(upstream, Endpoint::Chat, &r.model, o);
            limit::write(&mut doc, field, limit);
        }
        serialise(&doc)
    }
}

fn serialise(doc: &Map<String, Value>) -> Result<Bytes, ApiError> {
    serde_json::to_vec(doc)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("cannot serialise the request: {e}")))
}
