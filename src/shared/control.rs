//! The control file shared by every writer of one log directory, `<dir>/.flatstore.ctl`:
//! the rotation generation, and one slot per writing thread for `rotate --wait`.
//!
//! The file is mapped shared, so a process that maps it (the host's main process at init, the
//! `flatstore rotate` command) and every process forked after that see the same words.
//! Layout, in native-endian 64-bit words: `[0]` magic, `[1]` generation, `[2..8]` reserved,
//! then [`SLOTS`] slots of 4 words: pid, writing, stuck, reserved.
//!
//! The write handshake (Dekker's store-load pattern, all sequentially consistent): a writer
//! marks its slot *before* it reads the generation and clears it after its `write(2)`; the
//! rotator bumps the generation *before* it reads the slots. Either the writer sees the new
//! generation (and writes to a new file), or the rotator sees the write in flight and waits.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::names::CONTROL_FILE;
use crate::shared::process;
use crate::sys::shared_words::SharedWords;

/// Writer slots per directory: threads that write at the same time, across all processes.
pub(crate) const SLOTS: usize = 1024;

const MAGIC: u64 = u64::from_le_bytes(*b"FLATCTL1");
const HEADER_WORDS: usize = 8;
const SLOT_WORDS: usize = 4;
const WORDS: usize = HEADER_WORDS + SLOTS * SLOT_WORDS;
const WORD_MAGIC: usize = 0;
const WORD_GENERATION: usize = 1;
const SLOT_PID: usize = 0;
const SLOT_WRITING: usize = 1;
const SLOT_STUCK: usize = 2;

/// `writing` while a writer has not yet decided which generation's file it writes to.
const DECIDING: u64 = u64::MAX;

/// The mapped control file of one directory.
#[derive(Debug)]
pub struct Control {
    words: SharedWords,
    path: PathBuf,
}

/// What a writer slot says about its writer, for the rotator and for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterState {
    /// The writing process.
    pub pid: u32,
    /// A write in flight: `Some(None)` while it reads the generation, `Some(Some(g))` while it
    /// writes to the file of generation `g`.
    pub writing: Option<Option<u64>>,
    /// The generation whose reopen last failed, while it keeps failing.
    pub stuck: Option<u64>,
}

impl Control {
    /// Open (creating if needed) and map the control file of `dir`. New files get `mode`
    /// (default `0666` less the umask) so that the rotator can map it too.
    pub fn open(dir: &Path, mode: Option<u32>) -> Result<Arc<Control>> {
        let path = dir.join(CONTROL_FILE);
        let fail = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(mode.unwrap_or(0o666))
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(fail)?;
        Control::map(file, path)
    }

    /// Map the control file of `dir`, which must exist (for the rotator: no writer, nothing to do).
    pub fn open_existing(dir: &Path) -> Result<Arc<Control>> {
        let path = dir.join(CONTROL_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        Control::map(file, path)
    }

    fn map(file: File, path: PathBuf) -> Result<Arc<Control>> {
        let fail = |path: &Path, source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let size = (WORDS * 8) as u64;
        let len = file.metadata().map_err(|e| fail(&path, e))?.len();
        if len < size {
            // Growing only; racing creators all set the same size, zero-filled.
            file.set_len(size).map_err(|e| fail(&path, e))?;
        }
        let words = SharedWords::map(&file, WORDS).map_err(|e| fail(&path, e))?;
        let control = Control { words, path };
        let magic = control.word(WORD_MAGIC);
        match magic.compare_exchange(0, MAGIC, SeqCst, SeqCst) {
            Ok(_) => Ok(Arc::new(control)),
            Err(found) if found == MAGIC => Ok(Arc::new(control)),
            Err(_) => Err(fail(
                &control.path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a flatstore control file",
                ),
            )),
        }
    }

    fn word(&self, index: usize) -> &AtomicU64 {
        // Every index used here is below WORDS, the mapped length.
        &self.words[index]
    }

    fn slot_word(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.word(HEADER_WORDS + slot * SLOT_WORDS + field)
    }

