//! A connection's helper thread, started lazily in the process that writes (after any fork)
//! with every signal blocked, so the host's signal handling is unchanged: it writes out
//! buffers at least once per `flush_interval` (`flush=0`), seals files by age
//! (`rotate_seconds`), syncs them (`fsync=interval`), and syncs the files writers have left
//! (`fsync` other than `never`, [`Handoff`]). It holds a buffer's lock only to write or
//! rename, never across a sync, and it syncs outside the fork gate: neither an insert nor a
//! `fork()` waits for the disk. Buffers left at process exit, or when a termination signal
//! arrives, are written by an `atexit` hook and a termination handler; a forked child never
//! writes what its parent buffered.
//!
//! Neither end of the thread's life is waited for without a limit: the insert that starts it
//! returns once the thread runs its own code (past the thread library's and the allocator's
//! start-up, so that a `fork()` right after it never catches the thread holding one of their
//! locks), or after [`START_LIMIT`] with a warning; [`Housekeeper::stop`] waits for it at most
//! [`STOP_LIMIT`], and a thread that panicked is an error, not a hang.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError, Weak};
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
    life: Life,
}

/// How long the insert that starts the helper thread waits for it to run its own code; a
/// thread not started by then is reported and waited for no longer (it starts when it can).
pub(crate) const START_LIMIT: Duration = if cfg!(test) {
    Duration::from_secs(1)
} else {
    Duration::from_secs(10)
};

/// How long [`Housekeeper::stop`] waits for the thread's last tick (a write and the syncs its
/// chores call for); a thread still busy then is reported and left behind.
pub(crate) const STOP_LIMIT: Duration = if cfg!(test) {
    Duration::from_secs(2)
} else {
    Duration::from_secs(30)
};

/// Where the helper thread is in its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Spawned; its own code has not run yet.
    #[default]
    Starting,
    /// Running its own code: its start-up is over.
    Running,
    /// Its body returned or unwound.
    Ended,
}

/// The helper thread's [`Phase`], told to the threads that start and stop it. Lock and
/// condition variable only (futexes): telling allocates nothing.
#[derive(Debug, Default)]
struct Life {
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Life {
    fn enter(&self, phase: Phase) {
        let mut now = lock(&self.phase);
        *now = phase;
        self.changed.notify_all();
    }

    /// Wait up to `limit` for the thread to reach `phase` (or a later one); the phase it is in.
    fn wait_for(&self, phase: Phase, limit: Duration) -> Phase {
        let now = lock(&self.phase);
        let (now, _) = self
            .changed
            .wait_timeout_while(now, limit, |now| *now < phase)
            .unwrap_or_else(PoisonError::into_inner);
        *now
    }
}

/// Enters [`Phase::Ended`] when dropped: when the thread's body returns, and when it unwinds.
struct EndsLife<'a>(&'a Life);

