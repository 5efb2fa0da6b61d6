//! Where a run's CDRs go (standard output, a file, the journal of incremental runs, a
//! PostgreSQL table), begun with what earlier runs left and committed at the end; and the
//! writer that takes the run's CDRs and complaints on their way there.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::thread::Scope;

use flatstore::cdr::state::{self, OutputMark, Restored};
use flatstore::cdr::{CdrView, CdrWriter, Complaint, Emit, Pairer, PairingOptions, Problem};

use super::Args;
use super::database::{CdrDatabase, CdrTable, CommittedStates};
use super::fault;
use super::refused::{self, Origins};
use super::rows::CdrRows;
use crate::commit::{self, Journal};
use crate::consumed::ConsumedFiles;
use crate::db::stream::{CopyStream, Streamed};
use crate::db::{cdrstate, copy};
use crate::error::CliError;
use crate::exit::{FileError, Status};

/// How many bytes of rows are gathered before they are written (or appended to the journal).
const OUTPUT_BUFFER: usize = 1024 * 1024;

/// Where the CDRs go.
pub(super) enum Destination<'t> {
    /// Standard output, written as the rows come.
    Stdout(File),
    /// --output without a state: a temporary file beside `path`, renamed to it at the commit.
    File { file: File, path: PathBuf },
    /// --output with --state: appended to the journal, the state replaced at the commit.
    Journal { journal: Journal, state: PathBuf },
    /// --db: the run's transaction on a thread of its own, one `COPY … FROM STDIN` for the
    /// whole run fed a buffer full of rows at a time while the pairing goes on (see
    /// [`crate::db::stream`]).
    Database {
        stream: CopyStream<'t>,
        table: &'t CdrTable,
    },
}

/// What earlier runs read: this run's state's files, and with --db those of the runs under
/// other sources into the same SQL table (with their source).
#[derive(Default)]
pub(super) struct EarlierRuns {
    pub(super) own: ConsumedFiles,
    pub(super) foreign: Vec<(String, ConsumedFiles)>,
}

/// A destination begun.
pub(super) struct Begun<'t> {
    pub(super) destination: Destination<'t>,
    /// What goes first (CSV's header, unless a journal has it already).
    pub(super) first: Vec<u8>,
    /// The pairer, new or as the last committed run left it.
    pub(super) pairer: Pairer,
    pub(super) earlier: EarlierRuns,
}

/// The pairer and the ledger of a restored state, with its output mark; new ones without.
fn start(
    restored: Option<Restored>,
    options: PairingOptions,
) -> (Pairer, ConsumedFiles, Option<OutputMark>) {
    match restored {
        Some(restored) => (
            restored.pairer,
            ConsumedFiles::new(restored.files),
            restored.output,
        ),
        None => (Pairer::new(options), ConsumedFiles::default(), None),
    }
}

/// The path of the temporary file `path` is written as.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

