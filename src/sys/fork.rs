//! Hooks on `fork()` and on process exit (`pthread_atfork`, `atexit`).

/// Run `hook` in the child after every `fork()` of this process (`pthread_atfork`). The hook
/// must be async-signal-safe.
pub(crate) fn on_fork_child(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime; no prepare/parent hooks.
    // Failure (ENOMEM) leaves fork detection off, which the caller cannot improve on.
    let _ = unsafe { libc::pthread_atfork(None, None, Some(hook)) };
}

/// Run `prepare` in the forking thread just before every `fork()` of this process, then
/// `parent` in the parent and `child` in the child just after it (`pthread_atfork`).
pub(crate) fn around_fork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) {
    // SAFETY: registers plain function pointers with static lifetime. Failure (ENOMEM) leaves
    // the hooks off, which the caller cannot improve on.
    let _ = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// Run `hook` when the process exits normally or this library is unloaded (`atexit`).
pub(crate) fn at_exit(hook: extern "C" fn()) {
    // SAFETY: registers a plain function pointer with static lifetime. glibc ties it to this
    // shared object, so it also runs if the library is unloaded first.
    let _ = unsafe { libc::atexit(hook) };
}
