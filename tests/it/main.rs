//! Integration tests: the real server over loopback HTTP against the mock upstream.

#![allow(clippy::unwrap_used)]

mod common;
mod process;
mod relay;
mod store;
