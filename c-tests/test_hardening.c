/* Hardening through the C ABI: every bad argument gets a clean error and writes nothing;
 * kill -9 loses no acknowledged record, and a record it cut short (or a power loss did) is
 * moved out of the log by the next writer, also with self-rotation, whose sealed files hold
 * whole records only; a full disk fails inserts without partial lines, loses no buffered record, and
 * recovers once space is freed; a table name that is not UTF-8, selected before every insert,
 * opens one file, named with its bytes, and no descriptor per insert.
 *
 * FLATSTORE_CTEST_FULL_DIR: an empty directory on a small file system (the runner mounts a
 * 256 KiB tmpfs there when it can); without it the full disk is simulated with RLIMIT_FSIZE.
 * FLATSTORE_CTEST_QUICK: fewer kill -9 rounds (valgrind). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "flatstore.h"
#include "harness.h"

static char dir[64];

static char *slurp_path(const char *path, long *len) {
    *len = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    fstat(fd, &st);
    char *buf = malloc((size_t)st.st_size + 1);
    long got = 0;
    while (got < st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)(st.st_size - got));
        if (n <= 0) break;
        got += n;
    }
    close(fd);
    buf[got] = 0;
    *len = got;
    return buf;
}

static char *slurp(const char *in, const char *name, long *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", in, name);
    return slurp_path(path, len);
}

/* Entries of `in`, excluding the control file: a refused call must not create any. */
static int entries(const char *in) {
    DIR *d = opendir(in);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".flatstore.ctl")) n++;
    if (d) closedir(d);
    return n;
}

static db_con_t *open_in(const char *in, const char *query) {
    char url[512];
    snprintf(url, sizeof url, "flatstore:%s%s", in, query);
    return flat_db_init(url);
}

/* ---- the hostile-input matrix ---- */

static void refused(int rc, const char *what) {
    const char *msg = flat_last_error();
    CHECK(rc < 0 && msg && msg[0], "%s: rc %d, message \"%s\"", what, rc, msg ? msg : "(null)");
}

