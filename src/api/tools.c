/*
 * tools.c - DataChat's tool API and the schema route:
 *
 *   GET  /api/v1/tools                  DataChat's seven tools, with the
 *                                       JSON Schema of their parameters
 *   POST /api/v1/tools/execute          run one, as DataChat's executor
 *   GET  /api/v1/databases/{id}/schema  the target's schema snapshot
 *
 * list_tables and list_columns run the catalog query of schema.h for one
 * schema (public unless named), get_table_sample and run_sql run a
 * statement read-only with the statement timeout and row cap; names are
 * checked by DataChat's rule ([A-Za-z_][A-Za-z0-9_]*) before they are
 * put in a statement, and both statements go through the SQL check
 * (sqlcheck.h: a sampled table may be a view that calls anything).
 * context_answer answers from the live schema, saying no DataPoints are
 * loaded; datapoint_quality_report reports the nothing there is;
 * profile_and_generate_datapoints needs approval (403) and then is 501.
 * Failures are DataChat's: 500 with the message for an unknown tool, a
 * bad argument, a bad name, a missing table or a database error, 403
 * for a refused policy.  The schema route answers from the per-worker
 * snapshot (catalog.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "dc.h"
#include "driver.h"
#include "http.h"
#include "jsonw.h"
#include "tokens.h"
#include "log.h"
#include "model.h"
#include "pool.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "sqlcheck.h"
#include "target.h"
#include "util.h"
#include "worker.h"

#define SAMPLE_MAX	100

#define LIVE_SCHEMA	"datachatd runs in live schema mode and keeps no " \
	"DataPoints: answers come from the target database's live schema"

enum tool_id { T_CONTEXT_ANSWER = 1, T_RUN_SQL, T_LIST_TABLES,
    T_LIST_COLUMNS, T_TABLE_SAMPLE, T_PROFILE, T_QUALITY };

/*
 * DataChat's seven tools, in its registration order, each with its
 * function's parameters as a field table (model.h): GET /tools publishes
 * their JSON Schema from it, and POST /tools/execute checks arguments
 * against it.
 */
/*
 * DataChat's schemas carry no descriptions; datachatd's say what each
 * argument means on each of its three engines, which DataChat's clients
 * ignore and an LLM planning a tool call can read.
 */
#define D_QUESTION "The user's question, answered from the live schema"
#define D_SQL	"One read-only SELECT in the target's dialect: PostgreSQL, " \
	"MySQL/MariaDB or ClickHouse"
#define D_SCHEMA "Where the table lives: a PostgreSQL schema (default " \
	"public), or a MySQL/MariaDB or ClickHouse database (default: the " \
	"connection's)"
#define D_TABLE	"A table or view name, or schema.table"

static const struct dc_field question_params[] = {
	{ .name = "query", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .desc = D_QUESTION },
	{ .name = NULL }
};
static const struct dc_model question_model = { "context_answer",
    question_params };

static const struct dc_field sql_params[] = {
	{ .name = "query", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .desc = D_SQL },
	{ .name = NULL }
};
static const struct dc_model sql_model = { "run_sql", sql_params };

static const struct dc_field tables_params[] = {
	{ .name = "schema", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .desc = D_SCHEMA },
	{ .name = NULL }
};
static const struct dc_model tables_model = { "list_tables", tables_params };

enum { A_TABLE, A_SCHEMA, A_LIMIT };
static const struct dc_field columns_params[] = {
	{ .name = "table", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .desc = D_TABLE },
	{ .name = "schema", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .desc = D_SCHEMA },
	{ .name = NULL }
};
static const struct dc_model columns_model = { "list_columns",
    columns_params };

static const struct dc_field sample_params[] = {
	{ .name = "table", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .desc = D_TABLE },
	{ .name = "schema", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .desc = D_SCHEMA },
	{ .name = "limit", .type = DC_FT_INT, .dflt = "5" },
	{ .name = NULL }
};
static const struct dc_model sample_model = { "get_table_sample",
    sample_params };

