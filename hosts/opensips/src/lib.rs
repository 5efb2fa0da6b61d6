//! flatstore as OpenSIPS 3.6's `db_flatstore` module: `loadmodule "db_flatstore.so"` and
//! `modparam("acc", "db_url", "flatstore:/var/log/opensips/acc")`, nothing else changed.
//!
//! OpenSIPS's loader reads one symbol, [`exports`]: its version strings (learnt from
//! `opensips -V` at build time, `build.rs`) must equal the core's, or OpenSIPS exits 1. The
//! database layer finds `db_bind_api` in its commands and gets use_table / init / close /
//! insert, over the core library's connection (`flatstore::ffi`). The MI command `flat_rotate`
//! makes every process reopen its files; the stock modparams are honoured or refused at
//! startup; the library's messages go through OpenSIPS's log ([`log`]). See `docs/opensips.md`.
#![allow(unsafe_code, non_upper_case_globals)]

pub mod abi;
mod log;

use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulong, c_void};

use flatstore::ffi::{
    BadValue, Handle, ValueProblem, c_str_or_null, close_handle, connection_tail, counted_keys,
    declare_process_number, guard, guard_code, handle_connection, insert_record,
    param_text_from_host, report_at_startup, rotate_everywhere, set_module_param,
    share_directories_with_children, slice_or_empty, str_bytes,
};
use flatstore::{Error, Value};

use abi::*;

mod strings {
    include!(concat!(env!("OUT_DIR"), "/opensips_abi.rs"));
}

impl Handle for DbCon {
    fn tail(&self) -> c_ulong {
        self.tail
    }
}

/// Data OpenSIPS reads through exported symbols: kept in writable memory, read by the one
/// thread that loads modules.
#[repr(transparent)]
pub struct Exported<T>(UnsafeCell<T>);

// SAFETY: OpenSIPS reads these tables from its main thread during startup only.
unsafe impl<T> Sync for Exported<T> {}

const NO_CMD_PARAM: CmdParam = CmdParam {
    flags: 0,
    fixup: None,
    free_fixup: None,
};

static COMMANDS: Exported<[CmdExport; 2]> = Exported(UnsafeCell::new([
    CmdExport {
        name: c"db_bind_api".as_ptr(),
        function: Some(db_bind_api),
        params: [NO_CMD_PARAM; CMD_PARAM_SLOTS],
        flags: 0,
    },
    CmdExport {
        name: std::ptr::null(),
        function: None,
        params: [NO_CMD_PARAM; CMD_PARAM_SLOTS],
        flags: 0,
    },
]));

/// The stock module's parameters, in its order.
const STOCK_PARAMS: [&CStr; 5] = [c"flush", c"delimiter", c"suffix", c"prefix", c"single_file"];

macro_rules! params {
    ($($i:literal)*) => {
        [
            $(
                ParamExport {
                    name: STOCK_PARAMS[$i].as_ptr(),
                    type_: INT_PARAM | STR_PARAM | USE_FUNC_PARAM,
                    ptr: Some(set_param::<$i>),
                },
            )*
            ParamExport { name: std::ptr::null(), type_: 0, ptr: None },
        ]
    };
}

static PARAMS: Exported<[ParamExport; STOCK_PARAMS.len() + 1]> =
    Exported(UnsafeCell::new(params!(0 1 2 3 4)));

const NO_RECIPE: MiRecipe = MiRecipe {
    cmd: None,
    params: [std::ptr::null(); MI_PARAMS],
};

const fn rotate_recipes() -> [MiRecipe; MI_RECIPES] {
    let mut recipes = [NO_RECIPE; MI_RECIPES];
    recipes[0].cmd = Some(mi_flat_rotate);
    recipes
}

static MI_COMMANDS: Exported<[MiExport; 2]> = Exported(UnsafeCell::new([
    MiExport {
        name: c"flat_rotate".as_ptr(),
        help: c"Params: none ; every process reopens its flatstore files before its next write."
            .as_ptr(),
        flags: 0,
        init_f: None,
        recipes: rotate_recipes(),
    },
    MiExport {
        name: std::ptr::null(),
        help: std::ptr::null(),
        flags: 0,
        init_f: None,
        recipes: [NO_RECIPE; MI_RECIPES],
    },
]));