static void test_bad_arguments(void) {
    int before = entries(dir);
    char url[256];

    /* init: NULL, not ours, relative, missing directory, bad and unknown parameters */
    const char *bad_urls[] = {
        "", "flatstore", "flatstore:", "mysql://user@host/db", "flatstore:relative/dir",
        "flatstore:/nonexistent/flatstore/dir", "flatstore:/etc/passwd",
    };
    CHECK(flat_db_init(NULL) == NULL && flat_last_error()[0], "init(NULL)");
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++)
        CHECK(flat_db_init(bad_urls[i]) == NULL && flat_last_error()[0], "init(\"%s\")", bad_urls[i]);
    const char *bad_queries[] = {
        "?flush=2", "?flush=", "?flush_interval=0", "?flush_interval=-1", "?flush_interval=nan",
        "?buffer_size=1", "?buffer_size=99999999999999999999", "?escape=html", "?file_mode=0999",
        "?file_mode=rwx", "?rotate_signal=KILL", "?no_such_parameter=1", "?flush", "?=1",
        "?field_delimiter=;",
    };
    for (size_t i = 0; i < sizeof bad_queries / sizeof *bad_queries; i++) {
        snprintf(url, sizeof url, "flatstore:%s%s", dir, bad_queries[i]);
        CHECK(flat_db_init(url) == NULL && flat_last_error()[0], "init(\"%s\")", url);
    }
    size_t huge_len = 1 << 20;
    char *huge = malloc(huge_len + 1);
    memset(huge, 'a', huge_len);
    memcpy(huge, "flatstore:/", 11);
    huge[huge_len] = 0;
    CHECK(flat_db_init(huge) == NULL && flat_last_error()[0], "init(1 MiB URL)");
    free(huge);
    /* a URL that is not UTF-8 is a bad URL, not a parameter */
    snprintf(url, sizeof url, "flatstore:%s/\xff", dir);
    CHECK(flat_db_init(url) == NULL && strncmp(flat_last_error(), "bad URL ", 8) == 0 &&
              strstr(flat_last_error(), "not valid UTF-8"),
          "init(URL not UTF-8): %s", flat_last_error());

    /* parameters */
    refused(flat_set_param(NULL, "1"), "set_param(NULL, ...)");
    refused(flat_set_param("flush", NULL), "set_param(flush, NULL)");
    refused(flat_set_param("flush", "yes please"), "set_param(flush, junk)");
    refused(flat_set_param("no_such_parameter", "1"), "set_param(unknown)");

    /* NULL handles everywhere */
    db_val_t one = {.type = DB_INT};
    refused(flat_use_table(NULL, "acc"), "use_table(NULL handle)");
    refused(flat_db_insert(NULL, NULL, &one, 1), "insert(NULL handle)");
    flat_db_close(NULL);

    db_con_t *h = open_in(dir, "");
    if (!h) { CHECK(0, "init: %s", flat_last_error()); return; }
    refused(flat_db_insert(h, NULL, &one, 1), "insert before use_table");

    /* table names that could leave the directory, or are not names at all */
    char too_long[10001];
    memset(too_long, 't', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = 0;
    char just_too_long[202];
    memset(just_too_long, 't', 201);
    just_too_long[201] = 0;
    const char *bad_tables[] = {
        "", "..", "../acc", "a/../../etc/x", "/etc/passwd", "acc/x", "x..y", just_too_long, too_long,
    };
    refused(flat_use_table(h, NULL), "use_table(NULL)");
    for (size_t i = 0; i < sizeof bad_tables / sizeof *bad_tables; i++)
        refused(flat_use_table(h, bad_tables[i]), bad_tables[i]);
    CHECK(flat_use_table(h, "acc") == 0, "a good table still works");

    /* values: counts, arrays, tags, lengths, pointers */
    db_val_t v[3] = {{.type = DB_INT}, {.type = DB_STR}, {.type = DB_STRING}};
    v[1].val.str_val = (str){"ok", 2};
    v[2].val.string_val = "fine";
    refused(flat_db_insert(h, NULL, v, -1), "n = -1");
    refused(flat_db_insert(h, NULL, v, INT_MIN), "n = INT_MIN");
    refused(flat_db_insert(h, NULL, NULL, 3), "NULL values, n = 3");
    refused(flat_db_insert(h, NULL, NULL, INT_MAX), "NULL values, n = INT_MAX");
    int tags[] = {-1, 7, 8, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
        db_val_t bad[3] = {v[0], v[1], v[2]};
        bad[1].type = tags[i];
        char what[64];
        snprintf(what, sizeof what, "type tag %d", tags[i]);
        refused(flat_db_insert(h, NULL, bad, 3), what);
        bad[1].nul = 1; /* a NULL of an unknown type is still an unknown type */
        refused(flat_db_insert(h, NULL, bad, 3), what);
    }
    db_val_t bad[3] = {v[0], v[1], v[2]};
    bad[1].val.str_val = (str){"x", -1};
    refused(flat_db_insert(h, NULL, bad, 3), "negative str length");
    bad[1].val.str_val = (str){"x", INT_MIN};
    refused(flat_db_insert(h, NULL, bad, 3), "INT_MIN str length");
    bad[1].val.str_val = (str){NULL, 5};
    refused(flat_db_insert(h, NULL, bad, 3), "NULL str with a length");
    bad[1].type = DB_BLOB;
    bad[1].val.blob_val = (str){NULL, 1};
    refused(flat_db_insert(h, NULL, bad, 3), "NULL blob with a length");
    bad[1] = v[1];
    bad[2].val.string_val = NULL;
    refused(flat_db_insert(h, NULL, bad, 3), "NULL string");
    CHECK(entries(dir) == before, "no refused call created a file (%d entries, %d before)",
          entries(dir), before);

    /* the same NULLs with nul set are NULL values: accepted, empty fields */
    bad[2].nul = 1;
    CHECK(flat_db_insert(h, NULL, bad, 3) == 0, "NULL string with nul=1: %s", flat_last_error());
    long len;
    char *got = slurp(dir, "acc_5.log", &len);
    CHECK(got && strcmp(got, "0|ok|\n") == 0, "only the accepted record: \"%s\"", got ? got : "");
    free(got);
    flat_db_close(h);
}

/* ---- kill -9 ---- */

/* The line of record i: "<i>|" and 10 to 4,000 bytes, so that kills also land in long writes. */
static int line_of(long i, char *out, size_t room) {
    int n = snprintf(out, room, "%ld|", i);
    int size = (int)(i * 7919 % 4000);
    memset(out + n, 'p', (size_t)size);
    out[n + size] = '\n';
    return n + size + 1;
}

