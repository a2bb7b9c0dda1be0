//! The HTTP server: accept loop, request ids, dispatch through the route table, access log.
//!
//! - [`conn`]: connection caps, header-read and keep-alive timeouts, the drain at shutdown.
//! - [`router`]: the route table (method, path, handler, who may call it).
//! - [`auth`]: keys, sessions, access tokens, passwords, login throttling, CSRF.
//! - [`api`]: the admin and self-service JSON API under `/api`.
//! - [`ui`]: the embedded web UI.
//! - [`http`]: body and response helpers; `download`: files streamed as attachments.
//! - [`cors`]: CORS for the relay routes (browser front-ends), never for `/api`.

pub mod api;
pub mod router;
pub mod ui;

use crate::auth;
use crate::error::ApiError;
use crate::logging::REQUEST_ID;
use crate::state::AppState;
use crate::web::conn::{self, Admission, Phase};
use crate::web::{self, cors};
use ::http::{HeaderValue, Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use router::{Access, Route, RouteResult, Router};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub use crate::web::{Body, Resp};

/// How long relays cut at the end of the grace period get to settle and send their error
/// events, and the connections to write those last bytes.
pub const CUT_BUDGET: Duration = Duration::from_secs(3);
/// After everything left is dropped, how long the relays it unblocked get to settle.
pub const KILL_BUDGET: Duration = Duration::from_secs(1);

/// Serves until `shutdown` resolves, then drains within one grace period
/// (`shutdown_grace_secs`) and returns within `grace + CUT_BUDGET + KILL_BUDGET`:
///
/// 1. Draining: idle connections close at once, busy ones after their response; new
///    connections are still accepted and served once, so `/readyz` answers 503 and new relay
///    calls get 503 while in-flight ones finish. Returns as soon as nothing is in flight.
/// 2. At the deadline the listener closes and every relay still running is cut: a stream ends
///    with an error event and is charged for what it delivered (its log row says it was cut by
///    the shutdown), a call still waiting for upstream is answered 503 and not charged.
/// 3. What is left is dropped.
///
/// The caller then stops the store, which commits every charge queued here.
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let router = Arc::new(Router::new());
    let conns = state.connections.clone();
    let builder = auto::Builder::new(TokioExecutor::new());
    accept_until(&listener, &state, &router, &builder, shutdown).await;

    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    state.draining.store(true, Ordering::SeqCst);
    state.shutdown.send_replace(true);
    conns.set_phase(Phase::Drain);
    log::info!(
        "shutting down: {} requests and {} relays in flight, waiting up to {} s",
        conns.busy(),
        state.relays.get(),
        grace.as_secs()
    );
    // Served once each (no keep-alive), so a load balancer hears /readyz say 503.
    let mut once = auto::Builder::new(TokioExecutor::new());
    once.http1().keep_alive(false);
    let finished = async {
        loop {
            conns.wait_quiet().await;
            state.relays.wait_idle().await;
            if conns.busy() == 0 && state.relays.get() == 0 {
                break;
            }
        }
    };
    let drained = accept_until(
        &listener,
        &state,
        &router,
        &once,
        tokio::time::timeout_at(deadline, finished),
    )
    .await
    .is_ok();
    drop(listener);
    if !drained {
        log::warn!(
            "shutdown grace of {} s is over: cutting {} relays ({} requests in progress)",
            grace.as_secs(),
            state.relays.get(),
            conns.busy()
        );
        state.cut.send_replace(true);
        let settled = async {
            state.relays.wait_idle().await;
            conns.wait_quiet().await;
        };
        if tokio::time::timeout(CUT_BUDGET, settled).await.is_err() {
            log::warn!(
                "{} relays and {} requests still running {} s after the cut; dropping their connections",
                state.relays.get(),
                conns.busy(),
                CUT_BUDGET.as_secs()
            );
        }
    }
    conns.set_phase(Phase::Kill);
    // A stream stuck writing to a client that stopped reading is freed by the drop above and
    // queues its charge now, before the caller stops the writer.
    let _ = tokio::time::timeout(KILL_BUDGET, async {
        conns.wait_closed().await;
        state.relays.wait_idle().await;
    })
    .await;
}

