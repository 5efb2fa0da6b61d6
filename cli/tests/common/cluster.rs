//! A throwaway PostgreSQL cluster for the tests and the benchmark of `flatstore load`: made
//! with `initdb` in a temporary directory, run as the `postgres` user when we are root (the
//! server refuses root), listening only on a Unix socket in that directory (no TCP unless a
//! test's settings ask: see [`Cluster::start_with`]), and stopped when the test program ends,
//! however it ends.
//!
//! The server runs under a small shell that holds the read end of a pipe whose write end only
//! this process holds: when this process exits (or drops the [`Cluster`]), the shell reads end
//! of file, sends its own server SIGINT (fast shutdown), waits for it and removes the
//! directory. Nothing else is ever signalled. A cluster kept in a `static` is therefore
//! stopped too, though statics are never dropped.
//!
//! `initdb` has 2 minutes, the server 60 s to take connections and 60 s to stop once told;
//! past that the test fails (and the keeper's process group, the server with it, is killed).
//!
//! Required when `CI=true` (CI installs Debian's `postgresql`), skipped loudly otherwise.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// Every includer has `tests/common/timeout.rs` beside this module (`tests/cdr.rs` and
// `cli/benches/load.rs` include this file on its own).
use super::timeout::{output_or_fail, own_group, wait_or_kill};

/// The socket's port number: only its name (`.s.PGSQL.55432`) in our own directory, so any
/// number serves; a high one that no system cluster uses.
pub const PORT: u16 = 55432;

/// The test program's one cluster, `name` in its directory's name, started at the first call
/// (each test makes its own database in it); `None` when PostgreSQL is not installed, which
/// the trials report (see [`missing`]).
pub fn shared(name: &str) -> Option<&'static Cluster> {
    static CLUSTER: std::sync::OnceLock<Option<Cluster>> = std::sync::OnceLock::new();
    CLUSTER
        .get_or_init(|| bindir().map(|bin| Cluster::start(&bin, name)))
        .as_ref()
}

/// Where the server binaries are: `FLATSTORE_PG_BINDIR`, else `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian), else `initdb` on the PATH. `None` when none
/// holds both `initdb` and `postgres`.
pub fn bindir() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("FLATSTORE_PG_BINDIR") {
        return Some(PathBuf::from(dir)).filter(|d| usable(d));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| usable(d)) {
        return Some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| usable(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Some(dir);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .parent()
                .map(Path::to_path_buf)
        });
    on_path.filter(|d| usable(d))
}

/// Why the tests that need PostgreSQL cannot run here (`Ok(None)`: they can), or `Err` when
/// `CI=true`, where it is required (CI installs Debian's postgresql: see `.ci/run`).
pub fn missing() -> Result<Option<String>, libtest_mimic::Failed> {
    if bindir().is_some() {
        return Ok(None);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err("PostgreSQL (initdb, postgres) is required when CI=true: see .ci/run".into());
    }
    Ok(Some("needs PostgreSQL (initdb, postgres)".into()))
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .expect("running as root, the server needs the postgres user (Debian's postgresql)")
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// `command` as the server's user: `postgres` when we are root.
fn as_server_user(command: &mut Command) -> &mut Command {
    if is_root() {
        let (uid, gid) = postgres_user();
        command.uid(uid).gid(gid);
    }
    command
}

/// Give `path` to the server's user (when we are root), mode `mode`: a file the server reads.
pub fn server_owns(path: &Path, mode: u32) {
    if is_root() {
        let (uid, gid) = postgres_user();
        chown(path, Some(uid), Some(gid)).expect("chown for the server");
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod for the server");
}

/// A running throwaway cluster; stopped when dropped or when this process ends.
pub struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    keeper: Child,
    /// The write end of the keeper's pipe: closing it stops the server.
    alive: Option<ChildStdin>,
}

impl Cluster {
    /// `initdb` a cluster in a fresh temporary directory named after `name`, start it and wait
    /// until it takes connections. The superuser `postgres` connects without a password;
    /// every other user with scram-sha-256.
    pub fn start(bindir: &Path, name: &str) -> Cluster {
        Cluster::start_with(bindir, name, |_| Vec::new())
    }

    /// [`Cluster::start`], with `setup` called on the data directory after `initdb` (to write
    /// files there: `pg_hba.conf`, certificates; see [`server_owns`]) returning more
    /// arguments of the server (`-c name=value`, later ones win).
    pub fn start_with(
        bindir: &Path,
        name: &str,
        setup: impl FnOnce(&Path) -> Vec<String>,
    ) -> Cluster {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flatstore-pg-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the cluster's directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        if is_root() {
            let (uid, gid) = postgres_user();
            chown(&dir, Some(uid), Some(gid)).expect("chown the cluster's directory");
        }
        let data = dir.join("data");
        let init = output_or_fail(
            as_server_user(&mut Command::new(bindir.join("initdb")))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]),
            "initdb",
            Duration::from_secs(120),
        );
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        fs::write(
            data.join("pg_hba.conf"),
            "local all postgres trust\nlocal all all scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        let settings = setup(&data);

        // The keeper: start the server in the background, wait for end of file on the pipe
        // (this process gone, or the Cluster dropped), stop the server, remove the directory.
        let script = r#"exec 3<&0 </dev/null
"$@" >"$DIR/server.log" 2>&1 &
server=$!
cat <&3 >/dev/null
kill -INT "$server"
wait "$server"
rm -rf "$DIR""#;
        let mut keeper = as_server_user(own_group(&mut Command::new("sh")))
            .arg("-c")
            .arg(script)
            .arg("keeper")
            .arg(bindir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-h", "", "-p", &PORT.to_string()])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=60", "-c", "shared_buffers=64MB"])
            .args(&settings)
            .env("DIR", &dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start the server");
        let alive = keeper.stdin.take();
        let cluster = Cluster {
            dir,
            bindir: bindir.to_owned(),
            keeper,
            alive,
        };
        // A server that never takes connections is stopped by the drop on the way out.
        cluster.wait_ready();
        cluster
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ::postgres::Client::connect(&self.url("postgres"), ::postgres::NoTls).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The server binaries' directory (psql is in it too on Debian).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// `psql`: the one beside the server binaries, else the PATH's.
    pub fn psql(&self) -> PathBuf {
        let beside = self.bindir.join("psql");
        if beside.is_file() {
            beside
        } else {
            PathBuf::from("psql")
        }
    }

    /// The URL of database `db` as the superuser: the socket directory as the host,
    /// percent-encoded.
    pub fn url(&self, db: &str) -> String {
        self.url_as("postgres", db)
    }

    /// The URL of database `db` as `user`, without a password.
    pub fn url_as(&self, user: &str, db: &str) -> String {
        let host: String = self
            .dir
            .to_str()
            .expect("UTF-8 temp dir")
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgresql://{user}@{host}:{PORT}/{db}")
    }

    /// A client of database `db`, as the superuser.
    pub fn client(&self, db: &str) -> ::postgres::Client {
        ::postgres::Client::connect(&self.url(db), ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
    }

    /// A new, empty database `name`; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        self.url(name)
    }
}

impl Drop for Cluster {
    /// Stop the server (fast shutdown) and wait for it, at most 60 s; then the keeper's group
    /// (the server with it) is killed and its directory left for inspection.
    fn drop(&mut self) {
        drop(self.alive.take());
        if wait_or_kill(&mut self.keeper, Duration::from_secs(60)).is_none() {
            eprintln!(
                "the PostgreSQL server did not stop within 60 s: killed; its directory {} is left",
                self.dir.display()
            );
        }
    }
}
