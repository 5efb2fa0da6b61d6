/* The sizes and offsets hosts/opensips/src/abi.rs asserts for its #[repr(C)] mirrors, asserted
 * here against OpenSIPS 3.6's own headers, compiled with the tree's own flags
 * (tests/opensips.rs: the_rust_mirrors_match_the_opensips_headers; compiling is the test). */
#include <stddef.h>
#include "sr_module.h"
#include "db/db.h"
#include "mi/mi.h"

#define SAME(what, n) _Static_assert((what) == (n), #what " is not " #n " as in abi.rs")

SAME(sizeof(str), 16);
SAME(sizeof(db_val_t), 32);
SAME(offsetof(db_val_t, free), 8);
SAME(offsetof(db_val_t, val), 16);
SAME(sizeof(db_con_t), 56);
SAME(offsetof(db_con_t, curr_ps), 8);
SAME(offsetof(db_con_t, ins_list), 16);
SAME(offsetof(db_con_t, tail), 24);
SAME(offsetof(db_con_t, url), 32);
SAME(offsetof(db_con_t, flags), 48);
SAME(sizeof(db_func_t), 144);
SAME(offsetof(db_func_t, use_table), 8);
SAME(offsetof(db_func_t, init), 16);
SAME(offsetof(db_func_t, close), 24);
SAME(offsetof(db_func_t, insert), 64);
SAME(DB_INT, 0);
SAME(DB_BIGINT, 1);
SAME(DB_DOUBLE, 2);
SAME(DB_STRING, 3);
SAME(DB_STR, 4);
SAME(DB_DATETIME, 5);
SAME(DB_BLOB, 6);
SAME(DB_BITMAP, 7);
SAME(sizeof(struct cmd_param), 24);
SAME(MAX_CMD_PARAMS + 1, 9);
SAME(sizeof(cmd_export_t), 240);
SAME(sizeof(param_export_t), 24);
SAME(STR_PARAM, 1U << 0);
SAME(INT_PARAM, 1U << 1);
SAME(USE_FUNC_PARAM, 1U << 31);
SAME(MAX_MI_PARAMS, 10);
SAME(MAX_MI_RECIPES, 48);
SAME(sizeof(mi_recipe_t), 88);
SAME(sizeof(mi_export_t), 4256);
SAME(offsetof(mi_export_t, recipes), 32);
SAME(MOD_TYPE_SQLDB, 2);
SAME(sizeof(struct module_exports), 184);
SAME(offsetof(struct module_exports, type), 8);
SAME(offsetof(struct module_exports, ver_info), 16);
SAME(offsetof(struct module_exports, dlflags), 48);
SAME(offsetof(struct module_exports, load_f), 56);
SAME(offsetof(struct module_exports, cmds), 72);
SAME(offsetof(struct module_exports, params), 88);
SAME(offsetof(struct module_exports, mi_cmds), 104);
SAME(offsetof(struct module_exports, procs), 128);
SAME(offsetof(struct module_exports, init_f), 144);
SAME(offsetof(struct module_exports, init_child_f), 168);
SAME(offsetof(struct module_exports, reload_ack_f), 176);
SAME(PROC_MODULE, -2);
SAME(L_ERR, -1);
SAME(L_WARN, 1);
SAME(L_NOTICE, 2);
SAME(L_INFO, 3);
