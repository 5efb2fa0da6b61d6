/*
 * The OpenSER C API as a host uses it: links libflatstore.so, includes the generated header.
 * Every expected line is computed with the C library itself (snprintf), not copied from Rust.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flatstore.h"
#include "harness.h"

_Static_assert(sizeof(str) == 16, "str is {char*, int}");
_Static_assert(sizeof(db_val_t) == 24, "db_val_t is 24 bytes");
_Static_assert(offsetof(db_val_t, nul) == 4, "nul at 4");
_Static_assert(offsetof(db_val_t, val) == 8, "val at 8");
_Static_assert(sizeof(db_con_t) == 16, "db_con_t is 16 bytes");
_Static_assert(offsetof(db_con_t, tail) == 8, "tail at 8");

static char dir[64];

/* ---------- small helpers ---------- */

static void path_of(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", dir, name);
}

/* Whole contents of dir/name (NUL-terminated, malloc'd); *len gets its size, -1 if absent. */
static char *slurp(const char *name, long *len) {
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = -1;
        return calloc(1, 1);
    }
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*len + 1);
    size_t got = fread(buf, 1, (size_t)*len, f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

static long size_of(const char *name) {
    char path[512];
    struct stat st;
    path_of(path, sizeof path, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static long count_lines(const char *name) {
    long len, lines = 0;
    char *buf = slurp(name, &len);
    for (long i = 0; i < len; i++) lines += buf[i] == '\n';
    free(buf);
    return lines;
}

/* write(2)-family system calls made by this process so far (the kernel's own count), or 0
 * always when FLATSTORE_CTEST_NO_SYSCALL_COUNTS is set (under valgrind, which writes too). */
static long write_calls(void) {
    if (getenv("FLATSTORE_CTEST_NO_SYSCALL_COUNTS")) return 0;
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %ld", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

static db_val_t v_int(int i) { db_val_t v = {.type = DB_INT}; v.val.int_val = i; return v; }
static db_val_t v_double(double d) { db_val_t v = {.type = DB_DOUBLE}; v.val.double_val = d; return v; }
static db_val_t v_string(const char *s) { db_val_t v = {.type = DB_STRING}; v.val.string_val = s; return v; }
static db_val_t v_str(const char *s, int len) {
    db_val_t v = {.type = DB_STR};
    v.val.str_val.s = (char *)s;
    v.val.str_val.len = len;
    return v;
}
static db_val_t v_blob(const char *s, int len) {
    db_val_t v = {.type = DB_BLOB};
    v.val.blob_val.s = (char *)s;
    v.val.blob_val.len = len;
    return v;
}
static db_val_t v_time(time_t t) { db_val_t v = {.type = DB_DATETIME}; v.val.time_val = t; return v; }
static db_val_t v_bitmap(unsigned b) { db_val_t v = {.type = DB_BITMAP}; v.val.bitmap_val = b; return v; }
static db_val_t v_null(int type) { db_val_t v = {.type = type, .nul = 1}; return v; }

static db_con_t *open_dir(const char *query) {
    char url[256];
    snprintf(url, sizeof url, "flatstore:%s%s", dir, query);
    db_con_t *h = flat_db_init(url);
    if (!h) fprintf(stderr, "flat_db_init(%s): %s\n", url, flat_last_error());
    return h;
}

/* Append to a growing expected buffer. */
struct text { char *s; size_t len, cap; };
static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void put(struct text *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < t->cap - t->len) { t->len += (size_t)n; return; }
        t->cap = t->cap * 2 + (size_t)n + 64;
        t->s = realloc(t->s, t->cap);
    }
}

/* ---------- the tests ---------- */

static void test_init_errors(void) {
    CHECK(flat_db_init(NULL) == NULL, "NULL url");
    CHECK(strstr(flat_last_error(), "NULL") != NULL, "message: %s", flat_last_error());
    CHECK(flat_db_init("mysql://localhost/acc") == NULL, "foreign scheme");
    CHECK(strstr(flat_last_error(), "mysql://") != NULL, "message: %s", flat_last_error());
    CHECK(flat_db_init("flatstore:/no/such/flatstore/dir") == NULL, "missing dir");
    CHECK(strstr(flat_last_error(), "/no/such/flatstore/dir") != NULL, "message names the path: %s",
          flat_last_error());
    char url[256];
    snprintf(url, sizeof url, "flatstore:%s?colour=blue", dir);
    CHECK(flat_db_init(url) == NULL, "unknown query parameter");
    CHECK(strstr(flat_last_error(), "colour") != NULL, "message: %s", flat_last_error());
    CHECK(flat_set_param("nope", "1") == FLATSTORE_E_PARAM, "unknown param");
    CHECK(strstr(flat_last_error(), "nope") != NULL, "message: %s", flat_last_error());
    CHECK(flat_set_param("flush", "2") == FLATSTORE_E_PARAM, "malformed flush");
    CHECK(flat_set_param(NULL, "1") == FLATSTORE_E_NULL, "NULL name");
    CHECK(flat_set_param("flush", "1") == 0, "flush=1 accepted");
}

/* Numbers: every line compared with what glibc's printf makes of the same value. */
static void test_numbers_match_printf(void) {
    db_con_t *h = open_dir("");
    CHECK(h != NULL, "init");
    if (!h) return;
    CHECK(flat_use_table(h, "numbers") == 0, "use_table: %s", flat_last_error());
    struct text want = {0};

    int ints[] = {0, 1, -1, 42, INT_MAX, INT_MIN, 1000000007};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        db_val_t v = v_int(ints[i]);
        CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "int %d", ints[i]);
        put(&want, "%d\n", ints[i]);
    }
    double doubles[] = {0.0, -0.0, 0.1, 1.5, 2.5, 0.0000005, 0.0000015, 0.0000025, 123456.789,
                        1e300, -1e-300, DBL_MAX, DBL_MIN, 5e-324, 1e22, 9007199254740993.0,
                        NAN, -NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof doubles / sizeof *doubles; i++) {
        db_val_t v = v_double(doubles[i]);
        CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "double %g", doubles[i]);
        put(&want, "%f\n", doubles[i]);
    }
    /* 20000 doubles from random bit patterns and random decimal magnitudes. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double d;
        if (i % 2) {
            memcpy(&d, &x, sizeof d);
        } else {
            d = (double)(int64_t)x / (double)(1ull << (x % 60));
        }
        db_val_t v = v_double(d);
        if (flat_db_insert(h, NULL, &v, 1) != 0) CHECK(0, "random double insert");
        put(&want, "%f\n", d);
    }
    time_t times[] = {0, 1700000000, -1, ((time_t)1 << 33) + 5, INT_MAX};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        db_val_t v = v_time(times[i]);
        CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "time");
        put(&want, "%u\n", (unsigned int)times[i]);
    }
    unsigned bitmaps[] = {0, 1, UINT_MAX, 0x80000000u};
    for (size_t i = 0; i < sizeof bitmaps / sizeof *bitmaps; i++) {
        db_val_t v = v_bitmap(bitmaps[i]);
        CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "bitmap");
        put(&want, "%u\n", bitmaps[i]);
    }
    /* A mixed record: fields joined by '|', in the caller's order. */
    db_val_t rec[] = {v_int(-7), v_double(3.25), v_time(86400), v_bitmap(9), v_string("x")};
    CHECK(flat_db_insert(h, NULL, rec, 5) == 0, "mixed record");
    put(&want, "%d|%f|%u|%u|%s\n", -7, 3.25, (unsigned)86400, 9u, "x");
    flat_db_close(h);

    long len;
    char *got = slurp("numbers_5.log", &len);
    CHECK(len == (long)want.len && memcmp(got, want.s, want.len) == 0,
          "file differs from printf (%ld vs %zu bytes)", len, want.len);
    if (len == (long)want.len) {
        for (size_t i = 0; i < want.len; i++)
            if (got[i] != want.s[i]) {
                long from = (long)i > 40 ? (long)i - 40 : 0;
                fprintf(stderr, "first difference at %zu: got '%.60s' want '%.60s'\n", i,
                        got + from, want.s + from);
                break;
            }
    }
    free(got);
    free(want.s);
}

