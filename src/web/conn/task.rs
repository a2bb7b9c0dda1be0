//! One connection's task: serve it, close it when its idle limit runs out, when it is evicted
//! and at shutdown; and the short refusal for a newcomer that may not stay.

use super::{Connections, Phase, Track, TrackedBody};
use crate::web::Resp;
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long a connection asked to close while idle may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves an admitted connection in a task of its own: closes it when its idle limit runs
/// out, when it is evicted and at shutdown, then releases it.
/// `handle` answers one request (the server's router and handlers).
pub fn spawn<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    track: Arc<Track>,
    conns: Arc<Connections>,
    handle: H,
    builder: &auto::Builder<TokioExecutor>,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Resp> + Send + 'static,
{
    // A ~40 ms Nagle/delayed-ACK stall on small writes is the classic gateway trap.
    let _ = stream.set_nodelay(true);
    let svc = {
        let (conns, track) = (conns.clone(), track.clone());
        service_fn(move |req| {
            let busy = conns.start_request(&track);
            let resp = handle(req);
            async move {
                let resp = resp.await;
                Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, busy)))
            }
        })
    };
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
        .into_owned();
    tokio::spawn(async move {
        tokio::pin!(conn);
        let mut phase = conns.phase.subscribe();
        // Set once the connection was asked to close while idle; dropped if still open then.
        let mut drop_at: Option<Instant> = None;
        loop {
            let (idle_at, served) = match conns.idle_deadline(&track) {
                Some(d) => d,
                // A request is running: look again a keep-alive period from now (it ends
                // first, and the clock restarts from its end).
                None => (Instant::now() + conns.limits.keep_alive, true),
            };
            let force = drop_at.unwrap_or(idle_at);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        log::debug!("connection from {peer} ended with an error: {e}");
                    }
                    break;
                }
                () = tokio::time::sleep_until(idle_at.into()), if drop_at.is_none() => {
                    if conns.idle_deadline(&track).is_some_and(|(at, _)| at <= Instant::now()) {
                        let counter = if served {
                            &conns.stats.idle_timeouts
                        } else {
                            &conns.stats.header_timeouts
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        conn.as_mut().graceful_shutdown();
                        drop_at = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
                () = track.evict.notified(), if drop_at.is_none() => {
                    // Chosen because it was idle, and the registry no longer counts it: its
                    // descriptor goes back now, so a burst of newcomers cannot hold evicted
                    // descriptors past the cap. A request that began since may finish.
                    if track.busy.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    conn.as_mut().graceful_shutdown();
                    drop_at = Some(Instant::now() + CLOSE_GRACE);
                }
                changed = phase.changed() => {
                    let now = if changed.is_err() { Phase::Kill } else { *phase.borrow_and_update() };
                    match now {
                        Phase::Serve => {}
                        Phase::Drain => conn.as_mut().graceful_shutdown(),
                        Phase::Kill => break,
                    }
                }
                () = tokio::time::sleep_until(force.into()), if drop_at.is_some() => {
                    // Asked to close while idle and still open: dropped, unless a request
                    // began in the meantime (that one may finish).
                    if track.busy.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    drop_at = None;
                }
            }
        }
        conns.release(&track);
    });
}

/// A newcomer that may not stay: a short 503 if the socket takes it now, then close (on drop).
/// Never waits on the client; with its request unread the close may be a reset, so the 503 is
/// a courtesy and the close is the point.
pub fn refuse(stream: TcpStream, why: &'static str) {
    let body = format!(
        "{{\"error\":{{\"message\":\"{why}; try again shortly\",\"type\":\"server_error\",\"code\":\"too_many_connections\"}}}}"
    );
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}
