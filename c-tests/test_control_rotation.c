/*
 * The rotation gap of the C API (issue 21): a forked host whose control process (OpenSER's MI
 * process, say) never calls flat_db_init, and asks for the rotation.
 *  - Without flat_share_with_children() before the host forks, that process reaches no
 *    directory: flat_rotate() fails with FLATSTORE_E_NOTHING_TO_ROTATE, never 0, and
 *    flat_last_error() says what to do.
 *  - With it, the control process's flat_rotate() reaches the directory the workers opened
 *    after the fork: after the operator's rename and that call, every worker's next record
 *    lands in a new file, and the renamed files receive nothing more.
 * The whole program stops itself (SIGALRM) after 60 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flatstore.h"
#include "harness.h"

#define WORKERS 3

/* One record: the worker's rank and the phase ("before" or "after" the rotation). */
static int insert_phase(db_con_t *h, int rank, const char *phase) {
    db_val_t v[2];
    memset(v, 0, sizeof v);
    v[0].type = DB_INT;
    v[0].val.int_val = rank;
    v[1].type = DB_STRING;
    v[1].val.string_val = phase;
    return flat_db_insert(h, NULL, v, 2);
}

/* Read exactly one byte from fd (0 on success). */
static int read_byte(int fd) {
    char c;
    ssize_t n;
    do n = read(fd, &c, 1); while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

static int write_byte(int fd, char c) {
    ssize_t n;
    do n = write(fd, &c, 1); while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

/* A SIP worker: open, write one record, say so, wait for the go, write another, close. */
static void worker(const char *url, int rank, int ready_fd, int go_fd) {
    flat_child_init(rank);
    db_con_t *h = flat_db_init(url);
    if (!h || flat_use_table(h, "acc") != 0) _exit(10);
    if (insert_phase(h, rank, "before") != 0) _exit(11);
    if (write_byte(ready_fd, 'r') != 0 || read_byte(go_fd) != 0) _exit(12);
    if (insert_phase(h, rank, "after") != 0) _exit(13);
    flat_db_close(h);
    _exit(0);
}

/* The control process: never opens anything; rotates when told, sends the result back. */
static void control(int ask_fd, int answer_fd) {
    if (read_byte(ask_fd) != 0) _exit(20);
    int rc = flat_rotate();
    if (rc != 0) fprintf(stderr, "control: flat_rotate: %d %s\n", rc, flat_last_error());
    _exit(write_byte(answer_fd, rc == 0 ? 'y' : 'n') == 0 ? 0 : 21);
}

/* How many lines of `path` contain `needle`; -1 when the file cannot be read. */
static int lines_with(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

static int exited_zero(pid_t pid) {
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void) {
    alarm(60);
    char dir[] = "/tmp/flatstore-ctl-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    char url[128];
    snprintf(url, sizeof url, "flatstore:%s", dir);

    /* Without the shared list, a process that opened nothing rotates nothing, and says so. */
    int rc = flat_rotate();
    CHECK(rc == FLATSTORE_E_NOTHING_TO_ROTATE, "flat_rotate with nothing open: %d", rc);
    CHECK(strstr(flat_last_error(), "flat_share_with_children") != NULL, "the message says the fix: %s",
          flat_last_error());
    pid_t lone = fork();
    if (lone == 0) _exit(flat_rotate() == FLATSTORE_E_NOTHING_TO_ROTATE ? 0 : 1);
    CHECK(exited_zero(lone), "a forked control process without the list fails too");

    /* The pre-fork step, then the host's processes: the control process first (it cannot
     * have inherited anything), then the workers. */
    CHECK(flat_share_with_children() == 0, "share: %s", flat_last_error());
    CHECK(flat_share_with_children() == 0, "share again is harmless");
    int ask[2], answer[2], ready[2], go[2];
    if (pipe(ask) || pipe(answer) || pipe(ready) || pipe(go)) { perror("pipe"); return 2; }
    pid_t ctl = fork();
    if (ctl == 0) control(ask[0], answer[1]);
    pid_t workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = fork();
        if (workers[i] == 0) worker(url, i + 1, ready[1], go[0]);
    }
    for (int i = 0; i < WORKERS; i++) CHECK(read_byte(ready[0]) == 0, "worker %d ready", i);

    /* The operator's recipe: rename every file away, then rotate from the control process. */
    char live[WORKERS][128], renamed[WORKERS][160];
    for (int i = 0; i < WORKERS; i++) {
        snprintf(live[i], sizeof live[i], "%s/acc_%d.log", dir, i + 1 + 4);
        snprintf(renamed[i], sizeof renamed[i], "%s.1", live[i]);
        CHECK(rename(live[i], renamed[i]) == 0, "rename %s: %s", live[i], strerror(errno));
    }
    CHECK(write_byte(ask[1], 'r') == 0, "ask the control process");
    char verdict = 0;
    CHECK(read(answer[0], &verdict, 1) == 1 && verdict == 'y',
          "flat_rotate in the control process reached the workers' directory");
    for (int i = 0; i < WORKERS; i++) CHECK(write_byte(go[1], 'g') == 0, "go");
    CHECK(exited_zero(ctl), "control process");
    for (int i = 0; i < WORKERS; i++) CHECK(exited_zero(workers[i]), "worker %d", i + 1);

    for (int i = 0; i < WORKERS; i++) {
        CHECK(lines_with(renamed[i], "before") == 1, "%s holds the record before", renamed[i]);
        CHECK(lines_with(renamed[i], "after") == 0, "%s received nothing after", renamed[i]);
        CHECK(lines_with(live[i], "after") == 1, "%s holds the record after", live[i]);
        CHECK(lines_with(live[i], "before") == 0, "%s holds only the new record", live[i]);
    }
    return harness_done_removing(dir);
}
