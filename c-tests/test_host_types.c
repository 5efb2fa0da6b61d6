/*
 * A host that declares the OpenSER 1.x types itself, as OpenSER's own db/ headers do, and does
 * not include flatstore.h: the layouts must agree with the library's byte for byte.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct _str { char *s; int len; };
typedef struct _str str;
typedef const char *db_key_t;
typedef enum { DB_INT, DB_DOUBLE, DB_STRING, DB_STR, DB_DATETIME, DB_BLOB, DB_BITMAP } db_type_t;
typedef struct {
    db_type_t type;
    int nul;
    union {
        int int_val;
        double double_val;
        time_t time_val;
        const char *string_val;
        str str_val;
        str blob_val;
        unsigned int bitmap_val;
    } val;
} db_val_t;
typedef struct { const char *table; unsigned long tail; } db_con_t;

_Static_assert(sizeof(db_type_t) == sizeof(int), "enum is int-sized");
_Static_assert(sizeof(db_val_t) == 24 && offsetof(db_val_t, val) == 8, "db_val_t");
_Static_assert(sizeof(db_con_t) == 16, "db_con_t");

db_con_t *flat_db_init(const char *url);
int flat_use_table(db_con_t *h, const char *t);
int flat_db_insert(db_con_t *h, db_key_t *k, db_val_t *v, int n);
void flat_db_close(db_con_t *h);
int flat_child_init(int rank);

int main(void) {
    char dir[] = "/tmp/flatstore-hosttypes-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    char url[128];
    snprintf(url, sizeof url, "flatstore:%s", dir);
    flat_child_init(3); /* N = 7 */
    db_con_t *h = flat_db_init(url);
    CHECK(h != NULL, "init");
    if (!h) return harness_done();
    CHECK(flat_use_table(h, "acc") == 0, "use_table");
    CHECK(h->table && strcmp(h->table, "acc") == 0, "table visible to the host");

    db_key_t keys[7] = {"method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time"};
    db_val_t vals[7];
    memset(vals, 0, sizeof vals);
    vals[0].type = DB_STR; vals[0].val.str_val.s = "INVITExyz"; vals[0].val.str_val.len = 6;
    vals[1].type = DB_STRING; vals[1].val.string_val = "ft|1";
    vals[2].type = DB_STRING; vals[2].nul = 1;
    vals[3].type = DB_STR; vals[3].val.str_val.s = "c-1@h"; vals[3].val.str_val.len = 5;
    vals[4].type = DB_INT; vals[4].val.int_val = 200;
    vals[5].type = DB_BLOB; vals[5].val.blob_val.s = "O\nK"; vals[5].val.blob_val.len = 3;
    vals[6].type = DB_DATETIME; vals[6].val.time_val = 1700000000;
    CHECK(flat_db_insert(h, keys, vals, 7) == 0, "insert");
    flat_db_close(h);

    char path[128], line[256] = {0};
    snprintf(path, sizeof path, "%s/acc_7.log", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "file %s", path);
    if (f) {
        size_t got = fread(line, 1, sizeof line - 1, f);
        line[got] = 0;
        fclose(f);
    }
    CHECK(strcmp(line, "INVITE|ft%7C1||c-1@h|200|O\\x0AK|1700000000\n") == 0, "line '%s'", line);
    unlink(path);
    rmdir(dir);
    return harness_done();
}