static const struct dc_field profile_params[] = {
	{ .name = "connection_id", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "depth", .type = DC_FT_STR, .dflt = "metrics_basic" },
	{ .name = "batch_size", .type = DC_FT_INT, .dflt = "10" },
	{ .name = "max_tables", .type = DC_FT_INT, .flags = DC_F_NULLABLE },
	{ .name = "sample_size", .type = DC_FT_INT, .dflt = "100" },
	{ .name = "max_columns_per_table", .type = DC_FT_INT, .dflt = "100" },
	{ .name = "query_timeout_seconds", .type = DC_FT_INT, .dflt = "5" },
	{ .name = "per_table_timeout_seconds", .type = DC_FT_INT, .dflt = "20" },
	{ .name = "total_timeout_seconds", .type = DC_FT_INT, .dflt = "180" },
	{ .name = NULL }
};
static const struct dc_model profile_model = {
    "profile_and_generate_datapoints", profile_params };

static const struct dc_field quality_params[] = {
	{ .name = "limit", .type = DC_FT_INT, .dflt = "20" },
	{ .name = NULL }
};
static const struct dc_model quality_model = { "datapoint_quality_report",
    quality_params };

struct tool {
	const char	*name;
	int		 id;
	const char	*category;
	int		 requires_approval;
	int		 needs_target;
	const char	*desc;
	const struct dc_model *params;
};

static const struct tool tools[] = {
	{ "context_answer", T_CONTEXT_ANSWER, "knowledge", 0, 1,
	    "Answer using DataPoints only (no SQL).", &question_model },
	{ "run_sql", T_RUN_SQL, "database", 0, 1,
	    "Generate and execute SQL for the user's query.", &sql_model },
	{ "list_tables", T_LIST_TABLES, "database", 0, 1,
	    "List tables available in the target database.", &tables_model },
	{ "list_columns", T_LIST_COLUMNS, "database", 0, 1,
	    "List columns for a given table.", &columns_model },
	{ "get_table_sample", T_TABLE_SAMPLE, "database", 0, 1,
	    "Fetch a small sample of rows from a table.", &sample_model },
	{ "profile_and_generate_datapoints", T_PROFILE, "profiling", 1, 0,
	    "Profile the database and generate pending DataPoints.",
	    &profile_model },
	{ "datapoint_quality_report", T_QUALITY, "knowledge", 0, 0,
	    "Report weak or duplicate DataPoints in managed storage.",
	    &quality_model },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* DataChat's ToolExecuteRequest. */
enum { X_NAME, X_ARGS, X_TARGET, X_APPROVED, X_USER, X_CORRELATION };
static const struct dc_field execute_fields[] = {
	{ .name = "name", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = "arguments", .type = DC_FT_DICT },
	{ .name = "target_database", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "approved", .type = DC_FT_BOOL, .dflt = "false" },
	{ .name = "user_id", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "correlation_id", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = NULL }
};
static const struct dc_model execute_model = { "ToolExecuteRequest",
    execute_fields };

/* One tool run or schema fetch between the request and the reply. */
struct toolrun {
	struct dc_req	*r;
	const struct tool *tool;
	const struct dc_dialect *dialect;	/* the target's (driver.h) */
	struct dc_job	*job;
	struct dc_catalog_wait *wait;
	struct dc_sqlcheck_wait *check;	/* run_sql's query being judged */
	struct dc_entry	*e;		/* the target, while it is */
	char		 target[DC_UUID_STR_LEN + 1];
	char		 dbtype[DC_TYPE_MAX];
	char		*schema;	/* arguments, checked */
	char		*table;
	char		*sql;		/* run_sql's query */
	int		 limit;
	uint64_t	 start_ms;
};

/*
 * The resolved target e: its id, type and dialect into t.  Returns 1, or
 * 0 after replying (no driver for its type).
 */
static int
toolrun_dialect(struct dc_req *r, struct toolrun *t, const struct dc_entry *e)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	char detail[256];

	if (drv == NULL) {
		dc_reply_error(r, dc_result_submit_failure(DC_EINVAL, detail,
		    sizeof(detail)), "%s", detail);
		return 0;
	}
	t->dialect = drv->dialect;
	dc_uuid_format(e->id, t->target);
	dc_strlcpy(t->dbtype, e->type, sizeof(t->dbtype));
	return 1;
}

static void
toolrun_free(struct toolrun *t)
{
	if (t->e != NULL) {
		dc_explicit_bzero(t->e, sizeof(*t->e));
		free(t->e);
	}
	free(t->schema);
	free(t->table);
	free(t->sql);
	free(t);
}

