/*
 * routes_chat.c - POST /api/v1/chat: a question about one target
 * database, answered in DataChat's ChatResponse shape.
 *
 * Every request goes through the same stages:
 *
 *   resolve target -> SQL source -> guard -> execute -> ChatResponse
 *
 * The SQL source is the request itself for execution_mode "direct_sql",
 * or the natural-language pipeline (an LLM writing SQL from the target's
 * schema snapshot) otherwise; the latter is not built yet and answers
 * 503.  Whatever wrote the SQL, chat_run_sql() guards it (sqlguard.h:
 * one read-only statement), runs it read-only through the worker's
 * target pool, and chat_answer() turns the rows into the response.  The
 * request's reply is deferred while the statement runs; if the client
 * leaves, the statement is cancelled.
 *
 * Errors: a statement the guard refuses is 400 with the reason; one the
 * database refuses (SQL error, statement timeout) is a ChatResponse with
 * answer_source "error" and the database's message; a target that cannot
 * be reached is 503 (502 when the connection broke twice); routing
 * errors come from dc_target_resolve().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "result.h"
#include "sqlguard.h"
#include "target.h"
#include "util.h"
#include "worker.h"

#define CONV_ID_MAX	128
#define ANSWER_COLS	8	/* column names quoted in the answer text */

/* One chat request between its stages; freed with the reply. */
struct chat {
	struct dc_req	*r;
	struct dc_pgjob	*job;
	char		 target[DC_UUID_STR_LEN + 1];
	char		 dbtype[DC_TYPE_MAX];
	char		*sql;
	char		*conversation_id;
	const char	*mode;		/* "direct_sql" or "natural_language" */
	uint64_t	 exec_start_ms;
	struct json_object *trace;	/* decision_trace */
};

static void
chat_free(struct chat *q)
{
	free(q->sql);
	free(q->conversation_id);
	json_object_put(q->trace);
	free(q);
}

static void
chat_cancel(struct dc_req *r, void *arg)
{
	struct chat *q = arg;

	if (q->job != NULL)
		dc_pool_cancel(q->job);
	chat_free(q);
}

static void
trace_add(struct chat *q, const char *stage, const char *decision,
    const char *reason, struct json_object *details)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "stage", json_object_new_string(stage));
	json_object_object_add(o, "decision", json_object_new_string(decision));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "details", details != NULL ? details :
	    json_object_new_object());
	json_object_array_add(q->trace, o);
}

/*
 * Optional string field: 1 present (*out NULL for JSON null), 0 absent,
 * -1 replied 422.
 */
static int
opt_string(struct dc_req *r, struct json_object *body, const char *key,
    const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(body, key, &v))
		return 0;
	if (v == NULL || json_object_is_type(v, json_type_null))
		return 1;
	if (!json_object_is_type(v, json_type_string)) {
		dc_reply_error(r, 422, "%s must be a string", key);
		return -1;
	}
	*out = json_object_get_string(v);
	return 1;
}

/* --- the answer --- */

static char *
answer_text(const PGresult *res, int nrows, int truncated, int max_rows)
{
	struct dc_result_cols cols;
	char buf[1024];
	size_t o;
	int i;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	if (truncated)
		o = (size_t)snprintf(buf, sizeof(buf), "The query returned more "
		    "than %d rows; showing the first %d (max_rows).", max_rows,
		    nrows);
	else if (nrows == 0)
		o = (size_t)snprintf(buf, sizeof(buf), "The query returned no "
		    "rows.");
	else
		o = (size_t)snprintf(buf, sizeof(buf), "The query returned %d "
		    "row%s.", nrows, nrows == 1 ? "" : "s");
	for (i = 0; i < cols.n && i < ANSWER_COLS && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
		    i == 0 ? " Columns: " : ", ", cols.names[i]);
	if (cols.n > ANSWER_COLS && o < sizeof(buf))
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " and %d more",
		    cols.n - ANSWER_COLS);
	if (cols.n > 0 && o < sizeof(buf))
		snprintf(buf + o, sizeof(buf) - o, ".");
	dc_result_cols_free(&cols);
	return strdup(buf);
}

