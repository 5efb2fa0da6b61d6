/*
 * A SIP-proxy-like host for the rotation torture test: the main process opens DIR with
 * rotate_signal=USR1, forks WORKERS workers that insert unique records ("<rank>|<seq>") as fast
 * as they can, and calls flat_rotate() each time it gets SIGUSR2. Everything stops when the
 * file STOP exists; each worker then prints "done <rank> <records inserted>".
 *
 *   torture_host DIR WORKERS STOP FLUSH [PARAMS]
 *
 * PARAMS: more URL parameters, "name=value&name=value" (self-rotation limits, for example).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flatstore.h"

static volatile sig_atomic_t rotate_requested;

static void on_usr2(int sig) {
    (void)sig;
    rotate_requested = 1;
}

static int worker(db_con_t *h, int rank, const char *stop) {
    flat_child_init(rank);
    if (flat_use_table(h, "acc") != 0) return 1;
    long seq = 0, failures = 0;
    for (;;) {
        if (seq % 256 == 0 && access(stop, F_OK) == 0) break;
        db_val_t v[2] = {{.type = DB_INT}, {.type = DB_BITMAP}};
        v[0].val.int_val = rank;
        v[1].val.bitmap_val = (unsigned)seq;
        if (flat_db_insert(h, NULL, v, 2) == 0) {
            seq++;
        } else {
            fprintf(stderr, "worker %d: %s\n", rank, flat_last_error());
            if (++failures > 10) break;
        }
    }
    flat_db_close(h);
    char line[64];
    int n = snprintf(line, sizeof line, "done %d %ld\n", rank, seq);
    if (write(1, line, (size_t)n) != n) return 1;
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s DIR WORKERS STOP FLUSH [PARAMS]\n", argv[0]);
        return 2;
    }
    int workers = atoi(argv[2]);
    const char *stop = argv[3];
    char url[1024];
    snprintf(url, sizeof url, "flatstore:%s?flush=%s&flush_interval=0.05%s%s", argv[1], argv[4],
             argc == 6 && argv[5][0] ? "&" : "", argc == 6 ? argv[5] : "");
    if (flat_set_param("rotate_signal", "USR1") != 0) return 2;
    db_con_t *h = flat_db_init(url);
    if (!h) {
        fprintf(stderr, "init: %s\n", flat_last_error());
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_usr2};
    sigaction(SIGUSR2, &sa, NULL);
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int r = 1; r <= workers; r++) {
        pid_t pid = fork();
        if (pid == 0) _exit(worker(h, r, stop));
        printf("worker %d %d\n", r, (int)pid);
    }
    printf("ready\n");
    while (access(stop, F_OK) != 0) {
        if (rotate_requested) {
            rotate_requested = 0;
            flat_rotate();
            printf("rotated\n");
        }
        usleep(200);
    }
    int failed = 0, status;
    for (int r = 1; r <= workers; r++) {
        wait(&status);
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    flat_db_close(h);
    return failed;
}
