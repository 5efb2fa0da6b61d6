//! libc calls that have no safe wrapper in std or nix, wrapped once here.
#![allow(unsafe_code)]

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI32, AtomicUsize};

/// Run `hook` in the child after every `fork()` of this process (`pthread_atfork`). The hook
/// must be async-signal-safe.
pub fn on_fork_child(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime; no prepare/parent hooks.
    // Failure (ENOMEM) leaves fork detection off, which the caller cannot improve on.
    let _ = unsafe { libc::pthread_atfork(None, None, Some(hook)) };
}

/// Run `prepare` in the forking thread just before every `fork()` of this process, then
/// `parent` in the parent and `child` in the child just after it (`pthread_atfork`).
pub fn around_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    // SAFETY: registers plain function pointers with static lifetime. Failure (ENOMEM) leaves
    // the hooks off, which the caller cannot improve on.
    let _ = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// Run `hook` when the process exits normally or this library is unloaded (`atexit`).
pub fn at_exit(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime. glibc ties it to this
    // shared object, so it also runs if the library is unloaded first.
    let _ = unsafe { libc::atexit(hook) };
}

/// A file mapped `MAP_SHARED` into memory, seen as an array of 64-bit atomics: every process
/// that maps the same file (or inherits the mapping over `fork()`) sees the same words.
#[derive(Debug)]
pub struct SharedWords {
    base: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics.
unsafe impl Send for SharedWords {}
// SAFETY: as above; `&AtomicU64` is Sync.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Map the first `len` words of `file`, which must be at least `8 * len` bytes long and
    /// open for reading and writing.
    pub fn map(file: &std::fs::File, len: usize) -> std::io::Result<SharedWords> {
        use std::os::fd::AsRawFd as _;
        let bytes = len * 8;
        // SAFETY: a fresh shared mapping of a file we hold open; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        SharedWords::from_mapping(ptr, len)
    }

    /// `len` zeroed words of anonymous shared memory: seen by this process and by every
    /// process forked from it afterwards.
    pub fn anonymous(len: usize) -> std::io::Result<SharedWords> {
        // SAFETY: a fresh anonymous shared mapping; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        SharedWords::from_mapping(ptr, len)
    }

    fn from_mapping(ptr: *mut libc::c_void, len: usize) -> std::io::Result<SharedWords> {
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(ptr.cast()).ok_or(std::io::ErrorKind::Other)?;
        Ok(SharedWords { base, len })
    }

    /// Word `index`, or `None` past the end.
    pub fn word(&self, index: usize) -> Option<&std::sync::atomic::AtomicU64> {
        // SAFETY: in bounds of the mapping, which is page-aligned (so 8-aligned) and lives as
        // long as `self`; AtomicU64 has the layout of u64.
        (index < self.len).then(|| unsafe { self.base.add(index).as_ref() })
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len * 8) };
    }
}

/// An advisory `flock(2)` lock: shared by the writers of a file, exclusive for a sealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLock {
    /// Held by every writer of the file at once.
    Shared,
    /// Held by one process only, and only while no shared lock is held.
    Exclusive,
}

