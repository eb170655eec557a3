/*
 * feedback.c - /api/v1/feedback: the web UI's thumbs up and down and
 * issue reports, in DataChat's ui_feedback table of the system database
 * (feedback/store.py), and the per-category counts of a recent window.
 *
 *   POST /api/v1/feedback                  {"ok","feedback_id","saved_to",
 *                                            "created_at"}
 *   GET  /api/v1/feedback/summary?days=30  {"window_days","totals":[...]}
 *
 * Without a system database DataChat logs the feedback and says so
 * (saved_to "logs_only"); so does this, without the free text.
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

static const char *const categories[] = { "answer_feedback", "issue_report",
    "improvement_suggestion", NULL };
static const char *const sentiments[] = { "up", "down", NULL };

enum { F_CATEGORY, F_SENTIMENT, F_MESSAGE, F_CONV, F_MSGID, F_TARGET,
    F_SOURCE, F_CONFIDENCE, F_QUERY, F_ANSWER, F_SQL, F_SOURCES,
    F_METADATA };
static const struct dc_field submit_fields[] = {
	{ .name = "category", .type = DC_FT_LITERAL, .flags = DC_F_REQUIRED,
	    .choices = categories },
	{ .name = "sentiment", .type = DC_FT_LITERAL, .flags = DC_F_NULLABLE,
	    .choices = sentiments },
	{ .name = "message", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "conversation_id", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "message_id", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "target_database_id", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "answer_source", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "answer_confidence", .type = DC_FT_FLOAT,
	    .flags = DC_F_NULLABLE },
	{ .name = "query", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "answer", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "sql", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "sources", .type = DC_FT_LIST_DICT, .flags = DC_F_NULLABLE },
	{ .name = "metadata", .type = DC_FT_DICT, .flags = DC_F_NULLABLE },
	{ .name = NULL }
};
static const struct dc_model submit_model = { "FeedbackSubmitRequest",
    submit_fields };

static const struct dc_field summary_fields[] = {
	{ .name = "days", .type = DC_FT_INT, .dflt = "30" },
	{ .name = NULL }
};
static const struct dc_model summary_model = { "get_feedback_summary",
    summary_fields };

struct fbq {
	struct dc_req	*r;
	struct dc_job	*job;
	int		 summary;
	int64_t		 days;
	char		 id[DC_UUID_STR_LEN + 1];
	char		 created[48];
};

static void
fbq_cancel(struct dc_req *r, void *arg)
{
	struct fbq *f = arg;

	if (f->job != NULL)
		dc_pool_cancel(f->job);
	free(f);
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
write_saved(struct dc_req *r, const char *id, const char *saved_to,
    const char *created)
{
	struct dc_jw j;

	dc_jw_init(&j);
	dc_jw_object(&j);
	dc_jw_key(&j, "ok");
	dc_jw_bool(&j, 1);
	dc_jw_key(&j, "feedback_id");
	dc_jw_string(&j, id);
	dc_jw_key(&j, "saved_to");
	dc_jw_string(&j, saved_to);
	dc_jw_key(&j, "created_at");
	dc_jw_string(&j, created);
	dc_jw_object_end(&j);
	reply_jw(r, &j);
}

static void
write_summary(struct dc_req *r, int64_t days, const struct dc_rows *res)
{
	struct dc_jw j;
	int i, n = res != NULL ? res->nrows : 0;

	dc_jw_init(&j);
	dc_jw_object(&j);
	dc_jw_key(&j, "window_days");
	dc_jw_int(&j, days);
	dc_jw_key(&j, "totals");
	dc_jw_array(&j);
	for (i = 0; i < n; i++) {
		dc_jw_object(&j);
		dc_jw_key(&j, "category");
		dc_jw_string(&j, dc_rows_text(res, i, 0));
		dc_jw_key(&j, "sentiment");
		dc_jw_string(&j, (dc_rows_cell(res, i, 1)->v == NULL) ? NULL :
		    dc_rows_text(res, i, 1));
		dc_jw_key(&j, "count");
		dc_jw_int(&j, strtoll(dc_rows_text(res, i, 2), NULL, 10));
		dc_jw_object_end(&j);
	}
	dc_jw_array_end(&j);
	dc_jw_object_end(&j);
	reply_jw(r, &j);
}

static void
done(const struct dc_qresult *res, void *arg)
{
	struct fbq *f = arg;
	struct dc_req *r = f->r;

	f->job = NULL;
	r->cancel = NULL;
	if (res->status != DC_OK) {
		log_warn("%s feedback: system database: %s", r->id, res->error);
		dc_reply_error(r, res->status == DC_EUNAVAIL ? 503 : 500,
		    "system database error: %s", res->error);
	} else if (f->summary)
		write_summary(r, f->days, res->rows);
	else
		write_saved(r, f->id, "system_database", f->created);
	free(f);
}

static int
start(struct fbq *f, const char *sql, int nparams, const char *const *params)
{
	const char *const *pp[1] = { params };

	dc_req_defer(f->r, fbq_cancel, f);
	if (dc_pool_sysdb(f->r->w->pool, 1, &sql, &nparams, pp, done, f,
	    &f->job) != DC_OK) {
		f->r->cancel = NULL;
		dc_reply_error(f->r, 500, "cannot start the system database "
		    "statement");
		free(f);
		return DC_ERR;
	}
	return DC_OK;
}

static const char *
opt(const struct dc_val *v)
{
	return v->null ? NULL : v->s;
}

static void
submit_feedback(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL, *ctx = NULL;
	const char *params[11];
	static const struct { const char *key; int field; } ctx_fields[] = {
		{ "query", F_QUERY }, { "answer", F_ANSWER }, { "sql", F_SQL } };
	struct fbq *f = NULL;
	struct dc_jb b = { 0 };
	uint8_t id[16];
	char conf[40], *ctx_text = NULL;
	int i;

	if (dc_req_model(r, &submit_model, 0, v, &body) != DC_OK)
		return;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    dc_uuid_generate(id) != DC_OK) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	f->r = r;
	dc_uuid_format(id, f->id);
	/* created_at.isoformat() of an aware UTC datetime: +00:00 */
	dc_iso8601((int64_t)dc_wall_ms() * 1000, f->created,
	    sizeof(f->created));
	if (r->w->cfg->system_database_url[0] == '\0') {
		log_info("%s feedback %s (logs only): category %s, sentiment %s",
		    r->id, f->id, v[F_CATEGORY].s, v[F_SENTIMENT].null ? "-" :
		    v[F_SENTIMENT].s);
		write_saved(r, f->id, "logs_only", f->created);
		goto out;
	}
	/* DataChat's context column: the answer the feedback is about */
	ctx = json_object_new_object();
	for (i = 0; i < 3; i++) {
		const struct dc_val *cv = &v[ctx_fields[i].field];

		if (cv->null)
			dc_jb_null(&b, ctx, ctx_fields[i].key);
		else
			dc_jb_add(&b, ctx, ctx_fields[i].key,
			    json_object_get(cv->v));
	}
	dc_jb_add(&b, ctx, "sources", v[F_SOURCES].v != NULL &&
	    !v[F_SOURCES].null ? json_object_get(v[F_SOURCES].v) :
	    json_object_new_array());
	dc_jb_add(&b, ctx, "metadata", v[F_METADATA].v != NULL &&
	    !v[F_METADATA].null ? json_object_get(v[F_METADATA].v) :
	    json_object_new_object());
	if ((ctx = dc_jb_done(&b, ctx)) == NULL ||
	    (ctx_text = dc_jw_text(ctx, NULL)) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	snprintf(conf, sizeof(conf), "%.17g", v[F_CONFIDENCE].d);
	params[0] = f->id;
	params[1] = v[F_CATEGORY].s;
	params[2] = opt(&v[F_SENTIMENT]);
	params[3] = opt(&v[F_MESSAGE]);
	params[4] = ctx_text;
	params[5] = opt(&v[F_CONV]);
	params[6] = opt(&v[F_MSGID]);
	params[7] = opt(&v[F_TARGET]);
	params[8] = opt(&v[F_SOURCE]);
	params[9] = v[F_CONFIDENCE].null ? NULL : conf;
	params[10] = f->created;
	if (start(f, "INSERT INTO ui_feedback (feedback_id, category, "
	    "sentiment, message, context, conversation_id, message_id, "
	    "target_database_id, answer_source, answer_confidence, created_at) "
	    "VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, "
	    "$10::float8, $11::timestamptz)", 11, params) == DC_OK)
		f = NULL;	/* done() frees it */
	else
		f = NULL;	/* start() freed it */
out:
	free(f);
	free(ctx_text);
	json_object_put(ctx);
	json_object_put(body);
}

