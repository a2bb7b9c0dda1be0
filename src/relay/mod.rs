//! The OpenAI-compatible relay: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! plus `/v1/models` and the dashboard billing endpoints.
//!
//! A call: authenticate the key (memory) → read the body (bounded) → price the model → pick
//! channels → reserve the estimate in the ledger → try channels in order, moving on after a
//! connect error, timeout, 401/403, 429 or 5xx while nothing has reached the client → pass the
//! answer through (`stream` for SSE) → settle: charge and log row in one transaction,
//! committed before the last byte (`data: [DONE]`) goes out.
//!
//! The work after the body is read runs in its own task, so a client that hangs up cancels
//! nothing: upstream is still read to the end and the call is charged and logged.

mod answer;
mod attempts;
mod convert;
mod count;
mod dashboard;
pub mod limit;
mod prepare;
mod reserve;
pub mod route;
mod settle;
mod sse_in;
pub mod stored;
mod stream;

pub use prepare::prompt_tokens;

use crate::auth::{self, KeyCaller};
use crate::channel_health as health;
use crate::error::ApiError;
use crate::formats::Format;
use crate::ledger::Reservation;
use crate::logging::REQUEST_ID;
use crate::state::AppState;
use crate::store::channels::ChannelRow;
use crate::tasks::until_cut;
use crate::upstream::{Endpoint, SendError, providers};
use crate::web::{self as web, Resp};
use http::StatusCode;
use hyper::body::Incoming;
use prepare::Prepared;
use settle::Call;
use std::sync::Arc;
use std::time::Instant;

/// The routes a sluice API key calls (the server's route table names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayRoute {
    ChatCompletions,
    Completions,
    Embeddings,
    /// Anthropic Messages.
    Messages,
    /// Anthropic's token count: local, free.
    CountTokens,
    /// OpenAI Responses.
    Responses,
    /// `GET` / `DELETE /v1/responses/{id}`: a stored response, at the channel that made it.
    StoredResponse,
    Models,
    BillingSubscription,
    BillingUsage,
}

impl RelayRoute {
    /// The client format the route speaks, and answers its errors in.
    pub fn format(self) -> Format {
        match self {
            RelayRoute::Messages | RelayRoute::CountTokens => Format::Anthropic,
            RelayRoute::Responses | RelayRoute::StoredResponse => Format::Responses,
            RelayRoute::ChatCompletions
            | RelayRoute::Completions
            | RelayRoute::Embeddings
            | RelayRoute::Models
            | RelayRoute::BillingSubscription
            | RelayRoute::BillingUsage => Format::OpenAiChat,
        }
    }
}

pub async fn handle(
    state: &Arc<AppState>,
    route: RelayRoute,
    req: http::Request<Incoming>,
) -> Result<Resp, ApiError> {
    let caller = auth::authenticate_key(&state.catalog, req.headers())?;
    match route {
        RelayRoute::Models => Ok(dashboard::models(state, &caller)),
        RelayRoute::BillingSubscription => dashboard::subscription(state, &caller).await,
        RelayRoute::BillingUsage => dashboard::usage(state, &caller).await,
        RelayRoute::CountTokens => count::count_tokens(state, &caller, req).await,
        RelayRoute::Messages => relay(state, caller, Endpoint::Chat, route, req, false).await,
        RelayRoute::StoredResponse => stored::handle(state, &caller, req).await,
        RelayRoute::Responses => relay(state, caller, Endpoint::Responses, route, req, false).await,
        RelayRoute::ChatCompletions => {
            relay(state, caller, Endpoint::Chat, route, req, false).await
        }
        RelayRoute::Completions => {
            relay(state, caller, Endpoint::Completions, route, req, false).await
        }
        RelayRoute::Embeddings => {
            relay(state, caller, Endpoint::Embeddings, route, req, false).await
        }
    }
}

/// The name the playground's calls carry in the logs (they have no key id; usage split by key
/// shows them as key 0).
pub const PLAYGROUND_KEY_NAME: &str = "playground";

/// `POST /api/playground/chat/completions`: a chat call from the console on the signed-in
/// session, relayed and charged like a call through a key of the user's with no limits of its
/// own: the user's balance, group price and rate limits apply.
pub async fn playground(
    state: &Arc<AppState>,
    user_id: i64,
    req: http::Request<Incoming>,
) -> Result<Resp, ApiError> {
    let user = state
        .catalog
        .user(user_id)
        .ok_or_else(|| ApiError::Unauthenticated("the account no longer exists".into()))?;
    if !user.enabled {
        return Err(ApiError::Forbidden("the account is disabled".into()));
    }
    let key = Arc::new(crate::catalog::KeyEntry {
        id: 0,
        user_id,
        name: PLAYGROUND_KEY_NAME.into(),
        enabled: true,
        expires_at: None,
        models: None,
        account: None,
        // 0 = unlimited: the playground has no key limits, only the user's.
        rpm_limit: Some(0),
        tpm_limit: Some(0),
    });
    let route = RelayRoute::ChatCompletions;
    relay(
        state,
        KeyCaller { key, user },
        Endpoint::Chat,
        route,
        req,
        true,
    )
    .await
}

