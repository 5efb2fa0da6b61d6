//! Signal handlers chained with the host's: an opt-in action on a signal, and work done on a
//! termination signal before the host's own handler runs.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI32, AtomicUsize};

/// Run `action` whenever `signal` arrives, after any handler installed before (signal-hook
/// chains them). `action` runs in a signal handler: it must be async-signal-safe (no locks,
/// no allocation; atomics only).
pub(crate) fn on_signal(
    signal: i32,
    action: impl Fn() + Sync + Send + 'static,
) -> std::io::Result<()> {
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
/// Asked first by the termination handler: `true` when the signal must wait (the thread is in
/// the middle of library code whose locks `write_out` would take); the one who postpones it
/// delivers it again later.
static POSTPONE: std::sync::OnceLock<fn(libc::c_int) -> bool> = std::sync::OnceLock::new();

/// On SIGTERM and SIGINT, run `write_out`, then whatever the host had installed (its handler,
/// or the default action, which ends the process). Call it again whenever the host may have
/// installed handlers since (a forked child): where ours was replaced, the host's new action is
/// saved and ours goes back in front of it.
///
/// `write_out` runs in a signal handler, on a thread for which the predicate given to
/// [`postpone_termination_when`] said no, so the locks it takes are free or held by another
/// thread that will release them; it must not allocate on its normal path.
pub(crate) fn before_termination(write_out: fn()) -> std::io::Result<()> {
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

/// Let `postpone` decide, first thing in the termination handler, whether a signal waits: when
/// it returns `true` the handler does nothing more, and `postpone` is responsible for raising
/// the signal again once the thread can take it. Set once; later calls change nothing.
pub(crate) fn postpone_termination_when(postpone: fn(libc::c_int) -> bool) {
    let _ = POSTPONE.set(postpone);
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
    if POSTPONE.get().is_some_and(|postpone| postpone(signal)) {
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
