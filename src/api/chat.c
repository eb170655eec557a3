/*
 * chat.c - POST /api/v1/chat: a question about one target
 * database, answered in DataChat's ChatResponse shape.
 *
 * Every request goes through the same stages:
 *
 *   resolve target -> SQL source -> guard -> execute -> ChatResponse
 *
 * The SQL source is the request itself for execution_mode "direct_sql",
 * or the natural-language pipeline otherwise: a catalog question (nlq.h)
 * is answered from the target's schema snapshot (schema.h) or a query we
 * write, without an LLM; any other question goes to the LLM (llm.h) with
 * the dialect and the live schema (prompt.h), and a statement the guard
 * or the database refuses goes back to it once with the reason.
 * Whatever wrote the SQL, chat_run_sql() guards it (sqlguard.h:
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
#include "driver.h"
#include "http.h"
#include "tokens.h"
#include "jsonw.h"
#include "llm.h"
#include "log.h"
#include "model.h"
#include "nlq.h"
#include "pool.h"
#include "prompt.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "sqlguard.h"
#include "system.h"
#include "target.h"
#include "util.h"
#include "viz.h"
#include "worker.h"

#define CONV_ID_MAX	128
#define ANSWER_COLS	8	/* column names quoted in the answer text */

/*
 * A ChatResponse until it is written (reply_response): the fields that
 * vary; the rest are the same in every answer.
 */
struct resp {
	char		*answer;	/* owned */
	const char	*source;	/* answer_source */
	int		 confident;	/* answer_confidence 1.0, else 0.0 */
	const struct dc_rows *res;	/* data: res's first nrows rows */
	struct dc_result_cols cols;	/* res's column names (owned) */
	struct json_object *data;	/* or this (owned); neither: null */
	int		 nrows;		/* row_count, when with_rows */
	int		 with_rows;
	int		 truncated;	/* truncated, when with_truncated */
	int		 with_truncated;
	struct json_object *clarifying;	/* array (owned); NULL: [] */
	struct json_object *errors;	/* validation_errors, as above */
	struct json_object *warnings;	/* validation_warnings, as above */
};

/* One chat request between its stages; freed with the reply. */
struct chat {
	struct dc_req	*r;
	struct dc_job	*job;
	const struct dc_dialect *dialect;	/* the target's (driver.h) */
	char		 target[DC_UUID_STR_LEN + 1];
	char		 dbtype[DC_TYPE_MAX];
	char		*sql;
	char		*conversation_id;
	char		*session_summary;	/* echoed (owned) */
	char		*session_state;		/* echoed, JSON text (owned) */
	const char	*mode;		/* "direct_sql" or "natural_language" */
	uint64_t	 exec_start_ms;
	struct dc_jw	 trace;		/* decision_trace, an open array */

	/* natural-language questions */
	struct dc_entry	*e;		/* the target, for the async steps */
	char		*message;
	struct dc_nlq_intent intent;
	struct dc_schema_wait *swait;
	struct dc_llm_call *call;
	char		*prompt;	/* user prompt of the first round */
	const char	*source;	/* answer_source of a row answer */
	int		 llm_calls;
	int		 retry_count;
	int		 synthesize;	/* synthesize_simple_sql */
	struct resp	*pending;	/* response awaiting its summary */
};

static void	 chat_run_sql(struct chat *q, const struct dc_entry *e);
static void	 nl_refused(struct chat *q, const char *kind, const char *why);
static void	 nl_summarize(struct chat *q, const struct dc_rows *res,
		     int nrows);

static void
resp_free(struct resp *m)
{
	free(m->answer);
	dc_result_cols_free(&m->cols);
	json_object_put(m->data);
	json_object_put(m->clarifying);
	json_object_put(m->errors);
	json_object_put(m->warnings);
	memset(m, 0, sizeof(*m));
}

static void
chat_free(struct chat *q)
{
	if (q->e != NULL) {
		dc_explicit_bzero(q->e, sizeof(*q->e));
		free(q->e);
	}
	free(q->message);
	free(q->prompt);
	if (q->pending != NULL) {
		resp_free(q->pending);
		free(q->pending);
	}
	free(q->sql);
	free(q->conversation_id);
	free(q->session_summary);
	free(q->session_state);
	dc_jw_free(&q->trace);
	free(q);
}

static void
chat_cancel(struct dc_req *r, void *arg)
{
	struct chat *q = arg;

	if (q->job != NULL)
		dc_pool_cancel(q->job);
	if (q->swait != NULL)
		dc_schema_cancel(q->swait);
	if (q->call != NULL)
		dc_llm_cancel(q->call);
	chat_free(q);
}

/*
 * A decision_trace entry, written as it happens: trace_open() writes up
 * to "details", the caller writes the details object, trace_close() ends
 * the entry.  trace_add() does all three with details from json-c (NULL:
 * {}), and takes them.
 */
static struct dc_jw *
trace_open(struct chat *q, const char *stage, const char *decision,
    const char *reason)
{
	struct dc_jw *w = &q->trace;

	dc_jw_object(w);
	dc_jw_key(w, "stage");
	dc_jw_string(w, stage);
	dc_jw_key(w, "decision");
	dc_jw_string(w, decision);
	dc_jw_key(w, "reason");
	dc_jw_string(w, reason);
	dc_jw_key(w, "details");
	return w;
}

static void
trace_close(struct chat *q)
{
	dc_jw_object_end(&q->trace);
}

static void
trace_add(struct chat *q, const char *stage, const char *decision,
    const char *reason, struct json_object *details)
{
	struct dc_jw *w = trace_open(q, stage, decision, reason);

	if (details != NULL)
		dc_jw_json(w, details);
	else
		dc_jw_raw(w, "{}", 2);
	json_object_put(details);
	trace_close(q);
}

/* --- the answer --- */

/*
 * DataChat's words for a direct SQL answer; DataChat has no row cap, so
 * a capped result says so after them.
 */
static char *
direct_answer_text(int nrows, int truncated)
{
	char buf[192];

	snprintf(buf, sizeof(buf), "Executed SQL query successfully. Returned "
	    "%d row(s).%s", nrows, truncated ? " The statement returned more "
	    "rows; only these are shown (max_rows)." : "");
	return strdup(buf);
}

