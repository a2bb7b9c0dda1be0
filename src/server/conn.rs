//! Connections: who gets one, how long an idle one lives, and how they end at shutdown.
//!
//! - Admission: a global cap (never above what the open-file limit allows, so `accept` does
//!   not meet EMFILE) and a per-address cap (trusted proxies exempt). A newcomer at the global
//!   cap takes the place of the connection idle the longest; with none idle, or past its
//!   address's cap, it gets a one-line 503 and is closed.
//! - Idle clock: a new connection must complete a request head within the header-read
//!   timeout, and between requests a keep-alive connection may stay idle for the keep-alive
//!   timeout; "idle" is "no request in progress", counted from when the last response body
//!   ended, so a slow header after a keep-alive request is bounded too. hyper has no keep-alive
//!   timeout, and its header timeout starts again right after each response, so both are kept
//!   here instead.
//! - Shutdown ([`Phase`]): `Drain` asks every connection to finish what it is doing and close
//!   (an idle one closes at once); `Kill` drops whatever is left.

use super::Body;
use super::router::Router;
use super::state::AppState;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Descriptors kept back from the connection cap for the database (three per SQLite connection),
/// log files, the runtime and the notify socket.
pub const RESERVED_FDS: u64 = 64;

/// How long a connection asked to close while idle may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_read: Duration,
    pub keep_alive: Duration,
    /// The cap in force: the configured one, lowered to what the open-file limit allows.
    pub max: usize,
    pub per_address: usize,
    /// Peers the per-address cap does not apply to (reverse proxies carry many clients).
    pub exempt: Vec<IpAddr>,
}

impl ConnLimits {
    /// The configured limits, with the global cap lowered so that every connection can hold an
    /// upstream connection too (two descriptors each) within `open_files`, less
    /// [`RESERVED_FDS`]. Returns the limits and, when the cap was lowered, the configured one.
    pub fn new(c: &crate::config::Config, open_files: u64) -> (ConnLimits, Option<usize>) {
        let fits = usize::try_from(open_files.saturating_sub(RESERVED_FDS) / 2)
            .unwrap_or(usize::MAX)
            .max(1);
        let max = c.max_connections.min(fits);
        let limits = ConnLimits {
            header_read: Duration::from_secs(c.header_read_timeout_secs),
            keep_alive: Duration::from_secs(c.keep_alive_timeout_secs),
            max,
            per_address: c.max_connections_per_address.min(max),
            exempt: c.trusted_proxies.clone(),
        };
        (
            limits,
            (max < c.max_connections).then_some(c.max_connections),
        )
    }
}

/// Where the server is in its life; every connection task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serve,
    /// Finish the request in progress, then close; idle connections close at once.
    Drain,
    /// Close now, whatever is in progress.
    Kill,
}

/// Why a connection was refused or closed by sluice, for the metrics.
#[derive(Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub refused_per_address: AtomicU64,
    pub refused_full: AtomicU64,
    pub evicted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// Every open connection, for admission, eviction and shutdown.
pub struct Connections {
    limits: ConnLimits,
    epoch: Instant,
    inner: Mutex<Inner>,
    /// Requests in progress on all connections (a response body still streaming counts).
    busy: AtomicUsize,
    /// Woken when `busy` drops to zero and when a connection closes.
    quiet: tokio::sync::Notify,
    phase: tokio::sync::watch::Sender<Phase>,
    pub stats: ConnStats,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    per_address: HashMap<IpAddr, usize>,
    open: HashMap<u64, Arc<Track>>,
}

/// One connection's state, shared by its task, its requests and the registry.
pub struct Track {
    id: u64,
    ip: IpAddr,
    /// Requests in progress on this connection.
    busy: AtomicUsize,
    /// A request has completed (the idle limit is then the keep-alive timeout).
    served: AtomicBool,
    /// Milliseconds since the epoch when the connection last became idle.
    idle_since: AtomicU64,
    /// Asked to close to make room for a newcomer.
    evict: tokio::sync::Notify,
}

/// Whether a newcomer may stay.
pub enum Admission {
    Admitted(Arc<Track>),
    /// Past the per-address cap.
    RefusedAddress,
    /// At the global cap with no idle connection to make room.
    RefusedFull,
}

