/*
 * A do-nothing OpenSER 1.3 database module (name `nulldb`, so db_url "nulldb:x") for
 * benches/openser_acc.sh: acc's own cost per record, to subtract. OpenSER's loader compares
 * module_version and module_flags with its own: they come from -DOPENSER_VERSION and
 * -DOPENSER_FLAGS (the lines of `openser -V`). The tables are laid out as OpenSER 1.3's
 * sr_module.h declares them (x86_64); only the four functions bind_dbmod needs are exported.
 */
#include <stdlib.h>

typedef struct {
    const char *table;
    unsigned long tail;
} db_con_t;

struct cmd_export {
    const char *name;
    void *function;
    int param_no;
    void *fixup;
    void *free_fixup;
    int flags;
};

struct module_exports {
    const char *name;
    unsigned int dlflags;
    struct cmd_export *cmds;
    void *params, *stats, *mi_cmds, *items, *procs;
    void *init_f, *response_f, *destroy_f, *init_child_f;
};

_Static_assert(sizeof(struct cmd_export) == 48, "cmd_export_t");
_Static_assert(sizeof(struct module_exports) == 96, "module_exports");

char *module_version = OPENSER_VERSION;
char *module_flags = OPENSER_FLAGS;

static db_con_t *null_init(const char *url) {
    (void)url;
    return calloc(1, sizeof(db_con_t));
}

static int null_use_table(db_con_t *h, const char *table) {
    h->table = table;
    return 0;
}

static void null_close(db_con_t *h) { free(h); }

static int null_insert(db_con_t *h, void *keys, void *values, int n) {
    (void)h, (void)keys, (void)values, (void)n;
    return 0;
}

static struct cmd_export cmds[] = {
    {"db_use_table", (void *)null_use_table, 2, 0, 0, 0},
    {"db_init", (void *)null_init, 1, 0, 0, 0},
    {"db_close", (void *)null_close, 2, 0, 0, 0},
    {"db_insert", (void *)null_insert, 2, 0, 0, 0},
    {0, 0, 0, 0, 0, 0},
};

struct module_exports exports = {"nulldb", 0, cmds, 0, 0, 0, 0, 0, 0, 0, 0, 0};
