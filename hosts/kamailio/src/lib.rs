//! The Kamailio 5.x module face of flatstore: a loadable module named `db_flatstore` whose
//! `db_bind_api` fills srdb1's `db_func_t` with use_table / init / close / insert, with
//! Kamailio's modparams and the RPC commands `flatstore.rotate` and `flatstore.k_rotate`.
//!
//! Kamailio's loader `dlopen`s the module, compares `module_version` and `module_flags` with
//! its own strings (learnt at build time, see `build.rs`), then reads `exports`. The module
//! links nothing of Kamailio: its one use of the core, logging (the library's messages go
//! where every module's do, see `CoreLog`), is found at run time in the kamailio executable.
//! Everything else is the library's, through its host toolkit [`flatstore::ffi`].
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rust_2018_idioms
)]
#![allow(non_camel_case_types, non_upper_case_globals)]

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong, c_void};
use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

use flatstore::ffi::{
    BadValue, Handle, PARAMETER_NAMES, ValueProblem, c_str_or_null, close_handle, connection_tail,
    counted_keys, declare_rank, guard, guard_code, handle_connection, insert_record,
    param_text_from_host, report_at_startup, rotate_everywhere, set_module_param,
    share_directories_with_children, slice_or_empty, str_bytes,
};
use flatstore::report::{self, Level};
use flatstore::{Error, Result, Value};

mod abi {
    include!(concat!(env!("OUT_DIR"), "/kamailio_abi.rs"));
}

/// Kamailio's counted string (`str`, the same in every OpenSER descendant): `s` is not
/// NUL-terminated.
pub use flatstore::ffi::openser::Str;

/// A column name; read only with `header=1`.
pub type db_key_t = *const Str;

/// srdb1's type tags, `DB1_INT` … `DB1_UBIGINT`; `DB1_UNKNOWN` (10) and anything else refuse
/// the record.
pub type db_type_t = c_int;
/// `int`, `%d`.
pub const DB1_INT: db_type_t = 0;
/// `long long`, `%lld`.
pub const DB1_BIGINT: db_type_t = 1;
/// `double`, `%f`.
pub const DB1_DOUBLE: db_type_t = 2;
/// NUL-terminated string.
pub const DB1_STRING: db_type_t = 3;
/// Counted string.
pub const DB1_STR: db_type_t = 4;
/// `time_t`, `%u` of `(unsigned int)` the value.
pub const DB1_DATETIME: db_type_t = 5;
/// Counted bytes, `\xHH` escapes.
pub const DB1_BLOB: db_type_t = 6;
/// `unsigned int` flags, `%u`.
pub const DB1_BITMAP: db_type_t = 7;
/// `unsigned int`, `%u`.
pub const DB1_UINT: db_type_t = 8;
/// `unsigned long long`, `%llu`.
pub const DB1_UBIGINT: db_type_t = 9;

/// The value union of srdb1's `db_val_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DbValUnion {
    /// `DB1_INT`.
    pub int_val: c_int,
    /// `DB1_BIGINT`.
    pub ll_val: i64,
    /// `DB1_DOUBLE`.
    pub double_val: f64,
    /// `DB1_DATETIME`.
    pub time_val: libc::time_t,
    /// `DB1_STRING`.
    pub string_val: *const c_char,
    /// `DB1_STR`.
    pub str_val: Str,
    /// `DB1_BLOB`.
    pub blob_val: Str,
    /// `DB1_BITMAP`.
    pub bitmap_val: c_uint,
    /// `DB1_UINT`.
    pub uint_val: c_uint,
    /// `DB1_UBIGINT`.
    pub ull_val: u64,
}

/// srdb1's `db_val_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DbVal {
    /// The type tag.
    pub type_: db_type_t,
    /// Non-zero: SQL NULL, written as an empty field.
    pub nul: c_int,
    /// Kamailio's "free after use" flag; not read.
    pub free: c_int,
    /// The value, read according to `type_`.
    pub val: DbValUnion,
}

/// srdb1's `db1_con_t`. `table` is the name last given to `use_table` (owned by the host);
/// `tail` is flatstore's connection.
#[repr(C)]
#[derive(Debug)]
pub struct Db1Con {
    /// The current table.
    pub table: *const Str,
    /// Quote character for table names; unused (NULL).
    pub tquote: *const c_char,
    /// flatstore's connection state.
    pub tail: c_ulong,
}

