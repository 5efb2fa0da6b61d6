//! The host faces' toolkit: the OpenSER 1.x C API (`openser.rs`, the `flat_*` functions of
//! `include/flatstore.h`, exported by this library's own `libflatstore.so`), and here what every
//! host face shares: the guard, the last error, the pointer helpers, the module parameters, the
//! handle's connection, the rank rule, the record shim and the rotation entry points. Nothing in
//! the core imports this module.
//!
//! The host modules are crates of their own under `hosts/` (`flatstore-kamailio`,
//! `flatstore-openser`, ...): each is a `cdylib` that a proxy loads, made of the host's export
//! tables and short shims written with this module. This is their public API, and the only part
//! of the library they reach besides [`crate::Error`], [`crate::Value`] and [`crate::report`].
//!
//! Every export is a short shim: raw inputs to safe values, one call into the safe API, the
//! result to a C code. A guard ([`guard`], [`guard_code`]) catches panics so that none crosses
//! into the host, and holds a termination signal that lands while the thread is inside the
//! library until it leaves.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_int, c_ulong};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use crate::error::{Error, Result};
use crate::line::value::Value;
pub use crate::line::value::{BadValue, ValueProblem};
use crate::report::{Level, report};
use crate::shared::{directories, rotation};
use crate::{Config, Connection, Params};

/// Declare this process's file number N directly, for a host face whose rank rule is not
/// [`declare_rank`]'s (OpenSIPS: pid-based numbers for the ranks several processes share).
pub use crate::declare_process_number;

pub mod openser;

/// The module parameter names a host module exports (the `modparam`s of the C modules and
/// ours), in the order of the table in `docs/operations.md`; [`set_module_param`] takes them.
pub use crate::writer::config::PARAMETER_NAMES;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
}

/// A termination signal that arrived while its thread was inside the library: raised again
/// when that thread leaves ([`inside`]).
static POSTPONED: AtomicI32 = AtomicI32::new(0);

static QUIET_PANICS: Once = Once::new();

/// Module parameters set by the host (`flat_set_param`, Kamailio's `modparam`), read by every
/// later connection made in this process or in a process forked from it.
static MODULE_PARAMS: Mutex<Option<Params>> = Mutex::new(None);

/// The module parameters, ignoring poisoning (a refused `set` leaves them unchanged).
fn module_params_lock() -> MutexGuard<'static, Option<Params>> {
    MODULE_PARAMS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set one module parameter (one of [`PARAMETER_NAMES`]) for every later connection made in
/// this process or in a process forked from it; on error nothing changes.
pub fn set_module_param(name: &str, value: &str) -> Result<()> {
    module_params_lock()
        .get_or_insert_with(Params::default)
        .set(name, value)
}

/// The module parameters set so far (the defaults for the rest).
fn module_params() -> Params {
    module_params_lock().clone().unwrap_or_default()
}

/// Inside a guard, a panic's message is kept for the error instead of being printed; panics
/// elsewhere (a Rust program linking the rlib) still go to the hook that was there before.
/// Also tells the termination handler to hold a signal that lands inside a guard.
fn quiet_panics() {
    QUIET_PANICS.call_once(|| {
        crate::sys::signals::postpone_termination_when(postpone_inside_guard);
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_GUARD.with(|g| g.get()) {
                return previous(info);
            }
            let message = match info.payload().downcast_ref::<&str>() {
                Some(s) => (*s).to_owned(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "panic".to_owned()),
            };
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{message}{location}")));
        }));
    });
}

/// A new connection for the host's `url`, as the value a handle's `tail` holds. A URL that is
/// not UTF-8 is a bad URL ([`Error::BadUrl`]), as is any other malformed one.
pub fn connection_tail(url: &[u8]) -> Result<c_ulong> {
    let url = std::str::from_utf8(url).map_err(|_| Error::BadUrl {
        url: String::from_utf8_lossy(url).into_owned(),
        reason: "not valid UTF-8",
    })?;
    let connection = Connection::new(Config::from_url(url, &module_params())?)?;
    Ok(Box::into_raw(Box::new(connection)) as c_ulong)
}

/// A host's connection handle: a C struct whose `tail` word holds the connection (a value from
/// [`connection_tail`]), made with `Box::into_raw` by the host ABI's init.
pub trait Handle {
    /// The `tail` word.
    fn tail(&self) -> c_ulong;
}

