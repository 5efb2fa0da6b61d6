//! OpenSIPS 3.6's C types that the module shares with the core, as `#[repr(C)]` mirrors. Sizes
//! and offsets are those measured with the 3.6.8 tree's own headers and flags on x86_64
//! (`shared/hosts/README.md`), asserted at compile time below, and against the 3.6.8 headers by
//! `tests/opensips/abi_sizes.c` (`tests/opensips.rs`).
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::mem::{offset_of, size_of};

/// OpenSIPS's counted string (`str`, the same in every OpenSER descendant): `s` is not
/// NUL-terminated.
pub use flatstore::ffi::openser::Str;

/// A column name (`db_key_t`); read only with `header=1`.
pub type db_key_t = *const Str;

/// `db_type_t`: `DB_INT` … `DB_BITMAP`; anything else refuses the record.
pub type db_type_t = c_int;
/// `int`.
pub const DB_INT: db_type_t = 0;
/// `long long`.
pub const DB_BIGINT: db_type_t = 1;
/// `double`.
pub const DB_DOUBLE: db_type_t = 2;
/// NUL-terminated string.
pub const DB_STRING: db_type_t = 3;
/// Counted string.
pub const DB_STR: db_type_t = 4;
/// `time_t`.
pub const DB_DATETIME: db_type_t = 5;
/// Counted bytes.
pub const DB_BLOB: db_type_t = 6;
/// `unsigned int` flags.
pub const DB_BITMAP: db_type_t = 7;

/// The value union of `db_val_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DbValUnion {
    /// `DB_INT`.
    pub int_val: c_int,
    /// `DB_BIGINT`.
    pub bigint_val: i64,
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

/// `db_val_t`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DbVal {
    /// The type tag.
    pub type_: db_type_t,
    /// Non-zero: SQL NULL, written as an empty field.
    pub nul: c_int,
    /// "Free after use"; not read.
    pub free: c_int,
    /// The value, read according to `type_`.
    pub val: DbValUnion,
}

/// `db_con_t`, the whole struct: acc writes `curr_ps` before every insert. `table` is the name
/// last given to `use_table` (owned by the host); `tail` is flatstore's connection.
#[repr(C)]
#[derive(Debug)]
pub struct DbCon {
    /// The current table.
    pub table: *const Str,
    /// Prepared statement the caller sets for its next query; written by acc, never read here.
    pub curr_ps: *mut c_void,
    /// Insert list (delayed inserts of SQL drivers); unused (NULL).
    pub ins_list: *mut c_void,
    /// flatstore's connection state.
    pub tail: c_ulong,
    /// The URL the connection was made for; unused (empty).
    pub url: Str,
    /// Connection flags; unused (0).
    pub flags: c_int,
}

/// `db_use_table_f`.
pub type UseTable = unsafe extern "C" fn(*mut DbCon, *const Str) -> c_int;
/// `db_init_f`.
pub type Init = unsafe extern "C" fn(*const Str) -> *mut DbCon;
/// `db_close_f`.
pub type Close = unsafe extern "C" fn(*mut DbCon);
/// `db_insert_f`.
pub type Insert = unsafe extern "C" fn(*const DbCon, *const db_key_t, *const DbVal, c_int) -> c_int;
/// A function pointer the module leaves NULL.
pub type Absent = Option<unsafe extern "C" fn()>;

/// `db_func_t`: capabilities, then 17 functions in this order.
#[repr(C)]
pub struct DbFunc {
    /// Capabilities; left 0 so that the core computes them from the functions set.
    pub cap: c_uint,
    /// `use_table`.
    pub use_table: Option<UseTable>,
    /// `init`.
    pub init: Option<Init>,
    /// `close`.
    pub close: Option<Close>,
    /// `query`, `fetch_result`, `raw_query`, `free_result`: absent.
    pub query_to_free_result: [Absent; 4],
    /// `insert`.
    pub insert: Option<Insert>,
    /// `delete` … `async_timeout`: absent.
    pub delete_to_async_timeout: [Absent; 9],
}