/* Writers at flush=1 killed at random moments. Every acknowledged record is in the file,
 * whole and in order; after them at most the record in flight, whole or cut short (Linux
 * stops a write(2) between pages when a fatal signal is pending: an append cannot be made
 * atomic against kill -9); the next writer of the file starts on a fresh line. */
static void test_kill_9(int rounds) {
    volatile long *returned = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int bad = 0, cut_short = 0;
    long records = 0, in_flight = 0;
    static char want[8192];
    srand(12345);
    for (int round = 0; round < rounds; round++) {
        char table[32];
        snprintf(table, sizeof table, "k%d", round);
        *returned = 0;
        pid_t pid = fork();
        if (pid == 0) {
            flat_child_init(1);
            db_con_t *h = open_in(dir, "");
            flat_use_table(h, table);
            for (long i = 0;; i++) {
                int len = line_of(i, want, sizeof want);
                db_val_t r[2] = {{.type = DB_INT}, {.type = DB_STR}};
                r[0].val.int_val = (int)i;
                char *bar = memchr(want, '|', (size_t)len);
                r[1].val.str_val = (str){bar + 1, (int)(want + len - 1 - (bar + 1))};
                if (flat_db_insert(h, NULL, r, 2) == 0) *returned = i + 1;
            }
        }
        long wait_for = rand() % 400;
        while (*returned < wait_for) usleep(50);
        usleep((useconds_t)(rand() % 500));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        long acknowledged = *returned;
        char name[64];
        snprintf(name, sizeof name, "%s_5.log", table);
        long len;
        char *got = slurp(dir, name, &len);
        long lines = 0, at = 0, cut = 0;
        long ok = got && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        while (ok && at < len) {
            int n = line_of(lines, want, sizeof want);
            if (at + n <= len && memcmp(got + at, want, (size_t)n) == 0) {
                at += n;
                lines++;
            } else {
                /* only the record in flight may be cut short */
                ok = lines == acknowledged && memcmp(got + at, want, (size_t)(len - at)) == 0;
                cut = len - at;
                cut_short += ok;
                break;
            }
        }
        ok = ok && lines >= acknowledged && lines <= acknowledged + 1;
        free(got);
        char *torn_copy = NULL;
        if (cut) {
            torn_copy = malloc((size_t)cut + 1);
            line_of(lines, want, sizeof want);
            memcpy(torn_copy, want, (size_t)cut);
            torn_copy[cut] = '\n';
        }
        /* the next writer of the file (same process number) starts on a fresh line */
        pid = fork();
        if (pid == 0) {
            flat_child_init(1);
            db_con_t *h = open_in(dir, "");
            flat_use_table(h, table);
            db_val_t r = {.type = DB_STRING};
            r.val.string_val = "next";
            _exit(flat_db_insert(h, NULL, &r, 1) == 0 ? 0 : 1);
        }
        waitpid(pid, &status, 0);
        /* the cut-short record was moved aside, and the next one follows the whole ones */
        got = slurp(dir, name, &len);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 && len == at + 5 &&
             memcmp(got + at, "next\n", 5) == 0;
        free(got);
        char aside[80];
        snprintf(aside, sizeof aside, ".%s.torn", name);
        got = slurp(dir, aside, &len);
        ok = ok && (cut ? got && len == cut + 1 && memcmp(got, torn_copy, (size_t)len) == 0 : !got);
        free(got);
        free(torn_copy);
        if (!ok) {
            bad++;
            fprintf(stderr, "kill -9 round %d: %ld whole records, %ld acknowledged\n", round,
                    lines, acknowledged);
        }
        records += lines;
        in_flight += lines - acknowledged;
    }
    printf("kill -9: %d rounds, %ld records in the files, %ld written whole but not yet "
           "acknowledged when the kill came, %d cut short by the kill and moved aside by the next "
           "writer\n", rounds, records, in_flight, cut_short);
    CHECK(bad == 0, "%d of %d kill -9 rounds lost an acknowledged record or merged lines", bad,
          rounds);
    munmap((void *)returned, sizeof(long));
}

/* ---- kill -9 with self-rotation ---- */

