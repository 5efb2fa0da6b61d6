//! Packaging as an operator meets it: the C library installed by cargo-c and used through
//! nothing but `pkg-config`, the Debian package of `packaging/deb.sh` (its files, its version),
//! and, when allowed to install system-wide, that package installed with apt and used by a C
//! program and by a real Kamailio under SIPp traffic.
//!
//! The version is one: `Cargo.toml`, `flatstore --version`, `flat_version()` and the package.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::kamailio::{
    MODULES, account_calls, assert_every_call_accounted_once, epoch_now, installed_strings,
};

fn main() {
    common::run_trials(vec![
        common::trial("versions_agree", versions_agree),
        common::trial_needing(
            "cargo_c_install_serves_pkg_config_users",
            &["cargo-cinstall", "pkg-config", "objdump"],
            cargo_c_install_serves_pkg_config_users,
        ),
        common::trial_needing(
            "deb_holds_module_cli_library_and_examples",
            DEB_TOOLS,
            deb_holds_module_cli_library_and_examples,
        ),
        common::trial_needing(
            "deb_sets_up_logrotate_and_the_log_directory",
            DEB_AND_LOGROTATE,
            deb_sets_up_logrotate_and_the_log_directory,
        ),
        common::trial_unless(
            "installed_deb_serves_c_hosts_and_kamailio",
            || {
                if !may_install_system_wide() {
                    return Ok(Some(
                        "installs the .deb system-wide: needs CI=true or \
                         FLATSTORE_TEST_INSTALL_DEB=1"
                            .to_owned(),
                    ));
                }
                let tools = [DEB_TOOLS, &["apt-get", "pkg-config", "sipp", "kamcmd"]].concat();
                common::missing_tools(&tools)
            },
            installed_deb_serves_c_hosts_and_kamailio,
        ),
    ]);
}

/// The crate version, from `Cargo.toml`.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The test program, a host of the installed library.
const HOST_C: &str = "tests/packaging/host.c";
/// The soname cargo-c gives a 0.x library: `lib<name>.so.0.<minor>`.
const SONAME: &str = "libflatstore.so.0.1";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for this test run.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flatstore-pkg-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Run `command`; it must succeed within 10 minutes (else it is killed with its process group).
/// Returns its standard output.
fn run(command: &mut Command, what: &str) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = common::timeout::output_or_fail(command, what, std::time::Duration::from_secs(600));
    assert!(
        status.success(),
        "{what} failed ({status}):\n{}\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).expect("UTF-8 output")
}

/// `flatstore --version` of the binary at `exe`, e.g. "flatstore 0.1.0".
fn cli_version(exe: &Path) -> String {
    run(Command::new(exe).arg("--version"), "flatstore --version")
        .trim_end()
        .to_owned()
}

/// `pkg-config --cflags --libs flatstore`, split into arguments, with `env` set.
fn pkg_config_flags(env: &[(&str, &Path)]) -> Vec<String> {
    let mut pkg_config = Command::new("pkg-config");
    pkg_config.args(["--cflags", "--libs", "flatstore"]);
    for (name, value) in env {
        pkg_config.env(name, value);
    }
    let flags = run(&mut pkg_config, "pkg-config --cflags --libs flatstore");
    flags.split_whitespace().map(str::to_owned).collect()
}

/// Compile `tests/packaging/host.c` into `out` with exactly `flags` (from pkg-config).
fn build_host(flags: &[String], out: &Path) {
    run(
        Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg(manifest_dir().join(HOST_C))
            .arg("-o")
            .arg(out)
            .args(flags),
        "cc host.c $(pkg-config --cflags --libs flatstore)",
    );
}

