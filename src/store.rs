//! Per-process table files: naming, lazy open, one write per record, reopen on rotation.

use std::mem;
use std::sync::{Arc, Mutex};

use crate::buffer::{self, Chores, Housekeeper, Pending, SharedPending};
use crate::config::{Config, Flush};
use crate::control::{Control, Slot};
use crate::error::{Error, Result};
use crate::format::LineBuf;
use crate::seal::Durability;
use crate::table::{FileRules, TableFile};
use crate::value::{BadValue, Value};
use crate::{columns, process, rotate};

/// Longest table name accepted: the file name `<table>_<N>.log` must fit `NAME_MAX` (255).
pub const MAX_TABLE_LEN: usize = 200;

/// Check that `table` names a file inside the log directory.
pub fn check_table_name(table: &[u8]) -> Result<()> {
    let refuse = |reason| Error::BadTable {
        name: String::from_utf8_lossy(table).into_owned(),
        reason,
    };
    if table.is_empty() {
        return Err(refuse("empty"));
    }
    if table.len() > MAX_TABLE_LEN {
        return Err(refuse("longer than 200 bytes"));
    }
    if table.contains(&b'/') {
        return Err(refuse("contains '/'"));
    }
    if table.contains(&0) {
        return Err(refuse("contains NUL"));
    }
    if table.windows(2).any(|w| w == b"..") {
        return Err(refuse("contains '..'"));
    }
    Ok(())
}

/// Where a table's records go in this process.
#[derive(Debug)]
enum Sink {
    /// Not opened in this process yet.
    Closed,
    /// `flush=1` with nothing for the helper thread to do: one write per record.
    Direct(TableFile),
    /// Shared with the connection's helper thread: lines collected at `flush=0` (none kept at
    /// `flush=1`), and a file the thread seals by age or syncs.
    Shared(SharedPending),
}

#[derive(Debug)]
struct Table {
    name: String,
    sink: Sink,
    /// This process wrote (or tried to write) the table's column names (`header=1`).
    columns_recorded: bool,
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
    tables: Vec<Table>,
    current: Option<usize>,
    /// The formatted record, reused for every insert.
    line: LineBuf,
    /// Fork epoch the open files, the slot and the housekeeper belong to.
    epoch: u64,
    /// This process's writer slot in the control file, claimed at its first write.
    slot: Option<Slot>,
    housekeeper: Option<Housekeeper>,
}

impl Connection {
    /// A connection for `config`: maps the directory's control file (shared with every process
    /// forked from here); no log file is opened until the first insert.
    pub fn new(config: Config) -> Result<Connection> {
        process::track_forks();
        let control = rotate::control_for(&config.dir, config.file_mode, config.rotate_signal)?;
        Ok(Connection {
            config,
            control,
            tables: Vec::new(),
            current: None,
            line: LineBuf::new(),
            epoch: process::epoch(),
            slot: None,
            housekeeper: None,
        })
    }