type UseTable = unsafe extern "C" fn(*mut Db1Con, *const Str) -> c_int;
type Init = unsafe extern "C" fn(*const Str) -> *mut Db1Con;
type Close = unsafe extern "C" fn(*mut Db1Con);
type Insert = unsafe extern "C" fn(*const Db1Con, *const db_key_t, *const DbVal, c_int) -> c_int;
/// A function of `db_func_t` flatstore does not provide (always NULL).
type Absent = Option<unsafe extern "C" fn()>;

/// srdb1's `db_func_t`: capabilities, then 22 functions in this order.
#[repr(C)]
pub struct DbFunc {
    /// Capabilities; computed by Kamailio from the functions set.
    pub cap: c_uint,
    /// `use_table`.
    pub use_table: Option<UseTable>,
    /// `init`.
    pub init: Option<Init>,
    /// `init2` … `fetch_result`, `raw_query`, `free_result`: absent.
    pub init2: Absent,
    /// `close`.
    pub close: Option<Close>,
    /// `query`, `fetch_result`, `raw_query`, `free_result`: absent.
    pub query_to_free_result: [Absent; 4],
    /// `insert`.
    pub insert: Option<Insert>,
    /// `delete` … `raw_query_async`: absent.
    pub delete_to_raw_query_async: [Absent; 13],
}

/// Kamailio's `cmd_export_t` (only `db_bind_api` is exported).
#[repr(C)]
pub struct CmdExport {
    /// Command name.
    pub name: *const c_char,
    /// The function; here `int db_bind_api(db_func_t*)`.
    pub function: Option<unsafe extern "C" fn(*mut DbFunc) -> c_int>,
    /// Number of script parameters.
    pub param_no: c_int,
    /// Script fixups: none.
    pub fixup: Absent,
    /// Script fixup release: none.
    pub free_fixup: Absent,
    /// Script flags: none.
    pub flags: c_uint,
}

/// Kamailio's `modparam_t` bits used here.
const PARAM_STRING: c_uint = 1 << 0;
const PARAM_INT: c_uint = 1 << 1;
const PARAM_USE_FUNC: c_uint = 1 << 31;

type ParamFunc = unsafe extern "C" fn(c_uint, *mut c_void) -> c_int;

/// Kamailio's `param_export_t`.
#[repr(C)]
pub struct ParamExport {
    /// Parameter name.
    pub name: *const c_char,
    /// `PARAM_INT` or `PARAM_STRING`, with `PARAM_USE_FUNC`.
    pub type_: c_uint,
    /// The setter.
    pub ptr: Option<ParamFunc>,
}

/// The start of Kamailio's `rpc_t`: its first member replies with an error.
#[repr(C)]
pub struct Rpc {
    /// `void fault(void* ctx, int code, char* fmt, ...)`.
    pub fault: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char, ...)>,
}

/// Kamailio's `rpc_export_t`.
#[repr(C)]
pub struct RpcExport {
    /// Method name.
    pub name: *const c_char,
    /// The method.
    pub function: Option<unsafe extern "C" fn(*mut Rpc, *mut c_void)>,
    /// NULL-terminated documentation strings.
    pub doc_str: *const *const c_char,
    /// Flags: none.
    pub flags: c_uint,
}

/// Kamailio's `module_exports_t`.
#[repr(C)]
pub struct ModuleExports {
    /// Module name: `db_flatstore`, the name `db_url "flatstore:…"` binds to.
    pub name: *const c_char,
    /// dlopen flags: Kamailio's default.
    pub dlflags: c_uint,
    /// Script commands.
    pub cmds: *const CmdExport,
    /// Module parameters.
    pub params: *const ParamExport,
    /// RPC methods.
    pub rpc_methods: *const RpcExport,
    /// Pseudo-variables: none.
    pub pv_items: *const c_void,
    /// Reply hook: none.
    pub response_f: Absent,
    /// Called once in the main process before the workers are forked.
    pub init: Option<unsafe extern "C" fn() -> c_int>,
    /// Called in every process with its rank.
    pub child_init: Option<unsafe extern "C" fn(c_int) -> c_int>,
    /// Called at shutdown: none.
    pub destroy: Absent,
}