/// What OpenSIPS's loader reads: the module as `db_flatstore`, an SQL database driver.
#[unsafe(no_mangle)]
pub static exports: Exported<ModuleExports> = Exported(UnsafeCell::new(ModuleExports {
    name: c"db_flatstore".as_ptr(),
    type_: MOD_TYPE_SQLDB,
    ver_info: VerInfo {
        version: strings::VERSION.as_ptr(),
        compile_flags: strings::FLAGS.as_ptr(),
        scm: ScmVersion {
            type_: strings::SCM_TYPE.as_ptr(),
            rev: strings::SCM_REV.as_ptr(),
        },
    },
    dlflags: 0,
    load_f: Some(load),
    deps: std::ptr::null(),
    cmds: COMMANDS.0.get().cast_const().cast(),
    acmds: std::ptr::null(),
    params: PARAMS.0.get().cast_const().cast(),
    stats: std::ptr::null(),
    mi_cmds: MI_COMMANDS.0.get().cast_const().cast(),
    items: std::ptr::null(),
    trans: std::ptr::null(),
    procs: std::ptr::null(),
    preinit_f: None,
    init_f: Some(mod_init),
    response_f: None,
    destroy_f: None,
    init_child_f: Some(child_init),
    reload_ack_f: None,
}));

/// Right after `dlopen`, before the modparams: log through OpenSIPS, and write text as the
/// stock module does (`escape=hex`) unless a URL says otherwise.
unsafe extern "C" fn load() -> c_int {
    log::through_opensips();
    report_at_startup(guard_code(|| set_module_param("escape", "hex")))
}

/// The value of one stock parameter as the core library takes it, or why it is refused: the
/// stock module's behaviour that one writer per file cannot keep is refused, loudly, at
/// startup rather than ignored.
fn stock_param(name: &str, text: &str) -> Result<Option<(&'static str, String)>, String> {
    match name {
        "flush" => Ok(Some(("flush", text.to_owned()))),
        "delimiter" if text == "|" => Ok(None),
        "delimiter" => Err("only \"|\" is supported".to_owned()),
        "suffix" if text == ".log" => Ok(None),
        "suffix" => Err(
            "only \".log\" is supported (names are <table>_<N>.log; pseudo-variables are not \
             expanded)"
                .to_owned(),
        ),
        "prefix" if text.is_empty() => Ok(None),
        "prefix" => Err("a file name prefix is not supported (names are <table>_<N>.log)".into()),
        "single_file" if text.trim() == "0" => Ok(None),
        "single_file" => Err(
            "only 0 is supported: every process writes its own file (one writer per file)".into(),
        ),
        _ => Err("unknown parameter".to_owned()),
    }
}

/// Set stock parameter `STOCK_PARAMS[I]` from OpenSIPS's value (an `int` or a `char*`).
unsafe extern "C" fn set_param<const I: usize>(kind: c_uint, value: *mut c_void) -> c_int {
    let name = STOCK_PARAMS[I].to_str().unwrap_or_default();
    let code = guard_code(|| {
        // SAFETY: a string parameter is a NUL-terminated string valid for the call.
        let text = unsafe { param_text_from_host(name, kind & INT_PARAM != 0, value) }?;
        match stock_param(name, &text) {
            Ok(Some((ours, value))) => set_module_param(ours, &value),
            Ok(None) => Ok(()),
            Err(reason) => Err(Error::BadParam {
                name: name.to_owned(),
                reason: format!("{text:?}: {reason}"),
            }),
        }
    });
    report_at_startup(code)
}

/// `mod_init`, in the main process before OpenSIPS forks: make the shared directory list, so
/// that the MI process can rotate the directories only the workers opened.
unsafe extern "C" fn mod_init() -> c_int {
    log::through_opensips();
    report_at_startup(guard_code(share_directories_with_children))
}

/// `PROC_MODULE`: every process a module asks for (mi_fifo's, among others) has this rank.
const PROC_MODULE: c_int = -2;
/// Ranks from this one up are given to every process forked by auto-scaling (10000 for UDP
/// workers, 20000 for timer and TCP workers): shared too.
const FIRST_SHARED_RANK: c_int = 10000;
/// N of a process whose rank is shared: this plus its pid. Linux pids stay below 2^22
/// (`PID_MAX_LIMIT`), so these numbers never meet the rank-based ones nor each other.
const SHARED_RANK_BASE: u32 = 1 << 22;

