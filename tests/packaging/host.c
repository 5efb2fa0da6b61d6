/*
 * The smallest host of the installed library, built with nothing but
 * `cc host.c $(pkg-config --cflags --libs flatstore)`: prints flat_version(), then writes one
 * record as worker rank 1 (file acc_5.log) into the directory of URL.
 *
 *   host URL
 */
#include <stdio.h>
#include <flatstore.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    printf("%s\n", flat_version());
    flat_child_init(1);
    db_con_t *h = flat_db_init(argv[1]);
    db_val_t v[3] = {{.type = DB_STR, .val.str_val = {"INVITE", 6}},
                     {.type = DB_INT, .val.int_val = 200},
                     {.type = DB_STR, .val.str_val = {"a|b", 3}}};
    if (h == NULL || flat_use_table(h, "acc") != 0 || flat_db_insert(h, NULL, v, 3) != 0) {
        fprintf(stderr, "flatstore: %s\n", flat_last_error());
        return 1;
    }
    flat_db_close(h);
    return 0;
}