/*
 * The short answer of a natural-language question, built without an LLM:
 * "10 rows: name, revenue. Top: cust37 (2450.50)."
 */
/* A cell's text for an answer sentence, "null" for SQL NULL. */
static const char *
cell_text(const struct dc_rows *res, int row, int col)
{
	const char *v = dc_rows_cell(res, row, col)->v;

	return v != NULL ? v : "null";
}

static char *
nl_answer_text(struct chat *q, const struct dc_rows *res,
    const struct dc_result_cols *c, int nrows, int truncated)
{
	char buf[1024];
	size_t o = 0;
	int i;

	if (q->intent.kind == DC_NLQ_ROW_COUNT && nrows == 1 &&
	    res->ncols == 1) {
		snprintf(buf, sizeof(buf), "%s has %s row%s.", q->intent.table,
		    cell_text(res, 0, 0), strcmp(cell_text(res, 0, 0), "1") ?
		    "s" : "");
		return strdup(buf);
	}
	if (nrows == 1 && c->n == 1) {
		snprintf(buf, sizeof(buf), "%s: %s.", c->names[0],
		    cell_text(res, 0, 0));
		return strdup(buf);
	}
	o = (size_t)snprintf(buf, sizeof(buf), "%s%d row%s", truncated ?
	    "More than " : "", nrows, nrows == 1 ? "" : "s");
	for (i = 0; i < c->n && i < ANSWER_COLS && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s",
		    i == 0 ? ": " : ", ", c->names[i]);
	if (o < sizeof(buf))
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, ".");
	if (nrows > 0 && c->n > 0 && o < sizeof(buf)) {
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %s: %.60s",
		    q->intent.kind == DC_NLQ_SAMPLE ? "First" : "Top",
		    cell_text(res, 0, 0));
		for (i = 1; i < c->n && i < 4 && o < sizeof(buf); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%.40s",
			    i == 1 ? " (" : ", ", cell_text(res, 0, i));
		if (c->n > 1 && o < sizeof(buf))
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, ")");
		if (o < sizeof(buf))
			snprintf(buf + o, sizeof(buf) - o, ".");
	}
	return strdup(buf);
}

/* Milliseconds as a JSON number, "12.0", as DataChat writes them. */
static void
write_ms(struct dc_jw *w, uint64_t ms)
{
	char buf[32], *p = buf + sizeof(buf) - 2;

	memcpy(p, ".0", 2);
	do {
		*--p = (char)('0' + ms % 10);
		ms /= 10;
	} while (ms != 0);
	dc_jw_raw(w, p, (size_t)(buf + sizeof(buf) - p));
}

static void
write_array(struct dc_jw *w, struct json_object *a)
{
	if (a != NULL)
		dc_jw_json(w, a);
	else
		dc_jw_raw(w, "[]", 2);
}

#define LIVE_SCHEMA_NOTICE "Live schema mode: DataPoints are not loaded yet. " \
	"Answers are generated from database metadata and query results only."

/*
 * Which columns DataChat's visualization rules call numeric (viz.h):
 * asyncpg hands it ints and floats as numbers, numeric as Decimal (not
 * a number to _to_float), text-like types as str (a number when float()
 * reads it), everything else as objects that are not numbers.
 */
static int
column_numeric(const struct dc_rows *res, int col, int nrows)
{
	const char *v;
	int i, text;

	switch (res->cols[col].type) {
	case DC_VT_INT:
	case DC_VT_FLOAT:
		text = 0;
		break;
	case DC_VT_TEXT:
	case DC_VT_JSON:
		text = 1;	/* str to DataChat: a number when float() reads it */
		break;
	default:
		return 0;
	}
	for (i = 0; i < nrows; i++) {
		if ((v = dc_rows_cell(res, i, col)->v) == NULL)
			continue;
		if (!text || dc_viz_text_is_number(v))
			return 1;
	}
	return 0;
}

static int
json_numeric(struct json_object *vals)
{
	size_t i, n = json_object_array_length(vals);
	struct json_object *v;

	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(vals, i);
		if (json_object_is_type(v, json_type_int) ||
		    json_object_is_type(v, json_type_double))
			return 1;
		if (json_object_is_type(v, json_type_string) &&
		    dc_viz_text_is_number(json_object_get_string(v)))
			return 1;
	}
	return 0;
}

/* The hint for what m answers with; NULL when it has no data. */
static const char *
resp_viz(const struct resp *m)
{
	const char *names[64];
	int numeric[64], n = 0, rows = 0;
	struct json_object_iter it;

	if (m->res != NULL) {
		for (n = 0; n < m->cols.n && n < 64; n++) {
			names[n] = m->cols.names[n];
			numeric[n] = column_numeric(m->res, n, m->nrows);
		}
		return dc_viz_hint(n, names, numeric, m->nrows);
	}
	if (m->data == NULL || !json_object_is_type(m->data, json_type_object))
		return NULL;
	json_object_object_foreachC(m->data, it) {
		if (n == 64)
			break;
		names[n] = it.key;
		numeric[n] = json_object_is_type(it.val, json_type_array) &&
		    json_numeric(it.val);
		if (json_object_is_type(it.val, json_type_array) &&
		    (int)json_object_array_length(it.val) > rows)
			rows = (int)json_object_array_length(it.val);
		n++;
	}
	return dc_viz_hint(n, names, numeric, rows);
}

/*
 * Write the ChatResponse m, with the metrics, the trace and the ids of
 * the request, and reply 200.  Every field of DataChat's model is there,
 * in its order; datachatd's own (row_count, truncated, target_database)
 * follow.  This is the one writer of a ChatResponse.
 */