/// `db_bind_api(const str *mod, db_func_t *dbf)`.
pub type BindApi = unsafe extern "C" fn(*const Str, *mut DbFunc) -> c_int;

/// `struct cmd_param`: one script parameter of a command.
#[repr(C)]
pub struct CmdParam {
    /// Parameter flags.
    pub flags: c_int,
    /// Fixup: none.
    pub fixup: Absent,
    /// Fixup release: none.
    pub free_fixup: Absent,
}

/// `MAX_CMD_PARAMS + 1`: the parameter slots of a command.
pub const CMD_PARAM_SLOTS: usize = 9;

/// `cmd_export_t` (only `db_bind_api` is exported; the core finds it by name).
#[repr(C)]
pub struct CmdExport {
    /// Command name.
    pub name: *const c_char,
    /// The function, here [`BindApi`].
    pub function: Option<BindApi>,
    /// Script parameters: none (all zero).
    pub params: [CmdParam; CMD_PARAM_SLOTS],
    /// Script flags: none.
    pub flags: c_int,
}

/// `STR_PARAM`.
pub const STR_PARAM: c_uint = 1 << 0;
/// `INT_PARAM`.
pub const INT_PARAM: c_uint = 1 << 1;
/// `USE_FUNC_PARAM`: `param_pointer` is a setter `int (*)(modparam_t, void*)`.
pub const USE_FUNC_PARAM: c_uint = 1 << 31;

/// A modparam setter: the value's type, and an `int` cast to a pointer or a `char*`.
pub type ParamFunc = unsafe extern "C" fn(c_uint, *mut c_void) -> c_int;

/// `param_export_t`.
#[repr(C)]
pub struct ParamExport {
    /// Parameter name.
    pub name: *const c_char,
    /// Accepted types, with [`USE_FUNC_PARAM`].
    pub type_: c_uint,
    /// The setter.
    pub ptr: Option<ParamFunc>,
}

/// `mi_cmd_f`: `mi_response_t *f(const mi_params_t *params, struct mi_handler *async_hdl)`.
pub type MiCmd = unsafe extern "C" fn(*const c_void, *mut c_void) -> *mut c_void;

/// `MAX_MI_PARAMS`.
pub const MI_PARAMS: usize = 10;
/// `MAX_MI_RECIPES`.
pub const MI_RECIPES: usize = 48;

/// `mi_recipe_t`: a handler and the names of the parameters it takes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MiRecipe {
    /// The handler; NULL ends the recipes.
    pub cmd: Option<MiCmd>,
    /// Parameter names, NULL-terminated.
    pub params: [*const c_char; MI_PARAMS],
}

/// `mi_export_t` of OpenSIPS 3.x (4.0 changes it).
#[repr(C)]
pub struct MiExport {
    /// Command name; NULL ends the table.
    pub name: *const c_char,
    /// Help text.
    pub help: *const c_char,
    /// Flags: none.
    pub flags: c_uint,
    /// Per-process init: none.
    pub init_f: Option<unsafe extern "C" fn() -> c_int>,
    /// The recipes, ended by one with a NULL handler.
    pub recipes: [MiRecipe; MI_RECIPES],
}

/// `struct scm_version`.
#[repr(C)]
pub struct ScmVersion {
    /// `git`, or `unknown`.
    pub type_: *const c_char,
    /// The revision (compared up to the shorter string).
    pub rev: *const c_char,
}

/// The version strings of `struct module_exports`, all compared with the core's.
#[repr(C)]
pub struct VerInfo {
    /// `opensips 3.6.8 (x86_64/linux)`.
    pub version: *const c_char,
    /// The core's compile flags.
    pub compile_flags: *const c_char,
    /// Source control type and revision.
    pub scm: ScmVersion,
}

/// `MOD_TYPE_SQLDB`: a database driver.
pub const MOD_TYPE_SQLDB: c_int = 2;

/// `int f(void)`: load, preinit and init functions.
pub type VoidFn = unsafe extern "C" fn() -> c_int;

