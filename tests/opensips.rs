//! OpenSIPS 3.6 loading our module (`hosts/opensips`) as its `db_flatstore.so` (issue 21).
//!
//! OpenSIPS is built from `../shared/hosts/opensips-3.6.8.tar.xz` into the target directory
//! (once; `tests/common/opensips.rs`), runs `tests/opensips/opensips.cfg` on 127.0.0.1 (a
//! stateful, record-routing proxy; acc with `do_accounting`) and SIPp places four kinds of
//! calls through it, each side keeping the route set: the caller hangs up, the callee hangs up,
//! the callee answers 486 with a `|` in its reason, the caller cancels while it rings. The
//! tests are ignored, with the reason, when a tool or the tarball is missing, and fail instead
//! when `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::opensips::{
    Accounting, Proxy, SIPP_TIMEOUT_S, host, missing, our_module, ports, scratch,
};
use common::sipp::Calls;
use common::timeout::{output_or_fail, wait_or_fail};

fn main() {
    let needing = |name: &str, test: fn()| common::trial_unless(name, missing, test);
    common::run_trials(vec![
        needing(
            "opensips_accounts_every_call_once_across_rotations",
            opensips_accounts_every_call_once_across_rotations,
        ),
        needing(
            "opensips_cdr_mode_gives_one_answered_cdr_per_call",
            opensips_cdr_mode_gives_one_answered_cdr_per_call,
        ),
        needing(
            "opensips_records_equal_the_stock_modules",
            opensips_records_equal_the_stock_modules,
        ),
        needing(
            "the_rust_mirrors_match_the_opensips_headers",
            the_rust_mirrors_match_the_opensips_headers,
        ),
        needing(
            "two_module_processes_never_share_a_file",
            two_module_processes_never_share_a_file,
        ),
        needing(
            "opensips_refuses_to_start_on_a_refused_modparam_or_a_version_mismatch",
            opensips_refuses_to_start_on_a_refused_modparam_or_a_version_mismatch,
        ),
    ]);
}

/// Calls of each kind.
const CALLS: u32 = 5;
/// How long an answered call lasts: SIPp's `-d`, the pause before the BYE.
const PAUSE_MS: u64 = 2000;
/// acc's columns per table in per-request mode: method, from_tag, to_tag, callid, sip_code,
/// sip_reason, time, then (with a `do_accounting` context) four more in `acc`, two in
/// `missed_calls`.
const ACC_COLUMNS: usize = 11;
const MISSED_COLUMNS: usize = 9;

/// The kinds of calls: name, answering scenario, calling scenario (paths under `tests/`).
const KINDS: [(&str, &str, &str); 4] = [
    (
        "caller",
        "kamailio/cdr_uas_answer_then_wait_bye.xml",
        "kamailio/cdr_uac_caller_hangs_up.xml",
    ),
    (
        "callee",
        "kamailio/cdr_uas_hangs_up.xml",
        "kamailio/cdr_uac_callee_hangs_up.xml",
    ),
    ("busy", "opensips/uas_busy.xml", "kamailio/cdr_uac_busy.xml"),
    (
        "cancel",
        "opensips/uas_cancelled.xml",
        "opensips/uac_cancel.xml",
    ),
];

/// [`CALLS`] calls of one kind through the proxy on `port` (answering side on `port + 1`),
/// Call-IDs `<name>-<n>@opensips.test`; `during` runs `after` the calls were started.
fn run_calls(
    dir: &Path,
    port: u16,
    (name, uas, uac): (&str, &str, &str),
    during: Option<(Duration, &mut dyn FnMut())>,
) {
    let scenario = |file: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(file)
    };
    Calls {
        dir,
        name,
        domain: "opensips.test",
        uas: scenario(uas),
        uas_port: port + 1,
        uac: scenario(uac),
        uac_port: port + 2,
        proxy_port: port,
        calls: CALLS,
        pause_ms: PAUSE_MS,
        timeout_s: SIPP_TIMEOUT_S,
    }
    .run(during);
}

