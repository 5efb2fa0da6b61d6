/* A Kamailio database module whose insert does nothing: loaded in place of a flatstore module,
 * it measures what acc itself costs per record, so that the benchmark can subtract it.
 * Build: cc -shared -fPIC -DKAMAILIO_VERSION='"…"' -DKAMAILIO_FLAGS='"…"' (from kamailio -V). */
#include <stddef.h>
#include <string.h>

typedef struct { char *s; int len; } str;
typedef struct { const str *table; const char *tquote; unsigned long tail; } db1_con_t;
/* srdb1 db_func_t: cap, then 22 functions; use_table is 0, init 1, close 3, insert 8. */
typedef struct { unsigned int cap; void *f[22]; } db_func_t;
typedef struct {
    const char *name; void *function; int param_no; void *fixup; void *free_fixup; unsigned flags;
} cmd_export_t;
typedef struct {
    const char *name; unsigned dlflags; const cmd_export_t *cmds; const void *params;
    const void *rpc_methods; const void *pv_items; void *response_f; void *init;
    void *child_init; void *destroy;
} module_exports_t;

char *module_version = KAMAILIO_VERSION;
char *module_flags = KAMAILIO_FLAGS;

static db1_con_t connection;

static int use_table(db1_con_t *h, const str *t) { h->table = t; return 0; }
static db1_con_t *init(const str *url) { (void)url; return &connection; }
static void close_con(db1_con_t *h) { (void)h; }
static int insert(const db1_con_t *h, const void *k, const void *v, int n) {
    (void)h; (void)k; (void)v; (void)n;
    return 0;
}

static int bind_api(db_func_t *dbf) {
    memset(dbf, 0, sizeof *dbf);
    dbf->f[0] = (void *)use_table;
    dbf->f[1] = (void *)init;
    dbf->f[3] = (void *)close_con;
    dbf->f[8] = (void *)insert;
    return 0;
}

static const cmd_export_t cmds[] = {
    {"db_bind_api", (void *)bind_api, 0, NULL, NULL, 0},
    {NULL, NULL, 0, NULL, NULL, 0},
};

module_exports_t exports = {"db_null", 0, cmds, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
