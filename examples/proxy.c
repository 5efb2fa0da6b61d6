/*
 * A miniature SIP proxy host: the main process loads flatstore and opens the accounting
 * connection, then forks workers the way OpenSER does. Each worker declares its rank and writes
 * acc-like records (one per transaction) through the C API.
 *
 *   proxy DIR [WORKERS] [CALLS_PER_WORKER] [FLUSH]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flatstore.h"

static db_val_t str_val(const char *s) {
    db_val_t v = {.type = DB_STR};
    v.val.str_val.s = (char *)s;
    v.val.str_val.len = (int)strlen(s);
    return v;
}

static int worker(db_con_t *h, int rank, int calls) {
    flat_child_init(rank); /* files: <table>_<rank + 4>.log */
    static db_key_t keys[] = {"method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time"};
    char from_tag[32], to_tag[32], callid[64];
    int failures = 0;
    time_t started = time(NULL);
    for (int i = 0; i < calls; i++) {
        snprintf(from_tag, sizeof from_tag, "f%d.%d", rank, i);
        snprintf(to_tag, sizeof to_tag, "t%d.%d", rank, i);
        snprintf(callid, sizeof callid, "%d-%d@proxy.example.com", rank, i);
        int missed = i % 10 == 9; /* every tenth call is not answered */
        const char *table = missed ? "missed_calls" : "acc";
        const char *methods[] = {"INVITE", "BYE"};
        for (int m = 0; m < (missed ? 1 : 2); m++) {
            db_val_t v[7] = {str_val(methods[m]), str_val(from_tag), str_val(to_tag), str_val(callid)};
            v[4].type = DB_INT;
            v[4].val.int_val = missed ? 486 : 200;
            v[5] = str_val(missed ? "Busy Here" : "OK");
            v[6].type = DB_DATETIME;
            /* a call every second from when the worker started, each BYE 20 to 320 s after
               its INVITE: the demo's CDRs get durations */
            v[6].val.time_val = started + i + (m ? 20 + i % 301 : 0);
            if (flat_use_table(h, table) != 0 || flat_db_insert(h, keys, v, 7) != 0) {
                fprintf(stderr, "worker %d: %s\n", rank, flat_last_error());
                failures++;
            }
        }
    }
    flat_db_close(h);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [WORKERS] [CALLS_PER_WORKER] [FLUSH]\n", argv[0]);
        return 2;
    }
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    int calls = argc > 3 ? atoi(argv[3]) : 10000;
    const char *flush = argc > 4 ? argv[4] : "1";
    if (flat_set_param("flush", flush) != 0) {
        fprintf(stderr, "flush: %s\n", flat_last_error());
        return 2;
    }
    char url[1024];
    snprintf(url, sizeof url, "flatstore:%s", argv[1]);
    db_con_t *h = flat_db_init(url); /* before fork, as the proxy's main process does */
    if (!h) {
        fprintf(stderr, "flat_db_init: %s\n", flat_last_error());
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 1; r <= workers; r++)
        if (fork() == 0) _exit(worker(h, r, calls));
    int failed = 0, status;
    for (int r = 1; r <= workers; r++) {
        wait(&status);
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long records = (long)workers * calls * 19 / 10;
    printf("%d workers wrote %ld records (flush=%s) in %.3f s: %.0f records/s\n", workers, records,
           flush, secs, (double)records / secs);
    flat_db_close(h);
    return failed;
}