/// Take `lock` on `file`'s open file description without waiting. `Ok(false)` when another
/// open of the file holds a lock that conflicts. The lock goes with the last descriptor of
/// this open (also on `kill -9`).
pub fn try_flock(file: &std::fs::File, lock: FileLock) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let operation = match lock {
        FileLock::Shared => libc::LOCK_SH,
        FileLock::Exclusive => libc::LOCK_EX,
    } | libc::LOCK_NB;
    loop {
        // SAFETY: flock on a descriptor `file` owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(true);
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

/// Run `action` whenever `signal` arrives, after any handler installed before (signal-hook
/// chains them). `action` runs in a signal handler: it must be async-signal-safe (no locks,
/// no allocation; atomics only).
pub fn on_signal(signal: i32, action: impl Fn() + Sync + Send + 'static) -> std::io::Result<()> {
    // SAFETY: the contract above makes `action` async-signal-safe; registration itself is
    // done outside any handler.
    unsafe { signal_hook::low_level::register(signal, action) }.map(|_| ())
}

/// The signals after which a host normally exits at once (Kamailio's children `_exit(0)` in
/// their handler): buffered records are written out before the host's handler runs.
const TERMINATION_SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// What to run on a termination signal.
static WRITE_OUT: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();
/// Per termination signal, the handler address and flags of the action that was installed
/// before ours (the host's): plain words, so the handler reads them without locks.
static HOST_HANDLERS: [(AtomicUsize, AtomicI32); TERMINATION_SIGNALS.len()] =
    [const { (AtomicUsize::new(libc::SIG_DFL), AtomicI32::new(0)) }; TERMINATION_SIGNALS.len()];
/// A termination signal that arrived while its thread was inside the library: delivered again
/// when that thread leaves the library ([`deliver_postponed_termination`]).
static POSTPONED: AtomicI32 = AtomicI32::new(0);

/// On SIGTERM and SIGINT, run `write_out`, then whatever the host had installed (its handler,
/// or the default action, which ends the process). Call it again whenever the host may have
/// installed handlers since (a forked child): where ours was replaced, the host's new action is
/// saved and ours goes back in front of it.
///
/// `write_out` runs in a signal handler, on a thread that is not inside the library (a signal
/// that lands inside the library is postponed until it leaves), so the locks it takes are free
/// or held by another thread that will release them; it must not allocate on its normal path.
pub fn before_termination(write_out: fn()) -> std::io::Result<()> {
    let _ = WRITE_OUT.set(write_out);
    let ours_address = on_termination as *const () as usize;
    let mut ours = empty_sigaction();
    ours.sa_sigaction = ours_address;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t owned here.
    unsafe {
        libc::sigemptyset(&mut ours.sa_mask);
        for &signal in &TERMINATION_SIGNALS {
            libc::sigaddset(&mut ours.sa_mask, signal);
        }
    }
    for ((handler, flags), &signal) in HOST_HANDLERS.iter().zip(&TERMINATION_SIGNALS) {
        let mut current = empty_sigaction();
        // SAFETY: reads the current action into a valid struct; installs nothing.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if current.sa_sigaction == ours_address {
            continue;
        }
        // Saved before ours goes in, so that our handler always finds the host's.
        flags.store(current.sa_flags, SeqCst);
        handler.store(current.sa_sigaction, SeqCst);
        // SAFETY: installs a handler that only does async-signal-safe work (see above).
        if unsafe { libc::sigaction(signal, &ours, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// If a termination signal arrived while this thread was inside the library, deliver it now.
pub fn deliver_postponed_termination() {
    // A plain load first: this runs at the end of every library call.
    if POSTPONED.load(SeqCst) == 0 {
        return;
    }
    let signal = POSTPONED.swap(0, SeqCst);
    if signal != 0 {
        // SAFETY: raising a signal for this thread; the handler above runs before it returns.
        unsafe { libc::raise(signal) };
    }
}

fn empty_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is plain data; all-zero is SIG_DFL with an empty mask and no flags.
    unsafe { std::mem::zeroed() }
}

extern "C" fn on_termination(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if super::in_guard() {
        POSTPONED.store(signal, SeqCst);
        return;
    }
    if let Some(write_out) = WRITE_OUT.get() {
        write_out();
    }
    let Some(index) = TERMINATION_SIGNALS.iter().position(|s| *s == signal) else {
        return;
    };
    let (handler, flags) = &HOST_HANDLERS[index];
    let (handler, flags) = (handler.load(SeqCst), flags.load(SeqCst));
    match handler {
        libc::SIG_IGN => {}
        libc::SIG_DFL => {
            // SAFETY: restore the default action and let the (blocked) signal through: the
            // process ends as it would have without us.
            unsafe {
                libc::sigaction(signal, &empty_sigaction(), std::ptr::null_mut());
                libc::raise(signal);
                let mut unblock = empty_sigaction().sa_mask;
                libc::sigemptyset(&mut unblock);
                libc::sigaddset(&mut unblock, signal);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
            }
        }
        action if flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the host installed this three-argument handler for this signal.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(action) };
            handler(signal, info, context);
        }
        action => {
            // SAFETY: the host installed this one-argument handler for this signal.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
            handler(signal);
        }
    }
}