static void test_text_blob_null(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    CHECK(flat_use_table(h, "text") == 0, "use_table");
    const char blob[] = {0x00, 'A', '|', '\\', (char)0xff, ' ', '~', 0x7f, '%'};
    db_val_t rec[] = {
        v_string("a|b\nc\rd%e"),
        v_str("hello world, not terminated here", 5),
        v_str(NULL, 0),
        v_blob(blob, (int)sizeof blob),
        v_null(DB_INT),
        v_null(DB_STRING), /* NULL pointer is fine when nul is set */
        v_int(1),
    };
    rec[5].val.string_val = NULL;
    CHECK(flat_db_insert(h, NULL, rec, 7) == 0, "insert: %s", flat_last_error());
    CHECK(flat_db_insert(h, NULL, NULL, 0) == 0, "n == 0 gives an empty line");
    flat_db_close(h);

    /* Expected: text escapes per DESIGN, BLOB as OpenSER does it (\xHH for non-printable, \, |). */
    struct text want = {0};
    put(&want, "a%%7Cb%%0Ac%%0Dd%%e|hello||");
    for (size_t i = 0; i < sizeof blob; i++) {
        unsigned char c = (unsigned char)blob[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '|') put(&want, "%c", c);
        else put(&want, "\\x%02X", c);
    }
    put(&want, "|||1\n\n");
    long len;
    char *got = slurp("text_5.log", &len);
    CHECK(len == (long)want.len && memcmp(got, want.s, want.len) == 0, "got '%s' want '%s'", got,
          want.s);
    free(got);
    free(want.s);
}

