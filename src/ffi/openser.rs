//! The OpenSER 1.x database API, insert subset: the C types byte for byte (LP64) and the
//! `flat_*` exports declared in `include/flatstore.h`.
#![allow(unsafe_code, non_camel_case_types)]

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong};
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicPtr, Ordering};

use super::{
    Handle, c_str_or_null, close_handle, connection_tail, declare_rank, guard, guard_code,
    handle_connection, insert_record, last_error_ptr, set_module_param, slice_or_empty, str_bytes,
};
use crate::error::{Error, Result};
use crate::line::value::{BadValue, Value, ValueProblem};
use crate::report::{self, Level, MAX_MESSAGE};
use crate::shared::{directories, rotation};

/// OpenSER's counted string: `s` is not NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Str {
    /// The bytes.
    pub s: *mut c_char,
    /// Their number.
    pub len: c_int,
}

/// A column name: with `header=1` the keys of a process's first insert into a table are
/// written to `<table>.columns`; otherwise ignored.
pub type db_key_t = *const c_char;

/// The type tag of a value (`DB_INT` … `DB_BITMAP`).
pub type db_type_t = c_int;

/// `int`, written as `%d`.
pub const DB_INT: db_type_t = 0;
/// `double`, written as `%f`.
pub const DB_DOUBLE: db_type_t = 1;
/// NUL-terminated string.
pub const DB_STRING: db_type_t = 2;
/// Counted string.
pub const DB_STR: db_type_t = 3;
/// `time_t`, written as `%u` of `(unsigned int)` the value.
pub const DB_DATETIME: db_type_t = 4;
/// Counted bytes, written with `\xHH` escapes.
pub const DB_BLOB: db_type_t = 5;
/// `unsigned int`, written as `%u`.
pub const DB_BITMAP: db_type_t = 6;

/// The value union of `db_val_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DbValUnion {
    /// `DB_INT`.
    pub int_val: c_int,
    /// `DB_DOUBLE`.
    pub double_val: f64,
    /// `DB_DATETIME`.
    pub time_val: libc::time_t,
    /// `DB_STRING`.
    pub string_val: *const c_char,
    /// `DB_STR`.
    pub str_val: Str,
    /// `DB_BLOB`.
    pub blob_val: Str,
    /// `DB_BITMAP`.
    pub bitmap_val: c_uint,
}

/// One value of a record.
#[repr(C)]
#[derive(Clone, Copy)]
/// cbindgen:field-names=[type, nul, val]
pub struct DbVal {
    /// One of `DB_INT` … `DB_BITMAP`; anything else refuses the record.
    pub type_: db_type_t,
    /// Non-zero: SQL NULL, written as an empty field.
    pub nul: c_int,
    /// The value, read according to `type`.
    pub val: DbValUnion,
}

/// A connection handle. `table` is the pointer last given to `flat_use_table` (owned by the
/// host); `tail` is private to flatstore.
#[repr(C)]
#[derive(Debug)]
pub struct DbCon {
    /// The current table name, as given by the host.
    pub table: *const c_char,
    /// flatstore's connection state.
    pub tail: c_ulong,
}

const _: () = assert!(size_of::<Str>() == 16);
const _: () = assert!(size_of::<DbValUnion>() == 16);
const _: () = assert!(size_of::<DbVal>() == 24);
const _: () = assert!(offset_of!(DbVal, nul) == 4);
const _: () = assert!(offset_of!(DbVal, val) == 8);
const _: () = assert!(size_of::<DbCon>() == 16);
const _: () = assert!(offset_of!(DbCon, tail) == 8);

impl Handle for DbCon {
    fn tail(&self) -> c_ulong {
        self.tail
    }
}

/// The bytes of a NUL-terminated C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn c_str_bytes<'a>(p: *const c_char, what: &'static str) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(Error::NullArgument { what });
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A C string argument that must be UTF-8 text (URLs, parameter names and values).
///
/// # Safety
/// As [`c_str_bytes`].
unsafe fn c_str_text<'a>(p: *const c_char, what: &'static str) -> Result<&'a str> {
    // SAFETY: same contract.
    let bytes = unsafe { c_str_bytes(p, what) }?;
    std::str::from_utf8(bytes).map_err(|_| Error::param(what, "not valid UTF-8"))
}

