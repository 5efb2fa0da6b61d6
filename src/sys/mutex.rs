//! Mutexes whose critical sections always leave their data consistent.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, ignoring poisoning: for data that every critical section leaves consistent (a
/// buffer of whole lines, a list), so a panic elsewhere never makes it unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
