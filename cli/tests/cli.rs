//! The operator's commands `cat`, `verify`, `export` and `stats`, run through the built
//! binary on files written by the library (renamed and gzipped as logrotate does) and, for the
//! corrupt cases, by hand.

mod common;

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use flatstore::{Config, Connection, Params, Value};

/// The process number N is process-wide: writers in parallel tests take turns.
static WRITER: Mutex<()> = Mutex::new(());

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Insert `records` into `<dir>/<table>_<n>.log` through the library, as process number `n`,
/// with the URL parameters `query` (e.g. `escape=strict`); returns the bytes appended.
fn write(dir: &Path, query: &str, table: &str, n: u32, records: &[Vec<Value<'_>>]) -> Vec<u8> {
    let _turn = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(format!("{table}_{n}.log"));
    let before = fs::read(&path).unwrap_or_default();
    let url = format!("flatstore:{}?{query}", dir.display());
    let mut acc =
        Connection::new(Config::from_url(&url, &Params::default()).expect("url")).expect("init");
    flatstore::declare_process_number(n);
    acc.use_table(table.as_bytes()).expect("table");
    for record in records {
        acc.insert(record.iter().copied().map(Ok)).expect("insert");
    }
    acc.close().expect("close");
    fs::read(&path).expect("log file")[before.len()..].to_vec()
}

/// `count` records `<tag>|<n>|<i>|1795392000` for writer `n`; returns their bytes.
fn write_tagged(dir: &Path, table: &str, n: u32, tag: &str, count: usize) -> Vec<u8> {
    let numbers: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    let records: Vec<Vec<Value<'_>>> = numbers
        .iter()
        .map(|i| {
            vec![
                Value::Str(tag.as_bytes()),
                Value::UInt(n),
                Value::Str(i.as_bytes()),
                Value::DateTime(1_795_392_000),
            ]
        })
        .collect();
    write(dir, "", table, n, &records)
}

/// Rename the live file of `table` and writer `n` to `<name><suffix>`, as logrotate does.
fn rotate(dir: &Path, table: &str, n: u32, suffix: &str) -> PathBuf {
    let live = dir.join(format!("{table}_{n}.log"));
    let to = dir.join(format!("{table}_{n}.log{suffix}"));
    fs::rename(&live, &to).expect("rename");
    to
}

/// Rename the live file of `table` and writer `n` to its sealed name, as a writer does when it
/// reaches a rotate_* limit: `<name>.sealed-<stamp>`, stamp `YYYYMMDDTHHMMSS.nnnnnnnnnZ`.
fn seal(dir: &Path, table: &str, n: u32, stamp: &str) -> PathBuf {
    rotate(dir, table, n, &format!(".sealed-{stamp}"))
}

fn set_mtime(path: &Path, secs: u64) {
    File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

fn flatstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flatstore"))
        .args(args)
        .output()
        .expect("run flatstore")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Two writers, three logrotate generations (`.3.gz`, `.2`, `.1.gz`) and the live files;
/// another table with dated names; another table whose name extends this one's.
#[test]
fn cat_reads_every_file_in_rotation_order() {
    let dir = scratch_dir("cat-order");
    let mut generations = Vec::new();
    for (tag, suffix, compress) in [("g3", ".3", true), ("g2", ".2", false), ("g1", ".1", true)] {
        for n in [6, 5] {
            let written = write_tagged(&dir, "acc", n, tag, 3 + n as usize);
            let rotated = rotate(&dir, "acc", n, suffix);
            if compress {
                common::gzip(&rotated);
            }
            generations.push((tag, n, written));
        }
    }
    let live5 = write_tagged(&dir, "acc", 5, "live", 2);
    let live6 = write_tagged(&dir, "acc", 6, "live", 1);
    write_tagged(&dir, "acc_missed", 5, "missed", 4);
    rotate(&dir, "acc_missed", 5, ".1");
    let cdr_old = write_tagged(&dir, "cdr", 12, "old", 2);
    common::gzip(&rotate(&dir, "cdr", 12, "-20261122"));
    let cdr_new = write_tagged(&dir, "cdr", 12, "new", 2);
    rotate(&dir, "cdr", 12, "-20261123");
    let cdr_counted = write_tagged(&dir, "cdr", 12, "counted", 2);
    rotate(&dir, "cdr", 12, ".1");
    fs::write(dir.join("notes.txt"), "not a log\n").expect("write");

    let expected_rotated: Vec<u8> = ["g3", "g2", "g1"]
        .iter()
        .flat_map(|tag| [5, 6].map(|n| (tag, n)))
        .flat_map(|(tag, n)| {
            generations
                .iter()
                .find(|(t, m, _)| t == tag && *m == n)
                .expect("written")
                .2
                .clone()
        })
        .collect();
    let out = flatstore(&["cat", path_str(&dir), "acc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&out), String::from_utf8_lossy(&expected_rotated));
    assert_eq!(out.stdout.len(), expected_rotated.len());

    let out = flatstore(&["cat", "--live", path_str(&dir), "acc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected_all = [expected_rotated.clone(), live5, live6].concat();
    assert_eq!(stdout(&out), String::from_utf8_lossy(&expected_all));

    let out = flatstore(&["cat", path_str(&dir), "cdr"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, [cdr_old, cdr_new, cdr_counted].concat());
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn cat_selects_files_by_modification_time() {
    let dir = scratch_dir("cat-time");
    let old = write_tagged(&dir, "acc", 5, "old", 2);
    set_mtime(&rotate(&dir, "acc", 5, ".2"), 1_795_219_200); // 2026-11-21
    let new = write_tagged(&dir, "acc", 5, "new", 3);
    set_mtime(&rotate(&dir, "acc", 5, ".1"), 1_795_392_000); // 2026-11-23
    let live = write_tagged(&dir, "acc", 5, "live", 1);
    let d = path_str(&dir);
    let cat = |args: &[&str]| {
        let out = flatstore(&[&["cat", d, "acc"], args].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out.stdout
    };
    assert_eq!(cat(&["--modified-since", "2026-11-22"]), new);
    assert_eq!(cat(&["--modified-until", "2026-11-22T00:00:00Z"]), old);
    assert_eq!(
        cat(&[
            "--modified-since",
            "@1795219200",
            "--modified-until",
            "2026-11-23"
        ]),
        old
    );
    assert_eq!(
        cat(&["--modified-since", "2026-11-22T01:00:00+02:00", "--live"]),
        [new, live].concat()
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Writers 5, 6 and 7 seal files at interleaved times (two in the same nanosecond), one is
/// gzipped afterwards; logrotate's dated and counted files and the live files lie beside them.
#[test]
fn cat_reads_sealed_files_by_seal_time_across_writers() {
    let dir = scratch_dir("cat-sealed");
    let dated = write_tagged(&dir, "acc", 6, "dated", 2);
    rotate(&dir, "acc", 6, "-20261122");
    let counted = write_tagged(&dir, "acc", 5, "counted", 2);
    rotate(&dir, "acc", 5, ".1");
    let mut sealed = Vec::new();
    for (n, stamp, tag) in [
        (7, "20261123T174512.000000003Z", "s4"),
        (5, "20261123T174512.000000001Z", "s1"),
        (6, "20261123T174513.000000000Z", "s5"),
        (6, "20261123T174512.000000002Z", "s2"),
        // The same nanosecond as writer 7's: writer number N decides.
        (5, "20261123T174512.000000003Z", "s3"),
    ] {
        let written = write_tagged(&dir, "acc", n, tag, 2);
        let path = seal(&dir, "acc", n, stamp);
        if tag == "s2" {
            common::gzip(&path);
        }
        sealed.push((tag, written));
    }
    sealed.sort_by_key(|(tag, _)| *tag);
    let sealed: Vec<u8> = sealed.into_iter().flat_map(|(_, bytes)| bytes).collect();
    let live6 = write_tagged(&dir, "acc", 6, "live", 1);
    let live5 = write_tagged(&dir, "acc", 5, "live", 1);
    let d = path_str(&dir);
    let cat = |args: &[&str]| {
        let out = flatstore(&[&["cat", d, "acc"], args].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out.stdout
    };
    let rotated = [dated, counted].concat();
    assert_eq!(
        String::from_utf8_lossy(&cat(&[])),
        String::from_utf8_lossy(&[rotated.clone(), sealed.clone()].concat())
    );
    assert_eq!(
        cat(&["--live"]),
        [rotated, sealed.clone(), live5, live6].concat()
    );
    assert_eq!(
        String::from_utf8_lossy(&cat(&["--sealed-only"])),
        String::from_utf8_lossy(&sealed)
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// What a consumer that must never see a file being written reads: sealed files only, by
/// `cat` and `export`, with `--modified-since`/`--modified-until` as for any file.
#[test]
fn sealed_only_reads_no_live_and_no_logrotate_file() {
    let dir = scratch_dir("sealed-only");
    write_tagged(&dir, "acc", 5, "dated", 2);
    rotate(&dir, "acc", 5, "-20261122");
    write_tagged(&dir, "acc", 5, "counted", 2);
    common::gzip(&rotate(&dir, "acc", 5, ".1"));
    let old = write_tagged(&dir, "acc", 5, "old", 3);
    set_mtime(
        &seal(&dir, "acc", 5, "20261121T120000.000000000Z"),
        1_795_262_400,
    );
    let new = write_tagged(&dir, "acc", 5, "new", 1);
    set_mtime(
        &seal(&dir, "acc", 5, "20261123T120000.000000000Z"),
        1_795_435_200,
    );
    write_tagged(&dir, "acc", 5, "live", 4);
    // Not the sealed form: left alone, never read.
    fs::write(
        dir.join("acc_5.log.sealed-20261123T120000.000000001Z.gz.tmp"),
        b"partial|0|0|0\n",
    )
    .expect("write");
    fs::write(dir.join("acc_5.log.sealed-20261123"), b"bad|0|0|0\n").expect("write");
    let d = path_str(&dir);
    let run = |args: &[&str]| {
        let out = flatstore(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
        stdout(&out)
    };
    let both = String::from_utf8_lossy(&[old.clone(), new.clone()].concat()).into_owned();
    assert_eq!(run(&["cat", "--sealed-only", d, "acc"]), both);
    assert_eq!(
        run(&[
            "cat",
            "--sealed-only",
            "--modified-since",
            "2026-11-22",
            d,
            "acc"
        ]),
        String::from_utf8_lossy(&new)
    );
    assert_eq!(
        run(&["export", d, "acc", "--format", "csv", "--sealed-only"]),
        "old,5,0,1795392000\r\nold,5,1,1795392000\r\nold,5,2,1795392000\r\n\
         new,5,0,1795392000\r\n"
    );
    let out = flatstore(&["cat", "--sealed-only", "--live", d, "acc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'--sealed-only' cannot be used with '--live'"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    let out = flatstore(&[
        "export",
        d,
        "acc",
        "--format",
        "csv",
        "--live",
        "--sealed-only",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Every sealed file consumed: nothing to read, and no error while writers are idle.
    for sealed in ["20261121T120000.000000000Z", "20261123T120000.000000000Z"] {
        fs::remove_file(dir.join(format!("acc_5.log.sealed-{sealed}"))).expect("remove");
    }
    assert_eq!(run(&["cat", "--sealed-only", d, "acc"]), "");
    fs::remove_dir_all(&dir).expect("clean up");
}

/// What operators have besides a directory: a copied file, files a shell glob gave in its own
/// (alphabetical) order, standard input; gzipped or not, by content. Explicit files are read
/// whole, live ones too, in the directory's reading order where their names are log names.
#[test]
fn files_and_standard_input_are_read_as_a_directory_is() {
    let dir = scratch_dir("files");
    let g3 = write_tagged(&dir, "acc", 5, "g3", 2);
    let dot3 = common::gzip(&rotate(&dir, "acc", 5, ".3"));
    let g2 = write_tagged(&dir, "acc", 5, "g2", 3);
    let dot2 = rotate(&dir, "acc", 5, ".2");
    let g1 = write_tagged(&dir, "acc", 5, "g1", 1);
    let dot1 = common::gzip(&rotate(&dir, "acc", 5, ".1"));
    let live = write_tagged(&dir, "acc", 5, "live", 2);
    let d = path_str(&dir);
    let (f1, f2, f3) = (path_str(&dot1), path_str(&dot2), path_str(&dot3));
    let live_path = dir.join("acc_5.log");
    let run = |args: &[&str]| {
        let out = flatstore(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        out.stdout
    };
    let rotated = [g3.clone(), g2.clone(), g1.clone()].concat();
    assert_eq!(run(&["cat", d, "acc"]), rotated, "DIR TABLE as before");
    // `acc_5.log.*` as the shell expands it: .1.gz .2 .3.gz; read oldest first all the same.
    assert_eq!(run(&["cat", f1, f2, f3]), rotated);
    // Given, the live file is read: the operator chose it.
    assert_eq!(
        run(&["cat", f1, path_str(&live_path), f2]),
        [g2.clone(), g1.clone(), live.clone()].concat()
    );
    // A copy under another name, gzipped: by content.
    let copy = dir.join("copied-from-the-proxy.txt");
    fs::copy(&dot1, &copy).expect("copy");
    assert_eq!(run(&["cat", path_str(&copy)]), g1);
    // Standard input, gzipped or not; files under no log name after the log files, as given.
    let out = common::flatstore_stdin(&["cat", "-"], &common::gzip_bytes(&g2));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, g2);
    let out = common::flatstore_stdin(&["cat", "-", path_str(&copy), f3], &live);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, [g3.clone(), live.clone(), g1.clone()].concat());

    // verify: grouped by the table the names say; dir is null.
    let out = common::flatstore_stdin(&["verify", "--json", f2, "-"], &g1);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{{\"dir\":null,\"tables\":[\
             {{\"table\":\"acc\",\"columns\":4,\"records\":3,\"bytes\":{g2len},\"files\":[\
             {{\"file\":\"{f2}\",\"live\":false,\"sealed\":false,\"size\":{g2len},\"bytes\":{g2len},\"records\":3,\"columns\":{{\"4\":3}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}}],\"column_names\":null}},\
             {{\"table\":null,\"columns\":4,\"records\":1,\"bytes\":{g1len},\"files\":[\
             {{\"file\":\"-\",\"live\":false,\"sealed\":false,\"size\":0,\"bytes\":{g1len},\"records\":1,\"columns\":{{\"4\":1}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}}],\"column_names\":null}}],\
             \"ignored\":[],\"problems\":[]}}\n",
            g2len = g2.len(),
            g1len = g1.len(),
        )
    );
    let out = flatstore(&["verify", f3]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("table acc: 1 files, 2 records,"),
        "{}",
        stdout(&out)
    );

    // export: the sidecar beside a file named as the table's log names the columns.
    fs::write(dir.join("acc.columns"), "tag|n|i|time\n").expect("sidecar");
    let out = flatstore(&["export", f1, "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"tag\":\"g1\",\"n\":\"5\",\"i\":\"0\",\"time\":\"1795392000\"}\n"
    );
    let out = common::flatstore_stdin(
        &["export", "-", "--format", "csv", "--columns", "a,b,c,d"],
        &g1,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a,b,c,d\r\ng1,5,0,1795392000\r\n");

    // A file that is not there is named; the others are still read (exit status 2).
    let missing = dir.join("acc_5.log.9");
    let out = flatstore(&["cat", f1, path_str(&missing)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(out.stdout, g1);
    assert!(
        stderr(&out).contains(&format!(
            "flatstore: {}: No such file or directory",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );

    // Shapes that are neither DIR [TABLE] nor files, and directory options with files.
    for (args, says) in [
        (
            &["cat", f1, "--live"][..],
            "--live chooses among a directory's files",
        ),
        (
            &["export", f1, "--format", "csv", "--sealed-only"],
            "--sealed-only",
        ),
        (
            &["cat", f1, "--modified-since", "2026-11-22"],
            "--modified-since",
        ),
        (&["cat", "-", "-"], "more than once"),
        (&["cat", f1, d], "is a directory among files"),
        (
            &["cat", d, "acc", "acc"],
            "is a directory: give DIR [TABLE]",
        ),
        (&["cat", d], "give the TABLE after"),
        (&["verify", d, "a/b"], "TABLE"),
    ] {
        let out = flatstore(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    fs::remove_dir_all(&dir).expect("clean up");
}

/// `--since`/`--until` choose records by their time column (Kamailio's 7th without column
/// names, the column named time with them), in every form a record's time takes.
#[test]
fn since_and_until_select_records_by_their_time() {
    let dir = scratch_dir("record-times");
    let acc = [
        "INVITE|a|b|c1|200|OK|1795391999\n",  // 23:59:59 the day before
        "INVITE|a|b|c2|200|OK|1795392000\n",  // 00:00:00
        "BYE|a|b|c2|200|OK|1795392030.250\n", // 00:00:30.250
        "INVITE|a|b|c3|200|OK|2026-11-23 00:00:59.999\n",
        "BYE|a|b|c3|200|OK|2026-11-23 00:01:00\n",
        "INVITE|a|b|c4|200|OK|yesterday\n",
    ];
    fs::write(dir.join("acc_5.log.1"), acc.concat()).expect("write");
    let d = path_str(&dir);
    let window = ["--since", "2026-11-23", "--until", "2026-11-23T00:01:00Z"];
    let inside = [acc[1], acc[2], acc[3]].concat();
    let out = flatstore(&[&["cat", d, "acc"][..], &window].concat());
    assert_eq!(stdout(&out), inside);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the unreadable time is a problem"
    );
    assert!(
        stderr(&out).contains(
            "acc_5.log.1: 1 record whose time (column 7) cannot be read (first: line 6): not \
             selected by --since/--until"
        ),
        "{}",
        stderr(&out)
    );
    // The bounds take a record's own forms too; since is included, until is not.
    let out = flatstore(&[
        "cat",
        d,
        "acc",
        "--since",
        "@1795392030.25",
        "--until",
        "2026-11-23 00:00:59.999",
    ]);
    assert_eq!(stdout(&out), acc[2]);
    let out = flatstore(&["cat", d, "acc", "--until", "@1795392000"]);
    assert_eq!(stdout(&out), acc[0]);
    // Standard input, and export (only records of the right shape count).
    let out = common::flatstore_stdin(
        &[&["cat", "-"][..], &window].concat(),
        acc.concat().as_bytes(),
    );
    assert_eq!(stdout(&out), inside);
    let out = flatstore(&[&["export", d, "acc", "--format", "csv"][..], &window].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "INVITE,a,b,c2,200,OK,1795392000\r\nBYE,a,b,c2,200,OK,1795392030.250\r\n\
         INVITE,a,b,c3,200,OK,2026-11-23 00:00:59.999\r\n"
    );

    // With column names, the column named time, wherever it is.
    fs::write(dir.join("cdr.columns"), "time|callid\n").expect("sidecar");
    fs::write(
        dir.join("cdr_7.log.1"),
        "1795391000|early\n1795392001|inside\n1795393000|late\n",
    )
    .expect("write");
    let out = flatstore(&[&["cat", d, "cdr"][..], &window].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1795392001|inside\n");
    let out = flatstore(
        &[
            &[
                "export",
                d,
                "cdr",
                "--format",
                "csv",
                "--columns",
                "at,callid",
            ][..],
            &window,
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "no column named time: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("no column named \"time\" among the column names from --columns"),
        "{}",
        stderr(&out)
    );
    let out = flatstore(
        &[
            &[
                "export",
                d,
                "cdr",
                "--format",
                "csv",
                "--columns",
                "callid,time",
            ][..],
            &window,
        ]
        .concat(),
    );
    assert_eq!(stdout(&out), "callid,time\r\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "times that cannot be read: {}",
        stderr(&out)
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// A valid gzip header followed by a deflate block of the reserved type.
const CORRUPT_GZIP: &[u8] = &[
    0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

#[test]
fn cat_names_bad_files_and_still_writes_the_rest() {
    let dir = scratch_dir("cat-bad");
    let first = write_tagged(&dir, "acc", 5, "first", 3);
    rotate(&dir, "acc", 5, ".4");
    let truncated = write_tagged(&dir, "acc", 5, "truncated", 2000);
    let gz = common::gzip(&rotate(&dir, "acc", 5, ".3"));
    let compressed = fs::read(&gz).expect("read");
    fs::write(&gz, &compressed[..compressed.len() / 2]).expect("truncate");
    fs::write(dir.join("acc_5.log.2.gz"), CORRUPT_GZIP).expect("write");
    fs::write(dir.join("acc_5.log.1"), b"\x7fELF\x02\x01\x01\0\0\0binary").expect("write");
    let torn = b"INVITE|5|torn".to_vec();
    fs::write(dir.join("acc_6.log.1"), &torn).expect("write");
    symlink(dir.join("gone"), dir.join("acc_6.log.2")).expect("symlink");
    let live = write_tagged(&dir, "acc", 5, "live", 2);

    let out = flatstore(&["cat", "--live", path_str(&dir), "acc"]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "an unreadable file: {message}");
    for (file, what) in [
        ("acc_6.log.2", "No such file or directory"),
        ("acc_5.log.3.gz", "corrupt gzip after "),
        ("acc_5.log.2.gz", "corrupt gzip after 0 bytes"),
        ("acc_5.log.1", "binary content (a NUL byte at offset 7)"),
        ("acc_6.log.1", "the last line is torn"),
    ] {
        let line = format!("flatstore: {}: {what}", dir.join(file).display());
        assert!(message.contains(&line), "{line:?} not in {message}");
    }
    let output = out.stdout;
    let tail = [torn, b"\n".to_vec(), live].concat();
    assert!(output.starts_with(&first), "the first file is whole");
    assert!(
        output.ends_with(&tail),
        "the torn line ended, the live file whole"
    );
    let middle = &output[first.len()..output.len() - tail.len()];
    let middle = middle.strip_suffix(b"\n").unwrap_or(middle);
    assert!(
        truncated.starts_with(middle) && middle.len() > 1000,
        "what the truncated gzip held up to the damage: {} bytes",
        middle.len()
    );
    fs::remove_file(dir.join("acc_6.log.2")).expect("remove");
    let out = flatstore(&["cat", "--live", path_str(&dir), "acc"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems only: {}",
        stderr(&out)
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Real records of 4 columns in two writers' files, rotated and gzipped: every count exact.
#[test]
fn verify_counts_a_clean_directory() {
    let dir = scratch_dir("verify-clean");
    let a = write_tagged(&dir, "acc", 5, "a", 10);
    common::gzip(&rotate(&dir, "acc", 5, ".1"));
    let b = write_tagged(&dir, "acc", 6, "b", 7);
    let c = write_tagged(&dir, "acc", 5, "c", 3);
    let m = write_tagged(&dir, "missed", 9, "m", 1);
    let out = flatstore(&["verify", "--json", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gz_size = fs::metadata(dir.join("acc_5.log.1.gz")).expect("gz").len();
    let expected = format!(
        "{{\"dir\":\"{}\",\"tables\":[\
         {{\"table\":\"acc\",\"columns\":4,\"records\":20,\"bytes\":{},\"files\":[\
         {{\"file\":\"acc_5.log.1.gz\",\"live\":false,\"sealed\":false,\"size\":{gz_size},\"bytes\":{},\"records\":10,\"columns\":{{\"4\":10}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}},\
         {{\"file\":\"acc_5.log\",\"live\":true,\"sealed\":false,\"size\":{},\"bytes\":{},\"records\":3,\"columns\":{{\"4\":3}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}},\
         {{\"file\":\"acc_6.log\",\"live\":true,\"sealed\":false,\"size\":{},\"bytes\":{},\"records\":7,\"columns\":{{\"4\":7}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}}],\"column_names\":null}},\
         {{\"table\":\"missed\",\"columns\":4,\"records\":1,\"bytes\":{},\"files\":[\
         {{\"file\":\"missed_9.log\",\"live\":true,\"sealed\":false,\"size\":{},\"bytes\":{},\"records\":1,\"columns\":{{\"4\":1}},\"other_columns\":0,\"torn\":false,\"undecodable\":0,\"error\":null}}],\"column_names\":null}}],\
         \"ignored\":[],\"problems\":[]}}\n",
        dir.display(),
        a.len() + b.len() + c.len(),
        a.len(),
        c.len(),
        c.len(),
        b.len(),
        b.len(),
        m.len(),
        m.len(),
        m.len(),
    );
    assert_eq!(stdout(&out), expected);

    let out = flatstore(&["verify", path_str(&dir), "acc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "table acc: 3 files, 20 records, {} bytes, 4 columns\n",
            a.len() + b.len() + c.len()
        )),
        "{text}"
    );
    assert!(text.contains("live (a writer may still append)"), "{text}");
    assert!(text.ends_with("no problems\n"), "{text}");
    assert!(!text.contains("missed"), "only the table asked for: {text}");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn verify_finds_every_kind_of_problem() {
    let dir = scratch_dir("verify-bad");
    // A literal "100% sure" is written raw at escape=delimiter: it decodes to nothing.
    let mut shape = write(
        &dir,
        "",
        "acc",
        5,
        &[
            vec![Value::Str(b"INVITE"), Value::Int(200), Value::Str(b"a|b")],
            vec![
                Value::Str(b"BYE"),
                Value::Int(200),
                Value::Str(b"100% sure"),
            ],
            vec![Value::Str(b"ACK"), Value::Int(200), Value::Str(b"x")],
        ],
    );
    shape.extend_from_slice(b"CANCEL|487\nCANCEL|487\n");
    fs::write(dir.join("acc_5.log.1"), &shape).expect("write");
    fs::remove_file(dir.join("acc_5.log")).expect("remove");
    fs::write(dir.join("acc_6.log.1"), b"A|1|x\nA|1|y\nA|1").expect("write");
    fs::write(dir.join("acc_7.log.2.gz"), CORRUPT_GZIP).expect("write");
    fs::write(dir.join("acc_8.log.1"), b"A|1|x\n\0\0\0\x01\x02").expect("write");
    fs::write(dir.join("acc_8.log.2.gz"), b"A|1|not gzip at all\n").expect("write");
    symlink(dir.join("gone"), dir.join("acc_9.log.1")).expect("symlink");
    fs::write(dir.join("core"), b"\0\0\0").expect("write");

    let out = flatstore(&["verify", "--json", path_str(&dir)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable file: {}",
        stderr(&out)
    );
    let json = stdout(&out);
    for fragment in [
        "{\"file\":\"acc_5.log.1\",\"live\":false,\"sealed\":false,\"size\":67,\"bytes\":67,\"records\":5,\"columns\":{\"3\":3,\"2\":2},\"other_columns\":2,\"torn\":false,\"undecodable\":1,\"error\":null}",
        "{\"file\":\"acc_6.log.1\",\"live\":false,\"sealed\":false,\"size\":15,\"bytes\":15,\"records\":2,\"columns\":{\"3\":2},\"other_columns\":0,\"torn\":true,\"undecodable\":0,\"error\":null}",
        "acc_5.log.1: 2 records with 2 columns instead of 3 (first: line 4)\"",
        "acc_6.log.1: the last line is torn (no newline at its end)\"",
        "acc_7.log.2.gz: corrupt gzip after 0 bytes of content",
        "acc_8.log.1: binary content (a NUL byte at offset 6): not a flatstore log",
        "acc_8.log.2.gz: corrupt gzip: not in gzip format",
        "acc_9.log.1: No such file or directory",
        "\"ignored\":[\"core\"]",
    ] {
        assert!(json.contains(fragment), "{fragment} not in {json}");
    }
    assert!(
        json.contains("\"table\":\"acc\",\"columns\":3,\"records\":7,"),
        "{json}"
    );

    fs::remove_file(dir.join("acc_9.log.1")).expect("remove");
    let out = flatstore(&["verify", path_str(&dir), "acc"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems, no I/O error: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("5 problems:\n"), "{text}");
    assert!(
        text.contains("  acc_8.log.1             0            0        -      0    no           0  error (see below)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  acc_5.log.1             5           67      3,2      2    no           1  rotated\n"
        ),
        "{text}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Values with every character that needs escaping in the file, in CSV or in JSON, written
/// by the library at `escape=strict` so that every byte decodes back.
fn export_fixture(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    write(
        &dir,
        "escape=strict",
        "acc",
        5,
        &[
            vec![
                Value::Str(b"a|b,c"),
                Value::Int(200),
                Value::DateTime(1_795_392_000),
                Value::Str("say \"hé\"\r\n100%".as_bytes()),
            ],
            vec![
                Value::Null,
                Value::Int(-1),
                Value::DateTime(1_795_392_001),
                Value::Blob(b"\x00\xff\\"),
            ],
            // Latin-1, not UTF-8, and nothing escaped: written as it is.
            vec![
                Value::Str(b"caf\xe9"),
                Value::Int(486),
                Value::DateTime(1_795_392_002),
                Value::Str(b"ok"),
            ],
        ],
    );
    rotate(&dir, "acc", 5, ".1");
    dir
}

#[test]
fn export_csv_decodes_escapes_and_quotes_per_rfc_4180() {
    let dir = export_fixture("export-csv");
    let d = path_str(&dir);
    let out = flatstore(&["export", d, "acc", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        b"\"a|b,c\",200,1795392000,\"say \"\"h\xc3\xa9\"\"\r\n100%\"\r\n\
          ,-1,1795392001,\x00\xff\\\r\n\
          caf\xe9,486,1795392002,ok\r\n"
    );
    let out = flatstore(&[
        "export",
        d,
        "acc",
        "--format",
        "csv",
        "--columns",
        "who,code,time,what",
        "--iso-time",
        "time",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        b"who,code,time,what\r\n\
          \"a|b,c\",200,2026-11-23T00:00:00Z,\"say \"\"h\xc3\xa9\"\"\r\n100%\"\r\n\
          ,-1,2026-11-23T00:00:01Z,\x00\xff\\\r\n\
          caf\xe9,486,2026-11-23T00:00:02Z,ok\r\n"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn export_jsonl_keeps_utf8_as_strings_and_other_bytes_as_base64() {
    let dir = export_fixture("export-jsonl");
    let d = path_str(&dir);
    let out = flatstore(&["export", d, "acc", "--format", "jsonl", "--iso-time", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[\"a|b,c\",\"200\",\"2026-11-23T00:00:00Z\",\"say \\\"hé\\\"\\r\\n100%\"]\n\
         [\"\",\"-1\",\"2026-11-23T00:00:01Z\",{\"base64\":\"AP9c\"}]\n\
         [{\"base64\":\"Y2Fm6Q==\"},\"486\",\"2026-11-23T00:00:02Z\",\"ok\"]\n"
    );
    let out = flatstore(&[
        "export",
        d,
        "acc",
        "--format",
        "jsonl",
        "--columns",
        "who,code,time,what",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"who\":\"a|b,c\",\"code\":\"200\",\"time\":\"1795392000\",\"what\":\"say \\\"hé\\\"\\r\\n100%\"}\n\
         {\"who\":\"\",\"code\":\"-1\",\"time\":\"1795392001\",\"what\":{\"base64\":\"AP9c\"}}\n\
         {\"who\":{\"base64\":\"Y2Fm6Q==\"},\"code\":\"486\",\"time\":\"1795392002\",\"what\":\"ok\"}\n"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn export_leaves_out_records_of_another_shape_and_torn_lines() {
    let dir = scratch_dir("export-shape");
    fs::write(
        dir.join("acc_5.log.1"),
        b"INVITE|200|x\nBYE|200\nACK|200|y\nCANCEL|487|z|extra\nPRACK|2",
    )
    .expect("write");
    let out = flatstore(&[
        "export",
        path_str(&dir),
        "acc",
        "--format",
        "csv",
        "--columns",
        "method,code,who",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "method,code,who\r\nINVITE,200,x\r\nACK,200,y\r\n"
    );
    let file = dir.join("acc_5.log.1");
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "flatstore: {}: 2 records not exported: the column count is not the 3 of --columns (first: line 2)",
            file.display()
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "flatstore: {}: the last line is torn (no newline at its end): not exported",
            file.display()
        )),
        "{message}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

/// The sidecar of a table, as writers with `header=1` write it: the column names encoded as
/// record values are, here with a `|` in a name (`%7C`).
const SIDECAR: &[u8] = b"wh%7Co|code|time|what\n";

#[test]
fn export_takes_column_names_from_the_sidecar() {
    let dir = export_fixture("export-sidecar");
    fs::write(dir.join("acc.columns"), SIDECAR).expect("write");
    let d = path_str(&dir);
    let out = flatstore(&["export", d, "acc", "--format", "csv", "--iso-time", "time"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        b"wh|o,code,time,what\r\n\
          \"a|b,c\",200,2026-11-23T00:00:00Z,\"say \"\"h\xc3\xa9\"\"\r\n100%\"\r\n\
          ,-1,2026-11-23T00:00:01Z,\x00\xff\\\r\n\
          caf\xe9,486,2026-11-23T00:00:02Z,ok\r\n"
    );
    let out = flatstore(&["export", d, "acc", "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"wh|o\":\"a|b,c\",\"code\":\"200\",\"time\":\"1795392000\",\"what\":\"say \\\"hé\\\"\\r\\n100%\"}\n\
         {\"wh|o\":\"\",\"code\":\"-1\",\"time\":\"1795392001\",\"what\":{\"base64\":\"AP9c\"}}\n\
         {\"wh|o\":{\"base64\":\"Y2Fm6Q==\"},\"code\":\"486\",\"time\":\"1795392002\",\"what\":\"ok\"}\n"
    );
    // --columns wins, even over a sidecar that is malformed.
    fs::write(dir.join("acc.columns"), b"a|a\n").expect("write");
    let out = flatstore(&[
        "export",
        d,
        "acc",
        "--format",
        "csv",
        "--columns",
        "w,c,t,x",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("w,c,t,x\r\n\"a|b,c\",200,"),
        "{}",
        stdout(&out)
    );

    // Records of another count than the sidecar names: left out, and the sidecar named.
    fs::write(dir.join("acc.columns"), b"who|code|time\n").expect("write");
    let out = flatstore(&["export", d, "acc", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "who,code,time\r\n");
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "flatstore: {}: 3 records not exported: the column count is not the 3 of {} (first: line 1)",
            dir.join("acc_5.log.1").display(),
            dir.join("acc.columns").display()
        )),
        "{message}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_malformed_sidecar_stops_export_and_is_named() {
    let dir = export_fixture("export-bad-sidecar");
    let d = path_str(&dir);
    let sidecar = dir.join("acc.columns");
    for (content, what) in [
        (&b""[..], "the file is empty"),
        (b"who|code|time|what", "no newline at the end"),
        (b"who|code\ntime|what\n", "more than one line"),
        (b"who||time|what\n", "a name is empty"),
        (b"who|code|who|what\n", "\"who\" is given twice"),
    ] {
        fs::write(&sidecar, content).expect("write");
        for format in ["csv", "jsonl"] {
            let out = flatstore(&["export", d, "acc", "--format", format]);
            assert_eq!(out.status.code(), Some(2), "{content:?}: {}", stderr(&out));
            assert_eq!(stdout(&out), "", "nothing exported under wrong names");
            assert_eq!(
                stderr(&out),
                format!(
                    "flatstore: {}: malformed column names: {what}\n",
                    sidecar.display()
                )
            );
        }
        let out = flatstore(&["verify", d]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!(
                "  {}: malformed column names: {what}\n",
                sidecar.display()
            )),
            "{}",
            stdout(&out)
        );
    }
    // One that cannot be read: an I/O error, the same exit status.
    fs::remove_file(&sidecar).expect("remove");
    fs::create_dir(&sidecar).expect("mkdir");
    let out = flatstore(&["export", d, "acc", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!("flatstore: {}: ", sidecar.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    fs::remove_dir_all(&dir).expect("clean up");
}

/// Sealed files, a logrotate file, live files and the table's sidecar, as `verify` and `stats`
/// show them.
#[test]
fn verify_and_stats_tell_sealed_files_apart() {
    let dir = scratch_dir("verify-sealed");
    let counted = write_tagged(&dir, "acc", 5, "counted", 2);
    rotate(&dir, "acc", 5, ".1");
    let first = write_tagged(&dir, "acc", 5, "first", 3);
    common::gzip(&seal(&dir, "acc", 5, "20261123T174512.123456789Z"));
    let second = write_tagged(&dir, "acc", 6, "second", 4);
    seal(&dir, "acc", 6, "20261123T174513.000000000Z");
    let live = write_tagged(&dir, "acc", 6, "live", 1);
    fs::write(dir.join("acc.columns"), b"tag|n|i|time\n").expect("write");
    fs::write(dir.join(".acc.columns.4242.tmp"), b"tag|n\n").expect("write");
    let d = path_str(&dir);

    let out = flatstore(&["verify", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |name: &str, records: usize, bytes: usize, state: &str| {
        format!(
            "  {name:<46} {records:>10} {bytes:>12} {:>8} {:>6} {:>5} {:>11}  {state}\n",
            4, 0, "no", 0
        )
    };
    for line in [
        "table acc: 4 files, 10 records".to_string(),
        "  column names from acc.columns: \"tag\",\"n\",\"i\",\"time\"\n".into(),
        row("acc_5.log.1", 2, counted.len(), "rotated"),
        row(
            "acc_5.log.sealed-20261123T174512.123456789Z.gz",
            3,
            first.len(),
            "sealed",
        ),
        row(
            "acc_6.log.sealed-20261123T174513.000000000Z",
            4,
            second.len(),
            "sealed",
        ),
        row(
            "acc_6.log",
            1,
            live.len(),
            "live (a writer may still append)",
        ),
    ] {
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    assert!(!text.contains("not flatstore logs"), "{text}");
    assert!(text.ends_with("no problems\n"), "{text}");

    let out = flatstore(&["verify", "--json", d, "acc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout(&out);
    for fragment in [
        "{\"file\":\"acc_5.log.1\",\"live\":false,\"sealed\":false,",
        "{\"file\":\"acc_5.log.sealed-20261123T174512.123456789Z.gz\",\"live\":false,\"sealed\":true,",
        "{\"file\":\"acc_6.log.sealed-20261123T174513.000000000Z\",\"live\":false,\"sealed\":true,",
        "{\"file\":\"acc_6.log\",\"live\":true,\"sealed\":false,",
        "],\"column_names\":[\"tag\",\"n\",\"i\",\"time\"]}],\"ignored\":[],\"problems\":[]}\n",
    ] {
        assert!(json.contains(fragment), "{fragment} not in {json}");
    }

    let out = flatstore(&["stats", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("TABLE  FILES  LIVE SEALED         SIZE      RECORDS  "),
        "{text}"
    );
    assert!(text.contains("\nacc        4     1      2 "), "{text}");
    let out = flatstore(&["stats", "--json", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "{\"table\":\"acc\",\"files\":4,\"live_files\":1,\"sealed_files\":2,\"writers\":[5,6],"
        ),
        "{}",
        stdout(&out)
    );

    // Names as many as the records' columns, or a problem.
    fs::write(dir.join("acc.columns"), b"tag|n|i\n").expect("write");
    let out = flatstore(&["verify", d]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "  {}: 3 column names, but most records have 4 columns (export leaves out records \
             of another count)\n",
            dir.join("acc.columns").display()
        )),
        "{}",
        stdout(&out)
    );
    // A table whose only file is its sidecar is no mistyped table.
    fs::write(dir.join("cdr.columns"), b"a|b\n").expect("write");
    let out = flatstore(&["verify", d, "cdr"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = flatstore(&["export", d, "cdr", "--format", "csv", "--sealed-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a,b\r\n");
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn stats_counts_tables_writers_sizes_and_times() {
    let dir = scratch_dir("stats");
    let a = write_tagged(&dir, "acc", 5, "a", 10);
    let gz = common::gzip(&rotate(&dir, "acc", 5, ".1"));
    set_mtime(&gz, 1_795_219_200);
    let b = write_tagged(&dir, "acc", 7, "b", 4);
    set_mtime(&dir.join("acc_7.log"), 1_795_392_000);
    write_tagged(&dir, "missed", 5, "m", 2);
    set_mtime(&dir.join("missed_5.log"), 1_795_392_005);
    let out = flatstore(&["stats", "--json", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let acc_size = fs::metadata(&gz).expect("gz").len() + b.len() as u64;
    let missed_size = fs::metadata(dir.join("missed_5.log")).expect("log").len();
    assert_eq!(
        stdout(&out),
        format!(
            "{{\"dir\":\"{}\",\"tables\":[\
             {{\"table\":\"acc\",\"files\":2,\"live_files\":1,\"sealed_files\":0,\"writers\":[5,7],\"size\":{acc_size},\"records\":14,\"oldest\":\"2026-11-21T00:00:00Z\",\"newest\":\"2026-11-23T00:00:00Z\"}},\
             {{\"table\":\"missed\",\"files\":1,\"live_files\":1,\"sealed_files\":0,\"writers\":[5],\"size\":{missed_size},\"records\":2,\"oldest\":\"2026-11-23T00:00:05Z\",\"newest\":\"2026-11-23T00:00:05Z\"}}]}}\n",
            dir.display()
        )
    );
    assert!(a.len() as u64 > fs::metadata(&gz).expect("gz").len());
    let out = flatstore(&["stats", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("TABLE "), "{text}");
    assert!(
        text.contains(&format!(
            "acc         2     1      0 {acc_size:>12}           14  2026-11-21T00:00:00Z  2026-11-23T00:00:00Z  5,7\n"
        )),
        "{text}"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn usage_and_io_errors_exit_2_and_an_unknown_table_1() {
    let dir = scratch_dir("usage");
    write_tagged(&dir, "acc", 5, "a", 1);
    let d = path_str(&dir);
    let missing = dir.join("missing");
    let m = path_str(&missing);
    for args in [
        &["cat", m, "acc"][..],
        &["verify", m],
        &["export", m, "acc", "--format", "csv"],
        &["stats", m],
    ] {
        let out = flatstore(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains(&format!("flatstore: {m}: No such file or directory")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for args in [
        &["cat", d][..],
        &["cat", d, "../etc"],
        &["cat", d, "acc", "--since", "yesterday"],
        &["cat", d, "acc", "--modified-since", "yesterday"],
        &["export", d, "acc"],
        &["export", d, "acc", "--format", "xml"],
        &["export", d, "acc", "--format", "csv", "--iso-time", "time"],
        &[
            "export",
            d,
            "acc",
            "--format",
            "csv",
            "--columns",
            "a,b",
            "--iso-time",
            "3",
        ],
        &["export", d, "acc", "--format", "csv", "--columns", "a,a"],
        &["verify", d, "a/b"],
    ] {
        let out = flatstore(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = flatstore(&["cat", d, "acd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no file of table \"acd\""),
        "{}",
        stderr(&out)
    );
    let out = flatstore(&["verify", d, "acd"]);
    assert_eq!(out.status.code(), Some(1));
    fs::remove_dir_all(&dir).expect("clean up");
}

/// More than the progress threshold (64 MiB), read with standard error piped: no progress.
#[test]
fn progress_stays_quiet_when_piped() {
    let dir = scratch_dir("progress");
    let line = b"INVITE|200|a-call-id-of-some-length@example.org|1795392000\n";
    let mut block = Vec::new();
    while block.len() < 1 << 20 {
        block.extend_from_slice(line);
    }
    let mut file = File::create(dir.join("acc_5.log.1")).expect("create");
    for _ in 0..65 {
        file.write_all(&block).expect("write");
    }
    drop(file);
    let out = flatstore(&["cat", path_str(&dir), "acc"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 65 * block.len());
    assert_eq!(stderr(&out), "");
    fs::remove_dir_all(&dir).expect("clean up");
}

/// `seal`: a file whose writer closed it is sealed with its records; one a writer holds open,
/// an empty one, and another table's (when TABLE is given) are left; a directory planted at a
/// live name is named on standard error with exit status 1; a missing directory is status 2.
#[test]
fn seal_seals_only_files_no_writer_holds() {
    let dir = scratch_dir("seal");
    let closed = write_tagged(&dir, "acc", 1, "gone", 3);
    write_tagged(&dir, "cdr", 1, "other", 2);
    fs::write(dir.join("acc_3.log"), b"").expect("empty file");
    let _turn = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("flatstore:{}", dir.display());
    let mut held =
        Connection::new(Config::from_url(&url, &Params::default()).expect("url")).expect("init");
    flatstore::declare_process_number(2);
    held.use_table(b"acc").expect("table");
    held.insert([Ok(Value::Str(b"live"))]).expect("insert");

    let out = flatstore(&["seal", path_str(&dir), "acc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let sealed_line = report
        .lines()
        .find(|l| l.starts_with("acc_1.log: sealed as acc_1.log.sealed-"))
        .unwrap_or_else(|| panic!("acc_1.log sealed:\n{report}"));
    let sealed_name = sealed_line.rsplit(' ').next().expect("name");
    assert_eq!(fs::read(dir.join(sealed_name)).expect("sealed"), closed);
    assert!(
        report.contains("acc_2.log: left live, a writer holds it"),
        "{report}"
    );
    assert!(report.contains("acc_3.log: left live, empty"), "{report}");
    assert!(
        !report.contains("cdr"),
        "only the table asked for: {report}"
    );
    assert_eq!(fs::read(dir.join("acc_2.log")).expect("live"), b"live\n");
    assert!(dir.join("cdr_1.log").exists());

    held.close().expect("close");
    drop(_turn);
    fs::create_dir(dir.join("acc_4.log")).expect("plant a directory");
    let out = flatstore(&["seal", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("acc_4.log"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acc_2.log: sealed as"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("cdr_1.log: sealed as"),
        "{}",
        stdout(&out)
    );

    let out = flatstore(&["seal", path_str(&dir.join("missing"))]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    fs::remove_dir_all(&dir).expect("clean up");
}

/// A seal a writer did not finish (killed between the rename to `.<sealed name>.pending` and
/// its sync): no reader takes its records for sealed ones, `verify` reports it, `seal` syncs
/// it and gives it the sealed name it waits for, and readers of sealed files then see them.
#[test]
fn seal_finishes_a_seal_its_writer_left_pending() {
    let dir = scratch_dir("seal-pending");
    let records = write_tagged(&dir, "acc", 7, "pending", 3);
    let stamp = "20261206T120000.000000001Z";
    let sealed_name = format!("acc_7.log.sealed-{stamp}");
    rotate(&dir, "acc", 7, &format!(".sealed-{stamp}"));
    fs::rename(
        dir.join(&sealed_name),
        dir.join(format!(".{sealed_name}.pending")),
    )
    .expect("as a writer killed mid-seal leaves it");

    let out = flatstore(&["cat", path_str(&dir), "acc", "--sealed-only"]);
    assert_eq!(out.stdout, b"", "not sealed yet");
    assert!(
        stderr(&out).contains("1 sealed file(s) waiting for their sync"),
        "{}",
        stderr(&out)
    );

    let out = flatstore(&["verify", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("3 record(s) sealed by a writer that was gone before it synced"),
        "{}",
        stdout(&out)
    );

    let out = flatstore(&["seal", path_str(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(".{sealed_name}.pending: sealed as {sealed_name}\n")
    );
    let out = flatstore(&["verify", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = flatstore(&["cat", path_str(&dir), "acc", "--sealed-only"]);
    assert_eq!(out.stdout, records);
    assert!(!dir.join(format!(".{sealed_name}.pending")).exists());
    fs::remove_dir_all(&dir).expect("clean up");
}