/// Read one value.
///
/// # Safety
/// The pointer members of `v` selected by its type tag are NULL or valid for the call.
#[inline]
unsafe fn value(v: &DbVal, index: usize) -> Result<Value<'_>, BadValue> {
    let bad = |problem| BadValue { index, problem };
    if !(DB_INT..=DB_BITMAP).contains(&v.type_) {
        return Err(bad(ValueProblem::UnknownType(v.type_)));
    }
    if v.nul != 0 {
        return Ok(Value::Null);
    }
    // SAFETY: the tag says which member the host wrote; pointers are checked by the helpers.
    unsafe {
        Ok(match v.type_ {
            DB_INT => Value::Int(v.val.int_val),
            DB_DOUBLE => Value::Double(v.val.double_val),
            DB_STRING => {
                Value::Str(c_str_or_null(v.val.string_val).ok_or(bad(ValueProblem::NullString))?)
            }
            DB_STR => Value::Str(str_bytes(v.val.str_val.s, v.val.str_val.len).map_err(bad)?),
            DB_DATETIME => Value::DateTime(v.val.time_val),
            DB_BLOB => Value::Blob(str_bytes(v.val.blob_val.s, v.val.blob_val.len).map_err(bad)?),
            _ => Value::Bitmap(v.val.bitmap_val),
        })
    }
}

/// Set a module parameter (the `modparam` of the C module) for every later `flat_db_init` in
/// this process; see docs/operations.md (Parameters) for names and values. Returns 0, or
/// `FLATSTORE_E_PARAM` when the name is unknown or the value malformed (nothing changes
/// then), `FLATSTORE_E_NULL`.
///
/// # Safety
/// `name` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flat_set_param(name: *const c_char, value: *const c_char) -> c_int {
    guard_code(|| {
        // SAFETY: contract above.
        let name = unsafe { c_str_text(name, "parameter name") }?;
        // SAFETY: contract above.
        let value = unsafe { c_str_text(value, "parameter value") }?;
        set_module_param(name, value)
    })
}

/// Open a connection for `url` = `flatstore:<dir>[?name=value&...]` (query parameters override
/// `flat_set_param`). The directory must exist; no file is opened until the first insert.
/// Returns a handle owned by the caller until `flat_db_close`, or NULL on error (see
/// `flat_last_error`; a URL that is not UTF-8 or not of that form is a bad URL).
///
/// # Safety
/// `url` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flat_db_init(url: *const c_char) -> *mut DbCon {
    let made = guard(|| {
        // SAFETY: contract above.
        let url = unsafe { c_str_bytes(url, "url") }?;
        Ok(Box::new(DbCon {
            table: std::ptr::null(),
            tail: connection_tail(url)?,
        }))
    });
    made.map_or(std::ptr::null_mut(), Box::into_raw)
}

/// Select the table the next inserts on `h` write to: `<dir>/<table>_<N>.log`. Names that are
/// empty, longer than 200 bytes, or contain `/`, `..` are refused. Returns 0 or a negative code.
///
/// # Safety
/// `h` is NULL or an open handle; `table` is NULL or a NUL-terminated string that stays valid
/// while it is the handle's table (it is stored in `h->table`, as the C module does).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flat_use_table(h: *mut DbCon, table: *const c_char) -> c_int {
    guard_code(|| {
        // SAFETY: contract above.
        let con = unsafe { handle_connection(h) }?;
        // SAFETY: contract above.
        con.use_table(unsafe { c_str_bytes(table, "table") }?)?;
        // SAFETY: `connection` checked that `h` is a live handle.
        unsafe { (*h).table = table };
        Ok(())
    })
}