/// Run the host program (with `library_path` as `LD_LIBRARY_PATH` when given): it must print
/// the crate version and write the one record, byte for byte.
fn assert_host_writes_a_record(host: &Path, library_path: Option<&Path>) {
    let acc = temp_dir(&format!(
        "acc-{}",
        host.file_name().expect("name").display()
    ));
    let mut command = Command::new(host);
    command.arg(format!("flatstore:{}", acc.display()));
    if let Some(dir) = library_path {
        command.env("LD_LIBRARY_PATH", dir);
    }
    let printed = run(&mut command, "host");
    assert_eq!(printed, format!("{VERSION}\n"), "flat_version()");
    assert_eq!(
        fs::read(acc.join("acc_5.log")).expect("read acc_5.log"),
        b"INVITE|200|a%7Cb\n"
    );
    let needed = run(
        Command::new("objdump").arg("-p").arg(host),
        "objdump -p host",
    );
    assert!(
        needed
            .lines()
            .any(|l| l.split_whitespace().eq(["NEEDED", SONAME])),
        "the host links {SONAME}:\n{needed}"
    );
}

/// `Cargo.toml`'s version is what `flatstore --version` and `flat_version()` say.
fn versions_agree() {
    assert_eq!(
        cli_version(&common::flatstore_cli()),
        format!("flatstore {VERSION}")
    );
    let host = common::build_c(&manifest_dir().join(HOST_C), "packaging_host", &[]);
    let acc = temp_dir("version");
    let printed = run(
        Command::new(host).arg(format!("flatstore:{}", acc.display())),
        "host",
    );
    assert_eq!(printed, format!("{VERSION}\n"), "flat_version()");
}

/// `cargo cinstall` into a staging directory: the versioned shared object with its soname and
/// links, `flatstore.h` and `flatstore.pc`; a C program built with only the flags pkg-config
/// gives for that copy links the soname and writes the record.
fn cargo_c_install_serves_pkg_config_users() {
    let dir = temp_dir("cinstall");
    let destdir = dir.join("destdir");
    let (prefix, libdir) = ("/usr/local", "/usr/local/lib");
    run(
        Command::new(env!("CARGO"))
            .args([
                "cinstall",
                "--release",
                "--prefix",
                prefix,
                "--libdir",
                libdir,
            ])
            .arg("--destdir")
            .arg(&destdir)
            .current_dir(manifest_dir()),
        "cargo cinstall",
    );
    let lib = destdir.join(libdir.trim_start_matches('/'));
    let real = lib.join(format!("libflatstore.so.{VERSION}"));
    assert!(real.is_file(), "{} installed", real.display());
    for (link, target) in [
        (SONAME.to_owned(), format!("libflatstore.so.{VERSION}")),
        (
            "libflatstore.so".to_owned(),
            format!("libflatstore.so.{VERSION}"),
        ),
    ] {
        assert_eq!(
            fs::read_link(lib.join(&link)).unwrap_or_else(|e| panic!("{link}: {e}")),
            Path::new(&target),
            "{link}"
        );
    }
    let dynamic = run(Command::new("objdump").arg("-p").arg(&real), "objdump -p");
    assert!(
        dynamic
            .lines()
            .any(|l| l.split_whitespace().eq(["SONAME", SONAME])),
        "soname {SONAME}:\n{dynamic}"
    );
    let header = destdir.join("usr/local/include/flatstore.h");
    assert_eq!(
        fs::read(&header).expect("installed header"),
        fs::read(manifest_dir().join("include/flatstore.h")).expect("checked-in header"),
        "the installed header is the checked-in one"
    );
    let pc = fs::read_to_string(lib.join("pkgconfig/flatstore.pc")).expect("flatstore.pc");
    assert!(pc.contains(&format!("\nVersion: {VERSION}\n")), "{pc}");

    let flags = pkg_config_flags(&[
        ("PKG_CONFIG_PATH", &lib.join("pkgconfig")),
        ("PKG_CONFIG_SYSROOT_DIR", &destdir),
    ]);
    let host = dir.join("host");
    build_host(&flags, &host);
    assert_host_writes_a_record(&host, Some(&lib));
}

