//! The open connections: admission under the caps, eviction, the idle clock, the phase.

use super::ConnStats;
use crate::web::Body;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Descriptors kept back from the connection cap for the database (three per SQLite connection),
/// log files, the runtime and the notify socket.
pub const RESERVED_FDS: u64 = 64;

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

/// Every open connection, for admission, eviction and shutdown.
pub struct Connections {
    pub(super) limits: ConnLimits,
    epoch: Instant,
    inner: Mutex<Inner>,
    /// Requests in progress on all connections (a response body still streaming counts).
    busy: AtomicUsize,
    /// Woken when `busy` drops to zero and when a connection closes.
    quiet: tokio::sync::Notify,
    pub(super) phase: tokio::sync::watch::Sender<Phase>,
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
    pub(super) busy: AtomicUsize,
    /// A request has completed (the idle limit is then the keep-alive timeout).
    served: AtomicBool,
    /// Milliseconds since the epoch when the connection last became idle.
    idle_since: AtomicU64,
    /// Asked to close to make room for a newcomer.
    pub(super) evict: tokio::sync::Notify,
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
    /// `Connections::release`.
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
    pub(super) fn release(&self, t: &Track) {
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
    pub(super) fn idle_deadline(&self, track: &Track) -> Option<(Instant, bool)> {
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

#[cfg(test)]
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