/// Append one record (`n` values) as one line to the current table, with one `write(2)` at
/// `flush=1`. Returns 0, or a negative code; on any error nothing is written. The keys are
/// read only with `header=1`, at a table's first insert in a process, for `<table>.columns`.
/// Not thread-safe for one handle; each process writes its own files.
///
/// # Safety
/// `h` is NULL or an open handle; `v` is NULL or points to `n` values whose pointers (by type)
/// are NULL or valid for the call; `k` is NULL or points to `n` keys, each NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flat_db_insert(
    h: *mut DbCon,
    k: *const db_key_t,
    v: *const DbVal,
    n: c_int,
) -> c_int {
    guard_code(|| {
        // SAFETY: contract above.
        let con = unsafe { handle_connection(h) }?;
        let keys = || {
            // SAFETY: contract above; NULL keys (or a bad count) name no column.
            let keys = unsafe { slice_or_empty(k, n, "keys") }.unwrap_or_default();
            let count = usize::try_from(n).unwrap_or_default();
            // SAFETY: contract above, for each key.
            (0..count).map(|i| keys.get(i).and_then(|&key| unsafe { c_str_or_null(key) }))
        };
        // SAFETY: contract above.
        let values = unsafe { slice_or_empty(v, n, "values") }?;
        // SAFETY: contract above, for each value.
        let values = values
            .iter()
            .enumerate()
            .map(|(i, v)| unsafe { value(v, i) });
        insert_record(con, keys, values)
    })
}

/// Write out what is buffered, close the files and free `h`. NULL is ignored. A failed last
/// write is reported through `flat_last_error`. Using `h` afterwards is undefined behaviour, as
/// with the C module.
///
/// # Safety
/// `h` is NULL or an open handle, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flat_db_close(h: *mut DbCon) {
    // SAFETY: `h` is NULL or came from Box::into_raw in flat_db_init, not used again.
    let _ = guard(|| unsafe { close_handle(h) });
}

/// Declare this process's rank as the host numbers it (OpenSER: 0 main, negative for helper
/// processes, 1.. for workers). Files of this process are then `<table>_<N>.log` with
/// N = `rank <= 0 ? -rank : rank + 4`, as the C module names them; a process that declares
/// nothing (including a child forked later) uses its pid. Returns 0.
#[unsafe(no_mangle)]
pub extern "C" fn flat_child_init(rank: c_int) -> c_int {
    guard_code(|| {
        declare_rank(rank, 4);
        Ok(())
    })
}

/// Make the host's shared list of log directories: call it once in the host's main process
/// before it forks its processes (OpenSER: a module's `mod_init`). Every process forked
/// afterwards adds the directories it opens to the list, and `flat_rotate` in any of them, one
/// that never called `flat_db_init` too (a control or MI process), rotates them all. Without
/// it a process rotates only the directories it opened itself or inherited open. Idempotent.
/// Returns 0, or `FLATSTORE_E_SHARED_MEMORY`.
#[unsafe(no_mangle)]
pub extern "C" fn flat_share_with_children() -> c_int {
    guard_code(directories::share_with_children)
}

/// Request a rotation of every log directory this process has opened and of every directory in
/// the host's shared list (`flat_share_with_children`): every process of the host that shares
/// one (forked after `flat_db_init` or after `flat_share_with_children`) reopens its files
/// before its next write, so files renamed away receive nothing more. Records still buffered
/// go to the new files. Returns 0; `FLATSTORE_E_NOTHING_TO_ROTATE` when it reached no
/// directory (then nothing was rotated: never a success); another negative code when a
/// directory could not be asked (the others were).
#[unsafe(no_mangle)]
pub extern "C" fn flat_rotate() -> c_int {
    guard_code(|| match rotation::request_everywhere()? {
        0 => Err(Error::NothingToRotate),
        _ => Ok(()),
    })
}

/// The message of the last error on this thread ("" if none). The string stays valid until the
/// next failing `flat_*` call on the same thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn flat_last_error() -> *const c_char {
    last_error_ptr()
}