const _: () = assert!(size_of::<Str>() == 16);
const _: () = assert!(size_of::<DbValUnion>() == 16);
const _: () = assert!(size_of::<DbVal>() == 32);
const _: () = assert!(offset_of!(DbVal, free) == 8);
const _: () = assert!(offset_of!(DbVal, val) == 16);
const _: () = assert!(size_of::<Db1Con>() == 24);
const _: () = assert!(offset_of!(Db1Con, tail) == 16);

impl Handle for Db1Con {
    fn tail(&self) -> c_ulong {
        self.tail
    }
}
const _: () = assert!(size_of::<DbFunc>() == 8 + 22 * 8);
const _: () = assert!(offset_of!(DbFunc, insert) == 8 + 8 * 8);
const _: () = assert!(size_of::<CmdExport>() == 48);
const _: () = assert!(size_of::<ParamExport>() == 24);
const _: () = assert!(size_of::<RpcExport>() == 32);
const _: () = assert!(size_of::<ModuleExports>() == 80);
const _: () = assert!(offset_of!(ModuleExports, destroy) == 72);

/// Data Kamailio reads (and may write) through exported symbols: kept in writable memory, and
/// shared by the one thread that loads modules.
#[repr(transparent)]
pub struct Exported<T>(UnsafeCell<T>);

// SAFETY: Kamailio reads these tables from its main thread during startup only.
unsafe impl<T> Sync for Exported<T> {}

/// The version string Kamailio's loader compares with its own (`kamailio -V`).
#[unsafe(no_mangle)]
pub static module_version: Exported<*const c_char> =
    Exported(UnsafeCell::new(abi::VERSION.as_ptr()));

/// The compile-flags string Kamailio's loader compares with its own (`kamailio -V`).
#[unsafe(no_mangle)]
pub static module_flags: Exported<*const c_char> = Exported(UnsafeCell::new(abi::FLAGS.as_ptr()));

static COMMANDS: Exported<[CmdExport; 2]> = Exported(UnsafeCell::new([
    CmdExport {
        name: c"db_bind_api".as_ptr(),
        function: Some(db_bind_api),
        param_no: 0,
        fixup: None,
        free_fixup: None,
        flags: 0,
    },
    CmdExport {
        name: std::ptr::null(),
        function: None,
        param_no: 0,
        fixup: None,
        free_fixup: None,
        flags: 0,
    },
]));

/// Set parameter `PARAMETER_NAMES[I]` from Kamailio's value (an `int` or a `char*`).
unsafe extern "C" fn set_param<const I: usize>(kind: c_uint, value: *mut c_void) -> c_int {
    // Modparams come before mod_init: a refused one is logged through Kamailio too.
    log_through_kamailio();
    let name = PARAMETER_NAMES[I].to_str().unwrap_or_default();
    let code = guard_code(|| {
        // SAFETY: a string parameter is a NUL-terminated string valid for the call.
        let text = unsafe { param_text_from_host(name, kind & PARAM_INT != 0, value) }?;
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
                    type_: PARAM_INT | PARAM_USE_FUNC,
                    ptr: Some(set_param::<$i>),
                },
                ParamExport {
                    name: PARAMETER_NAMES[$i].as_ptr(),
                    type_: PARAM_STRING | PARAM_USE_FUNC,
                    ptr: Some(set_param::<$i>),
                },
            )*
            ParamExport { name: std::ptr::null(), type_: 0, ptr: None },
        ]
    };
}

static PARAMS: Exported<[ParamExport; 2 * PARAMETER_NAMES.len() + 1]> = Exported(UnsafeCell::new(
    params!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16),
));

static ROTATE_DOC: Exported<[*const c_char; 2]> = Exported(UnsafeCell::new([
    c"Make every process reopen its flatstore files before its next write.".as_ptr(),
    std::ptr::null(),
]));

static RPC_METHODS: Exported<[RpcExport; 3]> = Exported(UnsafeCell::new([
    RpcExport {
        name: c"flatstore.rotate".as_ptr(),
        function: Some(rpc_rotate),
        doc_str: ROTATE_DOC.0.get().cast_const().cast(),
        flags: 0,
    },
    RpcExport {
        name: c"flatstore.k_rotate".as_ptr(),
        function: Some(rpc_rotate),
        doc_str: ROTATE_DOC.0.get().cast_const().cast(),
        flags: 0,
    },
    RpcExport {
        name: std::ptr::null(),
        function: None,
        doc_str: std::ptr::null(),
        flags: 0,
    },
]));