/// Accepts and serves connections until `stop` resolves; returns its output.
async fn accept_until<T>(
    listener: &TcpListener,
    state: &Arc<AppState>,
    router: &Arc<Router>,
    builder: &auto::Builder<TokioExecutor>,
    stop: impl Future<Output = T>,
) -> T {
    let conns = &state.connections;
    tokio::pin!(stop);
    // Set while accept fails for want of descriptors: said once, not once per attempt.
    let mut starved = false;
    loop {
        tokio::select! {
            out = &mut stop => return out,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        conns.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                        if !starved {
                            starved = true;
                            log::warn!(
                                "cannot accept connections: {e} ({} open); retrying as connections close. Raise the open-file limit or lower max_connections",
                                conns.open()
                            );
                        }
                        // Until a connection closes (or briefly, if the descriptors went
                        // elsewhere), instead of spinning on the same error.
                        let _ = tokio::time::timeout(Duration::from_millis(100), conns.wait_closed_one()).await;
                        continue;
                    }
                };
                if std::mem::take(&mut starved) {
                    log::info!("accepting connections again");
                }
                match conns.admit(peer.ip()) {
                    Admission::Admitted(track) => {
                        let (state, router) = (state.clone(), router.clone());
                        conn::spawn(
                            stream,
                            peer,
                            track,
                            conns.clone(),
                            move |req| handle(state.clone(), router.clone(), req, peer),
                            builder,
                        )
                    }
                    Admission::RefusedAddress => {
                        conn::refuse(stream, "too many connections from your address")
                    }
                    Admission::RefusedFull => conn::refuse(stream, "the server is at its connection limit"),
                }
            }
        }
    }
}

