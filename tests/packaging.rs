//! Packaging as an operator meets it: the C library installed by cargo-c and used through
//! nothing but `pkg-config`, the Debian package of `packaging/deb.sh` (its files, its version),
//! and, when allowed to install system-wide, that package installed with apt and used by a C
//! program and by a real Kamailio under SIPp traffic.
//!
//! The version is one: `Cargo.toml`, `flatstore --version`, `flat_version()` and the package.

mod common;

use std::fs;
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

/// Run `command`; it must succeed. Returns its standard output.
fn run(command: &mut Command, what: &str) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
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

/// What `packaging/deb.sh` runs.
const DEB_TOOLS: &[&str] = &[
    "cargo-cinstall",
    "dpkg-deb",
    "dpkg-shlibdeps",
    "help2man",
    "kamailio",
    "objdump",
];

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
    for command in ["rotate", "cat", "verify", "export", "stats", "seal"] {
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
/// a C program built with the system's `pkg-config --cflags --libs flatstore` runs with no
/// library path; and `examples/kamailio.cfg` loading the module by its installed name
/// `flatstore.so` (from Kamailio's module directory) accounts every SIPp call once.
fn installed_deb_serves_c_hosts_and_kamailio() {
    let _installed = Installed::new(deb());
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
