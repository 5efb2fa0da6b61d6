//! TLS to the database, as a user sees it: a throwaway cluster (common/cluster.rs) with
//! `ssl=on` listening on 127.0.0.1, whose `pg_hba.conf` takes TCP sessions only as `hostssl`
//! (a password user, and a user known by its client certificate; one more user, `plain`, is
//! taken only without TLS, for libpq's second tries), its certificate authority and
//! certificates made here with rcgen. `flatstore load` and `flatstore cdr --db` run through
//! every `sslmode`, with the right CA, another CA, the right and a wrong host name, a client
//! certificate, and the same settings from the environment. Without TLS the server refuses
//! every TCP session but `plain`'s, so a session of another user that works went over TLS.

mod common;

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::cluster::{self, Cluster, server_owns};
use common::{text, trials};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

fn main() {
    let trial = |name: &str, test: fn()| trials::trial_unless(name, cluster::missing, test);
    let all = vec![
        trial(
            "disable_is_refused_by_a_server_that_takes_only_tls",
            disable_is_refused_by_a_server_that_takes_only_tls,
        ),
        trial(
            "prefer_the_default_and_require_connect_without_a_root_certificate",
            prefer_the_default_and_require_connect_without_a_root_certificate,
        ),
        trial(
            "prefer_and_allow_try_again_the_other_way",
            prefer_and_allow_try_again_the_other_way,
        ),
        trial(
            "verify_ca_takes_the_right_ca_and_refuses_another",
            verify_ca_takes_the_right_ca_and_refuses_another,
        ),
        trial(
            "verify_full_checks_the_ca_and_the_host_name",
            verify_full_checks_the_ca_and_the_host_name,
        ),
        trial(
            "require_and_prefer_with_a_root_certificate_file_check_it_as_verify_ca",
            require_and_prefer_with_a_root_certificate_file_check_it_as_verify_ca,
        ),
        trial(
            "a_client_certificate_is_the_login",
            a_client_certificate_is_the_login,
        ),
        trial(
            "the_environment_sets_what_the_url_does_not",
            the_environment_sets_what_the_url_does_not,
        ),
        trial("cdr_db_over_verify_full", cdr_db_over_verify_full),
    ];
    let conclusion = libtest_mimic::run(&libtest_mimic::Arguments::from_args(), all);
    let _ = fs::remove_dir_all(base());
    conclusion.exit()
}

/// The directory of this program's files (certificates, homes, records), removed at its end.
fn base() -> PathBuf {
    std::env::temp_dir().join(format!("flatstore-tls-{}", std::process::id()))
}

/// The password of the users `loader` (scram-sha-256 over hostssl) and `plain` (over
/// hostnossl).
const PASSWORD: &str = "s3cret-over-tls";

/// The cluster, and the files the client uses: `ca.crt` (the server's CA, also the CA of
/// client certificates), `other-ca.crt` (a CA that issued nothing of this server's),
/// `client.crt` and `client.key` (user `certified`).
struct Tls {
    pg: Cluster,
    files: PathBuf,
}

