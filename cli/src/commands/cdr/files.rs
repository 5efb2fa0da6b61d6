//! The files of a run: which ones (a directory's tables, or files given), opened, their
//! tables' layouts, and each read on from where the committed runs stopped.

use std::path::{Path, PathBuf};

use flatstore::cdr::{Layout, LayoutError, LineReader, ROLE_NAMES, RecordFile, TimeWindow};
use flatstore::columns;
use flatstore::line::fields::split_fields;

use super::destination::EarlierRuns;
use super::fault;
use super::{Args, DEFAULT_TABLE, FILE_BUFFER};
use crate::consumed;
use crate::content::{self, Content};
use crate::error::CliError;
use crate::exit::{FileError, Status, usage};
use crate::inputs;
use crate::listing::{self, ListedFile, STDIN, Selection};
use crate::progress::Progress;

/// The files of a run: answered calls' and missed calls', with each table's sidecar.
pub(super) struct RunFiles {
    pub(super) table: String,
    pub(super) main: Vec<ListedFile>,
    pub(super) main_sidecar: Option<PathBuf>,
    pub(super) missed: Vec<ListedFile>,
    pub(super) missed_sidecar: Option<PathBuf>,
    /// The missed-calls table has files: failed INVITEs are its records, not TABLE's.
    pub(super) has_missed: bool,
}

/// The files of `table` that the selection reads, naming on standard error the live ones it
/// leaves out (they need `--live`); `None` when the table has no file at all, neither log nor
/// sidecar.
fn table_files(
    dir: &Path,
    table: &str,
    selection: &Selection,
    status: &mut Status,
) -> Result<Option<Vec<ListedFile>>, CliError> {
    let listing = listing::discover(dir, Some(table.as_bytes()))?;
    for error in &listing.errors {
        status.file_error(error);
    }
    if listing.files.is_empty() && listing.errors.is_empty() && listing.sidecars.is_empty() {
        return Ok(None);
    }
    Ok(Some(chosen(listing.files, table, selection)))
}

/// The files `selection` wants of `files` (a table's), naming on standard error the live ones
/// left out for being live.
fn chosen(files: Vec<ListedFile>, table: &str, selection: &Selection) -> Vec<ListedFile> {
    let live: Vec<&str> = files
        .iter()
        .filter(|f| selection.leaves_live(f))
        .map(|f| f.file_name.as_str())
        .collect();
    if !live.is_empty() {
        let (plural, them) = if live.len() == 1 {
            ("", "it")
        } else {
            ("s", "them")
        };
        eprintln!(
            "flatstore: {} live file{plural} of table {table:?} not read: {} (a writer may \
             still append to {them}; give --live to read {them})",
            live.len(),
            live.join(", ")
        );
    }
    files.into_iter().filter(|f| selection.wants(f)).collect()
}

/// The files of the run; `None` when DIR holds no file of TABLE at all, neither log nor sidecar
/// (reported as a problem, as `cat` does: a mistyped table name must not pass for an empty
/// table).
pub(super) fn run_files(args: &Args, status: &mut Status) -> Result<Option<RunFiles>, CliError> {
    if args.state.is_some() || args.db.is_some() {
        if args.inputs.iter().any(|p| p.as_os_str() == STDIN) {
            usage(
                "--state, --db: standard input (-) is not a file a later run can know again; \
                 give files or DIR",
            )
        }
        if TimeWindow::from(args.selection.records).is_set() {
            usage(
                "--state, --db: a run reads every new record exactly once; --since/--until \
                 would leave records out of it for good",
            )
        }
    }
    match inputs::named(&args.inputs) {
        inputs::Named::Table { dir, table } => {
            let table = table.unwrap_or_else(|| DEFAULT_TABLE.into());
            let Some(main) = table_files(dir, &table, &args.selection, status)? else {
                status.problem(format_args!(
                    "{}: no file of table {table:?}: nothing accounted",
                    dir.display()
                ));
                return Ok(None);
            };
            let has_missed = !listing::discover(dir, Some(args.missed.as_bytes()))?
                .files
                .is_empty();
            let missed = if has_missed && args.missed != table {
                table_files(dir, &args.missed, &args.selection, status)?.unwrap_or_default()
            } else {
                Vec::new()
            };
            Ok(Some(RunFiles {
                main_sidecar: Some(flatstore::names::sidecar(dir, table.as_bytes())),
                missed_sidecar: Some(flatstore::names::sidecar(dir, args.missed.as_bytes())),
                table,
                main,
                missed,
                has_missed,
            }))
        }
        inputs::Named::Files(paths) => {
            inputs::refuse_directory_options(&args.selection);
            let listing = inputs::given(paths);
            for error in &listing.errors {
                status.file_error(error);
            }
            // A mistyped name in an accounting run stops it: nothing is written or committed.
            if !listing.errors.is_empty() {
                return Err(CliError::GivenFileUnexaminable);
            }
            let (missed, main): (Vec<ListedFile>, Vec<ListedFile>) = listing
                .files
                .into_iter()
                .partition(|f| f.table() == Some(args.missed.as_bytes()));
            let sidecar = |files: &[ListedFile]| {
                files
                    .iter()
                    .find_map(|f| f.table().map(|table| inputs::sidecar_beside(f, table)))
            };
            let table = main
                .iter()
                .find_map(ListedFile::table)
                .map_or(DEFAULT_TABLE.into(), |t| {
                    String::from_utf8_lossy(t).into_owned()
                });
            Ok(Some(RunFiles {
                table,
                main_sidecar: sidecar(&main),
                missed_sidecar: sidecar(&missed),
                has_missed: !missed.is_empty(),
                main,
                missed,
            }))
        }
    }
}