async fn relay(
    state: &Arc<AppState>,
    caller: KeyCaller,
    endpoint: Endpoint,
    route: RelayRoute,
    req: http::Request<Incoming>,
    playground: bool,
) -> Result<Resp, ApiError> {
    let format = route.format();
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::ShuttingDown);
    }
    // A call the store cannot bill is not made: nothing goes upstream (and no answer goes out
    // free) while commits fail; the client is told to retry.
    if !crate::dbhealth::store_ready(state) {
        return Err(ApiError::StoreUnready);
    }
    let started = Instant::now();
    let (parts, body) = web::read_body(req, state.catalog.options().relay.max_body_bytes).await?;
    let mut prepared = prepare::prepare(state, &caller, endpoint, format, &parts, body)?;
    let retries = state.catalog.options().relay.retries as usize;
    let channels = route::candidates(
        &state.catalog.channels(),
        &prepared.model,
        &caller.user.group,
        retries + 1,
    );
    if channels.is_empty() {
        // Served when prepare looked, gone since (a channel turned off meanwhile).
        return Err(route::model_not_found(&prepared.model));
    }
    let mut call = Call {
        state: state.clone(),
        key: caller.key,
        user: caller.user,
        endpoint,
        format,
        model: prepared.model.clone(),
        stream: prepared.stream,
        started,
        request_id: crate::logging::current_request_id(),
        permit: crate::ratelimit::Permit::unlimited(),
        client_left: Default::default(),
        playground,
    };
    let rate_tokens = prepared.rate_tokens(&state.catalog.options().relay);
    call.permit = settle::admit(&call, rate_tokens).await?;
    let rate_headers = call.permit.headers;
    let reservation = reserve::reserve(&call, &mut prepared).await?;
    // Detached, so a client disconnect cannot cancel the charge; the handler only waits for
    // it, and if the handler is dropped meanwhile the guard tells the task the client left.
    let rid = call.request_id.clone();
    let leave = settle::LeaveGuard::new(&call.client_left);
    let task =
        tokio::spawn(REQUEST_ID.scope(rid, attempt_all(call, prepared, channels, reservation)));
    let done = task.await;
    leave.disarm();
    match done {
        Ok(Ok(mut resp)) => {
            rate_headers.apply(resp.headers_mut());
            Ok(resp)
        }
        Ok(r) => r,
        Err(e) => Err(ApiError::Internal(format!("the relay task failed: {e}"))),
    }
}

/// Remembers a passed-through response's channel and owner, for `GET/DELETE
/// /v1/responses/{id}` ([`stored`]).
fn remember_response(call: &Call, channel_id: i64, id: &str) {
    call.state.responses.remember(
        id,
        crate::state::Owner {
            channel_id,
            key_id: call.key.id,
            user_id: call.user.id,
        },
    );
}

/// One failed attempt, for the error log row.
struct Failure {
    channel_id: i64,
    what: String,
    status: Option<StatusCode>,
    timeout: bool,
}

