/*
 * test_oom.c - the out-of-memory policy of dc.h on the answers built as
 * json-c trees: the tools (the list, the catalog results, the local
 * report), /health, /ready, /metrics, the connection list and object,
 * the refused rows and conversation memory.
 *
 * Each case runs once to learn its answer, then again with its 1st, 2nd,
 * ... allocation failing, until a run meets no failure; a second pass
 * fails every allocation from the Nth on (memory that stays short).
 * Every run must give the same answer or a clean out-of-memory (500
 * {"detail": "out of memory"} for a route, NULL for a builder), reply
 * exactly once, and leave nothing behind: the live allocation count is
 * checked here, and the sanitizer build adds ASan's checks.
 *
 * The failures come from this file's malloc, calloc, realloc, strdup and
 * strndup, which the dynamic linker binds for json-c, libevent and libdc
 * alike; the real ones are found with dlsym(RTLD_NEXT) (ASan's, in the
 * sanitizer build).  The routes reply through the dc_reply_* wrappers
 * below (linked with --wrap), which record the answer with injection
 * paused.  tools.c is included for its static result builders.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../../src/api/tools.c"

#include "config.h"
#include "convo.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "shreg.h"
#include "t.h"

/* --- allocations that fail on demand --- */

/*
 * The loader and ASan's start-up call these before ASan's shadow memory
 * exists: they must not be instrumented.
 */
#define RAW	__attribute__((no_sanitize("address", "undefined")))

static void	*(*real_malloc)(size_t);
static void	*(*real_calloc)(size_t, size_t);
static void	*(*real_realloc)(void *, size_t);
static void	 (*real_free)(void *);

/* dlsym may allocate before the real functions are known */
static _Alignas(16) char boot[8192];
static size_t boot_used;

static long	 fail_at;	/* 0: none; else the fail_at'th from arming */
static int	 fail_rest;	/* and every one after it */
static int	 armed;
static long	 nallocs;	/* since arming */
static int	 injected;	/* a failure was injected this run */
static long	 live;		/* allocations not freed */
static const char *cur_name = "", *trace_case;
static long	 trace_at;

RAW static void
resolve(void)
{
	if (real_malloc != NULL)
		return;
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
}

RAW static int
in_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + sizeof(boot);
}

/* Whether this allocation fails. */
RAW static int
inject(void)
{
	if (!armed || fail_at == 0)
		return 0;
	nallocs++;
	if (nallocs == fail_at || (fail_rest && nallocs > fail_at)) {
		injected = 1;
		if (trace_at == fail_at && trace_case != NULL &&
		    strcmp(trace_case, cur_name) == 0) {
			/* OOM_CASE=name OOM_TRACE=n: where the nth one is */
			void *bt[32];

			backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
		}
		return 1;
	}
	return 0;
}

RAW void *
malloc(size_t n)
{
	void *p;

	resolve();
	if (inject())
		return NULL;
	if ((p = real_malloc(n)) != NULL)
		live++;
	return p;
}

RAW void *
calloc(size_t n, size_t sz)
{
	void *p;

	if (real_calloc == NULL) {
		/* inside dlsym: a zeroed static arena, never freed */
		size_t want = (n * sz + 15) & ~(size_t)15;

		if (boot_used + want > sizeof(boot))
			return NULL;
		p = boot + boot_used;
		boot_used += want;
		return p;
	}
	if (inject())
		return NULL;
	if ((p = real_calloc(n, sz)) != NULL)
		live++;
	return p;
}

RAW void *
realloc(void *p, size_t n)
{
	void *q;

	resolve();
	if (p != NULL && in_boot(p))
		abort();	/* dlsym's memory is never resized */
	if (inject())
		return NULL;
	q = real_realloc(p, n);
	if (p == NULL && q != NULL)
		live++;
	else if (p != NULL && n == 0 && q == NULL)
		live--;
	return q;
}