/* Each bad record: a clear error, a stable code, not one byte written, not one write(2). */
static void test_bad_values_write_nothing(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    db_val_t good = v_int(1);
    CHECK(flat_db_insert(h, NULL, &good, 1) == FLATSTORE_E_NO_TABLE, "insert before use_table");
    CHECK(flat_use_table(h, "bad") == 0, "use_table");
    CHECK(flat_db_insert(h, NULL, &good, 1) == 0, "one good record opens the file");
    long before = size_of("bad_5.log");
    CHECK(before == 2, "good record is '1\\n'");

    struct { db_val_t v; int code; const char *what; } cases[] = {
        {{.type = 7}, FLATSTORE_E_VALUE, "unknown type"},
        {{.type = -1}, FLATSTORE_E_VALUE, "unknown type"},
        {{.type = 99, .nul = 1}, FLATSTORE_E_VALUE, "unknown type"},
        {v_string(NULL), FLATSTORE_E_VALUE, "NULL string"},
        {v_str(NULL, 3), FLATSTORE_E_VALUE, "NULL pointer"},
        {v_str("abc", -1), FLATSTORE_E_VALUE, "negative length"},
        {v_blob("abc", -5), FLATSTORE_E_VALUE, "negative length"},
        {v_blob(NULL, 1), FLATSTORE_E_VALUE, "NULL pointer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        db_val_t rec[3] = {v_int(1), v_string("ok"), cases[i].v};
        long writes = write_calls();
        int rc = flat_db_insert(h, NULL, rec, 3);
        long writes_after = write_calls();
        CHECK(rc == cases[i].code, "case %zu: rc %d", i, rc);
        CHECK(strstr(flat_last_error(), cases[i].what) != NULL, "case %zu: message '%s'", i,
              flat_last_error());
        CHECK(strstr(flat_last_error(), "value 2") != NULL, "case %zu names the value: '%s'", i,
              flat_last_error());
        CHECK(writes_after == writes, "case %zu: %ld write calls", i, writes_after - writes);
        CHECK(size_of("bad_5.log") == before, "case %zu: file grew", i);
    }
    CHECK(flat_db_insert(h, NULL, &good, -1) == FLATSTORE_E_COUNT, "n < 0");
    CHECK(flat_db_insert(h, NULL, NULL, 2) == FLATSTORE_E_NULL, "NULL values with n > 0");
    CHECK(flat_db_insert(NULL, NULL, &good, 1) == FLATSTORE_E_NULL, "NULL handle");
    CHECK(flat_use_table(NULL, "x") == FLATSTORE_E_NULL, "use_table NULL handle");
    CHECK(size_of("bad_5.log") == before, "nothing written by any bad call");
    flat_db_close(h);
    flat_db_close(NULL);
}

static void test_one_write_per_record(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    CHECK(flat_use_table(h, "writes") == 0, "use_table");
    db_val_t rec[] = {v_string("INVITE"), v_str("a84b4c76e66710@pc33.example.com", 31), v_int(200),
                      v_string("OK"), v_time(1700000000), v_double(0.5), v_int(5060),
                      v_string("sip:alice@example.com"), v_string("sip:bob@example.com"),
                      v_null(DB_STR)};
    CHECK(flat_db_insert(h, NULL, rec, 10) == 0, "first insert opens");
    long size0 = size_of("writes_5.log");
    long writes = write_calls();
    for (int i = 0; i < 100; i++) flat_db_insert(h, NULL, rec, 10);
    long delta = write_calls() - writes;
    CHECK(delta == 100 || getenv("FLATSTORE_CTEST_NO_SYSCALL_COUNTS"), "100 records took %ld write calls", delta);
    CHECK(size_of("writes_5.log") == size0 * 101, "every record whole");
    flat_db_close(h);
}

/* The open flags of this process's descriptor for dir/name, from /proc/self/fdinfo; -1 if none. */
static long open_flags_of(const char *name) {
    char want[512], link[64], target[512], info[64], line[128];
    path_of(want, sizeof want, name);
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strcmp(target, want) != 0) continue;
        snprintf(info, sizeof info, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(info, "r");
        long flags = -1;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "flags: %lo", &flags) == 1) break;
        if (f) fclose(f);
        return flags;
    }
    return -1;
}