/// This library's version, `MAJOR.MINOR.PATCH` as in its `Cargo.toml`, `flatstore --version`
/// and the Debian package (a host can log it, or compare it with the version it was built
/// against). A static string: never NULL, valid for the life of the process; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn flat_version() -> *const c_char {
    VERSION.as_ptr()
}

/// [`flat_version`]'s string, NUL-terminated.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the crate version contains no NUL"),
    };

/// `flat_set_log` level: an error (something the library was asked to do failed, or records
/// were lost). The levels are syslog(3) priorities: a log function may pass them on as they are.
pub const FLATSTORE_LOG_ERR: c_int = 3;
/// `flat_set_log` level: a warning (it works, but should be fixed); syslog's `LOG_WARNING`.
pub const FLATSTORE_LOG_WARNING: c_int = 4;
/// `flat_set_log` level: normal but significant; syslog's `LOG_NOTICE` (not sent today).
pub const FLATSTORE_LOG_NOTICE: c_int = 5;
/// `flat_set_log` level: informational; syslog's `LOG_INFO` (not sent today).
pub const FLATSTORE_LOG_INFO: c_int = 6;

const _: () = assert!(FLATSTORE_LOG_ERR == Level::Error.syslog_priority());
const _: () = assert!(FLATSTORE_LOG_WARNING == Level::Warning.syslog_priority());
const _: () = assert!(FLATSTORE_LOG_NOTICE == Level::Notice.syslog_priority());
const _: () = assert!(FLATSTORE_LOG_INFO == Level::Info.syslog_priority());
// flat_set_log's documentation says so.
const _: () = assert!(MAX_MESSAGE == 2048);

/// A log function for `flat_set_log`: `level` is one of `FLATSTORE_LOG_*`, `message` a
/// NUL-terminated line without its newline, valid only during the call.
pub type flat_log_f = Option<unsafe extern "C" fn(level: c_int, message: *const c_char)>;

/// The host's log function, as a data pointer (NULL: none).
static HOST_LOG: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Hand the library a function for its own messages: what it reports where no caller is
/// waiting for an answer (a log directory other users can write to, a failed seal or interval
/// sync, column names not recorded, buffered records lost at exit; see docs/operations.md).
/// By default, and again after `flat_set_log(NULL)`, they go to standard error, one line each,
/// starting `flatstore: `. Errors returned to a caller (codes, `flat_last_error`) are not sent.
///
/// For this process and the processes it forks later. `log` may be called from any thread
/// (the connection's helper thread too), from an `atexit` hook, and from the library's SIGTERM
/// and SIGINT handler when buffered records cannot be written (`flush=0`): it must be safe
/// there, and stay callable for the life of the process (a call that started before
/// `flat_set_log` changed it may still reach the previous function). A message is at most
/// 2048 bytes and holds no NUL.
#[unsafe(no_mangle)]
pub extern "C" fn flat_set_log(log: flat_log_f) {
    match log {
        Some(log) => {
            HOST_LOG.store(log as *mut (), Ordering::Release);
            report::set_sink(Some(to_host));
        }
        None => {
            report::set_sink(None);
            HOST_LOG.store(std::ptr::null_mut(), Ordering::Release);
        }
    }
}

/// The sink `flat_set_log` installs: the message, NUL-terminated on the stack, to the host's
/// function; standard error if there is none.
fn to_host(level: Level, message: &str) {
    let log = HOST_LOG.load(Ordering::Acquire);
    if log.is_null() {
        return report::to_stderr(level, message);
    }
    // SAFETY: a non-NULL HOST_LOG was stored by flat_set_log from a function of this type.
    let log =
        unsafe { std::mem::transmute::<*mut (), unsafe extern "C" fn(c_int, *const c_char)>(log) };
    let mut text = [0u8; MAX_MESSAGE + 1];
    let bytes = &message.as_bytes()[..message.len().min(MAX_MESSAGE)];
    text[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: the host's function, per flat_set_log's contract; `text` is NUL-terminated
    // (reports hold no NUL) and lives across the call.
    unsafe { log(level.syslog_priority(), text.as_ptr().cast()) };
}