impl Connections {
    pub fn new(limits: ConnLimits) -> Connections {
        Connections {
            limits,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            busy: AtomicUsize::new(0),
            quiet: tokio::sync::Notify::new(),
            phase: tokio::sync::watch::Sender::new(Phase::Serve),
            stats: ConnStats::default(),
        }
    }

    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn open(&self) -> usize {
        self.inner.lock().open.len()
    }

    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Moves every connection to `phase` (never back).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                *p = phase;
            }
            later
        });
    }

    /// Decides about a newcomer from `ip`; an admitted one is registered until
    /// [`Connections::release`].
    pub fn admit(&self, ip: IpAddr) -> Admission {
        let mut inner = self.inner.lock();
        let exempt = self.limits.exempt.contains(&ip);
        if !exempt && inner.per_address.get(&ip).copied().unwrap_or(0) >= self.limits.per_address {
            self.stats
                .refused_per_address
                .fetch_add(1, Ordering::Relaxed);
            return Admission::RefusedAddress;
        }
        if inner.open.len() >= self.limits.max {
            // Make room: the connection idle the longest (one that never finished a request
            // head first: a slow or silent client) is asked to close.
            let victim = inner
                .open
                .values()
                .filter(|t| t.busy.load(Ordering::SeqCst) == 0)
                .min_by_key(|t| {
                    (
                        t.served.load(Ordering::Relaxed),
                        t.idle_since.load(Ordering::Relaxed),
                    )
                })
                .cloned();
            match victim {
                Some(v) => {
                    // Unregistered now, so the cap counts the newcomer and not the leaver.
                    Self::forget(&mut inner, &v);
                    v.evict.notify_one();
                    self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                    return Admission::RefusedFull;
                }
            }
        }
        inner.next_id += 1;
        let track = Arc::new(Track {
            id: inner.next_id,
            ip,
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(self.now_ms()),
            evict: tokio::sync::Notify::new(),
        });
        inner.open.insert(track.id, track.clone());
        *inner.per_address.entry(ip).or_default() += 1;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Admission::Admitted(track)
    }

    fn forget(inner: &mut Inner, t: &Track) {
        if inner.open.remove(&t.id).is_some()
            && let Some(n) = inner.per_address.get_mut(&t.ip)
        {
            *n -= 1;
            if *n == 0 {
                inner.per_address.remove(&t.ip);
            }
        }
    }

    /// The connection has ended (its task is done).
    fn release(&self, t: &Track) {
        Self::forget(&mut self.inner.lock(), t);
        self.quiet.notify_waiters();
    }

    /// Marks a request in progress on `track` until the guard (carried by the response body)
    /// is dropped.
    pub fn start_request(self: &Arc<Self>, track: &Arc<Track>) -> BusyGuard {
        track.busy.fetch_add(1, Ordering::SeqCst);
        self.busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard {
            conns: self.clone(),
            track: track.clone(),
        }
    }

    /// Resolves once no request is in progress on any connection.
    pub async fn wait_quiet(&self) {
        loop {
            let notified = self.quiet.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.busy() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Resolves when the next connection closes.
    pub async fn wait_closed_one(&self) {
        self.quiet.notified().await;
    }

    /// Resolves once every connection has closed.
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.quiet.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// When `track`'s idle limit runs out, if it is idle (`None` while a request runs).
    fn idle_deadline(&self, track: &Track) -> Option<(Instant, bool)> {
        if track.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let served = track.served.load(Ordering::Relaxed);
        let limit = if served {
            self.limits.keep_alive
        } else {
            self.limits.header_read
        };
        let since = Duration::from_millis(track.idle_since.load(Ordering::Relaxed));
        Some((self.epoch + since + limit, served))
    }

    /// The connection metrics as JSON, for `/api/stats`.
    pub fn snapshot(&self) -> serde_json::Value {
        let s = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "open": self.open(),
            "max": self.limits.max,
            "max_per_address": self.limits.per_address,
            "accepted": n(&s.accepted),
            "refused": {"per_address": n(&s.refused_per_address), "full": n(&s.refused_full)},
            "closed": {
                "header_timeout": n(&s.header_timeouts),
                "idle_timeout": n(&s.idle_timeouts),
                "evicted": n(&s.evicted),
            },
            "accept_errors": n(&s.accept_errors),
        })
    }

    /// The connection metrics in Prometheus text format.
    pub fn write_prometheus(&self, o: &mut String) {
        use std::fmt::Write as _;
        let s = &self.stats;
        let _ = writeln!(
            o,
            "# HELP sluice_connections_open Client connections open.\n# TYPE sluice_connections_open gauge\nsluice_connections_open {}",
            self.open()
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_max The connection cap in force (max_connections, lowered to fit the open-file limit).\n# TYPE sluice_connections_max gauge\nsluice_connections_max {}",
            self.limits.max
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_accepted_total Client connections accepted.\n# TYPE sluice_connections_accepted_total counter\nsluice_connections_accepted_total {}",
            s.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_refused_total Connections refused at once, by reason.\n# TYPE sluice_connections_refused_total counter\nsluice_connections_refused_total{{reason=\"per_address\"}} {}\nsluice_connections_refused_total{{reason=\"full\"}} {}",
            s.refused_per_address.load(Ordering::Relaxed),
            s.refused_full.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_closed_total Connections sluice closed, by reason.\n# TYPE sluice_connections_closed_total counter\nsluice_connections_closed_total{{reason=\"header_timeout\"}} {}\nsluice_connections_closed_total{{reason=\"idle_timeout\"}} {}\nsluice_connections_closed_total{{reason=\"evicted\"}} {}",
            s.header_timeouts.load(Ordering::Relaxed),
            s.idle_timeouts.load(Ordering::Relaxed),
            s.evicted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_accept_errors_total Failed accepts (EMFILE and friends).\n# TYPE sluice_accept_errors_total counter\nsluice_accept_errors_total {}",
            s.accept_errors.load(Ordering::Relaxed)
        );
    }
}

