//! A connection: the host's handle, writing any number of tables of one directory from the
//! process that holds it.

use std::mem;
use std::sync::{Arc, Mutex};

use crate::columns;
use crate::error::{Error, Result};
use crate::line::encode::{LineBuf, LineFormat};
use crate::line::value::{BadValue, Value};
use crate::names;
use crate::report::{Level, report};
use crate::shared::control::{Control, Slot};
use crate::shared::{process, rotation};
use crate::sys::mutex::lock;
use crate::writer::buffer::{Buffer, SharedBuffer};
use crate::writer::config::{Config, Flush};
use crate::writer::housekeeper::{Chores, Housekeeper};
use crate::writer::policy::Durability;
use crate::writer::table_file::{FileRules, TableFile};

/// Where a table's records go in this process, as the configuration decided once: a buffer
/// the inserting thread owns, or one it shares with the connection's helper thread (which
/// drains it, seals its file by age, syncs it).
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per table; the owned buffer is the insert path at flush=1, kept without an indirection"
)]
enum TableBuffer {
    Own(Buffer),
    Shared(SharedBuffer),
}

impl TableBuffer {
    /// The one write site of every record: `encode` appends it to the buffer, which writes it
    /// out at once at `flush=1`.
    #[inline]
    fn push_with(
        &mut self,
        slot: &Slot,
        encode: impl FnOnce(&mut LineBuf) -> Result<()>,
    ) -> Result<()> {
        match self {
            TableBuffer::Own(buffer) => buffer.push_with(slot, encode),
            TableBuffer::Shared(buffer) => lock(buffer).push_with(slot, encode),
        }
    }

    fn with_buffer<R>(&mut self, f: impl FnOnce(&mut Buffer) -> R) -> R {
        match self {
            TableBuffer::Own(buffer) => f(buffer),
            TableBuffer::Shared(buffer) => f(&mut lock(buffer)),
        }
    }
}

/// A table this connection has inserted into.
#[derive(Debug)]
struct UsedTable {
    /// The name as the host gave it: bytes, so the same name always finds the same table.
    name: Vec<u8>,
    /// `None` until the table's first insert in this process (or since a fork).
    sink: Option<TableBuffer>,
    /// This process wrote (or tried to write) the table's column names (`header=1`).
    columns_recorded: bool,
}

/// What this process needs to write: its writer slot in the control file, and the helper
/// thread when the configuration gives it chores. Made at the first insert after a fork.
#[derive(Debug)]
struct Writing {
    slot: Slot,
    housekeeper: Option<Housekeeper>,
}

/// A connection: the host's handle, writing any number of tables of one directory.
///
/// Not thread-safe (the host's connection is used by one process thread at a time, as with the
/// C modules); fork-safe: a child that inherits it writes its own files and never the parent's
/// buffers.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    control: Arc<Control>,
    tables: Vec<UsedTable>,
    current: Option<usize>,
    /// What the helper thread does: decided once, from the configuration.
    chores: Chores,
    /// Fork epoch the sinks and `writing` belong to.
    epoch: u64,
    writing: Option<Writing>,
}

impl Connection {
    /// A connection for `config`: maps the directory's control file (shared with every process
    /// forked from here); no log file is opened until the first insert.
    pub fn new(config: Config) -> Result<Connection> {
        process::track_forks();
        let control = rotation::control_for(&config.dir, config.file_mode, config.rotate_signal)?;
        let chores = Chores {
            drain_every: match config.flush {
                Flush::EveryRecord => None,
                Flush::Buffered { interval, .. } => Some(interval),
            },
            seal_after: config.seal.age,
            sync_every: (config.durability == Durability::Interval)
                .then_some(config.fsync_interval),
            sync_left: config.durability.syncs_on_seal(),
        };
        Ok(Connection {
            config,
            control,
            tables: Vec::new(),
            current: None,
            chores,
            epoch: process::epoch(),
            writing: None,
        })
    }

    /// Select the table the next inserts write to. Refuses names that could leave the
    /// directory (see [`names::check_table_name`]).
    pub fn use_table(&mut self, table: &[u8]) -> Result<()> {
        // Kamailio selects the table before every insert: the current one was checked already.
        if let Some(current) = self.current
            && self.tables[current].name == table
        {
            return Ok(());
        }
        names::check_table_name(table)?;
        let index = match self.tables.iter().position(|t| t.name == table) {
            Some(index) => index,
            None => {
                self.tables.push(UsedTable {
                    name: table.to_vec(),
                    sink: None,
                    columns_recorded: false,
                });
                self.tables.len() - 1
            }
        };
        self.current = Some(index);
        Ok(())
    }

    /// True when the current table's column names are still to be recorded (`header=1`): the
    /// host then passes its insert keys to [`Connection::record_columns`].
    #[inline]
    pub fn wants_columns(&self) -> bool {
        self.config.header
            && self
                .current
                .is_some_and(|i| !self.tables[i].columns_recorded)
    }

