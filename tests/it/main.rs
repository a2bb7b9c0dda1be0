//! Integration tests: the real server over loopback HTTP against the mock upstream.

#![allow(clippy::unwrap_used)]

mod admin;
mod common;
mod openapi;
mod process;
mod relay;
mod store;
