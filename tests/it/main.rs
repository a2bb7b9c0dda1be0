//! Integration tests: the real server over loopback HTTP against the mock upstream.

#![allow(clippy::unwrap_used)]

mod admin;
mod backup;
mod channel_health;
mod common;
mod display;
mod failures;
mod logfiles;
mod logs;
mod money;
mod notify;
mod openapi;
mod ops;
mod probe;
mod process;
mod ratelimit;
mod receivers;
mod relay;
mod service;
mod store;
mod warnings;
