//! The HTTP server: accept loop, request ids, dispatch through the route table, access log.
//!
//! - [`router`]: the route table (method, path, handler, who may call it).
//! - [`auth`]: keys, sessions, access tokens, passwords, login throttling, CSRF.
//! - [`api`]: the admin and self-service JSON API under `/api`.
//! - [`ui`]: the embedded web UI.
//! - [`http`]: body and response helpers; [`download`]: files streamed as attachments.
//! - [`cors`]: CORS for the relay routes (browser front-ends), never for `/api`.

pub mod api;
pub mod auth;
pub mod cors;
pub mod download;
pub mod http;
pub mod router;
pub mod state;
pub mod ui;

use crate::error::ApiError;
use crate::logging::REQUEST_ID;
use ::http::{HeaderValue, Method, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use router::{Access, Handler, RouteResult, Router};
use state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub use http::{Body, Resp};

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// (bounded by the configured grace period) and returns. The caller then stops the store.
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let router = Arc::new(Router::new());
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        log::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // A ~40 ms Nagle/delayed-ACK stall on small writes is the classic gateway trap.
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let router = router.clone();
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    let router = router.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(state, router, req, peer).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = watched.await {
                        log::debug!("connection from {peer} ended with an error: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.draining.store(true, Ordering::SeqCst);
    state.shutdown.send_replace(true);
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    log::info!(
        "shutting down: waiting up to {} s for in-flight requests",
        grace.as_secs()
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!(
            "in-flight requests did not finish within {} s; closing them",
            grace.as_secs()
        );
    }
    // Relay tasks that outlive their connection (a disconnected client's stream being drained
    // for its usage) still hold charges to commit: wait for them too, within the same bound.
    if tokio::time::timeout(grace, state.relays.wait_idle())
        .await
        .is_err()
    {
        log::warn!(
            "{} relays still running after {} s",
            state.relays.get(),
            grace.as_secs()
        );
    }
}

async fn handle(
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
            return http::error(&ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow,
            });
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
            return http::error(&ApiError::NotFound(format!(
                "no route for {} {path}",
                req.method()
            )));
        }
    };
    let handler = matched.handler;
    let id = matched.id.map(str::to_string);
    let cors_origin = (matched.access == Access::ApiKey)
        .then(|| req.headers().get(::http::header::ORIGIN).cloned())
        .flatten();
    let result = match matched.access {
        Access::Public => api::public(state, handler, req, ip).await,
        Access::ApiKey => crate::relay::handle(state, handler, req).await,
        Access::Metrics => {
            // Loopback without a proxy's X-Forwarded-For is the local scraper, when allowed.
            let local = state.config.metrics_from_loopback
                && peer.is_loopback()
                && !req.headers().contains_key("x-forwarded-for");
            if local {
                Ok(api::ops::metrics(state))
            } else {
                match auth::authenticate_user(state, req.headers()).await {
                    Ok(p) if p.is_admin() => Ok(api::ops::metrics(state)),
                    Ok(_) => Err(ApiError::Forbidden("metrics need an admin token".into())),
                    Err(e) => Err(e),
                }
            }
        }
        Access::User | Access::Admin | Access::Root => match auth::authenticate_user(
            state,
            req.headers(),
        )
        .await
        {
            Err(e) => Err(e),
            Ok(p) if matched.access == Access::Admin && !p.is_admin() => {
                Err(ApiError::Forbidden("this needs an admin account".into()))
            }
            Ok(p) if matched.access == Access::Root && !p.is_root() => Err(ApiError::Forbidden(
                "this needs the root account: a database copy holds every secret the server keeps"
                    .into(),
            )),
            Ok(p) => match auth::check_csrf(&p, req.method(), req.headers()) {
                Err(e) => Err(e),
                Ok(()) => api::signed_in(state, handler, req, p, id.as_deref(), ip).await,
            },
        },
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            log::log!(e.log_level(), "{} {path}: {e}", handler_name(handler));
            http::error(&e)
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

fn handler_name(h: Handler) -> String {
    format!("{h:?}")
}
