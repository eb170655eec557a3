/*
 * conversations.c - /api/v1/conversations: the web UI's saved chats, in
 * DataChat's own ui_conversations table of the system database
 * (conversations/store.py), so a DataChat and a datachatd sharing one
 * system database show the same history.
 *
 *   GET    /api/v1/conversations?limit=20        newest first, 1..200
 *   PUT    /api/v1/conversations/{session_id}    upsert, last 50 messages
 *   DELETE /api/v1/conversations/{session_id}    {"ok":true,"deleted":…}
 *
 * An upsert only replaces a row with an older updated_at, as DataChat's
 * ON CONFLICT ... WHERE does, and answers the row as stored either way.
 * The worker writes on its own system-database connection and answers
 * when the statement is done; nothing here goes through the master or
 * shared memory.  Without a system database DataChat answers from the
 * request alone (logs only): so does this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "http.h"
#include "tokens.h"
#include "jsonw.h"
#include "log.h"
#include "model.h"
#include "pool.h"
#include "rows.h"
#include "util.h"
#include "worker.h"

#define MAX_MESSAGES	50	/* DataChat's MAX_CONVERSATION_MESSAGES */

static const struct dc_field list_fields[] = {
	{ .name = "limit", .type = DC_FT_INT, .dflt = "20" },
	{ .name = NULL }
};
static const struct dc_model list_model = { "list_conversations",
    list_fields };

enum { P_TITLE, P_TARGET, P_CONV, P_SUMMARY, P_STATE, P_MESSAGES,
    P_UPDATED };
static const struct dc_field upsert_fields[] = {
	{ .name = "title", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1 },
	{ .name = "target_database_id", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "conversation_id", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "session_summary", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "session_state", .type = DC_FT_DICT },
	{ .name = "messages", .type = DC_FT_LIST_DICT },
	{ .name = "updated_at", .type = DC_FT_DATETIME,
	    .flags = DC_F_NULLABLE },
	{ .name = NULL }
};
static const struct dc_model upsert_model = { "ConversationUpsertRequest",
    upsert_fields };

/* The columns every statement returns, in this order. */
#define COLS \
	"frontend_session_id, title, target_database_id, conversation_id, " \
	"session_summary, session_state::text, messages::text, " \
	"(extract(epoch from created_at) * 1000000)::int8, " \
	"(extract(epoch from updated_at) * 1000000)::int8"

enum conv_op { OP_LIST = 1, OP_UPSERT, OP_DELETE };

struct convq {
	struct dc_req	*r;
	int		 op;
	struct dc_job	*job;
};

static void
convq_cancel(struct dc_req *r, void *arg)
{
	struct convq *c = arg;

	if (c->job != NULL)
		dc_pool_cancel(c->job);
	free(c);
}

static int
have_sysdb(struct dc_req *r)
{
	return r->w->cfg->system_database_url[0] != '\0';
}

/* jsonb text from the database, written back compact (or dflt). */
static void
write_jsonb(struct dc_jw *j, const struct dc_rows *res, int row, int col,
    const char *dflt)
{
	struct json_object *o;

	if ((dc_rows_cell(res, row, col)->v == NULL) ||
	    (o = json_tokener_parse(dc_rows_text(res, row, col))) == NULL) {
		dc_jw_raw(j, dflt, strlen(dflt));
		return;
	}
	dc_jw_json(j, o);
	json_object_put(o);
}

static void
write_text(struct dc_jw *j, const struct dc_rows *res, int row, int col)
{
	if ((dc_rows_cell(res, row, col)->v == NULL))
		dc_jw_null(j);
	else
		dc_jw_string(j, dc_rows_text(res, row, col));
}

static void
write_time(struct dc_jw *j, const struct dc_rows *res, int row, int col)
{
	char ts[48];

	dc_model_datetime(strtoll(dc_rows_text(res, row, col), NULL, 10), ts,
	    sizeof(ts));
	dc_jw_string(j, ts);
}

/* One ConversationSnapshotPayload from a row of COLS. */
static void
write_row(struct dc_jw *j, const struct dc_rows *res, int row)
{
	dc_jw_object(j);
	dc_jw_key(j, "frontend_session_id");
	write_text(j, res, row, 0);
	dc_jw_key(j, "title");
	write_text(j, res, row, 1);
	dc_jw_key(j, "target_database_id");
	write_text(j, res, row, 2);
	dc_jw_key(j, "conversation_id");
	write_text(j, res, row, 3);
	dc_jw_key(j, "session_summary");
	write_text(j, res, row, 4);
	dc_jw_key(j, "session_state");
	write_jsonb(j, res, row, 5, "{}");
	dc_jw_key(j, "messages");
	write_jsonb(j, res, row, 6, "[]");
	dc_jw_key(j, "created_at");
	write_time(j, res, row, 7);
	dc_jw_key(j, "updated_at");
	write_time(j, res, row, 8);
	dc_jw_object_end(j);
}

