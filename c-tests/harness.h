/* A tiny test harness: CHECK counts, the program ends with "N passed, N failed". */
#ifndef FLATSTORE_HARNESS_H
#define FLATSTORE_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

static int harness_passed, harness_failed;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) {                                                                   \
            harness_passed++;                                                         \
        } else {                                                                      \
            harness_failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

/* Run one test, first naming it on standard output ("-- test_x(args)", flushed before any
 * fork): a program stopped by the runner's time limit is reported with the last test it
 * started. */
#define RUN(call)                                                                     \
    do {                                                                              \
        printf("-- %s\n", #call);                                                     \
        fflush(stdout);                                                               \
        call;                                                                         \
    } while (0)

/* Print the closing line; the exit status is 0 only when nothing failed. */
static int harness_done(void) {
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    fflush(stdout);
    return harness_failed == 0 ? 0 : 1;
}

/* harness_done, after removing the test's scratch directory when everything passed (it is
 * kept, and named, for inspection when something failed). */
static inline int harness_done_removing(const char *scratch) {
    if (harness_failed == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
    } else {
        fprintf(stderr, "files kept in %s\n", scratch);
    }
    return harness_done();
}

#endif
