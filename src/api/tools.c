/*
 * tools.c - the routes that look inside a target database:
 *
 *   GET  /api/v1/tools                  the tools, with typed parameters
 *   POST /api/v1/tools/execute          run one (DataChat's tool API)
 *   GET  /api/v1/databases/{id}/schema  the target's schema snapshot
 *
 * The tools are list_tables, list_columns and get_table_sample.  The
 * first two run the catalog query of schema.h with filters passed as
 * query parameters; the sample is the one statement built from names, so
 * they are checked (dc_sql_ident_ok: letters, digits, underscore) and
 * double-quoted, and the limit is a parameter.  Like everything sent to
 * a target, they run in a read-only transaction with the statement
 * timeout and row cap.  The schema route answers from the per-worker
 * snapshot cache (schema.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "result.h"
#include "schema.h"
#include "sqlguard.h"
#include "target.h"
#include "util.h"
#include "worker.h"

#define SAMPLE_DEFAULT	5
#define SAMPLE_MAX	100

enum tool_id { T_LIST_TABLES = 1, T_LIST_COLUMNS, T_TABLE_SAMPLE };

/* A parameter: name, JSON type, required. */
struct tool_param {
	const char	*name;
	json_type	 type;		/* json_type_string or json_type_int */
	int		 required;
	const char	*desc;
};

struct tool {
	const char	*name;
	int		 id;
	const char	*desc;
	struct tool_param params[4];
};

static const struct tool tools[] = {
	{ "list_tables", T_LIST_TABLES,
	    "List tables available in the target database.", {
		{ "schema", json_type_string, 0,
		    "only the tables of this schema" },
		{ NULL, json_type_null, 0, NULL } } },
	{ "list_columns", T_LIST_COLUMNS,
	    "List columns for a given table.", {
		{ "table", json_type_string, 1,
		    "table name, or schema.table" },
		{ "schema", json_type_string, 0,
		    "schema of the table (default: public, else the first "
		    "schema that has it)" },
		{ NULL, json_type_null, 0, NULL } } },
	{ "get_table_sample", T_TABLE_SAMPLE,
	    "Fetch a small sample of rows from a table.", {
		{ "table", json_type_string, 1,
		    "table name, or schema.table" },
		{ "schema", json_type_string, 0, "schema of the table" },
		{ "limit", json_type_int, 0, "rows to return, 1 to 100" },
		{ NULL, json_type_null, 0, NULL } } },
	{ NULL, 0, NULL, { { NULL, json_type_null, 0, NULL } } }
};

/* One tool run or schema fetch between the request and the reply. */
struct toolrun {
	struct dc_req	*r;
	const struct tool *tool;
	struct dc_pgjob	*job;
	struct dc_schema_wait *wait;
	char		 target[DC_UUID_STR_LEN + 1];
	char		 dbtype[DC_TYPE_MAX];
	char		*schema;	/* arguments, checked */
	char		*table;
	int		 limit;
};

static void
toolrun_free(struct toolrun *t)
{
	free(t->schema);
	free(t->table);
	free(t);
}

static void
toolrun_cancel(struct dc_req *r, void *arg)
{
	struct toolrun *t = arg;

	if (t->job != NULL)
		dc_pool_cancel(t->job);
	if (t->wait != NULL)
		dc_schema_cancel(t->wait);
	toolrun_free(t);
}

/* --- GET /api/v1/tools --- */

static struct json_object *
param_schema(const struct tool_param *p)
{
	struct json_object *o = json_object_new_object(), *any, *t;

	if (p->type == json_type_int) {
		json_object_object_add(o, "type",
		    json_object_new_string("integer"));
		json_object_object_add(o, "minimum", json_object_new_int(1));
		json_object_object_add(o, "maximum",
		    json_object_new_int(SAMPLE_MAX));
		json_object_object_add(o, "default",
		    json_object_new_int(SAMPLE_DEFAULT));
	} else if (p->required) {
		json_object_object_add(o, "type",
		    json_object_new_string("string"));
	} else {
		/* optional strings may be null, as DataChat's schemas say */
		any = json_object_new_array();
		t = json_object_new_object();
		json_object_object_add(t, "type",
		    json_object_new_string("string"));
		json_object_array_add(any, t);
		t = json_object_new_object();
		json_object_object_add(t, "type",
		    json_object_new_string("null"));
		json_object_array_add(any, t);
		json_object_object_add(o, "anyOf", any);
		json_object_object_add(o, "default", NULL);
	}
	json_object_object_add(o, "description",
	    json_object_new_string(p->desc));
	return o;
}