RAW void
free(void *p)
{
	if (p == NULL || in_boot(p))
		return;
	resolve();
	live--;
	real_free(p);
}

RAW char *
strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

RAW char *
strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = malloc(len + 1);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/* LeakSanitizer reads this: json-c's own leak, see cases[] */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:json_object_object_add_ex\n";
}

/* --- the replies, recorded --- */

#define OOM	"{\"detail\":\"out of memory\"}"

static int	 nreplies;
static int	 reply_status;
static char	 reply_body[1 << 16];

static void
record(int status, const char *body, size_t len)
{
	nreplies++;
	reply_status = status;
	if (len >= sizeof(reply_body))
		len = sizeof(reply_body) - 1;
	memcpy(reply_body, body, len);
	reply_body[len] = '\0';
}

/*
 * The text of o, its clock readings left out (they move between runs);
 * o is put.  Injection is paused: this is the checker, not the code
 * checked.
 */
static void
record_json(int status, struct json_object *o)
{
	const char *s;
	size_t len;
	int was = armed;

	armed = 0;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_del(o, "timestamp");
		json_object_object_del(o, "at");
		json_object_object_del(o, "updated_at");
	}
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	record(status, s, len);
	json_object_put(o);
	armed = was;
}

void __wrap_dc_reply_json(struct dc_req *r, int status,
    struct json_object *obj);
