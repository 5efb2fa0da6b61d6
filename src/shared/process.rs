//! Which process is writing: the fork epoch and the process number N of the file names.
//!
//! A handle inherited over `fork()` must never be written by the child. Rather than asking the
//! kernel for the pid on every insert, a `pthread_atfork` child hook bumps a counter in the new
//! process; anything opened under an older epoch belongs to an ancestor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use crate::sys::fork::on_fork_child;
use crate::sys::mutex::lock;

static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);
/// `(epoch + 1) << 32 | N` of the last declaration, or 0 when none was made.
static DECLARED_NUMBER: AtomicU64 = AtomicU64::new(0);
static TRACK_FORKS: Once = Once::new();

/// Start counting forks; idempotent. Called before any file can be opened.
pub(crate) fn track_forks() {
    TRACK_FORKS.call_once(|| on_fork_child(note_fork_in_child));
}

extern "C" fn note_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// The current fork epoch: changes in a child the moment `fork()` returns there.
#[inline]
pub(crate) fn epoch() -> u64 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// Declare this process's number N (the host's rank already mapped). It holds for this
/// process only: a child forked later uses its own pid until it declares its own.
pub fn declare_number(n: u32) {
    track_forks();
    let tag = (epoch() & 0xffff_ffff) + 1;
    DECLARED_NUMBER.store(tag << 32 | u64::from(n), Ordering::Relaxed);
}

/// N for file names: the declared number of this process, or its pid.
pub(crate) fn number() -> u64 {
    let declared = DECLARED_NUMBER.load(Ordering::Relaxed);
    if declared >> 32 == (epoch() & 0xffff_ffff) + 1 {
        declared & 0xffff_ffff
    } else {
        u64::from(std::process::id())
    }
}

/// What forked children inherited from their parents and must neither use nor free.
static INHERITED: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());

/// In a forked child: keep `parent_state` (the parent's buffers, housekeeper, writer slot) alive
/// and untouched for the life of the process. Its locks may be held by threads that do not
/// exist here and its bytes are the parent's to write, so it is never dropped; kept in a
/// static rather than forgotten, it stays reachable, as memory checkers expect.
pub(crate) fn keep_inherited(parent_state: impl Send + 'static) {
    lock(&INHERITED).push(Box::new(parent_state));
}
