//! Rotation triggers: how a rotation is requested (from the host, from the command line, by
//! signal), and how a rotator waits for writers. When a writer reopens is the writer's policy
//! (`writer::policy`); the generation counter lives in the directory's control file
//! ([`super::control`]), shared by every writer of the directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::report::{Level, report};
use crate::shared::control::{Control, WriterState};
use crate::shared::directories;
use crate::sys::mutex::lock;
use crate::sys::signals::on_signal;

/// Control files mapped by this process, one per directory, with the signal hooked for it.
struct Mapped {
    dir: PathBuf,
    control: Weak<Control>,
    signal: Option<i32>,
}

static MAPPED: Mutex<Vec<Mapped>> = Mutex::new(Vec::new());

/// The control file of `dir`, shared by every connection of this process to that directory.
/// With `signal`, that signal (delivered to any process that inherited this mapping) requests a
/// rotation of the directory; it is hooked once per directory, chained with the host's handler.
pub(crate) fn control_for(
    dir: &Path,
    mode: Option<u32>,
    signal: Option<i32>,
) -> Result<Arc<Control>> {
    let mut mapped = lock(&MAPPED);
    mapped.retain(|m| m.control.strong_count() > 0);
    let existing = mapped
        .iter_mut()
        .find(|m| m.dir == dir)
        .and_then(|m| m.control.upgrade().map(|c| (m, c)));
    let (entry, control) = match existing {
        Some(found) => found,
        None => {
            let control = Control::open(dir, mode)?;
            directories::register(dir)?;
            warn_if_others_can_write(dir);
            mapped.push(Mapped {
                dir: dir.to_owned(),
                control: Arc::downgrade(&control),
                signal: None,
            });
            let entry = mapped
                .last_mut()
                .unwrap_or_else(|| unreachable!("just pushed"));
            (entry, control)
        }
    };
    if let Some(signal) = signal.filter(|s| entry.signal != Some(*s)) {
        let for_handler = Arc::clone(&control);
        on_signal(signal, move || {
            for_handler.request_rotation();
        })
        .map_err(|e| Error::param("rotate_signal", format!("cannot hook signal {signal}: {e}")))?;
        entry.signal = Some(signal);
    }
    Ok(control)
}

/// A log directory that other users can write to lets them plant files where the writers
/// will look (symlinks and FIFOs are refused, but the names are theirs to take): say so (a
/// warning, [`crate::report`]), once per directory and process.
fn warn_if_others_can_write(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o002 != 0
    {
        report(
            Level::Warning,
            format_args!(
                "log directory {} is writable by other users (mode {:o}); use a directory \
                 only the proxy's user can write",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
        );
    }
}

/// `flat_rotate()`: request a rotation of every directory this process writes to, and of every
/// directory in the host's shared list ([`directories`]); every process of the host reopens
/// before its next write. Returns how many directories were asked; a listed directory whose
/// control file cannot be opened is reported after the others were asked.
pub(crate) fn request_everywhere() -> Result<usize> {
    let (asked, failure) = ask_everywhere();
    failure.map(|()| asked.len())
}

/// [`request_everywhere`], then wait (at most `timeout` in all) until no live writer of an
/// asked directory can still append to a file it had open before the request: when this
/// returns `Ok`, files renamed before the call receive nothing more. Returns how many
/// directories were asked.
pub(crate) fn request_everywhere_and_wait(timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    let (asked, failure) = ask_everywhere();
    for (control, target) in &asked {
        let left = deadline.saturating_duration_since(Instant::now());
        wait_for_writers(control, *target, left)?;
    }
    failure.map(|()| asked.len())
}

/// Ask every directory this process has mapped and every listed one: each asked directory's
/// control file with the generation the request made, and the first failure to open a listed
/// one (after the others were asked).
fn ask_everywhere() -> (Vec<(Arc<Control>, u64)>, Result<()>) {
    let mut asked: Vec<(PathBuf, Arc<Control>, u64)> = Vec::new();
    for m in lock(&MAPPED).iter() {
        if let Some(control) = m.control.upgrade() {
            let target = control.request_rotation();
            asked.push((m.dir.clone(), control, target));
        }
    }
    let mut failure = Ok(());
    for dir in directories::all() {
        if asked.iter().any(|(d, _, _)| *d == dir) {
            continue;
        }
        match Control::open_existing(&dir) {
            Ok(control) => {
                let target = control.request_rotation();
                asked.push((dir, control, target));
            }
            Err(e) => failure = failure.and(Err(e)),
        }
    }
    let asked = asked.into_iter().map(|(_, c, t)| (c, t)).collect();
    (asked, failure)
}

/// Why a writer still holds up a rotation.
fn holding_up(writer: &WriterState, target: u64) -> Option<String> {
    match (writer.writing, writer.stuck) {
        (_, Some(g)) if g <= target => Some(format!("pid {} cannot reopen its files", writer.pid)),
        (Some(None), _) => Some(format!("pid {} is starting a write", writer.pid)),
        (Some(Some(g)), _) if g < target => Some(format!(
            "pid {} is still writing to a file of generation {g}",
            writer.pid
        )),
        _ => None,
    }
}

/// Wait until no live writer of `control`'s directory can still append to a file opened
/// before generation `target`: writes in flight under an older generation have finished (idle
/// writers reopen before their next write; dead ones are skipped). Fails after `timeout`,
/// naming the writers that held it up.
pub fn wait_for_writers(control: &Control, target: u64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        let blocking: Vec<String> = control
            .live_writers()
            .iter()
            .filter_map(|w| holding_up(w, target))
            .collect();
        if blocking.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::RotateTimeout {
                path: control.path().to_owned(),
                waited: timeout,
                blocking: blocking.join("; "),
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
