//! `POST /v1/messages/count_tokens`: Anthropic's token count, answered here with the
//! gateway's own tokenizer (tiktoken; no upstream call, nothing charged). The figure is the
//! count the relay itself bills by when an upstream reports no usage.

use crate::auth::KeyCaller;
use crate::billing::tokens;
use crate::error::ApiError;
use crate::formats;
use crate::state::AppState;
use crate::web::{self, Resp};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn count_tokens(
    state: &Arc<AppState>,
    caller: &KeyCaller,
    req: http::Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (parts, body) = web::read_body(req, state.catalog.options().relay.max_body_bytes).await?;
    let mut value: Value = web::parse_json(&parts, &body)?;
    // The count API takes no `max_tokens`; the Messages decoder wants one.
    if let Value::Object(o) = &mut value {
        o.entry("max_tokens").or_insert(json!(1));
    }
    let r = formats::anthropic::client_request::decode(&value)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(allowed) = &caller.key.models
        && !allowed.contains(&r.model)
    {
        return Err(ApiError::ModelNotAllowed(format!(
            "this API key may not use model {:?}",
            r.model
        )));
    }
    let doc = formats::openai::upstream_request::encode(&r);
    let model = r.model.clone();
    // tiktoken's first use loads its tables: off the async threads.
    let n = tokio::task::spawn_blocking(move || {
        tokens::chat_prompt_tokens(&model, &doc, tokens::Mode::Exact)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("token counting failed: {e}")))?;
    Ok(web::json(
        http::StatusCode::OK,
        &json!({ "input_tokens": n }),
    ))
}