/// The connection behind a handle.
///
/// # Safety
/// `h` is NULL or a handle from the host ABI's init that was not closed, used by the host from
/// one thread at a time.
#[inline]
pub unsafe fn handle_connection<'a, H: Handle>(h: *const H) -> Result<&'a mut Connection> {
    // SAFETY: per the contract, a non-NULL `h` is a live handle.
    let Some(handle) = (unsafe { h.as_ref() }) else {
        return Err(Error::NullArgument { what: "handle" });
    };
    // SAFETY: a live handle's non-zero `tail` is a live Box pointer, freed only by close.
    match unsafe { (handle.tail() as *mut Connection).as_mut() } {
        Some(connection) => Ok(connection),
        // Not `ok_or`: an error built eagerly costs a call to its drop on every insert.
        None => Err(Error::NullArgument {
            what: "handle's connection",
        }),
    }
}

/// Write out and free a handle and its connection; NULL is ignored.
///
/// # Safety
/// `h` is NULL or a handle from the host ABI's init (`Box::into_raw`), not used again.
pub unsafe fn close_handle<H: Handle>(h: *mut H) -> Result<()> {
    if h.is_null() {
        return Ok(());
    }
    // SAFETY: per the contract, a Box pointer given up here.
    let handle = unsafe { Box::from_raw(h) };
    let connection = handle.tail() as *mut Connection;
    if connection.is_null() {
        return Ok(());
    }
    // SAFETY: the tail is a Box pointer from `connection_tail`, given up with its handle.
    unsafe { Box::from_raw(connection) }.close()
}

/// Declare this process's number N from the host's `rank`, as the host's C module names its
/// files: `-rank` for the host's own processes (rank ≤ 0), `rank + worker_offset` for workers
/// (OpenSER 1.3: 4, Kamailio: 128).
pub fn declare_rank(rank: c_int, worker_offset: i64) {
    let rank = i64::from(rank);
    let n = if rank <= 0 {
        -rank
    } else {
        rank + worker_offset
    };
    declare_process_number(u32::try_from(n).unwrap_or(u32::MAX));
}

/// One record from the host: its column names first, when `header=1` still wants them for the
/// table (`keys` is called only then), then the values as one line.
#[inline]
pub fn insert_record<'k, 'v, K>(
    con: &mut Connection,
    keys: impl FnOnce() -> K,
    values: impl IntoIterator<Item = Result<Value<'v>, BadValue>>,
) -> Result<()>
where
    K: IntoIterator<Item = Option<&'k [u8]>>,
{
    if con.wants_columns() {
        con.record_columns(keys());
    }
    con.insert(values)
}

/// The termination handler's question: is this thread inside a library call, whose locks the
/// handler would take? Then the signal waits for [`inside`] to raise it again.
fn postpone_inside_guard(signal: c_int) -> bool {
    if IN_GUARD.with(Cell::get) {
        POSTPONED.store(signal, SeqCst);
        return true;
    }
    false
}

/// If a termination signal arrived while this thread was inside the library, raise it now.
#[inline]
fn raise_postponed() {
    // A plain load first: this runs at the end of every library call.
    if POSTPONED.load(SeqCst) == 0 {
        return;
    }
    let signal = POSTPONED.swap(0, SeqCst);
    if signal != 0 {
        // SAFETY: raising a signal for this thread; its handler runs before this returns.
        unsafe { libc::raise(signal) };
    }
}

/// Remember `error` as this thread's last error (see `flat_last_error`).
pub fn set_last_error(error: &Error) {
    let text = error.to_string().replace('\0', "\\0");
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// This thread's last error message; valid until the next failing call on this thread.
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Run `f` with this thread marked as inside the library (a termination signal is held until
/// it returns); a panic is caught and returned as `Err`.
#[inline]
fn inside<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    quiet_panics();
    let outer = IN_GUARD.with(|g| g.replace(true));
    let caught = panic::catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(outer));
    if !outer {
        raise_postponed();
    }
    caught
}

/// The error for a panic caught by [`inside`].
fn caught_panic() -> Error {
    Error::Panic {
        message: PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "panic".to_owned()),
    }
}

/// `error` recorded as the last error, as a C code.
fn failed(error: &Error) -> c_int {
    set_last_error(error);
    error.code()
}

/// Run `f`, turning a panic into [`Error::Panic`] and recording any error as the last error.
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let result = inside(f).unwrap_or_else(|_| Err(caught_panic()));
    if let Err(e) = &result {
        set_last_error(e);
    }
    result
}