/// What Kamailio's loader reads: the module as `db_flatstore`.
#[unsafe(no_mangle)]
pub static exports: Exported<ModuleExports> = Exported(UnsafeCell::new(ModuleExports {
    name: c"db_flatstore".as_ptr(),
    dlflags: 0,
    cmds: COMMANDS.0.get().cast_const().cast(),
    params: PARAMS.0.get().cast_const().cast(),
    rpc_methods: RPC_METHODS.0.get().cast_const().cast(),
    pv_items: std::ptr::null(),
    response_f: None,
    init: Some(mod_init),
    child_init: Some(child_init),
    destroy: None,
}));

/// Kamailio's `PROC_INIT`: `child_init` in the main process before anything is forked.
const PROC_INIT: c_int = -127;

/// `mod_init`: log through Kamailio from now on, and make the shared directory list before
/// Kamailio forks, so that the RPC process can rotate directories only the workers opened.
unsafe extern "C" fn mod_init() -> c_int {
    log_through_kamailio();
    report_at_startup(guard_code(share_directories_with_children))
}

/// `child_init(rank)`: files of this process are `<table>_<N>.log` with N = `-rank` for
/// Kamailio's own processes (rank ≤ 0) and `rank + 128` for workers, as the stock module.
unsafe extern "C" fn child_init(rank: c_int) -> c_int {
    guard_code(|| {
        if rank != PROC_INIT {
            declare_rank(rank, 128);
        }
        Ok(())
    })
}

/// `db_bind_api`: fill `dbf` with the four functions flatstore provides.
unsafe extern "C" fn db_bind_api(dbf: *mut DbFunc) -> c_int {
    // SAFETY: Kamailio passes its db_func_t to fill, or NULL.
    let Some(dbf) = (unsafe { dbf.as_mut() }) else {
        return -1;
    };
    *dbf = DbFunc {
        cap: 0,
        use_table: Some(use_table),
        init: Some(init),
        init2: None,
        close: Some(close),
        query_to_free_result: [None; 4],
        insert: Some(insert),
        delete_to_raw_query_async: [None; 13],
    };
    0
}

/// `flatstore.rotate` and `flatstore.k_rotate`: every process of this Kamailio reopens its
/// files before its next write. Replies with an error (500) when there was nothing to rotate
/// ([`Error::NothingToRotate`], as the C API and OpenSER's `flat_rotate` say it).
unsafe extern "C" fn rpc_rotate(rpc: *mut Rpc, ctx: *mut c_void) {
    let message = match guard(|| match rotate_everywhere()? {
        0 => Err(Error::NothingToRotate),
        _ => Ok(()),
    }) {
        Ok(()) => return,
        Err(error) => error.to_string(),
    };
    let message = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: Kamailio passes its rpc_t, whose first member is the fault reply.
    if let Some(fault) = unsafe { rpc.as_ref() }.and_then(|rpc| rpc.fault) {
        // SAFETY: fault is printf-like; "%s" with one NUL-terminated string.
        unsafe { fault(ctx, 500, c"%s".as_ptr(), message.as_ptr()) };
    }
}

/// The module's name in Kamailio's log lines and debug-level lookups (its `LOG_MNAME`).
const MOD_NAME: &CStr = c"db_flatstore";
/// What Kamailio's `LM_*` macros put before a module's message (its `LOC_INFO`, here without a
/// C file and line).
const LOC_INFO: &CStr = c"db_flatstore: ";
/// Kamailio's `L_ALERT`, the first entry of `log_level_info[]`.
const L_ALERT: c_int = -5;

/// Kamailio's level number (`L_ERR` … `L_INFO`, `dprint.h`) for a library level.
fn kamailio_level(level: Level) -> c_int {
    match level {
        Level::Error => -1,
        Level::Warning => 0,
        Level::Notice => 1,
        _ => 2,
    }
}

/// One entry of Kamailio's `log_level_info[]`: a level's name and syslog priority.
#[repr(C)]
struct LogLevelInfo {
    name: *const c_char,
    syslog_level: c_int,
}