/// A file of the run, open. Each is opened once (standard input cannot be opened twice):
/// what is looked at before its records are read is put back ([`Content::unread`]).
pub(super) struct Open<'a> {
    file: &'a ListedFile,
    content: Content<'a>,
}

/// Open `files`; those that cannot be opened are reported to `status` and left out.
pub(super) fn open_all<'a>(
    files: &'a [ListedFile],
    progress: &'a Progress,
    status: &mut Status,
) -> Vec<Open<'a>> {
    files
        .iter()
        .filter_map(
            |file| match content::open_buffered(file, progress, FILE_BUFFER) {
                Ok(content) => Some(Open { file, content }),
                Err(e) => {
                    status.file_error(&e);
                    None
                }
            },
        )
        .collect()
}

/// A table's layout, and whether the table fixed it.
pub(super) struct TableLayout {
    pub(super) layout: Layout,
    /// Neither column names (--columns, the sidecar) nor a record said what the columns are:
    /// the layout is Kamailio's seven, which a later record or sidecar may contradict.
    pub(super) unknown: bool,
}

/// A table's layout: from `names` when given, else its sidecar (when there is one), else
/// Kamailio's default for the width of its first record (7 columns, `unknown`, when it has
/// none).
pub(super) fn layout(
    sidecar: Option<&Path>,
    table: &str,
    names: &[String],
    files: &mut [Open<'_>],
) -> Result<TableLayout, CliError> {
    let problem = |source: LayoutError, whose: &str| CliError::Layout {
        table: table.to_owned(),
        whose: whose.to_owned(),
        source,
    };
    if !names.is_empty() {
        if let Err(what) = columns::check_names(names) {
            usage(format!("--columns: {what}"));
        }
        return named(Layout::from_names(names).map_err(|e| problem(e, "--columns"))?);
    }
    if let Some(sidecar) = sidecar
        && let Some(names) = columns::read(sidecar)?
    {
        return named(
            Layout::from_names(&names).map_err(|e| problem(e, &sidecar.display().to_string()))?,
        );
    }
    let mut width = None;
    let mut line = Vec::new();
    for open in files {
        let whole = open.content.next_line(&mut line)?;
        let Some(whole) = whole else { continue };
        let mut consumed = std::mem::take(&mut line);
        if whole {
            width = Some(split_fields(&consumed).count());
            consumed.push(b'\n');
        }
        open.content.unread(consumed);
        if whole {
            break;
        }
    }
    Ok(TableLayout {
        layout: Layout::kamailio_default(width.unwrap_or(ROLE_NAMES.len()))
            .map_err(|e| problem(e, "Kamailio's default layout"))?,
        unknown: width.is_none(),
    })
}

/// A layout the table's column names fixed.
fn named(layout: Layout) -> Result<TableLayout, CliError> {
    Ok(TableLayout {
        layout,
        unknown: false,
    })
}

/// A file's content as the run reads it, with its first bytes, which name it in the ledger.
pub(super) struct LedgerFile<'a> {
    content: Content<'a>,
    pub(super) prefix: Vec<u8>,
}

impl LineReader for LedgerFile<'_> {
    type Error = FileError;

    fn path(&self) -> &Path {
        self.content.path()
    }

    fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<bool>, FileError> {
        fault::inject(fault::Place::Reading);
        self.content.next_line(line)
    }

    fn position(&self) -> u64 {
        self.content.position()
    }
}

impl EarlierRuns {
    /// An open file's records for the run, past what the ledger says earlier runs read; `None`
    /// for a file read before under another source (--db), which is not read again.
    pub(super) fn unread_part<'a>(
        &self,
        open: Open<'a>,
    ) -> Option<Result<RecordFile<LedgerFile<'a>>, FileError>> {
        let Open { file, mut content } = open;
        let prefix = match consumed::prefix(&mut content) {
            Ok(prefix) => prefix,
            Err(e) => return Some(Err(e)),
        };
        content.unread(prefix.clone());
        let skip = self.own.already_read(&prefix);
        if skip == 0
            && let Some((source, _)) = self
                .foreign
                .iter()
                .find(|(_, other)| other.already_read(&prefix) > 0)
        {
            eprintln!(
                "flatstore: {}: read before into the same SQL table under --source {source}: \
                 not read again (give each proxy's files one --source, whichever host \
                 loads them)",
                file.path.display()
            );
            return None;
        }
        let mut line = Vec::new();
        let mut lines_before = 0;
        while content.position() < skip {
            match content.next_line(&mut line) {
                Ok(Some(true)) => lines_before += 1,
                Ok(_) => break,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(RecordFile {
            reader: LedgerFile { content, prefix },
            lines_before,
        }))
    }
}