static void
list_tools(struct dc_req *r)
{
	struct json_object *arr = json_object_new_array(), *o, *ps, *props,
	    *req;
	const struct tool *tl;
	const struct tool_param *p;

	for (tl = tools; tl->name != NULL; tl++) {
		o = json_object_new_object();
		ps = json_object_new_object();
		props = json_object_new_object();
		req = json_object_new_array();
		for (p = tl->params; p->name != NULL; p++) {
			json_object_object_add(props, p->name, param_schema(p));
			if (p->required)
				json_object_array_add(req,
				    json_object_new_string(p->name));
		}
		json_object_object_add(ps, "type",
		    json_object_new_string("object"));
		json_object_object_add(ps, "properties", props);
		json_object_object_add(ps, "required", req);
		json_object_object_add(ps, "additionalProperties",
		    json_object_new_boolean(0));
		json_object_object_add(o, "name",
		    json_object_new_string(tl->name));
		json_object_object_add(o, "description",
		    json_object_new_string(tl->desc));
		json_object_object_add(o, "category",
		    json_object_new_string("database"));
		json_object_object_add(o, "requires_approval",
		    json_object_new_boolean(0));
		json_object_object_add(o, "enabled",
		    json_object_new_boolean(1));
		json_object_object_add(o, "parameters_schema", ps);
		json_object_array_add(arr, o);
	}
	dc_reply_json(r, 200, arr);
}

/* --- POST /api/v1/tools/execute --- */

static void
reply_tool(struct toolrun *t, struct json_object *result)
{
	struct json_object *o = json_object_new_object();

	if (result == NULL) {
		json_object_put(o);
		dc_reply_error(t->r, 500, "out of memory");
		return;
	}
	json_object_object_add(o, "tool", json_object_new_string(t->tool->name));
	json_object_object_add(o, "success", json_object_new_boolean(1));
	json_object_object_add(o, "result", result);
	json_object_object_add(o, "error", NULL);
	json_object_object_add(o, "target_database",
	    json_object_new_string(t->target));
	dc_reply_json(t->r, 200, o);
}

/* The database refused the tool's statement: success false, its words. */
static void
reply_tool_db_error(struct toolrun *t, const struct dc_pg_result *res)
{
	struct json_object *o = json_object_new_object();
	char msg[700];

	if (res->status == DC_ETIMEOUT)
		snprintf(msg, sizeof(msg), "statement timeout (%d ms): %s",
		    t->r->w->cfg->statement_timeout, res->error);
	else
		dc_strlcpy(msg, res->error, sizeof(msg));
	json_object_object_add(o, "tool", json_object_new_string(t->tool->name));
	json_object_object_add(o, "success", json_object_new_boolean(0));
	json_object_object_add(o, "result", NULL);
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "target_database",
	    json_object_new_string(t->target));
	dc_reply_json(t->r, 200, o);
}

static struct json_object *
tables_result(const struct dc_schema *s)
{
	struct json_object *o = json_object_new_object(), *arr, *e;
	int i;

	arr = json_object_new_array_ext(s->ntables);
	for (i = 0; i < s->ntables; i++) {
		const struct dc_schema_table *tb = &s->tables[i];

		e = json_object_new_object();
		json_object_object_add(e, "schema",
		    json_object_new_string(tb->schema));
		json_object_object_add(e, "table",
		    json_object_new_string(tb->name));
		json_object_object_add(e, "row_count", tb->row_count >= 0 ?
		    json_object_new_int64(tb->row_count) : NULL);
		json_object_object_add(e, "table_type",
		    json_object_new_string(tb->table_type));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "tables", arr);
	return o;
}