/// One accounted record: its table, the file it is in, and its fields (still escaped).
#[derive(Debug, Clone)]
struct Record {
    table: String,
    file: String,
    fields: Vec<String>,
}

/// Every record in `acc`, after checking that no file ends in a partial line and that every
/// file is `<table>_<N>.log[.suffix]` with N a rank-based number (no SIP worker took a
/// pid-based one).
fn records(acc: &Path) -> Vec<Record> {
    let mut records = Vec::new();
    for (name, path) in common::visible_files(acc) {
        let (table, rest) = name
            .rsplit_once(".log")
            .map_or((name.as_str(), ""), |(t, r)| (t, r));
        let (table, number) = table.rsplit_once('_').expect("<table>_<N>.log");
        let number: u32 = number.parse().unwrap_or_else(|_| panic!("N of {name}"));
        assert!(
            number < 1 << 22,
            "{name}: a SIP worker with a pid-based number"
        );
        let bytes = if name.ends_with(".gz") {
            let out = output_or_fail(
                Command::new("gzip").arg("-dc").arg(&path),
                "gzip -dc",
                Duration::from_secs(30),
            );
            assert!(out.status.success(), "gzip -dc {name}");
            out.stdout
        } else {
            fs::read(&path).expect("read")
        };
        if bytes.is_empty() {
            continue;
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "{name} ends in a partial line");
        let text = String::from_utf8(bytes).expect("UTF-8 records");
        for line in text.lines() {
            records.push(Record {
                table: table.to_owned(),
                file: format!("{table}_{number}.log{rest}"),
                fields: line.split('|').map(str::to_owned).collect(),
            });
        }
    }
    records
}

/// Check that `records` are exactly the calls' records, each once: per answered call its
/// INVITE and its BYE in `acc` (the callee's BYE with the tags swapped), per failed call one
/// INVITE in `missed_calls` (486 `Busy \x7C Here`, 487 `Request Terminated`); the column
/// counts and the tags are checked for each. Returns the records by (kind, call, method).
fn assert_every_call_once(records: &[Record]) -> BTreeMap<(String, u32, String), Record> {
    let mut seen: BTreeMap<(String, u32, String), Record> = BTreeMap::new();
    for record in records {
        let f = &record.fields;
        let columns = if record.table == "acc" {
            ACC_COLUMNS
        } else {
            MISSED_COLUMNS
        };
        assert_eq!(f.len(), columns, "column count of {record:?}");
        let (kind, call) = f[3]
            .strip_suffix("@opensips.test")
            .and_then(|c| c.rsplit_once('-'))
            .map(|(k, n)| (k.to_owned(), n.parse::<u32>().expect("call number")))
            .unwrap_or_else(|| panic!("Call-ID of {record:?}"));
        assert!((1..=CALLS).contains(&call), "{record:?}");
        let (caller, callee) = (format!("uac{call}"), format!("uas{call}"));
        let tags = if kind == "callee" && f[0] == "BYE" {
            [callee.as_str(), caller.as_str()]
        } else {
            [caller.as_str(), callee.as_str()]
        };
        assert_eq!(f[1..3], tags, "tags of {record:?}");
        let expected = match (kind.as_str(), f[0].as_str()) {
            ("caller" | "callee", "INVITE" | "BYE") => ("acc", "200", "OK"),
            ("busy", "INVITE") => ("missed_calls", "486", "Busy \\x7C Here"),
            ("cancel", "INVITE") => ("missed_calls", "487", "Request Terminated"),
            _ => panic!("unexpected record {record:?}"),
        };
        assert_eq!(
            (record.table.as_str(), f[4].as_str(), f[5].as_str()),
            expected,
            "{record:?}"
        );
        let key = (kind, call, f[0].clone());
        if let Some(earlier) = seen.insert(key, record.clone()) {
            panic!("twice: {earlier:?} and {record:?}");
        }
    }
    let expected = 2 * 2 * CALLS + 2 * CALLS;
    assert_eq!(seen.len(), expected as usize, "records of every call");
    seen
}

