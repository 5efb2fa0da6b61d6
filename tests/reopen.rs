//! A failed reopen keeps the old file (nothing lost), and the reopen is retried on the next write.

use std::fs;

use flatstore::Control;
use flatstore::{Config, Connection, Params, Value};

#[test]
fn failed_reopen_keeps_old_file_and_retries() {
    let dir = std::env::temp_dir().join(format!("flatstore-reopen-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let url = format!("flatstore:{}", dir.display());
    let mut con = Connection::new(Config::from_url(&url, &Params::default()).expect("config"))
        .expect("connection");
    flatstore::declare_process_number(9);
    con.use_table(b"acc").expect("table");
    let insert = |con: &mut Connection, n: i32| con.insert([Ok(Value::Int(n))]);
    insert(&mut con, 1).expect("first insert");
    fs::rename(dir.join("acc_9.log"), dir.join("acc_9.log.1")).expect("rename");
    // Something that cannot be opened as a file now stands at the log path.
    fs::create_dir(dir.join("acc_9.log")).expect("block the path");
    Control::open(&dir, None)
        .expect("control")
        .request_rotation();
    insert(&mut con, 2).expect("kept writing to the old file");
    fs::remove_dir(dir.join("acc_9.log")).expect("unblock");
    insert(&mut con, 3).expect("reopened");
    con.close().expect("close");
    assert_eq!(fs::read(dir.join("acc_9.log.1")).expect("old"), b"1\n2\n");
    assert_eq!(fs::read(dir.join("acc_9.log")).expect("new"), b"3\n");
    fs::remove_dir_all(&dir).expect("clean up");
}
