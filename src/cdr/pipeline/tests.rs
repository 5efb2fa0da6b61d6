//! The run on files held in memory: merged, paired, complaints in their turn, and a thread
//! that panics ending the run with an error within a bound, never a hang.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::cdr::pairing::{FailedInvites, PairingOptions, Problem};
use crate::cdr::{CdrView, Layout};

/// A file's lines in memory; panics at line `panic_at` (counted from 1) when asked.
struct MemoryFile {
    path: PathBuf,
    lines: std::vec::IntoIter<String>,
    position: u64,
    read: u64,
    panic_at: Option<u64>,
}

impl MemoryFile {
    fn new(name: &str, lines: Vec<&str>) -> RecordFile<Self> {
        Self::of(name, lines.into_iter().map(str::to_owned).collect())
    }

    fn of(name: &str, lines: Vec<String>) -> RecordFile<Self> {
        RecordFile {
            reader: Self {
                path: PathBuf::from(name),
                lines: lines.into_iter(),
                position: 0,
                read: 0,
                panic_at: None,
            },
            lines_before: 0,
        }
    }
}

impl LineReader for MemoryFile {
    type Error = String;

    fn path(&self) -> &Path {
        &self.path
    }

    fn next_line(&mut self, line: &mut Vec<u8>) -> Result<Option<bool>, String> {
        self.read += 1;
        if self.panic_at == Some(self.read) {
            panic!("reading failed on purpose");
        }
        line.clear();
        let Some(text) = self.lines.next() else {
            return Ok(None);
        };
        let whole = text.ends_with('\n');
        line.extend_from_slice(text.trim_end_matches('\n').as_bytes());
        self.position += text.len() as u64;
        Ok(Some(whole))
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// What a run wrote: each CDR's callid and status, and every complaint and problem, in order.
#[derive(Default)]
struct Written {
    lines: Vec<String>,
    panic_on_cdr: bool,
}

impl Emit for Written {
    fn cdr(&mut self, cdr: &CdrView<'_>) {
        if self.panic_on_cdr {
            panic!("writing failed on purpose");
        }
        self.lines.push(format!(
            "{} {}",
            String::from_utf8_lossy(cdr.callid),
            cdr.status.as_str()
        ));
    }

    fn problem(&mut self, problem: Problem) {
        self.lines.push(problem.to_string());
    }
}

impl CdrWriter for Written {
    type ReadError = String;
    type Error = String;

    fn complaint(&mut self, complaint: Complaint<String>) {
        self.lines.push(match complaint {
            Complaint::Problem(message) => message,
            Complaint::Unreadable(error) => format!("unreadable: {error}"),
        });
    }

    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }
}

fn layout() -> Layout {
    match Layout::kamailio_default(7) {
        Ok(layout) => layout,
        Err(error) => panic!("{error}"),
    }
}

type Files = Vec<Result<RecordFile<MemoryFile>, String>>;

/// What a run gave: where each file was read up to, or why it stopped; and what it wrote.
type Ran = (Result<Vec<u64>, RunError<String>>, Written);

/// Runs `main` (and `missed`) into `out` on another thread; `None` when it did not end
/// within 60 seconds.
fn run_bounded(main: Files, missed: Option<Files>, mut out: Written) -> Option<Ran> {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let sources = Sources {
            missed: missed.map(|files| Table {
                layout: layout(),
                files,
            }),
            main: Table {
                layout: layout(),
                files: main,
            },
        };
        let options = RunOptions {
            window: TimeWindow::default(),
            ending: Ending::EmitOpenCalls,
        };
        let mut pairer = Pairer::new(PairingOptions::new(FailedInvites::Ignore));
        let read = run(sources, options, &mut pairer, &mut out)
            .map(|read| read.into_iter().map(|file| file.end).collect());
        let _ = done.send((read, out));
    });
    result.recv_timeout(Duration::from_secs(60)).ok()
}

