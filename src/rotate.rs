//! The rotation generation: a 64-bit counter bumped by every rotation request.
//!
//! Writers remember the generation under which they opened their files and reopen when it moved;
//! two requests in the same instant are two bumps, never one.

use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Ask every file of this process to be reopened before its next write.
pub fn request() -> u64 {
    GENERATION.fetch_add(1, Ordering::SeqCst) + 1
}

/// The current generation: one atomic load.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}
