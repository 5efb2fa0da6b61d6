//! Whole lines on their way to one table's file: collected up to the buffer's capacity at
//! `flush=0` and written with one `write(2)` when it fills, on a drain, and at close; at
//! `flush=1` the capacity is 0 and every line is written before the insert returns. Every
//! record of a connection passes through [`Buffer::push_with`]: one write site for every mode.

use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::line::encode::LineBuf;
use crate::report::{Level, report};
use crate::shared::control::Slot;
use crate::writer::table_file::TableFile;

/// Whole lines waiting to be written to one table's file, and the file.
#[derive(Debug)]
pub(crate) struct Buffer {
    table: TableFile,
    bytes: LineBuf,
    capacity: usize,
}

/// Storage kept beyond the buffer's capacity: the record being formatted when the buffer is
/// nearly full overflows into it (it is then written out), so that it need not grow.
const LINE_ROOM: usize = 4096;

/// A [`Buffer`] shared between its connection and the connection's housekeeper (every
/// critical section leaves it holding whole lines).
pub(crate) type SharedBuffer = Arc<Mutex<Buffer>>;

impl Buffer {
    /// An empty buffer of `capacity` bytes (0: none, each line is written at once) in front of
    /// `table`.
    pub(crate) fn new(table: TableFile, capacity: usize) -> Buffer {
        Buffer {
            table,
            bytes: LineBuf::with_room(capacity + LINE_ROOM),
            capacity,
        }
    }

    /// Add one whole line, which `encode` appends to the buffer (leaving it as it was when it
    /// fails). The file is opened (if none is) only once the line is encoded, so a refused
    /// record opens nothing. When the line does not fit, what was buffered before it is
    /// written first; a line larger than the whole buffer is written on its own. On error the
    /// line is not taken.
    #[inline]
    pub(crate) fn push_with(
        &mut self,
        slot: &Slot,
        encode: impl FnOnce(&mut LineBuf) -> Result<()>,
    ) -> Result<()> {
        let start = self.bytes.len();
        let result = match encode(&mut self.bytes) {
            Ok(()) if self.bytes.len() <= self.capacity && self.table.is_open() => return Ok(()),
            Ok(()) => self.take_line(start, slot),
            Err(e) => Err(e),
        };
        // A line longer than the room kept made the storage grow: give that back.
        self.bytes.shrink_to(self.capacity + LINE_ROOM);
        result
    }

    /// The line that starts at `start` is encoded: open the file if none is, then write what
    /// no longer fits (at `flush=1`, the line itself: nothing is before it).
    fn take_line(&mut self, start: usize, slot: &Slot) -> Result<()> {
        if let Err(e) = self.table.ensure_open() {
            self.bytes.truncate(start);
            return Err(e);
        }
        if self.bytes.len() <= self.capacity {
            return Ok(());
        }
        if start == 0 {
            let result = self.write_out(self.bytes.len(), slot);
            self.bytes.clear();
            return result;
        }
        self.overflow(start, slot)
    }

    /// The line that starts at `start` does not fit: write what is before it, then the line
    /// itself when it is larger than the whole buffer.
    fn overflow(&mut self, start: usize, slot: &Slot) -> Result<()> {
        let line = self.bytes.len() - start;
        if let Err(e) = self.write_out(start, slot) {
            self.bytes.truncate(self.bytes.len() - line);
            return Err(e);
        }
        if line > self.capacity {
            let result = self.write_out(line, slot);
            self.bytes.clear();
            return result;
        }
        Ok(())
    }

    /// Write everything buffered with one `write(2)`, to the file of the current rotation
    /// generation (a drain is a write like any other). On error what did reach the file is
    /// dropped from the buffer and the rest kept for the next attempt.
    pub(crate) fn drain(&mut self, slot: &Slot) -> Result<()> {
        self.write_out(self.bytes.len(), slot)
    }

    /// At close: drain, then sync the file unless `fsync=never`.
    pub(crate) fn settle(&mut self, slot: &Slot) -> Result<()> {
        self.drain(slot)?;
        self.table.settle()
    }

    /// [`Buffer::drain`] of the first `end` bytes only.
    fn write_out(&mut self, end: usize, slot: &Slot) -> Result<()> {
        if end == 0 {
            return Ok(());
        }
        let mut written = 0;
        let result = self
            .table
            .write(slot, &self.bytes.as_bytes()[..end], &mut written);
        self.bytes.consume(written);
        result
    }
}

impl Buffer {
    /// Last chance (process exit, termination signal): drain, and if that fails report how
    /// many records are lost and why (an error, [`crate::report`]), since no caller is left to tell.
    ///
    /// In the termination signal handler (whose locks are free or held by another thread,
    /// see `sys::signals::before_termination`), the report adds no lock and no allocation of
    /// its own: it formats on the stack and loads the sink from one atomic word. The one
    /// allocation left is the text of the OS error (`std::io::Error`'s `Display`), as when
    /// this printed with `eprintln!` (which also took standard error's lock); then the sink
    /// runs (by default one `writev(2)` to standard error).
    pub(crate) fn drain_or_report(&mut self, slot: &Slot) {
        if let Err(error) = self.drain(slot) {
            let records = self.bytes.iter().filter(|&&b| b == b'\n').count();
            report(
                Level::Error,
                format_args!(
                    "{records} buffered records ({} bytes) could not be written: {error}",
                    self.bytes.len()
                ),
            );
        }
    }

    /// The file the lines go to.
    pub(crate) fn file(&mut self) -> &mut TableFile {
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::shared::control::Control;
    use crate::writer::policy::{Durability, SealLimits};
    use crate::writer::table_file::FileRules;

    fn push(buffer: &mut Buffer, slot: &Slot, line: &[u8]) -> Result<()> {
        buffer.push_with(slot, |out| {
            out.extend_from_slice(line);
            Ok(())
        })
    }

    #[test]
    fn whole_lines_reach_the_file_when_the_buffer_is_full_and_a_refused_one_never() {
        let dir = std::env::temp_dir().join(format!("flatstore-buffer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let control = Control::open(&dir, None).expect("control");
        let slot = control.claim_slot().expect("slot");
        let path = dir.join("t_1.log");
        let rules = FileRules {
            seal: SealLimits::default(),
            durability: Durability::Never,
        };
        let file = TableFile::new(path.clone(), None, control.generation(), rules, None);
        let mut buffer = Buffer::new(file, 10);
        let on_disk = || std::fs::read(&path).expect("read");

        push(&mut buffer, &slot, b"aaaa\n").expect("fits");
        push(&mut buffer, &slot, b"bbbb\n").expect("fits exactly");
        assert_eq!(on_disk(), b"");
        push(&mut buffer, &slot, b"cc\n").expect("overflows");
        assert_eq!(
            on_disk(),
            b"aaaa\nbbbb\n",
            "what was buffered before the line"
        );
        let refused = buffer.push_with(&slot, |out| {
            out.extend_from_slice(b"half");
            out.truncate(out.len() - 4);
            Err(Error::NoTable)
        });
        assert!(refused.is_err());
        push(&mut buffer, &slot, b"a line longer than ten bytes\n").expect("on its own");
        assert_eq!(on_disk(), b"aaaa\nbbbb\ncc\na line longer than ten bytes\n");
        push(&mut buffer, &slot, b"dd\n").expect("fits");
        buffer.drain(&slot).expect("drain");
        assert_eq!(
            on_disk(),
            b"aaaa\nbbbb\ncc\na line longer than ten bytes\ndd\n"
        );
        drop(slot);
        std::fs::remove_dir_all(&dir).expect("remove");
    }
}