impl<'t> Destination<'t> {
    /// The destination `args` and `database` ask for, and the state the last committed run
    /// left for it (with --db, inside the run's transaction, under the lock of the SQL table;
    /// the transaction then goes to a thread of `scope` that copies the rows).
    pub(super) fn begin(
        args: &Args,
        database: Option<&'t mut CdrDatabase>,
        options: PairingOptions,
        rows: &CdrRows,
        scope: &'t Scope<'t, '_>,
    ) -> Result<Begun<'t>, CliError> {
        let mut earlier = EarlierRuns::default();
        let begun = match (database, &args.state, &args.output) {
            (Some(database), _, _) => {
                let (tx, table, CommittedStates { own: saved, others }) = database.begin()?;
                for (source, bytes) in others {
                    let restored = state::restore(&bytes, options).map_err(|source_error| {
                        CliError::State {
                            whose: format!("flatstore_cdr_state of --source {source}"),
                            source: source_error,
                        }
                    })?;
                    earlier
                        .foreign
                        .push((source, ConsumedFiles::new(restored.files)));
                }
                let restored = saved
                    .map(|bytes| state::restore(&bytes, options))
                    .transpose()
                    .map_err(|source| CliError::State {
                        whose: "flatstore_cdr_state".to_owned(),
                        source,
                    })?;
                let (pairer, own, _) = start(restored, options);
                earlier.own = own;
                // The spool of the rows sent: in the system's temporary directory ($TMPDIR).
                let stream = CopyStream::start(scope, tx, table.copy.clone(), std::env::temp_dir());
                Begun {
                    destination: Destination::Database { stream, table },
                    first: Vec::new(),
                    pairer,
                    earlier,
                }
            }
            (None, Some(state_path), Some(path)) => {
                let restored =
                    match std::fs::read(state_path) {
                        Ok(bytes) => Some(state::restore(&bytes, options).map_err(|source| {
                            CliError::State {
                                whose: state_path.display().to_string(),
                                source,
                            }
                        })?),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                        Err(source) => {
                            return Err(CliError::Write {
                                path: state_path.clone(),
                                source,
                            });
                        }
                    };
                let (pairer, own, mark) = start(restored, options);
                let (mut journal, mut empty) = Journal::open(path, mark)?;
                let header = rows.header();
                if !empty && !journal.begins_with(&header)? {
                    // The table's columns changed since the journal began (column names that
                    // appeared, extras added to the proxy's config): rows of another width
                    // never go under its header. It is ended, and a new one begun.
                    let retired = journal.retire().map_err(|source| CliError::Write {
                        path: path.clone(),
                        source,
                    })?;
                    eprintln!(
                        "flatstore: {}: its header is not of the table's columns now: moved to \
                         {} with the rows committed in it; a new {} begun with the new header",
                        path.display(),
                        retired.display(),
                        path.display()
                    );
                    (journal, empty) = Journal::open(path, mark)?;
                }
                if empty {
                    let mark = journal.sync()?;
                    // A new journal is committed before anything is appended to it, so that
                    // what a killed run appends is always cut by the next.
                    commit::replace(
                        state_path,
                        &state::save_marked(&pairer, own.files(), Some(mark)),
                    )
                    .map_err(|source| CliError::Write {
                        path: state_path.clone(),
                        source,
                    })?;
                    journal.append(&header)?;
                }
                earlier.own = own;
                Begun {
                    destination: Destination::Journal {
                        journal,
                        state: state_path.clone(),
                    },
                    first: Vec::new(),
                    pairer,
                    earlier,
                }
            }
            (None, _, Some(path)) => {
                let temporary = temporary(path);
                let file = File::create(&temporary).map_err(|source| CliError::Write {
                    path: temporary.clone(),
                    source,
                })?;
                Begun {
                    destination: Destination::File {
                        file,
                        path: path.clone(),
                    },
                    first: rows.header(),
                    pairer: Pairer::new(options),
                    earlier,
                }
            }
            (None, _, None) => {
                let fd = io::stdout().as_fd().try_clone_to_owned()?;
                Begun {
                    destination: Destination::Stdout(File::from(fd)),
                    first: rows.header(),
                    pairer: Pairer::new(options),
                    earlier,
                }
            }
        };
        Ok(begun)
    }

    /// Whether the run carries the calls still open to a later run (a state is kept).
    pub(super) fn carries_open_calls(&self) -> bool {
        matches!(self, Self::Journal { .. } | Self::Database { .. })
    }

    /// Writes `rows` (a buffer full) on their way.
    fn write(&mut self, rows: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Self::Stdout(file) | Self::File { file, .. } => file.write_all(rows),
            Self::Journal { journal, .. } => journal.append(rows),
            Self::Database { stream, .. } => stream.send(rows),
        }
    }

    /// The error of a run that stopped with `error`: with --db the COPY's own, when it failed
    /// (the write that stopped the run only says that it did). Nothing is committed.
    pub(super) fn abandon(self, error: CliError, origins: &Origins<'_>) -> CliError {
        match self {
            Self::Database { stream, table } => match stream.abandon() {
                Some(e) => refused::failed(table, e, origins),
                None => error,
            },
            _ => error,
        }
    }

    /// Writes the last `rows` and commits the run: the file renamed into place, or the state
    /// (`pairer` and `ledger`) saved with what was appended, or the transaction committed
    /// (with the CDRs the server refused set aside, named by their records in `origins`).
    /// Standard output that cannot be written is reported to `status` (nothing to commit).
    pub(super) fn commit(
        self,
        rows: &[u8],
        pairer: &Pairer,
        ledger: &ConsumedFiles,
        origins: &Origins<'_>,
        status: &mut Status,
    ) -> Result<(), CliError> {
        match self {
            Self::Stdout(mut out) => {
                if let Err(e) = out.write_all(rows) {
                    status.output_failed(&e);
                }
            }
            Self::File { mut file, path } => {
                file.write_all(rows)?;
                file.sync_all()?;
                std::fs::rename(temporary(&path), &path)
                    .map_err(|source| CliError::Write { path, source })?;
            }
            Self::Journal {
                mut journal,
                state: state_path,
            } => {
                journal.append(rows)?;
                let mark = journal.sync().map_err(|source| CliError::Write {
                    path: journal.path().to_owned(),
                    source,
                })?;
                commit::replace(
                    &state_path,
                    &state::save_marked(pairer, ledger.files(), Some(mark)),
                )
                .map_err(|source| CliError::Write {
                    path: state_path,
                    source,
                })?;
            }
            Self::Database { mut stream, table } => {
                let sent = stream.send(&mut rows.to_vec());
                // Made while the server copies the last rows.
                let saved = state::save(pairer, ledger.files());
                let Streamed {
                    mut tx,
                    copied,
                    aside,
                } = match (stream.finish(), sent) {
                    (Ok(streamed), Ok(())) => streamed,
                    (Err(e), _) => return Err(refused::failed(table, e, origins)),
                    (Ok(_), Err(e)) => return Err(e.into()),
                };
                if !aside.is_empty() {
                    refused::keep(&mut tx, table, &aside, origins, status)?;
                }
                let in_db = table.in_db();
                cdrstate::write(&mut tx, &table.name, &table.source, &saved).map_err(&in_db)?;
                tx.commit().map_err(&in_db)?;
                if let Err(e) = writeln!(io::stdout(), "{copied} CDRs loaded into {}", table.name) {
                    status.output_failed(&e);
                }
                if let Some(note) = copy::stored_as_hex_note(&table.name) {
                    eprintln!("flatstore: {note}");
                }
            }
        }
        Ok(())
    }
}