static void
reply_jw(struct dc_req *r, struct dc_jw *j)
{
	if (j->err)
		dc_reply_error(r, 500, "out of memory");
	else
		dc_reply_text(r, 200, "application/json", j->buf, j->len);
	dc_jw_free(j);
}

static void
done(const struct dc_qresult *res, void *arg)
{
	struct convq *c = arg;
	struct dc_req *r = c->r;
	struct dc_jw j;
	int i, n;

	c->job = NULL;
	r->cancel = NULL;
	if (res->status != DC_OK) {
		log_warn("%s conversations: system database: %s", r->id,
		    res->error);
		dc_reply_error(r, res->status == DC_EUNAVAIL ? 503 : 500,
		    "system database error: %s", res->error);
		free(c);
		return;
	}
	n = res->rows != NULL ? res->rows->nrows : 0;
	dc_jw_init(&j);
	switch (c->op) {
	case OP_LIST:
		dc_jw_array(&j);
		for (i = 0; i < n; i++)
			write_row(&j, res->rows, i);
		dc_jw_array_end(&j);
		break;
	case OP_UPSERT:
		if (n < 1) {
			dc_jw_free(&j);
			dc_reply_error(r, 500, "Failed to persist conversation "
			    "snapshot");
			free(c);
			return;
		}
		write_row(&j, res->rows, 0);
		break;
	default:
		dc_jw_object(&j);
		dc_jw_key(&j, "ok");
		dc_jw_bool(&j, 1);
		dc_jw_key(&j, "deleted");
		dc_jw_bool(&j, n > 0);
		dc_jw_object_end(&j);
		break;
	}
	reply_jw(r, &j);
	free(c);
}

