//! The OpenSER 1.3 module face of flatstore: a loadable module named `flatstore`, the stock
//! `modules/flatstore`'s drop-in (`loadmodule ".../flatstore.so"`, then
//! `modparam("acc", "db_url", "flatstore:/var/log/openser/acc")`).
//!
//! OpenSER's loader `dlopen`s the module, compares `module_version` and `module_flags` with its
//! own strings (learnt at build time from `openser -V`, see `build.rs`; on a mismatch OpenSER
//! logs and exits with status 0), then reads `exports`. `bind_dbmod` finds the database
//! functions by name and parameter count in `exports.cmds`: they are the library's OpenSER C
//! API (`flat_db_init`, `flat_use_table`, `flat_db_insert`, `flat_db_close`), whose types are
//! OpenSER 1.3's own byte for byte — one set of functions, two faces. `child_init` declares
//! the rank (`<table>_<rank + 4>.log` for SIP workers, as the stock module), `mod_init` makes
//! the shared directory list before OpenSER forks, and the MI command `flat_rotate` rotates
//! every directory the workers opened from OpenSER's MI process (which never runs a module's
//! `child_init` and never opens one itself), answering only when no process can still append to
//! a renamed file. The module links nothing of OpenSER: the one core function it calls, MI's
//! `init_mi_tree`, it finds at run time in the openser executable.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rust_2018_idioms
)]
#![allow(non_upper_case_globals)]

use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::mem::{offset_of, size_of};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use flatstore::Error;
use flatstore::ffi::openser::{flat_db_close, flat_db_init, flat_db_insert, flat_use_table};
use flatstore::ffi::{
    PARAMETER_NAMES, declare_rank, guard, guard_code, param_text_from_host, report_at_startup,
    rotate_everywhere_and_wait, set_module_param, share_directories_with_children,
};

mod abi {
    include!(concat!(env!("OUT_DIR"), "/openser_abi.rs"));
}

/// A function of OpenSER's tables this module does not provide (always NULL).
type Absent = Option<unsafe extern "C" fn()>;

/// OpenSER's `cmd_export_t`. `function` is a `cmd_function`; for the database functions
/// `bind_dbmod` casts it back to the function's real type.
#[repr(C)]
pub struct CmdExport {
    /// Command name (`db_init`, ...).
    pub name: *const c_char,
    /// The function, as an untyped pointer.
    pub function: *const c_void,
    /// The parameter count `find_export` matches (`db_init` 1, the others 2).
    pub param_no: c_int,
    /// Script fixup: none.
    pub fixup: Absent,
    /// Script fixup release: none.
    pub free_fixup: Absent,
    /// Flags: none.
    pub flags: c_int,
}

/// OpenSER's `modparam_t` bits used here.
const STR_PARAM: c_uint = 1 << 0;
const INT_PARAM: c_uint = 1 << 1;
const USE_FUNC_PARAM: c_uint = 1 << 31;

type ParamFunc = unsafe extern "C" fn(c_uint, *mut c_void) -> c_int;

/// OpenSER's `param_export_t`.
#[repr(C)]
pub struct ParamExport {
    /// Parameter name.
    pub name: *const c_char,
    /// `INT_PARAM` or `STR_PARAM`, with `USE_FUNC_PARAM`.
    pub type_: c_uint,
    /// The setter.
    pub ptr: Option<ParamFunc>,
}

/// `struct mi_root* (mi_cmd_f)(struct mi_root*, void *param)`; the trees are opaque here.
type MiCmd = unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void;

/// OpenSER's `mi_export_t`.
#[repr(C)]
pub struct MiExport {
    /// Command name.
    pub name: *const c_char,
    /// The command.
    pub cmd: Option<MiCmd>,
    /// `MI_NO_INPUT_FLAG` for a command without arguments.
    pub flags: c_uint,
    /// Passed to the command: none.
    pub param: *const c_void,
    /// Per-process init of the MI process: none.
    pub init_f: Absent,
}