static void
reply_response(struct chat *q, struct resp *m, int retried)
{
	uint64_t now = dc_now_ms();
	const char *hint = resp_viz(m);
	struct dc_jw w;
	size_t alen;

	(void)retried;
	dc_jw_init(&w);
	dc_jw_object(&w);
	dc_jw_key(&w, "answer");
	/* DataChat says it answers from the live schema: no DataPoints */
	alen = m->answer != NULL ? strlen(m->answer) : 0;
	if (m->answer != NULL && strstr(m->answer, LIVE_SCHEMA_NOTICE) == NULL) {
		char *a = malloc(alen + sizeof(LIVE_SCHEMA_NOTICE) + 2);

		if (a == NULL)
			w.err = 1;
		else {
			memcpy(a, m->answer, alen);
			memcpy(a + alen, "\n\n", 2);
			memcpy(a + alen + 2, LIVE_SCHEMA_NOTICE,
			    sizeof(LIVE_SCHEMA_NOTICE));
			dc_jw_string(&w, a);
			free(a);
		}
	} else
		dc_jw_string(&w, m->answer != NULL ? m->answer : "");
	dc_jw_key(&w, "clarifying_questions");
	write_array(&w, m->clarifying);
	dc_jw_key(&w, "sql");
	dc_jw_string(&w, q->sql);
	dc_jw_key(&w, "data");
	if (m->res != NULL && m->nrows == 0)
		dc_jw_raw(&w, "{}", 2);	/* DataChat's columns come from rows */
	else if (m->res != NULL)
		dc_result_write_columnar(&w, m->res, &m->cols, m->nrows);
	else
		dc_jw_json(&w, m->data);
	dc_jw_key(&w, "visualization_hint");
	dc_jw_string(&w, q->e == NULL && hint == NULL ? "none" : hint);
	dc_jw_key(&w, "visualization_metadata");
	if (q->e == NULL) {
		/* infer_direct_sql_visualization() */
		hint = hint != NULL ? hint : "none";
		dc_jw_object(&w);
		dc_jw_key(&w, "requested");
		dc_jw_string(&w, "direct_sql");
		dc_jw_key(&w, "deterministic");
		dc_jw_string(&w, hint);
		dc_jw_key(&w, "final");
		dc_jw_string(&w, hint);
		dc_jw_key(&w, "resolution_reason");
		dc_jw_string(&w, "direct_sql_result_shape");
		dc_jw_object_end(&w);
	} else if (hint != NULL) {
		/* the executor's metadata when no LLM was asked about it */
		dc_jw_object(&w);
		dc_jw_key(&w, "requested");
		dc_jw_null(&w);
		dc_jw_key(&w, "deterministic");
		dc_jw_string(&w, hint);
		dc_jw_key(&w, "llm_suggested");
		dc_jw_null(&w);
		dc_jw_key(&w, "llm_reason");
		dc_jw_null(&w);
		dc_jw_key(&w, "final");
		dc_jw_string(&w, hint);
		dc_jw_key(&w, "resolution_reason");
		dc_jw_string(&w, "deterministic_default");
		dc_jw_object_end(&w);
	} else
		dc_jw_null(&w);
	dc_jw_key(&w, "sources");
	dc_jw_raw(&w, "[]", 2);
	dc_jw_key(&w, "answer_source");
	dc_jw_string(&w, m->source);
	dc_jw_key(&w, "answer_confidence");
	dc_jw_raw(&w, m->confident ? "1.0" : "0.0", 3);
	dc_jw_key(&w, "evidence");
	dc_jw_raw(&w, "[]", 2);
	dc_jw_key(&w, "validation_errors");
	write_array(&w, m->errors);
	dc_jw_key(&w, "validation_warnings");
	write_array(&w, m->warnings);
	dc_jw_key(&w, "tool_approval_required");
	dc_jw_bool(&w, 0);
	dc_jw_key(&w, "tool_approval_message");
	dc_jw_null(&w);
	dc_jw_key(&w, "tool_approval_calls");
	dc_jw_raw(&w, "[]", 2);
	dc_jw_key(&w, "metrics");
	dc_jw_object(&w);
	dc_jw_key(&w, "total_latency_ms");
	write_ms(&w, now - q->r->start_ms);
	dc_jw_key(&w, "agent_timings");
	dc_jw_object(&w);
	if (q->exec_start_ms != 0) {
		dc_jw_key(&w, q->e == NULL ? "direct_sql_execution" :
		    "executor");
		write_ms(&w, now - q->exec_start_ms);
	}
	dc_jw_object_end(&w);
	dc_jw_key(&w, "llm_calls");
	dc_jw_int(&w, q->llm_calls);
	dc_jw_key(&w, "retry_count");
	dc_jw_int(&w, q->retry_count);
	dc_jw_key(&w, "sql_formatter_fallback_calls");
	dc_jw_int(&w, 0);
	dc_jw_key(&w, "sql_formatter_fallback_successes");
	dc_jw_int(&w, 0);
	dc_jw_key(&w, "query_compiler_llm_calls");
	dc_jw_int(&w, 0);
	dc_jw_key(&w, "query_compiler_llm_refinements");
	dc_jw_int(&w, 0);
	dc_jw_key(&w, "query_compiler_latency_ms");
	dc_jw_raw(&w, "0.0", 3);
	dc_jw_object_end(&w);
	dc_jw_key(&w, "conversation_id");
	dc_jw_string(&w, q->conversation_id);
	/* memory is DataChat's pipeline's; datachatd hands back what came */
	dc_jw_key(&w, "session_summary");
	dc_jw_string(&w, q->session_summary);
	dc_jw_key(&w, "session_state");
	if (q->session_state != NULL)
		dc_jw_raw(&w, q->session_state, strlen(q->session_state));
	else
		dc_jw_null(&w);
	dc_jw_key(&w, "sub_answers");
	dc_jw_raw(&w, "[]", 2);
	dc_jw_key(&w, "decision_trace");
	dc_jw_array_end(&q->trace);
	if (q->trace.err)
		w.err = 1;
	else
		dc_jw_raw(&w, q->trace.buf, q->trace.len);
	dc_jw_key(&w, "workflow_artifacts");
	dc_jw_null(&w);
	if (m->with_rows) {
		dc_jw_key(&w, "row_count");
		dc_jw_int(&w, m->nrows);
	}
	if (m->with_truncated) {
		dc_jw_key(&w, "truncated");
		dc_jw_bool(&w, m->truncated);
	}
	dc_jw_key(&w, "target_database");
	dc_jw_string(&w, q->target);
	dc_jw_object_end(&w);
	resp_free(m);
	if (w.err)
		dc_reply_error(q->r, 500, "out of memory");
	else
		dc_reply_text(q->r, 200, "application/json", w.buf, w.len);
	dc_jw_free(&w);
}