static void test_open_flags(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    flat_use_table(h, "flags");
    CHECK(open_flags_of("flags_5.log") == -1, "not opened before the first insert");
    db_val_t v = v_int(1);
    CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "insert");
    long flags = open_flags_of("flags_5.log");
    CHECK(flags != -1 && (flags & O_ACCMODE) == O_WRONLY, "write-only: %lo", flags);
    CHECK(flags != -1 && (flags & O_APPEND), "O_APPEND: %lo", flags);
    CHECK(flags != -1 && (flags & O_CLOEXEC), "O_CLOEXEC: %lo", flags);
    flat_db_close(h);
    CHECK(open_flags_of("flags_5.log") == -1, "closed by flat_db_close");
}

static void test_table_names(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    const char *bad[] = {"", "a/b", "..", "../etc", "x..y", "/abs", longname};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(flat_use_table(h, bad[i]) == FLATSTORE_E_TABLE, "table '%.20s' accepted", bad[i]);
        CHECK(strstr(flat_last_error(), "table name") != NULL, "message: %s", flat_last_error());
    }
    CHECK(flat_use_table(h, NULL) == FLATSTORE_E_NULL, "NULL table");
    CHECK(flat_use_table(h, "missed_calls") == 0, "ordinary name");
    CHECK(strcmp(h->table, "missed_calls") == 0, "h->table set like the C module");
    flat_db_close(h);
}

static void test_symlink_not_followed(void) {
    char target[512], link[512];
    path_of(target, sizeof target, "secret.txt");
    path_of(link, sizeof link, "sym_5.log");
    FILE *f = fopen(target, "w");
    fputs("secret\n", f);
    fclose(f);
    CHECK(symlink(target, link) == 0, "symlink");
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    CHECK(flat_use_table(h, "sym") == 0, "use_table");
    db_val_t v = v_int(1);
    CHECK(flat_db_insert(h, NULL, &v, 1) == FLATSTORE_E_OPEN, "write through symlink refused");
    CHECK(strstr(flat_last_error(), "sym_5.log") != NULL, "message: %s", flat_last_error());
    CHECK(size_of("secret.txt") == 7, "target untouched");
    flat_db_close(h);
}

static void test_file_mode(void) {
    mode_t old = umask(022);
    db_con_t *h = open_dir("?file_mode=0606");
    if (!h) { CHECK(0, "init"); umask(old); return; }
    CHECK(flat_use_table(h, "mode") == 0, "use_table");
    db_val_t v = v_int(1);
    CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "insert");
    flat_db_close(h);
    char path[512];
    struct stat st;
    path_of(path, sizeof path, "mode_5.log");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0606, "mode %o", st.st_mode & 0777);

    h = open_dir("");
    flat_use_table(h, "defaultmode");
    flat_db_insert(h, NULL, &v, 1);
    flat_db_close(h);
    path_of(path, sizeof path, "defaultmode_5.log");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "0666 less umask 022: %o",
          st.st_mode & 0777);
    umask(old);
}

static void test_rotate_in_process(void) {
    db_con_t *h = open_dir("");
    if (!h) { CHECK(0, "init"); return; }
    flat_use_table(h, "rot");
    db_val_t v = v_int(1);
    flat_db_insert(h, NULL, &v, 1);
    char from[512], to[512];
    path_of(from, sizeof from, "rot_5.log");
    path_of(to, sizeof to, "rot_5.log.1");
    CHECK(rename(from, to) == 0, "rename");
    v = v_int(2);
    flat_db_insert(h, NULL, &v, 1); /* still the old file until rotate */
    CHECK(flat_rotate() == 0, "rotate");
    CHECK(flat_rotate() == 0, "a second rotate in the same instant is harmless");
    v = v_int(3);
    CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "insert after rotate");
    flat_db_close(h);
    long len;
    char *old = slurp("rot_5.log.1", &len);
    CHECK(strcmp(old, "1\n2\n") == 0, "old file: '%s'", old);
    free(old);
    char *new = slurp("rot_5.log", &len);
    CHECK(strcmp(new, "3\n") == 0, "new file: '%s'", new);
    free(new);
}

