/*
 * system.c - /api/v1/system: what DataChat's web UI and CLI ask before
 * anything else (is a target database there, is there a system
 * database), and the "system not initialized" answer a chat gets when
 * no target exists anywhere.
 *
 * DataChat derives its status from its process state; datachatd from
 * the shared registry and DATABASE_URL: a database is there when the
 * registry holds a connection or DATABASE_URL is set, the system
 * database when the registry can store connections.  datachatd never
 * loads DataPoints (it answers from the live schema), so has_datapoints
 * is false and the DataPoints step is always listed, as DataChat lists
 * it for an installation without them.
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
#include "shreg.h"
#include "system.h"
#include "target.h"
#include "worker.h"

void
dc_system_status(struct dc_worker *w, struct dc_system_status *st)
{
	memset(st, 0, sizeof(*st));
	st->has_system_database = dc_target_registry_usable(w);
	st->has_databases = (w->cfg->database_url != NULL &&
	    w->cfg->database_url[0] != '\0') ||
	    (st->has_system_database && dc_shreg_count(w->reg) > 0);
	st->has_datapoints = 0;
	st->is_initialized = st->has_databases;
}

/* DataChat's SetupStep list for a status, in its order and words. */
void
dc_system_write_steps(struct dc_jw *j, const struct dc_system_status *st)
{
	dc_jw_array(j);
	if (!st->has_databases) {
		dc_jw_object(j);
		dc_jw_key(j, "step");
		dc_jw_string(j, "database_connection");
		dc_jw_key(j, "title");
		dc_jw_string(j, "Connect a target database");
		dc_jw_key(j, "description");
		dc_jw_string(j, "Provide the database you want DataChat to "
		    "query.");
		dc_jw_key(j, "action");
		dc_jw_string(j, "configure_database");
		dc_jw_object_end(j);
	}
	if (!st->has_system_database) {
		dc_jw_object(j);
		dc_jw_key(j, "step");
		dc_jw_string(j, "system_database");
		dc_jw_key(j, "title");
		dc_jw_string(j, "System database (optional)");
		dc_jw_key(j, "description");
		dc_jw_string(j, "Configure SYSTEM_DATABASE_URL to enable "
		    "registry/profiling and run the demo dataset.");
		dc_jw_key(j, "action");
		dc_jw_string(j, "configure_system_database");
		dc_jw_object_end(j);
	}
	if (!st->has_datapoints) {
		dc_jw_object(j);
		dc_jw_key(j, "step");
		dc_jw_string(j, "datapoints");
		dc_jw_key(j, "title");
		dc_jw_string(j, "Load DataPoints (Recommended)");
		dc_jw_key(j, "description");
		dc_jw_string(j, "Optional but recommended: add DataPoints "
		    "describing your schema and business logic for higher "
		    "answer quality (or run datachat demo for sample data).");
		dc_jw_key(j, "action");
		dc_jw_string(j, "load_datapoints");
		dc_jw_object_end(j);
	}
	dc_jw_array_end(j);
}

/* The status fields, inside an object the caller opened. */
void
dc_system_write_status(struct dc_jw *j, const struct dc_system_status *st)
{
	dc_jw_key(j, "is_initialized");
	dc_jw_bool(j, st->is_initialized);
	dc_jw_key(j, "has_databases");
	dc_jw_bool(j, st->has_databases);
	dc_jw_key(j, "has_system_database");
	dc_jw_bool(j, st->has_system_database);
	dc_jw_key(j, "has_datapoints");
	dc_jw_bool(j, st->has_datapoints);
	dc_jw_key(j, "setup_required");
	dc_system_write_steps(j, st);
}

static void
reply_jw(struct dc_req *r, int status, struct dc_jw *j)
{
	if (j->err)
		dc_reply_error(r, 500, "out of memory");
	else
		dc_reply_text(r, status, "application/json", j->buf, j->len);
	dc_jw_free(j);
}

void
dc_system_write_not_initialized(struct dc_worker *w, struct dc_jw *j)
{
	struct dc_system_status st;

	dc_system_status(w, &st);
	dc_jw_key(j, "error");
	dc_jw_string(j, "system_not_initialized");
	dc_jw_key(j, "message");
	dc_jw_string(j, DC_NOT_INITIALIZED_MESSAGE);
	dc_jw_key(j, "setup_steps");
	dc_system_write_steps(j, &st);
}