/*
 * Answer with the rows.  Returns 1 when a summary call took q over
 * (synthesize_simple_sql; q may be gone already), else 0.
 */
static int
chat_answer_rows(struct chat *q, const struct dc_qresult *res)
{
	int max_rows = q->r->w->cfg->max_rows;
	int nrows = dc_result_nrows(res->rows, max_rows);
	struct resp m;
	struct dc_jw *w;

	w = trace_open(q, "execute", "sql", "executed read-only");
	dc_jw_object(w);
	dc_jw_key(w, "rows");
	dc_jw_int(w, nrows);
	dc_jw_key(w, "truncated");
	dc_jw_bool(w, res->truncated);
	dc_jw_key(w, "reconnected");
	dc_jw_bool(w, res->retried);
	dc_jw_object_end(w);
	trace_close(q);

	memset(&m, 0, sizeof(m));
	if (dc_result_cols(res->rows, &m.cols) != DC_OK) {
		dc_reply_error(q->r, 500, "out of memory");
		return 0;
	}
	m.answer = q->e != NULL ? nl_answer_text(q, res->rows, &m.cols, nrows,
	    res->truncated) : direct_answer_text(nrows, res->truncated);
	m.source = q->source != NULL ? q->source : "sql";
	m.confident = 1;
	m.res = res->rows;
	m.nrows = nrows;
	m.with_rows = 1;
	m.truncated = res->truncated;
	m.with_truncated = 1;
	if (m.answer == NULL) {
		resp_free(&m);
		dc_reply_error(q->r, 500, "out of memory");
		return 0;
	}
	if (res->truncated) {
		struct json_object *warn = json_object_new_object();
		char msg[128];

		snprintf(msg, sizeof(msg), "result truncated to %d rows "
		    "(max_rows)", max_rows);
		json_object_object_add(warn, "warning_type",
		    json_object_new_string("row_limit"));
		json_object_object_add(warn, "message",
		    json_object_new_string(msg));
		m.warnings = json_object_new_array();
		json_object_array_add(m.warnings, warn);
	}
	if (q->synthesize && q->e != NULL && q->intent.kind == DC_NLQ_NONE) {
		/* a second LLM call writes the answer text; rows go now */
		m.data = dc_result_columnar(res->rows, nrows);
		m.res = NULL;
		if (m.data == NULL ||
		    (q->pending = malloc(sizeof(*q->pending))) == NULL) {
			resp_free(&m);
			dc_reply_error(q->r, 500, "out of memory");
			return 0;
		}
		*q->pending = m;
		nl_summarize(q, res->rows, nrows);
		return 1;
	}
	reply_response(q, &m, res->retried);
	return 0;
}

/* The database refused the statement: say so in band, with its words. */
static void
chat_answer_db_error(struct chat *q, const struct dc_qresult *res)
{
	const char *kind = res->status == DC_ETIMEOUT ? "timeout" : "database";
	struct json_object *e, *details;
	char answer[1024];
	struct resp m;

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
	memset(&m, 0, sizeof(m));
	m.answer = strdup(answer);
	m.source = "error";
	e = json_object_new_object();
	json_object_object_add(e, "error_type", json_object_new_string(kind));
	json_object_object_add(e, "message",
	    json_object_new_string(res->error));
	json_object_object_add(e, "sqlstate", res->sqlstate != NULL ?
	    json_object_new_string(res->sqlstate) : NULL);
	m.errors = json_object_new_array();
	json_object_array_add(m.errors, e);
	reply_response(q, &m, res->retried);
}

static void
chat_executed(const struct dc_qresult *res, void *arg)
{
	struct chat *q = arg;
	char detail[1024];
	int status;

	q->job = NULL;
	if (res->status != DC_OK && dc_result_failure(res, detail,
	    sizeof(detail)) == 0 && q->e != NULL &&
	    q->intent.kind == DC_NLQ_NONE && q->retry_count == 0) {
		/* the LLM's SQL failed: it gets one chance to correct it */
		nl_refused(q, "database", res->error);
		return;
	}
	q->r->cancel = NULL;
	if (res->status == DC_OK) {
		if (chat_answer_rows(q, res))
			return;		/* the summary call owns q now */
	} else if ((status = dc_result_failure(res, detail,
	    sizeof(detail))) != 0)
		dc_reply_error(q->r, status, "%s", detail);
	else if (q->e == NULL && res->status == DC_ETIMEOUT)
		/* direct SQL: DataChat's connector errors, as 400 */
		dc_reply_error(q->r, 400, "Query timeout (%ds)",
		    (q->r->w->cfg->statement_timeout + 999) / 1000);
	else if (q->e == NULL)
		dc_reply_error(q->r, 400, "Query execution failed: %s",
		    res->error);
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
	struct dc_jw *w;
	char *stmt, detail[256];
	int rc;

	if (q->dialect->guard(q->sql, strlen(q->sql), &v) != DC_OK) {
		if (q->e != NULL && q->intent.kind == DC_NLQ_NONE) {
			nl_refused(q, "guard", v.reason);
			return;
		}
		r->cancel = NULL;
		dc_reply_error(r, 400, "SQL Editor accepts read-only SQL only "
		    "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN). %s", v.reason);
		chat_free(q);
		return;
	}
	w = trace_open(q, "sql_guard", "admitted", "one read-only statement");
	dc_jw_object(w);
	dc_jw_key(w, "kind");
	dc_jw_string(w, v.kind == DC_SQL_EXPLAIN ? "explain" :
	    v.kind == DC_SQL_SHOW ? "show" : "select");
	dc_jw_object_end(w);
	trace_close(q);
	stmt = strndup(q->sql, v.len);	/* without a trailing ';' */
	if (stmt == NULL) {
		dc_reply_error(r, 500, "out of memory");
		chat_free(q);
		return;
	}
	q->exec_start_ms = dc_now_ms();
	dc_req_defer(r, chat_cancel, q);
	/* chat_executed may run before this returns: q is not ours after */
	rc = dc_pool_query(r->w->pool, e, DC_JOB_READ, stmt, 0, NULL,
	    chat_executed, q, &q->job);
	free(stmt);
	if (rc != DC_OK) {
		r->cancel = NULL;
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		dc_reply_error(r, rc, "%s", detail);
		chat_free(q);
	}
}