/* Rounds of one writer (always N = 5) at flush=1 with rotate_records=37, each killed at a
 * random moment; a last writer then inserts "end" and closes. Sealed files must hold whole,
 * intact records only (at most 37), and every acknowledged record of every round must be in
 * exactly one file: a sealed one, the live one, or -- for the record the kill cut short --
 * nowhere (moved aside as a torn line). */
static void test_kill_9_sealed(int rounds) {
    char in[128];
    snprintf(in, sizeof in, "%s/sealed", dir);
    mkdir(in, 0700);
    volatile long *returned = mmap(NULL, sizeof(long) * (size_t)rounds, PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    static char want[8192];
    srand(4242);
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            flat_child_init(1);
            db_con_t *h = open_in(in, "?rotate_records=37");
            flat_use_table(h, "s");
            for (long i = 0;; i++) {
                int len = line_of(i, want, sizeof want);
                char *bar = memchr(want, '|', (size_t)len);
                db_val_t r[3] = {{.type = DB_INT}, {.type = DB_INT}, {.type = DB_STR}};
                r[0].val.int_val = round;
                r[1].val.int_val = (int)i;
                r[2].val.str_val = (str){bar + 1, (int)(want + len - 1 - (bar + 1))};
                if (flat_db_insert(h, NULL, r, 3) == 0) returned[round] = i + 1;
            }
        }
        long wait_for = rand() % 150;
        while (returned[round] < wait_for) usleep(50);
        usleep((useconds_t)(rand() % 500));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    db_con_t *last = open_in(in, "?rotate_records=37");
    db_val_t end = {.type = DB_STRING};
    end.val.string_val = "end";
    CHECK(last && flat_use_table(last, "s") == 0 && flat_db_insert(last, NULL, &end, 1) == 0,
          "last writer inserts: %s", flat_last_error());
    flat_db_close(last);

    /* seen[round][i]: how many times record i of round was found */
    long total = 0, sealed_files = 0, over_limit = 0, damaged = 0, live_records = 0;
    unsigned char **seen = calloc((size_t)rounds, sizeof *seen);
    for (int r = 0; r < rounds; r++) seen[r] = calloc((size_t)returned[r] + 2, 1);
    DIR *d = opendir(in);
    for (struct dirent *e; d && (e = readdir(d));) {
        int sealed = strncmp(e->d_name, "s_5.log.sealed-", 15) == 0;
        int live = strcmp(e->d_name, "s_5.log") == 0;
        if (!sealed && !live) continue;
        long len;
        char *got = slurp(in, e->d_name, &len);
        long records = 0;
        for (long at = 0; got && at < len;) {
            char *end = memchr(got + at, '\n', (size_t)(len - at));
            if (live && end && end - (got + at) == 3 && memcmp(got + at, "end", 3) == 0) {
                at += 4;
                continue;
            }
            int round, n;
            long i;
            if (!end || sscanf(got + at, "%d|%ld|%n", &round, &i, &n) != 2 || round < 0 ||
                round >= rounds || i < 0 || i > returned[round]) {
                damaged++;
                break;
            }
            int wlen = line_of(i, want, sizeof want);
            char *bar = memchr(want, '|', (size_t)wlen);
            long payload = want + wlen - (bar + 1);
            if (end + 1 - (got + at + n) != payload || memcmp(got + at + n, bar + 1, (size_t)payload)) {
                damaged++;
                break;
            }
            seen[round][i]++;
            records++;
            at = end + 1 - got;
        }
        if (sealed) {
            sealed_files++;
            over_limit += records > 37;
        } else {
            live_records += records;
        }
        total += records;
        free(got);
    }
    if (d) closedir(d);
    long lost = 0, twice = 0, unacknowledged = 0;
    for (int r = 0; r < rounds; r++) {
        for (long i = 0; i < returned[r]; i++) {
            lost += seen[r][i] == 0;
            twice += seen[r][i] > 1;
        }
        unacknowledged += seen[r][returned[r]];
        free(seen[r]);
    }
    free(seen);
    printf("kill -9 with rotate_records=37: %d rounds, %ld records in %ld sealed files and %ld in "
           "the live file (%ld written whole but not acknowledged when the kill came)\n",
           rounds, total - live_records, sealed_files, live_records, unacknowledged);
    CHECK(damaged == 0, "%ld files hold a torn or altered record", damaged);
    CHECK(over_limit == 0, "%ld sealed files hold more than 37 records", over_limit);
    CHECK(lost == 0 && twice == 0, "%ld acknowledged records lost, %ld found twice", lost, twice);
    CHECK(live_records == 0, "the last writer sealed the file it found (%ld records left live, "
          "besides its own)", live_records);
    CHECK(sealed_files >= rounds / 2, "only %ld sealed files from %d rounds", sealed_files, rounds);
    munmap((void *)returned, sizeof(long) * (size_t)rounds);
}

