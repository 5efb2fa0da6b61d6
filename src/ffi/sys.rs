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

/// Run `action` whenever `signal` arrives, after any handler installed before (signal-hook
/// chains them). `action` runs in a signal handler: it must be async-signal-safe (no locks,
/// no allocation; atomics only).
pub fn on_signal(signal: i32, action: impl Fn() + Sync + Send + 'static) -> std::io::Result<()> {
    // SAFETY: the contract above makes `action` async-signal-safe; registration itself is
    // done outside any handler.
    unsafe { signal_hook::low_level::register(signal, action) }.map(|_| ())
}