static void
toolrun_cancel(struct dc_req *r, void *arg)
{
	struct toolrun *t = arg;

	if (t->job != NULL)
		dc_pool_cancel(t->job);
	if (t->wait != NULL)
		dc_catalog_cancel(t->wait);
	if (t->check != NULL)
		dc_sql_check_cancel(t->check);
	toolrun_free(t);
}

/* --- GET /api/v1/tools --- */

static void
list_tools(struct dc_req *r)
{
	struct json_object *arr = json_object_new_array(), *o;
	const struct tool *tl;
	struct dc_jb b = { 0 };

	for (tl = tools; tl->name != NULL && !b.failed; tl++) {
		o = json_object_new_object();
		dc_jb_add(&b, o, "name", json_object_new_string(tl->name));
		dc_jb_add(&b, o, "description",
		    json_object_new_string(tl->desc));
		dc_jb_add(&b, o, "category",
		    json_object_new_string(tl->category));
		dc_jb_add(&b, o, "requires_approval",
		    json_object_new_boolean(tl->requires_approval));
		dc_jb_add(&b, o, "enabled", json_object_new_boolean(1));
		dc_jb_add(&b, o, "parameters_schema",
		    dc_model_schema(tl->params));
		dc_jb_push(&b, arr, o);
	}
	/* NULL (out of memory) is answered 500 by dc_reply_json */
	dc_reply_json(r, 200, dc_jb_done(&b, arr));
}

/* --- POST /api/v1/tools/execute --- */

/* result: the tool's, taken; NULL when building it ran out of memory */
static void
reply_tool(struct toolrun *t, struct json_object *result)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };

	dc_jb_add(&b, o, "tool", json_object_new_string(t->tool->name));
	dc_jb_add(&b, o, "success", json_object_new_boolean(1));
	dc_jb_add(&b, o, "result", result);
	dc_jb_null(&b, o, "error");
	dc_reply_json(t->r, 200, dc_jb_done(&b, o));
}

static struct json_object *
tables_result(const struct dc_schema *s)
{
	struct json_object *o = json_object_new_object(), *arr, *e;
	struct dc_jb b = { 0 };
	int i;

	arr = json_object_new_array_ext(s->ntables);
	for (i = 0; i < s->ntables && !b.failed; i++) {
		const struct dc_schema_table *tb = &s->tables[i];

		e = json_object_new_object();
		dc_jb_add(&b, e, "schema", json_object_new_string(tb->schema));
		dc_jb_add(&b, e, "table", json_object_new_string(tb->name));
		if (tb->row_count >= 0)
			dc_jb_add(&b, e, "row_count",
			    json_object_new_int64(tb->row_count));
		else
			dc_jb_null(&b, e, "row_count");
		dc_jb_add(&b, e, "table_type",
		    json_object_new_string(tb->table_type));
		dc_jb_push(&b, arr, e);
	}
	dc_jb_add(&b, o, "tables", arr);
	return dc_jb_done(&b, o);
}

static struct json_object *
columns_result(const struct dc_schema_table *tb)
{
	struct json_object *o = json_object_new_object(), *arr, *c;
	struct dc_jb b = { 0 };
	char name[2 * DC_NAME_MAX];
	int i;

	snprintf(name, sizeof(name), "%s.%s", tb->schema, tb->name);
	arr = json_object_new_array_ext(tb->ncols);
	for (i = 0; i < tb->ncols && !b.failed; i++) {
		c = json_object_new_object();
		dc_jb_add(&b, c, "name",
		    json_object_new_string(tb->cols[i].name));
		dc_jb_add(&b, c, "type",
		    json_object_new_string(tb->cols[i].data_type));
		dc_jb_add(&b, c, "nullable",
		    json_object_new_boolean(tb->cols[i].nullable));
		dc_jb_push(&b, arr, c);
	}
	dc_jb_add(&b, o, "table", json_object_new_string(name));
	dc_jb_add(&b, o, "columns", arr);
	return dc_jb_done(&b, o);
}

/*
 * context_answer without DataPoints: what the live schema says, and
 * that DataPoints would be needed for more (DataChat's needs_sql).
 */
