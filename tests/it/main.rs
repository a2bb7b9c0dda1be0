//! Integration tests: the real server over loopback HTTP against the mock upstream.

// clippy.toml's allow-unwrap-in-tests covers `#[test]` functions and `#[cfg(test)]` modules,
// not this crate's helpers and `#[tokio::test]` bodies; a panic here is a failed test too.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod access_token;
mod account;
mod admin;
mod azure;
mod azure_sdk;
mod backup;
mod balance_limits;
mod channel_health;
mod child;
mod common;
mod connections;
mod console;
mod cors;
mod dashboard;
mod display;
mod export;
mod failures;
mod formats;
mod fulldisk;
mod gemini;
mod journal;
mod key_cap;
mod key_locks;
mod lists;
mod logfiles;
mod logs;
mod modes;
mod money;
mod multikey;
mod notify;
mod openapi;
mod ops;
mod options;
mod params;
mod playground;
mod probe;
mod process;
mod profile_memory;
mod ratelimit;
mod receivers;
mod relay;
mod responses;
mod sdk_venv;
mod secrets_guard;
mod service;
mod shutdown;
mod store;
mod unknown_model;
mod usage_days;
mod usage_names;
mod usage_tz;
mod usernames;
mod warnings;