/// `struct module_exports`, the one symbol OpenSIPS's loader reads.
#[repr(C)]
pub struct ModuleExports {
    /// Module name: `db_flatstore`, what `db_url "flatstore:…"` binds to.
    pub name: *const c_char,
    /// [`MOD_TYPE_SQLDB`].
    pub type_: c_int,
    /// The strings the loader compares.
    pub ver_info: VerInfo,
    /// dlopen flags: the default.
    pub dlflags: c_uint,
    /// Called right after `dlopen`, before the modparams.
    pub load_f: Option<VoidFn>,
    /// Dependencies: none.
    pub deps: *const c_void,
    /// Script commands (`db_bind_api`).
    pub cmds: *const CmdExport,
    /// Async commands: none.
    pub acmds: *const c_void,
    /// Module parameters.
    pub params: *const ParamExport,
    /// Statistics: none.
    pub stats: *const c_void,
    /// MI commands (`flat_rotate`).
    pub mi_cmds: *const MiExport,
    /// Pseudo-variables: none.
    pub items: *const c_void,
    /// Transformations: none.
    pub trans: *const c_void,
    /// Extra processes: none.
    pub procs: *const c_void,
    /// Pre-initialisation: none.
    pub preinit_f: Option<VoidFn>,
    /// Called once in the main process before it forks.
    pub init_f: Option<VoidFn>,
    /// Reply hook: none.
    pub response_f: Absent,
    /// Called at shutdown: none.
    pub destroy_f: Absent,
    /// Called in every process with its rank.
    pub init_child_f: Option<unsafe extern "C" fn(c_int) -> c_int>,
    /// Script reload confirmation: none.
    pub reload_ack_f: Absent,
}

const _: () = assert!(size_of::<Str>() == 16);
const _: () = assert!(size_of::<DbVal>() == 32);
const _: () = assert!(offset_of!(DbVal, free) == 8);
const _: () = assert!(offset_of!(DbVal, val) == 16);
const _: () = assert!(size_of::<DbCon>() == 56);
const _: () = assert!(offset_of!(DbCon, curr_ps) == 8);
const _: () = assert!(offset_of!(DbCon, ins_list) == 16);
const _: () = assert!(offset_of!(DbCon, tail) == 24);
const _: () = assert!(offset_of!(DbCon, url) == 32);
const _: () = assert!(offset_of!(DbCon, flags) == 48);
const _: () = assert!(size_of::<DbFunc>() == 144);
const _: () = assert!(offset_of!(DbFunc, use_table) == 8);
const _: () = assert!(offset_of!(DbFunc, init) == 16);
const _: () = assert!(offset_of!(DbFunc, close) == 24);
const _: () = assert!(offset_of!(DbFunc, insert) == 64);
const _: () = assert!(size_of::<CmdParam>() == 24);
const _: () = assert!(size_of::<CmdExport>() == 240);
const _: () = assert!(size_of::<ParamExport>() == 24);
const _: () = assert!(size_of::<MiRecipe>() == 88);
const _: () = assert!(size_of::<MiExport>() == 4256);
const _: () = assert!(offset_of!(MiExport, recipes) == 32);
const _: () = assert!(size_of::<ModuleExports>() == 184);
const _: () = assert!(offset_of!(ModuleExports, type_) == 8);
const _: () = assert!(offset_of!(ModuleExports, ver_info) == 16);
const _: () = assert!(offset_of!(ModuleExports, dlflags) == 48);
const _: () = assert!(offset_of!(ModuleExports, load_f) == 56);
const _: () = assert!(offset_of!(ModuleExports, cmds) == 72);
const _: () = assert!(offset_of!(ModuleExports, params) == 88);
const _: () = assert!(offset_of!(ModuleExports, mi_cmds) == 104);
const _: () = assert!(offset_of!(ModuleExports, procs) == 128);
const _: () = assert!(offset_of!(ModuleExports, init_f) == 144);
const _: () = assert!(offset_of!(ModuleExports, init_child_f) == 168);
const _: () = assert!(offset_of!(ModuleExports, reload_ack_f) == 176);