/// The file number N of a process of rank `rank` with pid `pid`: the stock module's
/// `rank + 4` for workers and `-rank` for OpenSIPS's own processes, except for the ranks that
/// several live processes share (`PROC_MODULE`, the auto-scaled ones), where it is
/// `2^22 + pid`, so that no two live writers ever share a file.
pub fn file_number(rank: c_int, pid: u32) -> u32 {
    if rank == PROC_MODULE || rank >= FIRST_SHARED_RANK {
        SHARED_RANK_BASE + pid
    } else if rank <= 0 {
        rank.unsigned_abs()
    } else {
        rank.unsigned_abs() + 4
    }
}

/// `child_init(rank)`: declare this process's file number ([`file_number`]).
unsafe extern "C" fn child_init(rank: c_int) -> c_int {
    guard_code(|| {
        declare_process_number(file_number(rank, std::process::id()));
        Ok(())
    })
}

/// `db_bind_api(url, dbf)`: fill `dbf` with the four functions flatstore provides. Called in
/// the main process by the module that binds (acc's `mod_init`), before OpenSIPS forks: the
/// shared directory list is made here too, whichever module initialises first.
unsafe extern "C" fn db_bind_api(_url: *const Str, dbf: *mut DbFunc) -> c_int {
    // SAFETY: OpenSIPS passes its db_func_t to fill, or NULL.
    let Some(dbf) = (unsafe { dbf.as_mut() }) else {
        return -1;
    };
    if report_at_startup(guard_code(share_directories_with_children)) < 0 {
        return -1;
    }
    *dbf = DbFunc {
        cap: 0,
        use_table: Some(use_table),
        init: Some(init),
        close: Some(close),
        query_to_free_result: [None; 4],
        insert: Some(insert),
        delete_to_async_timeout: [None; 9],
    };
    0
}

/// `init_mi_result_string` and `init_mi_error_extra` of the OpenSIPS core.
type MiResultString = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type MiErrorExtra =
    unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_int) -> *mut c_void;

/// MI `flat_rotate`: every process of this OpenSIPS reopens its files before its next write;
/// the reply is `OK`, or an error (500) when no directory was reached or one could not be
/// asked.
unsafe extern "C" fn mi_flat_rotate(_params: *const c_void, _async: *mut c_void) -> *mut c_void {
    let failure = match guard(rotate_everywhere) {
        Ok(0) => "no flatstore directory is open yet".to_owned(),
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    };
    // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only looks them up.
    let (ok, error) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"init_mi_result_string".as_ptr()),
            libc::dlsym(libc::RTLD_DEFAULT, c"init_mi_error_extra".as_ptr()),
        )
    };
    if ok.is_null() || error.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the OpenSIPS 3.6 functions of these names have these signatures (mi/item.h); they
    // copy the text given.
    unsafe {
        if failure.is_empty() {
            let ok = std::mem::transmute::<*mut c_void, MiResultString>(ok);
            return ok(c"OK".as_ptr(), 2);
        }
        log::error(&format!("flat_rotate: {failure}"));
        let text = CString::new(failure.replace('\0', " ")).unwrap_or_default();
        let error = std::mem::transmute::<*mut c_void, MiErrorExtra>(error);
        let len = c_int::try_from(text.as_bytes().len()).unwrap_or(0);
        error(500, text.as_ptr(), len, std::ptr::null(), 0)
    }
}

/// The bytes of a `str` argument; NULL, or NULL bytes with a positive length, is
/// [`Error::NullArgument`] `what`, a negative length `negative`'s error.
///
/// # Safety
/// `arg` is NULL or points to a `str` whose bytes are NULL or valid for its length, for `'a`.
unsafe fn str_argument<'a>(
    arg: *const Str,
    what: &'static str,
    negative: impl FnOnce() -> Error,
) -> flatstore::Result<&'a [u8]> {
    // SAFETY: contract above.
    let arg = unsafe { arg.as_ref() }.ok_or(Error::NullArgument { what })?;
    // SAFETY: contract above.
    unsafe { str_bytes(arg.s, arg.len) }.map_err(|problem| match problem {
        ValueProblem::NegativeLength(_) => negative(),
        _ => Error::NullArgument { what },
    })
}

