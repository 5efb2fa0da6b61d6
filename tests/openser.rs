//! Our OpenSER module (`hosts/openser`, `flatstore-openser`) inside the seed's own host: OpenSER
//! 1.3 (trunk of 2008-01), built from `../shared/hosts/` ([`common::openser`]), as a stateful
//! proxy (`tests/openser/openser.cfg`) under SIPp traffic of four kinds of calls, with the
//! route set kept by both sides: the caller hangs up, the callee hangs up (its BYE has the
//! tags swapped), the callee answers `486 Busy|Here`, the caller cancels while it rings. Mid
//! run the files are rotated OpenSER's way: renamed, then MI `flat_rotate` over mi_fifo (from
//! OpenSER's MI process, which never opens a directory), and once by the real `logrotate`
//! with that MI command as its postrotate; OpenSER is then stopped by pid. Then: every call's
//! records exactly once across renamed and new files, seven columns each, no torn line, no
//! record after the last rotation, and `flatstore cdr` pairing every call. Last, the same
//! traffic through the stock module of the same tree: the records are equal once our `%7C`
//! is read back as the `|` the stock module writes raw (its line then has a column more).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::openser::{
    Proxy, SIPP_TIMEOUT_S, callee_port, caller_port, cannot_run, host, our_module, ports, scratch,
};
use common::sipp::Calls;
use common::timeout::output_or_fail;

/// Calls of each kind.
const CALLS: u32 = 20;
/// How long an answered call lasts: SIPp's `-d`, the `<pause/>` before the BYE.
const PAUSE_MS: u64 = 2000;
/// acc's columns in OpenSER 1.3 (no extras configured), as `acc.columns` names them.
const COLUMNS: &str = "method|from_tag|to_tag|callid|sip_code|sip_reason|time";

