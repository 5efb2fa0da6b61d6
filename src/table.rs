//! One table's file in one process: which file is current, and the write handshake around
//! every `write(2)` so that `rotate --wait` knows when no write can reach a renamed file.

use std::path::PathBuf;

use crate::control::Slot;
use crate::error::Result;
use crate::logfile::LogFile;
use crate::rotate;

/// The open file of one table, and the rotation generation it was opened under.
#[derive(Debug)]
pub struct TableFile {
    path: PathBuf,
    mode: Option<u32>,
    file: LogFile,
    generation: u64,
}

impl TableFile {
    /// Open `path` as the file of `generation`.
    pub fn open(path: PathBuf, mode: Option<u32>, generation: u64) -> Result<TableFile> {
        let file = LogFile::open(&path, mode)?;
        Ok(TableFile {
            path,
            mode,
            file,
            generation,
        })
    }

    /// Write whole lines under the handshake: announce the write in `slot`, read the
    /// generation, reopen if it moved, write with one `write(2)`, clear the slot. `written`
    /// tells how many bytes reached the file, also on error.
    pub fn write(&mut self, slot: &Slot, bytes: &[u8], written: &mut usize) -> Result<()> {
        let generation = slot.begin_write();
        self.follow(generation, slot);
        slot.writing_to(self.generation);
        let result = self.file.write_lines_counted(bytes, written);
        slot.end_write();
        result
    }

    /// Make the file of `generation` current when [`rotate::must_reopen`] says so: the new file
    /// is opened first and swapped in only on success. On failure the old file stays in use,
    /// the slot says so (`rotate --wait` reports it), and the next write tries again.
    fn follow(&mut self, generation: u64, slot: &Slot) {
        if !rotate::must_reopen(self.generation, generation) {
            return;
        }
        match LogFile::open(&self.path, self.mode) {
            Ok(file) => {
                self.file = file;
                self.generation = generation;
                slot.set_stuck(None);
            }
            Err(_) => slot.set_stuck(Some(generation)),
        }
    }
}
