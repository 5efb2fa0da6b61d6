//! A connection's helper thread, started lazily in the process that writes (after any fork)
//! with every signal blocked, so the host's signal handling is unchanged: it writes out
//! buffers at least once per `flush_interval` (`flush=0`), seals files by age
//! (`rotate_seconds`), syncs them (`fsync=interval`), and syncs the files writers have left
//! (`fsync` other than `never`, [`Handoff`]). It holds a buffer's lock only to write or
//! rename, never across a sync, and it syncs outside the fork gate: neither an insert nor a
//! `fork()` waits for the disk. Buffers left at process exit, or when a termination signal
//! arrives, are written by an `atexit` hook and a termination handler; a forked child never
//! writes what its parent buffered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use crate::error::{Error, Result};
use crate::report::{Level, report};
use crate::shared::control::{Control, Slot};
use crate::shared::process;
use crate::sys::fork::{around_fork, at_exit};
use crate::sys::mutex::lock;
use crate::sys::signals::before_termination;
use crate::writer::buffer::SharedBuffer;
use crate::writer::handoff::{Handoff, Left};
use crate::writer::log_file::LogFile;

#[derive(Debug)]
struct Watched {
    sinks: Mutex<Vec<SharedBuffer>>,
    left: Arc<Handoff>,
    stop: AtomicBool,
    control: Arc<Control>,
}

impl Watched {
    /// Write out every buffer; a failure leaves the bytes for the next attempt.
    fn drain_all(&self, slot: &Slot) {
        for buffer in lock(&self.sinks).iter() {
            // A failed write keeps its bytes; the inserting thread reports it when it next
            // needs the room.
            let _ = lock(buffer).drain(slot);
        }
    }

    /// Seal every file whose first record is `age` old (a rename; a sync it calls for is
    /// handed to [`Watched::left`]).
    fn seal_older(&self, age: Duration) {
        for buffer in lock(&self.sinks).iter() {
            lock(buffer).file().seal_if_older(age);
        }
    }

    /// A second descriptor of every file written since its last sync, to sync without
    /// holding up its writer.
    fn take_unsynced(&self) -> Vec<LogFile> {
        let sinks: Vec<SharedBuffer> = lock(&self.sinks).clone();
        sinks
            .iter()
            .filter_map(|buffer| lock(buffer).file().take_unsynced())
            .collect()
    }

    /// Sync `unsynced` and the files writers `left`, holding no lock (the caller is outside
    /// the fork gate too); then report what failed, inside the gate.
    fn sync(unsynced: Vec<LogFile>, left: Left<'_>) {
        let mut failed: Vec<String> = unsynced
            .iter()
            .filter_map(|file| file.sync().err())
            .map(|e| e.to_string())
            .collect();
        failed.extend(left.finish().iter().map(ToString::to_string));
        if !failed.is_empty() {
            let _tick = ForkGate::enter();
            for message in failed {
                report(Level::Error, format_args!("{message}"));
            }
        }
    }
}

/// What a connection's helper thread does at each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Chores {
    /// Write out the buffers at least this often (`flush=0`).
    pub(crate) drain_every: Option<Duration>,
    /// Seal files whose first record is this old (`rotate_seconds`), also for an idle writer.
    pub(crate) seal_after: Option<Duration>,
    /// Sync files with unsynced data this often (`fsync=interval`).
    pub(crate) sync_every: Option<Duration>,
    /// Sync the files writers leave, as soon as they leave them (`fsync` other than `never`).
    pub(crate) sync_left: bool,
}

/// Bounds of the tick that checks the age of files: a tenth of the limit, within these.
const SEAL_TICK_MIN: Duration = Duration::from_millis(10);
const SEAL_TICK_MAX: Duration = Duration::from_secs(1);

impl Chores {
    /// True when there is nothing to do: no thread is needed.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Chores::default()
    }

    /// True when the thread looks after the buffers (writes, seals or syncs their files), so
    /// that they must be shared with it; a thread that only syncs left files needs none.
    pub(crate) fn watches_buffers(&self) -> bool {
        Chores {
            sync_left: false,
            ..*self
        } != Chores::default()
    }

    /// Time between ticks: short enough for every chore. A file is sealed at most one tick
    /// after it reached its age limit.
    pub(crate) fn tick(&self) -> Duration {
        let seal_tick = self
            .seal_after
            .map(|age| (age / 10).clamp(SEAL_TICK_MIN, SEAL_TICK_MAX));
        [self.drain_every, seal_tick, self.sync_every]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(SEAL_TICK_MAX)
    }
}

/// The helper thread of one connection in one process: writes out buffers, seals files by
/// age, syncs files, each as its [`Chores`] say (a file left is synced at once: its writer
/// wakes the thread).
#[derive(Debug)]
pub(crate) struct Housekeeper {
    watched: Arc<Watched>,
    thread: JoinHandle<()>,
}