/// MI's flag for a command that takes no input tree.
const MI_NO_INPUT_FLAG: c_uint = 1 << 1;

/// OpenSER's `struct module_exports`.
#[repr(C)]
pub struct ModuleExports {
    /// Module name: `flatstore`, the name `db_url "flatstore:…"` binds to.
    pub name: *const c_char,
    /// dlopen flags: OpenSER's default.
    pub dlflags: c_uint,
    /// Exported commands: the database functions.
    pub cmds: *const CmdExport,
    /// Module parameters.
    pub params: *const ParamExport,
    /// Statistics: none.
    pub stats: *const c_void,
    /// MI commands.
    pub mi_cmds: *const MiExport,
    /// Pseudo-variables: none.
    pub items: *const c_void,
    /// Extra processes: none.
    pub procs: *const c_void,
    /// Called once in the main process before it forks.
    pub init_f: Option<unsafe extern "C" fn() -> c_int>,
    /// Reply hook: none.
    pub response_f: Absent,
    /// Called at shutdown: none (the library writes out what is buffered at exit).
    pub destroy_f: Absent,
    /// Called in every process OpenSER forks (and in the main one) with its rank.
    pub init_child_f: Option<unsafe extern "C" fn(c_int) -> c_int>,
}

// The layouts measured with OpenSER's own headers (x86_64, ../shared/hosts/README.md).
const _: () = assert!(size_of::<CmdExport>() == 48);
const _: () = assert!(size_of::<ParamExport>() == 24);
const _: () = assert!(size_of::<MiExport>() == 40);
const _: () = assert!(size_of::<ModuleExports>() == 96);
const _: () = assert!(offset_of!(ModuleExports, cmds) == 16);
const _: () = assert!(offset_of!(ModuleExports, mi_cmds) == 40);
const _: () = assert!(offset_of!(ModuleExports, init_f) == 64);
const _: () = assert!(offset_of!(ModuleExports, init_child_f) == 88);

/// Data OpenSER reads (and may write) through exported symbols: kept in writable memory, and
/// shared by the one thread that loads modules.
#[repr(transparent)]
pub struct Exported<T>(UnsafeCell<T>);

// SAFETY: OpenSER reads these tables from its main thread during startup only.
unsafe impl<T> Sync for Exported<T> {}

/// The version string OpenSER's loader compares with its own (`openser -V`).
#[unsafe(no_mangle)]
pub static module_version: Exported<*const c_char> =
    Exported(UnsafeCell::new(abi::VERSION.as_ptr()));

/// The compile-flags string OpenSER's loader compares with its own (`openser -V`).
#[unsafe(no_mangle)]
pub static module_flags: Exported<*const c_char> = Exported(UnsafeCell::new(abi::FLAGS.as_ptr()));

/// One entry of the command table.
const fn command(name: &'static CStr, function: *const c_void, param_no: c_int) -> CmdExport {
    CmdExport {
        name: name.as_ptr(),
        function,
        param_no,
        fixup: None,
        free_fixup: None,
        flags: 0,
    }
}

/// The database functions, as `bind_dbmod` looks them up (name and parameter count); each is
/// the library's C API function of OpenSER's type.
static COMMANDS: Exported<[CmdExport; 5]> = Exported(UnsafeCell::new([
    command(c"db_use_table", flat_use_table as *const c_void, 2),
    command(c"db_init", flat_db_init as *const c_void, 1),
    command(c"db_close", flat_db_close as *const c_void, 2),
    command(c"db_insert", flat_db_insert as *const c_void, 2),
    CmdExport {
        name: std::ptr::null(),
        function: std::ptr::null(),
        param_no: 0,
        fixup: None,
        free_fixup: None,
        flags: 0,
    },
]));

