//! `GET` and `DELETE /v1/responses/{id}`: a response the Responses API stored upstream is read
//! or deleted at the channel that created it, by the user whose key created it.
//!
//! Sluice remembers (response id → channel, key, user) in memory ([`crate::state::Responses`]),
//! for responses created by passthrough: bounded (the oldest forgotten first) and aged (30
//! days, OpenAI's own retention of stored responses). Memory rather than a table: the
//! record is written on every Responses call, and the hot path must not wait on SQLite, while
//! losing the map on a restart costs only a clear 404 (the upstream still has the response;
//! its owner can fetch it with the provider's own key). A response of another user is a 404
//! too, so ids cannot be probed across accounts.

use crate::auth::KeyCaller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::state::MAX_AGE;
use crate::web::{self, Resp};
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// Largest stored response read back from upstream.
const MAX_BODY: usize = 16 * 1024 * 1024;
use std::sync::Arc;

/// The id in `/v1/responses/{id}` (the route's one parameter).
fn id_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/responses/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

pub async fn handle(
    state: &Arc<AppState>,
    caller: &KeyCaller,
    req: http::Request<Incoming>,
) -> Result<Resp, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let id = id_of(&path).ok_or_else(|| ApiError::NotFound("no response id in the path".into()))?;
    let not_found = || {
        ApiError::NotFound(format!(
            "no response {id:?} created through this gateway by your account is known (sluice remembers responses in memory: a restart or {} days forget them)",
            MAX_AGE.as_secs() / 86400
        ))
    };
    let owner = state.responses.lookup(id).ok_or_else(not_found)?;
    if owner.user_id != caller.user.id {
        return Err(not_found());
    }
    let channel = state
        .catalog
        .channels()
        .iter()
        .find(|c| c.id == owner.channel_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "the channel that created response {id:?} no longer exists"
            ))
        })?;
    // One of the channel's usable keys (a response is readable by any key of the provider
    // account that created it).
    let key = channel.keys.order().next().ok_or_else(|| {
        ApiError::UpstreamFailed("the channel that created this response has no usable key".into())
    })?;
    let base = channel.base_url.trim_end_matches('/');
    let (mut url, auth_name, auth) = if channel.kind == "azure" {
        // Azure serves the Responses API on its v1 route.
        let base = base.strip_suffix("/openai").unwrap_or(base);
        let url = format!("{base}/openai/v1/responses/{id}");
        (
            url,
            http::HeaderName::from_static("api-key"),
            key.secret.expose().to_string(),
        )
    } else {
        let url = format!("{base}/responses/{id}");
        (
            url,
            header::AUTHORIZATION,
            format!("Bearer {}", key.secret.expose()),
        )
    };
    if let Some(q) = query {
        url.push('?');
        url.push_str(&q);
    }
    let mut auth = HeaderValue::from_str(&auth)
        .map_err(|_| ApiError::Internal("the channel's key is not a valid header".into()))?;
    auth.set_sensitive(true);
    let upstream_req = http::Request::builder()
        .method(method.clone())
        .uri(url)
        .header(auth_name, auth)
        .header(header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| ApiError::Internal(format!("the channel has an unusable base URL: {e}")))?;
    let opts = state.catalog.options();
    let resp = state
        .upstream
        .send(upstream_req, &opts.relay)
        .await
        .map_err(|e| match e {
            crate::upstream::SendError::Timeout => {
                ApiError::UpstreamTimeout("the upstream did not answer in time; try again".into())
            }
            crate::upstream::SendError::Connect(_) => {
                ApiError::UpstreamFailed("the upstream could not be reached; try again".into())
            }
        })?;
    let status = resp.status();
    let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = tokio::time::timeout(
        opts.relay.idle_timeout(),
        http_body_util::Limited::new(resp.into_body(), MAX_BODY).collect(),
    )
    .await
    .map_err(|_| ApiError::UpstreamTimeout("the upstream went silent mid-answer".into()))?
    .map_err(|_| ApiError::UpstreamFailed("the upstream's answer could not be read".into()))?
    .to_bytes();
    if method == Method::DELETE && status.is_success() {
        state.responses.forget(id);
    }
    let mut out = http::Response::new(web::full(body));
    *out.status_mut() = status;
    if let Some(ct) = ct {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_last_segment() {
        assert_eq!(id_of("/v1/responses/resp_1"), Some("resp_1"));
        assert_eq!(id_of("/v1/responses/a/b"), None);
        assert_eq!(id_of("/v1/responses/"), None);
    }
}
