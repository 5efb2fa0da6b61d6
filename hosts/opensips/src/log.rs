//! The library's messages through OpenSIPS's own logging, as `LM_ERR` and friends of a module
//! named `db_flatstore` would print them: `dprint()` when `*log_level` lets the level through,
//! with the stderr and syslog formats of OpenSIPS 3.6's `MY_DPRINT` (time, pid, the log prefix
//! of the message being processed, `ERROR:db_flatstore: message`), so that every configured
//! log consumer (stderr, syslog, JSON, events) gets them. The symbols are looked up at run time
//! in the opensips executable; where they are missing (not inside OpenSIPS) messages stay on
//! standard error. A message from a thread other than the process's main thread (the writer's
//! helper thread, with `flush=0`) goes to standard error: OpenSIPS's logging is not made for
//! threads.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use flatstore::report::{self, Level};

/// `dprint(level, facility, module, func, stderr_fmt, syslog_fmt, fmt, ...)`.
type Dprint = unsafe extern "C" fn(
    c_int,
    c_int,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    ...
);

/// What the module needs of OpenSIPS's logging.
struct CoreLog {
    dprint: Dprint,
    /// `int *log_level`: the current process's level lives behind the pointer.
    log_level: *const *const c_int,
    log_facility: *const c_int,
    /// `char *log_prefix`: the prefix of the SIP message being processed.
    log_prefix: *const *const c_char,
    dp_my_pid: unsafe extern "C" fn() -> c_int,
}

// SAFETY: addresses in the opensips executable, valid for the life of the process; only read.
unsafe impl Send for CoreLog {}
// SAFETY: as above.
unsafe impl Sync for CoreLog {}

static CORE_LOG: OnceLock<Option<CoreLog>> = OnceLock::new();

/// The address of `name` in the process, or `None`.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

impl CoreLog {
    fn find() -> Option<CoreLog> {
        let dprint = symbol(c"dprint")?;
        let my_pid = symbol(c"dp_my_pid")?;
        // SAFETY: OpenSIPS 3.6's `dprint` and `dp_my_pid` (dprint.h) have these signatures.
        let (dprint, dp_my_pid) = unsafe {
            (
                std::mem::transmute::<*mut c_void, Dprint>(dprint),
                std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(my_pid),
            )
        };
        Some(CoreLog {
            dprint,
            log_level: symbol(c"log_level")?.cast_const().cast(),
            log_facility: symbol(c"log_facility")?.cast_const().cast(),
            log_prefix: symbol(c"log_prefix")?.cast_const().cast(),
            dp_my_pid,
        })
    }

    /// # Safety
    /// The pointers are OpenSIPS 3.6's (see [`CoreLog::find`]); called on the main thread.
    unsafe fn log(&self, level: Level, message: &str) {
        let (o_level, stderr_fmt, syslog_fmt) = match level {
            Level::Error => (
                -1,
                c"%s [%d] %sERROR:db_flatstore: %.*s\n",
                c"%sERROR:db_flatstore: %.*s\n",
            ),
            Level::Warning => (
                1,
                c"%s [%d] %sWARNING:db_flatstore: %.*s\n",
                c"%sWARNING:db_flatstore: %.*s\n",
            ),
            Level::Notice => (
                2,
                c"%s [%d] %sNOTICE:db_flatstore: %.*s\n",
                c"%sNOTICE:db_flatstore: %.*s\n",
            ),
            _ => (
                3,
                c"%s [%d] %sINFO:db_flatstore: %.*s\n",
                c"%sINFO:db_flatstore: %.*s\n",
            ),
        };
        // SAFETY: `log_level` points to the process's level (set up before any module loads).
        let current = unsafe { (*self.log_level).as_ref() }.copied();
        if current.is_some_and(|l| l < o_level) {
            return;
        }
        // `dp_time()`: ctime without the day name and the year, as OpenSIPS prints it.
        let mut when = [0 as c_char; 32];
        // SAFETY: time(NULL) and ctime_r into a buffer of more than the 26 bytes it writes.
        let time = unsafe {
            let now = libc::time(std::ptr::null_mut());
            if libc::ctime_r(&now, when.as_mut_ptr()).is_null() {
                c"".as_ptr()
            } else {
                when[19] = 0;
                when.as_ptr().add(4)
            }
        };
        let len = c_int::try_from(message.len()).unwrap_or(c_int::MAX);
        // SAFETY: OpenSIPS's globals and functions used as its MY_DPRINT macro uses them; every
        // format consumes the arguments given (time, pid, prefix, then the message as `%.*s`).
        unsafe {
            let prefix = match *self.log_prefix {
                p if p.is_null() => c"".as_ptr(),
                p => p,
            };
            (self.dprint)(
                o_level,
                *self.log_facility,
                c"db_flatstore".as_ptr(),
                std::ptr::null(),
                stderr_fmt.as_ptr(),
                syslog_fmt.as_ptr(),
                c"%.*s\n".as_ptr(),
                time,
                (self.dp_my_pid)(),
                prefix,
                len,
                message.as_ptr().cast::<c_char>(),
            );
        }
    }
}

/// From now on the library's messages go through OpenSIPS's logging (when inside OpenSIPS).
pub fn through_opensips() {
    if CORE_LOG.get_or_init(CoreLog::find).is_some() {
        report::set_sink(Some(to_opensips));
    }
}

/// The sink [`through_opensips`] installs.
fn to_opensips(level: Level, message: &str) {
    // SAFETY: gettid and getpid only return numbers.
    let main_thread = unsafe { libc::gettid() == libc::getpid() };
    match CORE_LOG.get().and_then(Option::as_ref) {
        // SAFETY: found by CoreLog::find in this process or the one it was forked from.
        Some(core) if main_thread => unsafe { core.log(level, message) },
        _ => report::to_stderr(level, message),
    }
}

/// Log `message` as an error of the module (startup failures: a refused modparam or URL).
pub fn error(message: &str) {
    to_opensips(Level::Error, message);
}