/// Our module in OpenSIPS under the four kinds of calls, rotated twice while answered calls
/// are up, the OpenSIPS way (rename, then MI `flat_rotate` over mi_fifo, replying OK) and by
/// the logrotate recipe (`examples/logrotate.conf`: rename, `flatstore rotate --wait`). After
/// the MI reply no process appends to a renamed file; every call's records are there exactly
/// once across renamed and new files, with their column counts and no torn line, and
/// `flatstore cdr` pairs every call.
fn opensips_accounts_every_call_once_across_rotations() {
    let dir = scratch("rotations");
    let acc = dir.join("acc");
    let port = ports();
    let url = format!("flatstore:{}", acc.display());
    let proxy = Proxy::start(our_module(), &dir, port, &url, Accounting::PerRequest, "");
    let mut renamed_by_mi: Vec<(PathBuf, u64)> = Vec::new();
    let mut mi_rotate = || {
        let renamed = common::rename_live_files(&acc, "mi");
        let reply = proxy.mi("flat_rotate").expect("MI flat_rotate");
        assert_eq!(reply.trim(), r#"{"jsonrpc":"2.0","result":"OK","id":"1"}"#);
        renamed_by_mi = renamed
            .into_iter()
            .map(|p| {
                let size = fs::metadata(&p).expect("renamed file").len();
                (p, size)
            })
            .collect();
    };
    run_calls(
        &dir,
        port,
        KINDS[0],
        Some((Duration::from_millis(1000), &mut mi_rotate)),
    );
    assert!(
        !renamed_by_mi.is_empty(),
        "the INVITEs were written before the rotation"
    );
    let recipe = logrotate_config(&dir);
    let mut logrotate = || {
        let mut run = Command::new("logrotate")
            .arg("--force")
            .arg("--state")
            .arg(dir.join("logrotate.state"))
            .arg(&recipe)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("run logrotate");
        let status = wait_or_fail(&mut run, "logrotate", Duration::from_secs(60));
        assert!(status.success(), "logrotate: {status}");
    };
    run_calls(
        &dir,
        port,
        KINDS[1],
        Some((Duration::from_millis(1000), &mut logrotate)),
    );
    for kind in &KINDS[2..] {
        run_calls(&dir, port, *kind, None);
    }
    let status = proxy.stop();
    assert!(status.success(), "opensips exit status {status}");
    for (path, size) in &renamed_by_mi {
        assert_eq!(
            fs::metadata(path).expect("renamed file").len(),
            *size,
            "{} grew after the MI reply",
            path.display()
        );
    }
    let all = records(&acc);
    let calls = assert_every_call_once(&all);
    let across = (1..=CALLS)
        .filter(|n| {
            let file = |m: &str| &calls[&("caller".to_owned(), *n, m.to_owned())].file;
            file("INVITE").ends_with(".mi") && !file("BYE").ends_with(".mi")
        })
        .count();
    assert_eq!(
        across, CALLS as usize,
        "every caller-hangs-up call across the MI rotation"
    );
    let gzipped = common::visible_files(&acc)
        .iter()
        .filter(|(n, _)| n.ends_with(".gz"))
        .count();
    assert!(gzipped > 0, "the recipe compressed the files it rotated");
    assert_cdr_pairs_every_call(&acc);
    eprintln!(
        "opensips: {} calls, {} records in {} files, once each across an MI and a logrotate \
         rotation; flatstore cdr paired every call",
        4 * CALLS,
        all.len(),
        common::visible_files(&acc).len()
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// `examples/logrotate.conf` for the scratch directory's `acc`, with this build's `flatstore`.
fn logrotate_config(dir: &Path) -> PathBuf {
    let recipe =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logrotate.conf"))
            .expect("read recipe")
            .replace(
                "/var/log/kamailio/acc",
                &dir.join("acc").display().to_string(),
            )
            .replace(
                "/usr/bin/flatstore",
                &common::flatstore_cli().to_string_lossy(),
            );
    let path = dir.join("logrotate.conf");
    fs::write(&path, recipe).expect("write recipe");
    path
}

/// `flatstore cdr --live` on the stopped proxy's directory: every call once, answered ones
/// with their INVITE and BYE paired (duration about the pause), failed ones with their code.
fn assert_cdr_pairs_every_call(acc: &Path) {
    let out = output_or_fail(
        Command::new(common::flatstore_cli())
            .arg("cdr")
            .arg(acc)
            .arg("--live"),
        "flatstore cdr",
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flatstore cdr: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4 * CALLS as usize, "one CDR per call:\n{text}");
    for row in &rows {
        let kind = row[0].split('-').next().unwrap_or_default();
        let (status, code) = (row[8], row[6]);
        match kind {
            "caller" | "callee" => {
                assert_eq!((status, code), ("answered", "200"), "{row:?}");
                let duration: f64 = row[5].parse().expect("duration");
                assert!((1.0..=4.0).contains(&duration), "duration of {row:?}");
            }
            "busy" => assert_eq!((status, code), ("failed", "486"), "{row:?}"),
            "cancel" => assert_eq!((status, code), ("failed", "487"), "{row:?}"),
            _ => panic!("unexpected CDR {row:?}"),
        }
    }
}

/// acc in CDR mode (`do_accounting("db", "cdr|missed")`, with dialog) through our module with
/// `header=1`: one line per answered call in `acc` (11 columns, no BYE line), and `flatstore
/// cdr` makes one `answered` CDR of each, lasting the pause (its `ms_duration`, in
/// milliseconds), and failed calls from `missed_calls`; the four kinds of calls.
fn opensips_cdr_mode_gives_one_answered_cdr_per_call() {
    let dir = scratch("cdr-mode");
    let acc = dir.join("acc");
    let port = ports();
    let url = format!("flatstore:{}?header=1", acc.display());
    let proxy = Proxy::start(our_module(), &dir, port, &url, Accounting::Cdr, "");
    for kind in KINDS {
        run_calls(&dir, port, kind, None);
    }
    let status = proxy.stop();
    assert!(status.success(), "opensips exit status {status}");
    let acc_lines: Vec<String> = common::visible_files(&acc)
        .iter()
        .filter(|(name, _)| name.starts_with("acc_"))
        .flat_map(|(_, path)| {
            let text = fs::read_to_string(path).expect("read");
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        acc_lines.len(),
        2 * CALLS as usize,
        "one line per answered call: {acc_lines:#?}"
    );
    for line in &acc_lines {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), ACC_COLUMNS, "{line}");
        assert_eq!((fields[0], fields[4]), ("INVITE", "200"), "{line}");
    }
    let out = output_or_fail(
        Command::new(common::flatstore_cli())
            .arg("cdr")
            .arg(&acc)
            .arg("--live"),
        "flatstore cdr",
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "flatstore cdr: {}
{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status,setuptime,created"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4 * CALLS as usize, "one CDR per call:\n{text}");
    for row in &rows {
        let kind = row[0].split('-').next().unwrap_or_default();
        let (status, code) = (row[8], row[6]);
        match kind {
            "caller" | "callee" => {
                assert_eq!((status, code), ("answered", "200"), "{row:?}");
                let (seconds, millis) = row[5].split_once('.').expect("milliseconds");
                assert_eq!(millis.len(), 3, "ms_duration's precision: {row:?}");
                let ms: u64 = format!("{seconds}{millis}").parse().expect("duration");
                assert!(
                    (PAUSE_MS..PAUSE_MS + 1000).contains(&ms),
                    "the pause: {row:?}"
                );
            }
            "busy" => assert_eq!((status, code), ("failed", "486"), "{row:?}"),
            "cancel" => assert_eq!((status, code), ("failed", "487"), "{row:?}"),
            _ => panic!("unexpected CDR {row:?}"),
        }
    }
    eprintln!(
        "opensips CDR mode: {} calls, {} acc lines, flatstore cdr: {} CDRs",
        4 * CALLS,
        acc_lines.len(),
        rows.len()
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// The same traffic through the stock `db_flatstore` and through ours: the same records in
/// the same tables, once the times (and the files, one per process either way) are set aside;
/// both write a `|` in a value as `\x7C` (ours in its default `escape=hex`).
fn opensips_records_equal_the_stock_modules() {
    let run = |module: &Path, name: &str| {
        let dir = scratch(name);
        let acc = dir.join("acc");
        let port = ports();
        let url = format!("flatstore:{}", acc.display());
        let proxy = Proxy::start(module, &dir, port, &url, Accounting::PerRequest, "");
        for kind in KINDS {
            run_calls(&dir, port, kind, None);
        }
        let status = proxy.stop();
        assert!(status.success(), "{name}: opensips exit status {status}");
        let records = records(&acc);
        assert_every_call_once(&records);
        fs::remove_dir_all(&dir).expect("clean up");
        let mut lines: Vec<String> = records
            .into_iter()
            .map(|r| {
                let mut f = r.fields;
                // time and created: the instants of this run.
                f[6].clear();
                f[7].clear();
                format!("{}: {}", r.table, f.join("|"))
            })
            .collect();
        lines.sort();
        lines
    };
    let stock = run(&host().stock_module(), "stock");
    let ours = run(our_module(), "ours");
    assert_eq!(ours, stock, "our records differ from the stock module's");
    assert!(stock.iter().any(|l| l.contains("|Busy \\x7C Here|")));
    eprintln!(
        "opensips differential: {} records, equal to the stock module's (times aside)",
        ours.len()
    );
}

/// `tests/opensips/abi_sizes.c` asserts (`_Static_assert`) the sizes, offsets and constants
/// that `hosts/opensips/src/abi.rs` asserts of its mirrors, against OpenSIPS's own headers
/// compiled with the tree's own flags (the command `make` would use for `main.c`): it must
/// compile.
fn the_rust_mirrors_match_the_opensips_headers() {
    let tree = &host().tree;
    let plan = output_or_fail(
        Command::new("make")
            .args(["-n", "-W", "main.c", "main.o", "Q="])
            .current_dir(tree),
        "make -n",
        Duration::from_secs(60),
    );
    let plan = String::from_utf8_lossy(&plan.stdout);
    let compile = plan
        .lines()
        .find_map(|l| l.strip_suffix(" -c main.c -o main.o"))
        .unwrap_or_else(|| panic!("no compile command for main.c in:\n{plan}"));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opensips/abi_sizes.c");
    let out = output_or_fail(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{compile} -I. -fsyntax-only '{}'",
                source.display()
            ))
            .current_dir(tree),
        "cc abi_sizes.c",
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "the mirrors differ from OpenSIPS's headers:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two module processes (the shared rank `PROC_MODULE`) and a SIP worker writing at once, in a
/// stand-in OpenSIPS (`tests/opensips/module_processes.c`, the exports driven at their
/// measured offsets): three files, one per writer, each holding only its writer's records;
/// the MI command before any URL was seen replies with an error, after it OK, from a process
/// that never opened anything too.
fn two_module_processes_never_share_a_file() {
    let dir = scratch("module-processes");
    let acc = dir.join("acc");
    let program = dir.join("module_processes");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opensips/module_processes.c");
    let cc = output_or_fail(
        Command::new("cc")
            .args(["-O1", "-Wall", "-Wextra", "-Werror", "-rdynamic", "-o"])
            .arg(&program)
            .arg(&source)
            .arg("-ldl"),
        "cc",
        Duration::from_secs(120),
    );
    assert!(
        cc.status.success(),
        "compiling {}: {}",
        source.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
    let records = 2000;
    let mut run = Command::new(&program)
        .arg(our_module())
        .arg(&acc)
        .arg(records.to_string())
        .stdout(fs::File::create(dir.join("out")).expect("out"))
        .stderr(fs::File::create(dir.join("err")).expect("err"))
        .process_group(0)
        .spawn()
        .expect("run the stand-in host");
    let status = wait_or_fail(&mut run, "module_processes", Duration::from_secs(60));
    let out = fs::read_to_string(dir.join("out")).expect("out");
    let err = fs::read_to_string(dir.join("err")).expect("err");
    assert!(status.success(), "{status}\n{out}\n{err}");
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
    };
    assert_eq!(
        line("mi-before "),
        "error 500 no flatstore directory is open yet"
    );
    assert!(
        err.contains("ERROR:db_flatstore: flat_rotate: no flatstore directory"),
        "{err}"
    );
    assert_eq!(line("mi-checked "), "result OK");
    assert_eq!(line("mi-after "), "result OK");
    let writers: Vec<(i32, u32)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("writer "))
        .map(|l| {
            let (rank, pid) = l.split_once(' ').expect("rank pid");
            (rank.parse().expect("rank"), pid.parse().expect("pid"))
        })
        .collect();
    assert_eq!(writers.len(), 3, "{out}");
    // The rank rule: PROC_MODULE's number is 2^22 + pid, a SIP worker's rank + 4.
    let file = |&(rank, pid): &(i32, u32)| {
        let n = if rank == -2 {
            (1 << 22) + pid
        } else {
            rank as u32 + 4
        };
        format!("acc_{n}.log")
    };
    let mut expected: Vec<String> = writers.iter().map(file).collect();
    expected.sort();
    let files: Vec<String> = common::visible_files(&acc)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        files, expected,
        "one file per writer, none from the main process"
    );
    for writer in &writers {
        let name = file(writer);
        let text = fs::read_to_string(acc.join(&name)).expect("read");
        let expected: String = (0..records)
            .map(|i| format!("{}|{i}\n", writer.1))
            .collect();
        assert!(
            text == expected,
            "{name}: not exactly its writer's {records} records"
        );
    }
    fs::remove_dir_all(&dir).expect("clean up");
}

/// A stock parameter ours cannot honour (`single_file`) stops OpenSIPS at startup, the reason
/// in its log; so does our module with another OpenSIPS's version string (exit status 1, the
/// loader's "module version mismatch").
fn opensips_refuses_to_start_on_a_refused_modparam_or_a_version_mismatch() {
    let refused = |module: &Path, name: &str, extra: &str| {
        let dir = scratch(name);
        let url = format!("flatstore:{}", dir.join("acc").display());
        let started = Proxy::try_start(module, &dir, ports(), &url, Accounting::PerRequest, extra);
        let Err((status, log)) = started else {
            panic!("{name}: opensips started");
        };
        fs::remove_dir_all(&dir).expect("clean up");
        (status.and_then(|s| s.code()), log)
    };
    let (code, log) = refused(
        our_module(),
        "single-file",
        "modparam(\"db_flatstore\", \"single_file\", 1)",
    );
    assert!(code.is_some_and(|c| c != 0), "exit status {code:?}:\n{log}");
    assert!(
        log.contains("ERROR:db_flatstore: parameter \"single_file\": \"1\": only 0 is supported"),
        "{log}"
    );
    // The same module with one byte of its version string changed.
    let bytes = fs::read(our_module()).expect("read module");
    let version = b"opensips 3.6.8 (";
    let at = bytes
        .windows(version.len())
        .position(|w| w == version)
        .expect("the version string in the module");
    let mut other = bytes.clone();
    other[at + 13] = b'9';
    let dir = scratch("other-version-module");
    let module = dir.join("db_flatstore.so");
    fs::write(&module, other).expect("write module");
    let (code, log) = refused(&module, "other-version", "");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("module version mismatch"), "{log}");
    fs::remove_dir_all(&dir).expect("clean up");
}