impl Housekeeper {
    /// Start the thread, with a writer slot of its own in `control`.
    pub(crate) fn start(chores: Chores, control: &Arc<Control>) -> Result<Housekeeper> {
        let watched = Arc::new(Watched {
            sinks: Mutex::default(),
            left: Arc::default(),
            stop: AtomicBool::new(false),
            control: Arc::clone(control),
        });
        let slot = control.claim_slot()?;
        ForkGate::install();
        let for_thread = Arc::clone(&watched);
        let thread = spawn_without_signals(move || {
            let mut last_sync = Instant::now();
            loop {
                thread::park_timeout(chores.tick());
                let stop = for_thread.stop.load(Ordering::Acquire);
                let (unsynced, left) = {
                    let _tick = ForkGate::enter();
                    for_thread.drain_all(&slot);
                    if let Some(age) = chores.seal_after {
                        for_thread.seal_older(age);
                    }
                    let unsynced = match chores.sync_every {
                        Some(every) if last_sync.elapsed() >= every => {
                            last_sync = Instant::now();
                            for_thread.take_unsynced()
                        }
                        _ => Vec::new(),
                    };
                    (unsynced, for_thread.left.take())
                };
                Watched::sync(unsynced, left);
                if stop {
                    break;
                }
            }
        })?;
        watched.left.set_helper(thread.thread().clone());
        register_for_exit(&watched);
        Ok(Housekeeper { watched, thread })
    }

    /// Where the connection's writers leave files to be synced.
    pub(crate) fn handoff(&self) -> &Arc<Handoff> {
        &self.watched.left
    }

    /// Look after `buffer` at every tick from now on.
    pub(crate) fn watch(&self, buffer: &SharedBuffer) {
        lock(&self.watched.sinks).push(Arc::clone(buffer));
    }

    /// Stop the thread after a last drain and wait for it.
    pub(crate) fn stop(self) {
        self.watched.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        // The thread body cannot panic past `drain_all`, which ignores write errors.
        let _ = self.thread.join();
    }

    /// In a forked child: forget the parent's thread and buffers without touching them (the
    /// thread does not exist here; its locks may be held forever; the parent writes the bytes).
    pub(crate) fn abandon(self) {
        process::keep_inherited(self);
    }
}

/// Keeps `fork()` out of the housekeepers' ticks: the host's `fork()` waits until no housekeeper of
/// this process is draining, and no tick starts until it returns. A child is then never
/// forked while a housekeeper holds a lock (ours, or the memory allocator's) that no thread of the
/// child would ever release.
struct ForkGate;

static FORKING: AtomicBool = AtomicBool::new(false);
static TICKING: AtomicUsize = AtomicUsize::new(0);
static FORK_GATE: Once = Once::new();

impl ForkGate {
    /// Wait until no fork is in progress, then hold the gate open for one tick.
    fn enter() -> ForkGate {
        loop {
            while FORKING.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_micros(100));
            }
            TICKING.fetch_add(1, Ordering::SeqCst);
            if !FORKING.load(Ordering::SeqCst) {
                return ForkGate;
            }
            TICKING.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn install() {
        FORK_GATE.call_once(|| around_fork(before_fork, after_fork_in_parent, after_fork_in_child));
    }
}

impl Drop for ForkGate {
    fn drop(&mut self) {
        TICKING.fetch_sub(1, Ordering::SeqCst);
    }
}

extern "C" fn before_fork() {
    FORKING.store(true, Ordering::SeqCst);
    while TICKING.load(Ordering::SeqCst) > 0 {
        thread::yield_now();
    }
}

extern "C" fn after_fork_in_parent() {
    FORKING.store(false, Ordering::SeqCst);
}

extern "C" fn after_fork_in_child() {
    // No housekeeper of the parent exists here, not even one that was just looking at the gate.
    TICKING.store(0, Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
}

fn spawn_without_signals(body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    let mut previous = SigSet::empty();
    let blocked = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    );
    let spawned = thread::Builder::new()
        .name("flatstore-flush".into())
        .spawn(body);
    if blocked.is_ok() {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    }
    spawned.map_err(|source| Error::Thread { source })
}

/// Buffers to drain when the process exits: `(fork epoch, buffers)` of live connections.
static AT_EXIT: Mutex<Vec<(u64, Weak<Watched>)>> = Mutex::new(Vec::new());
static AT_EXIT_HOOK: Once = Once::new();

fn register_for_exit(watched: &Arc<Watched>) {
    AT_EXIT_HOOK.call_once(|| at_exit(drain_at_exit));
    // Without the hook, a host that exits from its SIGTERM handler loses what is buffered, as
    // the C module does; the housekeeper still bounds how much.
    let _ = before_termination(drain_now);
    let mut list = lock(&AT_EXIT);
    list.retain(|(_, w)| w.strong_count() > 0);
    list.push((process::epoch(), Arc::downgrade(watched)));
}

extern "C" fn drain_at_exit() {
    drain_now();
}

/// Write out every buffer of this process (not those inherited from a parent), each under a
/// writer slot of its own, and finish the seals still pending; used at exit and on a
/// termination signal.
fn drain_now() {
    // Nothing may unwind out of an exit hook.
    let _ = std::panic::catch_unwind(|| {
        let Ok(list) = AT_EXIT.try_lock() else {
            return;
        };
        let epoch = process::epoch();
        for (_, watched) in list.iter().filter(|(e, _)| *e == epoch) {
            if let Some(watched) = watched.upgrade()
                && let Ok(slot) = watched.control.claim_slot()
            {
                for buffer in lock(&watched.sinks).iter() {
                    lock(buffer).drain_or_report(&slot);
                }
                for unfinished in watched.left.take().finish() {
                    report(Level::Error, format_args!("{unfinished}"));
                }
            }
        }
    });
}
