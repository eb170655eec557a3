/*
 * pipeline.c - the chat pipeline (chat.h): a question about one target
 * database, answered in DataChat's ChatResponse shape, with DataChat's
 * progress events on the way.
 *
 * Every question goes through the same stages:
 *
 *   [intent gate] -> resolve target -> SQL source -> guard -> execute
 *   -> ChatResponse
 *
 * A natural-language question meets DataChat's intent gate first
 * (intent.h): goodbyes, help, greetings, out-of-scope requests and bare
 * acknowledgements are answered there, before a target or an LLM is
 * chosen, and so is a catalog question that names no table (it asks for
 * one); a reply to such a question is first read together with the
 * question it answers.
 *
 * The SQL source is the request itself for execution_mode "direct_sql",
 * or the natural-language pipeline otherwise: a catalog question (nlq.h)
 * is answered by DataChat's catalog statement for the table the schema
 * snapshot (catalog.h) or, for a name it lacks, a fresher snapshot or the
 * catalog itself finds, without an LLM; any other question goes to the
 * LLM (llm.h) with the dialect and the live schema (prompt.h), and a
 * statement the guard or the database refuses goes back to it once with
 * the reason.
 * Whatever wrote the SQL, chat_run_sql() guards it (sqlcheck.h: one
 * read-only statement; for PostgreSQL its parser and the function policy
 * from the target's catalog) and runs it read-only through the worker's
 * target pool, and the rows become the answer; with synthesize_simple_sql the
 * LLM writes the answer text, streamed when the consumer takes events.
 *
 * Each stage is announced the way DataChat's agents announce theirs
 * (agent_start / agent_complete with DataChat's agent names, a thinking
 * note after each), and the answer text goes out as answer_chunk events
 * before the complete one.  A consumer without an event callback (the
 * REST route) makes none of that cost anything.
 *
 * Every answer carries the session_summary and session_state that follow
 * from it (convo.h), and a natural-language question that needs the LLM
 * is asked with the conversation so far: the turns the store remembers
 * for its conversation_id, else what the client sent.  The turn is
 * written to the store before the answer goes out, so the next question
 * finds it on any worker or instance.
 *
 * A run ends exactly once, in chat_answer() or chat_fail(), which report
 * to the consumer and free the run; dc_chat_cancel() ends it silently.
 *
 * Failures: a statement the guard refuses is 400 with DataChat's sentence
 * and the reason; for direct SQL, one the database refuses is 400 with
 * DataChat's words (query_error on the WebSocket), for a question the LLM
 * gets one correction and then the answer is in-band, answer_source
 * "error"; a target that cannot be reached is 503 (502 when the
 * connection broke twice); routing errors come from dc_target_resolve(),
 * no target at all is DataChat's system_not_initialized.  Each failure
 * also carries the error code and close code DataChat's /ws/chat uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "chat.h"
#include "convo.h"
#include "dc.h"
#include "driver.h"
#include "intent.h"
#include "jsonw.h"
#include "llm.h"
#include "log.h"
#include "nlq.h"
#include "pool.h"
#include "prompt.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "sqlcheck.h"
#include "sqlguard.h"
#include "system.h"
#include "target.h"
#include "util.h"
#include "viz.h"
#include "worker.h"

#define ANSWER_COLS	8	/* column names quoted in the answer text */

/* DataChat's close codes for its error events (websocket.py). */
#define CLOSE_POLICY	1008
#define CLOSE_INTERNAL	1011

/* The agents DataChat's pipeline names, for the steps we share. */
#define AGENT_ANALYZER	"QueryAnalyzerAgent"
#define AGENT_CONTEXT	"ContextAgent"
#define AGENT_SQL	"SQLAgent"
#define AGENT_VALIDATOR	"ValidatorAgent"
#define AGENT_EXECUTOR	"ExecutorAgent"
#define AGENT_SYNTHESIS	"ResponseSynthesisAgent"

/*
 * A ChatResponse until it is written (chat_answer): the fields that
 * vary; the rest are the same in every answer.
 */
struct resp {
	char		*answer;	/* owned */
	const char	*source;	/* answer_source */
	int		 confident;	/* answer_confidence 1.0, else 0.0 */
	const char	*confidence;	/* or this, as JSON, with no live
					   schema notice: the intent gate's */
	const struct dc_rows *res;	/* data: res's first nrows rows */
	struct dc_result_cols cols;	/* res's column names (owned) */
	struct json_object *data;	/* or this (owned); neither: null */
	const char	*viz;		/* with data: res's hint (resp_viz) */
	int		 nrows;		/* row_count, when with_rows */
	int		 with_rows;
	int		 truncated;	/* truncated, when with_truncated */
	int		 with_truncated;
	int		 streamed;	/* answer already sent as chunks */
	struct json_object *clarifying;	/* array (owned); NULL: [] */
	struct json_object *errors;	/* validation_errors, as above */
	struct json_object *warnings;	/* validation_warnings, as above */
};

/* One question between its stages; freed when it ends. */
struct dc_chat {
	struct dc_worker *w;
	const struct dc_chat_sink *sink;
	void		*sink_arg;
	uint64_t	 start_ms;
	struct dc_job	*job;
	const struct dc_dialect *dialect;	/* the target's (driver.h) */
	char		 target[DC_UUID_STR_LEN + 1];
	char		 dbtype[DC_TYPE_MAX];
	char		*sql;
	char		*conversation_id;
	const char	*mode;		/* "direct_sql" or "natural_language" */
	uint64_t	 exec_start_ms;
	uint64_t	 agent_ms;	/* when the current agent started */
	struct dc_jw	 trace;		/* decision_trace, an open array */
	struct dc_jb	 jb;		/* the trace's and the events' json-c
					   details: a failed one fails the
					   answer (out of memory) */
	char		*session_summary;	/* as the request gave them */
	struct json_object *session_state;

	/* conversation memory (convo.h) */
	struct json_object *history;	/* the request's conversation_history */
	struct json_object *turns;	/* the turns before this one */
	char		*context;	/* the prompt's conversation so far */
	char		*resolved;	/* the question read as a follow-up */
	char		*rank_hint;	/* what it follows up on */
	struct dc_convo_op *mem;	/* a load or a save in flight */
	int		 client_conv;	/* the client named the conversation */
	int		 remember;	/* store this turn */
	char		*reply;		/* the answer, while the turn is saved */
	size_t		 reply_len;

	/* natural-language questions */
	int		 nl;		/* not direct SQL */
	struct dc_entry	*e;		/* the target, for the async steps */
	char		*message;
	struct dc_nlq_intent intent;
	char		 shown[2 * DC_NLQ_NAME_MAX];	/* the catalog answer's
					   table, as its text names it */
	int		 rechecked;	/* asked for a fresher snapshot */
	int		 looked_up;	/* asked the catalog for the name */
	struct dc_catalog_wait *swait;
	struct dc_sqlcheck_wait *check;	/* the SQL being judged */
	struct dc_llm_call *call;
	char		*prompt;	/* user prompt of the first round */
	const char	*source;	/* answer_source of a row answer */
	int		 llm_calls;
	int		 retry_count;
	int		 synthesize;	/* synthesize_simple_sql */
	int		 retried;	/* the query ran on a fresh connection */
	struct resp	*pending;	/* response awaiting its summary */
};

static void	 chat_run_sql(struct dc_chat *q, const struct dc_entry *e);
static void	 nl_refused(struct dc_chat *q, const char *kind,
		     const char *why);
static void	 nl_summarize(struct dc_chat *q, const struct dc_rows *res,
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
chat_free(struct dc_chat *q)
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
	json_object_put(q->session_state);
	json_object_put(q->history);
	json_object_put(q->turns);
	free(q->context);
	free(q->resolved);
	free(q->rank_hint);
	free(q->reply);
	dc_jw_free(&q->trace);
	free(q);
}

void
dc_chat_cancel(struct dc_chat *q)
{
	if (q->job != NULL)
		dc_pool_cancel(q->job);
	if (q->swait != NULL)
		dc_catalog_cancel(q->swait);
	if (q->check != NULL)
		dc_sql_check_cancel(q->check);
	if (q->call != NULL)
		dc_llm_cancel(q->call);
	if (q->mem != NULL)
		dc_convo_cancel(q->mem);
	chat_free(q);
}

/* --- events, as DataChat's /ws/chat streams them --- */

/* Start an event object: {"event":name ... */
static void
ev_open(struct dc_jw *w, const char *name)
{
	dc_jw_init(w);
	dc_jw_object(w);
	dc_jw_key(w, "event");
	dc_jw_string(w, name);
}