/* --- the natural-language pipeline --- */

static void
nl_fail(struct chat *q, int status, const char *detail)
{
	q->r->cancel = NULL;
	dc_reply_error(q->r, status, "%s", detail);
	chat_free(q);
}

static void
nl_reply(struct chat *q, struct resp *m)
{
	q->r->cancel = NULL;
	reply_response(q, m, 0);
	chat_free(q);
}

/* The LLM could not produce a statement we run: an in-band error. */
static void
nl_final_error(struct chat *q, const char *kind, const char *why)
{
	struct json_object *e;
	char answer[1024];
	struct resp m;

	snprintf(answer, sizeof(answer), "I could not answer this question: "
	    "the generated SQL %s: %s", strcmp(kind, "guard") == 0 ?
	    "was refused" : "failed", why);
	memset(&m, 0, sizeof(m));
	m.answer = strdup(answer);
	m.source = "error";
	e = json_object_new_object();
	json_object_object_add(e, "error_type", json_object_new_string(kind));
	json_object_object_add(e, "message", json_object_new_string(why));
	m.errors = json_object_new_array();
	json_object_array_add(m.errors, e);
	nl_reply(q, &m);
}

static void	 nl_ask(struct chat *q, const char *prompt);

/* The statement was refused (guard) or failed (database): correct once. */
static void
nl_refused(struct chat *q, const char *kind, const char *why)
{
	struct json_object *d = json_object_new_object();
	char *prompt = NULL;

	json_object_object_add(d, "error", json_object_new_string(why));
	if (q->retry_count > 0) {
		trace_add(q, strcmp(kind, "guard") == 0 ? "sql_guard" :
		    "execute", "error", "the corrected SQL failed too", d);
		nl_final_error(q, kind, why);
		return;
	}
	q->retry_count++;
	trace_add(q, "correct", "retry", strcmp(kind, "guard") == 0 ?
	    "the guard refused the SQL: asking the LLM for a correction" :
	    "the database refused the SQL: asking the LLM for a correction",
	    d);
	if (asprintf(&prompt, "%s\nYour previous SQL:\n```sql\n%s\n```\n%s "
	    "with this error:\n%s\nWrite a corrected statement.\n", q->prompt,
	    q->sql != NULL ? q->sql : "", strcmp(kind, "guard") == 0 ?
	    "was refused" : "failed", why) < 0) {
		nl_fail(q, 500, "out of memory");
		return;
	}
	nl_ask(q, prompt);
	free(prompt);
}

static int
llm_status(int status)
{
	switch (status) {
	case DC_EUNAVAIL:	return 502;
	case DC_ETIMEOUT:	return 504;
	case DC_EINVAL:		return 503;
	default:		return 500;
	}
}

static void
nl_llm_replied(const struct dc_llm_reply *rep, void *arg)
{
	struct chat *q = arg;
	struct json_object *d;
	struct dc_worker *w = q->r->w;
	char detail[600];
	char *sql;

	q->call = NULL;
	q->llm_calls++;
	__atomic_add_fetch(&w->stats->llm_latency_ms_sum,
	    (uint64_t)rep->latency_ms, __ATOMIC_RELAXED);
	if (rep->status != DC_OK) {
		__atomic_add_fetch(&w->stats->llm_errors, 1, __ATOMIC_RELAXED);
		snprintf(detail, sizeof(detail), "LLM provider error (%s): %s",
		    dc_llm_provider(w->llm), rep->error);
		nl_fail(q, llm_status(rep->status), detail);
		return;
	}
	d = json_object_new_object();
	json_object_object_add(d, "provider",
	    json_object_new_string(dc_llm_provider(w->llm)));
	json_object_object_add(d, "model",
	    json_object_new_string(dc_llm_model(w->llm)));
	json_object_object_add(d, "latency_ms",
	    json_object_new_int64(rep->latency_ms));
	trace_add(q, "llm", "generated", "the LLM wrote SQL from the live "
	    "schema", d);
	sql = dc_nlq_extract_sql(rep->text);
	free(q->sql);
	q->sql = sql;
	if (sql == NULL) {
		nl_refused(q, "guard", "the LLM reply contained no SQL");
		return;
	}
	chat_run_sql(q, q->e);
}

static void
nl_ask(struct chat *q, const char *prompt)
{
	struct dc_worker *w = q->r->w;
	char *system = dc_prompt_system(q->dialect->name,
	    q->dialect->prompt_rules);
	int rc;

	if (system == NULL) {
		nl_fail(q, 500, "out of memory");
		return;
	}
	rc = dc_llm_complete(w->llm, system, prompt, nl_llm_replied, q,
	    &q->call);
	free(system);
	if (rc != DC_OK)
		nl_fail(q, w->llm == NULL ? 503 : 500, "cannot start the LLM "
		    "call");
}

static void
nl_summary_replied(const struct dc_llm_reply *rep, void *arg)
{
	struct chat *q = arg;
	struct resp *m = q->pending;
	char *text;

	q->call = NULL;
	q->llm_calls++;
	if (rep->status == DC_OK && rep->text != NULL && rep->text[0] != '\0' &&
	    (text = strdup(rep->text)) != NULL) {
		free(m->answer);
		m->answer = text;
		trace_add(q, "synthesize", "llm", "synthesize_simple_sql asked "
		    "for an LLM-written answer", NULL);
	} else
		trace_add(q, "synthesize", "skipped", rep->error != NULL ?
		    rep->error : "empty reply", NULL);
	nl_reply(q, m);
}

static void
nl_summarize(struct chat *q, const struct dc_rows *res, int nrows)
{
	struct json_object *rows = dc_result_rows(res, nrows < 20 ? nrows : 20);
	char *prompt = NULL;
	int rc;

	if (rows == NULL || asprintf(&prompt, "Question: %s\nSQL: %s\n"
	    "Result (first rows as JSON): %s\nAnswer the question in one or "
	    "two sentences from this result.", q->message, q->sql,
	    json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN)) < 0)
		prompt = NULL;
	json_object_put(rows);
	dc_req_defer(q->r, chat_cancel, q);
	rc = prompt != NULL ? dc_llm_complete(q->r->w->llm, "You summarise "
	    "query results briefly and precisely.", prompt, nl_summary_replied,
	    q, &q->call) : DC_ENOMEM;
	free(prompt);
	if (rc != DC_OK)
		nl_reply(q, q->pending);
}