void
dc_reply_not_initialized(struct dc_req *r)
{
	struct dc_jw j;

	dc_jw_init(&j);
	dc_jw_object(&j);
	dc_system_write_not_initialized(r->w, &j);
	dc_jw_object_end(&j);
	reply_jw(r, 400, &j);
}

/* GET /api/v1/system/status */
static void
system_status(struct dc_req *r)
{
	struct dc_system_status st;
	struct dc_jw j;

	dc_system_status(r->w, &st);
	dc_jw_init(&j);
	dc_jw_object(&j);
	dc_system_write_status(&j, &st);
	dc_jw_object_end(&j);
	reply_jw(r, 200, &j);
}

/* {"message": ..., status...} or {status..., "message": ...}. */
static void
reply_status_message(struct dc_req *r, const char *message, int first)
{
	struct dc_system_status st;
	struct dc_jw j;

	dc_system_status(r->w, &st);
	dc_jw_init(&j);
	dc_jw_object(&j);
	if (first) {
		dc_jw_key(&j, "message");
		dc_jw_string(&j, message);
	}
	dc_system_write_status(&j, &st);
	if (!first) {
		dc_jw_key(&j, "message");
		dc_jw_string(&j, message);
	}
	dc_jw_object_end(&j);
	reply_jw(r, 200, &j);
}

/* --- POST /api/v1/system/entry-event: the UI's and CLI's telemetry --- */

enum { E_FLOW, E_STEP, E_STATUS, E_SOURCE, E_METADATA };
static const struct dc_field entry_fields[] = {
	{ .name = "flow", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1 },
	{ .name = "step", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1 },
	{ .name = "status", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = "source", .type = DC_FT_STR, .dflt = "ui" },
	{ .name = "metadata", .type = DC_FT_DICT, .flags = DC_F_NULLABLE },
	{ .name = NULL }
};
static const struct dc_model entry_model = { "EntryEventRequest",
    entry_fields };

static void
entry_event(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body;

	if (dc_req_model(r, &entry_model, 0, v, &body) != DC_OK)
		return;
	/* DataChat logs it and nothing else; its metadata stays out */
	log_info("%s entry_event flow=%.64s step=%.64s status=%.32s "
	    "source=%.32s", r->id, v[E_FLOW].s, v[E_STEP].s, v[E_STATUS].s,
	    v[E_SOURCE].s);
	json_object_put(body);
	dc_reply_text(r, 200, "application/json", "{\"ok\":true}", 11);
}

/* --- POST /api/v1/system/initialize --- */

enum { I_URL, I_SYSURL, I_PROFILE };
static const struct dc_field init_fields[] = {
	{ .name = "database_url", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE | DC_F_SECRET },
	{ .name = "system_database_url", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE | DC_F_SECRET },
	{ .name = "auto_profile", .type = DC_FT_BOOL, .dflt = "false" },
	{ .name = NULL }
};
static const struct dc_model init_model = { "SystemInitializeRequest",
    init_fields };

#define INIT_DONE	"Initialization completed."
#define INIT_NO_PROFILE	"Initialization completed, but auto-profiling is " \
	"unavailable. datachatd runs in live schema mode and does not " \
	"profile databases."

static void
initialized(struct dc_req *r, void *arg)
{
	reply_status_message(r, arg != NULL ? INIT_NO_PROFILE : INIT_DONE, 1);
}

static void
system_initialize(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body;
	int profile;

	if (dc_req_model(r, &init_model, 0, v, &body) != DC_OK)
		return;
	profile = (int)v[I_PROFILE].i && !v[I_URL].null && v[I_URL].slen > 0;
	if (!v[I_SYSURL].null && v[I_SYSURL].slen > 0 &&
	    strcmp(v[I_SYSURL].s, r->w->cfg->system_database_url) != 0) {
		dc_reply_error(r, 400, "datachatd reads its system database "
		    "from SYSTEM_DATABASE_URL (or system_database_url in its "
		    "configuration); it cannot be changed through the API.");
	} else if (!v[I_URL].null && v[I_URL].slen > 0)
		/* a "non-NULL" arg says auto-profiling was asked for */
		dc_databases_setup_register(r, v[I_URL].s, initialized,
		    profile ? (void *)r : NULL);
	else
		initialized(r, NULL);
	json_object_put(body);
}