    /// Record the current table's column names in `<table>.columns` (see `docs/operations.md`), once
    /// per table and process. A failure (a `None` name, an I/O error) never refuses a record:
    /// it is reported (an error, [`crate::report`]), once.
    pub fn record_columns<'a>(&mut self, names: impl IntoIterator<Item = Option<&'a [u8]>>) {
        let Some(index) = self.current else {
            return;
        };
        let table = &mut self.tables[index];
        table.columns_recorded = true;
        if let Err(e) = columns::record(
            &self.config.dir,
            &table.name,
            names,
            self.config.format,
            self.config.file_mode,
        ) {
            report(
                Level::Error,
                format_args!(
                    "column names of table {:?} not recorded: {e}",
                    String::from_utf8_lossy(&table.name)
                ),
            );
        }
    }

    /// Append one record to the current table: formatted whole, then written with one
    /// `write(2)` (or buffered whole), to the file of the current rotation generation. If any
    /// value is `Err`, nothing is written (and no file is opened for it).
    #[inline]
    pub fn insert<'a, I>(&mut self, values: I) -> Result<()>
    where
        I: IntoIterator<Item = Result<Value<'a>, BadValue>>,
    {
        // Not `ok_or`: an error built eagerly costs a call to its drop on every insert.
        let Some(index) = self.current else {
            return Err(Error::NoTable);
        };
        self.leave_inherited_files();
        if self.tables[index].sink.is_none() {
            self.make_sink(index)?;
        }
        let (Some(sink), Some(writing)) = (&mut self.tables[index].sink, &self.writing) else {
            unreachable!("opened above");
        };
        let format: LineFormat = self.config.format;
        sink.push_with(&writing.slot, |out| {
            format.encode_record(values, out).map_err(Error::from)
        })
    }

    /// Make table `index`'s sink in this process (its file is opened at its first record):
    /// claim the writer slot and start the helper thread first if this is the process's first
    /// table since it was forked.
    #[cold]
    fn make_sink(&mut self, index: usize) -> Result<()> {
        if self.writing.is_none() {
            let slot = self.control.claim_slot()?;
            let housekeeper = if self.chores.is_empty() {
                None
            } else {
                Some(Housekeeper::start(self.chores, &self.control)?)
            };
            self.writing = Some(Writing { slot, housekeeper });
        }
        let path = names::live_log(
            &self.config.dir,
            &self.tables[index].name,
            process::number(),
        );
        let rules = FileRules {
            seal: self.config.seal,
            durability: self.config.durability,
        };
        let housekeeper = self.writing.as_ref().and_then(|w| w.housekeeper.as_ref());
        let file = TableFile::new(
            path,
            self.config.file_mode,
            self.control.generation(),
            rules,
            housekeeper
                .filter(|_| self.chores.sync_left)
                .map(|h| Arc::clone(h.handoff())),
        );
        let capacity = match self.config.flush {
            Flush::EveryRecord => 0,
            Flush::Buffered { buffer_size, .. } => buffer_size,
        };
        let buffer = Buffer::new(file, capacity);
        self.tables[index].sink = Some(match housekeeper {
            Some(housekeeper) if self.chores.watches_buffers() => {
                let shared = Arc::new(Mutex::new(buffer));
                housekeeper.watch(&shared);
                TableBuffer::Shared(shared)
            }
            _ => TableBuffer::Own(buffer),
        });
        Ok(())
    }

    /// Write out everything buffered (no-op at `flush=1`).
    pub fn flush(&mut self) -> Result<()> {
        self.leave_inherited_files();
        let Some(writing) = &self.writing else {
            return Ok(());
        };
        let mut result = Ok(());
        for sink in self.tables.iter_mut().filter_map(|t| t.sink.as_mut()) {
            result = result.and(sink.with_buffer(|b| b.drain(&writing.slot)));
        }
        result
    }

    /// Drain, sync (unless `fsync=never`) and close every file; the first error is returned,
    /// nothing buffered is dropped silently.
    pub fn close(mut self) -> Result<()> {
        self.settle()
    }

    /// Stop the helper thread (one that panicked is the first error), then drain and sync
    /// every file of this process, and finish the seals still pending.
    fn settle(&mut self) -> Result<()> {
        self.leave_inherited_files();
        let Some(writing) = &mut self.writing else {
            return Ok(());
        };
        let left = writing
            .housekeeper
            .as_ref()
            .map(|h| Arc::clone(h.handoff()));
        let mut result = match writing.housekeeper.take() {
            Some(housekeeper) => housekeeper.stop(),
            None => Ok(()),
        };
        for sink in self.tables.iter_mut().filter_map(|t| t.sink.as_mut()) {
            result = result.and(sink.with_buffer(|b| b.settle(&writing.slot)));
        }
        // The last writes may have sealed files after the helper thread stopped.
        for unfinished in left.iter().flat_map(|left| left.take().finish()) {
            report(Level::Error, format_args!("{unfinished}"));
        }
        result
    }

    /// After a fork, the files, buffers and slot of this connection belong to the parent:
    /// forget them here (the parent still writes them) and start afresh in this process.
    #[inline]
    fn leave_inherited_files(&mut self) {
        let epoch = process::epoch();
        if epoch != self.epoch {
            self.forget_inherited(epoch);
        }
    }

    /// [`Connection::leave_inherited_files`] in a child forked since the last call, now in
    /// fork epoch `epoch`: once per fork, so kept out of the insert path.
    #[cold]
    #[inline(never)]
    fn forget_inherited(&mut self, epoch: u64) {
        self.epoch = epoch;
        if let Some(writing) = self.writing.take() {
            if let Some(housekeeper) = writing.housekeeper {
                housekeeper.abandon();
            }
            writing.slot.abandon();
        }
        for table in &mut self.tables {
            match mem::take(&mut table.sink) {
                // Nothing is buffered without a helper thread (flush=1): closing our copy of
                // the descriptor leaves the parent's open.
                Some(TableBuffer::Own(buffer)) => drop(buffer),
                // The bytes buffered are the parent's to write, its locks may be held by a
                // thread that does not exist here.
                Some(TableBuffer::Shared(buffer)) => process::keep_inherited(buffer),
                None => {}
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Drop cannot report; `close` is the way to learn about a failed last write.
        let _ = self.settle();
    }
}