/// The package `packaging/deb.sh` builds, built once per test run.
fn deb() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let printed = run(
            Command::new("bash")
                .arg(manifest_dir().join("packaging/deb.sh"))
                .current_dir(manifest_dir()),
            "packaging/deb.sh",
        );
        let deb = manifest_dir().join(printed.lines().last().expect("deb.sh names the package"));
        assert!(deb.is_file(), "{} built", deb.display());
        deb
    })
}

/// What `packaging/deb.sh` runs, and logrotate to run the recipe the package installs.
const DEB_AND_LOGROTATE: &[&str] = &[
    "cargo-cinstall",
    "dpkg-deb",
    "dpkg-shlibdeps",
    "help2man",
    "kamailio",
    "objdump",
    "logrotate",
];

/// What `packaging/deb.sh` runs: [`DEB_AND_LOGROTATE`] without logrotate.
const DEB_TOOLS: &[&str] = match DEB_AND_LOGROTATE.split_last() {
    Some((_, deb)) => deb,
    None => &[],
};

/// Where the package's logrotate recipe is, and the directory it rotates.
const CONFFILE: &str = "/etc/logrotate.d/flatstore";
const LOG_DIR: &str = "/var/log/kamailio/acc";

/// The package holds the module where Kamailio looks for it (not named `db_flatstore.so`), the
/// CLI and its man page, the C library with header and `.pc`, and the examples; its version is
/// the crate's, as is the version of the CLI inside it.
fn deb_holds_module_cli_library_and_examples() {
    let deb = deb();
    let field = |name: &str| {
        run(
            Command::new("dpkg-deb").arg("-f").arg(deb).arg(name),
            "dpkg-deb -f",
        )
        .trim_end()
        .to_owned()
    };
    assert_eq!(field("Version"), format!("{VERSION}-1"));
    assert_eq!(field("Package"), "flatstore");
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c");
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for expected in [
        format!("{MODULES}/flatstore.so"),
        "/usr/bin/flatstore".to_owned(),
        "/usr/share/man/man1/flatstore.1.gz".to_owned(),
        format!("/usr/lib/x86_64-linux-gnu/libflatstore.so.{VERSION}"),
        format!("/usr/lib/x86_64-linux-gnu/{SONAME}"),
        "/usr/lib/x86_64-linux-gnu/libflatstore.so".to_owned(),
        "/usr/lib/x86_64-linux-gnu/pkgconfig/flatstore.pc".to_owned(),
        "/usr/include/flatstore.h".to_owned(),
        "/usr/share/doc/flatstore/examples/logrotate.conf".to_owned(),
        "/usr/share/doc/flatstore/examples/kamailio.cfg".to_owned(),
        "/usr/share/doc/flatstore/copyright".to_owned(),
    ] {
        assert!(
            paths.contains(&format!(".{expected}").as_str()),
            "{expected} missing from the package:\n{listing}"
        );
    }
    assert!(
        !listing.contains("db_flatstore.so"),
        "the stock module's name is left alone"
    );

    let root = temp_dir("deb-x");
    run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root),
        "dpkg-deb -x",
    );
    assert_eq!(
        cli_version(&root.join("usr/bin/flatstore")),
        format!("flatstore {VERSION}")
    );
    let module = fs::read(root.join(&MODULES[1..]).join("flatstore.so")).expect("module");
    let (kamailio_version, _) = installed_strings().expect("kamailio -V");
    assert!(
        module
            .windows(kamailio_version.len() + 1)
            .any(|w| w == format!("{kamailio_version}\0").as_bytes()),
        "the module carries the installed Kamailio's version string {kamailio_version:?}"
    );
    let man = run(
        Command::new("gzip")
            .arg("-dc")
            .arg(root.join("usr/share/man/man1/flatstore.1.gz")),
        "gzip -dc flatstore.1.gz",
    );
    let commands = man
        .split_once(".SH COMMANDS\n")
        .expect("a COMMANDS section")
        .1;
    for command in [
        "rotate", "cat", "verify", "export", "stats", "seal", "cdr", "load",
    ] {
        let help = run(
            Command::new(common::flatstore_cli()).args([command, "--help"]),
            "flatstore COMMAND --help",
        );
        let usage = help
            .lines()
            .find(|l| l.starts_with("Usage: "))
            .expect("usage");
        assert!(
            commands.contains(&format!(".SS {command}\n")) && commands.contains(usage),
            "{command}'s help missing from the man page:\n{man}"
        );
    }
}