/// [`guard`] for exports that return `0` or a negative code. The code is made inside the
/// guarded call, so that a successful insert does not move a `Result<(), Error>` out of it.
pub fn guard_code(f: impl FnOnce() -> Result<()>) -> c_int {
    inside(|| f().map_or_else(|e| failed(&e), |()| 0)).unwrap_or_else(|_| failed(&caught_panic()))
}

/// The bytes of a NUL-terminated C string, `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
#[inline]
pub unsafe fn c_str_or_null<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: non-NULL and NUL-terminated per the contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// `n` elements at `p` as a slice: `(NULL, 0)` and `(p, 0)` give `&[]`; `n < 0`, or NULL with
/// `n > 0`, are errors. Never calls `slice::from_raw_parts` with NULL.
///
/// # Safety
/// When `n > 0` and `p` is not NULL, `p` points to `n` initialised `T` that outlive `'a`.
pub unsafe fn slice_or_empty<'a, T>(p: *const T, n: c_int, what: &'static str) -> Result<&'a [T]> {
    match usize::try_from(n) {
        Err(_) => Err(Error::BadCount { count: n.into() }),
        Ok(0) => Ok(&[]),
        Ok(_) if p.is_null() => Err(Error::NullArgument { what }),
        // SAFETY: non-NULL, `n` elements per the contract.
        Ok(len) => Ok(unsafe { std::slice::from_raw_parts(p, len) }),
    }
}

/// The column names of an insert whose keys are counted strings (`db_key_t` is `str*` in
/// Kamailio's srdb1 and in OpenSIPS): for each of the `n` keys, its bytes, or `None` for a
/// NULL key or a malformed one (NULL `keys` gives `n` `None`s, which name no column). Read lazily: a host
/// face passes this to [`insert_record`], which reads the names only when a table's
/// `<table>.columns` is due.
///
/// # Safety
/// `keys` is NULL or points to `n` pointers, each NULL or to a [`openser::Str`] whose bytes
/// are valid for `'a`.
pub unsafe fn counted_keys<'a>(
    keys: *const *const openser::Str,
    n: c_int,
) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
    let count = usize::try_from(n).unwrap_or_default();
    // SAFETY: per the contract.
    let keys: &[*const openser::Str] =
        unsafe { slice_or_empty(keys, n, "keys") }.unwrap_or_default();
    (0..count).map(move |i| {
        // SAFETY: a non-NULL key points to a str valid for 'a.
        let key = unsafe { keys.get(i)?.as_ref() }?;
        // SAFETY: its bytes are valid for 'a.
        unsafe { str_bytes(key.s, key.len) }.ok()
    })
}

/// The text of module parameter `name` as a host's `modparam` passes it to a function: with
/// `int`, the pointer's own value is the number (OpenSER, Kamailio and OpenSIPS pass an int
/// parameter so), else a NUL-terminated string, which must be UTF-8. [`set_module_param`]
/// takes the text.
///
/// # Safety
/// Without `int`, `value` is NULL or a NUL-terminated string valid for the call.
pub unsafe fn param_text_from_host(
    name: &str,
    int: bool,
    value: *mut std::ffi::c_void,
) -> Result<String> {
    if int {
        return Ok((value as isize as c_int).to_string());
    }
    // SAFETY: per the contract.
    let bytes = unsafe { c_str_or_null(value.cast_const().cast()) }
        .ok_or(Error::NullArgument { what: "value" })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::param(name, "not valid UTF-8"))
}

/// Bytes of a `str {s, len}` (not NUL-terminated): `len < 0`, or NULL with `len > 0`, are errors.
///
/// # Safety
/// When `len > 0` and `s` is not NULL, `s` points to `len` readable bytes that outlive `'a`.
#[inline]
pub unsafe fn str_bytes<'a>(
    s: *const c_char,
    len: c_int,
) -> std::result::Result<&'a [u8], ValueProblem> {
    let Ok(count) = usize::try_from(len) else {
        return Err(ValueProblem::NegativeLength(len));
    };
    if s.is_null() {
        return if count == 0 {
            Ok(&[])
        } else {
            Err(ValueProblem::NullPointer(len))
        };
    }
    // SAFETY: non-NULL, `count` bytes per the contract (none are read when it is 0). Two
    // tests, not three, for the usual value: a string is most of a record's fields.
    Ok(unsafe { std::slice::from_raw_parts(s.cast::<u8>(), count) })
}

