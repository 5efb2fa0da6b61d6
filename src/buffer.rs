//! Buffered mode (`flush=0`): whole lines collected per file, written by the inserting thread
//! when the buffer fills and by a per-connection helper thread (the [`Housekeeper`]) at least
//! once per interval. The same thread seals files by age (`rotate_seconds`) and syncs them
//! (`fsync=interval`), at `flush=1` too.
//!
//! The helper thread is started lazily in the process that writes (after any fork), with every
//! signal blocked so the host's signal handling is unchanged. Buffers left at process exit are
//! written by an `atexit` hook; a forked child never writes what its parent buffered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

use crate::control::{Control, Slot};
use crate::error::{Error, Result};
use crate::ffi::sys;
use crate::format::LineBuf;
use crate::process;
use crate::table::TableFile;

/// Whole lines waiting to be written to one table's file.
#[derive(Debug)]
pub struct Pending {
    table: TableFile,
    bytes: LineBuf,
    capacity: usize,
}

/// Storage kept beyond the buffer's capacity: the record being formatted when the buffer is
/// nearly full overflows into it (it is then written out), so that it need not grow.
const LINE_ROOM: usize = 4096;

/// A [`Pending`] shared between its connection and the connection's housekeeper.
pub type SharedPending = Arc<Mutex<Pending>>;

/// Lock, ignoring poisoning: every critical section leaves the buffer holding whole lines.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pending {
    /// An empty buffer of `capacity` bytes in front of `table`.
    pub fn new(table: TableFile, capacity: usize) -> Pending {
        Pending {
            table,
            bytes: LineBuf::with_room(capacity + LINE_ROOM),
            capacity,
        }
    }

    /// Add one whole line, which `encode` appends to the buffer (leaving it as it was when it
    /// fails). When it does not fit, what was buffered before it is written first; a line
    /// larger than the whole buffer is written on its own. On error the line is not taken.
    #[inline]
    pub fn push_with(
        &mut self,
        slot: &Slot,
        encode: impl FnOnce(&mut LineBuf) -> Result<()>,
    ) -> Result<()> {
        let start = self.bytes.len();
        let result = match encode(&mut self.bytes) {
            Ok(()) if self.bytes.len() <= self.capacity => return Ok(()),
            Ok(()) => self.overflow(start, slot),
            Err(e) => Err(e),
        };
        // A line longer than the room kept made the storage grow: give that back.
        self.bytes.shrink_to(self.capacity + LINE_ROOM);
        result
    }

    /// The line that starts at `start` does not fit: write what is before it, then the line
    /// itself when it is larger than the whole buffer.
    fn overflow(&mut self, start: usize, slot: &Slot) -> Result<()> {
        let line = self.bytes.len() - start;
        if let Err(e) = self.write_out(start, slot) {
            self.bytes.truncate(self.bytes.len() - line);
            return Err(e);
        }
        if line > self.capacity {
            let result = self.write_out(line, slot);
            self.bytes.clear();
            return result;
        }
        Ok(())
    }

    /// Write everything buffered with one `write(2)`, to the file of the current rotation
    /// generation (a drain is a write like any other). On error what did reach the file is
    /// dropped from the buffer and the rest kept for the next attempt.
    pub fn drain(&mut self, slot: &Slot) -> Result<()> {
        self.write_out(self.bytes.len(), slot)
    }

    /// At close: drain, then sync the file unless `fsync=never`.
    pub fn settle(&mut self, slot: &Slot) -> Result<()> {
        self.drain(slot)?;
        self.table.settle()
    }

    /// [`Pending::drain`] of the first `end` bytes only.
    fn write_out(&mut self, end: usize, slot: &Slot) -> Result<()> {
        if end == 0 {
            return Ok(());
        }
        let mut written = 0;
        let result = self
            .table
            .write(slot, &self.bytes.as_bytes()[..end], &mut written);
        self.bytes.consume(written);
        result
    }
}

impl Pending {
    /// Last chance (process exit, termination signal): drain, and if that fails say on
    /// standard error how many records are lost and why, since no caller is left to tell.
    fn drain_or_report(&mut self, slot: &Slot) {
        if let Err(error) = self.drain(slot) {
            let records = self.bytes.iter().filter(|&&b| b == b'\n').count();
            eprintln!(
                "flatstore: {records} buffered records ({} bytes) could not be written: {error}",
                self.bytes.len()
            );
        }
    }
}

#[derive(Debug)]
struct Watched {
    sinks: Mutex<Vec<SharedPending>>,
    stop: AtomicBool,
    control: Arc<Control>,
}

impl Watched {
    /// Write out every buffer; a failure leaves the bytes for the next attempt.
    fn drain_all(&self, slot: &Slot) {
        for pending in lock(&self.sinks).iter() {
            // A failed write keeps its bytes; the inserting thread reports it when it next
            // needs the room.
            let _ = lock(pending).drain(slot);
        }
    }

    /// Seal every file whose first record is `age` old.
    fn seal_older(&self, age: Duration) {
        for pending in lock(&self.sinks).iter() {
            lock(pending).table.seal_if_older(age);
        }
    }

    /// Sync every file written since its last sync, each without holding up its writer.
    fn sync_all(&self) {
        let sinks: Vec<SharedPending> = lock(&self.sinks).clone();
        for pending in sinks {
            let unsynced = lock(&pending).table.take_unsynced();
            if let Some(file) = unsynced
                && let Err(e) = file.sync()
            {
                eprintln!("flatstore: {e}");
            }
        }
    }
}