/// Kamailio's `ksr_logdata_t` (5.6), what its structured logging (`log_engine_type`) takes.
#[repr(C)]
struct KsrLogData {
    v_facility: c_int,
    v_level: c_int,
    v_lname: *const c_char,
    v_fname: *const c_char,
    v_fline: c_int,
    v_mname: *const c_char,
    v_func: *const c_char,
    v_locinfo: *const c_char,
    v_pid: c_int,
    v_pidx: c_int,
}

const _: () = assert!(size_of::<LogLevelInfo>() == 16);
const _: () = assert!(size_of::<KsrLogData>() == 64);
const _: () = assert!(offset_of!(KsrLogData, v_mname) == 32);

/// `km_log_f`: `void (*)(int priority, const char *format, ...)` (`syslog` by default).
type KmLog = unsafe extern "C" fn(c_int, *const c_char, ...);
/// `ksr_slog_f`: `void (*)(ksr_logdata_t *, const char *format, ...)`.
type SlogFunc = unsafe extern "C" fn(*mut KsrLogData, *const c_char, ...);
/// `int get_debug_level(char *mname, int mnlen)`, and `get_debug_facility` alike.
type ModuleLookup = unsafe extern "C" fn(*const c_char, c_int) -> c_int;

/// Kamailio's core logging, as its `LM_*` macros use it (Kamailio 5.6, `src/core/dprint.h`),
/// found with `dlsym(RTLD_DEFAULT, …)` in the kamailio executable (linked `-rdynamic`: modules
/// use these symbols). The pointers are to the executable's functions and variables, valid for
/// the life of the process and the same in every process it forks.
struct CoreLog {
    get_debug_level: ModuleLookup,
    get_debug_facility: ModuleLookup,
    my_pid: unsafe extern "C" fn() -> c_int,
    /// `int process_no`.
    process_no: *const c_int,
    /// `int log_stderr`: non-zero when Kamailio logs to standard error (`-E`,
    /// `log_stderror=yes`).
    log_stderr: *const c_int,
    /// `km_log_f _km_log_func`: the function for syslog (read at each call: it can change).
    km_log_func: *const Option<KmLog>,
    /// `struct log_level_info log_level_info[]`, indexed by level − `L_ALERT`.
    log_level_info: *const LogLevelInfo,
    /// `str *log_prefix_val`: the `log_prefix` of the message being processed, or NULL.
    log_prefix_val: *const *const Str,
    /// `ksr_slog_f _ksr_slog_func`: structured logging, when set.
    slog_func: Option<*const Option<SlogFunc>>,
    /// `volatile int dprint_crit`: non-zero while Kamailio is printing (absent when built with
    /// `NO_SIG_DEBUG`).
    dprint_crit: Option<*mut c_int>,
    /// `int log_color` with `dprint_color(level)` and `dprint_color_reset()`.
    color: Option<(
        *const c_int,
        unsafe extern "C" fn(c_int),
        unsafe extern "C" fn(),
    )>,
    /// libc's `FILE *stderr`.
    stderr: *const *mut libc::FILE,
}

// SAFETY: the pointers are to the executable's and libc's static functions and variables,
// which every thread may use as Kamailio's own macros do.
unsafe impl Send for CoreLog {}
// SAFETY: as above; `CoreLog` itself is never written after it is made.
unsafe impl Sync for CoreLog {}

/// Kamailio's logging, looked up once (in the main process, before it forks); `None` when a
/// symbol it needs is missing (a host that is not Kamailio, as in the C tests of the ABI).
static CORE_LOG: OnceLock<Option<CoreLog>> = OnceLock::new();

/// The address of `name` in the process (the executable first), or NULL.
fn symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

