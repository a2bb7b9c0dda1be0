// Copyright 2019 TiKV Project Authors. Licensed under Apache-2.0.

//! pprof-rs is an integrated profiler for rust program.
//!
//! This crate provides a programable interface to start/stop/report a profiler
//! dynamically. With the help of this crate, you can easily integrate a
//! profiler into your rust program in a modern, convenient way.
//!
//! A sample usage is:
//!
//! ```rust
//! let guard = pprof::ProfilerGuard::new(100).unwrap();
//! ```
//!
//! Then you can read report from the guard:
//!
//! ```rust
//! # let guard = pprof::ProfilerGuard::new(100).unwrap();
//!if let Ok(report) = guard.report().build() {
//!    println!("report: {:?}", &report);
//!};
//! ```
//!
//! More configuration can be passed through `ProfilerGuardBuilder`:
//!
//! ```rust
//! let guard = pprof::ProfilerGuardBuilder::default().frequency(1000).blocklist(&["libc", "libgcc", "pthread", "vdso"]).build().unwrap();
//! ```
//!
//! The frequency means the sampler frequency, and the `blocklist` means the
//! profiler will ignore the sample whose first frame is from library containing
//! these strings.
//!
//! Skipping `libc`, `libgcc` and `libpthread` could be a solution to the
//! possible deadlock inside the `_Unwind_Backtrace`, and keep the signal
//! safety. The dwarf information in "vdso" is incorrect in some distributions,
//! so it's also suggested to skip it.
//!
//! You can find more details in
//! [README.md](https://github.com/tikv/pprof-rs/blob/master/README.md)

// sluice patch: third-party code, linted as cargo lints a crate from the registry (capped).
#![allow(warnings, clippy::all, clippy::pedantic)]

/// Define the MAX supported stack depth. TODO: make this variable mutable.
#[cfg(feature = "large-depth")]
pub const MAX_DEPTH: usize = 1024;

#[cfg(all(feature = "huge-depth", not(feature = "large-depth")))]
pub const MAX_DEPTH: usize = 512;

#[cfg(not(any(feature = "large-depth", feature = "huge-depth")))]
pub const MAX_DEPTH: usize = 128;

/// Define the MAX supported thread name length. TODO: make this variable mutable.
pub const MAX_THREAD_NAME: usize = 16;

mod addr_validate;

mod backtrace;
mod collector;
mod error;
mod frames;
#[cfg(feature = "perfmaps")]
mod perfmap;
mod profiler;
mod report;
mod timer;

pub use self::addr_validate::validate;
pub use self::collector::{Collector, HashCounter};
pub use self::error::{Error, Result};
pub use self::frames::{Frames, Symbol};
pub use self::profiler::{ProfilerGuard, ProfilerGuardBuilder};
pub use self::report::{Report, ReportBuilder, UnresolvedReport};

#[cfg(feature = "flamegraph")]
pub use inferno::flamegraph;

/// sluice patch: gives back the memory a finished profile used. Drops `backtrace`'s cache of
/// parsed symbol tables (filled when a report is symbolized, kept by `backtrace` for the life of
/// the process) and, with glibc, returns the free pages of every malloc arena to the kernel
/// (`malloc_trim`): freed memory otherwise stays in the arena of the thread that used it.
/// Call it when no profile is recording and its report has been dropped.
pub fn release_memory() {
    ::backtrace::clear_symbol_cache();
    trim_heap();
}

/// sluice patch: with glibc, returns the free pages of every malloc arena to the kernel
/// (`malloc_trim`). A large block freed by one thread otherwise stays resident in that thread's
/// arena (glibc raises its mmap threshold to the size of the first large block freed, so later
/// ones come from the arenas). A no-op elsewhere.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases glibc's free chunks; it takes the arenas'
    // locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// sluice patch: with glibc, fixes the size from which an allocation gets its own mapping
/// (`M_MMAP_THRESHOLD`) at `bytes`, and the free space a heap keeps at its top before returning
/// it (`M_TRIM_THRESHOLD`) at twice that. glibc otherwise raises the threshold to the size of
/// the largest mapped block freed so far (up to 32 MiB): after the first 19 MiB argon2id hash,
/// every later one came from a thread's arena and stayed resident there, which `malloc_trim`
/// cannot return when it sits at the top of a thread's heap. With the threshold fixed, every
/// block of `bytes` or more is mapped and unmapped with its allocation.
///
/// With `arenas`, also caps glibc's malloc arenas (`M_ARENA_MAX`) at that many; glibc's own cap
/// is eight per core, and until it is reached each thread that allocates gets an arena of its
/// own, whose free space then serves only the threads that use it. A no-op elsewhere.
pub fn fix_malloc_thresholds(bytes: usize, arenas: Option<usize>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mmap = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let trim = mmap.saturating_mul(2);
        // SAFETY: mallopt only stores these parameters under the main arena's lock; any
        // value is valid for them.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, mmap);
            libc::mallopt(libc::M_TRIM_THRESHOLD, trim);
            if let Some(n) = arenas {
                libc::mallopt(
                    libc::M_ARENA_MAX,
                    libc::c_int::try_from(n.max(1)).unwrap_or(libc::c_int::MAX),
                );
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (bytes, arenas);
}

#[allow(clippy::all)]
#[cfg(all(feature = "prost-codec", not(feature = "protobuf-codec")))]
pub mod protos {
    pub use prost::Message;

    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/perftools.profiles.rs"
    ));
}

#[cfg(feature = "protobuf-codec")]
pub mod protos {
    pub use protobuf::Message;

    include!(concat!(env!("OUT_DIR"), "/mod.rs"));

    pub use self::profile::*;
}

