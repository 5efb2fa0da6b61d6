//! The log directories opened by any process of a host, for hosts whose rotation command runs
//! in a process that never writes (Kamailio answers `kamcmd flatstore.rotate` in its RPC
//! process, OpenSER `flat_rotate` in its MI process).
//!
//! The list lives in anonymous shared memory made by [`share_with_children`] before the host
//! forks; every process forked afterwards adds the directories it opens and can read all of
//! them. Without it (the OpenSER C API), a process knows only its own directories.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::sys::shared_words::SharedWords;

/// How many directories the list holds; more is refused with an error at `init`.
pub(crate) const MAX_DIRECTORIES: usize = 32;
/// Longest directory path the list holds, in bytes (`PATH_MAX`).
pub(crate) const MAX_PATH: usize = 4096;

const FREE: u64 = 0;
const CLAIMED: u64 = 1;
const READY: u64 = 2;
/// Per entry: state, length, then the path packed 8 bytes per word.
const ENTRY_WORDS: usize = 2 + MAX_PATH / 8;

static SHARED: OnceLock<SharedWords> = OnceLock::new();

/// Make the shared list; call once, before the host forks (a host module's `mod_init`, through
/// `ffi::share_directories_with_children`). Idempotent.
pub(crate) fn share_with_children() -> Result<()> {
    if SHARED.get().is_some() {
        return Ok(());
    }
    let words = SharedWords::anonymous(MAX_DIRECTORIES * ENTRY_WORDS).map_err(|source| {
        Error::SharedMemory {
            what: "the directory list",
            source,
        }
    })?;
    let _ = SHARED.set(words);
    Ok(())
}

/// Add `dir` to the shared list, if there is one (no-op otherwise, and when it is listed).
pub(crate) fn register(dir: &Path) -> Result<()> {
    let Some(words) = SHARED.get() else {
        return Ok(());
    };
    let refuse = |reason: String| Error::Directory {
        path: dir.to_owned(),
        reason,
    };
    let bytes = dir.as_os_str().as_bytes();
    if bytes.len() > MAX_PATH {
        return Err(refuse(format!("path longer than {MAX_PATH} bytes")));
    }
    if listed(words).any(|d| d == dir) {
        return Ok(());
    }
    for entry in 0..MAX_DIRECTORIES {
        let base = entry * ENTRY_WORDS;
        let state = &words[base];
        if state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut packed = [0u8; 8];
            packed[..chunk.len()].copy_from_slice(chunk);
            words[base + 2 + i].store(u64::from_le_bytes(packed), Ordering::Relaxed);
        }
        words[base + 1].store(bytes.len() as u64, Ordering::Relaxed);
        state.store(READY, Ordering::Release);
        return Ok(());
    }
    Err(refuse(format!(
        "more than {MAX_DIRECTORIES} log directories in one host"
    )))
}

/// Every directory in the shared list (empty without one).
pub(crate) fn all() -> Vec<PathBuf> {
    SHARED
        .get()
        .map(|w| listed(w).collect())
        .unwrap_or_default()
}

fn listed(words: &SharedWords) -> impl Iterator<Item = PathBuf> + '_ {
    (0..MAX_DIRECTORIES).filter_map(move |entry| {
        let base = entry * ENTRY_WORDS;
        if words[base].load(Ordering::Acquire) != READY {
            return None;
        }
        let len = usize::try_from(words[base + 1].load(Ordering::Relaxed)).ok()?;
        let mut bytes: Vec<u8> = (0..len.div_ceil(8))
            .flat_map(|i| words[base + 2 + i].load(Ordering::Relaxed).to_le_bytes())
            .collect();
        bytes.truncate(len);
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_listed_once_each_with_their_exact_bytes() {
        share_with_children().expect("mapped");
        let odd = PathBuf::from(std::ffi::OsString::from_vec(
            b"/tmp/a|b\xff/c-long-name".to_vec(),
        ));
        let plain = PathBuf::from("/var/log/acc");
        for dir in [&odd, &plain, &odd] {
            register(dir).expect("registered");
        }
        let all = all();
        assert_eq!(all.iter().filter(|d| **d == odd).count(), 1, "{all:?}");
        assert_eq!(all.iter().filter(|d| **d == plain).count(), 1, "{all:?}");
        let too_long = PathBuf::from("/".repeat(MAX_PATH + 1));
        assert!(register(&too_long).is_err());
    }
}