impl CoreLog {
    /// Look up every symbol; `None` if one that is needed is missing.
    fn find() -> Option<CoreLog> {
        let data = |name: &CStr| Some(symbol(name)).filter(|p| !p.is_null());
        let (level, facility, my_pid) = (
            data(c"get_debug_level")?,
            data(c"get_debug_facility")?,
            data(c"my_pid")?,
        );
        let color = match (
            data(c"log_color"),
            data(c"dprint_color"),
            data(c"dprint_color_reset"),
        ) {
            (Some(flag), Some(set), Some(reset)) => Some((flag, set, reset)),
            _ => None,
        };
        // SAFETY: each function name is Kamailio 5.6's with the signature of its field (per its
        // src/core/dprint.h), so its address is a function of that type.
        unsafe {
            Some(CoreLog {
                get_debug_level: std::mem::transmute::<*mut c_void, ModuleLookup>(level),
                get_debug_facility: std::mem::transmute::<*mut c_void, ModuleLookup>(facility),
                my_pid: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(my_pid),
                process_no: data(c"process_no")?.cast_const().cast(),
                log_stderr: data(c"log_stderr")?.cast_const().cast(),
                km_log_func: data(c"_km_log_func")?.cast_const().cast(),
                log_level_info: data(c"log_level_info")?.cast_const().cast(),
                log_prefix_val: data(c"log_prefix_val")?.cast_const().cast(),
                slog_func: data(c"_ksr_slog_func").map(|p| p.cast_const().cast()),
                dprint_crit: data(c"dprint_crit").map(<*mut c_void>::cast::<c_int>),
                color: color.map(|(flag, set, reset)| {
                    (
                        flag.cast_const().cast::<c_int>(),
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn(c_int)>(set),
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn()>(reset),
                    )
                }),
                stderr: data(c"stderr")?.cast_const().cast(),
            })
        }
    }

    /// Log `message` as `LM_ERR`/`LM_WARN`/`LM_NOTICE`/`LM_INFO` of module `db_flatstore`
    /// would: only if the module's debug level lets it through; then Kamailio's structured
    /// logging if it is on, else `%2d(%d) LEVEL: db_flatstore: message` on standard error when
    /// Kamailio logs there, else `LEVEL: db_flatstore: message` to its syslog function with
    /// the level's priority and the module's facility.
    ///
    /// On the process's main thread, where Kamailio's signal handlers run, `dprint_crit` is
    /// kept as Kamailio's macros keep it: raised around the print, and when it is already up
    /// (this runs in a signal handler that interrupted Kamailio printing) the message goes to
    /// standard error ([`report::to_stderr`]) rather than into Kamailio's logging again. The
    /// connection's helper thread (every signal blocked) leaves it alone: it is a plain `int`
    /// the main thread changes, and an increment lost to a race would silence Kamailio.
    ///
    /// # Safety
    /// The pointers are Kamailio 5.6's (see [`CoreLog::find`]).
    unsafe fn log(&self, level: Level, message: &str) {
        let k_level = kamailio_level(level);
        // SAFETY: gettid and getpid only return numbers.
        let main_thread = unsafe { libc::gettid() == libc::getpid() };
        let crit = self.dprint_crit.filter(|_| main_thread);
        // SAFETY: Kamailio's `volatile int`, read as its macros read it.
        if crit.is_some_and(|c| unsafe { c.read_volatile() } != 0) {
            return report::to_stderr(level, message);
        }
        let name_len = MOD_NAME.to_bytes().len() as c_int;
        // SAFETY: get_debug_level takes a name and its length; it only reads them.
        if unsafe { (self.get_debug_level)(MOD_NAME.as_ptr(), name_len) } < k_level {
            return;
        }
        let len = c_int::try_from(message.len()).unwrap_or(c_int::MAX);
        let text = message.as_ptr().cast::<c_char>();
        // SAFETY: Kamailio's variables and functions, used as its LOG_FX macro uses them
        // (src/core/dprint.h of 5.6): `dprint_crit` up around the print; the level's entry of
        // `log_level_info` (indices 4 to 7 of its 9); `%.*s` with the message's length, so
        // that no NUL is needed after it.
        unsafe {
            if let Some(c) = crit {
                c.write_volatile(c.read_volatile() + 1);
            }
            let info = &*self.log_level_info.add((k_level - L_ALERT) as usize);
            let facility = || (self.get_debug_facility)(MOD_NAME.as_ptr(), name_len);
            // The `log_prefix` of the SIP message the main thread is processing: not the
            // helper thread's (which must not read it while the main thread changes it).
            let prefix = if main_thread {
                (*self.log_prefix_val).as_ref()
            } else {
                None
            };
            let (prefix_len, prefix) = match prefix {
                Some(p) if !p.s.is_null() => (p.len, p.s.cast_const()),
                _ => (0, c"".as_ptr()),
            };
            if let Some(slog) = self.slog_func.and_then(|f| *f) {
                let mut data = KsrLogData {
                    v_facility: info.syslog_level | facility(),
                    v_level: k_level,
                    v_lname: info.name,
                    v_fname: c"flatstore".as_ptr(),
                    v_fline: 0,
                    v_mname: MOD_NAME.as_ptr(),
                    v_func: c"".as_ptr(),
                    v_locinfo: LOC_INFO.as_ptr(),
                    v_pid: 0,
                    v_pidx: 0,
                };
                slog(&mut data, c"%.*s\n".as_ptr(), len, text);
            } else if *self.log_stderr != 0 {
                let color = self.color.filter(|(flag, _, _)| **flag != 0);
                if let Some((_, set, _)) = color {
                    set(k_level);
                }
                libc::fprintf(
                    *self.stderr,
                    c"%2d(%d) %s: %.*s%s%.*s\n".as_ptr(),
                    *self.process_no,
                    (self.my_pid)(),
                    info.name,
                    prefix_len,
                    prefix,
                    LOC_INFO.as_ptr(),
                    len,
                    text,
                );
                if let Some((_, _, reset)) = color {
                    reset();
                }
            } else if let Some(km_log) = *self.km_log_func {
                km_log(
                    info.syslog_level | facility(),
                    c"%s: %.*s%s%.*s\n".as_ptr(),
                    info.name,
                    prefix_len,
                    prefix,
                    LOC_INFO.as_ptr(),
                    len,
                    text,
                );
            }
            if let Some(c) = crit {
                c.write_volatile(c.read_volatile() - 1);
            }
        }
    }
}