/// What a connection's helper thread does at each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chores {
    /// Write out the buffers at least this often (`flush=0`).
    pub drain_every: Option<Duration>,
    /// Seal files whose first record is this old (`rotate_seconds`), also for an idle writer.
    pub seal_after: Option<Duration>,
    /// Sync files with unsynced data this often (`fsync=interval`).
    pub sync_every: Option<Duration>,
}

/// Bounds of the tick that checks the age of files: a tenth of the limit, within these.
const SEAL_TICK_MIN: Duration = Duration::from_millis(10);
const SEAL_TICK_MAX: Duration = Duration::from_secs(1);

impl Chores {
    /// True when there is nothing to do: no thread is needed.
    pub fn is_empty(&self) -> bool {
        *self == Chores::default()
    }

    /// Time between ticks: short enough for every chore. A file is sealed at most one tick
    /// after it reached its age limit.
    pub fn tick(&self) -> Duration {
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
/// age, syncs files, each as its [`Chores`] say.
#[derive(Debug)]
pub struct Housekeeper {
    watched: Arc<Watched>,
    thread: JoinHandle<()>,
}

impl Housekeeper {
    /// Start the thread, with a writer slot of its own in `control`.
    pub fn start(chores: Chores, control: &Arc<Control>) -> Result<Housekeeper> {
        let watched = Arc::new(Watched {
            sinks: Mutex::default(),
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
                let _tick = ForkGate::enter();
                for_thread.drain_all(&slot);
                if let Some(age) = chores.seal_after {
                    for_thread.seal_older(age);
                }
                if let Some(every) = chores.sync_every
                    && last_sync.elapsed() >= every
                {
                    for_thread.sync_all();
                    last_sync = Instant::now();
                }
                if stop {
                    break;
                }
            }
        })?;
        register_for_exit(&watched);
        Ok(Housekeeper { watched, thread })
    }

    /// Look after `pending` at every tick from now on.
    pub fn watch(&self, pending: &SharedPending) {
        lock(&self.watched.sinks).push(Arc::clone(pending));
    }

    /// Stop the thread after a last drain and wait for it.
    pub fn stop(self) {
        self.watched.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        // The thread body cannot panic past `drain_all`, which ignores write errors.
        let _ = self.thread.join();
    }

    /// In a forked child: forget the parent's thread and buffers without touching them (the
    /// thread does not exist here; its locks may be held forever; the parent writes the bytes).
    pub fn abandon(self) {
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
        FORK_GATE
            .call_once(|| sys::around_fork(before_fork, after_fork_in_parent, after_fork_in_child));
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
    AT_EXIT_HOOK.call_once(|| sys::at_exit(drain_at_exit));
    // Without the hook, a host that exits from its SIGTERM handler loses what is buffered, as
    // the C module does; the housekeeper still bounds how much.
    let _ = sys::before_termination(drain_now);
    let mut list = lock(&AT_EXIT);
    list.retain(|(_, w)| w.strong_count() > 0);
    list.push((process::epoch(), Arc::downgrade(watched)));
}

extern "C" fn drain_at_exit() {
    drain_now();
}

/// Write out every buffer of this process (not those inherited from a parent), each under a
/// writer slot of its own; used at exit and on a termination signal.
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
                for pending in lock(&watched.sinks).iter() {
                    lock(pending).drain_or_report(&slot);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::seal::{Durability, SealLimits};
    use crate::table::FileRules;

    fn push(pending: &mut Pending, slot: &Slot, line: &[u8]) -> Result<()> {
        pending.push_with(slot, |out| {
            out.extend_from_slice(line);
            Ok(())
        })
    }

    #[test]
    fn whole_lines_reach_the_file_when_the_buffer_is_full_and_a_refused_one_never() {
        let dir = std::env::temp_dir().join(format!("flatstore-pending-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let control = Control::open(&dir, None).expect("control");
        let slot = control.claim_slot().expect("slot");
        let path = dir.join("t_1.log");
        let rules = FileRules {
            seal: SealLimits::default(),
            durability: Durability::Never,
        };
        let file = TableFile::open(path.clone(), None, control.generation(), rules).expect("open");
        let mut pending = Pending::new(file, 10);
        let on_disk = || std::fs::read(&path).expect("read");

        push(&mut pending, &slot, b"aaaa\n").expect("fits");
        push(&mut pending, &slot, b"bbbb\n").expect("fits exactly");
        assert_eq!(on_disk(), b"");
        push(&mut pending, &slot, b"cc\n").expect("overflows");
        assert_eq!(
            on_disk(),
            b"aaaa\nbbbb\n",
            "what was buffered before the line"
        );
        let refused = pending.push_with(&slot, |out| {
            out.extend_from_slice(b"half");
            out.truncate(out.len() - 4);
            Err(Error::NoTable)
        });
        assert!(refused.is_err());
        push(&mut pending, &slot, b"a line longer than ten bytes\n").expect("on its own");
        assert_eq!(on_disk(), b"aaaa\nbbbb\ncc\na line longer than ten bytes\n");
        push(&mut pending, &slot, b"dd\n").expect("fits");
        pending.drain(&slot).expect("drain");
        assert_eq!(
            on_disk(),
            b"aaaa\nbbbb\ncc\na line longer than ten bytes\ndd\n"
        );
        drop(slot);
        std::fs::remove_dir_all(&dir).expect("remove");
    }
}
