//! A record cut short by a crash (kill -9 in the middle of a write, or a power loss): the next
//! writer of the file moves it out of the log, and `flatstore verify` reports it.

use std::fs;
use std::process::Command;

mod common;

use flatstore::{Config, Params};

use flatstore::Connection;
use flatstore::line::value::{BadValue, Value};

#[test]
fn a_torn_record_is_moved_aside_by_the_next_writer_and_reported_by_verify() {
    let dir = std::env::temp_dir().join(format!("flatstore-torn-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create dir");
    // "BYE|b|2" is "BYE|b|200" cut short: as a line it would pass for a record.
    fs::write(dir.join("acc_7.log"), "INVITE|a|200\nBYE|b|2").expect("write torn log");
    flatstore::declare_process_number(7);
    let url = format!("flatstore:{}", dir.display());
    let mut connection =
        Connection::new(Config::from_url(&url, &Params::default()).expect("url")).expect("init");
    connection.use_table(b"acc").expect("table");
    let record: [Result<Value<'_>, BadValue>; 3] = [
        Ok(Value::Str(b"CANCEL")),
        Ok(Value::Str(b"c")),
        Ok(Value::Int(487)),
    ];
    connection.insert(record).expect("insert");
    connection.close().expect("close");

    assert_eq!(
        fs::read_to_string(dir.join("acc_7.log")).expect("read log"),
        "INVITE|a|200\nCANCEL|c|487\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join(".acc_7.log.torn")).expect("read torn"),
        "BYE|b|2\n"
    );
    let verify = Command::new(common::flatstore_cli())
        .arg("verify")
        .arg(&dir)
        .output()
        .expect("run flatstore verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "verify must fail:\n{report}");
    assert!(
        report.contains("1 torn record(s) that a writer moved out of acc_7.log"),
        "{report}"
    );
    let cat = Command::new(common::flatstore_cli())
        .args(["cat", "--live"])
        .arg(&dir)
        .arg("acc")
        .output()
        .expect("run flatstore cat");
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "INVITE|a|200\nCANCEL|c|487\n",
        "billing reads only whole records"
    );
    fs::remove_dir_all(&dir).expect("clean up");
}