static struct json_object *
columns_result(const struct dc_schema_table *tb)
{
	struct json_object *o = json_object_new_object(), *arr, *c;
	char name[2 * DC_NAME_MAX];
	int i;

	snprintf(name, sizeof(name), "%s.%s", tb->schema, tb->name);
	arr = json_object_new_array_ext(tb->ncols);
	for (i = 0; i < tb->ncols; i++) {
		c = json_object_new_object();
		json_object_object_add(c, "name",
		    json_object_new_string(tb->cols[i].name));
		json_object_object_add(c, "type",
		    json_object_new_string(tb->cols[i].data_type));
		json_object_object_add(c, "nullable",
		    json_object_new_boolean(tb->cols[i].nullable));
		json_object_array_add(arr, c);
	}
	json_object_object_add(o, "table", json_object_new_string(name));
	json_object_object_add(o, "columns", arr);
	return o;
}

static void
catalog_done(struct toolrun *t, const PGresult *res)
{
	struct dc_schema *s;
	int i, pick = 0;

	if (dc_schema_parse(res, &s) != DC_OK) {
		dc_reply_error(t->r, 500, "cannot read the catalog answer");
		return;
	}
	if (t->tool->id == T_LIST_TABLES) {
		reply_tool(t, tables_result(s));
	} else if (s->ntables == 0) {
		dc_reply_error(t->r, 404, "Table not found: %s%s%s",
		    t->schema != NULL ? t->schema : "",
		    t->schema != NULL ? "." : "", t->table);
	} else {
		/* no schema given: public first, as search_path would */
		for (i = 0; t->schema == NULL && i < s->ntables; i++)
			if (strcmp(s->tables[i].schema, "public") == 0)
				pick = i;
		reply_tool(t, columns_result(&s->tables[pick]));
	}
	dc_schema_free(s);
}

static void
sample_done(struct toolrun *t, const PGresult *res)
{
	struct json_object *o = json_object_new_object();
	int n = dc_result_nrows(res, t->limit);

	json_object_object_add(o, "columns", dc_result_columns(res));
	json_object_object_add(o, "rows", dc_result_rows(res, n));
	json_object_object_add(o, "row_count", json_object_new_int(n));
	json_object_object_add(o, "limit", json_object_new_int(t->limit));
	reply_tool(t, o);
}

static void
tool_executed(const struct dc_pg_result *res, void *arg)
{
	struct toolrun *t = arg;
	char detail[1024];
	int status;

	t->job = NULL;
	t->r->cancel = NULL;
	if (res->status != DC_OK) {
		if ((status = dc_result_failure(res, detail,
		    sizeof(detail))) != 0)
			dc_reply_error(t->r, status, "%s", detail);
		else if (res->sqlstate != NULL &&
		    strcmp(res->sqlstate, "42P01") == 0)
			dc_reply_error(t->r, 404, "Table not found: %s",
			    res->error);
		else
			reply_tool_db_error(t, res);
	} else if (t->tool->id == T_TABLE_SAMPLE)
		sample_done(t, res->res);
	else
		catalog_done(t, res->res);
	toolrun_free(t);
}

/*
 * Check arguments against the tool's parameters.  Returns 1, or 0 after
 * replying (422 wrong shape, 400 a name we will not quote).
 */
static int
check_args(struct dc_req *r, const struct tool *tl, struct json_object *args,
    struct toolrun *t)
{
	const struct tool_param *p;
	const char *table = NULL, *schema = NULL, *dot = NULL;
	struct json_object_iter it;
	int64_t limit = SAMPLE_DEFAULT;

