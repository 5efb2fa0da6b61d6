//! The torture host (`c-tests/torture_host.c`): a forking C host whose workers insert unique
//! `<rank>|<seq>` records as fast as they can, and the checks that every acknowledged record is
//! in the files exactly once. The host runs in a process group of its own: one that does not
//! start (60 s) or finish (120 s after the stop file) fails the test and is killed with its
//! workers.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::timeout::{kill_group, own_group, wait_or_kill};
use super::{build_c, visible_files};

/// How long the host has to start its workers, and to end once told to stop.
const START_LIMIT: Duration = Duration::from_secs(60);
const FINISH_LIMIT: Duration = Duration::from_secs(120);

/// A fresh `<tmp>/flatstore-<name>-<pid>` with an empty `logs` directory in it.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).expect("create scratch dir");
    dir
}

/// Call `visit` with `(rank, seq)` and the text of every line of every file in `logs` (live,
/// renamed or gzip-compressed), failing on a torn or garbled line; returns the number of files.
pub fn for_each_record(logs: &Path, mut visit: impl FnMut((u32, u64), &str)) -> usize {
    let mut files = 0;
    for (_, path) in visible_files(logs) {
        files += 1;
        let bytes = if path.extension().is_some_and(|e| e == "gz") {
            let out = Command::new("gzip")
                .arg("-dc")
                .arg(&path)
                .output()
                .expect("run gzip");
            assert!(out.status.success(), "{} is not valid gzip", path.display());
            out.stdout
        } else {
            fs::read(&path).expect("read log")
        };
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{} ends with a torn line",
            path.display()
        );
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).expect("ascii line");
            let key = text
                .split_once('|')
                .and_then(|(r, s)| Some((r.parse::<u32>().ok()?, s.parse::<u64>().ok()?)))
                .unwrap_or_else(|| panic!("torn or garbled line {text:?} in {}", path.display()));
            visit(key, text);
        }
    }
    files
}

/// Every line of every file in `logs` must be `<rank>|<seq>`; returns how often each was seen.
pub fn count_records(logs: &Path) -> (HashMap<(u32, u64), u32>, usize) {
    let mut seen = HashMap::new();
    let files = for_each_record(logs, |key, _| *seen.entry(key).or_insert(0) += 1);
    (seen, files)
}

/// The torture host running with its workers, and what it printed.
pub struct Host {
    child: std::process::Child,
    /// The host's main process.
    pub pid: Pid,
    /// Its workers, rank 1 first.
    pub workers: Vec<Pid>,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    stop: PathBuf,
}

impl Host {
    /// Start the host on `dir/logs` with `flush` and `extra` URL parameters
    /// (`name=value&...`, may be empty) and wait until its workers run.
    pub fn start(dir: &Path, flush: &str, extra: &str, workers: usize) -> Host {
        let logs = dir.join("logs");
        let stop = dir.join("stop");
        let program = build_c(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("c-tests/torture_host.c")
                .as_path(),
            &format!(
                "torture_host_{}",
                dir.file_name().expect("name").to_string_lossy()
            ),
            &["-O2"],
        );
        let mut child = own_group(&mut Command::new(&program))
            .arg(&logs)
            .arg(workers.to_string())
            .arg(&stop)
            .arg(flush)
            .arg(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start torture host");
        let pid = Pid::from_raw(child.id() as i32);
        let (lines_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("host output");
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let expected_workers = workers;
        let mut workers = Vec::new();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                kill_group(child.id());
                let _ = child.wait();
                panic!("the torture host did not say ready within {START_LIMIT:?} (killed)");
            };
            if line == "ready" {
                break;
            }
            if let Some(pid) = line
                .strip_prefix("worker ")
                .and_then(|l| l.split(' ').nth(1))
            {
                workers.push(Pid::from_raw(pid.parse().expect("pid")));
            }
        }
        assert_eq!(workers.len(), expected_workers, "host started its workers");
        Host {
            child,
            pid,
            workers,
            lines,
            reader: Some(reader),
            stop,
        }
    }

    /// Stop the workers; returns how many records each rank's inserts acknowledged.
    pub fn finish(mut self) -> HashMap<u32, u64> {
        fs::write(&self.stop, b"").expect("create stop file");
        let status = wait_or_kill(&mut self.child, FINISH_LIMIT).unwrap_or_else(|| {
            panic!("the torture host did not end within {FINISH_LIMIT:?} of the stop file (killed with its workers)")
        });
        self.join_reader();
        assert!(status.success(), "torture host failed: {status}");
        let mut inserted = HashMap::new();
        for line in self.lines.try_iter() {
            if let Some(rest) = line.strip_prefix("done ") {
                let (rank, count) = rest.split_once(' ').expect("done <rank> <count>");
                inserted.insert(rank.parse().expect("rank"), count.parse().expect("count"));
            }
        }
        assert_eq!(
            inserted.len(),
            self.workers.len(),
            "every worker reported its count"
        );
        inserted
    }
}

impl Host {
    /// `kill -9` the workers and the host: no writer gets to close or seal anything.
    pub fn kill(mut self) {
        self.kill_all();
        self.join_reader();
    }

    fn kill_all(&mut self) {
        for pid in self.workers.iter().chain([&self.pid]) {
            let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
        }
        kill_group(self.pid.as_raw() as u32);
        let _ = self.child.wait();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader");
        }
    }
}

/// A test that fails half-way leaves no writer running (and filling the disk).
impl Drop for Host {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.kill_all();
        }
    }
}

/// Every acknowledged record present exactly once, and nothing else.
pub fn assert_each_record_once(
    seen: &HashMap<(u32, u64), u32>,
    inserted: &HashMap<u32, u64>,
) -> u64 {
    let total: u64 = inserted.values().sum();
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    assert_eq!(duplicated, 0, "records written twice");
    for (rank, count) in inserted {
        for seq in 0..*count {
            assert!(seen.contains_key(&(*rank, seq)), "record {rank}|{seq} lost");
        }
    }
    assert_eq!(
        seen.len() as u64,
        total,
        "records that no insert acknowledged"
    );
    total
}