/// Set parameter `PARAMETER_NAMES[I]` from OpenSER's value (an `int` or a `char*`).
unsafe extern "C" fn set_param<const I: usize>(kind: c_uint, value: *mut c_void) -> c_int {
    let name = PARAMETER_NAMES[I].to_str().unwrap_or_default();
    let code = guard_code(|| {
        // SAFETY: a string parameter is a NUL-terminated string valid for the call.
        let text = unsafe { param_text_from_host(name, kind & INT_PARAM != 0, value) }?;
        set_module_param(name, &text)
    });
    report_at_startup(code)
}

macro_rules! params {
    ($($i:literal)*) => {
        [
            $(
                ParamExport {
                    name: PARAMETER_NAMES[$i].as_ptr(),
                    type_: INT_PARAM | USE_FUNC_PARAM,
                    ptr: Some(set_param::<$i>),
                },
                ParamExport {
                    name: PARAMETER_NAMES[$i].as_ptr(),
                    type_: STR_PARAM | USE_FUNC_PARAM,
                    ptr: Some(set_param::<$i>),
                },
            )*
            ParamExport { name: std::ptr::null(), type_: 0, ptr: None },
        ]
    };
}

/// Every parameter of the library (`flush`, the stock module's one, and ours), as an int or a
/// string.
static PARAMS: Exported<[ParamExport; 2 * PARAMETER_NAMES.len() + 1]> = Exported(UnsafeCell::new(
    params!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16),
));

static MI_COMMANDS: Exported<[MiExport; 2]> = Exported(UnsafeCell::new([
    MiExport {
        name: c"flat_rotate".as_ptr(),
        cmd: Some(mi_flat_rotate),
        flags: MI_NO_INPUT_FLAG,
        param: std::ptr::null(),
        init_f: None,
    },
    MiExport {
        name: std::ptr::null(),
        cmd: None,
        flags: 0,
        param: std::ptr::null(),
        init_f: None,
    },
]));

/// What OpenSER's loader reads: the module as `flatstore`.
#[unsafe(no_mangle)]
pub static exports: Exported<ModuleExports> = Exported(UnsafeCell::new(ModuleExports {
    name: c"flatstore".as_ptr(),
    dlflags: 0,
    cmds: COMMANDS.0.get().cast_const().cast(),
    params: PARAMS.0.get().cast_const().cast(),
    stats: std::ptr::null(),
    mi_cmds: MI_COMMANDS.0.get().cast_const().cast(),
    items: std::ptr::null(),
    procs: std::ptr::null(),
    init_f: Some(mod_init),
    response_f: None,
    destroy_f: None,
    init_child_f: Some(child_init),
}));

/// `mod_init`: make the shared directory list before OpenSER forks, so that the MI process
/// can rotate the directories only the workers open.
unsafe extern "C" fn mod_init() -> c_int {
    report_at_startup(guard_code(share_directories_with_children))
}

/// `child_init(rank)`: files of this process are `<table>_<N>.log` with N = `-rank` for
/// OpenSER's own processes (rank ≤ 0: main 0, timer 1, TCP main 4) and `rank + 4` for SIP
/// workers, as the stock module names them.
unsafe extern "C" fn child_init(rank: c_int) -> c_int {
    guard_code(|| {
        declare_rank(rank, 4);
        Ok(())
    })
}

/// How long the MI `flat_rotate` waits for writes in flight before it answers with an error.
const ROTATE_WAIT: Duration = Duration::from_secs(10);

/// MI's `init_mi_tree(code, reason, reason_len)`: a reply tree; it keeps the pointer to
/// `reason`, which must outlive the reply.
type InitMiTree = unsafe extern "C" fn(c_uint, *const c_char, c_int) -> *mut c_void;

/// The reason of the last error reply: MI keeps a pointer to it until the reply is written
/// (after the command returns), so it lives here until the next command's.
static ERROR_REASON: Mutex<Option<CString>> = Mutex::new(None);