/* "name" or "schema.name", case-insensitively. */
static const struct dc_schema_table *
find_table(const struct dc_schema *s, const char *want)
{
	char full[300];
	int i;

	for (i = 0; i < s->ntables; i++) {
		snprintf(full, sizeof(full), "%s.%s", s->tables[i].schema,
		    s->tables[i].name);
		if (strcasecmp(s->tables[i].name, want) == 0 ||
		    strcasecmp(full, want) == 0)
			return &s->tables[i];
	}
	return NULL;
}

/* A table as the dialect names it: without its schema when default. */
static void
table_name(const struct dc_dialect *d, const struct dc_schema_table *t,
    char *buf, size_t sz)
{
	if (d->default_schema == NULL ||
	    strcmp(t->schema, d->default_schema) == 0)
		snprintf(buf, sz, "%s", t->name);
	else
		snprintf(buf, sz, "%s.%s", t->schema, t->name);
}

/* A table the question names does not exist: ask, do not fail. */
static void
nl_clarify(struct chat *q, const struct dc_schema *s)
{
	struct json_object *qs;
	struct resp m;
	char answer[1024], name[300], line[400];
	const char *want = q->intent.table;
	const char *dot = strrchr(want, '.');
	int i, best[3] = { -1, -1, -1 }, dist[3] = { 1 << 30, 1 << 30, 1 << 30 };
	int d, k, limit = (int)strlen(dot != NULL ? dot + 1 : want) / 2 + 2;
	size_t off;

	for (i = 0; i < s->ntables; i++) {
		d = dc_nlq_distance(dot != NULL ? dot + 1 : want,
		    s->tables[i].name);
		if (strcasestr(s->tables[i].name, dot != NULL ? dot + 1 : want) ||
		    strcasestr(dot != NULL ? dot + 1 : want, s->tables[i].name))
			d = d < 2 ? d : 2;
		for (k = 0; k < 3; k++)
			if (d < dist[k]) {
				memmove(&dist[k + 1], &dist[k],
				    sizeof(int) * (size_t)(2 - k));
				memmove(&best[k + 1], &best[k],
				    sizeof(int) * (size_t)(2 - k));
				dist[k] = d;
				best[k] = i;
				break;
			}
	}
	qs = json_object_new_array();
	off = (size_t)snprintf(answer, sizeof(answer), "I could not find a "
	    "table named \"%s\" in this database.", want);
	for (k = 0; k < 3; k++) {
		if (best[k] < 0 || (dist[k] > limit && k > 0))
			continue;
		table_name(q->dialect, &s->tables[best[k]], name,
		    sizeof(name));
		snprintf(line, sizeof(line), "Did you mean %s?", name);
		json_object_array_add(qs, json_object_new_string(line));
		if (off < sizeof(answer))
			off += (size_t)snprintf(answer + off, sizeof(answer) -
			    off, "%s%s", k == 0 ? " Did you mean: " : ", ",
			    name);
	}
	if (json_object_array_length(qs) > 0 && off < sizeof(answer))
		snprintf(answer + off, sizeof(answer) - off, "?");
	trace_add(q, "catalog", "clarify", "the question names a table that "
	    "does not exist", NULL);
	memset(&m, 0, sizeof(m));
	m.answer = strdup(answer);
	m.source = "clarification";
	m.clarifying = qs;
	nl_reply(q, &m);
}

/* An answer read from the schema snapshot: no SQL ran, no LLM call. */
static void
catalog_reply(struct chat *q, const char *decision, const char *answer,
    struct json_object *data, int nrows)
{
	struct resp m;

	trace_add(q, "catalog", decision, "answered from the target's "
	    "catalog, no LLM call", NULL);
	memset(&m, 0, sizeof(m));
	m.answer = strdup(answer);
	m.source = "context";	/* from the catalog: no SQL ran */
	m.confident = 1;
	m.data = data;
	m.nrows = nrows;
	m.with_rows = 1;
	nl_reply(q, &m);
}

static void
nl_list_tables(struct chat *q, const struct dc_schema *s)
{
	struct json_object *data, *sc, *tb, *ty, *rc;
	char answer[2048], name[300];
	size_t off;
	int i;

	data = json_object_new_object();
	sc = json_object_new_array();
	tb = json_object_new_array();
	ty = json_object_new_array();
	rc = json_object_new_array();
	off = (size_t)snprintf(answer, sizeof(answer), "%d table%s",
	    s->ntables, s->ntables == 1 ? "" : "s");
	for (i = 0; i < s->ntables; i++) {
		const struct dc_schema_table *t = &s->tables[i];

		json_object_array_add(sc, json_object_new_string(t->schema));
		json_object_array_add(tb, json_object_new_string(t->name));
		json_object_array_add(ty, json_object_new_string(t->table_type));
		json_object_array_add(rc, t->row_count >= 0 ?
		    json_object_new_int64(t->row_count) : NULL);
		table_name(q->dialect, t, name, sizeof(name));
		if (i < 30 && off < sizeof(answer))
			off += (size_t)snprintf(answer + off, sizeof(answer) -
			    off, "%s%s", i == 0 ? ": " : ", ", name);
	}
	if (s->ntables > 30 && off < sizeof(answer))
		off += (size_t)snprintf(answer + off, sizeof(answer) - off,
		    " and %d more", s->ntables - 30);
	if (off < sizeof(answer))
		snprintf(answer + off, sizeof(answer) - off, ".");
	json_object_object_add(data, "schema", sc);
	json_object_object_add(data, "table", tb);
	json_object_object_add(data, "table_type", ty);
	json_object_object_add(data, "row_count", rc);
	catalog_reply(q, "list_tables", answer, data, s->ntables);
}

