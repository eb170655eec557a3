/*
 * routes_ops.c - operational routes: GET /api/v1/health (the process is
 * up and serving) and GET /api/v1/ready (the registry can be trusted).
 * A load balancer sends traffic only to a ready instance.
 */
#include <stdio.h>
#include <unistd.h>

#include "dc.h"
#include "http.h"
#include "shreg.h"
#include "util.h"
#include "worker.h"

static void
health(struct dc_req *r)
{
	struct json_object *o = json_object_new_object();
	char ts[48];

	dc_iso8601((int64_t)dc_wall_ms() * 1000, ts, sizeof(ts));
	json_object_object_add(o, "status", json_object_new_string("healthy"));
	json_object_object_add(o, "version", json_object_new_string(DC_VERSION));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	json_object_object_add(o, "worker", json_object_new_int(r->w->index));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	dc_reply_json(r, 200, o);
}

static const char *
state_name(const struct dc_worker *w, int state)
{
	if (w->cfg->system_database_url[0] == '\0')
		return "disabled";
	switch (state) {
	case DC_REG_FRESH:	return "fresh";
	case DC_REG_STALE:	return "stale";
	default:		return "not_loaded";
	}
}

static void
ready(struct dc_req *r)
{
	struct dc_worker *w = r->w;
	struct json_object *o = json_object_new_object(), *reg;
	int state = dc_shreg_state(w->reg), ok;
	const char *why = NULL;
	char ts[48];

	reg = json_object_new_object();
	json_object_object_add(reg, "state",
	    json_object_new_string(state_name(w, state)));
	json_object_object_add(reg, "entries",
	    json_object_new_int(dc_shreg_count(w->reg)));
	json_object_object_add(reg, "capacity",
	    json_object_new_int(dc_shreg_capacity(w->reg)));
	json_object_object_add(reg, "generation",
	    json_object_new_int64((int64_t)dc_shreg_gen(w->reg)));
	json_object_object_add(reg, "undecryptable_rows",
	    json_object_new_int(dc_shreg_bad_rows(w->reg)));
	if (dc_shreg_last_resync(w->reg) != 0) {
		dc_iso8601((int64_t)dc_shreg_last_resync(w->reg) * 1000, ts,
		    sizeof(ts));
		json_object_object_add(reg, "last_resync",
		    json_object_new_string(ts));
	}
	json_object_object_add(o, "registry", reg);

	if (w->cfg->system_database_url[0] == '\0')
		ok = 1;
	else if (state == DC_REG_FRESH)
		ok = 1;
	else {
		ok = 0;
		why = state == DC_REG_STALE ?
		    "registry is stale: the system database connection was "
		    "lost; serving the last registry while reconnecting" :
		    "registry not loaded yet: the system database is not "
		    "reachable";
	}
	json_object_object_add(o, "status",
	    json_object_new_string(ok ? "ready" : "not_ready"));
	if (why != NULL)
		json_object_object_add(o, "detail", json_object_new_string(why));
	dc_reply_json(r, ok ? 200 : 503, o);
}

const struct dc_route dc_routes_ops[] = {
	{ "GET", "/api/v1/health", health },
	{ "GET", "/api/v1/ready", ready },
	{ "GET", "/health", health },
	{ NULL, NULL, NULL }
};