/* ... "timestamp":"..."}, and hand it to the consumer. */
static void
ev_send(struct dc_chat *q, struct dc_jw *w, int stamp)
{
	char ts[40];

	if (stamp) {
		dc_iso8601((int64_t)dc_wall_ms() * 1000, ts, sizeof(ts));
		dc_jw_key(w, "timestamp");
		dc_jw_string(w, ts);
	}
	dc_jw_object_end(w);
	if (!w->err)
		q->sink->event(q->sink_arg, w->buf, w->len);
	dc_jw_free(w);
}

static void
thinking(struct dc_chat *q, const char *note)
{
	struct dc_jw w;

	if (q->sink->event == NULL || note == NULL)
		return;
	ev_open(&w, "thinking");
	dc_jw_key(&w, "note");
	dc_jw_string(&w, note);
	ev_send(q, &w, 0);
}

/* A step begins; note is the thinking line that follows (or NULL). */
static void
agent_start(struct dc_chat *q, const char *agent, const char *message,
    const char *note)
{
	struct dc_jw w;

	q->agent_ms = dc_now_ms();
	if (q->sink->event == NULL)
		return;
	ev_open(&w, "agent_start");
	dc_jw_key(&w, "agent");
	dc_jw_string(&w, agent);
	dc_jw_key(&w, "message");
	dc_jw_string(&w, message);
	ev_send(q, &w, 1);
	thinking(q, note);
}

/* A step ended; data (taken, NULL: {}) says what it found. */
/*
 * A new object or array for an event's or the trace's details, built
 * with dc_jb_* on q->jb: running out of memory anywhere in them fails
 * the answer (chat_answer) rather than dropping a piece.
 */
static struct json_object *
new_obj(struct dc_chat *q)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		q->jb.failed = 1;
	return o;
}

static struct json_object *
new_arr(struct dc_chat *q)
{
	struct json_object *a = json_object_new_array();

	if (a == NULL)
		q->jb.failed = 1;
	return a;
}

static void
agent_complete(struct dc_chat *q, const char *agent, const char *message,
    struct json_object *data, const char *note)
{
	struct dc_jw w;
	char ms[32];

	if (q->sink->event == NULL) {
		json_object_put(data);
		return;
	}
	ev_open(&w, "agent_complete");
	dc_jw_key(&w, "agent");
	dc_jw_string(&w, agent);
	dc_jw_key(&w, "message");
	dc_jw_string(&w, message);
	dc_jw_key(&w, "data");
	if (data != NULL)
		dc_jw_json(&w, data);
	else
		dc_jw_raw(&w, "{}", 2);
	snprintf(ms, sizeof(ms), "%.1f", (double)(dc_now_ms() - q->agent_ms));
	dc_jw_key(&w, "duration_ms");
	dc_jw_raw(&w, ms, strlen(ms));
	ev_send(q, &w, 1);
	json_object_put(data);
	thinking(q, note);
}

static void
answer_chunk(struct dc_chat *q, const char *text, size_t len)
{
	struct dc_jw w;

	if (q->sink->event == NULL || len == 0)
		return;
	ev_open(&w, "answer_chunk");
	dc_jw_key(&w, "chunk");
	dc_jw_string_len(&w, text, len);
	ev_send(q, &w, 0);
}

/* --- the end of a run --- */

/* No answer: tell the consumer, free the run. */
static void DC_PRINTF(5, 6)
chat_fail(struct dc_chat *q, int status, const char *error, int close,
    const char *fmt, ...)
{
	struct dc_chat_failure f;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f.status = status;
	f.error = error;
	f.close = close;
	f.message = msg;
	f.setup = 0;
	q->sink->fail(q->sink_arg, &f);
	chat_free(q);
}

/* A failure of the gateway or an upstream, by its HTTP status. */
static void
chat_fail_status(struct dc_chat *q, int status, const char *detail)
{
	if (status == 500)
		chat_fail(q, status, "internal_error", CLOSE_INTERNAL, "%s",
		    detail);
	else if (status >= 500)
		chat_fail(q, status, "service_unavailable", CLOSE_INTERNAL,
		    "%s", detail);
	else if (status == 404)
		chat_fail(q, status, "invalid_target_database", CLOSE_POLICY,
		    "%s", detail);
	else
		chat_fail(q, status, "validation_error", CLOSE_POLICY, "%s",
		    detail);
}

/*
 * A decision_trace entry, written as it happens: trace_open() writes up
 * to "details", the caller writes the details object, trace_close() ends
 * the entry.  trace_add() does all three with details from json-c (NULL:
 * {}), and takes them.
 */
