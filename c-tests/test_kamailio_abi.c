/* The Kamailio profile as Kamailio's loader and acc see it: dlopen the module, check the two
 * strings the loader compares, walk `exports` (cmds, params, RPC), set modparams through the
 * param functions, bind the srdb1 API with db_bind_api, and insert every srdb1 type. The
 * expected lines are computed with the C library's own printf. A table name that is not UTF-8,
 * selected before every insert as acc does, opens one file and no descriptor per insert.
 *
 * The srdb1 and module types are declared here as Kamailio 5.6's headers declare them (LP64).
 *
 * usage: test_kamailio_abi MODULE.so EXPECTED_VERSION EXPECTED_FLAGS */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

typedef struct { char *s; int len; } str;
typedef enum {
    DB1_INT, DB1_BIGINT, DB1_DOUBLE, DB1_STRING, DB1_STR, DB1_DATETIME, DB1_BLOB, DB1_BITMAP,
    DB1_UINT, DB1_UBIGINT, DB1_UNKNOWN
} db_type_t;
typedef struct {
    db_type_t type;
    int nul;
    int free;
    union {
        int int_val;
        long long ll_val;
        double double_val;
        time_t time_val;
        const char *string_val;
        str str_val;
        str blob_val;
        unsigned int bitmap_val;
        unsigned int uint_val;
        unsigned long long ull_val;
    } val;
} db_val_t;
typedef struct { const str *table; const char *tquote; unsigned long tail; } db1_con_t;
typedef str *db_key_t;
typedef struct {
    unsigned int cap;
    int (*use_table)(db1_con_t *, const str *);
    db1_con_t *(*init)(const str *);
    void *init2;
    void (*close)(db1_con_t *);
    void *query, *fetch_result, *raw_query, *free_result;
    int (*insert)(const db1_con_t *, const db_key_t *, const db_val_t *, const int);
    void *rest[13];
} db_func_t;
typedef struct {
    char *name; void *function; int param_no; void *fixup; void *free_fixup; unsigned flags;
} cmd_export_t;
typedef struct { char *name; unsigned type; void *ptr; } param_export_t;
typedef struct rpc { void (*fault)(void *ctx, int code, char *fmt, ...); } rpc_t;
typedef struct {
    const char *name; void (*function)(rpc_t *, void *); const char **doc_str; unsigned flags;
} rpc_export_t;
typedef struct {
    char *name;
    unsigned dlflags;
    cmd_export_t *cmds;
    param_export_t *params;
    rpc_export_t *rpc_methods;
    void *pv_items;
    void *response_f;
    int (*init)(void);
    int (*child_init)(int);
    void (*destroy)(void);
} module_exports_t;

#define PARAM_STRING (1U << 0)
#define PARAM_INT (1U << 1)
#define PARAM_USE_FUNC (1U << 31)
#define PROC_INIT -127

_Static_assert(sizeof(db_val_t) == 32 && offsetof(db_val_t, val) == 16, "db_val_t");
_Static_assert(sizeof(db1_con_t) == 24, "db1_con_t");
_Static_assert(sizeof(db_func_t) == 8 + 22 * 8 && offsetof(db_func_t, insert) == 72, "db_func_t");
_Static_assert(sizeof(module_exports_t) == 80, "module_exports_t");
_Static_assert(sizeof(cmd_export_t) == 48 && sizeof(param_export_t) == 24, "exports");
_Static_assert(sizeof(rpc_export_t) == 32, "rpc_export_t");

static module_exports_t *exports;
static char dir[64];

/* Set a modparam as Kamailio's set_mod_param does: find the name with the value's type. */
static int set_param(const char *name, unsigned type, void *value) {
    for (param_export_t *p = exports->params; p->name; p++) {
        if (strcmp(p->name, name) == 0 && (p->type & type)) {
            if (!(p->type & PARAM_USE_FUNC)) return -100;
            return ((int (*)(unsigned, void *))p->ptr)(type, value);
        }
    }
    return -200;
}

static void *find_rpc(const char *name) {
    for (rpc_export_t *r = exports->rpc_methods; r->name; r++)
        if (strcmp(r->name, name) == 0) return (void *)r->function;
    return NULL;
}