pub(crate) async fn handle(
    state: Arc<AppState>,
    router: Arc<Router>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Resp {
    let started = Instant::now();
    let rid = ulid::Ulid::generate().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let ip = auth::client_ip(peer.ip(), req.headers(), &state.config.trusted_proxies);
    let _in_flight = crate::metrics::GaugeGuard::new(&state.metrics.in_flight);
    let class = crate::metrics::Metrics::classify(&path);
    let resp = REQUEST_ID
        .scope(rid.clone(), async {
            let mut resp = dispatch(&state, &router, req, ip, peer.ip()).await;
            if let Ok(v) = HeaderValue::from_str(&rid) {
                resp.headers_mut().insert("x-request-id", v);
            }
            log::info!(
                "{} | {:?} | {} | {} {}",
                resp.status().as_u16(),
                started.elapsed(),
                ip,
                method,
                path
            );
            resp
        })
        .await;
    state.metrics.count_request(class, resp.status().as_u16());
    resp
}

async fn dispatch(
    state: &Arc<AppState>,
    router: &Router,
    req: Request<Incoming>,
    ip: std::net::IpAddr,
    peer: std::net::IpAddr,
) -> Resp {
    let path = req.uri().path().to_string();
    let matched = match router.route(req.method(), &path) {
        RouteResult::Found(m) => m,
        RouteResult::MethodNotAllowed(allow) => {
            if req.method() == Method::OPTIONS
                && router.is_relay(&path)
                && let Some(r) =
                    cors::preflight(&state.catalog.options().cors, req.headers(), &allow)
            {
                return r;
            }
            return web::error_in(
                &ApiError::MethodNotAllowed {
                    method: req.method().to_string(),
                    allow,
                },
                path_format(&path),
            );
        }
        RouteResult::NotFound => {
            if req.method() == Method::GET || req.method() == Method::HEAD {
                let reserved = ["/api", "/v1"]
                    .iter()
                    .any(|p| path == *p || path.starts_with(&format!("{p}/")));
                if !reserved {
                    return ui::serve(&path);
                }
            }
            return web::error_in(
                &ApiError::NotFound(format!("no route for {} {path}", req.method())),
                path_format(&path),
            );
        }
    };
    let route = matched.route;
    let id = matched.id.map(str::to_string);
    let cors_origin = (route.access() == Access::ApiKey)
        .then(|| req.headers().get(::http::header::ORIGIN).cloned())
        .flatten();
    let result = match route {
        Route::Public(h) => api::public(state, h, req, ip).await,
        Route::ApiKey(h) => crate::relay::handle(state, h, req).await,
        Route::Metrics => {
            // Loopback without a proxy's X-Forwarded-For is the local scraper, when allowed.
            let local = state.config.metrics_from_loopback
                && peer.is_loopback()
                && !req.headers().contains_key("x-forwarded-for");
            if local {
                Ok(api::ops::metrics(state))
            } else {
                match auth::authenticate_user(&state.store, req.headers()).await {
                    Ok(p) if p.is_admin() => Ok(api::ops::metrics(state)),
                    Ok(_) => Err(ApiError::Forbidden("metrics need an admin token".into())),
                    Err(e) => Err(e),
                }
            }
        }
        Route::Playground => match signed_in(state, route.access(), &req).await {
            Err(e) => Err(e),
            // The relay reads the body itself, under the relay's size limit.
            Ok(p) => crate::relay::playground(state, p.user.id, req).await,
        },
        Route::User(h) | Route::Admin(h) | Route::Root(h) => {
            match signed_in(state, route.access(), &req).await {
                Err(e) => Err(e),
                Ok(p) => api::signed_in(state, h, req, p, id.as_deref(), ip).await,
            }
        }
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            log::log!(e.log_level(), "{} {path}: {e}", handler_name(route));
            // Errors from shared code (auth, quota, limits, bodies) in the route's format.
            let format = match route {
                Route::ApiKey(h) => h.format(),
                Route::Public(_)
                | Route::Metrics
                | Route::Playground
                | Route::User(_)
                | Route::Admin(_)
                | Route::Root(_) => crate::formats::Format::OpenAiChat,
            };
            web::error_in(&e, format)
        }
    };
    if cors_origin.is_some() {
        cors::decorate(
            &state.catalog.options().cors,
            cors_origin.as_ref(),
            &mut resp,
        );
    }
    resp
}

/// The client format of a path no route matched: Anthropic's under `/v1/messages`.
fn path_format(path: &str) -> crate::formats::Format {
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        crate::formats::Format::Anthropic
    } else {
        crate::formats::Format::OpenAiChat
    }
}

/// The caller of a signed-in route, when their session or token is valid, their account has
/// the `access` the route needs, and a cookie-authenticated state change carries its CSRF token.
async fn signed_in(
    state: &AppState,
    access: Access,
    req: &Request<Incoming>,
) -> Result<auth::Principal, ApiError> {
    let p = auth::authenticate_user(&state.store, req.headers()).await?;
    match access {
        Access::Admin if !p.is_admin() => {
            return Err(ApiError::Forbidden("this needs an admin account".into()));
        }
        Access::Root if !p.is_root() => {
            return Err(ApiError::Forbidden(
                "this needs the root account: a database copy holds every secret the server keeps"
                    .into(),
            ));
        }
        Access::Public
        | Access::ApiKey
        | Access::User
        | Access::Admin
        | Access::Root
        | Access::Metrics => {}
    }
    auth::check_csrf(&p, req.method(), req.headers())?;
    Ok(p)
}

/// The handler's name for the log line of a failed call.
fn handler_name(r: Route) -> String {
    match r {
        Route::Public(h) => format!("{h:?}"),
        Route::ApiKey(h) => format!("{h:?}"),
        Route::Metrics => "Metrics".into(),
        Route::Playground => "Playground".into(),
        Route::User(h) | Route::Admin(h) | Route::Root(h) => format!("{h:?}"),
    }
}