static struct json_object *
context_result(const struct dc_schema *s)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };
	char answer[1024];
	size_t off;
	int i;

	off = (size_t)snprintf(answer, sizeof(answer), "No DataPoints are "
	    "loaded: datachatd answers from the live schema. The database has "
	    "%d table%s", s->ntables, s->ntables == 1 ? "" : "s");
	for (i = 0; i < s->ntables && i < 20 && off < sizeof(answer); i++)
		off += (size_t)snprintf(answer + off, sizeof(answer) - off,
		    "%s%s", i == 0 ? ": " : ", ", s->tables[i].name);
	if (s->ntables > 20 && off < sizeof(answer))
		off += (size_t)snprintf(answer + off, sizeof(answer) - off,
		    " and %d more", s->ntables - 20);
	if (off < sizeof(answer))
		snprintf(answer + off, sizeof(answer) - off, ".");
	dc_jb_add(&b, o, "answer", json_object_new_string(answer));
	dc_jb_add(&b, o, "confidence", json_object_new_double(0.0));
	dc_jb_add(&b, o, "needs_sql", json_object_new_boolean(1));
	dc_jb_add(&b, o, "evidence", json_object_new_array());
	dc_jb_add(&b, o, "retrieved_datapoints", json_object_new_array());
	dc_jb_add(&b, o, "answer_source", json_object_new_string("context"));
	return dc_jb_done(&b, o);
}

static void
catalog_done(struct toolrun *t, const struct dc_rows *res)
{
	struct dc_schema *s;
	int i, pick = -1;

	if (dc_schema_parse(res, &s) != DC_OK) {
		dc_reply_error(t->r, 500, "cannot read the catalog answer");
		return;
	}
	if (t->tool->id == T_LIST_TABLES)
		reply_tool(t, tables_result(s));
	else if (t->tool->id == T_CONTEXT_ANSWER)
		reply_tool(t, context_result(s));
	else {
		/* DataChat compares table_name exactly */
		for (i = 0; i < s->ntables && pick < 0; i++)
			if (strcmp(s->tables[i].name, t->table) == 0)
				pick = i;
		if (pick < 0)
			dc_reply_error(t->r, 500, "Table not found: %s",
			    t->table);
		else
			reply_tool(t, columns_result(&s->tables[pick]));
	}
	dc_schema_free(s);
}

/* get_table_sample and run_sql: the rows as DataChat's connector has them */
static void
rows_done(struct toolrun *t, const struct dc_rows *res, int truncated)
{
	struct json_object *o = json_object_new_object(), *data;
	int n = dc_result_nrows(res, t->tool->id == T_RUN_SQL ?
	    t->r->w->cfg->max_rows : t->limit);
	struct dc_jb b = { 0 };
	char answer[192];

	if (t->tool->id == T_TABLE_SAMPLE) {
		dc_jb_add(&b, o, "columns", dc_result_columns(res));
		dc_jb_add(&b, o, "rows", dc_result_rows(res, n));
		dc_jb_add(&b, o, "row_count", json_object_new_int(n));
		dc_jb_add(&b, o, "limit", json_object_new_int(t->limit));
		reply_tool(t, dc_jb_done(&b, o));
		return;
	}
	data = json_object_new_object();
	dc_jb_add(&b, data, "rows", dc_result_rows(res, n));
	dc_jb_add(&b, data, "row_count", json_object_new_int(n));
	dc_jb_add(&b, data, "columns", dc_result_columns(res));
	dc_jb_add(&b, data, "execution_time_ms",
	    json_object_new_double((double)(dc_now_ms() - t->start_ms)));
	dc_jb_add(&b, data, "was_truncated",
	    json_object_new_boolean(truncated));
	if (truncated)
		dc_jb_add(&b, data, "max_rows",
		    json_object_new_int(t->r->w->cfg->max_rows));
	else
		dc_jb_null(&b, data, "max_rows");
	snprintf(answer, sizeof(answer), "Executed SQL query successfully. "
	    "Returned %d row(s).", n);
	dc_jb_add(&b, o, "answer", json_object_new_string(answer));
	dc_jb_add(&b, o, "sql", json_object_new_string(t->sql));
	dc_jb_add(&b, o, "data", data);
	dc_jb_null(&b, o, "visualization_hint");
	dc_jb_add(&b, o, "validation_warnings", json_object_new_array());
	dc_jb_add(&b, o, "validation_errors", json_object_new_array());
	dc_jb_add(&b, o, "retrieved_datapoints", json_object_new_array());
	dc_jb_add(&b, o, "used_datapoints", json_object_new_array());
	dc_jb_add(&b, o, "answer_source", json_object_new_string("sql"));
	dc_jb_add(&b, o, "confidence", json_object_new_double(1.0));
	reply_tool(t, dc_jb_done(&b, o));
}

