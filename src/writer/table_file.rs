//! One table's file in one process: which file is current, the write handshake around every
//! `write(2)` so that `rotate --wait` knows when no write can reach a renamed file, and the
//! writer's own seals ([`super::seal`]) and syncs, as [`super::policy`] says. The syncs of the
//! files a writer leaves (sealed, or left after a rotation) are the helper thread's
//! ([`super::handoff`]): no write waits for them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::report::{Level, report};
use crate::shared::control::Slot;
use crate::writer::handoff::Handoff;
use crate::writer::log_file::LogFile;
use crate::writer::policy::{Durability, SealLimits, count_lines};
use crate::writer::seal::{self, Stamps};

/// What a table's file obeys besides the rotation generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRules {
    /// When the writer seals the file.
    pub(crate) seal: SealLimits,
    /// When the file is synced.
    pub(crate) durability: Durability,
}

/// What the open file holds, for the seal limits.
#[derive(Debug, Default)]
struct Held {
    records: u64,
    bytes: u64,
    /// When its first record was written (tracked only with an age limit).
    since: Option<Instant>,
}

/// The open file of one table, and the rotation generation it was opened under.
#[derive(Debug)]
pub(crate) struct TableFile {
    path: PathBuf,
    mode: Option<u32>,
    /// `None` after a seal: the next write starts a new file.
    file: Option<LogFile>,
    generation: u64,
    rules: FileRules,
    held: Held,
    /// Written since the last sync.
    unsynced: bool,
    stamps: Stamps,
    /// A seal failed and has not succeeded since (reported once).
    seal_failing: bool,
    /// Where left files go to be synced: set exactly when the rules sync on a seal.
    handoff: Option<Arc<Handoff>>,
}

impl TableFile {
    /// The file at `path` for `generation`, not opened yet (see [`TableFile::ensure_open`]).
    /// `handoff` takes the files left to sync; it must be given exactly when `rules` sync on a
    /// seal.
    pub(crate) fn new(
        path: PathBuf,
        mode: Option<u32>,
        generation: u64,
        rules: FileRules,
        handoff: Option<Arc<Handoff>>,
    ) -> TableFile {
        debug_assert_eq!(handoff.is_some(), rules.durability.syncs_on_seal());
        TableFile {
            path,
            mode,
            file: None,
            generation,
            rules,
            held: Held::default(),
            unsynced: false,
            stamps: Stamps::default(),
            seal_failing: false,
            handoff,
        }
    }

    /// True while a file is open: from [`TableFile::ensure_open`] until a seal.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Open the file at the path unless one is open. With self-rotation on, a file that already
    /// holds records (left by an earlier process with the same N) is sealed first: a writer
    /// only appends to a file it started, so its limits hold.
    #[inline]
    pub(crate) fn ensure_open(&mut self) -> Result<()> {
        if self.file.is_none() {
            self.file = Some(self.open_fresh()?);
        }
        Ok(())
    }

    /// Write whole lines under the handshake: announce the write in `slot`, read the
    /// generation, reopen if it moved, write with one `write(2)` (one per file when a seal
    /// limit splits them), clear the slot. `written` tells how many bytes reached a file, also
    /// on error.
    pub(crate) fn write(&mut self, slot: &Slot, bytes: &[u8], written: &mut usize) -> Result<()> {
        let generation = slot.begin_write();
        self.follow(generation, slot);
        slot.writing_to(self.generation);
        let result = if self.rules.seal.is_off() {
            self.write_unlimited(bytes, written)
        } else {
            self.write_sealing(bytes, written)
        };
        slot.end_write();
        result
    }

    fn write_unlimited(&mut self, bytes: &[u8], written: &mut usize) -> Result<()> {
        let file = match &self.file {
            Some(file) => file,
            None => self.file.insert(LogFile::open(&self.path, self.mode)?),
        };
        let result = file.write_lines_counted(bytes, written);
        self.after_write(*written)?;
        result
    }

    /// Write `bytes` across as many files as the seal limits call for, sealing each full one.
    #[inline(never)]
    fn write_sealing(&mut self, bytes: &[u8], written: &mut usize) -> Result<()> {
        *written = 0;
        while *written < bytes.len() {
            let rest = &bytes[*written..];
            let (take, lines) = match &self.file {
                Some(_) if self.seal_failing => (rest.len(), count_lines(rest)),
                Some(_) => self
                    .rules
                    .seal
                    .room(rest, self.held.records, self.held.bytes),
                None => {
                    self.file = Some(self.open_fresh()?);
                    continue;
                }
            };
            if take == 0 {
                self.seal_reporting();
                continue;
            }
            let file = self
                .file
                .as_ref()
                .unwrap_or_else(|| unreachable!("opened above"));
            let mut chunk = 0;
            let result = file.write_lines_counted(&rest[..take], &mut chunk);
            *written += chunk;
            let lines = if chunk == take {
                lines
            } else {
                count_lines(&rest[..chunk])
            };
            self.held.records += lines;
            self.held.bytes += chunk as u64;
            if self.rules.seal.age.is_some() && self.held.since.is_none() && chunk > 0 {
                self.held.since = Some(Instant::now());
            }
            self.after_write(chunk)?;
            result?;
            if self.rules.seal.is_full(self.held.records, self.held.bytes) {
                self.seal_reporting();
            }
        }
        Ok(())
    }