/// `init(url)`: `url` is `flatstore:<dir>[?name=value&…]`. Opens no log file: acc calls it (and
/// `close`) in the main process before OpenSIPS forks, to check the URL.
unsafe extern "C" fn init(url: *const Str) -> *mut DbCon {
    let made = guard(|| {
        // SAFETY: OpenSIPS passes its db_url as a str, or NULL.
        let url = unsafe {
            str_argument(url, "url", || Error::BadUrl {
                url: String::new(),
                reason: "negative length",
            })
        }?;
        Ok(Box::new(DbCon {
            table: std::ptr::null(),
            curr_ps: std::ptr::null_mut(),
            ins_list: std::ptr::null_mut(),
            tail: connection_tail(url)?,
            url: Str {
                s: std::ptr::null_mut(),
                len: 0,
            },
            flags: 0,
        }))
    });
    match made {
        Ok(handle) => Box::into_raw(handle),
        Err(_) => {
            report_at_startup(-1);
            std::ptr::null_mut()
        }
    }
}

/// `use_table(h, table)`.
unsafe extern "C" fn use_table(h: *mut DbCon, table: *const Str) -> c_int {
    guard_code(|| {
        // SAFETY: OpenSIPS passes a handle from init.
        let con = unsafe { handle_connection(h) }?;
        // SAFETY: OpenSIPS passes the table name as a str that outlives the handle's use.
        let bytes = unsafe {
            str_argument(table, "table", || Error::BadTable {
                name: String::new(),
                reason: "negative length",
            })
        }?;
        con.use_table(bytes)?;
        // SAFETY: `handle_connection` checked that `h` is a live handle.
        unsafe { (*h).table = table };
        Ok(())
    })
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
            DB_BIGINT => Value::BigInt(v.val.bigint_val),
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

/// `insert(h, keys, values, n)`: one line. The keys are read only with `header=1`.
unsafe extern "C" fn insert(
    h: *const DbCon,
    k: *const db_key_t,
    v: *const DbVal,
    n: c_int,
) -> c_int {
    guard_code(|| {
        // SAFETY: OpenSIPS passes a handle from init.
        let con = unsafe { handle_connection(h) }?;
        // SAFETY: OpenSIPS passes n keys (acc: its column names), or NULL.
        let keys = || unsafe { counted_keys(k, n) };
        // SAFETY: OpenSIPS passes n values.
        let values = unsafe { slice_or_empty(v, n, "values") }?;
        // SAFETY: each value's pointers are valid for the call.
        let values = values
            .iter()
            .enumerate()
            .map(|(i, v)| unsafe { value(v, i) });
        insert_record(con, keys, values)
    })
}

/// `close(h)`: write out what is buffered and free the handle.
unsafe extern "C" fn close(h: *mut DbCon) {
    // SAFETY: `h` is NULL or came from Box::into_raw in init, not used again.
    let _ = guard(|| unsafe { close_handle(h) });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stock rule where a rank is a process's own; pid-based numbers above every rank-based
    /// one where a rank is shared.
    #[test]
    fn file_numbers_follow_the_stock_rule_except_for_shared_ranks() {
        assert_eq!(file_number(-1, 77), 1);
        assert_eq!(file_number(-4, 77), 4);
        assert_eq!(file_number(1, 77), 5);
        assert_eq!(file_number(3, 77), 7);
        assert_eq!(file_number(PROC_MODULE, 77), (1 << 22) + 77);
        assert_eq!(file_number(10000, 78), (1 << 22) + 78);
        assert_eq!(file_number(20000, 79), (1 << 22) + 79);
        assert_ne!(file_number(PROC_MODULE, 5), file_number(1, 5));
    }

    /// The stock parameters: accepted at the values one writer per file keeps, refused with the
    /// reason otherwise; `flush` goes through.
    #[test]
    fn stock_parameters_are_honoured_or_refused() {
        assert_eq!(
            stock_param("flush", "0"),
            Ok(Some(("flush", "0".to_owned())))
        );
        assert_eq!(stock_param("delimiter", "|"), Ok(None));
        assert_eq!(stock_param("suffix", ".log"), Ok(None));
        assert_eq!(stock_param("prefix", ""), Ok(None));
        assert_eq!(stock_param("single_file", "0"), Ok(None));
        for (name, value) in [
            ("delimiter", ";"),
            ("suffix", ".$time(%Y)"),
            ("prefix", "x_"),
            ("single_file", "1"),
        ] {
            assert!(stock_param(name, value).is_err(), "{name}={value}");
        }
    }
}