/* --- POST /api/v1/system/reset --- */

/*
 * DataChat truncates its tables: the registry, profiling, pending
 * DataPoints, generation jobs, UI feedback and conversations.  Those that
 * exist in this system database are truncated in one statement (the
 * registry's trigger tells every datachatd), then the master reloads the
 * registry, and the answer waits until it has published it.
 */
static const char reset_sql[] =
	"DO $dc$ DECLARE t text; list text := ''; BEGIN "
	"FOREACH t IN ARRAY ARRAY['database_connections', 'profiling_jobs', "
	"'profiling_profiles', 'pending_datapoints', "
	"'datapoint_generation_jobs', 'ui_feedback', 'ui_conversations'] LOOP "
	"IF to_regclass(t) IS NOT NULL THEN "
	"list := list || CASE WHEN list = '' THEN '' ELSE ', ' END || "
	"quote_ident(t); END IF; END LOOP; "
	"IF list <> '' THEN EXECUTE 'TRUNCATE ' || list; END IF; "
	"END $dc$";

struct reset {
	struct dc_req	*r;		/* NULL once the client left */
	struct dc_job	*job;
	int		 refreshing;
};

static void
reset_cancel(struct dc_req *r, void *arg)
{
	struct reset *x = arg;

	if (x->refreshing) {
		x->r = NULL;	/* the master's answer frees x */
		return;
	}
	if (x->job != NULL)
		dc_pool_cancel(x->job);
	free(x);
}

static void
reset_published(int status, uint64_t gen, void *arg)
{
	struct reset *x = arg;

	if (x->r != NULL) {
		x->r->cancel = NULL;
		if (status != DC_OK)
			log_warn("%s reset: the master could not reload the "
			    "registry yet", x->r->id);
		reply_status_message(x->r, "System reset complete.", 0);
	}
	free(x);
}

static void
reset_done(const struct dc_qresult *res, void *arg)
{
	struct reset *x = arg;
	struct dc_req *r = x->r;

	x->job = NULL;
	if (res->status != DC_OK) {
		r->cancel = NULL;
		dc_reply_error(r, res->status == DC_EUNAVAIL ? 503 : 500,
		    "system database error; nothing was reset: %s", res->error);
		free(x);
		return;
	}
	log_info("%s system reset: DataChat's tables truncated", r->id);
	x->refreshing = 1;
	if (dc_worker_request_refresh(r->w, NULL, reset_published, x) !=
	    DC_OK) {
		r->cancel = NULL;
		dc_reply_error(r, 503, "the tables were truncated but the master "
		    "is not reachable to publish the empty registry");
		free(x);
	}
}

static void
system_reset(struct dc_req *r)
{
	const char *sql = reset_sql;
	const char *const *pp[1] = { NULL };
	int np = 0;
	struct reset *x;

	if (r->w->cfg->system_database_url[0] == '\0') {
		reply_status_message(r, "System reset complete.", 0);
		return;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	x->r = r;
	dc_req_defer(r, reset_cancel, x);
	if (dc_pool_sysdb(r->w->pool, 1, &sql, &np, pp, reset_done, x,
	    &x->job) != DC_OK) {
		r->cancel = NULL;
		dc_reply_error(r, 500, "cannot start the system database "
		    "statement");
		free(x);
	}
}

const struct dc_route dc_routes_system[] = {
	{ "GET", "/api/v1/system/status", system_status, DC_ROLE_READ },
	{ "POST", "/api/v1/system/initialize",
	    system_initialize, DC_ROLE_ADMIN },
	{ "POST", "/api/v1/system/reset", system_reset, DC_ROLE_ADMIN },
	{ "POST", "/api/v1/system/entry-event", entry_event, DC_ROLE_QUERY },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_system[] = {
	{ "POST /api/v1/system/entry-event", "body", &entry_model },
	{ "POST /api/v1/system/initialize", "body", &init_model },
	{ NULL, NULL, NULL }
};