static struct dc_jw *
trace_open(struct dc_chat *q, const char *stage, const char *decision,
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
trace_close(struct dc_chat *q)
{
	dc_jw_object_end(&q->trace);
}

static void
trace_add(struct dc_chat *q, const char *stage, const char *decision,
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
direct_answer_text(const struct dc_qresult *res, int nrows)
{
	char buf[192];

	snprintf(buf, sizeof(buf), "Executed SQL query successfully. Returned "
	    "%d row(s).%s", nrows, !res->truncated ? "" : res->cut_bytes ?
	    " The statement returned more data; only these rows are shown "
	    "(max_result_bytes)." : " The statement returned more rows; only "
	    "these are shown (max_rows).");
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
nl_answer_text(struct dc_chat *q, const struct dc_rows *res,
    const struct dc_result_cols *c, int nrows, int truncated)
{
	char buf[1024], names[10][2 * DC_NLQ_NAME_MAX];
	const char *np[10];
	size_t o = 0;
	int i;

	if (q->intent.kind != DC_NLQ_NONE) {
		/* DataChat's executor texts for its catalog statements */
		for (i = 0; i < nrows && i < 10; i++) {
			if (q->intent.kind == DC_NLQ_LIST_TABLES && res->ncols >= 2)
				snprintf(names[i], sizeof(names[i]), "%s.%s",
				    cell_text(res, i, 0), cell_text(res, i, 1));
			else if (res->ncols >= 3)
				snprintf(names[i], sizeof(names[i]), "%s",
				    cell_text(res, i, 2));
			else
				names[i][0] = '\0';
			np[i] = names[i];
		}
		return dc_nlq_answer(q->intent.kind, q->shown, nrows, np, nrows,
		    nrows > 0 && res->ncols > 0 ? cell_text(res, 0, 0) : NULL);
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
 * reads it), arrays as lists, everything else as objects that are not
 * numbers.
 */
static int
column_numeric(const struct dc_rows *res, int col, int nrows)
{
	const char *v;
	int i, text;

	if (res->cols[col].flags & DC_COL_ARRAY)
		return 0;	/* a list */
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

	if (m->viz != NULL)
		return m->viz;
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

/* The turn was stored (or could not be): now the answer goes out. */
static void
chat_saved(const char *error, void *arg)
{
	struct dc_chat *q = arg;

	q->mem = NULL;
	if (error != NULL)
		log_warn("conversation %s: the turn was not remembered: %s",
		    q->conversation_id, error);
	q->sink->complete(q->sink_arg, q->reply, q->reply_len);
	chat_free(q);
}

/* The column names of an answer's result, borrowed from m. */
static int
resp_columns(const struct resp *m, const char **cols, int max)
{
	int n = 0;

	if (m->res != NULL) {
		for (n = 0; n < m->cols.n && n < max; n++)
			cols[n] = m->cols.names[n];
		return n;
	}
	if (m->data != NULL && json_object_is_type(m->data, json_type_object)) {
		json_object_object_foreach(m->data, k, v) {
			(void)v;
			if (n < max)
				cols[n++] = k;
		}
	}
	return n;
}

/*
 * What this turn leaves: the next session_state, its summary, and the
 * turn for the store (*turn, NULL when it is not stored).
 */
static int
chat_memory(struct dc_chat *q, const struct resp *m,
    struct json_object **state, char **summary, struct json_object **turn)
{
	struct dc_convo_turn t;
	const char *cols[20];
	struct json_object *v;
	int count = 1;

	memset(&t, 0, sizeof(t));
	t.question = q->message != NULL ? q->message : q->sql;
	t.resolved = q->resolved;
	t.target = q->target;
	t.dbtype = q->dbtype;
	t.sql = q->sql;
	t.answer = m->answer;
	t.source = m->source;
	t.columns = cols;
	t.ncolumns = resp_columns(m, cols, (int)DC_ARRAY_SIZE(cols));
	t.rows = m->with_rows ? m->nrows : -1;
	t.clarifying = m->clarifying;
	if (q->session_state != NULL &&
	    json_object_object_get_ex(q->session_state, "turn_count", &v) &&
	    json_object_is_type(v, json_type_int))
		count = json_object_get_int(v) + 1;
	if (q->turns != NULL &&
	    (int)json_object_array_length(q->turns) + 1 > count)
		count = (int)json_object_array_length(q->turns) + 1;
	*turn = NULL;
	*summary = NULL;
	if ((*state = dc_convo_next_state(q->session_state, &t, count)) == NULL)
		return DC_ENOMEM;
	*summary = dc_convo_summary(*state);
	if (q->remember && (*turn = dc_convo_turn_json(&t)) == NULL)
		return DC_ENOMEM;
	return DC_OK;
}

/*
 * DataChat's clarification limit (max_clarifications): a conversation
 * that was asked this many clarifying questions is not asked another;
 * it gets DataChat's way out instead.
 */
#define CLARIFY_MAX	3
#define CLARIFY_LIMIT_TEXT "I still cannot answer confidently after " \
	"several clarifications.\n2. Ask me to list available tables.\n" \
	"3. Ask a fully specified question with table + metric.\n" \
	"4. Type `exit` to end the session."

/* What makes an assistant turn a clarification (DataChat's triggers). */
static const char *const clarify_markers[] = {
	"clarifying question", "need a bit more detail", "which table",
	"which column", "what information are you trying",
	"is there a specific", "do you want to see", "are you looking for",
	NULL
};

/*
 * The clarifications the conversation had, as DataChat counts them: the
 * assistant turns of conversation_history that ask one, or
 * session_state's clarification_count, whichever is more.
 */
static int
clarifications_before(struct dc_chat *q)
{
	struct json_object *v, *role, *content;
	const char *const *mk;
	const char *text;
	size_t i, len;
	int n = 0, h = 0;

	if (q->session_state != NULL && json_object_object_get_ex(
	    q->session_state, "clarification_count", &v) &&
	    json_object_is_type(v, json_type_int))
		n = json_object_get_int(v);
	if (q->history == NULL || !json_object_is_type(q->history,
	    json_type_array))
		return n;
	len = json_object_array_length(q->history);
	for (i = 0; i < len; i++) {
		v = json_object_array_get_idx(q->history, i);
		if (!json_object_object_get_ex(v, "role", &role) ||
		    !json_object_is_type(role, json_type_string) ||
		    strcmp(json_object_get_string(role), "assistant") != 0 ||
		    !json_object_object_get_ex(v, "content", &content) ||
		    !json_object_is_type(content, json_type_string))
			continue;
		text = json_object_get_string(content);
		for (mk = clarify_markers; *mk != NULL; mk++)
			if (strcasestr(text, *mk) != NULL) {
				h++;
				break;
			}
	}
	return n > h ? n : h;
}

/*
 * A clarification the limit stops: the answer becomes DataChat's
 * (answer_source system, confidence 0.5, no question).  Its first option
 * names DataChat's DataPoint tables; datachatd has none, so it is left
 * out as DataChat leaves it out without them.  0 or DC_ENOMEM.
 */
static int
clarify_limit(struct dc_chat *q, struct resp *m)
{
	struct json_object *d;
	char *a;
	int n;

	if (m->streamed || m->source == NULL ||
	    strcmp(m->source, "clarification") != 0 ||
	    (n = clarifications_before(q)) < CLARIFY_MAX)
		return DC_OK;
	if ((a = strdup(CLARIFY_LIMIT_TEXT)) == NULL)
		return DC_ENOMEM;
	free(m->answer);
	m->answer = a;
	m->source = "system";
	m->confidence = "0.5";
	json_object_put(m->clarifying);
	m->clarifying = NULL;
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "clarification_count", json_object_new_int(n));
	dc_jb_add(&q->jb, d, "limit", json_object_new_int(CLARIFY_MAX));
	trace_add(q, "clarification", "limit", "clarification_limit_reached",
	    d);
	return DC_OK;
}

/*
 * The answer is m: stream its text (unless the LLM already did), write
 * the ChatResponse with the metrics, the trace, the ids of the question
 * and the memory that follows from it, remember the turn, hand the
 * answer to the consumer and end the run.  The fields come in DataChat's
 * order.
 */
static void
chat_answer(struct dc_chat *q, struct resp *m)
{
	uint64_t now = dc_now_ms();
	const char *hint;
	struct json_object *state = NULL, *turn = NULL;
	char *summary = NULL;
	struct dc_jw w;
	size_t alen;
	int rc;

	if (clarify_limit(q, m) != DC_OK) {
		resp_free(m);
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	hint = resp_viz(m);
	if (!m->streamed && m->answer != NULL)
		answer_chunk(q, m->answer, strlen(m->answer));
	if (chat_memory(q, m, &state, &summary, &turn) != DC_OK) {
		json_object_put(state);
		json_object_put(turn);
		free(summary);
		resp_free(m);
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	dc_jw_init(&w);
	dc_jw_object(&w);
	dc_jw_key(&w, "answer");
	/* DataChat says it answers from the live schema: no DataPoints */
	alen = m->answer != NULL ? strlen(m->answer) : 0;
	if (m->answer != NULL && m->confidence == NULL &&
	    strstr(m->answer, LIVE_SCHEMA_NOTICE) == NULL) {
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
	if (m->res != NULL && m->nrows == 0 &&
	    !q->dialect->empty_names_columns)
		dc_jw_raw(&w, "{}", 2);	/* asyncpg: the columns come from rows */
	else if (m->res != NULL)
		dc_result_write_columnar(&w, m->res, &m->cols, m->nrows,
		    q->sink->enc);
	else
		dc_jw_json(&w, m->data);
	dc_jw_key(&w, "visualization_hint");
	dc_jw_string(&w, !q->nl && hint == NULL ? "none" : hint);
	dc_jw_key(&w, "visualization_metadata");
	if (!q->nl) {
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
	if (m->confidence != NULL)
		dc_jw_raw(&w, m->confidence, strlen(m->confidence));
	else
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
	write_ms(&w, now - q->start_ms);
	dc_jw_key(&w, "agent_timings");
	dc_jw_object(&w);
	if (q->exec_start_ms != 0) {
		dc_jw_key(&w, !q->nl ? "direct_sql_execution" :
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
	/*
	 * A question's memory follows from this turn; DataChat's direct SQL
	 * path hands back the request's own (routes/chat.py), null when none.
	 */
	dc_jw_key(&w, "session_summary");
	if (q->nl)
		dc_jw_string(&w, summary);
	else if (q->session_summary != NULL)
		dc_jw_string(&w, q->session_summary);
	else
		dc_jw_null(&w);
	dc_jw_key(&w, "session_state");
	dc_jw_json(&w, q->nl ? state : q->session_state);
	dc_jw_key(&w, "sub_answers");
	dc_jw_raw(&w, "[]", 2);
	dc_jw_key(&w, "decision_trace");
	dc_jw_array_end(&q->trace);
	if (q->trace.err || q->jb.failed)
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
	/* the intent gate answers before a target is chosen */
	dc_jw_string(&w, q->target[0] != '\0' ? q->target : NULL);
	dc_jw_object_end(&w);
	resp_free(m);
	if (w.err) {
		dc_jw_free(&w);
		json_object_put(state);
		json_object_put(turn);
		free(summary);
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	if (turn != NULL) {
		/* stored before it is answered: the next question finds it */
		q->reply = w.buf;
		q->reply_len = w.len;
		w.buf = NULL;
		rc = dc_convo_save(q->w, q->conversation_id, turn, summary,
		    state, chat_saved, q, &q->mem);
		json_object_put(state);
		json_object_put(turn);
		free(summary);
		dc_jw_free(&w);
		if (rc != DC_OK)
			chat_saved("cannot start the write", q);
		return;
	}
	json_object_put(state);
	free(summary);
	q->sink->complete(q->sink_arg, w.buf, w.len);
	dc_jw_free(&w);
	chat_free(q);
}

/*
 * Answer with the rows.  With synthesize_simple_sql the LLM writes the
 * text and owns the run from here; otherwise the run ends.
 */
static void
chat_answer_rows(struct dc_chat *q, const struct dc_qresult *res)
{
	int max_rows = q->w->cfg->max_rows;
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
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	m.answer = q->nl ? nl_answer_text(q, res->rows, &m.cols, nrows,
	    res->truncated) : direct_answer_text(res, nrows);
	m.source = q->source != NULL ? q->source : "sql";
	m.confident = 1;
	m.res = res->rows;
	m.nrows = nrows;
	m.with_rows = 1;
	m.truncated = res->truncated;
	m.with_truncated = 1;
	if (m.answer == NULL) {
		resp_free(&m);
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	if (res->truncated) {
		struct json_object *warn = new_obj(q);
		char msg[128];

		if (res->cut_bytes)
			snprintf(msg, sizeof(msg), "result truncated to %d "
			    "rows (max_result_bytes: %d bytes)", nrows,
			    q->w->cfg->max_result_bytes);
		else
			snprintf(msg, sizeof(msg), "result truncated to %d "
			    "rows (max_rows)", max_rows);
		dc_jb_add(&q->jb, warn, "warning_type",
		    json_object_new_string(res->cut_bytes ?
		    "byte_limit" : "row_limit"));
		dc_jb_add(&q->jb, warn, "message",
		    json_object_new_string(msg));
		m.warnings = new_arr(q);
		dc_jb_push(&q->jb, m.warnings, warn);
	}
	if (q->synthesize && q->nl && q->intent.kind == DC_NLQ_NONE) {
		/*
		 * A second LLM call writes the answer text; the rows go now,
		 * and the hint is theirs (the values as written may read
		 * otherwise: jsonable_encoder's Decimal is a number).
		 */
		m.viz = resp_viz(&m);
		m.data = nrows == 0 && !q->dialect->empty_names_columns ?
		    json_object_new_object() :
		    dc_result_columnar(res->rows, nrows, q->sink->enc);
		m.res = NULL;
		if (m.data == NULL ||
		    (q->pending = malloc(sizeof(*q->pending))) == NULL) {
			resp_free(&m);
			chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
			    "out of memory");
			return;
		}
		*q->pending = m;
		nl_summarize(q, res->rows, nrows);
		return;
	}
	chat_answer(q, &m);
}

/* The database refused the statement: say so in band, with its words. */
static void
chat_answer_db_error(struct dc_chat *q, const struct dc_qresult *res)
{
	const char *kind = res->status == DC_ETIMEOUT ? "timeout" : "database";
	struct json_object *e, *details;
	char answer[1024];
	struct resp m;

	if (res->status == DC_ETIMEOUT)
		snprintf(answer, sizeof(answer), "The query was cancelled: it "
		    "ran longer than statement_timeout (%d ms): %s",
		    q->w->cfg->statement_timeout, res->error);
	else
		snprintf(answer, sizeof(answer), "The query failed: %s",
		    res->error);
	details = new_obj(q);
	if (res->sqlstate != NULL)
		dc_jb_add(&q->jb, details, "sqlstate",
		    json_object_new_string(res->sqlstate));
	trace_add(q, "execute", "error", kind, details);
	memset(&m, 0, sizeof(m));
	m.answer = strdup(answer);
	m.source = "error";
	e = new_obj(q);
	dc_jb_add(&q->jb, e, "error_type", json_object_new_string(kind));
	dc_jb_add(&q->jb, e, "message",
	    json_object_new_string(res->error));
	dc_jb_str(&q->jb, e, "sqlstate", res->sqlstate);
	m.errors = new_arr(q);
	dc_jb_push(&q->jb, m.errors, e);
	chat_answer(q, &m);
}

/*
 * What the query's result makes of the answer: its rows, or its failure.
 * may_correct: the statement itself ran (not only the catalog read before
 * it), so an LLM's SQL the database refused gets its correction round.
 */
static void
chat_outcome(struct dc_chat *q, const struct dc_qresult *res, int may_correct)
{
	char detail[1024];
	int status;

	if (res->status != DC_OK && dc_result_failure(res, detail,
	    sizeof(detail)) == 0 && may_correct && q->nl &&
	    q->intent.kind == DC_NLQ_NONE && q->retry_count == 0) {
		/* the LLM's SQL failed: it gets one chance to correct it */
		nl_refused(q, "database", res->error);
		return;
	}
	status = res->status == DC_OK ? 0 : dc_result_failure(res, detail,
	    sizeof(detail));
	if (res->status == DC_OK)
		chat_answer_rows(q, res);
	else if (!q->nl && status != 0 && status != 500)
		/* direct SQL: DataChat's connector errors */
		chat_fail(q, status, "query_error", CLOSE_POLICY, "%s", detail);
	else if (status != 0)
		chat_fail_status(q, status, detail);
	else if (!q->nl && res->status == DC_ETIMEOUT)
		chat_fail(q, 400, "query_error", CLOSE_POLICY, "Query timeout "
		    "(%ds)", (q->w->cfg->statement_timeout + 999) / 1000);
	else if (!q->nl)
		chat_fail(q, 400, "query_error", CLOSE_POLICY, "Query execution "
		    "failed: %s", res->error);
	else
		chat_answer_db_error(q, res);
}

static void
chat_executed(const struct dc_qresult *res, void *arg)
{
	struct dc_chat *q = arg;
	struct json_object *d = new_obj(q);
	char note[80];
	int nrows = 0;

	q->job = NULL;
	q->retried |= res->retried;
	if (res->status == DC_OK)
		nrows = dc_result_nrows(res->rows, q->w->cfg->max_rows);
	dc_jb_add(&q->jb, d, "rows_returned", json_object_new_int(nrows));
	snprintf(note, sizeof(note), "Execution complete (%d row(s)).", nrows);
	agent_complete(q, AGENT_EXECUTOR, res->status == DC_OK ?
	    "Query executed" : "Query failed", d, note);
	chat_outcome(q, res, 1);
}

static int	 keep_entry(struct dc_chat *q, const struct dc_entry *e);

/* The verdict on q->sql (sqlcheck.h): refuse it, or run it on q->e. */
static void
chat_checked(const struct dc_sqlcheck *v, void *arg)
{
	struct dc_chat *q = arg;
	struct json_object *d;
	struct dc_jw *w;
	char *stmt, detail[256];
	int rc, ok = v->status == DC_OK;

	q->check = NULL;
	if (v->status != DC_OK && v->status != DC_EINVAL) {
		/*
		 * The target's catalog could not be read, so the statement
		 * was not checked: the validator's step ends, failed, and
		 * nothing runs (no ExecutorAgent: every agent_complete
		 * follows its agent_start).  The failure is the target's.
		 */
		d = new_obj(q);
		dc_jb_add(&q->jb, d, "validation_passed",
		    json_object_new_boolean(0));
		dc_jb_add(&q->jb, d, "issues_found", json_object_new_int(0));
		agent_complete(q, AGENT_VALIDATOR, "The SQL could not be "
		    "checked against the target's catalog", d,
		    "SQL validation could not run.");
		if (v->err != NULL) {
			chat_outcome(q, v->err, 0);
			return;
		}
		rc = dc_result_submit_failure(v->status, detail,
		    sizeof(detail));
		chat_fail_status(q, rc, detail);
		return;
	}
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "validation_passed",
	    json_object_new_boolean(ok));
	dc_jb_add(&q->jb, d, "issues_found",
	    json_object_new_int(ok ? 0 : 1));
	agent_complete(q, AGENT_VALIDATOR, ok ? "One read-only statement" :
	    v->reason, d, ok ? "SQL validation passed." :
	    "SQL validation flagged issues.");
	if (!ok) {
		if (q->nl && q->intent.kind == DC_NLQ_NONE) {
			nl_refused(q, "guard", v->reason);
			return;
		}
		chat_fail(q, 400, "validation_error", CLOSE_POLICY, "SQL Editor "
		    "accepts read-only SQL only (SELECT/WITH/SHOW/DESCRIBE/"
		    "EXPLAIN). %s", v->reason);
		return;
	}
	w = trace_open(q, "sql_guard", "admitted", "one read-only statement");
	dc_jw_object(w);
	dc_jw_key(w, "kind");
	dc_jw_string(w, v->kind == DC_SQL_EXPLAIN ? "explain" :
	    v->kind == DC_SQL_SHOW ? "show" : "select");
	if (v->unusual) {
		dc_jw_key(w, "unusual");
		dc_jw_bool(w, 1);
	}
	dc_jw_object_end(w);
	trace_close(q);
	stmt = strndup(q->sql, v->len);	/* without a trailing ';' */
	if (stmt == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	q->exec_start_ms = dc_now_ms();
	agent_start(q, AGENT_EXECUTOR, "Running the query read-only",
	    "Executing SQL on the selected database.");
	/* chat_executed may run before this returns: q is not ours after */
	rc = dc_pool_query(q->w->pool, q->e, DC_JOB_READ |
	    (v->unusual ? DC_JOB_UNUSUAL : 0), stmt, 0, NULL, chat_executed, q,
	    &q->job);
	free(stmt);
	if (rc != DC_OK) {
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		chat_fail_status(q, rc, detail);
	}
}

/*
 * Guard and run q->sql on target e.  Whatever wrote the SQL (the client,
 * the LLM, the catalog), this is the only way it reaches a target.
 */
static void
chat_run_sql(struct dc_chat *q, const struct dc_entry *e)
{
	char detail[256];
	int rc;

	if (keep_entry(q, e) != DC_OK) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	agent_start(q, AGENT_VALIDATOR, "Checking the SQL",
	    "Validating SQL for safety and correctness.");
	/* chat_checked may run before this returns: q is not ours after */
	rc = dc_sql_check(q->w, q->e, q->sql, chat_checked, q, &q->check);
	if (rc != DC_OK) {
		rc = dc_result_submit_failure(rc, detail, sizeof(detail));
		chat_fail_status(q, rc, detail);
	}
}

/* --- the natural-language pipeline --- */

/* The LLM could not produce a statement we run: an in-band error. */
static void
nl_final_error(struct dc_chat *q, const char *kind, const char *why)
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
	e = new_obj(q);
	dc_jb_add(&q->jb, e, "error_type", json_object_new_string(kind));
	dc_jb_add(&q->jb, e, "message", json_object_new_string(why));
	m.errors = new_arr(q);
	dc_jb_push(&q->jb, m.errors, e);
	chat_answer(q, &m);
}

static void	 nl_ask(struct dc_chat *q, const char *prompt);

/* The statement was refused (guard) or failed (database): correct once. */
static void
nl_refused(struct dc_chat *q, const char *kind, const char *why)
{
	struct json_object *d = new_obj(q);
	char *prompt = NULL;

	dc_jb_add(&q->jb, d, "error", json_object_new_string(why));
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
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
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
	struct dc_chat *q = arg;
	struct json_object *d;
	struct dc_worker *w = q->w;
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
		chat_fail_status(q, llm_status(rep->status), detail);
		return;
	}
	sql = dc_nlq_extract_sql(rep->text);
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "sql_generated",
	    json_object_new_boolean(sql != NULL));
	agent_complete(q, AGENT_SQL, sql != NULL ? "SQL written" :
	    "The reply held no SQL", d, sql != NULL ?
	    "SQL candidate generated." : "SQL generation needs clarification.");
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "provider",
	    json_object_new_string(dc_llm_provider(w->llm)));
	dc_jb_add(&q->jb, d, "model",
	    json_object_new_string(dc_llm_model(w->llm)));
	dc_jb_add(&q->jb, d, "latency_ms",
	    json_object_new_int64(rep->latency_ms));
	trace_add(q, "llm", "generated", "the LLM wrote SQL from the live "
	    "schema", d);
	free(q->sql);
	q->sql = sql;
	if (sql == NULL) {
		nl_refused(q, "guard", "the LLM reply contained no SQL");
		return;
	}
	chat_run_sql(q, q->e);
}

static void
nl_ask(struct dc_chat *q, const char *prompt)
{
	struct dc_worker *w = q->w;
	char *system = dc_prompt_system(q->dialect->name,
	    q->dialect->prompt_rules);
	int rc;

	if (system == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	agent_start(q, AGENT_SQL, q->retry_count > 0 ? "Correcting the SQL" :
	    "Writing SQL for the question", q->retry_count > 0 ?
	    "Correcting the SQL with the database's answer." :
	    "Translating your request into SQL.");
	rc = dc_llm_complete(w->llm, system, prompt, nl_llm_replied, q,
	    &q->call);
	free(system);
	if (rc != DC_OK)
		chat_fail(q, w->llm == NULL ? 503 : 500, w->llm == NULL ?
		    "service_unavailable" : "internal_error", CLOSE_INTERNAL,
		    "cannot start the LLM call");
}

static void
nl_summary_chunk(const char *text, size_t len, void *arg)
{
	struct dc_chat *q = arg;

	q->pending->streamed = 1;
	answer_chunk(q, text, len);
}

static void
nl_summary_replied(const struct dc_llm_reply *rep, void *arg)
{
	struct dc_chat *q = arg;
	struct resp *m = q->pending;
	char *text;

	q->call = NULL;
	q->llm_calls++;
	q->pending = NULL;
	if (rep->status == DC_OK && rep->text != NULL && rep->text[0] != '\0' &&
	    (text = strdup(rep->text)) != NULL) {
		free(m->answer);
		m->answer = text;
		trace_add(q, "synthesize", "llm", "synthesize_simple_sql asked "
		    "for an LLM-written answer", NULL);
	} else {
		/* what was streamed is not the answer: say the real one */
		m->streamed = 0;
		trace_add(q, "synthesize", "skipped", rep->error != NULL ?
		    rep->error : "empty reply", NULL);
	}
	agent_complete(q, AGENT_SYNTHESIS, "Answer written", NULL,
	    "Final response generated.");
	chat_answer(q, m);
	free(m);
}

static void
nl_summarize(struct dc_chat *q, const struct dc_rows *res, int nrows)
{
	struct json_object *rows = dc_result_rows(res, nrows < 20 ? nrows : 20);
	const char *sys = "You summarise query results briefly and precisely.";
	struct resp *m;
	char *prompt = NULL;
	int rc;

	if (rows == NULL || asprintf(&prompt, "Question: %s\nSQL: %s\n"
	    "Result (first rows as JSON): %s\nAnswer the question in one or "
	    "two sentences from this result.", q->message, q->sql,
	    json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN)) < 0)
		prompt = NULL;
	json_object_put(rows);
	agent_start(q, AGENT_SYNTHESIS, "Writing the answer",
	    "Synthesizing the final response.");
	if (prompt == NULL)
		rc = DC_ENOMEM;
	else if (q->sink->event != NULL)
		/* the consumer shows the answer as the LLM writes it */
		rc = dc_llm_stream(q->w->llm, sys, prompt, nl_summary_chunk,
		    nl_summary_replied, q, &q->call);
	else
		rc = dc_llm_complete(q->w->llm, sys, prompt,
		    nl_summary_replied, q, &q->call);
	free(prompt);
	if (rc != DC_OK) {
		m = q->pending;
		q->pending = NULL;
		chat_answer(q, m);
		free(m);
	}
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

/*
 * A text answer with clarifying question (may be NULL): the intent
 * gate's (confidence as JSON) or a clarification's.
 */
static void
gate_answer(struct dc_chat *q, const char *answer, const char *source,
    const char *confidence, const char *question)
{
	struct dc_jb b = { 0 };
	struct resp m;

	memset(&m, 0, sizeof(m));
	m.source = source;
	m.confidence = confidence;
	if (question != NULL) {
		m.clarifying = json_object_new_array();
		dc_jb_push(&b, m.clarifying, json_object_new_string(question));
		m.clarifying = dc_jb_done(&b, m.clarifying);
	}
	if ((m.answer = strdup(answer)) == NULL ||
	    (question != NULL && m.clarifying == NULL)) {
		resp_free(&m);
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	chat_answer(q, &m);
}

/* A table the question names does not exist: ask, do not fail. */
static void
nl_clarify(struct dc_chat *q, const struct dc_schema *s)
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
	qs = new_arr(q);
	off = (size_t)snprintf(answer, sizeof(answer), "I could not find a "
	    "table named \"%s\" in this database.", want);
	for (k = 0; k < 3; k++) {
		if (best[k] < 0 || (dist[k] > limit && k > 0))
			continue;
		table_name(q->dialect, &s->tables[best[k]], name,
		    sizeof(name));
		snprintf(line, sizeof(line), "Did you mean %s?", name);
		dc_jb_push(&q->jb, qs, json_object_new_string(line));
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
	chat_answer(q, &m);
}

/*
 * A catalog question answered by DataChat's statement (nlq.h, the
 * dialect's list_tables_sql and friends) on table t (NULL: the listing),
 * run like any other: no LLM call.
 */
static void
nl_catalog_query(struct dc_chat *q, const struct dc_schema_table *t)
{
	char *sql = NULL;
	int rc;

	rc = dc_nlq_sql(q->dialect, q->intent.kind, t != NULL ? t->schema :
	    NULL, t != NULL ? t->name : NULL, q->intent.limit, &sql);
	if (rc != DC_OK) {
		if (rc == DC_ENOMEM)
			chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
			    "out of memory");
		else
			chat_fail(q, 400, "validation_error", CLOSE_POLICY,
			    "the table name cannot be quoted safely");
		return;
	}
	if (t != NULL)
		snprintf(q->shown, sizeof(q->shown), "%s%s%s",
		    q->intent.kind == DC_NLQ_COLUMNS ? "" : t->schema,
		    q->intent.kind == DC_NLQ_COLUMNS ? "" : ".", t->name);
	free(q->sql);
	q->sql = sql;
	q->source = "sql";
	trace_add(q, "catalog", dc_nlq_operation(q->intent.kind), "a catalog "
	    "question: DataChat's catalog statement, no LLM call", NULL);
	chat_run_sql(q, q->e);
}

/* Several schemas have the bare name asked for: which one? */
static void
nl_ambiguous(struct dc_chat *q, const struct dc_schema *s)
{
	char question[512], answer[640];
	const char *name = q->intent.table;
	size_t o;
	int i, k = 0, n = 0;

	for (i = 0; i < s->ntables; i++)
		n += strcasecmp(s->tables[i].name, name) == 0;
	o = (size_t)snprintf(question, sizeof(question), "Which table should "
	    "I use: ");
	for (i = 0; i < s->ntables && o < sizeof(question); i++) {
		if (strcasecmp(s->tables[i].name, name) != 0)
			continue;
		o += (size_t)snprintf(question + o, sizeof(question) - o,
		    "%s%s.%s", k == 0 ? "" : k == n - 1 ? " or " : ", ",
		    s->tables[i].schema, s->tables[i].name);
		k++;
	}
	if (o < sizeof(question))
		snprintf(question + o, sizeof(question) - o, "?");
	snprintf(answer, sizeof(answer), "I need a bit more detail to generate "
	    "SQL:\n- %s", question);
	trace_add(q, "catalog", "clarify", "the table's name is in several "
	    "schemas", NULL);
	gate_answer(q, answer, "clarification", NULL, question);
}

static void	 nl_schema_ready(const struct dc_schema *s,
		     const struct dc_qresult *err, void *arg);

/* What the catalog said of a name no snapshot holds. */
static void
nl_looked_up(const struct dc_schema *s, const struct dc_qresult *err,
    void *arg)
{
	struct dc_chat *q = arg;
	const struct dc_schema_table *t;
	int rc;

	(void)err;
	q->swait = NULL;
	if (s != NULL && dc_nlq_find(s, q->intent.table,
	    q->dialect->default_schema, &t, NULL) == DC_NLQ_FOUND) {
		nl_catalog_query(q, t);
		return;
	}
	/* not there either: the snapshot (cached) suggests names */
	rc = dc_catalog_schema(q->w, q->e, 0, nl_schema_ready, q, &q->swait);
	if (rc != DC_OK)
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "cannot read the target's schema");
}

/*
 * The table a catalog question names: in the snapshot; else, once, in a
 * fresher snapshot (a table created a moment ago; DC_CATALOG_RECHECK is
 * bounded per target); else, once, asked of the catalog by name (system
 * schemas: information_schema.tables, pg_catalog.pg_class; bounded too);
 * else the question gets "did you mean".
 */
static void
nl_find_table(struct dc_chat *q, const struct dc_schema *s)
{
	const struct dc_schema_table *t;
	char schema[DC_NLQ_NAME_MAX], *dot;
	const char *table;
	int rc;

	switch (dc_nlq_find(s, q->intent.table, q->dialect->default_schema,
	    &t, NULL)) {
	case DC_NLQ_FOUND:
		nl_catalog_query(q, t);
		return;
	case DC_NLQ_AMBIGUOUS:
		nl_ambiguous(q, s);
		return;
	}
	if (!q->rechecked) {
		q->rechecked = 1;
		rc = dc_catalog_schema(q->w, q->e, DC_CATALOG_RECHECK,
		    nl_schema_ready, q, &q->swait);
	} else if (!q->looked_up) {
		q->looked_up = 1;
		dc_strlcpy(schema, q->intent.table, sizeof(schema));
		if ((dot = strchr(schema, '.')) != NULL) {
			*dot = '\0';
			table = dot + 1;
		} else
			table = schema;
		rc = dc_catalog_lookup(q->w, q->e, dot != NULL ? schema : NULL,
		    table, nl_looked_up, q, &q->swait);
	} else {
		nl_clarify(q, s);
		return;
	}
	if (rc != DC_OK)
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "cannot read the target's schema");
}

/*
 * What went into the prompt, for the trace: the tables written with their
 * columns, in order, each with its tier (match, fk, rest) and why.
 */
static struct json_object *
prompt_trace(struct dc_chat *q, const struct dc_schema *s,
    const struct dc_prompt_out *po)
{
	struct json_object *d = new_obj(q), *a, *o;
	const struct dc_schema_table *t;
	char name[2 * DC_SCHEMA_NAME_MAX];
	int i;

	dc_jb_add(&q->jb, d, "tables_in_prompt", json_object_new_int(po->ntables));
	dc_jb_add(&q->jb, d, "names_only", json_object_new_int(po->nnames));
	dc_jb_add(&q->jb, d, "tables_in_schema", json_object_new_int(s->ntables));
	dc_jb_add(&q->jb, d, "dialect", json_object_new_string(q->dbtype));
	a = new_arr(q);
	for (i = 0; i < po->ntables && i < po->nrank; i++) {
		t = &s->tables[po->rank[i].idx];
		snprintf(name, sizeof(name), "%s.%s", t->schema, t->name);
		o = new_obj(q);
		dc_jb_add(&q->jb, o, "table", json_object_new_string(name));
		dc_jb_add(&q->jb, o, "tier", json_object_new_string(
		    dc_rank_tier_name(po->rank[i].tier)));
		dc_jb_add(&q->jb, o, "why", json_object_new_string(po->rank[i].why));
		dc_jb_push(&q->jb, a, o);
	}
	dc_jb_add(&q->jb, d, "tables", a);
	return dc_jb_done(&q->jb, d);
}

static void
nl_schema_ready(const struct dc_schema *s, const struct dc_qresult *err,
    void *arg)
{
	struct dc_chat *q = arg;
	struct dc_rank_weights weights;
	struct dc_prompt_in in;
	struct dc_prompt_out po;
	struct json_object *d;
	const char *why;
	char detail[1024];
	int status;

	q->swait = NULL;
	if (s == NULL) {
		status = dc_result_failure(err, detail, sizeof(detail));
		if (status == 0) {
			status = 502;
			snprintf(detail, sizeof(detail), "cannot read the target's "
			    "schema: %s", err->error);
		}
		chat_fail_status(q, status, detail);
		return;
	}
	/* which worker's snapshot, how old: workers converge (catalog.h) */
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "worker", json_object_new_int(q->w->index));
	dc_jb_add(&q->jb, d, "tables", json_object_new_int(s->ntables));
	dc_jb_add(&q->jb, d, "age_ms", json_object_new_int64(
	    ((int64_t)dc_wall_ms() * 1000 - s->fetched_at) / 1000));
	trace_add(q, "schema", q->rechecked ? "rechecked" : "snapshot",
	    q->rechecked ? "a table the question names was missing: the "
	    "catalog's version checked again" : "the worker's snapshot of the "
	    "target's catalog", d);
	if (!q->rechecked) {
		/* announced once, not again after a recheck */
		d = new_obj(q);
		dc_jb_add(&q->jb, d, "datapoints_found",
		    json_object_new_int(0));
		dc_jb_add(&q->jb, d, "tables_found",
		    json_object_new_int(s->ntables));
		agent_complete(q, AGENT_CONTEXT, "Live schema read", d,
		    "Context retrieved (live schema).");
	}
	switch (q->intent.kind) {
	case DC_NLQ_LIST_TABLES:
		nl_catalog_query(q, NULL);
		return;
	case DC_NLQ_COLUMNS:
	case DC_NLQ_ROW_COUNT:
	case DC_NLQ_SAMPLE:
		nl_find_table(q, s);
		return;
	}
	if (!dc_llm_configured(q->w->llm, &why)) {
		chat_fail(q, 503, "service_unavailable", CLOSE_INTERNAL, "%s",
		    why);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.schema = s;
	in.question = q->message;
	in.context = q->context;
	in.hint = q->rank_hint;
	dc_prompt_configure(q->w->cfg, &weights, &in);
	q->prompt = dc_prompt_build(&in, &po);
	if (q->prompt == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	trace_add(q, "prompt", "live_schema", "schema ranked by the question's "
	    "words, then foreign keys, then centrality; the relevant tables "
	    "with their columns, then names only", prompt_trace(q, s, &po));
	free(po.rank);
	nl_ask(q, q->prompt);
}

/* The memory is known: read the schema next. */
static void
nl_context(struct dc_chat *q)
{
	int rc;

	/*
	 * The SQL that follows (the catalog answer's or the LLM's) is judged
	 * by the target's function policy: read it in this round, beside the
	 * snapshot, rather than after the LLM has answered.  The callback
	 * may run, and finish q, before this returns.
	 */
	rc = dc_catalog_schema(q->w, q->e, DC_CATALOG_POLICY, nl_schema_ready,
	    q, &q->swait);
	if (rc != DC_OK)
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "cannot read the target's schema");
}

/*
 * The turns before this question: the store's (turns, state) when it has
 * them, else the client's history and session_state.  A question that
 * reads as a follow-up is resolved against the last one; the prompt gets
 * the conversation so far within a quarter of its budget.
 */
static void
nl_memory(struct dc_chat *q)
{
	const char *from = "store", *goal, *sql;
	struct json_object *d, *last;
	size_t n;

	if (q->turns == NULL) {
		from = "client";
		q->turns = dc_convo_from_client(q->history, q->session_state);
		n = q->turns != NULL ? json_object_array_length(q->turns) : 0;
		/* a history that already ends with this very question */
		if (n > 0 && (last = json_object_array_get_idx(q->turns,
		    n - 1)) != NULL && json_object_object_get_ex(last,
		    "question", &d) && strcmp(json_object_get_string(d),
		    q->message) == 0 && !json_object_object_get_ex(last,
		    "answer", NULL))
			json_object_array_del_idx(q->turns, n - 1, 1);
	}
	if (q->turns == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	n = json_object_array_length(q->turns);
	goal = dc_convo_last_goal(q->turns, q->session_state);
	if (goal != NULL && dc_convo_followup(q->message))
		q->resolved = dc_convo_resolve(goal, q->message);
	if (n > 0) {
		last = json_object_array_get_idx(q->turns, n - 1);
		sql = json_object_object_get_ex(last, "sql", &d) &&
		    json_object_is_type(d, json_type_string) ?
		    json_object_get_string(d) : "";
		if (asprintf(&q->rank_hint, "%s %s", goal != NULL ? goal : "",
		    sql) < 0)
			q->rank_hint = NULL;
	}
	if (n == 0 && q->session_summary != NULL && q->session_summary[0] !=
	    '\0') {
		/* no turns, but the client's digest of them */
		if (asprintf(&q->context, "Session memory: %.1000s\n",
		    q->session_summary) < 0)
			q->context = NULL;
	} else
		q->context = dc_convo_context(q->turns, q->target,
		    DC_PROMPT_SCHEMA_TOKENS * DC_PROMPT_CHARS_PER_TOKEN / 4);
	if (q->context == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "turns", json_object_new_int((int)n));
	dc_jb_add(&q->jb, d, "follow_up",
	    json_object_new_boolean(q->resolved != NULL));
	if (q->resolved != NULL)
		dc_jb_add(&q->jb, d, "resolved_query",
		    json_object_new_string(q->resolved));
	trace_add(q, "memory", n > 0 ? from : "none", n > 0 ?
	    "the conversation so far goes into the prompt" :
	    "no earlier turns", d);
	nl_context(q);
}

/* A copy of the target for the steps that come later; 0 or DC_ENOMEM. */
static int
keep_entry(struct dc_chat *q, const struct dc_entry *e)
{
	if (q->e != NULL)
		return DC_OK;
	if ((q->e = malloc(sizeof(*q->e))) == NULL)
		return DC_ENOMEM;
	memcpy(q->e, e, sizeof(*e));
	return DC_OK;
}

static void
chat_natural_language(struct dc_chat *q, const struct dc_entry *e)
{
	static const char *const kinds[] = { "none", "list_tables", "columns",
	    "row_count", "sample_rows" };
	struct json_object *d;
	const char *why;

	if (keep_entry(q, e) != DC_OK) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	agent_start(q, AGENT_ANALYZER, "Classifying the question",
	    "Classifying your request intent.");
	dc_nlq_classify(q->message, &q->intent);
	if (q->intent.kind != DC_NLQ_LIST_TABLES && q->intent.table[0] == '\0')
		q->intent.kind = DC_NLQ_NONE;	/* no table named: the LLM */
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "intent", json_object_new_string(
	    q->intent.kind != DC_NLQ_NONE ? "catalog" : "data"));
	dc_jb_add(&q->jb, d, "route",
	    json_object_new_string(kinds[q->intent.kind]));
	agent_complete(q, AGENT_ANALYZER, q->intent.kind != DC_NLQ_NONE ?
	    "A catalog question" : "A question for SQL", d,
	    "Intent classified.");
	/* DataPoints are DataChat's; datachatd always reads the live schema */
	trace_add(q, "context", "live_schema", "live schema mode: no "
	    "DataPoints are used; the target's current catalog is read", NULL);
	if (q->intent.kind != DC_NLQ_NONE) {
		d = new_obj(q);
		if (q->intent.table[0] != '\0')
			dc_jb_add(&q->jb, d, "table",
			    json_object_new_string(q->intent.table));
		trace_add(q, "classify", kinds[q->intent.kind], "a catalog "
		    "question, answered without an LLM", d);
	} else {
		trace_add(q, "classify", "llm", "not a catalog question", NULL);
		if (!dc_llm_configured(q->w->llm, &why)) {
			chat_fail(q, 503, "service_unavailable", CLOSE_INTERNAL,
			    "%s", why);
			return;
		}
	}
	agent_start(q, AGENT_CONTEXT, "Reading the target's live schema",
	    "Gathering the target's live schema.");
	nl_memory(q);
}

/* stage 2: where the SQL comes from; 3 and 4: guard and run it */
static void
chat_route(struct dc_chat *q, const struct dc_entry *e)
{
	if (q->nl)
		chat_natural_language(q, e);
	else
		chat_run_sql(q, e);
}

/*
 * What the store remembers of the conversation the client named: its
 * turns (for the prompt), and the session_state and summary a client
 * that sent none continues from.
 */
static void
chat_memory_loaded(struct json_object *turns, struct json_object *state,
    const char *summary, const char *error, void *arg)
{
	struct dc_chat *q = arg;

	q->mem = NULL;
	if (error != NULL)
		log_warn("conversation %s: cannot read its memory: %s",
		    q->conversation_id, error);
	if (turns != NULL && json_object_array_length(turns) > 0)
		q->turns = json_object_get(turns);
	/* direct SQL hands back what the request sent, as DataChat does */
	if (q->nl && q->session_state == NULL && state != NULL)
		q->session_state = json_object_get(state);
	if (q->nl && q->session_summary == NULL && summary != NULL &&
	    (q->session_summary = strdup(summary)) == NULL) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}
	chat_route(q, q->e);
}

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

/* --- stage 0: the intent gate --- */

#define GATE_QUESTIONS	8	/* clarifying questions read back */

/*
 * The clarifying questions the last answer asked: session_state's
 * last_clarifying_questions, else the "- ...?" lines of the last
 * assistant turn of conversation_history (DataChat's answer text lists
 * them so).  Up to max, pointing into q's JSON; the count.
 */
static int
asked_before(struct dc_chat *q, const char **out, int max, char *buf,
    size_t bufsz)
{
	struct json_object *a, *v, *role, *content;
	const char *line, *end;
	size_t i, len, off = 0;
	int n = 0;

	if (q->session_state != NULL && json_object_object_get_ex(
	    q->session_state, "last_clarifying_questions", &a) &&
	    json_object_is_type(a, json_type_array)) {
		for (i = 0; i < json_object_array_length(a) && n < max; i++) {
			v = json_object_array_get_idx(a, i);
			if (json_object_is_type(v, json_type_string))
				out[n++] = json_object_get_string(v);
		}
		return n;
	}
	if (q->history == NULL || !json_object_is_type(q->history,
	    json_type_array) || (len = json_object_array_length(
	    q->history)) == 0)
		return 0;
	v = json_object_array_get_idx(q->history, len - 1);
	if (!json_object_object_get_ex(v, "role", &role) ||
	    strcmp(json_object_get_string(role), "assistant") != 0 ||
	    !json_object_object_get_ex(v, "content", &content) ||
	    !json_object_is_type(content, json_type_string))
		return 0;
	for (line = json_object_get_string(content); *line != '\0' && n < max;
	    line = *end != '\0' ? end + 1 : end) {
		if ((end = strchr(line, '\n')) == NULL)
			end = line + strlen(line);
		len = (size_t)(end - line);
		if (len > 3 && strncmp(line, "- ", 2) == 0 &&
		    line[len - 1] == '?' && off + len - 1 <= bufsz) {
			memcpy(buf + off, line + 2, len - 2);
			buf[off + len - 2] = '\0';
			out[n++] = buf + off;
			off += len - 1;
		}
	}
	return n;
}

/* The question the clarification was about: the last one asked. */
static const char *
pending_question(struct dc_chat *q)
{
	struct json_object *v, *role, *content;
	size_t i;
	const char *goal;

	if (q->session_state != NULL &&
	    (goal = dc_convo_last_goal(NULL, q->session_state)) != NULL)
		return goal;
	if (q->history == NULL || !json_object_is_type(q->history,
	    json_type_array))
		return NULL;
	for (i = json_object_array_length(q->history); i > 0; i--) {
		v = json_object_array_get_idx(q->history, i - 1);
		if (json_object_object_get_ex(v, "role", &role) &&
		    strcmp(json_object_get_string(role), "user") == 0 &&
		    json_object_object_get_ex(v, "content", &content) &&
		    json_object_is_type(content, json_type_string))
			return json_object_get_string(content);
	}
	return NULL;
}

/*
 * A reply to "Which table ...?" that names one is read together with the
 * question it answers, as DataChat's _merge_query_with_table_hint reads
 * it: "customers" after "show columns" is "Show columns in customers".
 * 0, or DC_ENOMEM.
 */
static int
gate_merge_reply(struct dc_chat *q)
{
	const char *asked[GATE_QUESTIONS], *prev;
	char buf[1024], hint[DC_NLQ_NAME_MAX], *merged;
	struct dc_jb b = { 0 };
	struct json_object *d;
	struct dc_intent in;
	int n;

	n = asked_before(q, asked, GATE_QUESTIONS, buf, sizeof(buf));
	if (!dc_intent_asked_table(asked, n))
		return DC_OK;
	/* "thanks" or "bye" is what it is, not a table's name */
	dc_intent_classify(q->message, &in);
	if (in.cat->kind != DC_INTENT_DATA_QUERY ||
	    !dc_intent_reply_hint(q->message, hint, sizeof(hint)) ||
	    (prev = pending_question(q)) == NULL)
		return DC_OK;
	if ((merged = dc_intent_merge_table(prev, hint)) == NULL)
		return DC_ENOMEM;
	/* DataChat's record of it: from the reply to the resolved question */
	d = new_obj(q);
	dc_jb_add(&b, d, "from", json_object_new_string(q->message));
	dc_jb_add(&b, d, "to", json_object_new_string(merged));
	dc_jb_add(&b, d, "table_hint", json_object_new_string(hint));
	if ((d = dc_jb_done(&b, d)) == NULL) {
		free(merged);
		return DC_ENOMEM;
	}
	trace_add(q, "intent_gate.rewrite", "rewrite_query", "resolved_followup",
	    d);
	free(q->message);
	q->message = merged;
	return DC_OK;
}


/* The trace's details of the gate's decision: what decided it. */
static struct json_object *
gate_why(struct dc_chat *q, const char *why)
{
	struct json_object *d;

	if (why == NULL)
		return NULL;
	d = new_obj(q);
	dc_jb_add(&q->jb, d, "matched", json_object_new_string(why));
	return d;
}

/*
 * DataChat's intent gate (intent.h), before a target or an LLM is
 * chosen: a goodbye, a request for help, a greeting, something out of
 * scope or a bare acknowledgement is answered here; a catalog question
 * that names no table asks for one.  The trace opens with DataChat's
 * intent_gate and continue_after_intent_gate stages.  1 when the
 * question was answered (the run is over), 0 when it goes on.
 */
static int
chat_gate(struct dc_chat *q)
{
	const struct dc_intent_category *cat;
	struct dc_nlq_intent nlq;
	struct dc_intent in;
	char answer[512];
	const char *ask;
	int fast;

	if (gate_merge_reply(q) != DC_OK) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return 1;
	}
	dc_intent_classify(q->message, &in);
	cat = in.cat;
	if (cat->answer != NULL) {
		trace_add(q, "intent_gate", cat->name, cat->kind ==
		    DC_INTENT_CLARIFY ? "rule_based_non_actionable" :
		    "rule_or_llm_classification", gate_why(q, in.why));
		snprintf(answer, sizeof(answer), "intent_gate=%s", cat->name);
		trace_add(q, "continue_after_intent_gate", "end", answer,
		    NULL);
		gate_answer(q, cat->answer, cat->source, cat->confidence,
		    cat->question);
		return 1;
	}
	dc_nlq_classify(q->message, &nlq);
	fast = nlq.kind != DC_NLQ_NONE;
	/*
	 * DataChat's decisions and reasons; its "classifier" is, here, the
	 * live schema and then the LLM (datachatd has no tool planner)
	 */
	trace_add(q, "intent_gate", fast ? DC_INTENT_FAST_PATH : cat->name,
	    fast ? "deterministic_sql_query" : "rule_or_llm_classification",
	    gate_why(q, fast ? "a catalog question: a statement datachatd "
	    "writes" : in.why));
	trace_add(q, "continue_after_intent_gate", fast ? "sql" : "classifier",
	    fast ? "fast_path" : "default_classifier_path", NULL);
	if (fast && (ask = dc_nlq_question(nlq.kind)) != NULL &&
	    nlq.table[0] == '\0') {
		/* DataChat's clarification: which table? */
		snprintf(answer, sizeof(answer), "I need a bit more detail to "
		    "generate SQL:\n- %s", ask);
		gate_answer(q, answer, "clarification", "0.2", ask);
		return 1;
	}
	return 0;
}

void
dc_chat_start(struct dc_worker *w, const struct dc_chat_request *req,
    const struct dc_chat_sink *sink, void *arg, struct dc_chat **out)
{
	static struct dc_entry entry;
	const struct dc_driver *drv;
	struct dc_resolve_err err;
	char detail[256];
	struct dc_entry *e = &entry;
	struct dc_chat *q;
	struct dc_jw *tw;
	int rc;

	*out = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		struct dc_chat_failure f = { 500, "internal_error",
		    CLOSE_INTERNAL, "out of memory", 0 };

		sink->fail(arg, &f);
		return;
	}
	*out = q;
	q->w = w;
	q->sink = sink;
	q->sink_arg = arg;
	q->start_ms = dc_now_ms();
	q->mode = req->direct ? "direct_sql" : "natural_language";
	q->nl = !req->direct;
	q->synthesize = req->synthesize;
	dc_jw_init(&q->trace);
	dc_jw_array(&q->trace);
	q->conversation_id = req->conversation_id != NULL &&
	    req->conversation_id[0] != '\0' ? strdup(req->conversation_id) :
	    new_conversation_id();
	q->sql = req->direct ? strip_dup(req->sql) : NULL;
	q->message = req->message != NULL ? strdup(req->message) : NULL;
	if (req->session_summary != NULL)
		q->session_summary = strdup(req->session_summary);
	q->session_state = json_object_get(req->session_state);
	q->history = json_object_get(req->history);
	q->client_conv = req->conversation_id != NULL &&
	    req->conversation_id[0] != '\0';
	/* direct SQL is remembered in a conversation the client keeps */
	q->remember = dc_convo_enabled(w) && (!req->direct || q->client_conv);
	if (q->trace.err || q->conversation_id == NULL ||
	    (req->direct && q->sql == NULL) ||
	    (req->message != NULL && q->message == NULL) ||
	    (req->session_summary != NULL && q->session_summary == NULL)) {
		chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
		    "out of memory");
		return;
	}

	if (q->nl && chat_gate(q))
		return;

	/*
	 * stage 1: which database.  The entry is only read before this
	 * returns (the stages copy what they keep), and questions start one
	 * at a time: one buffer serves them all, wiped after each.
	 */
	if ((rc = dc_target_resolve(w, req->target, e, &err)) != DC_OK) {
		if (rc == DC_ENOENT) {
			/* nothing to ask at all: DataChat's setup error */
			struct dc_chat_failure f = { 400,
			    "system_not_initialized", CLOSE_POLICY,
			    DC_NOT_INITIALIZED_MESSAGE, 1 };

			sink->fail(arg, &f);
			chat_free(q);
		} else if (err.status >= 500)
			chat_fail(q, err.status, "service_unavailable",
			    CLOSE_INTERNAL, "%s", err.detail);
		else
			chat_fail(q, err.status, "invalid_target_database",
			    CLOSE_POLICY, "%s", err.detail);
		goto out;
	}
	dc_uuid_format(e->id, q->target);
	dc_strlcpy(q->dbtype, e->type, sizeof(q->dbtype));
	if ((drv = dc_driver_find(e->type)) == NULL) {
		rc = dc_result_submit_failure(DC_EINVAL, detail,
		    sizeof(detail));
		chat_fail(q, rc, "invalid_target_database", CLOSE_POLICY, "%s",
		    detail);
		goto out;
	}
	q->dialect = drv->dialect;
	tw = trace_open(q, "routing", "target", req->target != NULL &&
	    !json_object_is_type(req->target, json_type_null) ?
	    "target_database" : dc_target_is_env(e->id) ?
	    "environment DATABASE_URL" : "registry default");
	dc_jw_object(tw);
	dc_jw_key(tw, "target_database");
	dc_jw_string(tw, q->target);
	dc_jw_key(tw, "database_type");
	dc_jw_string(tw, q->dbtype);
	dc_jw_object_end(tw);
	trace_close(q);
	if (req->direct && q->sql[0] == '\0') {
		chat_fail(q, 400, "validation_error", CLOSE_POLICY,
		    "SQL mode requires a non-empty SQL query.");
		goto out;
	}
	trace_add(q, "execution_mode", q->mode, req->direct ?
	    "user_selected_sql_editor_mode" : "natural-language question",
	    NULL);

	if (q->client_conv && dc_convo_enabled(w)) {
		/* what this conversation said before, on any worker */
		if (keep_entry(q, e) != DC_OK) {
			chat_fail(q, 500, "internal_error", CLOSE_INTERNAL,
			    "out of memory");
			goto out;
		}
		if (dc_convo_load(w, q->conversation_id, chat_memory_loaded, q,
		    &q->mem) == DC_OK)
			goto out;
		log_warn("conversation %s: cannot read its memory",
		    q->conversation_id);
	}
	chat_route(q, e);
out:
	dc_explicit_bzero(e->url, sizeof(e->url));
}
