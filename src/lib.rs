//! sluice: a self-hosted LLM API gateway in one binary and one SQLite file.
//!
//! # Map
//! - [`config`]: the typed start-up configuration (defaults → TOML file → `SLUICE_*` env → flags).
//! - [`logging`]: fern dispatch; every line carries the request id of the task that wrote it.
//! - [`store`]: SQLite. One writer thread with group commit, a read pool, migrations from `schema/`.
//! - [`catalog`]: in-memory copies of keys, users, channels and prices, so the request path never
//!   waits on a SQLite read; after an admin change, the key, user, channels or options it
//!   touched are re-read (everything only after a cascading delete).
//! - [`ledger`]: in-memory balances and reservations; the one place money moves.
//! - [`billing`]: pure pricing: ratios, estimates, settle amounts; token counting.
//! - [`notify`]: quota warnings to each user's email, webhook, Bark or Gotify; the SSRF guard;
//!   a bounded queue and worker threads, so the request path never waits on a receiver.
//! - [`ratelimit`]: requests and tokens per minute per key and per user, in memory, exact.
//! - [`channel_health`]: channel tests (on demand and scheduled), an in-memory error window per
//!   channel fed by the relay, automatic disable and re-enable, manage rows and root's notice.
//! - [`relay`]: route a `/v1` call to a channel, forward it, read usage, settle.
//! - [`server`]: hyper accept loop, the route table, authentication, admin API, embedded UI,
//!   CORS for the relay routes.
//! - [`backup`]: scheduled backups, hot copies, `sluice backup` and `sluice restore`.
//! - [`lock`]: the data directory lock that keeps a second server or a restore off a live database.
//! - [`os`]: the process's umask (077) and open-file limit, set at start however sluice is run.
//! - [`systemd`]: `Type=notify` readiness, status lines and the watchdog (no-ops outside systemd).
//! - [`app`]: start-up: open the store, bootstrap root, serve, shut down cleanly.
//! - [`mock`]: an OpenAI-compatible mock upstream for tests and the benchmark.
//!
//! # A request's path
//! `server::conn` accepts → `server::router` matches the route table and assigns a ULID request id →
//! `server::auth` checks the API key against the [`catalog`] → `relay::handle` picks channels,
//! reserves the estimate in the [`ledger`] → `relay::upstream` forwards through the pooled hyper
//! client → `relay::stream` passes SSE events through while reading usage → the ledger settles
//! and the store commits charge + log row in one transaction → the last byte goes to the client.

pub mod anomaly;
pub mod app;
pub mod auth;
pub mod backup;
pub mod billing;
pub mod catalog;
pub mod channel_health;
pub mod cli;
pub mod config;
pub mod dbhealth;
pub mod error;
pub mod ledger;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod notify;
pub mod os;
pub mod probe;
pub mod profiler;
pub mod ratelimit;
pub mod relay;
pub mod retention;
pub mod secret;
pub mod server;
pub mod settings;
pub mod state;
pub mod store;
pub mod systemd;
pub mod tasks;
pub mod upstream;
pub mod util;
pub mod web;