/// The recipe from its first line that is no comment: the stanza itself.
fn stanza(recipe: &str) -> &str {
    let at = recipe
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .and_then(|first| recipe.find(first))
        .expect("a stanza");
    &recipe[at..]
}

/// Run the package's maintainer script `script` (from `dpkg-deb -e` into `control`) with
/// `args`, as dpkg would for a root at `root` (`DPKG_ROOT`), with `fake_bin` first on the PATH;
/// its exit status and standard error.
fn maintainer_script(
    control: &Path,
    script: &str,
    args: &[&str],
    root: &Path,
    fake_bin: &Path,
) -> (bool, String) {
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(control.join(script))
        .args(args)
        .env("DPKG_ROOT", root)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `getent` that answers `getent passwd kamailio` with `entry`, or that there is no such
/// user (exit status 2, as getent says it) when `entry` is `None`.
fn fake_getent(bin: &Path, entry: Option<&str>) {
    fs::create_dir_all(bin).expect("create fake bin");
    let answer = match entry {
        Some(entry) => format!("echo '{entry}'"),
        None => "exit 2".to_owned(),
    };
    let script = bin.join("getent");
    fs::write(
        &script,
        format!("#!/bin/sh\n[ \"$1 $2\" = \"passwd kamailio\" ] || exit 3\n{answer}\n"),
    )
    .expect("write fake getent");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The package sets an operator up: `/etc/logrotate.d/flatstore` is a conffile holding the
/// recipe of `examples/logrotate.conf` for the installed paths, harmless (logrotate runs it and
/// does nothing) where the directory does not exist; the postinst makes `/var/log/kamailio/acc`
/// owned by the user kamailio (uid and gid from `getent passwd kamailio`), mode 0750, or left
/// to root (0755) with a note when there is no such user, and leaves a directory that exists
/// alone; the postrm removes it on purge only when empty. The scripts run here under a
/// `DPKG_ROOT` and a stand-in `getent`, so neither root nor a real install is needed.
fn deb_sets_up_logrotate_and_the_log_directory() {
    let deb = deb();
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c");
    let entry = listing
        .lines()
        .find(|l| l.ends_with(&format!(".{CONFFILE}")))
        .unwrap_or_else(|| panic!("{CONFFILE} missing from the package:\n{listing}"));
    assert!(entry.starts_with("-rw-r--r-- root/root "), "{entry}");
    let control = temp_dir("deb-e");
    run(
        Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control),
        "dpkg-deb -e",
    );
    assert_eq!(
        fs::read_to_string(control.join("conffiles")).expect("DEBIAN/conffiles"),
        format!("{CONFFILE}\n")
    );
    for script in ["postinst", "postrm"] {
        let mode = fs::metadata(control.join(script)).expect(script).mode();
        assert_eq!(mode & 0o777, 0o755, "{script} mode {mode:o}");
    }
    let md5sums = fs::read_to_string(control.join("md5sums")).expect("md5sums");
    assert!(!md5sums.contains("etc/"), "conffiles are not in md5sums");

    // The recipe: the example's stanza, for the installed paths, with an installed note.
    let root = temp_dir("deb-x-etc");
    run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root),
        "dpkg-deb -x",
    );
    let recipe = fs::read_to_string(root.join(&CONFFILE[1..])).expect("the recipe");
    let example =
        fs::read_to_string(manifest_dir().join("examples/logrotate.conf")).expect("example");
    assert_eq!(stanza(&recipe), stanza(&example), "{recipe}");
    for needle in [
        &format!("{LOG_DIR}/*.log {{"),
        "    missingok\n",
        "    nocreate\n",
        "    sharedscripts\n",
        &format!("/usr/bin/flatstore rotate {LOG_DIR} --wait --timeout 30\n"),
        "# Installed by the flatstore package as a conffile",
    ] {
        assert!(recipe.contains(needle), "{needle:?} not in:\n{recipe}");
    }
    assert!(!recipe.contains("Install by hand"), "{recipe}");

    // Harmless where the directory does not exist: logrotate runs it, rotates nothing and runs
    // no postrotate (which would fail here: /bin/false).
    let scratch = temp_dir("logrotate-missing");
    let nowhere = scratch.join("no/such/dir");
    let conf = scratch.join("flatstore");
    fs::write(
        &conf,
        recipe
            .replace(LOG_DIR, &nowhere.display().to_string())
            .replace("/usr/bin/flatstore", "/bin/false"),
    )
    .expect("write recipe");
    let out = common::timeout::output_or_fail(
        Command::new("logrotate")
            .arg("--force")
            .arg("--state")
            .arg(scratch.join("state"))
            .arg(&conf),
        "logrotate",
        std::time::Duration::from_secs(60),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "logrotate on a missing directory: {out:?}"
    );
    assert!(!nowhere.exists());

    // The postinst, with a user kamailio: owned by it (here the test's own uid and gid, which
    // need no privilege to chown to), mode 0750; the parent made too.
    let sandbox = temp_dir("postinst");
    let me = fs::metadata(&sandbox).expect("stat sandbox");
    let (uid, gid) = (me.uid(), me.gid());
    let with_user = sandbox.join("with-user");
    let bin = sandbox.join("bin-with-user");
    fake_getent(
        &bin,
        Some(&format!(
            "kamailio:x:{uid}:{gid}:Kamailio SIP Server,,,:/var/run/kamailio:/bin/false"
        )),
    );
    let (ok, stderr) = maintainer_script(&control, "postinst", &["configure"], &with_user, &bin);
    assert!(ok && stderr.is_empty(), "postinst configure: {stderr}");
    let dir = with_user.join(&LOG_DIR[1..]);
    let made = fs::metadata(&dir).expect("the log directory");
    assert!(made.is_dir());
    assert_eq!((made.uid(), made.gid()), (uid, gid));
    assert_eq!(made.mode() & 0o7777, 0o750);
    // An upgrade (configure with the old version) leaves it as it is, changed or not.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    let (ok, stderr) = maintainer_script(
        &control,
        "postinst",
        &["configure", "0.0.9-1"],
        &with_user,
        &bin,
    );
    assert!(ok && stderr.is_empty(), "postinst on upgrade: {stderr}");
    assert_eq!(fs::metadata(&dir).expect("stat").mode() & 0o7777, 0o700);
    // Purge: kept while it holds anything (records are never deleted), removed when empty.
    fs::write(dir.join("acc_5.log"), "INVITE|...\n").expect("a record");
    let (ok, _) = maintainer_script(&control, "postrm", &["purge"], &with_user, &bin);
    assert!(
        ok && dir.join("acc_5.log").exists(),
        "a record survives a purge"
    );
    fs::remove_file(dir.join("acc_5.log")).expect("remove");
    let (ok, _) = maintainer_script(&control, "postrm", &["remove"], &with_user, &bin);
    assert!(ok && dir.exists(), "remove keeps the directory");
    let (ok, _) = maintainer_script(&control, "postrm", &["purge"], &with_user, &bin);
    assert!(ok && !dir.exists(), "purge removes the empty directory");

    // Without a user kamailio: made all the same, left to whoever runs dpkg (root), with a note.
    let no_user = sandbox.join("no-user");
    let bin = sandbox.join("bin-no-user");
    fake_getent(&bin, None);
    let (ok, stderr) = maintainer_script(&control, "postinst", &["configure"], &no_user, &bin);
    assert!(ok, "postinst without the user fails: {stderr}");
    assert!(
        stderr.contains(&format!(
            "there is no user kamailio (is Kamailio installed?): {LOG_DIR} is left to root"
        )),
        "{stderr}"
    );
    let made = fs::metadata(no_user.join(&LOG_DIR[1..])).expect("the log directory");
    assert_eq!((made.uid(), made.mode() & 0o7777), (uid, 0o755));
    // Nothing but configure makes it.
    let other = sandbox.join("abort");
    let (ok, _) = maintainer_script(
        &control,
        "postinst",
        &["abort-upgrade", "0.1.0-1"],
        &other,
        &bin,
    );
    assert!(ok && !other.exists(), "abort-upgrade makes nothing");
}