/* The fields every ChatResponse carries, whatever happened. */
static struct json_object *
response_base(struct chat *q, const char *answer, const char *source,
    double confidence)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "answer", json_object_new_string(answer));
	json_object_object_add(o, "clarifying_questions",
	    json_object_new_array());
	json_object_object_add(o, "sql", q->sql != NULL ?
	    json_object_new_string(q->sql) : NULL);
	json_object_object_add(o, "data", NULL);
	json_object_object_add(o, "visualization_hint", NULL);
	json_object_object_add(o, "sources", json_object_new_array());
	json_object_object_add(o, "answer_source",
	    json_object_new_string(source));
	json_object_object_add(o, "answer_confidence",
	    json_object_new_double_s(confidence, confidence > 0 ? "1.0" :
	    "0.0"));
	json_object_object_add(o, "evidence", json_object_new_array());
	json_object_object_add(o, "validation_errors",
	    json_object_new_array());
	json_object_object_add(o, "validation_warnings",
	    json_object_new_array());
	json_object_object_add(o, "tool_approval_required",
	    json_object_new_boolean(0));
	json_object_object_add(o, "tool_approval_message", NULL);
	json_object_object_add(o, "tool_approval_calls",
	    json_object_new_array());
	return o;
}

/* Milliseconds as a JSON number without a trip through printf's %g. */
static struct json_object *
ms_json(uint64_t ms)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu.0", (unsigned long long)ms);
	return json_object_new_double_s((double)ms, buf);
}

static void
response_finish(struct chat *q, struct json_object *o, int retried)
{
	struct json_object *m = json_object_new_object(), *timings;
	uint64_t now = dc_now_ms();

	timings = json_object_new_object();
	if (q->exec_start_ms != 0)
		json_object_object_add(timings, "executor",
		    ms_json(now - q->exec_start_ms));
	json_object_object_add(m, "total_latency_ms",
	    ms_json(now - q->r->start_ms));
	json_object_object_add(m, "agent_timings", timings);
	json_object_object_add(m, "llm_calls", json_object_new_int(0));
	json_object_object_add(m, "retry_count", json_object_new_int(0));
	json_object_object_add(m, "reconnects",
	    json_object_new_int(retried ? 1 : 0));
	json_object_object_add(o, "metrics", m);
	json_object_object_add(o, "decision_trace", json_object_get(q->trace));
	json_object_object_add(o, "conversation_id",
	    json_object_new_string(q->conversation_id));
	json_object_object_add(o, "target_database",
	    json_object_new_string(q->target));
}

static void
chat_answer_rows(struct chat *q, const struct dc_pg_result *res)
{
	int max_rows = q->r->w->cfg->max_rows;
	int nrows = dc_result_nrows(res->res, max_rows);
	struct json_object *o, *details, *data;
	char *answer;

	details = json_object_new_object();
	json_object_object_add(details, "rows", json_object_new_int(nrows));
	json_object_object_add(details, "truncated",
	    json_object_new_boolean(res->truncated));
	json_object_object_add(details, "reconnected",
	    json_object_new_boolean(res->retried));
	trace_add(q, "execute", "sql", "executed read-only", details);
	answer = answer_text(res->res, nrows, res->truncated, max_rows);
	data = dc_result_columnar(res->res, nrows);
	if (answer == NULL || data == NULL) {
		free(answer);
		json_object_put(data);
		dc_reply_error(q->r, 500, "out of memory");
		return;
	}
	o = response_base(q, answer, "sql", 1.0);
	free(answer);
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "row_count", json_object_new_int(nrows));
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(res->truncated));
	if (res->truncated) {
		struct json_object *w = json_object_new_object();
		char msg[128];

		snprintf(msg, sizeof(msg), "result truncated to %d rows "
		    "(max_rows)", max_rows);
		json_object_object_add(w, "warning_type",
		    json_object_new_string("row_limit"));
		json_object_object_add(w, "message",
		    json_object_new_string(msg));
		json_object_array_add(json_object_object_get(o,
		    "validation_warnings"), w);
	}
	response_finish(q, o, res->retried);
	dc_reply_json(q->r, 200, o);
}