/// A failure during a host's startup (a refused modparam, `mod_init`): also reported as an
/// error through the library's sink (the host's log once the face installed it), so that the
/// operator sees why the host refused to start. Returns `code` unchanged.
pub fn report_at_startup(code: c_int) -> c_int {
    if code < 0 {
        // SAFETY: last_error_ptr is a NUL-terminated string owned by this thread.
        let message = unsafe { CStr::from_ptr(last_error_ptr()) }.to_string_lossy();
        report(Level::Error, format_args!("{message}"));
    }
    code
}

/// Make the list of log directories shared by every process the host forks from now on: call
/// it once, in the host's main process before it forks (a module's `mod_init`). Afterwards
/// [`rotate_everywhere`] in any of those processes, one that never opened a directory too
/// (the host's RPC or MI process), reaches every directory any of them opened. Idempotent.
pub fn share_directories_with_children() -> Result<()> {
    directories::share_with_children()
}

/// Request a rotation of every log directory this process opened and of every directory in the
/// host's shared list ([`share_directories_with_children`]): every process of the host reopens
/// its files before its next write. Returns how many directories were asked (0: none was
/// reached); a listed directory whose control file cannot be opened is an error, reported
/// after the others were asked.
pub fn rotate_everywhere() -> Result<usize> {
    rotation::request_everywhere()
}

/// [`rotate_everywhere`], then wait, at most `timeout` in all, until no live writer of an
/// asked directory can still append to a file it had open before the request (writes in
/// flight have finished; idle writers reopen before their next write). When it returns `Ok`,
/// files the operator renamed before the call receive nothing more: what a host's rotation
/// command needs before it answers. [`Error::RotateTimeout`] names the writers that held it up.
pub fn rotate_everywhere_and_wait(timeout: std::time::Duration) -> Result<usize> {
    rotation::request_everywhere_and_wait(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FLATSTORE_E_URL;

    #[test]
    fn counted_keys_name_each_key_or_none() {
        let mut name = *b"callid";
        let good = openser::Str {
            s: name.as_mut_ptr().cast(),
            len: 6,
        };
        let negative = openser::Str {
            s: name.as_mut_ptr().cast(),
            len: -1,
        };
        let keys = [&raw const good, std::ptr::null(), &raw const negative];
        // SAFETY: three keys, each NULL or a str over `name`.
        let read: Vec<_> = unsafe { counted_keys(keys.as_ptr(), 3) }.collect();
        assert_eq!(read, [Some(&b"callid"[..]), None, None]);
        // SAFETY: NULL keys.
        let none: Vec<_> = unsafe { counted_keys(std::ptr::null(), 2) }.collect();
        assert_eq!(
            none,
            [None, None],
            "NULL keys name no column, one None per value"
        );
    }

    #[test]
    fn a_host_param_is_an_int_by_its_pointer_or_a_utf8_string() {
        // SAFETY: an int parameter is the pointer's value.
        let int = unsafe { param_text_from_host("flush", true, 7 as *mut std::ffi::c_void) };
        assert_eq!(int.expect("int"), "7");
        let text = c"/var/log/acc";
        // SAFETY: a NUL-terminated string.
        let string = unsafe { param_text_from_host("dir", false, text.as_ptr().cast_mut().cast()) };
        assert_eq!(string.expect("string"), "/var/log/acc");
        let latin1 = c"caf\xe9";
        // SAFETY: a NUL-terminated string.
        let refused =
            unsafe { param_text_from_host("dir", false, latin1.as_ptr().cast_mut().cast()) };
        assert!(
            matches!(refused, Err(Error::BadParam { .. })),
            "{refused:?}"
        );
    }

    /// A URL that is not UTF-8, through either host ABI, is a bad URL (not a parameter error),
    /// and the message shows it.
    #[test]
    fn a_url_that_is_not_utf8_is_a_bad_url() {
        let error = connection_tail(b"flatstore:/tmp/acc\xff").expect_err("not UTF-8");
        assert!(matches!(error, Error::BadUrl { .. }), "{error:?}");
        assert_eq!(error.code(), FLATSTORE_E_URL);
        assert_eq!(
            error.to_string(),
            "bad URL \"flatstore:/tmp/acc\u{fffd}\": not valid UTF-8"
        );
    }
}