impl Drop for EndsLife<'_> {
    fn drop(&mut self) {
        self.0.enter(Phase::Ended);
    }
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
    /// Start the thread, with a writer slot of its own in `control`, and wait until it runs
    /// its own code (at most [`START_LIMIT`]; then a warning): a `fork()` after this returns
    /// never catches the thread in its start-up.
    pub(crate) fn start(chores: Chores, control: &Arc<Control>) -> Result<Housekeeper> {
        let watched = Arc::new(Watched {
            sinks: Mutex::default(),
            left: Arc::default(),
            stop: AtomicBool::new(false),
            control: Arc::clone(control),
            life: Life::default(),
        });
        let slot = control.claim_slot()?;
        ForkGate::install();
        let for_thread = Arc::clone(&watched);
        #[cfg(test)]
        let start_up = tests::START_UP.get();
        let thread = spawn_without_signals(move || {
            let _ends = EndsLife(&for_thread.life);
            #[cfg(test)]
            if let Some(start_up) = start_up {
                start_up();
            }
            let mut last_sync = Instant::now();
            // From here to its first tick the thread takes no lock but this one, and
            // allocates nothing.
            for_thread.life.enter(Phase::Running);
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
        if watched.life.wait_for(Phase::Running, START_LIMIT) == Phase::Starting {
            report(
                Level::Warning,
                format_args!(
                    "the helper thread has not started within {} s (is the machine \
                     overloaded?); not waiting for it any longer",
                    START_LIMIT.as_secs()
                ),
            );
        }
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

    /// Stop the thread after a last tick and wait for it, at most [`STOP_LIMIT`]: a thread
    /// still busy (or never started) then is reported and left behind. A thread that panicked
    /// is an [`Error::Panic`].
    pub(crate) fn stop(self) -> Result<()> {
        self.watched.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        match self.watched.life.wait_for(Phase::Ended, STOP_LIMIT) {
            // Past `Ended` the thread only unwinds its runtime: the join is short.
            Phase::Ended => self.thread.join().map_err(|payload| Error::Panic {
                message: format!("helper thread: {}", panic_message(payload.as_ref())),
            }),
            phase => {
                report(
                    Level::Error,
                    format_args!(
                        "the helper thread has not {} within {} s (a write or a sync waiting for \
                         the disk?); closing without it",
                        if phase == Phase::Starting {
                            "started"
                        } else {
                            "stopped"
                        },
                        STOP_LIMIT.as_secs()
                    ),
                );
                Ok(())
            }
        }
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

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
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

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::path::PathBuf;
    use std::sync::mpsc;

    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, Pid, fork};

    use super::*;

    thread_local! {
        /// Run by the helper threads this test thread starts, before their own code: a stand-in
        /// for the thread library's and the allocator's start-up.
        pub(crate) static START_UP: Cell<Option<fn()>> = const { Cell::new(None) };
    }

    /// A lock taken by the helper thread's start-up and held a while, as ASan's allocator
    /// takes its own there (and, unlike glibc's malloc, not around `fork()`).
    static ALLOCATOR: Mutex<()> = Mutex::new(());

    fn slow_start_up() {
        let _held = lock(&ALLOCATOR);
        thread::sleep(Duration::from_millis(50));
    }

    fn scratch(name: &str) -> (PathBuf, Arc<Control>) {
        let dir = std::env::temp_dir().join(format!("flatstore-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let control = Control::open(&dir, None).expect("control file");
        (dir, control)
    }

    const BUFFERED: Chores = Chores {
        drain_every: Some(Duration::from_secs(60)),
        seal_after: None,
        sync_every: None,
        sync_left: false,
    };

    /// The exit status of child `pid`, or `None` if it was still running after `limit` (it is
    /// then killed and reaped).
    fn exit_within(pid: Pid, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
                WaitStatus::Exited(_, code) => return Some(code),
                WaitStatus::StillAlive => thread::sleep(Duration::from_millis(1)),
                other => panic!("child {pid}: {other:?}"),
            }
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        None
    }

    /// A child forked just after `start` returns (5 ms: well inside a start-up of 50 ms)
    /// never finds a lock held by the helper thread's start-up: it would wait for it for ever
    /// (no thread of the child releases it).
    #[test]
    #[allow(unsafe_code)]
    fn a_fork_right_after_start_never_catches_the_thread_in_its_start_up() {
        let (dir, control) = scratch("start-up");
        START_UP.set(Some(slow_start_up));
        let mut caught = 0;
        for _ in 0..20 {
            let keeper = Housekeeper::start(BUFFERED, &control).expect("start");
            thread::sleep(Duration::from_millis(5));
            // SAFETY: the child only tries a lock, sleeps and leaves with _exit.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let free = (0..200).any(|_| {
                        let free = ALLOCATOR.try_lock().is_ok();
                        thread::sleep(Duration::from_millis(1));
                        free
                    });
                    // SAFETY: ends the child at once, running nothing of the parent's.
                    unsafe { libc::_exit(if free { 0 } else { 1 }) }
                }
                ForkResult::Parent { child } => {
                    caught += usize::from(exit_within(child, Duration::from_secs(10)) != Some(0));
                }
            }
            keeper.stop().expect("stop");
        }
        START_UP.set(None);
        assert_eq!(
            caught, 0,
            "of 20 forks, {caught} caught the start-up holding its lock"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A helper thread that panics: stopping it is an error naming the panic, not a hang.
    #[test]
    fn a_helper_thread_that_panicked_is_an_error_at_stop() {
        let (dir, control) = scratch("panicked");
        START_UP.set(Some(|| panic!("the helper thread's test panic")));
        let keeper = Housekeeper::start(BUFFERED, &control).expect("start");
        START_UP.set(None);
        let error = keeper.stop().expect_err("a panic is an error");
        assert!(matches!(error, Error::Panic { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("helper thread: the helper thread's test panic"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Released by the test once it has seen that nothing waits for the stuck thread for ever.
    static STUCK: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);

    /// A helper thread stuck in its start-up holds up the insert that started it for
    /// [`START_LIMIT`] and the close for [`STOP_LIMIT`], no longer.
    #[test]
    fn a_helper_thread_stuck_in_its_start_up_holds_nothing_up_for_ever() {
        let (dir, control) = scratch("stuck");
        let (release, stuck) = mpsc::channel();
        *lock(&STUCK) = Some(stuck);
        START_UP.set(Some(|| {
            let stuck = lock(&STUCK).take().expect("one stuck thread");
            let _ = stuck.recv();
        }));
        let started = Instant::now();
        let keeper = Housekeeper::start(BUFFERED, &control).expect("start");
        START_UP.set(None);
        let start_took = started.elapsed();
        let stopping = Instant::now();
        keeper
            .stop()
            .expect("a thread left behind is reported, not an error");
        let stop_took = stopping.elapsed();
        release.send(()).expect("release the stuck thread");
        assert!(
            start_took >= START_LIMIT && start_took < START_LIMIT * 3,
            "start took {start_took:?}"
        );
        assert!(
            stop_took >= STOP_LIMIT && stop_took < STOP_LIMIT * 3,
            "stop took {stop_took:?}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
