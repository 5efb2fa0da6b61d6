//! Per-process table files: naming, lazy open, one write per record, reopen on rotation.

use std::mem;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::buffer::{self, Flusher, Pending, SharedPending};
use crate::config::{Config, Flush};
use crate::error::{Error, Result};
use crate::format::LineBuf;
use crate::logfile::LogFile;
use crate::value::{BadValue, Value};
use crate::{process, rotate};

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
    /// `flush=1`: one write per record.
    Direct(LogFile),
    /// `flush=0`: lines collected, shared with the flusher thread.
    Buffered(SharedPending),
}

#[derive(Debug)]
struct TableFile {
    table: String,
    sink: Sink,
    /// Rotation generation the sink was opened under.
    generation: u64,
}

/// A connection: the host's handle, writing any number of tables of one directory.
///
/// Not thread-safe (the host's connection is used by one process thread at a time, as with the
/// C modules); fork-safe: a child that inherits it writes its own files and never the parent's
/// buffers.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    tables: Vec<TableFile>,
    current: Option<usize>,
    /// The formatted record, reused for every insert.
    line: LineBuf,
    /// Fork epoch the open files and the flusher belong to.
    epoch: u64,
    flusher: Option<Flusher>,
}

impl Connection {
    /// A connection for `config`; no file is opened until the first insert.
    pub fn new(config: Config) -> Connection {
        process::track_forks();
        Connection {
            config,
            tables: Vec::new(),
            current: None,
            line: LineBuf::new(),
            epoch: process::epoch(),
            flusher: None,
        }
    }

    /// The configuration this connection was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Select the table the next inserts write to. Refuses names that could leave the
    /// directory (see [`check_table_name`]).
    pub fn use_table(&mut self, table: &[u8]) -> Result<()> {
        check_table_name(table)?;
        let position = self.tables.iter().position(|t| t.table.as_bytes() == table);
        let index = match position {
            Some(index) => index,
            None => {
                self.tables.push(TableFile {
                    // check_table_name refused nothing that matters for a file name; keep the
                    // bytes as given (lossless for UTF-8, which table names are in practice).
                    table: String::from_utf8_lossy(table).into_owned(),
                    sink: Sink::Closed,
                    generation: 0,
                });
                self.tables.len() - 1
            }
        };
        self.current = Some(index);
        Ok(())
    }

    /// Append one record to the current table: formatted whole, then written with one
    /// `write(2)` (or buffered whole). If any value is `Err`, nothing is written.
    pub fn insert<'a, I>(&mut self, values: I) -> Result<()>
    where
        I: IntoIterator<Item = Result<Value<'a>, BadValue>>,
    {
        let index = self.current.ok_or(Error::NoTable)?;
        self.line.clear();
        self.config.format.encode_record(values, &mut self.line)?;
        self.leave_inherited_files();
        let generation = rotate::generation();
        let table = &mut self.tables[index];
        if matches!(table.sink, Sink::Closed) || table.generation != generation {
            open_or_reopen(&self.config, table, generation, &mut self.flusher)?;
        }
        match &table.sink {
            Sink::Direct(file) => file.write_lines(self.line.as_bytes()),
            Sink::Buffered(pending) => buffer::lock(pending).push(self.line.as_bytes()),
            Sink::Closed => unreachable!("opened above"),
        }
    }

    /// Write out everything buffered (no-op at `flush=1`).
    pub fn flush(&mut self) -> Result<()> {
        self.leave_inherited_files();
        let mut result = Ok(());
        for table in &self.tables {
            if let Sink::Buffered(pending) = &table.sink
                && let Err(e) = buffer::lock(pending).drain()
            {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Drain and close every file; the first error is returned, nothing buffered is dropped
    /// silently.
    pub fn close(mut self) -> Result<()> {
        self.leave_inherited_files();
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
        self.flush()
    }

    /// After a fork, the files and buffers of this connection belong to the parent: forget them
    /// here (the parent still writes them) and start afresh in this process.
    fn leave_inherited_files(&mut self) {
        let epoch = process::epoch();
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        if let Some(flusher) = self.flusher.take() {
            flusher.abandon();
        }
        for table in &mut self.tables {
            match mem::replace(&mut table.sink, Sink::Closed) {
                // Closing our copy of the descriptor leaves the parent's open.
                Sink::Direct(file) => drop(file),
                // Its lock may be held by a thread that does not exist here; its bytes are the
                // parent's to write.
                Sink::Buffered(pending) => mem::forget(pending),
                Sink::Closed => {}
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.leave_inherited_files();
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
        // Drop cannot report; `close` is the way to learn about a failed last write.
        let _ = self.flush();
    }
}

fn table_path(config: &Config, table: &str) -> PathBuf {
    config
        .dir
        .join(format!("{table}_{}.log", process::number()))
}

/// Open the table's file in this process, or reopen it after a rotation: the new file is
/// opened first and swapped in only on success; buffered lines go to the old file before it is
/// closed. On failure the old file stays in use and the reopen is tried again next time.
fn open_or_reopen(
    config: &Config,
    table: &mut TableFile,
    generation: u64,
    flusher: &mut Option<Flusher>,
) -> Result<()> {
    let file = LogFile::open(&table_path(config, &table.table), config.file_mode);
    let file = match (file, &table.sink) {
        (Ok(file), _) => file,
        (Err(e), Sink::Closed) => return Err(e),
        // Keep writing to the old file; the generation stays behind so the next insert retries.
        (Err(_), _) => return Ok(()),
    };
    match (&table.sink, config.flush) {
        (Sink::Buffered(pending), _) => {
            if buffer::lock(pending).switch_to(file).is_err() {
                // The old file took no drain; keep it and retry at the next insert.
                return Ok(());
            }
        }
        (_, Flush::EveryRecord) => table.sink = Sink::Direct(file),
        (
            _,
            Flush::Buffered {
                interval,
                buffer_size,
            },
        ) => {
            let pending = Arc::new(Mutex::new(Pending::new(file, buffer_size)));
            if flusher.is_none() {
                *flusher = Some(Flusher::start(interval)?);
            }
            if let Some(flusher) = flusher {
                flusher.watch(&pending);
            }
            table.sink = Sink::Buffered(pending);
        }
    }
    table.generation = generation;
    Ok(())
}
