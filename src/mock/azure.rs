//! The mock as an Azure OpenAI resource: Azure's routes, `api-key` header and `api-version`
//! rule in front of the same answers as `/v1`. What a real resource checks, this checks too,
//! so a client that the mock accepts (the `openai` SDK's `AzureOpenAI`, sluice's azure
//! channels) sends what Azure takes:
//!
//! - `POST /openai/deployments/{deployment}/chat/completions|completions|embeddings` needs
//!   `?api-version=…`; without it Azure answers 404 `{"error":{"code":"404","message":"Resource
//!   not found"}}`, and so does the mock. The deployment decides the model (the body's `model`
//!   is ignored, as Azure does); the mock uses the deployment name as the model, so its
//!   `mock-*` markers work here too.
//! - `POST /openai/v1/chat/completions|completions|embeddings`: no api-version; the body's
//!   `model` names the deployment.
//! - The key comes in `api-key`; without one (a bearer token alone included) the answer is
//!   Azure's 401. `mock-key-<status>` in it fails the call as on `/v1`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::handler::{Behaviour, Reply, json, respond};
use super::render::Kind;
use super::{RawRequest, State};

const NOT_FOUND: &str = r#"{"error":{"code":"404","message":"Resource not found"}}"#;
const DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;

/// What an `/openai/` path asks for: the endpoint (`None` = embeddings) and, on the
/// deployments route, the deployment.
fn route(path: &str) -> Option<(Option<Kind>, Option<&str>)> {
    let endpoint = |rest: &str| match rest {
        "chat/completions" => Some(Some(Kind::Chat)),
        "completions" => Some(Some(Kind::Text)),
        "embeddings" => Some(None),
        _ => None,
    };
    if let Some(rest) = path.strip_prefix("/openai/v1/") {
        return endpoint(rest).map(|e| (e, None));
    }
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (deployment, rest) = rest.split_once('/')?;
    if deployment.is_empty() {
        return None;
    }
    endpoint(rest).map(|e| (e, Some(deployment)))
}

fn api_version(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .filter(|v| !v.is_empty())
}

pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    state.calls.fetch_add(1, Ordering::Relaxed);
    state.call_seen.notify_waiters();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let api_key = req.headers().get("api-key").cloned();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return Err(std::io::Error::other(err)),
    };
    state.record(RawRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorization,
        anthropic: Vec::new(),
        api_key: api_key.clone(),
        body: body.clone(),
    });
    let Some((kind, deployment)) = route(&path).filter(|_| method == Method::POST) else {
        return Ok(azure_error(StatusCode::NOT_FOUND, NOT_FOUND));
    };
    if deployment.is_some() && api_version(query.as_deref()).is_none() {
        return Ok(azure_error(StatusCode::NOT_FOUND, NOT_FOUND));
    }
    let Some(key) = api_key
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
    else {
        return Ok(azure_error(StatusCode::UNAUTHORIZED, DENIED));
    };
    let key_fail = Behaviour::key_failure(key);
    if matches!(
        key_fail,
        Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
    ) {
        return Ok(azure_error(StatusCode::UNAUTHORIZED, DENIED));
    }
    let body = match deployment {
        Some(d) => with_model(&body, d)?,
        None => body,
    };
    respond(&state, &body, kind, key_fail).await
}

/// The body with `model` set to the deployment: the deployment, not the body, picks the model.
fn with_model(body: &Bytes, deployment: &str) -> Result<Bytes, std::io::Error> {
    let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_slice(body) else {
        // Not a JSON object: let the common path answer its 400.
        return Ok(body.clone());
    };
    let name = percent_encoding::percent_decode_str(deployment).decode_utf8_lossy();
    doc.insert("model".into(), serde_json::Value::String(name.into_owned()));
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .map_err(std::io::Error::other)
}

fn azure_error(status: StatusCode, body: &'static str) -> http::Response<super::body::MockBody> {
    json(status, Bytes::from_static(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_api_version() {
        assert!(matches!(
            route("/openai/deployments/dep-1/chat/completions"),
            Some((Some(Kind::Chat), Some("dep-1")))
        ));
        assert!(matches!(route("/openai/v1/embeddings"), Some((None, None))));
        assert!(route("/openai/deployments//chat/completions").is_none());
        assert!(route("/openai/deployments/d/models").is_none());
        assert_eq!(
            api_version(Some("a=1&api-version=2024-10-21")),
            Some("2024-10-21")
        );
        assert_eq!(api_version(Some("api-version=")), None);
        assert_eq!(api_version(None), None);
    }
}