/* ---- a torn tail left by a crash of the machine ---- */

static void test_torn_tail_closed(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/torn_5.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(write(fd, "1|a|x\n2|b", 9) == 9, "write torn file");
    close(fd);
    db_con_t *h = open_in(dir, "");
    flat_use_table(h, "torn");
    db_val_t r[3] = {{.type = DB_INT}, {.type = DB_STRING}, {.type = DB_STRING}};
    r[0].val.int_val = 3;
    r[1].val.string_val = "c";
    r[2].val.string_val = "z";
    CHECK(flat_db_insert(h, NULL, r, 3) == 0, "insert after a torn tail");
    long len;
    char *got = slurp_path(path, &len);
    CHECK(got && strcmp(got, "1|a|x\n3|c|z\n") == 0, "torn record moved out: \"%s\"",
          got ? got : "");
    free(got);
    got = slurp(dir, ".torn_5.log.torn", &len);
    CHECK(got && strcmp(got, "2|b\n") == 0, "torn bytes kept aside: \"%s\"", got ? got : "");
    free(got);
    flat_db_close(h);
}

/* Run `body(arg)` in a child, which then exits normally with its result (exit hooks run);
 * its standard error is collected into `said` (NUL-terminated). Returns the wait status. */
static int in_child_capturing_stderr(int (*body)(const char *), const char *arg, char *said,
                                     size_t room) {
    int err[2];
    said[0] = 0;
    if (pipe(err) != 0) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        close(err[0]);
        exit(body(arg));
    }
    close(err[1]);
    size_t got = 0;
    for (ssize_t n; got < room - 1 && (n = read(err[0], said + got, room - 1 - got)) > 0;)
        got += (size_t)n;
    said[got] = 0;
    close(err[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

/* ---- files planted by others ---- */

static int open_and_close(const char *in) {
    db_con_t *h = open_in(in, "");
    int opened = h != NULL;
    flat_db_close(h);
    return opened ? 0 : 1;
}

/* A FIFO at the log path: refused at once (no hang in open), nothing written anywhere. A
 * directory that other users can write to: a warning on standard error at init. */
static void test_planted_files(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/fifo_5.log", dir);
    CHECK(mkfifo(path, 0644) == 0, "mkfifo");
    db_con_t *h = open_in(dir, "");
    flat_use_table(h, "fifo");
    db_val_t r = {.type = DB_INT};
    refused(flat_db_insert(h, NULL, &r, 1), "insert with a FIFO at the log path");
    CHECK(strstr(flat_last_error(), "not a regular file") != NULL, "says why: %s", flat_last_error());
    flat_db_close(h);
    unlink(path);

    char shared[128];
    snprintf(shared, sizeof shared, "%s/shared", dir);
    mkdir(shared, 0777);
    chmod(shared, 0777);
    char said[1024];
    int status = in_child_capturing_stderr(open_and_close, shared, said, sizeof said);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "init in a shared directory still works");
    CHECK(strstr(said, "writable by other users") != NULL, "warning: \"%s\"", said);
}

/* ---- a table name that is not UTF-8 ---- */

/* Descriptors open in this process: the entries of /proc/self/fd, less the one listing it. */
static int open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* A proxy selects the table before every insert. With a name that is not UTF-8, 10,000 more
 * inserts after the first open no descriptor, and every record is in the one file named with
 * exactly the name's bytes, once and in order. */
static void test_table_name_not_utf8(void) {
    static const char table[] = "acc\xff\xfe-\xc3"; /* invalid bytes, a cut-short sequence */
    char in[128], name[64];
    snprintf(in, sizeof in, "%s/bytes", dir);
    snprintf(name, sizeof name, "%s_5.log", table);
    CHECK(mkdir(in, 0755) == 0, "mkdir %s", in);
    db_con_t *h = open_in(in, "");
    if (!h) { CHECK(0, "init: %s", flat_last_error()); return; }
    db_val_t r = {.type = DB_INT};
    int after_first = -1, failed = 0;
    for (int i = 0; i <= 10000; i++) {
        r.val.int_val = i;
        failed += flat_use_table(h, table) != 0 || flat_db_insert(h, NULL, &r, 1) != 0;
        if (i == 0) after_first = open_descriptors();
    }
    int after_all = open_descriptors();
    CHECK(failed == 0, "%d of 10,001 inserts failed: %s", failed, flat_last_error());
    CHECK(after_first > 0 && after_all == after_first,
          "%d descriptors open after the first insert, %d after 10,000 more", after_first,
          after_all);
    flat_db_close(h);

    int found = 0, others = 0;
    DIR *d = opendir(in);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, ".flatstore.ctl"))
            continue;
        if (!strcmp(e->d_name, name)) {
            found++;
        } else {
            others++;
            fprintf(stderr, "unexpected file %s/%s\n", in, e->d_name);
        }
    }
    if (d) closedir(d);
    CHECK(found == 1 && others == 0, "the one file named with the table's bytes: %d, others: %d",
          found, others);
    size_t room = 10001 * 6, want_len = 0;
    char *want = malloc(room);
    for (int i = 0; i <= 10000; i++)
        want_len += (size_t)snprintf(want + want_len, room - want_len, "%d\n", i);
    long len;
    char *got = slurp(in, name, &len);
    CHECK(got && len == (long)want_len && memcmp(got, want, want_len) == 0,
          "records 0..10000 once and in order (%ld bytes, want %zu)", len, want_len);
    free(got);
    free(want);
}