	json_object_object_foreachC(args, it) {
		for (p = tl->params; p->name != NULL; p++)
			if (strcmp(p->name, it.key) == 0)
				break;
		if (p->name == NULL) {
			dc_reply_error(r, 422, "unknown argument \"%.64s\" for "
			    "tool %s", it.key, tl->name);
			return 0;
		}
		if (it.val == NULL || json_object_is_type(it.val,
		    json_type_null)) {
			if (p->required) {
				dc_reply_error(r, 422, "argument %s of tool %s "
				    "must not be null", p->name, tl->name);
				return 0;
			}
			continue;
		}
		if (!json_object_is_type(it.val, p->type)) {
			dc_reply_error(r, 422, "argument %s of tool %s must be "
			    "%s", p->name, tl->name, p->type == json_type_int ?
			    "an integer" : "a string");
			return 0;
		}
		if (strcmp(p->name, "table") == 0)
			table = json_object_get_string(it.val);
		else if (strcmp(p->name, "schema") == 0)
			schema = json_object_get_string(it.val);
		else if (strcmp(p->name, "limit") == 0)
			limit = json_object_get_int64(it.val);
	}
	if (limit < 1 || limit > SAMPLE_MAX) {
		dc_reply_error(r, 422, "argument limit must be between 1 and %d",
		    SAMPLE_MAX);
		return 0;
	}
	t->limit = (int)limit;
	if (schema != NULL && !dc_sql_ident_ok(schema)) {
		dc_reply_error(r, 400, "invalid schema name: use letters, "
		    "digits and underscores");
		return 0;
	}
	if (table != NULL) {
		/* "schema.table" when no schema argument, as DataChat does */
		if (schema == NULL && (dot = strchr(table, '.')) != NULL) {
			t->schema = strndup(table, (size_t)(dot - table));
			t->table = strdup(dot + 1);
		} else
			t->table = strdup(table);
		if (t->table == NULL || (dot != NULL && schema == NULL &&
		    t->schema == NULL)) {
			dc_reply_error(r, 500, "out of memory");
			return 0;
		}
		if (!dc_sql_ident_ok(t->table) || (t->schema != NULL &&
		    !dc_sql_ident_ok(t->schema))) {
			dc_reply_error(r, 400, "invalid table name: use "
			    "letters, digits and underscores (schema.table "
			    "for another schema)");
			return 0;
		}
	}
	if (schema != NULL && t->schema == NULL &&
	    (t->schema = strdup(schema)) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return 0;
	}
	return 1;
}

static void
tool_start(struct toolrun *t, const struct dc_entry *e)
{
	struct dc_req *r = t->r;
	const char *params[DC_SCHEMA_SQL_NPARAMS];
	char sql[256], limit[16], detail[256];
	int rc;

	dc_req_defer(r, toolrun_cancel, t);
	/* tool_executed may run before dc_pool_query returns */
	switch (t->tool->id) {
	case T_TABLE_SAMPLE:
		/* names checked by dc_sql_ident_ok: no quote inside */
		if (t->schema != NULL)
			snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\".\"%s\" "
			    "LIMIT $1::integer", t->schema, t->table);
		else
			snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" "
			    "LIMIT $1::integer", t->table);
		snprintf(limit, sizeof(limit), "%d", t->limit);
		params[0] = limit;
		rc = dc_pool_query(r->w->pool, e, DC_PG_READ, sql, 1,
		    params, tool_executed, t, &t->job);
		break;
	default:
		params[0] = t->schema;
		params[1] = t->tool->id == T_LIST_COLUMNS ? t->table : NULL;
		params[2] = t->tool->id == T_LIST_COLUMNS ? "true" : "false";
		rc = dc_pool_query(r->w->pool, e, DC_PG_CATALOG, dc_schema_sql,
		    DC_SCHEMA_SQL_NPARAMS, params, tool_executed, t, &t->job);
		break;
	}
	if (rc != DC_OK) {
		r->cancel = NULL;
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		dc_reply_error(r, rc, "%s", detail);
		toolrun_free(t);
	}
}

