//! Advisory whole-file locks (`flock(2)`).

/// An advisory `flock(2)` lock: shared by the writers of a file, exclusive for a sealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileLock {
    /// Held by every writer of the file at once.
    Shared,
    /// Held by one process only, and only while no shared lock is held.
    Exclusive,
}

/// Take `lock` on `file`'s open file description without waiting. `Ok(false)` when another
/// open of the file holds a lock that conflicts. The lock goes with the last descriptor of
/// this open (also on `kill -9`).
pub(crate) fn try_flock(file: &std::fs::File, lock: FileLock) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let operation = match lock {
        FileLock::Shared => libc::LOCK_SH,
        FileLock::Exclusive => libc::LOCK_EX,
    } | libc::LOCK_NB;
    loop {
        // SAFETY: flock on a descriptor `file` owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}