/* The database refused the statement: say so in band, with its words. */
static void
chat_answer_db_error(struct chat *q, const struct dc_pg_result *res)
{
	const char *kind = res->status == DC_ETIMEOUT ? "timeout" : "database";
	struct json_object *o, *e, *details;
	char answer[1024];

	if (res->status == DC_ETIMEOUT)
		snprintf(answer, sizeof(answer), "The query was cancelled: it "
		    "ran longer than statement_timeout (%d ms): %s",
		    q->r->w->cfg->statement_timeout, res->error);
	else
		snprintf(answer, sizeof(answer), "The query failed: %s",
		    res->error);
	details = json_object_new_object();
	if (res->sqlstate != NULL)
		json_object_object_add(details, "sqlstate",
		    json_object_new_string(res->sqlstate));
	trace_add(q, "execute", "error", kind, details);
	o = response_base(q, answer, "error", 0.0);
	e = json_object_new_object();
	json_object_object_add(e, "error_type", json_object_new_string(kind));
	json_object_object_add(e, "message",
	    json_object_new_string(res->error));
	json_object_object_add(e, "sqlstate", res->sqlstate != NULL ?
	    json_object_new_string(res->sqlstate) : NULL);
	json_object_array_add(json_object_object_get(o, "validation_errors"),
	    e);
	response_finish(q, o, res->retried);
	dc_reply_json(q->r, 200, o);
}

static void
chat_executed(const struct dc_pg_result *res, void *arg)
{
	struct chat *q = arg;
	char detail[1024];
	int status;

	q->job = NULL;
	q->r->cancel = NULL;
	if (res->status == DC_OK)
		chat_answer_rows(q, res);
	else if ((status = dc_result_failure(res, detail,
	    sizeof(detail))) != 0)
		dc_reply_error(q->r, status, "%s", detail);
	else
		chat_answer_db_error(q, res);
	chat_free(q);
}

/*
 * Guard and run q->sql on target e.  Whatever wrote the SQL (the client,
 * later the LLM), this is the only way it reaches a target.
 */
static void
chat_run_sql(struct chat *q, const struct dc_entry *e)
{
	struct dc_req *r = q->r;
	struct dc_sql_verdict v;
	struct json_object *details;
	char *stmt, detail[256];
	int kind, rc;

	if (dc_sql_guard(q->sql, strlen(q->sql), &v) != DC_OK) {
		dc_reply_error(r, 400, "SQL rejected: %s", v.reason);
		chat_free(q);
		return;
	}
	details = json_object_new_object();
	json_object_object_add(details, "kind", json_object_new_string(
	    v.kind == DC_SQL_EXPLAIN ? "explain" : v.kind == DC_SQL_SHOW ?
	    "show" : "select"));
	trace_add(q, "sql_guard", "admitted", "one read-only statement",
	    details);
	/* DECLARE CURSOR takes queries only; EXPLAIN and SHOW run as is */
	kind = v.kind == DC_SQL_SELECT ? DC_PG_READ_CURSOR : DC_PG_READ_DIRECT;
	stmt = strndup(q->sql, v.len);	/* without a trailing ';' */
	if (stmt == NULL) {
		dc_reply_error(r, 500, "out of memory");
		chat_free(q);
		return;
	}
	q->exec_start_ms = dc_now_ms();
	dc_req_defer(r, chat_cancel, q);
	/* chat_executed may run before this returns: q is not ours after */
	rc = dc_pool_query(r->w->pool, e, kind, stmt, 0, NULL, chat_executed,
	    q, &q->job);
	free(stmt);
	if (rc != DC_OK) {
		r->cancel = NULL;
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		dc_reply_error(r, rc, "%s", detail);
		chat_free(q);
	}
}

/* The natural-language pipeline: not built yet. */
static void
chat_natural_language(struct chat *q, const struct dc_entry *e)
{
	struct dc_req *r = q->r;

	if (r->w->cfg->llm_provider[0] == '\0')
		dc_reply_error(r, 503, "no LLM provider configured: set "
		    "LLM_DEFAULT_PROVIDER (openai, anthropic or local) and its "
		    "API key to ask questions in natural language, or send "
		    "execution_mode \"direct_sql\" with sql");
	else
		dc_reply_error(r, 503, "natural-language questions are not "
		    "available in this build yet: send execution_mode "
		    "\"direct_sql\" with sql");
	chat_free(q);
}

/*
 * conv_ and 12 hex digits, as DataChat makes them.  An id only has to
 * be unlikely to repeat, not secret: a generator seeded once per worker
 * from the system RNG saves a getrandom() per request.
 */