/// A request in progress; dropped with its response body (or with the request's future when
/// the connection dies first).
pub struct BusyGuard {
    conns: Arc<Connections>,
    track: Arc<Track>,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let t = &self.track;
        t.idle_since.store(self.conns.now_ms(), Ordering::Relaxed);
        t.served.store(true, Ordering::Relaxed);
        t.busy.fetch_sub(1, Ordering::SeqCst);
        if self.conns.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.conns.quiet.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted as in progress until it is done.
pub struct TrackedBody {
    inner: Body,
    _busy: BusyGuard,
}

impl TrackedBody {
    pub fn new(inner: Body, busy: BusyGuard) -> TrackedBody {
        TrackedBody { inner, _busy: busy }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves an admitted connection in a task of its own: closes it when its idle limit runs
/// out, when it is evicted and at shutdown, then releases it.
pub fn spawn(
    stream: TcpStream,
    peer: SocketAddr,
    track: Arc<Track>,
    conns: Arc<Connections>,
    state: Arc<AppState>,
    router: Arc<Router>,
    builder: &auto::Builder<TokioExecutor>,
) {
    // A ~40 ms Nagle/delayed-ACK stall on small writes is the classic gateway trap.
    let _ = stream.set_nodelay(true);
    let svc = {
        let (conns, track) = (conns.clone(), track.clone());
        service_fn(move |req| {
            let busy = conns.start_request(&track);
            let (state, router) = (state.clone(), router.clone());
            async move {
                let resp = super::handle(state, router, req, peer).await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(max: usize, per_address: usize) -> ConnLimits {
        ConnLimits {
            header_read: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            max,
            per_address,
            exempt: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    fn admitted(a: Admission) -> Arc<Track> {
        match a {
            Admission::Admitted(t) => t,
            _ => panic!("refused"),
        }
    }

    #[test]
    fn the_cap_follows_the_open_file_limit() {
        let c = crate::config::Config::default();
        let (l, lowered) = ConnLimits::new(&c, 256);
        assert_eq!(l.max, 96);
        assert_eq!(lowered, Some(c.max_connections));
        assert!(l.per_address <= l.max);
        let (l, lowered) = ConnLimits::new(&c, 1 << 20);
        assert_eq!((l.max, lowered), (c.max_connections, None));
    }

    #[test]
    fn per_address_cap_spares_other_addresses_and_trusted_proxies() {
        let c = Arc::new(Connections::new(limits(100, 2)));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let _t1 = admitted(c.admit(a));
        let _t2 = admitted(c.admit(a));
        assert!(matches!(c.admit(a), Admission::RefusedAddress));
        let _t3 = admitted(c.admit(b));
        for _ in 0..5 {
            let _ = admitted(c.admit(proxy));
        }
        assert_eq!(c.stats.refused_per_address.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn at_the_cap_the_longest_idle_makes_room_and_busy_ones_never_do() {
        let c = Arc::new(Connections::new(limits(2, 10)));
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admitted(c.admit(ip));
        let second = admitted(c.admit(ip));
        // `first` is serving a request: `second` is the one to go.
        let guard = c.start_request(&first);
        let _third = admitted(c.admit(ip));
        assert_eq!(c.open(), 2);
        assert!(!c.inner.lock().open.contains_key(&second.id));
        assert_eq!(c.stats.evicted.load(Ordering::Relaxed), 1);
        // `third` idle, `first` busy: a fourth evicts `third`; with both left busy, a fifth
        // is refused.
        let fourth = admitted(c.admit(ip));
        let _g4 = c.start_request(&fourth);
        assert!(matches!(c.admit(ip), Admission::RefusedFull));
        drop(guard);
        assert_eq!(c.busy(), 1);
    }
}