async fn attempt_all(
    call: Call,
    p: Prepared,
    channels: Vec<Arc<ChannelRow>>,
    reservation: Reservation,
) -> Result<Resp, ApiError> {
    let state = call.state.clone();
    let _in_flight = state.relays.enter();
    let mut cut = state.cut.subscribe();
    let mut failures: Vec<Failure> = Vec::new();
    // Each channel's usable keys, this call's turn first: a refused key moves the call on to the
    // channel's next key (each at most once), any other failure to the next channel.
    let mut attempts = attempts::Attempts::new(&channels);
    while let Some((channel, key)) = attempts.next(&mut failures) {
        let Some(provider) = providers::get(&channel.kind) else {
            failures.push(Failure {
                channel_id: channel.id,
                what: format!("unknown provider kind {:?}", channel.kind),
                status: None,
                timeout: false,
            });
            attempts.next_channel();
            continue;
        };
        // The channel's format: the same as the client's is passed through, another converted
        // (chat only: completions and embeddings have no counterpart in other formats).
        let upstream = convert::upstream_format(channel, p.client);
        let convertible = matches!(call.endpoint, Endpoint::Chat | Endpoint::Responses);
        if upstream != p.client && !convertible {
            failures.push(Failure {
                channel_id: channel.id,
                what: format!("a {} channel cannot serve this endpoint", channel.kind),
                status: None,
                timeout: false,
            });
            attempts.next_channel();
            continue;
        }
        let body = match p.body_for(channel, upstream, &state.catalog.options().relay) {
            Ok(b) => b,
            Err(e) => return Err(settle::fail(&call, reservation, Some(channel.id), e, "").await),
        };
        // A converted Responses call is a chat one upstream.
        let endpoint = if upstream == Format::Responses || call.endpoint != Endpoint::Responses {
            call.endpoint
        } else {
            Endpoint::Chat
        };
        let mapped = channel.model_mapping.get(&p.model).unwrap_or(&p.model);
        // Gemini names the model and the stream in the URL, not the body.
        let built = match upstream {
            Format::Gemini => {
                providers::gemini::request(channel, key.secret, mapped, p.stream, body)
            }
            Format::OpenAiChat | Format::Anthropic | Format::Responses => {
                provider.build_request(channel, key.secret, mapped, endpoint, body)
            }
        };
        let req = match built {
            Ok(mut r) => {
                if upstream == Format::Anthropic {
                    for (name, v) in &p.anthropic_headers {
                        r.headers_mut().insert(name.clone(), v.clone());
                    }
                }
                r
            }
            Err(e) => {
                failures.push(Failure {
                    channel_id: channel.id,
                    what: e.to_string(),
                    status: None,
                    timeout: false,
                });
                attempts.next_channel();
                continue;
            }
        };
        if !failures.is_empty() {
            call.state
                .metrics
                .retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let cm = call.state.metrics.channel(channel.id);
        cm.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = Instant::now();
        let opts = call.state.catalog.options();
        let resp = tokio::select! {
            biased;
            // Nothing reached the client: not charged, told to retry.
            () = until_cut(&mut cut) => {
                let e = ApiError::ShuttingDown;
                return Err(settle::fail(&call, reservation, Some(channel.id), e, stream::CUT_MESSAGE).await);
            }
            r = call.state.upstream.send(req, &opts.relay) => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                cm.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let outcome = match e {
                    SendError::Timeout => health::Outcome::Timeout,
                    SendError::Connect(_) => health::Outcome::Connect,
                };
                health::report(&call.state, channel.id, outcome);
                log::warn!("channel {} ({}): {e}", channel.id, channel.name);
                failures.push(Failure {
                    channel_id: channel.id,
                    timeout: matches!(e, SendError::Timeout),
                    what: e.to_string(),
                    status: None,
                });
                attempts.next_channel();
                continue;
            }
        };
        cm.ttfb.observe(sent.elapsed());
        let status = resp.status();
        // Every answer feeds the channel's error window; a refusal turns off the key.
        health::report(
            &call.state,
            channel.id,
            health::Outcome::Status(status.as_u16()),
        );
        if status.is_client_error() {
            health::keys::key_refused(&call.state, channel, key.index, status.as_u16());
        }
        let retryable = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN;
        if retryable {
            cm.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let fp = channel.keys.fingerprint(key.index).unwrap_or("");
            log::warn!(
                "channel {} ({}) answered {status} (key {fp})",
                channel.id,
                channel.name
            );
            failures.push(Failure {
                channel_id: channel.id,
                what: format!("upstream answered {status} (key {fp})"),
                status: Some(status),
                timeout: false,
            });
            // Drop the body: the pooled connection is reused only if fully read, but an
            // error body is not worth waiting for.
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                attempts.next_channel();
            }
            continue;
        }
        let ttfb = call.started.elapsed();
        if !status.is_success() {
            // The client's request is at fault (400, 404, 422…): pass upstream's answer on.
            let convert = (upstream != p.client).then_some(p.client);
            return Ok(answer::pass_error(&call, reservation, channel, resp, convert).await);
        }
        let ctx = settle::Answer {
            channel_id: channel.id,
            upstream_model: mapped.clone(),
            request: p.counted(),
            price: p.price,
            prompt_floor: p.prompt_floor,
            ttfb,
        };
        let lane = if upstream == p.client {
            convert::Lane::Pass
        } else {
            convert::Lane::Convert {
                upstream,
                info: convert::call_info(&p),
            }
        };
        if p.stream {
            return Ok(stream::start(
                call,
                ctx,
                resp,
                reservation,
                p.client_wants_usage,
                provider,
                lane,
            ));
        }
        return Ok(answer::whole(call, ctx, resp, reservation, provider, cut, lane).await);
    }
    let err = final_error(&failures);
    let detail: Vec<String> = failures
        .iter()
        .map(|f| format!("channel {}: {}", f.channel_id, f.what))
        .collect();
    let last_channel = failures.last().map(|f| f.channel_id);
    Err(settle::fail(&call, reservation, last_channel, err, &detail.join("; ")).await)
}

fn final_error(failures: &[Failure]) -> ApiError {
    match failures.last() {
        Some(f) if f.timeout => {
            ApiError::UpstreamTimeout("the upstream did not answer in time; try again".into())
        }
        Some(f) if f.status == Some(StatusCode::TOO_MANY_REQUESTS) => {
            ApiError::UpstreamRateLimited("the upstream is rate limiting; try again shortly".into())
        }
        _ => ApiError::UpstreamFailed(format!(
            "the upstream failed ({} attempt{}); try again",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        )),
    }
}