static void
nl_columns(struct chat *q, const struct dc_schema_table *t)
{
	struct json_object *data, *nm, *ty, *nu, *pk;
	char answer[2048], name[300];
	size_t off;
	int i;

	table_name(q->dialect, t, name, sizeof(name));
	data = json_object_new_object();
	nm = json_object_new_array();
	ty = json_object_new_array();
	nu = json_object_new_array();
	pk = json_object_new_array();
	off = (size_t)snprintf(answer, sizeof(answer), "%s has %d column%s",
	    name, t->ncols, t->ncols == 1 ? "" : "s");
	for (i = 0; i < t->ncols; i++) {
		const struct dc_schema_column *c = &t->cols[i];

		json_object_array_add(nm, json_object_new_string(c->name));
		json_object_array_add(ty, json_object_new_string(c->data_type));
		json_object_array_add(nu, json_object_new_boolean(c->nullable));
		json_object_array_add(pk, json_object_new_boolean(c->is_pk));
		if (off < sizeof(answer))
			off += (size_t)snprintf(answer + off, sizeof(answer) -
			    off, "%s%s (%s)", i == 0 ? ": " : ", ", c->name,
			    c->data_type);
	}
	if (off < sizeof(answer))
		snprintf(answer + off, sizeof(answer) - off, ".");
	json_object_object_add(data, "column", nm);
	json_object_object_add(data, "type", ty);
	json_object_object_add(data, "nullable", nu);
	json_object_object_add(data, "primary_key", pk);
	catalog_reply(q, "list_columns", answer, data, t->ncols);
}

/* Row counts and samples: a query we write, through the same guard. */
static void
nl_catalog_query(struct chat *q, const struct dc_schema_table *t)
{
	const struct dc_dialect *d = q->dialect;
	char *sql = NULL, table[2 * DC_NAME_MAX + 8];
	int n;

	if (!dc_sql_ident_ok(t->schema) || !dc_sql_ident_ok(t->name) ||
	    dc_dialect_table(d, t->schema, t->name, table,
	    sizeof(table)) != DC_OK) {
		nl_fail(q, 400, "the table name cannot be quoted safely");
		return;
	}
	if (q->intent.kind == DC_NLQ_ROW_COUNT)
		n = asprintf(&sql, d->count_sql, table);
	else
		n = asprintf(&sql, d->sample_sql, table, q->intent.limit > 0 ?
		    q->intent.limit : 5);
	if (n < 0) {
		nl_fail(q, 500, "out of memory");
		return;
	}
	free(q->sql);
	q->sql = sql;
	q->source = "sql";
	trace_add(q, "catalog", q->intent.kind == DC_NLQ_ROW_COUNT ?
	    "row_count" : "sample_rows", "a catalog question: the query is "
	    "written by datachatd, no LLM call", NULL);
	chat_run_sql(q, q->e);
}

static void
nl_schema_ready(const struct dc_schema *s, const struct dc_qresult *err,
    void *arg)
{
	struct chat *q = arg;
	const struct dc_schema_table *t;
	const char *why;
	char detail[1024];
	int status, shown = 0;

	q->swait = NULL;
	if (s == NULL) {
		status = dc_result_failure(err, detail, sizeof(detail));
		if (status == 0) {
			status = 502;
			snprintf(detail, sizeof(detail), "cannot read the target's "
			    "schema: %s", err->error);
		}
		nl_fail(q, status, detail);
		return;
	}
	switch (q->intent.kind) {
	case DC_NLQ_LIST_TABLES:
		nl_list_tables(q, s);
		return;
	case DC_NLQ_COLUMNS:
	case DC_NLQ_ROW_COUNT:
	case DC_NLQ_SAMPLE:
		if ((t = find_table(s, q->intent.table)) == NULL) {
			nl_clarify(q, s);
			return;
		}
		if (q->intent.kind == DC_NLQ_COLUMNS)
			nl_columns(q, t);
		else
			nl_catalog_query(q, t);
		return;
	}
	if (!dc_llm_configured(q->r->w->llm, &why)) {
		nl_fail(q, 503, why);
		return;
	}
	q->prompt = dc_prompt_user(s, q->message, NULL, NULL,
	    DC_PROMPT_SCHEMA_TOKENS * DC_PROMPT_CHARS_PER_TOKEN, &shown);
	if (q->prompt == NULL) {
		nl_fail(q, 500, "out of memory");
		return;
	}
	{
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "tables_in_prompt",
		    json_object_new_int(shown));
		json_object_object_add(d, "tables_in_schema",
		    json_object_new_int(s->ntables));
		json_object_object_add(d, "dialect",
		    json_object_new_string(q->dbtype));
		trace_add(q, "prompt", "live_schema", "schema ranked by the "
		    "question and trimmed to the prompt budget", d);
	}
	nl_ask(q, q->prompt);
}

static void
chat_natural_language(struct chat *q, const struct dc_entry *e)
{
	struct dc_req *r = q->r;
	const char *why;
	static const char *const kinds[] = { "none", "list_tables", "columns",
	    "row_count", "sample_rows" };
	int rc;

	q->e = malloc(sizeof(*q->e));
	if (q->e == NULL) {
		nl_fail(q, 500, "out of memory");
		return;
	}
	memcpy(q->e, e, sizeof(*e));
	dc_nlq_classify(q->message, &q->intent);
	/* DataPoints are DataChat's; datachatd always reads the live schema */
	trace_add(q, "context", "live_schema", "live schema mode: no "
	    "DataPoints are used; the target's current catalog is read", NULL);
	if (q->intent.kind != DC_NLQ_NONE) {
		struct json_object *d = json_object_new_object();

		if (q->intent.table[0] != '\0')
			json_object_object_add(d, "table",
			    json_object_new_string(q->intent.table));
		trace_add(q, "classify", kinds[q->intent.kind], "a catalog "
		    "question, answered without an LLM", d);
	} else {
		trace_add(q, "classify", "llm", "not a catalog question", NULL);
		if (!dc_llm_configured(r->w->llm, &why)) {
			nl_fail(q, 503, why);
			return;
		}
	}
	dc_req_defer(r, chat_cancel, q);
	/* the callback may run, and finish q, before this returns */
	rc = dc_schema_get(r->w, q->e, nl_schema_ready, q, &q->swait);
	if (rc != DC_OK)
		nl_fail(q, 500, "cannot read the target's schema");
}

/* DataChat's ChatRequest and its Message (models/api.py). */
static const struct dc_field message_fields[] = {
	{ .name = "role", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = "content", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = NULL }
};
static const struct dc_model message_model = { "Message", message_fields };