/// The library's messages go through Kamailio's logging from now on (once; from the first
/// modparam or `mod_init`, in the main process before it forks). Where Kamailio's symbols are
/// not found they stay on standard error.
fn log_through_kamailio() {
    if CORE_LOG.get_or_init(CoreLog::find).is_some() {
        report::set_sink(Some(to_kamailio));
    }
}

/// The sink [`log_through_kamailio`] installs.
fn to_kamailio(level: Level, message: &str) {
    match CORE_LOG.get().and_then(Option::as_ref) {
        // SAFETY: found by CoreLog::find in this process or the one it was forked from.
        Some(core) => unsafe { core.log(level, message) },
        None => report::to_stderr(level, message),
    }
}

/// Read one value.
///
/// # Safety
/// The pointer members of `v` selected by its type tag are NULL or valid for the call.
#[inline]
unsafe fn value(v: &DbVal, index: usize) -> Result<Value<'_>, BadValue> {
    let bad = |problem| BadValue { index, problem };
    if !(DB1_INT..=DB1_UBIGINT).contains(&v.type_) {
        return Err(bad(ValueProblem::UnknownType(v.type_)));
    }
    if v.nul != 0 {
        return Ok(Value::Null);
    }
    // SAFETY: the tag says which member the host wrote; pointers are checked by the helpers.
    unsafe {
        Ok(match v.type_ {
            DB1_INT => Value::Int(v.val.int_val),
            DB1_BIGINT => Value::BigInt(v.val.ll_val),
            DB1_DOUBLE => Value::Double(v.val.double_val),
            DB1_STRING => {
                Value::Str(c_str_or_null(v.val.string_val).ok_or(bad(ValueProblem::NullString))?)
            }
            DB1_STR => Value::Str(str_bytes(v.val.str_val.s, v.val.str_val.len).map_err(bad)?),
            DB1_DATETIME => Value::DateTime(v.val.time_val),
            DB1_BLOB => Value::Blob(str_bytes(v.val.blob_val.s, v.val.blob_val.len).map_err(bad)?),
            DB1_BITMAP => Value::Bitmap(v.val.bitmap_val),
            DB1_UINT => Value::UInt(v.val.uint_val),
            _ => Value::UBigInt(v.val.ull_val),
        })
    }
}

/// The bytes of a `str` argument. A NULL `str`, or NULL bytes with a positive length, is
/// [`Error::NullArgument`] `what`; a negative length is `negative`'s error.
///
/// # Safety
/// `arg` is NULL or points to a `str` whose bytes are NULL or valid for its length, for `'a`.
unsafe fn str_argument<'a>(
    arg: *const Str,
    what: &'static str,
    negative: impl FnOnce() -> Error,
) -> Result<&'a [u8]> {
    // SAFETY: contract above.
    let arg = unsafe { arg.as_ref() }.ok_or(Error::NullArgument { what })?;
    // SAFETY: contract above.
    unsafe { str_bytes(arg.s, arg.len) }.map_err(|problem| match problem {
        ValueProblem::NegativeLength(_) => negative(),
        _ => Error::NullArgument { what },
    })
}