static void
feedback_summary(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *q;
	const char *params[1];
	struct fbq *f;
	char days[24];

	if (dc_req_query(r, &summary_model, v, &q) != DC_OK)
		return;
	json_object_put(q);
	if (v[0].i < 1)
		v[0].i = 1;	/* max(days, 1) */
	if (r->w->cfg->system_database_url[0] == '\0') {
		write_summary(r, v[0].i, NULL);
		return;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	f->r = r;
	f->summary = 1;
	f->days = v[0].i;
	/* a window past any stored row: the interval must still exist */
	snprintf(days, sizeof(days), "%lld", (long long)(v[0].i > 3650000 ?
	    3650000 : v[0].i));
	params[0] = days;
	start(f, "SELECT category, sentiment, count(*) FROM ui_feedback "
	    "WHERE created_at >= now() - make_interval(days => $1::int) "
	    "GROUP BY category, sentiment ORDER BY category, sentiment", 1,
	    params);
}

const struct dc_route dc_routes_feedback[] = {
	{ "POST", "/api/v1/feedback", submit_feedback, DC_ROLE_QUERY },
	{ "GET", "/api/v1/feedback/summary", feedback_summary, DC_ROLE_READ },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_feedback[] = {
	{ "POST /api/v1/feedback", "body", &submit_model },
	{ "GET /api/v1/feedback/summary", "query", &summary_model },
	{ NULL, NULL, NULL }
};