static const char *const exec_modes[] = { "natural_language", "direct_sql",
    NULL };
static const char *const workflow_modes[] = { "auto", "finance_variance_v1",
    NULL };

enum { R_MESSAGE, R_MODE, R_SQL, R_CONV, R_TARGET, R_HISTORY, R_SUMMARY,
    R_STATE, R_SYNTH, R_WORKFLOW };
static const struct dc_field chat_fields[] = {
	{ .name = "message", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1 },
	{ .name = "execution_mode", .type = DC_FT_LITERAL,
	    .dflt = "natural_language", .choices = exec_modes },
	{ .name = "sql", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "conversation_id", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .max_length = CONV_ID_MAX },
	{ .name = "target_database", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "conversation_history", .type = DC_FT_LIST_MODEL,
	    .sub = &message_model },
	{ .name = "session_summary", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "session_state", .type = DC_FT_DICT, .flags = DC_F_NULLABLE },
	{ .name = "synthesize_simple_sql", .type = DC_FT_BOOL,
	    .flags = DC_F_NULLABLE },
	{ .name = "workflow_mode", .type = DC_FT_LITERAL,
	    .flags = DC_F_NULLABLE, .dflt = "auto", .choices = workflow_modes },
	{ .name = NULL }
};
static const struct dc_model chat_model = { "ChatRequest", chat_fields };

/* A copy of s without the whitespace Python's str.strip() removes. */
static char *
strip_dup(const char *s)
{
	size_t n;

	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || (s[n - 1] >= '\t' &&
	    s[n - 1] <= '\r')))
		n--;
	return strndup(s, n);
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
	static struct dc_entry entry;
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL, *target;
	const char *message, *sql = NULL, *conv;
	const struct dc_driver *drv;
	struct dc_resolve_err err;
	struct dc_entry *e = NULL;
	struct chat *q = NULL;
	size_t n;
	int direct, synthesize, rc;

	if (dc_req_model(r, &chat_model, 0, v, &body) != DC_OK)
		return;
	message = v[R_MESSAGE].s;
	direct = strcmp(v[R_MODE].s, "direct_sql") == 0;
	conv = v[R_CONV].null ? NULL : v[R_CONV].s;
	synthesize = !v[R_SYNTH].null && v[R_SYNTH].i;
	target = v[R_TARGET].null ? NULL : v[R_TARGET].v;
	if (direct) {
		/* DataChat: (sql or message).strip() */
		if (!v[R_SQL].null && v[R_SQL].slen > 0) {
			sql = v[R_SQL].s;
			n = v[R_SQL].slen;
		} else {
			sql = message;
			n = v[R_MESSAGE].slen;
		}
		if (strlen(sql) != n) {
			/* the guard reads C strings: never half a statement */
			dc_reply_error(r, 400, "SQL Editor accepts read-only SQL "
			    "only (SELECT/WITH/SHOW/DESCRIBE/EXPLAIN).");
			goto out;
		}
	}

	/*
	 * stage 1: which database.  The entry is only read before chat()
	 * returns (the stages copy what they keep), and requests are handled
	 * one at a time: one buffer serves them all, wiped after each.
	 */
	e = &entry;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	if ((rc = dc_target_resolve(r->w, target, e, &err)) != DC_OK) {
		if (rc == DC_ENOENT)
			dc_reply_not_initialized(r);
		else
			dc_reply_error(r, err.status, "%s", err.detail);
		goto out;
	}
	if ((drv = dc_driver_find(e->type)) == NULL) {
		rc = dc_result_submit_failure(DC_EINVAL, err.detail,
		    sizeof(err.detail));
		dc_reply_error(r, rc, "%s", err.detail);
		goto out;
	}
	q->dialect = drv->dialect;
	q->r = r;
	q->mode = direct ? "direct_sql" : "natural_language";
	dc_jw_init(&q->trace);
	dc_jw_array(&q->trace);
	dc_uuid_format(e->id, q->target);
	dc_strlcpy(q->dbtype, e->type, sizeof(q->dbtype));
	q->conversation_id = conv != NULL && conv[0] != '\0' ? strdup(conv) :
	    new_conversation_id();
	q->sql = direct ? strip_dup(sql) : NULL;
	q->message = message != NULL ? strdup(message) : NULL;
	q->session_summary = v[R_SUMMARY].null ? NULL :
	    strdup(v[R_SUMMARY].s);
	q->session_state = v[R_STATE].null ? NULL :
	    strdup(json_object_to_json_string_ext(v[R_STATE].v,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	q->synthesize = synthesize;
	if (q->trace.err || q->conversation_id == NULL ||
	    (direct && q->sql == NULL) || (!v[R_SUMMARY].null &&
	    q->session_summary == NULL) || (!v[R_STATE].null &&
	    q->session_state == NULL)) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	if (direct && q->sql[0] == '\0') {
		dc_reply_error(r, 400, "SQL mode requires a non-empty SQL query.");
		goto out;
	}
	{
		struct dc_jw *w = trace_open(q, "routing", "target",
		    target != NULL && !json_object_is_type(target,
		    json_type_null) ? "target_database" :
		    dc_target_is_env(e->id) ? "environment DATABASE_URL" :
		    "registry default");

		dc_jw_object(w);
		dc_jw_key(w, "target_database");
		dc_jw_string(w, q->target);
		dc_jw_key(w, "database_type");
		dc_jw_string(w, q->dbtype);
		dc_jw_object_end(w);
		trace_close(q);
	}
	trace_add(q, "execution_mode", q->mode, direct ?
	    "user_selected_sql_editor_mode" : "natural-language question", NULL);

	/* stage 2: where the SQL comes from; 3 and 4: guard and run it */
	if (direct)
		chat_run_sql(q, e);
	else
		chat_natural_language(q, e);
	q = NULL;	/* owned by the stages now */
out:
	if (q != NULL)
		chat_free(q);
	if (e != NULL)
		dc_explicit_bzero(e->url, sizeof(e->url));
	json_object_put(body);
}

const struct dc_route dc_routes_chat[] = {
	{ "POST", "/api/v1/chat", chat, DC_ROLE_QUERY },
	{ NULL, NULL, NULL, 0 }
};
