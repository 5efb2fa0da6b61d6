//! libc calls that have no safe wrapper in std or nix, wrapped once here.
#![allow(unsafe_code)]

/// Run `hook` in the child after every `fork()` of this process (`pthread_atfork`). The hook
/// must be async-signal-safe.
pub fn on_fork_child(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime; no prepare/parent hooks.
    // Failure (ENOMEM) leaves fork detection off, which the caller cannot improve on.
    let _ = unsafe { libc::pthread_atfork(None, None, Some(hook)) };
}

/// Run `hook` when the process exits normally or this library is unloaded (`atexit`).
pub fn at_exit(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime. glibc ties it to this
    // shared object, so it also runs if the library is unloaded first.
    let _ = unsafe { libc::atexit(hook) };
}
