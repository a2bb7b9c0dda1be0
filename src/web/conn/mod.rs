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
//!
//! `registry` keeps the connections and decides admission; `task` serves one connection
//! (the server hands it the function that answers a request); `stats` reports on them.

mod registry;
mod stats;
mod task;

pub use registry::{
    Admission, BusyGuard, ConnLimits, Connections, Phase, RESERVED_FDS, Track, TrackedBody,
};
pub use stats::ConnStats;
pub use task::{refuse, spawn};