/// srdb1 `init(url)`: `url` is `flatstore:<dir>[?name=value&…]`; a negative length, bytes
/// that are not UTF-8 or a malformed URL are [`Error::BadUrl`].
unsafe extern "C" fn init(url: *const Str) -> *mut Db1Con {
    let made = guard(|| {
        // SAFETY: Kamailio passes its db_url as a str, or NULL.
        let url = unsafe {
            str_argument(url, "url", || Error::BadUrl {
                url: String::new(),
                reason: "negative length",
            })
        }?;
        Ok(Box::new(Db1Con {
            table: std::ptr::null(),
            tquote: std::ptr::null(),
            tail: connection_tail(url)?,
        }))
    });
    made.map_or(std::ptr::null_mut(), Box::into_raw)
}

/// srdb1 `use_table(h, table)`: a negative length is a refused table name
/// ([`Error::BadTable`]), as are the names [`flatstore::Connection::use_table`] refuses.
unsafe extern "C" fn use_table(h: *mut Db1Con, table: *const Str) -> c_int {
    guard_code(|| {
        // SAFETY: Kamailio passes a handle from init.
        let con = unsafe { handle_connection(h) }?;
        // SAFETY: Kamailio passes the table name as a str that outlives the handle's use.
        let bytes = unsafe {
            str_argument(table, "table", || Error::BadTable {
                name: String::new(),
                reason: "negative length",
            })
        }?;
        con.use_table(bytes)?;
        // SAFETY: `connection` checked that `h` is a live handle.
        unsafe { (*h).table = table };
        Ok(())
    })
}

/// srdb1 `insert(h, keys, values, n)`: one line. The keys are read only with `header=1`, at a
/// table's first insert in a process, for `<table>.columns`.
unsafe extern "C" fn insert(
    h: *const Db1Con,
    k: *const db_key_t,
    v: *const DbVal,
    n: c_int,
) -> c_int {
    guard_code(|| {
        // SAFETY: Kamailio passes a handle from init.
        let con = unsafe { handle_connection(h) }?;
        // SAFETY: Kamailio passes n keys (acc: its column names), or NULL.
        let keys = || unsafe { counted_keys(k, n) };
        // SAFETY: Kamailio passes n values.
        let values = unsafe { slice_or_empty(v, n, "values") }?;
        // SAFETY: each value's pointers are valid for the call.
        let values = values
            .iter()
            .enumerate()
            .map(|(i, v)| unsafe { value(v, i) });
        insert_record(con, keys, values)
    })
}

/// srdb1 `close(h)`: write out what is buffered and free the handle.
unsafe extern "C" fn close(h: *mut Db1Con) {
    // SAFETY: `h` is NULL or came from Box::into_raw in init, not used again.
    let _ = guard(|| unsafe { close_handle(h) });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last error message of this thread.
    fn last_error() -> String {
        // SAFETY: a NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(flatstore::ffi::last_error_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// `init` with a URL of negative length, or one that is not UTF-8, fails as a bad URL, not
    /// as a NULL argument or a parameter; NULL is still a NULL argument.
    #[test]
    fn init_reports_a_bad_url_for_a_negative_length_or_bytes_that_are_not_utf8() {
        let mut text = *b"flatstore:/tmp\xff";
        let negative = Str {
            s: text.as_mut_ptr().cast(),
            len: -1,
        };
        // SAFETY: a str with no bytes to read.
        assert!(unsafe { init(&negative) }.is_null());
        assert_eq!(last_error(), "bad URL \"\": negative length");
        let not_utf8 = Str {
            s: text.as_mut_ptr().cast(),
            len: text.len() as c_int,
        };
        // SAFETY: `len` bytes at `s`.
        assert!(unsafe { init(&not_utf8) }.is_null());
        assert_eq!(
            last_error(),
            "bad URL \"flatstore:/tmp\u{fffd}\": not valid UTF-8"
        );
        // SAFETY: NULL is allowed.
        assert!(unsafe { init(std::ptr::null()) }.is_null());
        assert_eq!(last_error(), "url is NULL");
    }
}