static void
tool_executed(const struct dc_qresult *res, void *arg)
{
	struct toolrun *t = arg;
	char detail[1024];
	int status;

	t->job = NULL;
	t->r->cancel = NULL;
	if (res->status != DC_OK) {
		/* DataChat: the connector's QueryError, as a 500 */
		if ((status = dc_result_failure(res, detail,
		    sizeof(detail))) != 0)
			dc_reply_error(t->r, status, "%s", detail);
		else if (res->status == DC_ETIMEOUT)
			dc_reply_error(t->r, 500, "Query timeout (%ds)",
			    (t->r->w->cfg->statement_timeout + 999) / 1000);
		else
			dc_reply_error(t->r, 500, "Query execution failed: %s",
			    res->error);
	} else if (t->tool->id == T_TABLE_SAMPLE || t->tool->id == T_RUN_SQL)
		rows_done(t, res->rows, res->truncated);
	else
		catalog_done(t, res->rows);
	toolrun_free(t);
}

/* DataChat's _safe_identifier: strip, strip '"', then [A-Za-z_]\w*. */
static char *
safe_identifier(struct dc_req *r, const char *name)
{
	const char *s = name, *e = name + strlen(name), *p;

	while (s < e && (*s == ' ' || (*s >= '\t' && *s <= '\r')))
		s++;
	while (e > s && (e[-1] == ' ' || (e[-1] >= '\t' && e[-1] <= '\r')))
		e--;
	while (s < e && *s == '"')
		s++;
	while (e > s && e[-1] == '"')
		e--;
	for (p = s; p < e; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    *p == '_' || (p > s && *p >= '0' && *p <= '9')))
			break;
	if (p == s || p != e || (size_t)(e - s) >= DC_NAME_MAX) {
		dc_reply_error(r, 500, "Invalid identifier: %s", name);
		return NULL;
	}
	return strndup(s, (size_t)(e - s));
}

/*
 * The arguments as DataChat's handler(**arguments) takes them: an
 * unknown keyword or a missing required one is the TypeError Python
 * raises (a 500, as DataChat answers every tool failure); a value of the
 * wrong type is refused with pydantic's words.  Returns 1, or 0 after
 * replying.
 */
static int
check_args(struct dc_req *r, const struct tool *tl, struct json_object *args,
    struct dc_val *v)
{
	const struct dc_field *f;
	struct json_object_iter it;
	struct json_object *errs, *e, *loc;
	int n;

	json_object_object_foreachC(args, it)
		if (dc_model_field(tl->params, it.key) < 0) {
			dc_reply_error(r, 500, "%s() got an unexpected keyword "
			    "argument '%.64s'", tl->name, it.key);
			return 0;
		}
	for (f = tl->params->fields; f->name != NULL; f++)
		if ((f->flags & DC_F_REQUIRED) &&
		    !json_object_object_get_ex(args, f->name, NULL)) {
			dc_reply_error(r, 500, "%s() missing 1 required "
			    "positional argument: '%s'", tl->name, f->name);
			return 0;
		}
	if ((errs = json_object_new_array()) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return 0;
	}
	n = dc_model_validate(tl->params, args, "arguments", v, errs);
	if (n != 0) {
		e = json_object_array_get_idx(errs, 0);
		loc = json_object_object_get(e, "loc");
		dc_reply_error(r, 500, n < 0 ? "out of memory" : "%s() argument "
		    "'%s': %s", tl->name, json_object_get_string(
		    json_object_array_get_idx(loc, 1)), json_object_get_string(
		    json_object_object_get(e, "msg")));
	}
	json_object_put(errs);
	return n == 0;
}

/* schema.table in table, when no schema argument, as DataChat splits it */
static int
split_table(struct dc_req *r, struct toolrun *t, const char *table,
    const char *schema)
{
	const char *dot = strchr(table, '.');
	char *tb;

	if (dot != NULL && (schema == NULL || schema[0] == '\0')) {
		if ((tb = strndup(table, (size_t)(dot - table))) == NULL) {
			dc_reply_error(r, 500, "out of memory");
			return 0;
		}
		t->table = safe_identifier(r, dot + 1);
		t->schema = t->table != NULL ? safe_identifier(r, tb) : NULL;
		free(tb);
		return t->table != NULL && t->schema != NULL;
	}
	if ((t->table = safe_identifier(r, table)) == NULL)
		return 0;
	if (schema != NULL && schema[0] != '\0' &&
	    (t->schema = safe_identifier(r, schema)) == NULL)
		return 0;
	return 1;
}