void __wrap_dc_reply_error(struct dc_req *r, int status, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
void __wrap_dc_reply_text(struct dc_req *r, int status, const char *ctype,
    const char *body, size_t len);

void
__wrap_dc_reply_json(struct dc_req *r, int status, struct json_object *obj)
{
	(void)r;
	if (obj == NULL)
		record(500, OOM, strlen(OOM));	/* what dc_reply_json does */
	else
		record_json(status, obj);
}

void
__wrap_dc_reply_error(struct dc_req *r, int status, const char *fmt, ...)
{
	char msg[1024], body[1100];
	va_list ap;

	(void)r;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(body, sizeof(body), "{\"detail\":\"%s\"}", msg);
	record(status, body, strlen(body));
}

void
__wrap_dc_reply_text(struct dc_req *r, int status, const char *ctype,
    const char *body, size_t len)
{
	(void)r;
	(void)ctype;
	record(status, body, len);
}

/* --- the cases --- */

static struct dc_worker w;
static struct dc_req req;
static struct dc_schema schema;
static struct dc_entry entry;
static struct toolrun *run;

/*
 * A case builds one answer: a route replies (and returns NULL), a
 * builder returns its object (NULL: out of memory).
 */
struct tcase {
	const char	*name;
	struct json_object *(*fn)(void);
	int		 route;		/* replies, once */
	int		 cached;	/* keeps its answer while it succeeds */
	int		 leak_ok;	/* a json-c leak, see cases[] */
};

static struct json_object *
c_list_tools(void)
{
	list_tools(&req);
	return NULL;
}

static struct json_object *
c_tables(void)
{
	run->tool = &tools[2];
	reply_tool(run, tables_result(&schema));
	return NULL;
}

static struct json_object *
c_columns(void)
{
	run->tool = &tools[3];
	reply_tool(run, columns_result(&schema.tables[0]));
	return NULL;
}

static struct json_object *
c_context(void)
{
	run->tool = &tools[0];
	reply_tool(run, context_result(&schema));
	return NULL;
}

static struct json_object *
c_quality(void)
{
	run->tool = &tools[6];
	tool_local(run, NULL);
	return NULL;
}

static void
route(const struct dc_route *table, const char *pattern)
{
	const struct dc_route *rt;

	for (rt = table; rt->pattern != NULL; rt++)
		if (strcmp(rt->pattern, pattern) == 0 &&
		    strcmp(rt->method, "GET") == 0) {
			rt->fn(&req);
			return;
		}
	abort();
}

static struct json_object *
c_health(void)
{
	route(dc_routes_ops, "/api/v1/health");
	return NULL;
}

static struct json_object *
c_ready(void)
{
	dc_shreg_beat(w.reg, dc_now_ms());
	route(dc_routes_ops, "/api/v1/ready");
	return NULL;
}

static struct json_object *
c_metrics(void)
{
	route(dc_routes_ops, "/metrics");
	return NULL;
}

static struct json_object *
c_databases(void)
{
	/* a new generation: the list is rendered, not served from cache */
	dc_shreg_commit(w.reg);
	route(dc_routes_databases, "/api/v1/databases");
	return NULL;
}

static struct json_object *
c_entry(void)
{
	return dc_entry_to_json(&entry);
}

static struct json_object *
c_refused(void)
{
	return dc_refused_rows_json(w.reg);
}

static const char *const turn_cols[] = { "region", "revenue" };

static const struct dc_convo_turn turn = {
	.question = "and by region?",
	.resolved = "revenue in 2025, and by region?",
	.target = "5d1f2c1e-8f0a-4b8e-9b53-2c7d4f0e6a11",
	.dbtype = "postgresql",
	.sql = "SELECT r.name, sum(o.total) FROM orders o JOIN regions r "
	    "ON r.id = o.region_id GROUP BY 1",
	.answer = "North leads with 1.2M.",
	.source = "sql",
	.columns = turn_cols,
	.ncolumns = 2,
	.rows = 4,
};

static struct json_object *
c_turn(void)
{
	return dc_convo_turn_json(&turn);
}

static struct json_object *history, *state;

static struct json_object *
c_from_client(void)
{
	return dc_convo_from_client(history, state);
}

static struct json_object *
c_next_state(void)
{
	return dc_convo_next_state(state, &turn, 3);
}

static struct dc_rows *rows;

static struct json_object *
c_rows(void)
{
	return dc_result_rows(rows, 2);
}

static struct json_object *
c_columnar(void)
{
	return dc_result_columnar(rows, 2, DC_ENC_PYDANTIC);
}

static struct json_object *
c_columns_list(void)
{
	return dc_result_columns(rows);
}

static struct json_object *
c_table_json(void)
{
	return dc_schema_table_json(&schema.tables[0]);
}

static const struct tcase cases[] = {
	{ "GET /tools", c_list_tools, 1, 0, 0 },
	{ "list_tables", c_tables, 1, 0, 0 },
	{ "list_columns", c_columns, 1, 0, 0 },
	{ "context_answer", c_context, 1, 0, 0 },
	{ "datapoint_quality_report", c_quality, 1, 0, 0 },
	{ "GET /health", c_health, 1, 0, 0 },
	{ "GET /ready", c_ready, 1, 0, 0 },
	{ "GET /metrics", c_metrics, 1, 0, 0 },
	{ "GET /databases", c_databases, 1, 1, 0 },
	{ "dc_entry_to_json", c_entry, 0, 0, 0 },
	{ "dc_refused_rows_json", c_refused, 0, 0, 0 },
	{ "dc_convo_turn_json", c_turn, 0, 0, 0 },
	{ "dc_convo_from_client", c_from_client, 0, 0, 0 },
	{ "dc_result_rows", c_rows, 0, 0, 0 },
	{ "dc_result_columnar", c_columnar, 0, 0, 0 },
	{ "dc_result_columns", c_columns_list, 0, 0, 0 },
	{ "dc_schema_table_json", c_table_json, 0, 0, 0 },
	/*
	 * More than 11 keys: json-c 0.16 grows the object's table on the
	 * 12th, and when that fails json_object_object_add() returns -1
	 * having leaked its copy of the key (json_object.c).  Not ours to
	 * fix; the leak check allows that one allocation, and LeakSanitizer
	 * is told (__lsan_default_suppressions).
	 */
	{ "dc_convo_next_state", c_next_state, 0, 0, 1 },
};

/*
 * One run: the answer's text (malloc'ed), its status in reply_status;
 * *count allocations were made, *leaked outlived the run, *once says
 * whether it answered exactly once.
 */
static char *
run_case(const struct tcase *c, long at, int rest, long *count,
    long *leaked, int *once)
{
	struct json_object *o;
	long before = live;
	char *out = NULL;

	nreplies = 0;
	cur_name = c->name;
	reply_body[0] = '\0';
	fail_at = at;
	fail_rest = rest;
	nallocs = 0;
	injected = 0;
	armed = 1;
	o = c->fn();
	armed = 0;
	*count = nallocs;
	*once = c->route ? nreplies == 1 && o == NULL : nreplies == 0;
	if (!c->route && o != NULL)
		record_json(200, o);
	else if (!c->route)
		record(500, OOM, strlen(OOM));	/* a builder's NULL */
	out = strdup(reply_body);
	/*
	 * out is this run's only allocation still live, unless the case
	 * keeps a cache (ASan's leak check covers those)
	 */
	*leaked = c->cached ? 0 : live - before - 1;
	return out;
}

static void
check_case(const struct tcase *c)
{
	char *want, *got;
	long n, count, leaked, runs = 0;
	int rest, bad = 0, want_status, once;

	/* once to warm up: lazy initialisations (the time zone) stay */
	free(run_case(c, 0, 0, &count, &leaked, &once));
	want = run_case(c, 0, 0, &count, &leaked, &once);
	want_status = reply_status;
	CHECK(once);
	CHECK(strcmp(want, OOM) != 0);
	CHECK(leaked == 0);
	for (rest = 0; rest <= 1; rest++)
		for (n = 1;; n++) {
			got = run_case(c, n, rest, &count, &leaked, &once);
			runs++;
			if (!injected) {
				/* past the last allocation: the full answer */
				CHECK(reply_status == want_status);
				CHECK_STR(got, want);
				free(got);
				break;
			}
			if (!((reply_status == want_status &&
			    strcmp(got, want) == 0) ||
			    (reply_status == 500 && strcmp(got, OOM) == 0)) ||
			    !once || (leaked != 0 && !(c->leak_ok &&
			    leaked == 1))) {
				if (bad++ < 3)
					fprintf(stderr, "%s: allocation %ld%s "
					    "failing: %d %s (%ld leaked)\n",
					    c->name, n, rest ? " on" : "",
					    reply_status, got, leaked);
			}
			free(got);
			if (n > 100000) {
				bad++;
				break;
			}
		}
	CHECK(bad == 0);
	printf("%-28s %4ld allocations, %5ld runs%s\n", c->name, count, runs,
	    bad ? ": FAILED" : "");
	free(want);
}

static void
setup(void)
{
	static struct dc_config cfg;
	static struct dc_schema_column cols[2];
	static struct dc_schema_table tables[2];
	struct dc_entry e;
	uint8_t id[16];
	int i;

	if (dc_config_defaults(&cfg) != DC_OK ||
	    dc_shreg_create(&w.reg, 8) != DC_OK)
		abort();
	free(cfg.system_database_url);
	cfg.system_database_url = strdup("postgresql://sys@127.0.0.1/dc");
	free(cfg.database_url);
	cfg.database_url = strdup("postgresql://env@127.0.0.1/envdb");
	w.cfg = &cfg;
	w.index = 1;
	w.stats = dc_shreg_stats(w.reg, 0);
	w.stats->pid = 4242;
	w.stats->queries_ok = 17;
	w.stats->route_status[1][1] = 5;

	/* two connections, one refused row, a state with something to say */
	for (i = 0; i < 2; i++) {
		memset(&e, 0, sizeof(e));
		e.id[0] = 0xd0;
		e.id[15] = (uint8_t)(i + 1);
		e.created_at = 1700000000000000LL + i;
		e.is_active = 1;
		e.is_default = i == 0;
		e.has_description = i == 1;
		dc_strlcpy(e.type, "postgresql", sizeof(e.type));
		snprintf(e.name, sizeof(e.name), "sales-%d", i);
		dc_strlcpy(e.url, "postgresql://u:p@h/db", sizeof(e.url));
		dc_strlcpy(e.tags, "[\"prod\",\"eu\"]", sizeof(e.tags));
		dc_strlcpy(e.description, "the sales warehouse",
		    sizeof(e.description));
		if (dc_shreg_put(w.reg, &e) != DC_OK)
			abort();
	}
	entry = e;
	entry.last_profiled = 1700000100000000LL;
	memset(id, 0xee, sizeof(id));
	dc_shreg_refuse(w.reg, id, "legacy", "its stored URL does not "
	    "decrypt with any configured credentials key");
	dc_shreg_set_bad_rows(w.reg, 1);
	dc_shreg_set_state(w.reg, DC_REG_FRESH);
	dc_shreg_set_last_resync(w.reg, 1700000000000);
	dc_shreg_commit(w.reg);
	req.w = &w;

	cols[0] = (struct dc_schema_column){ .name = "id",
	    .data_type = "integer" };
	cols[1] = (struct dc_schema_column){ .name = "name",
	    .data_type = "character varying(80)", .nullable = 1 };
	tables[0] = (struct dc_schema_table){ .schema = "public",
	    .name = "customers", .table_type = "BASE TABLE", .row_count = 120,
	    .ncols = 2, .cols = cols };
	tables[1] = (struct dc_schema_table){ .schema = "public",
	    .name = "orders", .table_type = "BASE TABLE", .row_count = -1 };
	schema.ntables = 2;
	schema.tables = tables;
	if ((run = calloc(1, sizeof(*run))) == NULL)
		abort();
	run->r = &req;

	/* rows of each kind of value: numbers, text, NULL, an array */
	static const struct dc_cell cells[2][4] = {
		{ { "7", 1 }, { "450.00", 6 }, { "ann", 3 },
		  { "{1,NULL,3}", 10 } },
		{ { "8", 1 }, { NULL, 0 }, { "bob", 3 }, { "{}", 2 } },
	};
	if ((rows = dc_rows_new(4)) == NULL ||
	    dc_rows_set_col(rows, 0, "id", DC_VT_INT) != DC_OK ||
	    dc_rows_set_col(rows, 1, "total", DC_VT_DECIMAL) != DC_OK ||
	    dc_rows_set_col(rows, 2, "name", DC_VT_TEXT) != DC_OK ||
	    dc_rows_set_col(rows, 3, "ids", DC_VT_INT) != DC_OK)
		abort();
	dc_rows_set_flags(rows, 3, DC_COL_ARRAY);
	for (i = 0; i < 2; i++)
		if (dc_rows_add(rows, cells[i]) != DC_OK)
			abort();

	history = json_tokener_parse("[{\"role\":\"user\",\"content\":"
	    "\"revenue in 2025\"},{\"role\":\"assistant\",\"content\":"
	    "\"4.1M\"},{\"role\":\"user\",\"content\":\"by month\"}]");
	state = json_tokener_parse("{\"last_goal\":\"by month\",\"last_sql\":"
	    "\"SELECT 1\",\"table_hints\":[\"orders\",\"customers\"],"
	    "\"last_columns\":[\"month\"],\"last_row_count\":12,"
	    "\"slots\":{\"table\":\"orders\"},\"clarification_count\":1}");
	if (history == NULL || state == NULL)
		abort();
}

int
main(void)
{
	size_t i;

	trace_case = getenv("OOM_CASE");
	trace_at = getenv("OOM_TRACE") != NULL ? atol(getenv("OOM_TRACE")) : 0;
	setup();
	for (i = 0; i < DC_ARRAY_SIZE(cases); i++)
		check_case(&cases[i]);
	json_object_put(history);
	json_object_put(state);
	dc_rows_free(rows);
	free(run);
	dc_shreg_destroy(w.reg);
	dc_config_free(w.cfg);
	T_DONE();
}