/* ---- a full disk ---- */

static const char *full_dir;

/* Leave about 40 KiB of room: fill the small tmpfs with a filler file and give 40 KiB of it
 * back, or (no tmpfs) limit this process's file size with RLIMIT_FSIZE. 0 on success. */
static int limit_space(const char *in) {
    if (!full_dir) {
        signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the default: terminate */
        struct rlimit limit = {40 * 1024, RLIM_INFINITY};
        return setrlimit(RLIMIT_FSIZE, &limit);
    }
    char filler[512];
    snprintf(filler, sizeof filler, "%s/filler", in);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    char block[4096];
    memset(block, 0, sizeof block);
    while (write(fd, block, sizeof block) == (ssize_t)sizeof block) {}
    off_t size = lseek(fd, 0, SEEK_END);
    int rc = ftruncate(fd, size > 40 * 1024 ? size - 40 * 1024 : 0);
    close(fd);
    return rc;
}

static void free_space(const char *in) {
    if (!full_dir) {
        struct rlimit limit = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &limit);
        return;
    }
    char filler[512];
    snprintf(filler, sizeof filler, "%s/filler", in);
    unlink(filler);
}

static int whole_lines(const char *in, const char *name, long *lines) {
    long len;
    char *got = slurp(in, name, &len);
    *lines = 0;
    if (!got) return len == -1;
    for (long i = 0; i < len; i++) *lines += got[i] == '\n';
    int whole = len == 0 || got[len - 1] == '\n';
    free(got);
    return whole;
}

/* Insert 180-byte records until the disk is full (and 20 more). Returns the number accepted,
 * -1 if the disk never filled or the error was not about space. */
static long fill_with_records(db_con_t *h) {
    char payload[180];
    memset(payload, 'f', sizeof payload);
    db_val_t r = {.type = DB_STR};
    r.val.str_val = (str){payload, (int)sizeof payload};
    long accepted = 0, first_error = -1;
    for (long i = 0; i < 2000 && (first_error < 0 || i < first_error + 20); i++) {
        if (flat_db_insert(h, NULL, &r, 1) == 0) {
            accepted++;
        } else if (first_error < 0) {
            first_error = i;
            const char *msg = flat_last_error();
            if (!strstr(msg, "No space") && !strstr(msg, "too large")) {
                fprintf(stderr, "not an error about space: %s\n", msg);
                return -1;
            }
        }
    }
    return first_error < 0 ? -1 : accepted;
}