#[test]
fn files_are_merged_by_time_paired_and_their_complaints_come_in_their_turn() {
    let a = MemoryFile::new(
        "a.log",
        vec![
            "INVITE|f1|t1|one|200|OK|1700000000\n",
            "not a record\n",
            "BYE|f2|t2|two|200|OK|1700000009\n",
        ],
    );
    let b = MemoryFile::new(
        "b.log",
        vec![
            "INVITE|f2|t2|two|200|OK|1700000001\n",
            "BYE|t1|f1|one|200|OK|1700000005\n",
            "BYE|f9|t9|torn|200|OK|17000000",
        ],
    );
    let missed = MemoryFile::new("m.log", vec!["INVITE|f3|t3|three|486|Busy|1700000003\n"]);
    let Some((read, out)) = run_bounded(
        vec![Ok(a), Ok(b)],
        Some(vec![Ok(missed)]),
        Written::default(),
    ) else {
        panic!("the run did not end within 60 s");
    };
    assert_eq!(read.ok(), Some(vec![39, 80, 67]));
    assert_eq!(
        out.lines,
        [
            "three failed",
            "a.log line 2: the line has 1 fields where the table has 7 columns; not accounted",
            "b.log line 3 (Call-ID \"torn\"): the last line is torn (no newline at its end): not read",
            "one answered",
            "two answered",
        ]
    );
}

#[test]
fn every_complaint_about_a_record_names_its_file_line_and_call_id() {
    let main = MemoryFile::new(
        "acc.log",
        vec![
            "INVITE|f1|t1|one|200|OK|1700000000\n",
            "INVITE|f2|t2|two|2000|OK|1700000001\n",
            "BYE|f1|t1|one|200|OK|soon\n",
            "BYE|f1|t1|one|200|OK|1700000002|extra\n",
            "BYE|f1|t1|one|200|OK|1700000003\n",
        ],
    );
    // The missed-calls table's records are failed calls whatever their code.
    let missed = MemoryFile::new("m.log", vec!["INVITE|f3|t3|three|4xx|Busy|1700000003\n"]);
    let Some((read, out)) = run_bounded(vec![Ok(main)], Some(vec![Ok(missed)]), Written::default())
    else {
        panic!("the run did not end within 60 s");
    };
    assert!(read.is_ok());
    assert_eq!(
        out.lines,
        [
            "three failed",
            "acc.log line 2 (Call-ID \"two\"): INVITE with status code \"2000\", which is not a \
             3-digit code (answered or not is unknown); not accounted",
            "acc.log line 3 (Call-ID \"one\"): time \"soon\" cannot be read: \
             not a time (expected epoch seconds or YYYY-MM-DD HH:MM:SS[.fff]); not accounted",
            "acc.log line 4 (Call-ID \"one\"): the line has 8 fields where the table has 7 \
             columns; not accounted",
            "one answered",
        ]
    );
}

#[test]
fn a_reading_thread_that_panics_ends_the_run_with_an_error() {
    let mut file = MemoryFile::new(
        "a.log",
        (0..5000)
            .map(|_| "INVITE|f|t|c|200|OK|1700000000\n")
            .collect(),
    );
    file.reader.panic_at = Some(3000);
    let Some((read, _)) = run_bounded(vec![Ok(file)], None, Written::default()) else {
        panic!("the run hung after the reading thread panicked");
    };
    match read {
        Err(RunError::Panicked { thread, message }) => {
            assert_eq!(
                (thread, message.as_str()),
                ("reading", "reading failed on purpose")
            )
        }
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    }
}

#[test]
fn a_pairing_thread_that_panics_ends_the_run_with_an_error() {
    // Calls of one second each, one after the other: the CDRs come out while pairing.
    let lines = (0..10_000)
        .flat_map(|i| {
            [
                format!("INVITE|f|t|c{i}|200|OK|{}\n", 1_700_000_000 + i),
                format!("BYE|f|t|c{i}|200|OK|{}\n", 1_700_000_001 + i),
            ]
        })
        .collect();
    let out = Written {
        panic_on_cdr: true,
        ..Written::default()
    };
    let Some((read, _)) = run_bounded(vec![Ok(MemoryFile::of("a.log", lines))], None, out) else {
        panic!("the run hung after the pairing thread panicked");
    };
    match read {
        Err(RunError::Panicked { thread, message }) => {
            assert_eq!(
                (thread, message.as_str()),
                ("pairing", "writing failed on purpose")
            )
        }
        other => panic!("{:?}", other.map_err(|e| e.to_string())),
    }
}
