//! sluice: a self-hosted LLM API gateway in one binary and one SQLite file.
//!
//! # Layers
//! A module imports only from its own layer or the ones below, and the graph of top-level
//! modules has no cycle: `tests/layers.rs` holds the table and checks every `crate::` path.
//! docs/architecture.md tells the same story at more length.
//!
//! 1. Foundation, no domain types: [`util`] (time, random tokens, digests), [`secret`]
//!    (values that print masked), [`config`] (the typed start-up configuration: defaults →
//!    TOML → `SLUICE_*` env → flags), [`logging`] (fern; every line carries its request id),
//!    [`lock`] (the data directory lock), [`metrics`] (counters, histograms, the Prometheus
//!    text), [`profiler`] (automatic CPU profiles), [`os`] (umask, open-file limit),
//!    [`systemd`] (readiness, status, watchdog), [`tasks`] (counting the relay tasks shutdown
//!    waits for; the cut).
//! 2. Storage: [`store`], SQLite: one writer thread with group commit, a read pool,
//!    migrations from `schema/`, and every SQL statement.
//! 3. Domain: [`billing`] (pure pricing, token counting, display currency), [`formats`] (the
//!    wire formats, OpenAI chat, Anthropic Messages, OpenAI Responses and Gemini, and the one
//!    internal model of a call that converts between them; pure), [`ledger`]
//!    (balances and reservations: the one place money moves), [`settings`] (the typed
//!    run-time options), [`catalog`] (in-memory keys, users, channels, prices and options, so
//!    the request path never waits on SQLite), [`notify`] (quota warnings to each user's
//!    email, webhook, Bark or Gotify; the SSRF guard), [`ratelimit`] (per-minute limits in
//!    memory), [`anomaly`] (the anomaly report), [`backup`] (scheduled backups, hot copies,
//!    restore), [`retention`] (the log retention task), [`dbhealth`] (the database ping and
//!    readiness), [`upstream`] (the HTTP client to providers, provider kinds, SSE lines,
//!    [`upstream::Endpoint`]), [`channel_health`] (channel tests, error windows, automatic
//!    disable and re-enable).
//! 4. HTTP kit: [`error`] (`ApiError`: status, log level and body in one place), [`web`]
//!    (response helpers, bounded body reading, CORS, downloads, the connection registry and
//!    task), [`auth`] (keys, sessions, tokens, passwords, CSRF).
//! 5. Composition: [`state`] (`AppState`, built once; it implements the small traits the
//!    domain's background tasks take; the registry of passed-through Responses answers).
//! 6. Entry points: [`server`] (accept loop, route table, dispatch, admin API handlers,
//!    embedded UI), [`relay`] (the `/v1` handlers), [`app`] (start-up and shutdown), [`cli`]
//!    (offline commands), [`probe`] (`sluice probe`), [`mock`] (the mock upstream for tests and
//!    the benchmark).
//!
//! # A request's path
//! `server::run` accepts → `web::conn` serves the connection → `server::handle` assigns a ULID
//! request id → `server::router` matches the route table → `server::dispatch` (for `/v1`,
//! [`relay::handle`]) → [`auth::authenticate_key`] checks the key against the [`catalog`] →
//! the relay prices the call and reserves the estimate in the [`ledger`] → [`upstream`] sends
//! it through the pooled hyper client (a channel of another format gets the body converted by
//! [`formats`], and its answer converted back) → the relay's stream passes SSE events through
//! while reading usage → settle: the ledger settles and the store's writer commits charge and log
//! row in one transaction → the last byte goes to the client.

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
pub mod formats;
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