/* In a child (the limit belongs to it): fill, check, free, insert again, close and check.
 * Exit status: the number of failures. */
static int full_disk_child(const char *in, const char *query, const char *table) {
    int buffered = strstr(query, "flush=0") != NULL, failures = 0;
    flat_child_init(1);
    db_con_t *h = open_in(in, query);
    if (!h || flat_use_table(h, table) != 0 || limit_space(in) != 0) return 100;
    long accepted = fill_with_records(h), lines;
    char name[64];
    snprintf(name, sizeof name, "%s_5.log", table);
    if (accepted < 0) return 101;
    if (!whole_lines(in, name, &lines)) { fprintf(stderr, "partial line on a full disk\n"); failures++; }
    if (!buffered && lines != accepted) {
        fprintf(stderr, "flush=1: %ld lines, %ld inserts accepted\n", lines, accepted);
        failures++;
    }
    long full_at = accepted;
    free_space(in);
    char payload[180];
    memset(payload, 'f', sizeof payload);
    db_val_t r = {.type = DB_STR};
    r.val.str_val = (str){payload, (int)sizeof payload};
    for (int i = 0; i < 10; i++) {
        if (flat_db_insert(h, NULL, &r, 1) != 0) {
            fprintf(stderr, "insert after space was freed: %s\n", flat_last_error());
            failures++;
            break;
        }
        accepted++;
    }
    flat_db_close(h);
    if (!whole_lines(in, name, &lines) || lines != accepted) {
        fprintf(stderr, "after freeing space and closing: %ld lines, %ld accepted\n", lines, accepted);
        failures++;
    }
    printf("full disk (%s, flush=%d): inserts failed after %ld records; after freeing space "
           "%ld accepted in all, %ld whole lines in the file\n",
           full_dir ? "tmpfs" : "RLIMIT_FSIZE", !buffered, full_at, accepted, lines);
    fflush(stdout);
    return failures;
}

static void test_full_disk(const char *query, const char *table) {
    const char *in = full_dir ? full_dir : dir;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(full_disk_child(in, query, table));
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "full disk, %s: status %d", query, status);
    char path[512];
    snprintf(path, sizeof path, "%s/%s_5.log", in, table);
    if (full_dir) unlink(path);
}

/* flush=0, the disk still full when the process exits: the records that could not be written
 * are counted on standard error, never dropped silently. */
/* Still open at exit, on purpose; a global (with external linkage, so the compiler keeps the
 * store) so that leak checkers see it reachable. */
db_con_t *open_at_exit;

static int fill_and_exit(const char *in) {
    flat_child_init(1);
    db_con_t *h = open_at_exit = open_in(in, "?flush=0&buffer_size=4096&flush_interval=60");
    if (!h || flat_use_table(h, "full_exit") != 0 || limit_space(in) != 0) return 100;
    return fill_with_records(h) < 0 ? 101 : 0;
}

static void test_full_disk_at_exit(void) {
    const char *in = full_dir ? full_dir : dir;
    char report[4096];
    int status = in_child_capturing_stderr(fill_and_exit, in, report, sizeof report);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "full disk at exit: status %d", status);
    CHECK(strstr(report, "buffered records") && strstr(report, "could not be written"),
          "records lost at exit are reported: \"%s\"", report);
    printf("full disk at exit: %s", report);
    free_space(in);
    char path[512];
    snprintf(path, sizeof path, "%s/full_exit_5.log", in);
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/flatstore-hardening-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    full_dir = getenv("FLATSTORE_CTEST_FULL_DIR");
    if (full_dir && !full_dir[0]) full_dir = NULL;
    CHECK(flat_child_init(1) == 0, "child_init");

    RUN(test_bad_arguments());
    RUN(test_torn_tail_closed());
    RUN(test_planted_files());
    RUN(test_table_name_not_utf8());
    RUN(test_kill_9(getenv("FLATSTORE_CTEST_QUICK") ? 20 : 200));
    RUN(test_kill_9_sealed(getenv("FLATSTORE_CTEST_QUICK") ? 15 : 100));
    RUN(test_full_disk("", "full1"));
    RUN(test_full_disk("?flush=0&buffer_size=4096&flush_interval=60", "full0"));
    RUN(test_full_disk_at_exit());

    return harness_done_removing(dir);
}