static int faults;
static void count_fault(void *ctx, int code, char *fmt, ...) { (void)ctx; (void)fmt; faults += code == 500; }

/* Descriptors open in this process: the entries of /proc/self/fd, less the one listing it. */
static int open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static char *slurp(const char *name, long *len) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    *len = -1;
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    *len = (long)fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s MODULE.so VERSION FLAGS\n", argv[0]); return 2; }
    snprintf(dir, sizeof dir, "/tmp/flatstore-kabi-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }

    void *module = dlopen(argv[1], RTLD_NOW);
    if (!module) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    char **version = dlsym(module, "module_version");
    char **flags = dlsym(module, "module_flags");
    exports = dlsym(module, "exports");
    CHECK(version && strcmp(*version, argv[2]) == 0, "module_version %s", version ? *version : "-");
    CHECK(flags && strcmp(*flags, argv[3]) == 0, "module_flags %s", flags ? *flags : "-");
    if (!exports) { CHECK(0, "no exports"); return harness_done(); }
    CHECK(strcmp(exports->name, "db_flatstore") == 0, "name %s", exports->name);

    int (*bind)(db_func_t *) = NULL;
    for (cmd_export_t *c = exports->cmds; c->name; c++)
        if (strcmp(c->name, "db_bind_api") == 0 && c->param_no == 0) bind = c->function;
    CHECK(bind != NULL, "db_bind_api exported");
    CHECK(find_rpc("flatstore.rotate") && find_rpc("flatstore.k_rotate"), "both RPC methods");

    /* modparams, as modparam("db_flatstore", ...) lines would set them */
    CHECK(set_param("flush", PARAM_INT, (void *)(long)0) == 0, "flush 0");
    CHECK(set_param("flush", PARAM_INT, (void *)(long)1) == 0, "flush 1");
    CHECK(set_param("flush", PARAM_INT, (void *)(long)7) < 0, "flush 7 refused");
    CHECK(set_param("encode_delimiter", PARAM_INT, (void *)(long)1) == 0, "encode_delimiter");
    CHECK(set_param("flush_interval", PARAM_STRING, "0.5") == 0, "flush_interval as string");
    CHECK(set_param("file_mode", PARAM_STRING, "0640") == 0, "file_mode");
    CHECK(set_param("header", PARAM_INT, (void *)(long)1) == 0, "header");
    CHECK(set_param("rotate_records", PARAM_STRING, "1000000") == 0, "rotate_records");
    CHECK(set_param("fsync", PARAM_STRING, "sometimes") < 0, "bad fsync policy refused");
    CHECK(set_param("field_delimiter", PARAM_STRING, "|") == 0, "stock default accepted");
    CHECK(set_param("field_delimiter", PARAM_STRING, ";") < 0, "other delimiter refused");
    CHECK(set_param("no_such_param", PARAM_INT, (void *)(long)1) == -200, "unknown not exported");

    CHECK(exports->init() == 0, "mod_init");
    CHECK(exports->child_init(PROC_INIT) == 0 && exports->child_init(1) == 0, "child_init");

    db_func_t dbf;
    memset(&dbf, 0xab, sizeof dbf);
    CHECK(bind && bind(&dbf) == 0, "db_bind_api");
    int others_null = dbf.init2 == NULL && dbf.query == NULL && dbf.free_result == NULL;
    for (int i = 0; i < 13; i++) others_null &= dbf.rest[i] == NULL;
    CHECK(dbf.use_table && dbf.init && dbf.close && dbf.insert && others_null,
          "exactly use_table, init, close, insert");

    /* With no directory open anywhere, rotate replies with a fault. */
    rpc_t rpc = {count_fault};
    void (*rotate)(rpc_t *, void *) = (void (*)(rpc_t *, void *))find_rpc("flatstore.rotate");
    rotate(&rpc, NULL);
    CHECK(faults == 1, "rotate with nothing open: %d faults", faults);

    /* Counted strings are not NUL-terminated: what follows must not be read. */
    char url_buf[128];
    int url_len = snprintf(url_buf, sizeof url_buf, "flatstore:%s", dir);
    url_buf[url_len] = 'X';
    str url = {url_buf, url_len};
    db1_con_t *h = dbf.init(&url);
    CHECK(h != NULL, "init");
    if (!h) return harness_done();
    str table = {"accXX", 3};
    CHECK(dbf.use_table(h, &table) == 0 && h->table == &table, "use_table");
    /* A negative length is a refused table name (FLATSTORE_E_TABLE, -4), not a NULL argument
     * (FLATSTORE_E_NULL, -1); NULL bytes with a length are; the table stays selected. */
    str negative = {"accXX", -1}, null_bytes = {NULL, 3};
    int rc = dbf.use_table(h, &negative);
    CHECK(rc == -4, "use_table with a negative length: %d", rc);
    rc = dbf.use_table(h, &null_bytes);
    CHECK(rc == -1, "use_table with NULL bytes: %d", rc);
    CHECK(dbf.use_table(h, NULL) == -1 && h->table == &table, "use_table(NULL)");

    db_val_t v[11];
    memset(v, 0, sizeof v);
    v[0].type = DB1_INT; v[0].val.int_val = INT_MIN;
    v[1].type = DB1_BIGINT; v[1].val.ll_val = LLONG_MIN;
    v[2].type = DB1_DOUBLE; v[2].val.double_val = -0.1234567;
    v[3].type = DB1_STRING; v[3].val.string_val = "a|b";
    v[4].type = DB1_STR; v[4].val.str_val = (str){"c|dZZ", 3};
    v[5].type = DB1_DATETIME; v[5].val.time_val = 1795444911;
    v[6].type = DB1_BLOB; v[6].val.blob_val = (str){"x|\0y", 4};
    v[7].type = DB1_BITMAP; v[7].val.bitmap_val = 0x80000001u;
    v[8].type = DB1_UINT; v[8].val.uint_val = UINT_MAX;
    v[9].type = DB1_UBIGINT; v[9].val.ull_val = ULLONG_MAX;
    v[10].type = DB1_STR; v[10].nul = 1;
    CHECK(dbf.insert(h, NULL, v, 11) == 0, "insert all types");
    char want[512];
    int want_len = snprintf(want, sizeof want, "%d|%lld|%f|a%%7Cb|c%%7Cd|%u|x\\x7C\\x00y|%u|%u|%llu|\n",
                            INT_MIN, LLONG_MIN, -0.1234567, (unsigned)(time_t)1795444911,
                            0x80000001u, UINT_MAX, ULLONG_MAX);
    long len;
    char *got = slurp("acc_129.log", &len);
    CHECK(got && len == want_len && memcmp(got, want, (size_t)want_len) == 0,
          "line: got %.*s want %s", (int)(len > 0 ? len : 0), got ? got : "", want);
    free(got);

    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "%s/acc_129.log", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "file_mode 0640: %o", st.st_mode & 0777);

    /* DB1_UNKNOWN, or any other tag, refuses the whole record. */
    db_val_t bad[2] = {v[0], v[0]};
    bad[1].type = DB1_UNKNOWN;
    CHECK(dbf.insert(h, NULL, bad, 2) < 0, "DB1_UNKNOWN refused");
    bad[1].type = 42;
    CHECK(dbf.insert(h, NULL, bad, 2) < 0, "tag 42 refused");
    bad[1].type = DB1_STR; bad[1].val.str_val = (str){NULL, 4};
    CHECK(dbf.insert(h, NULL, bad, 2) < 0, "NULL str refused");
    CHECK(dbf.insert(h, NULL, v, -1) < 0, "n < 0 refused");
    got = slurp("acc_129.log", &len);
    CHECK(len == want_len, "nothing written by refused records (%ld bytes)", len);
    free(got);

    /* RPC rotate: the renamed file receives nothing more, a new one is created. */
    char renamed[160];
    snprintf(renamed, sizeof renamed, "%s.1", path);
    CHECK(rename(path, renamed) == 0, "rename");
    ((void (*)(rpc_t *, void *))find_rpc("flatstore.k_rotate"))(&rpc, NULL);
    CHECK(faults == 1, "rotate with a directory open: no fault");
    db_val_t one = v[0];
    CHECK(dbf.insert(h, NULL, &one, 1) == 0, "insert after rotate");
    got = slurp("acc_129.log", &len);
    CHECK(got && len == 12 && memcmp(got, "-2147483648\n", 12) == 0, "new file after rotate");
    free(got);
    CHECK(stat(renamed, &st) == 0 && st.st_size == want_len, "renamed file unchanged");

    /* header=1: the keys (counted strs, not NUL-terminated) name the columns, once per table. */
    str cols = {"colsXX", 4};
    str names[2] = {{"methodZZ", 6}, {"to|tagZZ", 6}};
    db_key_t keys[2] = {&names[0], &names[1]};
    CHECK(dbf.use_table(h, &cols) == 0 && dbf.insert(h, keys, v, 2) == 0, "insert with keys");
    got = slurp("cols.columns", &len);
    CHECK(got && len == 16 && memcmp(got, "method|to%7Ctag\n", 16) == 0, "cols.columns: %s",
          got ? got : "(none)");
    free(got);

    dbf.close(h);
    dbf.close(NULL);

    /* acc selects the table before every insert. With a name that is not UTF-8 (counted, not
     * NUL-terminated), 10,000 more inserts after the first open no descriptor, and every
     * record is in the one file named with exactly the name's bytes, once and in order. */
    char bytes_url[128];
    int bytes_url_len = snprintf(bytes_url, sizeof bytes_url, "flatstore:%s/bytes", dir);
    char bytes_dir[96];
    snprintf(bytes_dir, sizeof bytes_dir, "%s/bytes", dir);
    CHECK(mkdir(bytes_dir, 0755) == 0, "mkdir %s", bytes_dir);
    str burl = {bytes_url, bytes_url_len};
    h = dbf.init(&burl);
    CHECK(h != NULL, "init %s", bytes_url);
    if (!h) return harness_done();
    str bytes_table = {"acc\xff\xfe-\xc3ZZ", 7};
    str n_name = {"nZZ", 1};
    db_key_t n_key[1] = {&n_name};
    db_val_t n = {.type = DB1_INT};
    int after_first = -1, failed = 0;
    for (int i = 0; i <= 10000; i++) {
        n.val.int_val = i;
        failed += dbf.use_table(h, &bytes_table) != 0 || dbf.insert(h, n_key, &n, 1) != 0;
        if (i == 0) after_first = open_descriptors();
    }
    int after_all = open_descriptors();
    CHECK(failed == 0, "%d of 10,001 inserts failed", failed);
    CHECK(after_first > 0 && after_all == after_first,
          "%d descriptors open after the first insert, %d after 10,000 more", after_first,
          after_all);
    dbf.close(h);
    const char *want_files[] = {"acc\xff\xfe-\xc3_129.log", "acc\xff\xfe-\xc3.columns"};
    int found = 0, others = 0;
    DIR *d = opendir(bytes_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, ".flatstore.ctl"))
            continue;
        if (!strcmp(e->d_name, want_files[0]) || !strcmp(e->d_name, want_files[1])) {
            found++;
        } else {
            others++;
            fprintf(stderr, "unexpected file %s/%s\n", bytes_dir, e->d_name);
        }
    }
    if (d) closedir(d);
    CHECK(found == 2 && others == 0, "the log and the columns named with the table's bytes: %d, "
          "others: %d", found, others);
    size_t room = 10001 * 6, records_len = 0;
    char *want_records = malloc(room);
    for (int i = 0; i <= 10000; i++)
        records_len +=
            (size_t)snprintf(want_records + records_len, room - records_len, "%d\n", i);
    char log_name[64];
    snprintf(log_name, sizeof log_name, "bytes/%s", want_files[0]);
    got = slurp(log_name, &len);
    CHECK(got && len == (long)records_len && memcmp(got, want_records, records_len) == 0,
          "records 0..10000 once and in order (%ld bytes, want %zu)", len, records_len);
    free(got);
    free(want_records);

    return harness_done_removing(dir);
}