/* The verdict on t->sql (sqlcheck.h): refuse it, or run it on t->e. */
static void
tool_checked(const struct dc_sqlcheck *v, void *arg)
{
	struct toolrun *t = arg;
	struct dc_req *r = t->r;
	char detail[256];
	char *stmt = NULL;
	int rc;

	t->check = NULL;
	if (v->status == DC_EINVAL) {
		r->cancel = NULL;
		dc_reply_error(r, 500, "SQL Editor accepts read-only SQL only "
		    "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN). %s", v->reason);
		toolrun_free(t);
		return;
	}
	if (v->status != DC_OK) {
		/* the target's catalog could not be read: as a failed query */
		if (v->err != NULL) {
			tool_executed(v->err, t);
			return;
		}
		rc = v->status;
		goto fail;
	}
	if ((stmt = strndup(t->sql, v->len)) == NULL) {
		rc = DC_ENOMEM;
		goto fail;
	}
	rc = dc_pool_query(r->w->pool, t->e, DC_JOB_READ |
	    (v->unusual ? DC_JOB_UNUSUAL : 0), stmt, 0, NULL, tool_executed, t,
	    &t->job);
	free(stmt);
	/* tool_executed may have run already: t is not ours after this */
	if (rc == DC_OK)
		return;
fail:
	r->cancel = NULL;
	rc = dc_result_submit_failure(rc, detail, sizeof(detail));
	dc_reply_error(r, rc, "%s", detail);
	toolrun_free(t);
}

static void
tool_start(struct toolrun *t, const struct dc_entry *e)
{
	struct dc_req *r = t->r;
	const char *params[DC_SCHEMA_SQL_NPARAMS];
	char sql[256], detail[256];
	int rc;

	t->start_ms = dc_now_ms();
	switch (t->tool->id) {
	case T_TABLE_SAMPLE:
	case T_RUN_SQL:
		/* names checked by safe_identifier: unquoted, as DataChat */
		if (t->tool->id == T_TABLE_SAMPLE && t->schema != NULL)
			snprintf(sql, sizeof(sql), "SELECT * FROM %s.%s LIMIT %d",
			    t->schema, t->table, t->limit);
		else if (t->tool->id == T_TABLE_SAMPLE)
			snprintf(sql, sizeof(sql), "SELECT * FROM %s LIMIT %d",
			    t->table, t->limit);
		/*
		 * Our own statement too: the table may be a view whose
		 * definition calls what the policy refuses
		 */
		if ((t->sql == NULL && (t->sql = strdup(sql)) == NULL) ||
		    (t->e = malloc(sizeof(*t->e))) == NULL) {
			rc = DC_ENOMEM;
			break;
		}
		memcpy(t->e, e, sizeof(*e));
		dc_req_defer(r, toolrun_cancel, t);
		rc = dc_sql_check(r->w, t->e, t->sql, tool_checked, t,
		    &t->check);
		break;
	default:
		/*
		 * DataChat's get_schema: one schema, the default unless named
		 * (PostgreSQL's public; MySQL's is the connection's database)
		 */
		params[0] = t->schema != NULL ? t->schema :
		    t->dialect->default_schema;
		params[1] = t->tool->id == T_LIST_COLUMNS ? t->table : NULL;
		params[2] = t->tool->id == T_LIST_COLUMNS ? "true" : "false";
		dc_req_defer(r, toolrun_cancel, t);
		rc = dc_pool_query(r->w->pool, e, DC_JOB_CATALOG,
		    t->dialect->catalog_sql, DC_SCHEMA_SQL_NPARAMS, params,
		    tool_executed, t, &t->job);
		break;
	}
	/* the callbacks may have run already: t is not ours after this */
	if (rc != DC_OK) {
		r->cancel = NULL;
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		dc_reply_error(r, rc, "%s", detail);
		toolrun_free(t);
	}
}