    /// Bookkeeping after `written` bytes reached the file: sync at `fsync=always`.
    fn after_write(&mut self, written: usize) -> Result<()> {
        if written == 0 {
            return Ok(());
        }
        self.unsynced = true;
        if self.rules.durability == Durability::EveryWrite
            && let Some(file) = &self.file
        {
            file.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Open the file at the path; with self-rotation on, seal what is found there first.
    fn open_fresh(&mut self) -> Result<LogFile> {
        let file = LogFile::open(&self.path, self.mode)?;
        self.held = Held::default();
        if self.rules.seal.is_off() || file.is_empty()? {
            return Ok(file);
        }
        self.file = Some(file);
        self.seal_reporting();
        LogFile::open(&self.path, self.mode)
    }

    /// Seal the open file if it holds a record written `age` or longer ago (the time limit;
    /// called by the connection's helper thread, so that it holds for an idle writer too).
    pub(crate) fn seal_if_older(&mut self, age: Duration) {
        if self.held.since.is_some_and(|since| since.elapsed() >= age) {
            self.seal_reporting();
        }
    }

    /// Seal the open file. A file that cannot be sealed stays open and takes the next records
    /// beyond its limits (nothing is refused for it); the failure is reported once (an error,
    /// [`crate::report`]), as no caller is waiting for it, and the seal is tried again at the next
    /// limit.
    fn seal_reporting(&mut self) {
        match self.seal() {
            Ok(()) => self.seal_failing = false,
            Err(e) => {
                if !self.seal_failing {
                    report(
                        Level::Error,
                        format_args!(
                            "cannot seal {}: {e}; records go on into it",
                            self.path.display()
                        ),
                    );
                }
                self.seal_failing = true;
                self.held.since = None;
            }
        }
    }

    /// Seal the open file: rename it to its sealed name, or, when it is to be synced first, to
    /// its pending name and hand it to the helper thread, which syncs it and gives it its
    /// sealed name. A file someone else renamed away is already out of the writer's path: it
    /// is only left (and synced when it is due).
    fn seal(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let renamed = if !file.is_at_its_path() {
            Ok(None)
        } else if self.handoff.is_some() {
            seal::rename_pending(&self.path, &mut self.stamps).map(Some)
        } else {
            seal::rename_sealed(&self.path, &mut self.stamps).map(|_| None)
        };
        match (renamed, &self.handoff) {
            (Ok(Some(at)), Some(handoff)) => handoff.sealed(file, &self.path, at),
            (Err(e), _) if e.kind() != std::io::ErrorKind::NotFound => {
                self.file = Some(file);
                return Err(e);
            }
            // Renamed away by someone else (now or before): only left.
            (_, Some(handoff)) if self.unsynced => handoff.rotated(file),
            _ => {}
        }
        self.held = Held::default();
        self.unsynced = false;
        Ok(())
    }

    /// Make the file of `generation` current when the generation moved (any move: a rotation
    /// was requested since this file was opened): the new file is opened first and swapped in
    /// only on success. On failure the old file stays in use, the slot says so (`rotate
    /// --wait` reports it), and the next write tries again.
    #[inline]
    fn follow(&mut self, generation: u64, slot: &Slot) {
        if generation != self.generation {
            self.reopen(generation, slot);
        }
    }

    /// [`TableFile::follow`] once the generation moved: rare, so kept out of the write path.
    #[cold]
    #[inline(never)]
    fn reopen(&mut self, generation: u64, slot: &Slot) {
        if self.file.is_none() {
            self.generation = generation;
            return;
        }
        let left = self.file.take();
        match self.open_fresh() {
            Ok(file) => {
                if let Some(left) = left
                    && let Some(handoff) = &self.handoff
                    && self.unsynced
                {
                    handoff.rotated(left);
                }
                self.file = Some(file);
                self.unsynced = false;
                self.generation = generation;
                slot.set_stuck(None);
            }
            // Keep writing to the old file, unless it was sealed on the way (then the next
            // write opens a new one).
            Err(_)
                if self.rules.seal.is_off()
                    || left.as_ref().is_some_and(LogFile::is_at_its_path) =>
            {
                self.file = left;
                slot.set_stuck(Some(generation));
            }
            Err(_) => self.generation = generation,
        }
    }

    /// A descriptor to sync when data was written since the last sync (`fsync=interval`):
    /// taken here, synced by the caller without holding up writers.
    pub(crate) fn take_unsynced(&mut self) -> Option<LogFile> {
        if !self.unsynced {
            return None;
        }
        let clone = self.file.as_ref()?.try_clone().ok()?;
        self.unsynced = false;
        Some(clone)
    }

    /// At close: sync what is unsynced unless `fsync=never`.
    pub(crate) fn settle(&mut self) -> Result<()> {
        if self.rules.durability.syncs_on_seal()
            && self.unsynced
            && let Some(file) = &self.file
        {
            file.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }
}