    /// The path of the control file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current rotation generation: one atomic load.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.word(WORD_GENERATION).load(SeqCst)
    }

    /// Ask every writer of the directory to reopen its files before its next write; returns
    /// the new generation. Async-signal-safe (one atomic add).
    pub fn request_rotation(&self) -> u64 {
        self.word(WORD_GENERATION).fetch_add(1, SeqCst) + 1
    }

    /// Claim a free slot (or one whose process is gone) for a writing thread of this process;
    /// [`Error::NoSlot`] when every slot is held by a live process.
    ///
    /// Hidden, as [`Slot`] is: the writers' own (public for a test and a bench only).
    #[doc(hidden)]
    pub fn claim_slot(self: &Arc<Control>) -> Result<Slot> {
        let me = u64::from(std::process::id());
        for index in 0..SLOTS {
            let pid = self.slot_word(index, SLOT_PID);
            let current = pid.load(SeqCst);
            let free = current == 0 || !process_alive(current);
            if free && pid.compare_exchange(current, me, SeqCst, SeqCst).is_ok() {
                self.slot_word(index, SLOT_WRITING).store(0, SeqCst);
                self.slot_word(index, SLOT_STUCK).store(0, SeqCst);
                return Ok(Slot {
                    control: Arc::clone(self),
                    index,
                });
            }
        }
        Err(Error::NoSlot {
            path: self.path.clone(),
            slots: SLOTS,
        })
    }

    /// The writers whose process is alive.
    pub fn live_writers(&self) -> Vec<WriterState> {
        (0..SLOTS)
            .filter_map(|index| {
                let pid = self.slot_word(index, SLOT_PID).load(SeqCst);
                if pid == 0 || !process_alive(pid) {
                    return None;
                }
                let writing = match self.slot_word(index, SLOT_WRITING).load(SeqCst) {
                    0 => None,
                    DECIDING => Some(None),
                    g => Some(Some(g - 1)),
                };
                let stuck = match self.slot_word(index, SLOT_STUCK).load(SeqCst) {
                    0 => None,
                    g => Some(g - 1),
                };
                Some(WriterState {
                    pid: pid as u32,
                    writing,
                    stuck,
                })
            })
            .collect()
    }
}

fn process_alive(pid: u64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// One writing thread's slot. Released when dropped in the process that claimed it.
#[derive(Debug)]
pub struct Slot {
    control: Arc<Control>,
    index: usize,
}

impl Slot {
    fn writing(&self) -> &AtomicU64 {
        self.control.slot_word(self.index, SLOT_WRITING)
    }

    /// Announce a write, then read the generation (in this order: see the module docs).
    #[inline]
    pub fn begin_write(&self) -> u64 {
        self.writing().store(DECIDING, SeqCst);
        self.control.generation()
    }

    /// The write in flight goes to the file of `generation`.
    #[inline]
    pub fn writing_to(&self, generation: u64) {
        self.writing().store(generation + 1, SeqCst);
    }

    /// The write is done.
    #[inline]
    pub fn end_write(&self) {
        self.writing().store(0, SeqCst);
    }

    /// Record that reopening for `generation` failed (`None`: no reopen is failing).
    pub(crate) fn set_stuck(&self, generation: Option<u64>) {
        let word = self.control.slot_word(self.index, SLOT_STUCK);
        word.store(generation.map_or(0, |g| g + 1), SeqCst);
    }

    /// In a forked child: the slot is the parent's; forget it without releasing it.
    pub(crate) fn abandon(self) {
        process::keep_inherited(self);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.end_write();
        self.set_stuck(None);
        let me = u64::from(std::process::id());
        let pid = self.control.slot_word(self.index, SLOT_PID);
        let _ = pid.compare_exchange(me, 0, SeqCst, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FLATSTORE_E_NO_SLOT;

    /// With every slot held by a live process, claiming one fails with its own error (and C
    /// code) naming the control file; a slot given back can be claimed again.
    #[test]
    fn no_free_slot_is_its_own_error_naming_the_control_file() {
        let dir = std::env::temp_dir().join(format!("flatstore-slots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let control = Control::open(&dir, None).expect("control file");
        let mut held: Vec<Slot> = (0..SLOTS)
            .map(|_| control.claim_slot().expect("a free slot"))
            .collect();
        let error = control.claim_slot().expect_err("every slot is held");
        assert!(matches!(error, Error::NoSlot { .. }), "{error:?}");
        assert_eq!(error.code(), FLATSTORE_E_NO_SLOT);
        let message = error.to_string();
        assert!(
            message.contains(".flatstore.ctl") && message.contains("all 1024 writer slots"),
            "{message}"
        );
        drop(held.pop());
        control
            .claim_slot()
            .expect("a slot given back is free again");
        drop(held);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