/* The tools that need no database answer here. */
static void
tool_local(struct toolrun *t, struct dc_val *v)
{
	struct json_object *o;
	struct dc_jb b = { 0 };

	if (t->tool->id == T_PROFILE) {
		dc_reply_error(t->r, 501, LIVE_SCHEMA "; DataPoints are not "
		    "generated.");
		return;
	}
	/* datapoint_quality_report: nothing to report, honestly */
	(void)v;
	o = json_object_new_object();
	dc_jb_add(&b, o, "total_datapoints", json_object_new_int(0));
	dc_jb_add(&b, o, "schema_datapoints", json_object_new_int(0));
	dc_jb_add(&b, o, "business_datapoints", json_object_new_int(0));
	dc_jb_add(&b, o, "weak_schema", json_object_new_array());
	dc_jb_add(&b, o, "weak_business", json_object_new_array());
	dc_jb_add(&b, o, "duplicate_metrics", json_object_new_array());
	dc_jb_add(&b, o, "duplicate_ids", json_object_new_array());
	reply_tool(t, dc_jb_done(&b, o));
}

static void
execute_tool(struct dc_req *r)
{
	struct dc_val x[DC_MODEL_MAX_FIELDS], a[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL, *args, *empty = NULL;
	const struct tool *tl;
	struct dc_resolve_err err;
	struct dc_entry *e = NULL;
	struct toolrun *t = NULL;
	int rc = DC_OK;

	if (dc_req_model(r, &execute_model, 0, x, &body) != DC_OK)
		return;
	if ((e = malloc(sizeof(*e))) == NULL ||
	    (t = calloc(1, sizeof(*t))) == NULL ||
	    (empty = json_object_new_object()) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	/* DataChat resolves the target first, whatever the tool */
	rc = dc_target_resolve(r->w, x[X_TARGET].null ? NULL : x[X_TARGET].v,
	    e, &err);
	if (rc != DC_OK && rc != DC_ENOENT) {
		dc_reply_error(r, err.status, "%s", err.detail);
		goto out;
	}
	for (tl = tools; tl->name != NULL; tl++)
		if (strcmp(tl->name, x[X_NAME].s) == 0)
			break;
	if (tl->name == NULL) {
		dc_reply_error(r, 500, "Unknown tool: %.64s", x[X_NAME].s);
		goto out;
	}
	if (tl->requires_approval && !x[X_APPROVED].i) {
		dc_reply_error(r, 403, "Tool '%s' requires approval before "
		    "execution.", tl->name);
		goto out;
	}
	args = x[X_ARGS].v != NULL ? x[X_ARGS].v : empty;
	if (!check_args(r, tl, args, a))
		goto out;
	t->r = r;
	t->tool = tl;
	if (!tl->needs_target) {
		tool_local(t, a);
		goto out;
	}
	if (rc == DC_ENOENT) {
		dc_reply_error(r, 500, "No default database connection "
		    "configured.");
		goto out;
	}
	switch (tl->id) {
	case T_LIST_TABLES:
		if (!a[0].null && a[0].slen > 0 &&
		    (t->schema = safe_identifier(r, a[0].s)) == NULL)
			goto out;
		break;
	case T_LIST_COLUMNS:
	case T_TABLE_SAMPLE:
		if (!split_table(r, t, a[A_TABLE].s, a[A_SCHEMA].null ? NULL :
		    a[A_SCHEMA].s))
			goto out;
		/* max(1, min(limit, 100)) */
		t->limit = tl->id == T_TABLE_SAMPLE ? (int)(a[A_LIMIT].i < 1 ?
		    1 : a[A_LIMIT].i > SAMPLE_MAX ? SAMPLE_MAX : a[A_LIMIT].i) : 0;
		break;
	case T_RUN_SQL:
	case T_CONTEXT_ANSWER:
		if ((t->sql = strdup(a[0].s)) == NULL) {
			dc_reply_error(r, 500, "out of memory");
			goto out;
		}
		break;
	}
	if (!toolrun_dialect(r, t, e))
		goto out;
	tool_start(t, e);
	t = NULL;	/* tool_start owns it */
out:
	if (t != NULL)
		toolrun_free(t);
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
	json_object_put(empty);
	json_object_put(body);
}

/* --- GET /api/v1/databases/{id}/schema --- */

static void
schema_done(const struct dc_schema *s, const struct dc_qresult *res,
    void *arg)
{
	struct toolrun *t = arg;
	struct json_object *o, *arr;
	struct dc_jb b = { 0 };
	char detail[1024], ts[48];
	int i, status;

	t->wait = NULL;
	t->r->cancel = NULL;
	if (s == NULL) {
		if ((status = dc_result_failure(res, detail,
		    sizeof(detail))) != 0)
			dc_reply_error(t->r, status, "%s", detail);
		else
			dc_reply_error(t->r, 502, "the target database failed "
			    "the catalog query: %s", res->error);
		toolrun_free(t);
		return;
	}
	o = json_object_new_object();
	arr = json_object_new_array_ext(s->ntables);
	/* DataChat's connector reads the default schema only (public) */
	for (i = 0; i < s->ntables && !b.failed; i++)
		if (t->dialect->default_schema == NULL ||
		    strcmp(s->tables[i].schema,
		    t->dialect->default_schema) == 0)
			dc_jb_push(&b, arr,
			    dc_schema_table_json(&s->tables[i]));
	dc_model_datetime(s->fetched_at, ts, sizeof(ts));
	dc_jb_add(&b, o, "connection_id", json_object_new_string(t->target));
	dc_jb_add(&b, o, "database_type", json_object_new_string(t->dbtype));
	dc_jb_add(&b, o, "fetched_at", json_object_new_string(ts));
	dc_jb_add(&b, o, "tables", arr);
	dc_reply_json(t->r, 200, dc_jb_done(&b, o));
	toolrun_free(t);
}

/*
 * The listed connection whose id is exactly the path's, as a string:
 * DC_OK, DC_ENOENT or DC_ENOMEM.
 */
static int
schema_target(struct dc_req *r, struct dc_entry *e)
{
	char canon[DC_UUID_STR_LEN + 1];
	uint8_t id[16];

	if (strcmp(r->args[0], DC_ENV_ENTRY_ID) == 0)
		return dc_target_env_listed(r->w, e);
	if (dc_uuid_parse(r->args[0], id) != DC_OK)
		return DC_ENOENT;
	dc_uuid_format(id, canon);
	return strcmp(canon, r->args[0]) == 0 &&
	    dc_shreg_get(r->w->reg, id, e) == DC_OK ? DC_OK : DC_ENOENT;
}

static void
get_schema(struct dc_req *r)
{
	struct dc_entry *e = NULL;
	struct toolrun *t = NULL;
	char detail[256];
	int rc;

	if ((e = malloc(sizeof(*e))) == NULL ||
	    (t = calloc(1, sizeof(*t))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	/*
	 * DataChat looks the id up in its list of connections: whatever is
	 * not there, a malformed id included, is "Connection not found".
	 */
	if ((rc = schema_target(r, e)) != DC_OK) {
		if (rc == DC_ENOMEM)
			dc_reply_error(r, 500, "out of memory");
		else
			dc_reply_error(r, 404, "Connection not found: %s",
			    r->args[0]);
		goto out;
	}
	t->r = r;
	if (!toolrun_dialect(r, t, e))
		goto out;
	dc_req_defer(r, toolrun_cancel, t);
	/* schema_done may run (the cache answers) before this returns */
	rc = dc_catalog_schema(r->w, e, 0, schema_done, t, &t->wait);
	if (rc != DC_OK) {
		r->cancel = NULL;
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		dc_reply_error(r, rc, "%s", detail);
		goto out;
	}
	t = NULL;
out:
	if (t != NULL)
		toolrun_free(t);
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
}

const struct dc_route dc_routes_tools[] = {
	{ "GET", "/api/v1/tools", list_tools, DC_ROLE_READ },
	{ "POST", "/api/v1/tools/execute", execute_tool, DC_ROLE_QUERY },
	{ "GET", "/api/v1/databases/{id}/schema", get_schema, DC_ROLE_READ },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_tools[] = {
	{ "POST /api/v1/tools/execute", "body", &execute_model },
	{ "tool context_answer", "arguments", &question_model },
	{ "tool run_sql", "arguments", &sql_model },
	{ "tool list_tables", "arguments", &tables_model },
	{ "tool list_columns", "arguments", &columns_model },
	{ "tool get_table_sample", "arguments", &sample_model },
	{ "tool profile_and_generate_datapoints", "arguments", &profile_model },
	{ "tool datapoint_quality_report", "arguments", &quality_model },
	{ NULL, NULL, NULL }
};
