/*
 * target.c - target resolution, the environment entry, and the JSON
 * shape of a connection (target.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "driver.h"
#include "jsonw.h"
#include "model.h"
#include "target.h"
#include "util.h"
#include "worker.h"

int
dc_target_is_env(const uint8_t id[16])
{
	uint8_t env[16];

	dc_uuid_parse(DC_ENV_ENTRY_ID, env);
	return memcmp(id, env, 16) == 0;
}

/*
 * Whether the registry holds DATABASE_URL itself, and whether it has a
 * default: both only change with the registry generation, so a worker
 * scans the registry once per generation, not once per request.
 */
static int
env_scan(struct dc_worker *w, const char *url, int *dup, int *has_default)
{
	static uint64_t seen_gen = UINT64_MAX;
	static int seen_dup, seen_default;
	uint64_t gen = dc_shreg_gen(w->reg);
	struct dc_entry *all;
	int i, n, max;

	if (gen != seen_gen) {
		max = dc_shreg_count(w->reg) + 16;
		if (max > dc_shreg_capacity(w->reg))
			max = dc_shreg_capacity(w->reg);
		all = calloc((size_t)max + 1, sizeof(*all));
		if (all == NULL)
			return DC_ENOMEM;
		n = dc_shreg_list(w->reg, all, max);
		seen_dup = seen_default = 0;
		for (i = 0; i < n; i++) {
			if (strcmp(all[i].url, url) == 0)
				seen_dup = 1;
			if (all[i].is_default)
				seen_default = 1;
		}
		dc_explicit_bzero(all, (size_t)n * sizeof(*all));
		free(all);
		seen_gen = gen;
	}
	*dup = seen_dup;
	*has_default = seen_default;
	return DC_OK;
}

int
dc_target_env_entry(struct dc_worker *w, struct dc_entry *e)
{
	const char *url = w->cfg->database_url;
	const char *type;
	int dup, has_default;

	if (url == NULL || url[0] == '\0')
		return DC_ENOENT;
	if (env_scan(w, url, &dup, &has_default) != DC_OK)
		return DC_ENOMEM;
	memset(e, 0, sizeof(*e));
	dc_uuid_parse(DC_ENV_ENTRY_ID, e->id);
	e->gen = 1;
	e->is_active = 1;
	e->is_default = !has_default;
	type = dc_url_type(url);
	dc_strlcpy(e->type, type != NULL ? type : "postgresql", sizeof(e->type));
	dc_strlcpy(e->name, "Environment Database", sizeof(e->name));
	dc_strlcpy(e->url, url, sizeof(e->url));
	dc_strlcpy(e->tags, "[\"env\"]", sizeof(e->tags));
	e->has_description = 1;
	dc_strlcpy(e->description, "Loaded from DATABASE_URL",
	    sizeof(e->description));
	e->created_at = (int64_t)w->stats->started_ms * 1000;
	return DC_OK;
}

int
dc_target_env_listed(struct dc_worker *w, struct dc_entry *e)
{
	int dup, has_default, rc;

	if ((rc = dc_target_env_entry(w, e)) != DC_OK)
		return rc;
	/* the list leaves it out when the registry holds the same URL */
	if ((rc = env_scan(w, w->cfg->database_url, &dup, &has_default)) !=
	    DC_OK || dup) {
		dc_explicit_bzero(e, sizeof(*e));
		return rc != DC_OK ? rc : DC_ENOENT;
	}
	return DC_OK;
}

int
dc_target_registry_usable(struct dc_worker *w)
{
	return w->cfg->system_database_url[0] != '\0' && w->ring->nkeys > 0;
}

static int
fail(struct dc_resolve_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct dc_resolve_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return DC_ERR;
}

/* env_scan and the environment entry fail only for want of memory */
#define OOM(err)	fail(err, 500, "out of memory")

/*
 * DataChat's resolve_database_type_and_url.  A target that is given
 * (a non-empty string) is looked up in the registry, where one that is
 * not a UUID is "Invalid connection ID.", then compared with the
 * environment entry's id; unknown is a KeyError, whose str() keeps its
 * quotes.  No target: the registry default, else DATABASE_URL (even
 * when a registry row holds the same URL), else nothing
 * (DC_ENOENT: the caller says the system is not initialized).
 */
static int
resolve_entry(struct dc_worker *w, struct json_object *target,
    struct dc_entry *e, struct dc_resolve_err *err)
{
	int registry = dc_target_registry_usable(w);
	int loaded = dc_shreg_state(w->reg) != DC_REG_NEVER_LOADED;
	int env = w->cfg->database_url != NULL && w->cfg->database_url[0] != '\0';
	int dup, has_default, rc;
	const char *want;
	uint8_t id[16];