static void
run(struct dc_req *r, int op, const char *sql, int nparams,
    const char *const *params)
{
	struct convq *c = calloc(1, sizeof(*c));
	const char *const *pp[1] = { params };

	if (c == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	c->r = r;
	c->op = op;
	dc_req_defer(r, convq_cancel, c);
	if (dc_pool_sysdb(r->w->pool, 1, &sql, &nparams, pp, done, c,
	    &c->job) != DC_OK) {
		r->cancel = NULL;
		dc_reply_error(r, 500, "cannot start the system database "
		    "statement");
		free(c);
	}
}

static void
list_conversations(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *q;
	const char *params[1];
	char lim[24];
	int64_t n;

	if (dc_req_query(r, &list_model, v, &q) != DC_OK)
		return;
	json_object_put(q);
	if (!have_sysdb(r)) {
		dc_reply_text(r, 200, "application/json", "[]", 2);
		return;
	}
	n = v[0].i < 1 ? 1 : v[0].i > 200 ? 200 : v[0].i;
	snprintf(lim, sizeof(lim), "%lld", (long long)n);
	params[0] = lim;
	run(r, OP_LIST, "SELECT " COLS " FROM ui_conversations "
	    "ORDER BY updated_at DESC LIMIT $1::int", 1, params);
}

/* The last MAX_MESSAGES messages, as JSON text. */
static char *
trimmed_messages(struct json_object *msgs)
{
	struct json_object *a;
	struct dc_jb b = { 0 };
	size_t n, i, from;
	char *s;

	if (msgs == NULL)
		return strdup("[]");
	n = json_object_array_length(msgs);
	from = n > MAX_MESSAGES ? n - MAX_MESSAGES : 0;
	a = json_object_new_array();
	for (i = from; i < n; i++)
		dc_jb_push(&b, a,
		    json_object_get(json_object_array_get_idx(msgs, i)));
	if ((a = dc_jb_done(&b, a)) == NULL)
		return NULL;
	s = dc_jw_text(a, NULL);
	json_object_put(a);
	return s;
}

/* No system database: DataChat answers the snapshot it was sent. */
static void
upsert_logs_only(struct dc_req *r, struct dc_val *v, const char *msgs)
{
	struct dc_jw j;
	char now[48], upd[48];

	dc_model_datetime((int64_t)dc_wall_ms() * 1000, now, sizeof(now));
	if (!v[P_UPDATED].null)
		dc_model_datetime(v[P_UPDATED].usec, upd, sizeof(upd));
	dc_jw_init(&j);
	dc_jw_object(&j);
	dc_jw_key(&j, "frontend_session_id");
	dc_jw_string(&j, r->args[0]);
	dc_jw_key(&j, "title");
	dc_jw_string(&j, v[P_TITLE].s);
	dc_jw_key(&j, "target_database_id");
	dc_jw_string(&j, v[P_TARGET].null ? NULL : v[P_TARGET].s);
	dc_jw_key(&j, "conversation_id");
	dc_jw_string(&j, v[P_CONV].null ? NULL : v[P_CONV].s);
	dc_jw_key(&j, "session_summary");
	dc_jw_string(&j, v[P_SUMMARY].null ? NULL : v[P_SUMMARY].s);
	dc_jw_key(&j, "session_state");
	if (v[P_STATE].v != NULL)
		dc_jw_json(&j, v[P_STATE].v);
	else
		dc_jw_raw(&j, "{}", 2);
	dc_jw_key(&j, "messages");
	dc_jw_raw(&j, msgs, strlen(msgs));
	dc_jw_key(&j, "created_at");
	dc_jw_string(&j, now);
	dc_jw_key(&j, "updated_at");
	dc_jw_string(&j, v[P_UPDATED].null ? now : upd);
	dc_jw_object_end(&j);
	log_info("%s conversation snapshot (logs only): %zu bytes of messages",
	    r->id, strlen(msgs));
	reply_jw(r, &j);
}

static void
upsert_conversation(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL;
	const char *params[8];
	char *msgs = NULL, *state = NULL, upd[48];

	if (dc_req_model(r, &upsert_model, 0, v, &body) != DC_OK)
		return;
	if ((msgs = trimmed_messages(v[P_MESSAGES].v)) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	if (!have_sysdb(r)) {
		upsert_logs_only(r, v, msgs);
		goto out;
	}
	if (v[P_STATE].v != NULL &&
	    (state = dc_jw_text(v[P_STATE].v, NULL)) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	if (!v[P_UPDATED].null)
		dc_model_datetime(v[P_UPDATED].usec, upd, sizeof(upd));
	params[0] = r->args[0];
	params[1] = v[P_TITLE].s;
	params[2] = v[P_TARGET].null ? NULL : v[P_TARGET].s;
	params[3] = v[P_CONV].null ? NULL : v[P_CONV].s;
	params[4] = v[P_SUMMARY].null ? NULL : v[P_SUMMARY].s;
	params[5] = state != NULL ? state : "{}";
	params[6] = msgs;
	params[7] = v[P_UPDATED].null ? NULL : upd;
	/*
	 * One statement: insert, or replace an older row; when the stored
	 * row is as new or newer, answer it unchanged.
	 */
	run(r, OP_UPSERT, "WITH up AS (INSERT INTO ui_conversations "
	    "(frontend_session_id, title, target_database_id, conversation_id, "
	    "session_summary, session_state, messages, created_at, updated_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, now(), "
	    "COALESCE($8::timestamptz, now())) "
	    "ON CONFLICT (frontend_session_id) DO UPDATE SET "
	    "title = EXCLUDED.title, "
	    "target_database_id = EXCLUDED.target_database_id, "
	    "conversation_id = EXCLUDED.conversation_id, "
	    "session_summary = EXCLUDED.session_summary, "
	    "session_state = EXCLUDED.session_state, "
	    "messages = EXCLUDED.messages, updated_at = EXCLUDED.updated_at "
	    "WHERE EXCLUDED.updated_at > ui_conversations.updated_at "
	    "RETURNING " COLS ") "
	    "SELECT * FROM up UNION ALL SELECT " COLS " FROM ui_conversations "
	    "WHERE frontend_session_id = $1 AND NOT EXISTS (SELECT 1 FROM up)",
	    8, params);
out:
	free(msgs);
	free(state);
	json_object_put(body);
}

static void
delete_conversation(struct dc_req *r)
{
	const char *params[1];

	if (!have_sysdb(r)) {
		dc_reply_text(r, 200, "application/json",
		    "{\"ok\":true,\"deleted\":false}", 27);
		return;
	}
	params[0] = r->args[0];
	run(r, OP_DELETE, "DELETE FROM ui_conversations WHERE "
	    "frontend_session_id = $1 RETURNING 1", 1, params);
}

const struct dc_route dc_routes_conversations[] = {
	{ "GET", "/api/v1/conversations", list_conversations, DC_ROLE_QUERY },
	{ "PUT", "/api/v1/conversations/{id}",
	    upsert_conversation, DC_ROLE_QUERY },
	{ "DELETE", "/api/v1/conversations/{id}",
	    delete_conversation, DC_ROLE_QUERY },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_conversations[] = {
	{ "GET /api/v1/conversations", "query", &list_model },
	{ "PUT /api/v1/conversations/{id}", "body", &upsert_model },
	{ NULL, NULL, NULL }
};