/// Installing system-wide is only done where asked: `CI=true` (CI's machine is there to be
/// changed) or `FLATSTORE_TEST_INSTALL_DEB=1`. Anything else skips the test (reported as
/// ignored, with the reason).
fn may_install_system_wide() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
        || std::env::var("FLATSTORE_TEST_INSTALL_DEB").as_deref() == Ok("1")
}

/// The package installed with apt for the life of this value, purged when it is dropped.
struct Installed;

impl Installed {
    fn new(deb: &Path) -> Installed {
        run(
            Command::new("apt-get")
                .args(["install", "-y", "--reinstall", "--no-install-recommends"])
                .arg(deb)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install ./flatstore_*.deb",
        );
        Installed
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("apt-get")
            .args(["purge", "-y", "flatstore"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
    }
}

/// `apt-get install ./flatstore_*.deb`, then as an operator would: `flatstore` is on the PATH;
/// the logrotate recipe is in `/etc/logrotate.d/` and logrotate reads it; the log directory
/// exists, owned by the user kamailio when the package made it; a C program built with the
/// system's `pkg-config --cflags --libs flatstore` runs with no library path; and
/// `examples/kamailio.cfg` loading the module by its installed name `flatstore.so` (from
/// Kamailio's module directory) accounts every SIPp call once.
fn installed_deb_serves_c_hosts_and_kamailio() {
    let log_dir_was_there = Path::new(LOG_DIR).exists();
    let _installed = Installed::new(deb());
    assert!(Path::new(CONFFILE).is_file(), "{CONFFILE} installed");
    run(
        Command::new("logrotate").arg("--debug").arg(CONFFILE),
        "logrotate --debug /etc/logrotate.d/flatstore",
    );
    let log_dir = fs::metadata(LOG_DIR).expect("the log directory");
    assert!(log_dir.is_dir());
    let kamailio = run(
        Command::new("sh").args(["-c", "getent passwd kamailio || true"]),
        "getent passwd kamailio",
    );
    if !log_dir_was_there && let Some(uid) = kamailio.split(':').nth(2) {
        assert_eq!(
            log_dir.uid().to_string(),
            uid,
            "{LOG_DIR} owned by kamailio"
        );
    }
    let on_path = run(
        Command::new("sh").args(["-c", "command -v flatstore"]),
        "command -v flatstore",
    );
    assert_eq!(on_path.trim_end(), "/usr/bin/flatstore");
    assert_eq!(
        cli_version(Path::new("/usr/bin/flatstore")),
        format!("flatstore {VERSION}")
    );
    let host = temp_dir("installed").join("host");
    build_host(&pkg_config_flags(&[]), &host);
    assert_host_writes_a_record(&host, None);

    let started = epoch_now();
    let calls = 300;
    let lines = account_calls("flatstore.so", &[], "installed-deb", calls, 150);
    assert_every_call_accounted_once(&lines, calls, started);
}
