//! Memory shared between processes, seen as 64-bit atomics (`mmap` with `MAP_SHARED`).

/// A file mapped `MAP_SHARED` into memory, seen as an array of 64-bit atomics: every process
/// that maps the same file (or inherits the mapping over `fork()`) sees the same words.
#[derive(Debug)]
pub(crate) struct SharedWords {
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
    pub(crate) fn map(file: &std::fs::File, len: usize) -> std::io::Result<SharedWords> {
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
    pub(crate) fn anonymous(len: usize) -> std::io::Result<SharedWords> {
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
}

impl std::ops::Deref for SharedWords {
    type Target = [std::sync::atomic::AtomicU64];

    /// The words, shared with every process that maps them.
    #[inline]
    fn deref(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping is `len` words, page-aligned (so 8-aligned), lives as long as
        // `self`, and AtomicU64 has the layout of u64.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len * 8) };
    }
}