    /// The configuration this connection was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Select the table the next inserts write to. Refuses names that could leave the
    /// directory (see [`check_table_name`]).
    pub fn use_table(&mut self, table: &[u8]) -> Result<()> {
        // Kamailio selects the table before every insert: the current one was checked already.
        if let Some(current) = self.current
            && self.tables[current].name.as_bytes() == table
        {
            return Ok(());
        }
        check_table_name(table)?;
        let position = self.tables.iter().position(|t| t.name.as_bytes() == table);
        let index = match position {
            Some(index) => index,
            None => {
                self.tables.push(Table {
                    // check_table_name refused nothing that matters for a file name; keep the
                    // bytes as given (lossless for UTF-8, which table names are in practice).
                    name: String::from_utf8_lossy(table).into_owned(),
                    sink: Sink::Closed,
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

    /// Record the current table's column names in `<table>.columns` (see [`crate::columns`]),
    /// once per table and process. A failure (a `None` name, an I/O error) never refuses a
    /// record: it is reported on standard error, once.
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
            eprintln!(
                "flatstore: column names of table {:?} not recorded: {e}",
                table.name
            );
        }
    }

    /// Append one record to the current table: formatted whole, then written with one
    /// `write(2)` (or buffered whole), to the file of the current rotation generation. If any
    /// value is `Err`, nothing is written.
    pub fn insert<'a, I>(&mut self, values: I) -> Result<()>
    where
        I: IntoIterator<Item = Result<Value<'a>, BadValue>>,
    {
        // Not `ok_or`: an error built eagerly costs a call to its drop on every insert.
        let Some(index) = self.current else {
            return Err(Error::NoTable);
        };
        self.leave_inherited_files();
        let format = self.config.format;
        match (&mut self.tables[index].sink, &self.slot) {
            // Formatted straight into the buffer, which a refused record leaves as it was.
            (Sink::Shared(pending), Some(slot)) => buffer::lock(pending).push_with(slot, |out| {
                format.encode_record(values, out).map_err(Error::from)
            }),
            (Sink::Direct(file), Some(slot)) => {
                self.line.clear();
                format.encode_record(values, &mut self.line)?;
                let mut written = 0;
                file.write(slot, self.line.as_bytes(), &mut written)
            }
            _ => self.first_insert(index, values),
        }
    }

    /// The first insert into table `index` in this process (or since a fork): the record is
    /// formatted first, so that no file is opened (nor slot claimed) for a refused one.
    fn first_insert<'a, I>(&mut self, index: usize, values: I) -> Result<()>
    where
        I: IntoIterator<Item = Result<Value<'a>, BadValue>>,
    {
        self.line.clear();
        self.config.format.encode_record(values, &mut self.line)?;
        if self.slot.is_none() {
            self.slot = Some(self.control.claim_slot()?);
        }
        if matches!(self.tables[index].sink, Sink::Closed) {
            let sink = self.open_sink(index)?;
            self.tables[index].sink = sink;
        }
        let slot = self
            .slot
            .as_ref()
            .unwrap_or_else(|| unreachable!("claimed above"));
        match &mut self.tables[index].sink {
            Sink::Direct(file) => {
                let mut written = 0;
                file.write(slot, self.line.as_bytes(), &mut written)
            }
            Sink::Shared(pending) => {
                let line = self.line.as_bytes();
                buffer::lock(pending).push_with(slot, |out| {
                    out.extend_from_slice(line);
                    Ok(())
                })
            }
            Sink::Closed => unreachable!("opened above"),
        }
    }

    /// Open table `index`'s file in this process, and the helper thread when it has work.
    fn open_sink(&mut self, index: usize) -> Result<Sink> {
        let path = self.config.dir.join(format!(
            "{}_{}.log",
            self.tables[index].name,
            process::number()
        ));
        let rules = FileRules {
            seal: self.config.seal,
            durability: self.config.durability,
        };
        let file = TableFile::open(
            path,
            self.config.file_mode,
            self.control.generation(),
            rules,
        )?;
        let chores = self.chores();
        if chores.is_empty() {
            return Ok(Sink::Direct(file));
        }
        if self.housekeeper.is_none() {
            self.housekeeper = Some(Housekeeper::start(chores, &self.control)?);
        }
        let capacity = match self.config.flush {
            Flush::EveryRecord => 0,
            Flush::Buffered { buffer_size, .. } => buffer_size,
        };
        let pending = Arc::new(Mutex::new(Pending::new(file, capacity)));
        if let Some(housekeeper) = &self.housekeeper {
            housekeeper.watch(&pending);
        }
        Ok(Sink::Shared(pending))
    }

    /// What the helper thread has to do for this configuration.
    fn chores(&self) -> Chores {
        Chores {
            drain_every: match self.config.flush {
                Flush::EveryRecord => None,
                Flush::Buffered { interval, .. } => Some(interval),
            },
            seal_after: self.config.seal.age,
            sync_every: (self.config.durability == Durability::Interval)
                .then_some(self.config.fsync_interval),
        }
    }

    /// Write out everything buffered (no-op at `flush=1`).
    pub fn flush(&mut self) -> Result<()> {
        self.leave_inherited_files();
        let Some(slot) = &self.slot else {
            return Ok(());
        };
        let mut result = Ok(());
        for table in &self.tables {
            if let Sink::Shared(pending) = &table.sink
                && let Err(e) = buffer::lock(pending).drain(slot)
            {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Drain, sync (unless `fsync=never`) and close every file; the first error is returned,
    /// nothing buffered is dropped silently.
    pub fn close(mut self) -> Result<()> {
        self.settle()
    }

    /// Stop the helper thread, then drain and sync every file of this process.
    fn settle(&mut self) -> Result<()> {
        self.leave_inherited_files();
        if let Some(housekeeper) = self.housekeeper.take() {
            housekeeper.stop();
        }
        let Some(slot) = &self.slot else {
            return Ok(());
        };
        let mut result = Ok(());
        for table in &mut self.tables {
            let settled = match &mut table.sink {
                Sink::Direct(file) => file.settle(),
                Sink::Shared(pending) => buffer::lock(pending).settle(slot),
                Sink::Closed => Ok(()),
            };
            result = result.and(settled);
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
        if let Some(housekeeper) = self.housekeeper.take() {
            housekeeper.abandon();
        }
        if let Some(slot) = self.slot.take() {
            slot.abandon();
        }
        for table in &mut self.tables {
            match mem::replace(&mut table.sink, Sink::Closed) {
                // Closing our copy of the descriptor leaves the parent's open.
                Sink::Direct(file) => drop(file),
                Sink::Shared(pending) => process::keep_inherited(pending),
                Sink::Closed => {}
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