fn main() {
    let needs = |name: &str, test: fn()| {
        common::trial_unless(
            name,
            || match cannot_run()? {
                Some(reason) => Ok(Some(reason)),
                None => common::missing_tools(&["logrotate", "gzip"]),
            },
            test,
        )
    };
    common::run_trials(vec![
        needs(
            "openser_accounts_every_call_across_rotations",
            openser_accounts_every_call_across_rotations,
        ),
        needs(
            "stock_openser_module_and_ours_write_the_same_records",
            stock_openser_module_and_ours_write_the_same_records,
        ),
        needs(
            "openser_refusing_the_module_fails_loudly",
            openser_refusing_the_module_fails_loudly,
        ),
        common::trial(
            "openser_build_without_openser_explains_the_fix",
            openser_build_without_openser_explains_the_fix,
        ),
    ]);
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The kinds of calls: the name (the Call-ID's prefix) and the answering and calling scenarios.
const KINDS: [(&str, &str, &str); 4] = [
    (
        "callerbye",
        "kamailio/cdr_uas_answer_then_wait_bye.xml",
        "kamailio/cdr_uac_caller_hangs_up.xml",
    ),
    (
        "calleebye",
        "kamailio/cdr_uas_hangs_up.xml",
        "kamailio/cdr_uac_callee_hangs_up.xml",
    ),
    (
        "busy",
        "openser/uas_busy_pipe.xml",
        "kamailio/cdr_uac_busy.xml",
    ),
    ("cancel", "openser/uas_cancel.xml", "openser/uac_cancel.xml"),
];

/// `calls` calls of `kind` through the proxy on `port` (the callee of the kind on its own port,
/// [`callee_port`]), 10 per second; `during` runs after its delay while they are up.
fn run_calls(
    dir: &Path,
    port: u16,
    kind: usize,
    calls: u32,
    during: Option<(Duration, &dyn Fn())>,
) {
    let (name, uas, uac) = KINDS[kind];
    assert_eq!(
        name,
        common::openser::KINDS[kind],
        "the proxy routes by these names"
    );
    let scenario = |file: &str| manifest_dir().join("tests").join(file);
    Calls {
        dir,
        name,
        domain: "openser.test",
        uas: scenario(uas),
        uas_port: callee_port(port, kind),
        uac: scenario(uac),
        uac_port: caller_port(port),
        proxy_port: port,
        calls,
        pause_ms: PAUSE_MS,
        timeout_s: SIPP_TIMEOUT_S,
    }
    .run(during);
}

/// The seed's recipe: rename the files away, then MI `flat_rotate`; it must answer `200 OK`.
/// Returns each renamed file with its size at the reply: after the reply no process may
/// append to it (checked after the stop by [`assert_untouched`]).
fn rotate_by_mi(proxy: &Proxy, acc: &Path, suffix: &str) -> Vec<(PathBuf, u64)> {
    let renamed = common::rename_live_files(acc, suffix);
    let reply = proxy.mi("flat_rotate");
    assert!(reply.starts_with("200 OK"), "MI flat_rotate: {reply:?}");
    renamed
        .into_iter()
        .map(|path| {
            let size = fs::metadata(&path).expect("renamed file").len();
            (path, size)
        })
        .collect()
}

/// No renamed file grew after the rotation's reply.
fn assert_untouched(renamed: &[(PathBuf, u64)]) {
    for (path, size) in renamed {
        let now = fs::metadata(path).expect("renamed file").len();
        assert_eq!(
            now,
            *size,
            "{} appended to after MI flat_rotate answered",
            path.display()
        );
    }
}

/// The logrotate recipe for OpenSER: the real `logrotate -f` renames every live file (`.1`,
/// compressed), and its postrotate asks OpenSER over mi_fifo (`flat_rotate`), failing unless
/// the reply is `200 OK` (`docs/openser.md`).
fn rotate_by_logrotate(proxy: &Proxy, acc: &Path) {
    let run = proxy.dir.join("run");
    let conf = proxy.dir.join("logrotate.conf");
    fs::write(
        &conf,
        format!(
            "{acc}/*.log {{\n    rotate 5\n    missingok\n    notifempty\n    nocreate\n    \
             compress\n    sharedscripts\n    postrotate\n        \
             reply={run}/reply_logrotate; rm -f $reply; mkfifo $reply && \
             printf ':flat_rotate:reply_logrotate\\n\\n' > {run}/openser_fifo && \
             timeout 10 head -n 1 $reply | grep -q '^200 OK'; status=$?; rm -f $reply; \
             exit $status\n    endscript\n}}\n",
            acc = acc.display(),
            run = run.display()
        ),
    )
    .expect("write logrotate.conf");
    let out = output_or_fail(
        Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(proxy.dir.join("logrotate.state"))
            .arg(&conf),
        "logrotate",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "logrotate: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One accounted record: its table, its fields by column name, and the file it is in.
struct Record {
    table: String,
    fields: BTreeMap<String, String>,
    file: String,
}

impl Record {
    fn get(&self, column: &str) -> &str {
        &self.fields[column]
    }
}

/// The bytes of a log file, gzip-decoded for a compressed one.
fn content(name: &str, path: &Path) -> Vec<u8> {
    if name.ends_with(".gz") {
        let out = output_or_fail(
            Command::new("gzip").arg("-dc").arg(path),
            "gzip -dc",
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "gzip -dc {name}");
        out.stdout
    } else {
        fs::read(path).expect("read log")
    }
}

/// Every record in `acc`, after checking each file: no torn line (every file ends with a
/// newline), seven columns in every line.
fn records(acc: &Path) -> Vec<Record> {
    let names: Vec<&str> = COLUMNS.split('|').collect();
    let mut records = Vec::new();
    for (file, path) in common::visible_files(acc) {
        if file.ends_with(".columns") {
            continue;
        }
        let table = ["acc_", "missed_calls_"]
            .into_iter()
            .find(|t| file.starts_with(t))
            .unwrap_or_else(|| panic!("a file of no table: {file}"))
            .trim_end_matches('_');
        let bytes = content(&file, &path);
        if bytes.is_empty() {
            continue;
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "{file} ends in a torn line");
        let text = String::from_utf8(bytes).expect("UTF-8 records here");
        for line in text.lines() {
            let values: Vec<&str> = line.split('|').collect();
            assert_eq!(
                values.len(),
                names.len(),
                "{file}: column count of {line:?}"
            );
            records.push(Record {
                table: table.to_owned(),
                fields: names
                    .iter()
                    .zip(values)
                    .map(|(n, v)| ((*n).to_owned(), v.to_owned()))
                    .collect(),
                file: file.clone(),
            });
        }
    }
    records
}

/// The Call-IDs of `calls` calls of `kind`.
fn call_ids(kind: &str, calls: u32) -> BTreeSet<String> {
    (1..=calls)
        .map(|n| format!("{kind}-{n}@openser.test"))
        .collect()
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The whole proof with our module; see the module's documentation.
fn openser_accounts_every_call_across_rotations() {
    let began = Instant::now();
    let module = our_module();
    let dir = scratch("calls");
    let acc = dir.join("acc");
    let port = ports();
    let started = epoch_now();
    let proxy = Proxy::start(
        module,
        &dir,
        port,
        &format!("flatstore:{}?header=1", acc.display()),
    );
    // While the answered calls are up (the INVITEs within 0.5 s of the start, the BYEs after
    // the pause), a rotation: so that their INVITEs and BYEs are in different files.
    let mid_call = Duration::from_millis(PAUSE_MS / 2);
    let renamed = std::cell::RefCell::new(Vec::new());
    run_calls(
        &dir,
        port,
        0,
        CALLS,
        Some((mid_call, &|| {
            *renamed.borrow_mut() = rotate_by_mi(&proxy, &acc, "11")
        })),
    );
    let renamed = renamed.into_inner();
    assert!(!renamed.is_empty(), "the INVITEs were accounted by then");
    run_calls(
        &dir,
        port,
        1,
        CALLS,
        Some((mid_call, &|| rotate_by_logrotate(&proxy, &acc))),
    );
    run_calls(&dir, port, 2, CALLS, None);
    run_calls(&dir, port, 3, CALLS, None);
    // After the last call: everything renamed, so nothing may land in a live file any more.
    let last = rotate_by_mi(&proxy, &acc, "12");
    assert!(!last.is_empty());
    proxy.stop();
    assert_untouched(&renamed);
    assert_untouched(&last);
    let calls_took = began.elapsed();
    for (name, path) in common::visible_files(&acc) {
        if name.ends_with(".log") {
            assert_eq!(
                common::count_lines(&path),
                0,
                "{name} written after the rotation's reply"
            );
        }
    }
    assert!(
        common::visible_files(&acc)
            .iter()
            .any(|(name, _)| name.ends_with(".log.1.gz")),
        "logrotate rotated and compressed"
    );

    // Every call's records exactly once: an INVITE and a BYE per answered call in `acc`, one
    // INVITE per failed call in `missed_calls`.
    let all = records(&acc);
    let mut by_key: BTreeMap<(String, String, String), &Record> = BTreeMap::new();
    for record in &all {
        let key = (
            record.table.clone(),
            record.get("method").to_owned(),
            record.get("callid").to_owned(),
        );
        assert!(
            by_key.insert(key.clone(), record).is_none(),
            "{key:?} accounted twice"
        );
        let time: u64 = record.get("time").parse().expect("time in seconds");
        assert!((started..=epoch_now()).contains(&time), "time of {key:?}");
    }
    let answered: BTreeSet<String> = call_ids("callerbye", CALLS)
        .union(&call_ids("calleebye", CALLS))
        .cloned()
        .collect();
    let (busy, cancelled) = (call_ids("busy", CALLS), call_ids("cancel", CALLS));
    let expected: BTreeSet<(String, String, String)> = answered
        .iter()
        .flat_map(|c| ["INVITE", "BYE"].map(|m| ("acc".to_owned(), m.to_owned(), c.clone())))
        .chain(
            busy.union(&cancelled)
                .map(|c| ("missed_calls".to_owned(), "INVITE".to_owned(), c.clone())),
        )
        .collect();
    assert_eq!(
        by_key.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every call's records, nothing else"
    );
    let mut straddling = BTreeMap::new();
    for callid in &answered {
        let key = |method: &str| ("acc".to_owned(), method.to_owned(), callid.clone());
        let (invite, bye) = (by_key[&key("INVITE")], by_key[&key("BYE")]);
        let (from, to) = (invite.get("from_tag"), invite.get("to_tag"));
        assert!(from.starts_with("uac") && to.starts_with("uas"), "{callid}");
        assert_eq!(
            (invite.get("sip_code"), invite.get("sip_reason")),
            ("200", "OK")
        );
        // The callee's BYE has its own tag as the From tag.
        let tags = (bye.get("from_tag"), bye.get("to_tag"));
        if callid.starts_with("calleebye") {
            assert_eq!(tags, (to, from), "{callid}: the callee's BYE");
        } else {
            assert_eq!(tags, (from, to), "{callid}: the caller's BYE");
        }
        let kind = callid.split('-').next().expect("kind");
        *straddling.entry(kind).or_insert(0) += u32::from(invite.file != bye.file);
    }
    assert!(
        straddling.len() == 2 && straddling.values().all(|n| *n > 0),
        "calls with the INVITE and the BYE in different files, by kind: {straddling:?}"
    );
    for (calls, code, reason) in [
        (&busy, "486", "Busy%7CHere"),
        (&cancelled, "487", "Request Terminated"),
    ] {
        for callid in calls {
            let record = by_key[&(
                "missed_calls".to_owned(),
                "INVITE".to_owned(),
                callid.clone(),
            )];
            assert_eq!(
                (record.get("sip_code"), record.get("sip_reason")),
                (code, reason),
                "{callid}"
            );
        }
    }
    for table in ["acc", "missed_calls"] {
        let columns = fs::read_to_string(acc.join(format!("{table}.columns")))
            .unwrap_or_else(|e| panic!("{table}.columns: {e}"));
        assert_eq!(columns, format!("{COLUMNS}\n"), "{table}.columns");
    }

    // `flatstore cdr` pairs every call: one CDR each, answered ones with their BYE.
    let out = output_or_fail(
        Command::new(common::flatstore_cli())
            .arg("cdr")
            .arg(&acc)
            .args(["acc", "--format", "csv"]),
        "flatstore cdr",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "flatstore cdr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 CDRs");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("callid,from_tag,to_tag,start,end,duration,sip_code,sip_reason,status")
    );
    let mut cdrs = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 9, "{line:?}");
        assert!(
            cdrs.insert(fields[0].to_owned(), fields.clone()).is_none(),
            "{} has two CDRs",
            fields[0]
        );
        let callid = fields[0];
        let (code, reason, status) = (fields[6], fields[7], fields[8]);
        if answered.contains(callid) {
            assert_eq!((code, reason, status), ("200", "OK", "answered"), "{line}");
            let duration: i64 = fields[5].parse().expect("whole seconds");
            assert!((1..=4).contains(&duration), "{callid}: {duration} s");
        } else if busy.contains(callid) {
            assert_eq!(
                (code, reason, status),
                ("486", "Busy|Here", "failed"),
                "{line}"
            );
        } else if cancelled.contains(callid) {
            assert_eq!(
                (code, reason, status),
                ("487", "Request Terminated", "failed"),
                "{line}"
            );
        } else {
            panic!("a CDR of no call placed: {line}");
        }
    }
    assert_eq!(
        cdrs.len(),
        answered.len() + busy.len() + cancelled.len(),
        "one CDR per call"
    );
    eprintln!(
        "openser: {} calls, {} records in {} files checked ({} answered calls straddling a \
         rotation), {} CDRs, in {:.1?}",
        4 * CALLS,
        all.len(),
        common::visible_files(&acc).len(),
        straddling.values().sum::<u32>(),
        cdrs.len(),
        calls_took
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The records of `calls` calls of every kind through OpenSER loading `module` (flush=1, no
/// rotation), each line without its time column, sorted.
fn records_through(module: &Path, name: &str, calls: u32) -> Vec<String> {
    let dir = scratch(name);
    let acc = dir.join("acc");
    let port = ports();
    let proxy = Proxy::start(module, &dir, port, &format!("flatstore:{}", acc.display()));
    for kind in 0..KINDS.len() {
        run_calls(&dir, port, kind, calls, None);
    }
    proxy.stop();
    let mut lines = Vec::new();
    for (file, path) in common::visible_files(&acc) {
        let text = String::from_utf8(content(&file, &path)).expect("UTF-8");
        let table = file.split('_').next().unwrap_or_default().to_owned();
        for line in text.lines() {
            let without_time = line.rsplit_once('|').map_or(line, |(rest, _)| rest);
            lines.push(format!("{table}: {without_time}"));
        }
    }
    lines.sort();
    let _ = fs::remove_dir_all(&dir);
    lines
}

/// The differential: the same traffic through the stock module of the same tree and through
/// ours gives the same records (times aside), once our `%7C` is read as the stock module's raw
/// `|` — which gives its 486 lines an eighth column.
fn stock_openser_module_and_ours_write_the_same_records() {
    let calls = 10;
    let stock = records_through(&host().stock_module(), "stock", calls);
    let ours = records_through(our_module(), "ours", calls);
    assert_eq!(stock.len(), (2 * 2 + 2) * calls as usize, "{stock:#?}");
    let raw_pipe: Vec<&String> = stock.iter().filter(|l| l.contains("Busy|Here")).collect();
    assert_eq!(raw_pipe.len(), calls as usize, "{stock:#?}");
    assert!(
        raw_pipe.iter().all(|l| l.split('|').count() == 7),
        "the stock module's 486 line has a column more (6 without time): {raw_pipe:?}"
    );
    assert!(
        ours.iter().all(|l| l.split('|').count() == 6),
        "ours keeps six columns without time: {ours:#?}"
    );
    let ours_unescaped: Vec<String> = ours.iter().map(|l| l.replace("%7C", "|")).collect();
    assert_eq!(stock, ours_unescaped, "stock and ours differ");
    eprintln!(
        "openser differential: {} records of {} calls equal (after %7C -> |)",
        stock.len(),
        4 * calls
    );
}

/// OpenSER refuses a module whose version string is not its own, and exits 0: the test's
/// start fails loudly instead, with OpenSER's reason.
fn openser_refusing_the_module_fails_loudly() {
    let module = our_module();
    let (version, _) = host().strings();
    let mut bytes = fs::read(module).expect("read module");
    let at = bytes
        .windows(version.len())
        .position(|w| w == version.as_bytes())
        .expect("the module carries OpenSER's version");
    bytes[at] = b'X';
    let dir = scratch("refused");
    let wrong = dir.join("flatstore-wrong-version.so");
    fs::write(&wrong, bytes).expect("write the altered module");
    let acc = dir.join("acc");
    let refused = Proxy::try_start(
        &wrong,
        &dir,
        ports(),
        &format!("flatstore:{}", acc.display()),
    );
    let Err(reason) = refused else {
        panic!("OpenSER loaded a module with another version string");
    };
    assert!(
        reason.contains("did not start") && reason.contains("module version mismatch"),
        "{reason}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// Building the OpenSER module where no openser binary is found, and no override is given,
/// stops with a message that says what to do.
fn openser_build_without_openser_explains_the_fix() {
    let out = output_or_fail(
        Command::new(env!("CARGO"))
            .args(["check", "-p", "flatstore-openser"])
            // Its own target directory: the failed build script leaves the test's own alone.
            .arg("--target-dir")
            .arg(common::target_dir().join("hosts-check"))
            .current_dir(manifest_dir())
            .env("FLATSTORE_OPENSER", "/nonexistent/openser")
            .env_remove("FLATSTORE_OPENSER_VERSION")
            .env_remove("FLATSTORE_OPENSER_FLAGS"),
        "cargo check -p flatstore-openser",
        Duration::from_secs(900),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build must fail");
    for needle in [
        "no openser binary was found",
        "FLATSTORE_OPENSER",
        "FLATSTORE_OPENSER_VERSION",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
}