/* Names in the test directory that start with `prefix`. */
static int count_named(const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

/* Self-rotation and the schema sidecar through the C API: keys are read with header=1 only. */
static void test_sealing_and_header(void) {
    db_con_t *h = open_dir("?rotate_records=2&header=1");
    if (!h) { CHECK(0, "init"); return; }
    db_key_t keys[2] = {"method", "to|tag"};
    flat_use_table(h, "seal");
    for (int i = 0; i < 5; i++) {
        db_val_t v[2] = {v_int(i), v_string("x")};
        CHECK(flat_db_insert(h, keys, v, 2) == 0, "insert %d", i);
    }
    long len;
    char *columns = slurp("seal.columns", &len);
    CHECK(columns && strcmp(columns, "method|to%7Ctag\n") == 0, "seal.columns: '%s'",
          columns ? columns : "(none)");
    free(columns);
    CHECK(count_named("seal_5.log.sealed-") == 2, "2 sealed files of 2 records");
    char *live = slurp("seal_5.log", &len);
    CHECK(live && strcmp(live, "4|x\n") == 0, "live file: '%s'", live ? live : "(none)");
    free(live);

    /* A host that passes no keys: the record is written, no sidecar is. */
    flat_use_table(h, "nokeys");
    db_val_t v = v_int(7);
    CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "insert without keys");
    CHECK(count_named("nokeys.columns") == 0, "no sidecar without keys");
    CHECK(flat_set_param("fsync", "sometimes") < 0 && flat_set_param("rotate_bytes", "1X") < 0,
          "bad policy and size refused");
    flat_db_close(h);
}

static void test_buffered(void) {
    db_con_t *h = open_dir("?flush=0&flush_interval=0.3");
    if (!h) { CHECK(0, "init"); return; }
    flat_use_table(h, "buf");
    long writes = write_calls();
    for (int i = 0; i < 10; i++) {
        db_val_t v = v_int(i);
        CHECK(flat_db_insert(h, NULL, &v, 1) == 0, "buffered insert");
    }
    CHECK(write_calls() == writes, "no write(2) while buffering");
    CHECK(size_of("buf_5.log") == 0, "nothing in the file yet: %ld", size_of("buf_5.log"));
    /* Idle: the helper thread must write them within the interval. */
    usleep(800 * 1000);
    CHECK(count_lines("buf_5.log") == 10, "idle process: %ld lines after 0.8 s",
          count_lines("buf_5.log"));

    /* Rotation: lines written before the request stay in the old file; lines still buffered
     * when it came go to the new file (so that `rotate --wait` can promise the old file is
     * finished). Each line lands exactly once. */
    db_val_t v = v_int(100);
    flat_db_insert(h, NULL, &v, 1);
    char from[512], to[512];
    path_of(from, sizeof from, "buf_5.log");
    path_of(to, sizeof to, "buf_5.log.1");
    rename(from, to);
    flat_rotate();
    v = v_int(101);
    flat_db_insert(h, NULL, &v, 1);
    flat_db_close(h);
    CHECK(count_lines("buf_5.log.1") == 10, "old file has the lines written before rotate");
    long len;
    char *new = slurp("buf_5.log", &len);
    CHECK(strcmp(new, "100\n101\n") == 0, "new file after close: '%s'", new);
    free(new);

    /* Buffer full: whole lines only, one write per full buffer. */
    h = open_dir("?flush=0&buffer_size=4096&flush_interval=60");
    flat_use_table(h, "full");
    char payload[100];
    memset(payload, 'p', sizeof payload);
    int whole = 1;
    writes = write_calls();
    for (int i = 0; i < 1000; i++) {
        db_val_t r[] = {v_int(i % 10), v_str(payload, 97)}; /* "d|" + 97 + "\n" = 100 bytes */
        flat_db_insert(h, NULL, r, 2);
        long size = size_of("full_5.log");
        if (size % 100 != 0) whole = 0;
    }
    long full_writes = write_calls() - writes;
    CHECK(whole, "the file only ever held whole lines");
    CHECK((full_writes >= 20 && full_writes <= 25) || getenv("FLATSTORE_CTEST_NO_SYSCALL_COUNTS"), "1000 records of 100 B in 4 KiB buffers: %ld writes",
          full_writes);
    flat_db_close(h);
    CHECK(size_of("full_5.log") == 100000, "close drains the rest: %ld", size_of("full_5.log"));
}