static char *
new_conversation_id(void)
{
	static uint64_t state;
	uint8_t seed[16];
	char buf[32];

	if (state == 0) {
		if (dc_uuid_generate(seed) != DC_OK)
			memset(seed, 0, sizeof(seed));
		memcpy(&state, seed, sizeof(state));
		state ^= dc_now_ms() | 1;
	}
	state ^= state >> 12;	/* xorshift64* */
	state ^= state << 25;
	state ^= state >> 27;
	snprintf(buf, sizeof(buf), "conv_%012llx", (unsigned long long)
	    ((state * 0x2545F4914F6CDD1DULL) >> 16));
	return strdup(buf);
}

static void
chat(struct dc_req *r)
{
	struct json_object *body = NULL, *target = NULL, *v;
	const char *message, *mode, *sql, *conv;
	struct dc_resolve_err err;
	struct dc_entry *e = NULL;
	struct chat *q = NULL;
	int direct;

	if (dc_req_json(r, &body) != DC_OK)
		return;
	if (opt_string(r, body, "message", &message) < 0 ||
	    opt_string(r, body, "execution_mode", &mode) < 0 ||
	    opt_string(r, body, "sql", &sql) < 0 ||
	    opt_string(r, body, "conversation_id", &conv) < 0)
		goto out;
	direct = mode != NULL && strcmp(mode, "direct_sql") == 0;
	if (direct && (sql == NULL || sql[strspn(sql, " \t\r\n")] == '\0')) {
		dc_reply_error(r, 422, "sql is required when execution_mode is "
		    "\"direct_sql\"");
		goto out;
	}
	if (direct && json_object_object_get_ex(body, "sql", &v) &&
	    (size_t)json_object_get_string_len(v) != strlen(sql)) {
		/* the guard reads C strings: never let it see half a statement */
		dc_reply_error(r, 422, "sql must not contain a NUL character");
		goto out;
	}
	if (!direct && (message == NULL || message[0] == '\0')) {
		dc_reply_error(r, 422, "message is required (or send "
		    "execution_mode \"direct_sql\" with sql)");
		goto out;
	}
	if (conv != NULL && strlen(conv) > CONV_ID_MAX) {
		dc_reply_error(r, 422, "conversation_id is longer than %d bytes",
		    CONV_ID_MAX);
		goto out;
	}

	/* stage 1: which database */
	json_object_object_get_ex(body, "target_database", &target);
	if ((e = malloc(sizeof(*e))) == NULL ||
	    (q = calloc(1, sizeof(*q))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	if (dc_target_resolve(r->w, target, e, &err) != DC_OK) {
		dc_reply_error(r, err.status, "%s", err.detail);
		goto out;
	}
	q->r = r;
	q->mode = direct ? "direct_sql" : "natural_language";
	q->trace = json_object_new_array();
	dc_uuid_format(e->id, q->target);
	dc_strlcpy(q->dbtype, e->type, sizeof(q->dbtype));
	q->conversation_id = conv != NULL && conv[0] != '\0' ? strdup(conv) :
	    new_conversation_id();
	q->sql = direct ? strdup(sql) : NULL;
	if (q->trace == NULL || q->conversation_id == NULL ||
	    (direct && q->sql == NULL)) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	{
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "target_database",
		    json_object_new_string(q->target));
		json_object_object_add(d, "database_type",
		    json_object_new_string(q->dbtype));
		trace_add(q, "routing", "target", target != NULL &&
		    !json_object_is_type(target, json_type_null) ?
		    "target_database" : dc_target_is_env(e->id) ?
		    "environment DATABASE_URL" : "registry default", d);
	}
	trace_add(q, "execution_mode", q->mode, direct ?
	    "execution_mode=direct_sql" : "natural-language question", NULL);

	/* stage 2: where the SQL comes from; 3 and 4: guard and run it */
	if (direct)
		chat_run_sql(q, e);
	else
		chat_natural_language(q, e);
	q = NULL;	/* owned by the stages now */
out:
	if (q != NULL)
		chat_free(q);
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
	json_object_put(body);
}

const struct dc_route dc_routes_chat[] = {
	{ "POST", "/api/v1/chat", chat },
	{ NULL, NULL, NULL }
};
