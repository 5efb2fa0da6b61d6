/* A stand-in OpenSIPS 3.6 for tests/opensips.rs: loads the module given as argv[1] the way
 * OpenSIPS does (dlopen, the one symbol `exports`, db_bind_api(url, dbf)) and drives it as
 * OpenSIPS and acc do, without OpenSIPS's sources: the offsets below are the measured ones of
 * shared/hosts/README.md. It provides the core functions the module looks up at run time
 * (dprint and its globals, the MI reply constructors), linked with -rdynamic.
 *
 *   module_processes MODULE DIR RECORDS
 *
 * 1. The main process: load_f, mod_init, then acc's mod_init: db_bind_api, init, close. Opens
 *    no log file.
 * 2. MI flat_rotate between mod_init and acc's mod_init (no URL seen yet): must be an error,
 *    no directory reached; after it, OK (acc's check put the directory in the shared list).
 * 3. Fork: two module processes (rank PROC_MODULE, -2) and one SIP worker (rank 1), each:
 *    child_init(rank), init, use_table("acc"), RECORDS inserts of "<pid>|<i>", close; the
 *    module processes first wait until both are up, so that both write at once.
 * 4. MI flat_rotate from another PROC_MODULE process that never opened anything: must be OK.
 *
 * Prints one line per writer, "writer <rank> <pid>", and the replies "mi-before <reply>",
 * "mi-checked <reply>" (after acc's check), "mi-after <reply>"; exits non-zero on any failure.
 * The test checks the files.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { char *s; int len; } str;

typedef struct {
	int type, nul, free;
	union { int int_val; long long bigint_val; double double_val; const char *string_val;
		str str_val; } val;
} db_val_t;

typedef int (*void_f)(void);
typedef int (*child_init_f)(int);
typedef int (*bind_f)(const str *, void *);
typedef void *(*init_f)(const str *);
typedef int (*use_table_f)(void *, const str *);
typedef void (*close_f)(void *);
typedef int (*insert_f)(const void *, const str **, const db_val_t *, int);
typedef void *(*mi_cmd_f)(const void *, void *);

/* --- what the module finds in the core --- */
static int level = 3;
int *log_level = &level;
int log_facility = 0;
char *log_prefix = "";
int dp_my_pid(void) { return getpid(); }
void dprint(int lvl, int facility, const char *module, const char *func, char *stderr_fmt,
	char *syslog_fmt, char *format, ...)
{
	va_list ap;
	(void)lvl; (void)facility; (void)module; (void)func; (void)syslog_fmt; (void)format;
	va_start(ap, format);
	vfprintf(stderr, stderr_fmt, ap);
	va_end(ap);
}
static char reply[512];
void *init_mi_result_string(const char *value, int len)
{
	snprintf(reply, sizeof reply, "result %.*s", len, value);
	return reply;
}
void *init_mi_error_extra(int code, const char *msg, int len, const char *d, int dlen)
{
	(void)d; (void)dlen;
	snprintf(reply, sizeof reply, "error %d %.*s", code, len, msg);
	return reply;
}

#define AT(base, off, type) (*(type *)((char *)(base) + (off)))

static void *exports;
static char dbf[144];
static str url;

static int writer(int rank, int records, volatile int *ready)
{
	static str table = { "acc", 3 };
	char text[64];
	db_val_t v[2];
	const str *keys[2] = { 0, 0 };
	void *h;
	int i;

	if (AT(exports, 168, child_init_f)(rank) < 0)
		return 1;
	h = AT(dbf, 16, init_f)(&url);
	if (!h || AT(dbf, 8, use_table_f)(h, &table) < 0)
		return 2;
	/* acc writes curr_ps (offset 8) before every insert: the handle must be the full struct */
	AT(h, 8, void *) = NULL;
	if (ready) {
		__sync_fetch_and_add(ready, 1);
		for (i = 0; i < 5000 && *ready < 2; i++)
			usleep(1000);
	}
	for (i = 0; i < records; i++) {
		snprintf(text, sizeof text, "%d", (int)getpid());
		memset(v, 0, sizeof v);
		v[0].type = 3; /* DB_STRING */
		v[0].val.string_val = text;
		v[1].type = 0; /* DB_INT */
		v[1].val.int_val = i;
		AT(h, 8, void *) = (void *)0x1; /* as acc: a prepared-statement pointer */
		if (AT(dbf, 64, insert_f)(h, keys, v, 2) < 0)
			return 3;
	}
	AT(dbf, 24, close_f)(h);
	return 0;
}

static void *mi_rotate(void)
{
	void *mi = AT(exports, 104, void *);
	/* mi_export_t: name 0, help 8, flags 16, init_f 24, recipes 32: {cmd, params[10]} */
	if (strcmp(AT(mi, 0, const char *), "flat_rotate") != 0)
		return NULL;
	return AT(mi, 32, mi_cmd_f)(NULL, NULL);
}

int main(int argc, char **argv)
{
	void *module;
	void *h;
	volatile int *ready;
	int records, status, failed = 0, i;
	pid_t pids[3];
	int ranks[3] = { -2, -2, 1 };
	static char url_text[4096];
	void *cmds;

	if (argc != 4)
		return 64;
	records = atoi(argv[3]);
	snprintf(url_text, sizeof url_text, "flatstore:%s", argv[2]);
	url.s = url_text;
	url.len = strlen(url_text);

	module = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!module) { fprintf(stderr, "%s\n", dlerror()); return 65; }
	exports = dlsym(module, "exports");
	if (!exports) return 66;
	if (strcmp(AT(exports, 0, const char *), "db_flatstore") != 0 || AT(exports, 8, int) != 2)
		return 67;
	if (AT(exports, 56, void_f)() < 0 || AT(exports, 144, void_f)() < 0)
		return 68;
	printf("mi-before %s\n", (char *)(mi_rotate() ? reply : "NULL"));
	fflush(stdout);
	/* acc's mod_init: bind, check the URL, close */
	cmds = AT(exports, 72, void *);
	if (strcmp(AT(cmds, 0, const char *), "db_bind_api") != 0)
		return 69;
	if (AT(cmds, 8, bind_f)(&url, dbf) < 0)
		return 70;
	h = AT(dbf, 16, init_f)(&url);
	if (!h) return 71;
	AT(dbf, 24, close_f)(h);

	printf("mi-checked %s\n", (char *)(mi_rotate() ? reply : "NULL"));
	fflush(stdout);

	ready = mmap(NULL, sizeof *ready, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*ready = 0;
	for (i = 0; i < 3; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(writer(ranks[i], records, ranks[i] == -2 ? ready : NULL));
		printf("writer %d %d\n", ranks[i], (int)pids[i]);
	}
	for (i = 0; i < 3; i++) {
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "writer %d: status %d\n", (int)pids[i], status);
			failed = 1;
		}
	}
	fflush(stdout);
	/* an MI process that never opened a directory: reaches the workers' one */
	pids[0] = fork();
	if (pids[0] == 0) {
		AT(exports, 168, child_init_f)(-2);
		printf("mi-after %s\n", (char *)(mi_rotate() ? reply : "NULL"));
		fflush(stdout);
		_exit(0);
	}
	waitpid(pids[0], &status, 0);
	return failed;
}