/* A child that buffers and calls exit() without closing: the exit hook writes its lines. */
static void test_exit_drains(void) {
    pid_t pid = fork();
    if (pid == 0) {
        flat_child_init(2); /* N = 6 */
        db_con_t *h = open_dir("?flush=0&flush_interval=60");
        flat_use_table(h, "exit");
        for (int i = 0; i < 5; i++) {
            db_val_t v = v_int(i);
            flat_db_insert(h, NULL, &v, 1);
        }
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    CHECK(count_lines("exit_6.log") == 5, "exit drained %ld of 5 lines", count_lines("exit_6.log"));
}

static void exit_at_once(int sig) { (void)sig; _exit(0); }

/* flush=0 and a SIGTERM that ends the process at once (Kamailio's children _exit(0) in their
 * handler; or the default action): every record whose insert returned is in the file, whole,
 * in order; at most the one in flight when the signal came is missing. Repeated so that the
 * signal lands inside an insert, a drain and the flusher's write too. */
static void test_sigterm_writes_out_buffer(int host_handler, const char *table) {
    volatile long *returned = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int rounds = 12, bad = 0;
    for (int round = 0; round < rounds; round++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d", table, round);
        *returned = 0;
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGTERM, host_handler ? exit_at_once : SIG_DFL);
            flat_child_init(1);
            db_con_t *h = open_dir("?flush=0&flush_interval=0.05&buffer_size=4096");
            flat_use_table(h, name);
            for (long i = 0;; i++) {
                db_val_t r[] = {v_string("INVITE"), v_int((int)i), v_string("call|id")};
                if (flat_db_insert(h, NULL, r, 3) == 0) *returned = i + 1;
            }
        }
        while (*returned < 2000 + round * 700) usleep(100);
        kill(pid, SIGTERM);
        int status;
        waitpid(pid, &status, 0);
        int ended_as_host_wants = host_handler ? (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                                               : (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        char file[80];
        snprintf(file, sizeof file, "%s_5.log", name);
        long len;
        char *got = slurp(file, &len);
        long lines = 0, in_order = 1;
        for (char *p = got, *end = got + len; got && p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            char want[64];
            int n = snprintf(want, sizeof want, "INVITE|%ld|call%%7Cid\n", lines);
            if (!nl || nl + 1 - p != n || memcmp(p, want, (size_t)n) != 0) { in_order = 0; break; }
            lines++;
            p = nl + 1;
        }
        if (!ended_as_host_wants || !in_order || lines < *returned || lines > *returned + 1) {
            bad++;
            fprintf(stderr, "round %d: status %d, %ld lines (in order: %ld), %ld inserts returned\n",
                    round, status, lines, in_order, *returned);
        }
        free(got);
    }
    CHECK(bad == 0, "%d of %d SIGTERM rounds lost or tore records", bad, rounds);
    munmap((void *)returned, sizeof(long));
}

/* 4 workers, each its own file, every line accounted for. */
static void test_fork_workers(void) {
    db_con_t *h = open_dir(""); /* opened before fork, as a proxy's main process does */
    if (!h) { CHECK(0, "init"); return; }
    const int workers = 4, records = 2000;
    for (int w = 0; w < workers; w++) {
        if (fork() == 0) {
            flat_child_init(w + 1); /* N = w + 5 */
            flat_use_table(h, "acc");
            int failures = 0;
            for (int i = 0; i < records; i++) {
                char callid[64];
                snprintf(callid, sizeof callid, "call-%d-%d@host", w, i);
                db_val_t r[] = {v_string("INVITE"), v_string(callid), v_int(200), v_int(i)};
                failures += flat_db_insert(h, NULL, r, 4) != 0;
            }
            flat_db_close(h);
            _exit(failures ? 1 : 0);
        }
    }
    int ok = 1, status;
    for (int w = 0; w < workers; w++) {
        wait(&status);
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CHECK(ok, "every worker's inserts returned 0");
    for (int w = 0; w < workers; w++) {
        char name[64];
        snprintf(name, sizeof name, "acc_%d.log", w + 5);
        long len;
        char *got = slurp(name, &len);
        struct text want = {0};
        for (int i = 0; i < records; i++) put(&want, "INVITE|call-%d-%d@host|200|%d\n", w, i, i);
        CHECK(len == (long)want.len && memcmp(got, want.s, want.len) == 0,
              "%s: every line, once, in order (%ld bytes)", name, len);
        free(got);
        free(want.s);
    }
    CHECK(size_of("acc_5.log") > 0 && size_of("acc_9.log") == -1, "exactly the 4 worker files");
    flat_db_close(h);
}

/* A handle inherited over fork is never written by the child, flush=1 and flush=0. */
static void test_inherited_handle(const char *query, const char *table) {
    db_con_t *h = open_dir(query);
    if (!h) { CHECK(0, "init"); return; }
    flat_use_table(h, table);
    db_val_t v = v_string("parent-before");
    for (int i = 0; i < 3; i++) flat_db_insert(h, NULL, &v, 1);
    pid_t pid = fork();
    if (pid == 0) {
        db_val_t c = v_string("child");
        int rc = flat_db_insert(h, NULL, &c, 1);
        flat_db_close(h);
        /* _exit: close wrote everything; exit would also run LSan's leak check, which counts
         * the start-up memory of the parent's helper thread (it does not exist here and its
         * frames are invisible to LSan's unwinder) as leaked. */
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child insert ok");
    v = v_string("parent-after");
    flat_db_insert(h, NULL, &v, 1);
    flat_db_close(h);
    char parent_file[64], child_file[64];
    snprintf(parent_file, sizeof parent_file, "%s_5.log", table);
    snprintf(child_file, sizeof child_file, "%s_%d.log", table, (int)pid);
    long len;
    char *parent = slurp(parent_file, &len);
    CHECK(strcmp(parent, "parent-before\nparent-before\nparent-before\nparent-after\n") == 0,
          "%s: parent's file has only the parent's lines, once: '%s'", query, parent);
    free(parent);
    char *child = slurp(child_file, &len);
    CHECK(strcmp(child, "child\n") == 0, "%s: child wrote its own file (N = pid): '%s'", query, child);
    free(child);
}

/* Wait up to `seconds` for child `pid`; 1 when it ended, its status in *status. A child still
 * running then is killed (SIGKILL) and reaped, and 0 returned: the test fails instead of
 * hanging. */
static int wait_within(pid_t pid, int seconds, int *status) {
    for (long waited_ms = 0; waited_ms < seconds * 1000L; waited_ms++) {
        if (waitpid(pid, status, WNOHANG) == pid) return 1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* fork() right after the insert that started the helper thread (flush=0), as a host that
 * forks a worker at once does: the child writes and closes its copy of the handle (starting a
 * helper thread of its own) and never hangs on a lock the parent's thread held at the fork,
 * even one taken in the thread's start-up (ASan's allocator, unlike glibc's malloc, does not
 * take its locks around fork()). Many rounds, each child given 20 s. */
static void test_fork_right_after_first_buffered_insert(int rounds) {
    int hung = 0, failed = 0;
    for (int round = 0; round < rounds; round++) {
        char name[32], file[64];
        snprintf(name, sizeof name, "race%d", round);
        db_con_t *h = open_dir("?flush=0&flush_interval=60");
        if (!h) { CHECK(0, "init"); return; }
        flat_use_table(h, name);
        db_val_t v = v_int(round);
        flat_db_insert(h, NULL, &v, 1); /* starts the helper thread */
        pid_t pid = fork();
        if (pid == 0) {
            int rc = flat_db_insert(h, NULL, &v, 1);
            flat_db_close(h);
            /* _exit, as in test_inherited_handle. */
            _exit(rc == 0 ? 0 : 1);
        }
        int status = 0;
        if (!wait_within(pid, 20, &status)) {
            hung++;
            fprintf(stderr, "round %d: child %d still running after 20 s: killed\n", round, (int)pid);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
            fprintf(stderr, "round %d: child status %d\n", round, status);
        }
        flat_db_close(h);
        snprintf(file, sizeof file, "%s_%d.log", name, (int)pid);
        long lines = count_lines(file);
        if (!hung && lines != 1) {
            failed++;
            fprintf(stderr, "round %d: %s has %ld lines\n", round, file, lines);
        }
    }
    CHECK(hung == 0, "%d of %d children forked right after the first buffered insert hung", hung, rounds);
    CHECK(failed == 0, "%d of %d children failed", failed, rounds);
}

/* ---------- the library's own messages: flat_set_log ---------- */

static int logged_count, logged_level;
static char logged[4096];

static void record_log(int level, const char *message) {
    logged_count++;
    logged_level = level;
    snprintf(logged, sizeof logged, "%s", message);
}

/* Run f(arg) with standard error sent to a temporary file; what was written there goes to out. */
static void capturing_stderr(void (*f)(const char *), const char *arg, char *out, size_t size) {
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    if (saved < 0 || !tmp) { CHECK(0, "capture stderr"); out[0] = 0; return; }
    dup2(fileno(tmp), 2);
    f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t got = fread(out, 1, size - 1, tmp);
    out[got] = 0;
    fclose(tmp);
}

/* Open and close a connection to a directory other users can write to (made here): the
 * library warns about it. */
static void init_in_shared(const char *path) {
    mkdir(path, 0777);
    chmod(path, 0777);
    char url[256];
    snprintf(url, sizeof url, "flatstore:%s", path);
    db_con_t *h = flat_db_init(url);
    CHECK(h != NULL, "init in %s: %s", path, flat_last_error());
    flat_db_close(h);
}

/* header=1 with no keys: the record is written, and the library says the column names were
 * not recorded. */
static void insert_without_keys(const char *table) {
    db_con_t *h = open_dir("?header=1");
    if (!h) { CHECK(0, "init"); return; }
    db_val_t v = v_int(1);
    CHECK(flat_use_table(h, table) == 0 && flat_db_insert(h, NULL, &v, 1) == 0, "insert");
    flat_db_close(h);
}

/* A log function handed over with flat_set_log gets every message, with its level and text,
 * and nothing goes to standard error; flat_set_log(NULL) puts them back on standard error. */
static void test_log_function(void) {
    char shared[128], want[512], said[4096];
    flat_set_log(record_log);

    snprintf(shared, sizeof shared, "%s/shared-log", dir);
    capturing_stderr(init_in_shared, shared, said, sizeof said);
    snprintf(want, sizeof want,
             "log directory %s is writable by other users (mode 777); use a directory only the "
             "proxy's user can write", shared);
    CHECK(logged_count == 1, "one message, got %d", logged_count);
    CHECK(logged_level == FLATSTORE_LOG_WARNING, "a warning: level %d", logged_level);
    CHECK(strcmp(logged, want) == 0, "text: \"%s\"", logged);
    CHECK(said[0] == 0, "nothing on standard error: \"%s\"", said);

    capturing_stderr(insert_without_keys, "log_nokeys", said, sizeof said);
    static const char columns[] = "column names of table \"log_nokeys\" not recorded: ";
    CHECK(logged_count == 2, "two messages, got %d", logged_count);
    CHECK(logged_level == FLATSTORE_LOG_ERR, "an error: level %d", logged_level);
    CHECK(strncmp(logged, columns, strlen(columns)) == 0, "text: \"%s\"", logged);
    CHECK(strchr(logged, '\n') == NULL, "no newline: \"%s\"", logged);
    CHECK(said[0] == 0, "nothing on standard error: \"%s\"", said);

    flat_set_log(NULL);
    snprintf(shared, sizeof shared, "%s/shared-stderr", dir);
    capturing_stderr(init_in_shared, shared, said, sizeof said);
    char line[600];
    snprintf(line, sizeof line,
             "flatstore: warning: log directory %s is writable by other users (mode 777); use a "
             "directory only the proxy's user can write\n", shared);
    CHECK(logged_count == 2, "the function is no longer called: %d", logged_count);
    CHECK(strcmp(said, line) == 0, "standard error again: \"%s\"", said);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/flatstore-ctest-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    CHECK(flat_child_init(1) == 0, "child_init"); /* this process writes <table>_5.log */

    RUN(test_init_errors());
    RUN(test_numbers_match_printf());
    RUN(test_text_blob_null());
    RUN(test_bad_values_write_nothing());
    RUN(test_one_write_per_record());
    RUN(test_open_flags());
    RUN(test_table_names());
    RUN(test_symlink_not_followed());
    RUN(test_file_mode());
    RUN(test_rotate_in_process());
    RUN(test_sealing_and_header());
    RUN(test_log_function());
    RUN(test_buffered());
    RUN(test_exit_drains());
    RUN(test_sigterm_writes_out_buffer(1, "term_exit"));
    RUN(test_sigterm_writes_out_buffer(0, "term_dfl"));
    RUN(test_fork_workers());
    RUN(test_inherited_handle("", "inh1"));
    RUN(test_inherited_handle("?flush=0&flush_interval=60", "inh0"));
    RUN(test_fork_right_after_first_buffered_insert(getenv("FLATSTORE_CTEST_QUICK") ? 20 : 200));

    return harness_done_removing(dir);
}