impl Tls {
    fn file(&self, name: &str) -> String {
        self.files.join(name).to_str().expect("UTF-8").to_owned()
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate `ca` issues for `names` (DNS names) with common name `cn`: (PEM, key PEM).
fn issue(ca: &CertifiedIssuer<'_, KeyPair>, cn: &str, names: &[&str]) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// One TLS cluster for the whole program (stopped when it ends).
fn tls() -> Option<&'static Tls> {
    static TLS: OnceLock<Option<Tls>> = OnceLock::new();
    TLS.get_or_init(|| {
        let bin = cluster::bindir()?;
        let files = base();
        let _ = fs::remove_dir_all(&files);
        fs::create_dir_all(files.join("home")).expect("create the client's files");
        let authority = ca("flatstore test CA");
        let other = ca("flatstore other CA");
        let (server_crt, server_key) = issue(&authority, "localhost", &["localhost"]);
        let (client_crt, client_key) = issue(&authority, "certified", &[]);
        fs::write(files.join("ca.crt"), authority.pem()).expect("write");
        fs::write(files.join("other-ca.crt"), other.pem()).expect("write");
        fs::write(files.join("client.crt"), client_crt).expect("write");
        fs::write(files.join("client.key"), client_key).expect("write");
        fs::set_permissions(files.join("client.key"), fs::Permissions::from_mode(0o600))
            .expect("chmod the client's key");
        let ca_pem = authority.pem();
        let pg = Cluster::start_with(&bin, "tls", |data| {
            for (name, text) in [
                ("server.crt", &server_crt),
                ("server.key", &server_key),
                ("ca.crt", &ca_pem),
            ] {
                fs::write(data.join(name), text).expect("write the server's files");
                server_owns(&data.join(name), 0o600);
            }
            fs::write(
                data.join("pg_hba.conf"),
                "local all postgres trust\n\
                 local all all scram-sha-256\n\
                 hostssl all certified 127.0.0.1/32 cert\n\
                 hostnossl all plain 127.0.0.1/32 scram-sha-256\n\
                 hostssl all loader 127.0.0.1/32 scram-sha-256\n",
            )
            .expect("write pg_hba.conf");
            [
                "listen_addresses=127.0.0.1",
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
                "ssl_ca_file=ca.crt",
            ]
            .iter()
            .flat_map(|setting| ["-c".to_owned(), setting.to_string()])
            .collect()
        });
        let mut admin = pg.client("postgres");
        admin
            .batch_execute(&format!(
                "CREATE ROLE loader LOGIN PASSWORD '{PASSWORD}'; CREATE ROLE certified LOGIN; \
                 CREATE ROLE plain LOGIN PASSWORD '{PASSWORD}'"
            ))
            .expect("roles");
        Some(Tls { pg, files })
    })
    .as_ref()
}

/// A new database `name` that `loader` and `certified` may create tables in.
fn database(tls: &Tls, name: &str) {
    tls.pg.database(name);
    tls.pg
        .client(name)
        .batch_execute("GRANT CREATE ON SCHEMA public TO loader, certified, plain")
        .expect("grant");
}

/// The URL of database `db` over TCP to `host` as `user`, with `query` (`a=b&c=d`).
fn url(host: &str, user: &str, db: &str, query: &str) -> String {
    let query = match query {
        "" => String::new(),
        q => format!("?{q}"),
    };
    format!("postgresql://{user}@{host}:{}/{db}{query}", cluster::PORT)
}

/// A directory with one rotated file of table acc (Kamailio's columns named in
/// `acc.columns`): 2 records, one call.
fn records(name: &str) -> PathBuf {
    let dir = base().join(format!("records-{name}"));
    fs::create_dir_all(&dir).expect("create the records' directory");
    fs::write(
        dir.join("acc.columns"),
        "method|from_tag|to_tag|callid|sip_code|sip_reason|time\n",
    )
    .expect("write");
    fs::write(
        dir.join("acc_1.log.1"),
        "INVITE|f1|t1|c1@h|200|OK|1795392000\nBYE|f1|t1|c1@h|200|OK|1795392060\n",
    )
    .expect("write");
    dir
}

/// `flatstore ARGS` with `loader`'s password, `HOME` without `.postgresql/` (libpq's default
/// files absent) unless `env` sets it, no `PGSSL*` but those of `env`.
fn flatstore(tls: &Tls, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flatstore"));
    command
        .args(args)
        .env("PGPASSWORD", PASSWORD)
        .env("PGPASSFILE", tls.files.join("no-such-file"))
        .env("HOME", tls.files.join("home"));
    for name in ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    output_within(command, Duration::from_secs(60))
}

/// The output of `command`, killed (by its pid) and the test failed if it runs past `limit`.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flatstore");
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read the output");
            }
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for flatstore") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flatstore ran past {limit:?}: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

/// `flatstore load DIR acc --db URL --create --source p` (`env` as [`flatstore`]).
fn load(tls: &Tls, dir: &Path, url: &str, env: &[(&str, &str)]) -> Output {
    let dir = dir.to_str().expect("UTF-8");
    flatstore(
        tls,
        &["load", dir, "acc", "--db", url, "--create", "--source", "p"],
        env,
    )
}

/// The run worked and loaded the 2 records of [`records`] (counted by the superuser over
/// the socket).
fn assert_loaded(tls: &Tls, out: &Output, db: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let rows: i64 = tls
        .pg
        .client(db)
        .query_one("SELECT count(*) FROM acc", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 2);
}

/// The run failed as a connection failure (exit 2) saying `says`, and loaded nothing.
fn assert_refused(out: &Output, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains(says), "wanted {says:?} in:\n{stderr}");
    assert!(!stderr.contains("invalid connection string"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

fn disable_is_refused_by_a_server_that_takes_only_tls() {
    let Some(tls) = tls() else { return };
    database(tls, "disable");
    let dir = records("disable");
    let out = load(
        tls,
        &dir,
        &url("localhost", "loader", "disable", "sslmode=disable"),
        &[],
    );
    assert_refused(&out, "no pg_hba.conf entry");
    assert_refused(&out, "no encryption");
}

fn prefer_the_default_and_require_connect_without_a_root_certificate() {
    let Some(tls) = tls() else { return };
    for (db, query) in [
        ("dflt", ""),
        ("prefer", "sslmode=prefer"),
        ("require", "sslmode=require"),
    ] {
        database(tls, db);
        let dir = records(db);
        // 127.0.0.1 is not the certificate's name: no check of it below verify-full.
        let out = load(tls, &dir, &url("127.0.0.1", "loader", db, query), &[]);
        assert_loaded(tls, &out, db);
    }
    let out = load(
        tls,
        &records("unknown"),
        &url("localhost", "loader", "require", "sslmode=verify-fool"),
        &[],
    );
    assert_refused(&out, "invalid sslmode \"verify-fool\"");
}

/// The second tries of libpq: `prefer` without TLS when the server refuses the session over
/// TLS (user `plain` is taken only without: `hostnossl`), `allow` with TLS when the server
/// refuses it without (user `loader`, `hostssl` only).
fn prefer_and_allow_try_again_the_other_way() {
    let Some(tls) = tls() else { return };
    for (db, user, query) in [
        ("preferplain", "plain", ""),
        ("allowplain", "plain", "sslmode=allow"),
        ("allowtls", "loader", "sslmode=allow"),
    ] {
        database(tls, db);
        let out = load(tls, &records(db), &url("localhost", user, db, query), &[]);
        assert_loaded(tls, &out, db);
    }
    // Neither way: the first refusal is the one told.
    database(tls, "plainreq");
    let out = load(
        tls,
        &records("plainreq"),
        &url("localhost", "plain", "plainreq", "sslmode=require"),
        &[],
    );
    assert_refused(&out, "SSL encryption");
}

fn verify_ca_takes_the_right_ca_and_refuses_another() {
    let Some(tls) = tls() else { return };
    database(tls, "vca");
    let dir = records("vca");
    let with = |ca: &str| {
        let query = format!("sslmode=verify-ca&sslrootcert={}", tls.file(ca));
        url("127.0.0.1", "loader", "vca", &query)
    };
    let out = load(tls, &dir, &with("other-ca.crt"), &[]);
    assert_refused(&out, "the server's certificate was not trusted");
    assert_refused(&out, "other-ca.crt");
    let out = load(tls, &dir, &with("ca.crt"), &[]);
    assert_loaded(tls, &out, "vca");
    let missing = url("127.0.0.1", "loader", "vca", "sslmode=verify-ca");
    let out = load(tls, &dir, &missing, &[]);
    assert_refused(&out, "root.crt\" does not exist");
}

fn verify_full_checks_the_ca_and_the_host_name() {
    let Some(tls) = tls() else { return };
    database(tls, "vfull");
    let dir = records("vfull");
    let with = |host: &str, ca: &str| {
        let query = format!("sslmode=verify-full&sslrootcert={}", tls.file(ca));
        url(host, "loader", "vfull", &query)
    };
    let out = load(tls, &dir, &with("localhost", "other-ca.crt"), &[]);
    assert_refused(&out, "the server's certificate was not trusted");
    let out = load(tls, &dir, &with("127.0.0.1", "ca.crt"), &[]);
    assert_refused(&out, "the server's certificate was not trusted");
    assert_refused(&out, "not for host \"127.0.0.1\" (it names localhost)");
    let out = load(tls, &dir, &with("localhost", "ca.crt"), &[]);
    assert_loaded(tls, &out, "vfull");
}

fn require_and_prefer_with_a_root_certificate_file_check_it_as_verify_ca() {
    let Some(tls) = tls() else { return };
    database(tls, "reqca");
    let dir = records("reqca");
    let query = format!("sslmode=require&sslrootcert={}", tls.file("other-ca.crt"));
    let out = load(tls, &dir, &url("127.0.0.1", "loader", "reqca", &query), &[]);
    assert_refused(&out, "the server's certificate was not trusted");
    // libpq's default file, ~/.postgresql/root.crt, counts the same.
    let home = tls.files.join("home-other-ca");
    fs::create_dir_all(home.join(".postgresql")).expect("mkdir");
    fs::copy(
        tls.files.join("other-ca.crt"),
        home.join(".postgresql/root.crt"),
    )
    .expect("cp");
    let home = home.to_str().expect("UTF-8");
    let plain = url("127.0.0.1", "loader", "reqca", "sslmode=require");
    let out = load(tls, &dir, &plain, &[("HOME", home)]);
    assert_refused(&out, "the server's certificate was not trusted");
    // prefer too; its second try, without TLS, is refused by this server: the first error
    // is told.
    let prefer = url("127.0.0.1", "loader", "reqca", "sslmode=prefer");
    let out = load(tls, &dir, &prefer, &[("HOME", home)]);
    assert_refused(&out, "the server's certificate was not trusted");
    let query = format!("sslmode=require&sslrootcert={}", tls.file("ca.crt"));
    let out = load(tls, &dir, &url("127.0.0.1", "loader", "reqca", &query), &[]);
    assert_loaded(tls, &out, "reqca");
}

fn a_client_certificate_is_the_login() {
    let Some(tls) = tls() else { return };
    database(tls, "cert");
    let dir = records("cert");
    let root = format!("sslmode=verify-full&sslrootcert={}", tls.file("ca.crt"));
    let without = url("localhost", "certified", "cert", &root);
    let out = load(tls, &dir, &without, &[]);
    assert_refused(&out, "certificate");

    let with = format!(
        "{without}&sslcert={}&sslkey={}",
        tls.file("client.crt"),
        tls.file("client.key")
    );
    // libpq refuses a key that others may read.
    let open_key = tls.files.join("open.key");
    fs::copy(tls.files.join("client.key"), &open_key).expect("cp");
    fs::set_permissions(
        &open_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
    let exposed = with.replace("client.key", "open.key");
    let out = load(tls, &dir, &exposed, &[]);
    assert_refused(&out, "has group or world access");

    let out = load(tls, &dir, &with, &[]);
    assert_loaded(tls, &out, "cert");
}

fn the_environment_sets_what_the_url_does_not() {
    let Some(tls) = tls() else { return };
    database(tls, "env");
    let dir = records("env");
    let (ca, other) = (tls.file("ca.crt"), tls.file("other-ca.crt"));
    let bare = url("localhost", "loader", "env", "");
    let out = load(
        tls,
        &dir,
        &bare,
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &other)],
    );
    assert_refused(&out, "the server's certificate was not trusted");
    let out = load(tls, &dir, &bare, &[("PGSSLMODE", "disable")]);
    assert_refused(&out, "no encryption");
    // The URL wins over the environment.
    let url_root = url("localhost", "loader", "env", &format!("sslrootcert={ca}"));
    let out = load(
        tls,
        &dir,
        &url_root,
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &other)],
    );
    assert_loaded(tls, &out, "env");

    // The client certificate from PGSSLCERT and PGSSLKEY.
    database(tls, "envcert");
    let certified = url("localhost", "certified", "envcert", "");
    let out = load(
        tls,
        &dir,
        &certified,
        &[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", &ca),
            ("PGSSLCERT", &tls.file("client.crt")),
            ("PGSSLKEY", &tls.file("client.key")),
        ],
    );
    assert_loaded(tls, &out, "envcert");
}

fn cdr_db_over_verify_full() {
    let Some(tls) = tls() else { return };
    database(tls, "cdr");
    let dir = records("cdr");
    let dir = dir.to_str().expect("UTF-8");
    let run = |ca: &str| {
        let query = format!("sslmode=verify-full&sslrootcert={}", tls.file(ca));
        let db = url("localhost", "loader", "cdr", &query);
        flatstore(
            tls,
            &["cdr", dir, "--db", &db, "--create", "--into", "cdrs"],
            &[],
        )
    };
    let out = run("other-ca.crt");
    assert_refused(&out, "the server's certificate was not trusted");
    let out = run("ca.crt");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: i64 = tls
        .pg
        .client("cdr")
        .query_one("SELECT count(*) FROM cdrs WHERE callid = 'c1@h'", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 1, "one CDR for the call");
}