/// Takes what a run makes: rows gathered and written to the destination a buffer full at a
/// time, problems and complaints to standard error.
pub(super) struct RowWriter<'t> {
    rows: CdrRows,
    destination: Destination<'t>,
    buffer: Vec<u8>,
    status: Status,
    /// The first write that failed; nothing more is written after it.
    failed: Option<io::Error>,
}

impl<'t> RowWriter<'t> {
    /// A writer of `rows` to `destination`, `first` gathered already; the complaints raise
    /// `status`.
    pub(super) fn new(
        rows: CdrRows,
        destination: Destination<'t>,
        first: Vec<u8>,
        status: Status,
    ) -> Self {
        let mut buffer = Vec::with_capacity(OUTPUT_BUFFER + 64 * 1024);
        buffer.extend_from_slice(&first);
        Self {
            rows,
            destination,
            buffer,
            status,
            failed: None,
        }
    }

    /// The destination and what is left to write to it, and the status.
    pub(super) fn into_parts(self) -> (Destination<'t>, Vec<u8>, Status) {
        (self.destination, self.buffer, self.status)
    }
}

impl Emit for RowWriter<'_> {
    fn cdr(&mut self, cdr: &CdrView<'_>) {
        fault::inject(fault::Place::Pairing);
        if self.failed.is_some() {
            return;
        }
        self.rows.write(cdr, &mut self.buffer);
        if self.buffer.len() >= OUTPUT_BUFFER {
            match self.destination.write(&mut self.buffer) {
                Ok(()) => self.buffer.clear(),
                Err(e) => self.failed = Some(e),
            }
        }
    }

    fn problem(&mut self, problem: Problem) {
        self.status.problem(problem);
    }
}

impl CdrWriter for RowWriter<'_> {
    type ReadError = FileError;
    type Error = io::Error;

    fn complaint(&mut self, complaint: Complaint<FileError>) {
        match complaint {
            Complaint::Problem(message) => self.status.problem(message),
            Complaint::Unreadable(error) => self.status.file_error(&error),
        }
    }

    fn check(&mut self) -> Result<(), io::Error> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