/// MI `flat_rotate` (`openserctl fifo flat_rotate`, or `:flat_rotate:REPLY_FIFO` written to
/// mi_fifo's FIFO): request a rotation of every directory any process of this OpenSER opened,
/// and answer `200 OK` once no process can still append to a file renamed before the command.
/// `500` with the reason when nothing was rotated (no process has opened a directory yet) or
/// a writer held it up for longer than 10 s.
unsafe extern "C" fn mi_flat_rotate(_cmd: *mut c_void, _param: *mut c_void) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
    let init_mi_tree = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"init_mi_tree".as_ptr()) };
    if init_mi_tree.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: OpenSER's `struct mi_root *init_mi_tree(unsigned int, char*, int)` (mi/tree.h).
    let init_mi_tree = unsafe { std::mem::transmute::<*mut c_void, InitMiTree>(init_mi_tree) };
    let outcome = guard(|| match rotate_everywhere_and_wait(ROTATE_WAIT)? {
        0 => Err(Error::NothingToRotate),
        _ => Ok(()),
    });
    match outcome {
        // SAFETY: a static reason of the given length.
        Ok(()) => unsafe { init_mi_tree(200, c"OK".as_ptr(), 2) },
        Err(error) => {
            let reason = CString::new(error.to_string().replace('\0', " ")).unwrap_or_default();
            let mut kept = ERROR_REASON.lock().unwrap_or_else(PoisonError::into_inner);
            let reason = kept.insert(reason);
            let len = c_int::try_from(reason.as_bytes().len()).unwrap_or(c_int::MAX);
            // SAFETY: the reason lives in ERROR_REASON until the next error reply; MI writes
            // the reply before it reads the next command.
            unsafe { init_mi_tree(500, reason.as_ptr(), len) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find_mod_export(name, param_no)` as `bind_dbmod` calls it, on our table.
    fn find(name: &CStr, param_no: c_int) -> Option<*const c_void> {
        // SAFETY: the static table, read as OpenSER reads it (until the NULL name).
        let table = unsafe { &*COMMANDS.0.get() };
        table
            .iter()
            .take_while(|c| !c.name.is_null())
            // SAFETY: every name in the table is a static C string.
            .find(|c| unsafe { CStr::from_ptr(c.name) } == name && c.param_no == param_no)
            .map(|c| c.function)
    }

    /// `bind_dbmod` finds the four functions it needs, with OpenSER's parameter counts, and
    /// they are the library's C API; nothing answers the query family.
    #[test]
    fn bind_dbmod_finds_the_c_api_functions() {
        assert_eq!(
            find(c"db_use_table", 2),
            Some(flat_use_table as *const c_void)
        );
        assert_eq!(find(c"db_init", 1), Some(flat_db_init as *const c_void));
        assert_eq!(find(c"db_close", 2), Some(flat_db_close as *const c_void));
        assert_eq!(find(c"db_insert", 2), Some(flat_db_insert as *const c_void));
        assert_eq!(find(c"db_init", 2), None);
        assert_eq!(find(c"db_query", 2), None);
    }

    /// Every parameter of the library is settable as an int and as a string, and the names
    /// are OpenSER's `modparam("flatstore", ...)` names.
    #[test]
    fn every_parameter_is_exported_as_int_and_string() {
        // SAFETY: the static table, read until its NULL name.
        let params = unsafe { &*PARAMS.0.get() };
        let exported: Vec<(&CStr, c_uint)> = params
            .iter()
            .take_while(|p| !p.name.is_null())
            // SAFETY: every name in the table is a static C string.
            .map(|p| (unsafe { CStr::from_ptr(p.name) }, p.type_ & !USE_FUNC_PARAM))
            .collect();
        for name in PARAMETER_NAMES {
            for kind in [INT_PARAM, STR_PARAM] {
                assert!(exported.contains(&(name, kind)), "{name:?} as {kind}");
            }
        }
        assert!(
            exported.contains(&(c"flush", INT_PARAM)),
            "the stock module's flush"
        );
        // SAFETY: the static table; its module name is a static C string.
        let name = unsafe { CStr::from_ptr((*exports.0.get()).name) };
        assert_eq!(
            name, c"flatstore",
            "the name db_url \"flatstore:...\" binds to"
        );
    }
}