static void
execute_tool(struct dc_req *r)
{
	struct json_object *body = NULL, *v, *args = NULL, *target = NULL;
	const struct tool *tl;
	struct dc_resolve_err err;
	struct dc_entry *e = NULL;
	struct toolrun *t = NULL;
	const char *name;
	int rc;

	if (dc_req_json(r, &body) != DC_OK)
		return;
	if (!json_object_object_get_ex(body, "name", &v) || v == NULL) {
		dc_reply_error(r, 422, "name is required: the tool to run");
		goto out;
	}
	if (!json_object_is_type(v, json_type_string)) {
		dc_reply_error(r, 422, "name must be a string");
		goto out;
	}
	name = json_object_get_string(v);
	for (tl = tools; tl->name != NULL; tl++)
		if (strcmp(tl->name, name) == 0)
			break;
	if (tl->name == NULL) {
		dc_reply_error(r, 404, "Unknown tool: %.64s (see GET "
		    "/api/v1/tools)", name);
		goto out;
	}
	if (json_object_object_get_ex(body, "arguments", &args) &&
	    args != NULL && !json_object_is_type(args, json_type_object)) {
		dc_reply_error(r, 422, "arguments must be an object");
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (e = malloc(sizeof(*e))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	t->r = r;
	t->tool = tl;
	t->limit = SAMPLE_DEFAULT;
	if (args != NULL && !check_args(r, tl, args, t))
		goto out;
	if (tl->id != T_LIST_TABLES && t->table == NULL) {
		dc_reply_error(r, 422, "argument table is required for tool %s",
		    tl->name);
		goto out;
	}
	json_object_object_get_ex(body, "target_database", &target);
	if ((rc = dc_target_resolve(r->w, target, e, &err)) != DC_OK) {
		if (rc == DC_ENOENT)
			dc_reply_error(r, 500, "No default database connection "
			    "configured.");
		else
			dc_reply_error(r, err.status, "%s", err.detail);
		goto out;
	}
	dc_uuid_format(e->id, t->target);
	dc_strlcpy(t->dbtype, e->type, sizeof(t->dbtype));
	tool_start(t, e);
	t = NULL;	/* tool_start owns it */
out:
	if (t != NULL)
		toolrun_free(t);
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
	json_object_put(body);
}

/* --- GET /api/v1/databases/{id}/schema --- */

static void
schema_done(const struct dc_schema *s, const struct dc_pg_result *res,
    void *arg)
{
	struct toolrun *t = arg;
	struct json_object *o, *arr;
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
	for (i = 0; i < s->ntables; i++)
		json_object_array_add(arr, dc_schema_table_json(&s->tables[i]));
	dc_iso8601(s->fetched_at, ts, sizeof(ts));
	json_object_object_add(o, "connection_id",
	    json_object_new_string(t->target));
	json_object_object_add(o, "database_type",
	    json_object_new_string(t->dbtype));
	json_object_object_add(o, "fetched_at", json_object_new_string(ts));
	json_object_object_add(o, "tables", arr);
	dc_reply_json(t->r, 200, o);
	toolrun_free(t);
}

/* The listed connection whose id is exactly the path's, as a string. */
static int
schema_target(struct dc_req *r, struct dc_entry *e)
{
	char canon[DC_UUID_STR_LEN + 1];
	uint8_t id[16];

	if (strcmp(r->args[0], DC_ENV_ENTRY_ID) == 0)
		return dc_target_env_listed(r->w, e) == DC_OK;
	if (dc_uuid_parse(r->args[0], id) != DC_OK)
		return 0;
	dc_uuid_format(id, canon);
	return strcmp(canon, r->args[0]) == 0 &&
	    dc_shreg_get(r->w->reg, id, e) == DC_OK;
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
	if (!schema_target(r, e)) {
		dc_reply_error(r, 404, "Connection not found: %s", r->args[0]);
		goto out;
	}
	t->r = r;
	dc_uuid_format(e->id, t->target);
	dc_strlcpy(t->dbtype, e->type, sizeof(t->dbtype));
	dc_req_defer(r, toolrun_cancel, t);
	/* schema_done may run (the cache answers) before this returns */
	rc = dc_schema_get(r->w, e, schema_done, t, &t->wait);
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
	{ "GET", "/api/v1/tools", list_tools },
	{ "POST", "/api/v1/tools/execute", execute_tool },
	{ "GET", "/api/v1/databases/{id}/schema", get_schema },
	{ NULL, NULL, NULL }
};