	if (target != NULL && json_object_is_type(target, json_type_string) &&
	    json_object_get_string_len(target) > 0) {
		want = json_object_get_string(target);
		/* a NUL inside would end the C string early: refuse it */
		if ((size_t)json_object_get_string_len(target) != strlen(want))
			return fail(err, 400, "Invalid connection ID.");
		if (registry) {
			if (!loaded)
				return fail(err, 503, "the connection registry is "
				    "not loaded yet (system database "
				    "unreachable); not falling back to another "
				    "database");
			if (dc_model_uuid_lax(want, id) != DC_OK)
				return fail(err, 400, "Invalid connection ID.");
			if (dc_shreg_get(w->reg, id, e) == DC_OK)
				return DC_OK;
		}
		if (env && strcmp(want, DC_ENV_ENTRY_ID) == 0 &&
		    (rc = dc_target_env_entry(w, e)) != DC_ENOENT)
			return rc == DC_OK ? DC_OK : OOM(err);
		if (!env && !registry)
			return fail(err, 404, "'Database connection not found "
			    "and DATABASE_URL is not configured.'");
		return fail(err, 404, "'Database connection not found: %.200s'",
		    want);
	}
	if (registry && !loaded)
		return fail(err, 503, "the connection registry is not loaded "
		    "yet (system database unreachable), so the default "
		    "database is unknown");
	/*
	 * env_scan knows, once per generation, whether the registry holds a
	 * default: when it does not, the environment entry is the default
	 * and no registry slot need be read.
	 */
	if (env && env_scan(w, w->cfg->database_url, &dup, &has_default) !=
	    DC_OK)
		return OOM(err);
	if (env && !has_default)
		return dc_target_env_entry(w, e) == DC_OK ? DC_OK : OOM(err);
	if (registry && dc_shreg_get_default(w->reg, e) == DC_OK)
		return DC_OK;
	if (env && (rc = dc_target_env_entry(w, e)) != DC_ENOENT)
		return rc == DC_OK ? DC_OK : OOM(err);
	err->status = 0;
	err->detail[0] = '\0';
	return DC_ENOENT;
}

/*
 * A registry row of another engine (written by DataChat or psql) is
 * listed like any other; a query on it is refused here, by name, rather
 * than handed to a client library that speaks another protocol (the
 * engines are driver.h's table).
 */
int
dc_target_resolve(struct dc_worker *w, struct json_object *target,
    struct dc_entry *e, struct dc_resolve_err *err)
{
	int rc;

	if ((rc = resolve_entry(w, target, e, err)) != DC_OK)
		return rc;
	if (dc_driver_find(e->type) == NULL)
		return fail(err, 400, "database_type %s is not served by this "
		    "datachatd: the connection is listed, but only %s targets "
		    "can be queried", e->type, dc_driver_names());
	return DC_OK;
}

struct json_object *
dc_refused_rows_json(const struct dc_shreg *reg)
{
	struct dc_refused_row rows[DC_REFUSED_MAX];
	struct json_object *arr = json_object_new_array(), *o;
	struct dc_jb b = { 0 };
	char ids[DC_UUID_STR_LEN + 1];
	int i, n, total;

	n = dc_shreg_refused(reg, rows, DC_REFUSED_MAX, &total);
	for (i = 0; i < n && !b.failed; i++) {
		o = json_object_new_object();
		dc_uuid_format(rows[i].id, ids);
		dc_jb_add(&b, o, "connection_id", json_object_new_string(ids));
		dc_jb_add(&b, o, "name", json_object_new_string(rows[i].name));
		dc_jb_add(&b, o, "reason",
		    json_object_new_string(rows[i].reason));
		dc_jb_push(&b, arr, o);
	}
	return dc_jb_done(&b, arr);
}

struct json_object *
dc_entry_to_json(const struct dc_entry *e)
{
	struct json_object *o = json_object_new_object(), *tags;
	struct dc_jb b = { 0 };
	char buf[DC_URL_MAX], ids[DC_UUID_STR_LEN + 1];

	dc_uuid_format(e->id, ids);
	dc_jb_add(&b, o, "connection_id", json_object_new_string(ids));
	dc_jb_add(&b, o, "name", json_object_new_string(e->name));
	/* a SecretStr, as pydantic writes every one */
	dc_jb_add(&b, o, "database_url", json_object_new_string("**********"));
	dc_jb_add(&b, o, "database_type", json_object_new_string(e->type));
	dc_jb_add(&b, o, "is_active", json_object_new_boolean(e->is_active));
	dc_jb_add(&b, o, "is_default", json_object_new_boolean(e->is_default));
	/*
	 * tags is array_to_json's text (store.h) or the environment entry's,
	 * so a parse that fails ran out of memory; anything but an array is
	 * listed as no tags
	 */
	tags = e->tags[0] != '\0' ? json_tokener_parse(e->tags) :
	    json_object_new_array();
	if (tags != NULL && !json_object_is_type(tags, json_type_array)) {
		json_object_put(tags);
		tags = json_object_new_array();
	}
	dc_jb_add(&b, o, "tags", tags);
	dc_jb_str(&b, o, "description", e->has_description ? e->description :
	    NULL);
	dc_model_datetime(e->created_at, buf, sizeof(buf));
	dc_jb_add(&b, o, "created_at", json_object_new_string(buf));
	if (e->last_profiled != 0) {
		dc_model_datetime(e->last_profiled, buf, sizeof(buf));
		dc_jb_add(&b, o, "last_profiled", json_object_new_string(buf));
	} else
		dc_jb_null(&b, o, "last_profiled");
	dc_jb_add(&b, o, "datapoint_count",
	    json_object_new_int(e->datapoint_count));
	return dc_jb_done(&b, o);
}
