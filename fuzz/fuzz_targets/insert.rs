//! The insert path with arbitrary operations and values, some of them bad: nothing panics; an
//! insert that succeeds adds exactly its line to the table's file (flush=1), one that fails
//! adds nothing; a table name that is refused creates nothing; every file stays inside the
//! directory and ends in a whole line.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use flatstore::line::encode::{LineBuf, LineFormat};
use flatstore::line::value::{BadValue, Value, ValueProblem};
use flatstore::names;
use flatstore::{Config, Connection, Params};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Field {
    Null,
    Int(i32),
    BigInt(i64),
    Double(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
    DateTime(i64),
    Bad(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    UseTable(Vec<u8>),
    Insert(Vec<Field>),
}

fn value(field: &Field, index: usize) -> Result<Value<'_>, BadValue> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Int(v) => Value::Int(*v),
        Field::BigInt(v) => Value::BigInt(*v),
        Field::Double(v) => Value::Double(*v),
        Field::Text(b) => Value::Str(b),
        Field::Blob(b) => Value::Blob(b),
        Field::DateTime(v) => Value::DateTime(*v),
        Field::Bad(kind) => {
            let problem = match kind % 3 {
                0 => ValueProblem::UnknownType(i32::from(*kind)),
                1 => ValueProblem::NullString,
                _ => ValueProblem::NegativeLength(-i32::from(*kind)),
            };
            return Err(BadValue { index, problem });
        }
    })
}

/// A directory of this fuzzing process, emptied for every input.
fn directory() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if PathBuf::from("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = PathBuf::from(format!("{base}/flatstore-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create fuzz dir");
        dir
    })
}

fuzz_target!(|ops: Vec<Op>| {
    let dir = directory();
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(".flatstore")
        {
            let _ = fs::remove_file(entry.path());
        }
    }
    let url = format!("flatstore:{}", dir.display());
    let mut connection =
        Connection::new(Config::from_url(&url, &Params::default()).expect("url")).expect("init");
    let mut table: Option<PathBuf> = None;
    for op in ops.iter().take(64) {
        match op {
            Op::UseTable(name) => {
                let files_before = fs::read_dir(dir).expect("read dir").count();
                match connection.use_table(name) {
                    // Table names are bytes: the file has the name's exact bytes.
                    Ok(()) => {
                        table = Some(names::live_log(dir, name, u64::from(std::process::id())))
                    }
                    Err(_) => assert_eq!(
                        fs::read_dir(dir).expect("read dir").count(),
                        files_before,
                        "a refused table created a file"
                    ),
                }
            }
            Op::Insert(fields) => {
                let before = table
                    .as_ref()
                    .and_then(|t| fs::metadata(t).ok())
                    .map_or(0, |m| m.len());
                let mut expected = LineBuf::new();
                let encoded = LineFormat::default().encode_record(
                    fields.iter().enumerate().map(|(i, f)| value(f, i)),
                    &mut expected,
                );
                let result = connection.insert(fields.iter().enumerate().map(|(i, f)| value(f, i)));
                let after = table
                    .as_ref()
                    .and_then(|t| fs::metadata(t).ok())
                    .map_or(0, |m| m.len());
                match (result, encoded) {
                    (Ok(()), Ok(())) => {
                        assert_eq!(after - before, expected.as_bytes().len() as u64)
                    }
                    (Err(_), _) => assert_eq!(after, before, "a refused record wrote bytes"),
                    (Ok(()), Err(e)) => panic!("accepted a record with {e}"),
                }
            }
        }
    }
    connection.close().expect("close");
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let bytes = fs::read(entry.path()).expect("read file");
        if !entry.file_name().to_string_lossy().starts_with('.') {
            assert!(
                bytes.is_empty() || bytes.ends_with(b"\n"),
                "{:?} torn",
                entry.path()
            );
        }
    }
});
