/*
 * databases.c - /api/v1/databases: the connection registry's REST
 * API, as DataChat's multi-database guide defines it.
 *
 * Reads come straight from the shared registry (no system-database round
 * trip).  Writes follow one path: validate, check that a new or changed
 * URL accepts a connection (asynchronously, with connect_timeout),
 * encrypt, commit to the system database on this worker's own
 * connection, ask the master to re-read and publish the row, and answer
 * only once it has, so the next GET on any worker sees the change.
 */
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "fernet.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "target.h"
#include "util.h"
#include "worker.h"

enum write_op { OP_CREATE = 1, OP_UPDATE, OP_DEFAULT, OP_DELETE };

/* One write in progress; lives until the reply (or the client leaving). */
struct dbwrite {
	struct dc_req	*r;		/* NULL once the client is gone */
	int		 op;
	struct dc_pgjob	*job;
	int		 refreshing;	/* waiting for the master */
	uint8_t		 id[16];
	char		 ids[DC_UUID_STR_LEN + 1];
	int		 is_default;
	char		*name, *url, *type, *description, *tags;
	int		 set_description;	/* PATCH: description present */
	char		*token;		/* Fernet token of url */
};

static void
dbwrite_free(struct dbwrite *d)
{
	if (d->url != NULL) {
		dc_explicit_bzero(d->url, strlen(d->url));
		free(d->url);
	}
	free(d->name);
	free(d->type);
	free(d->description);
	free(d->tags);
	free(d->token);
	free(d);
}

static void
dbwrite_cancel(struct dc_req *r, void *arg)
{
	struct dbwrite *d = arg;

	if (d->refreshing) {
		/* the master answers anyway; its callback frees d */
		d->r = NULL;
		return;
	}
	if (d->job != NULL)
		dc_pool_cancel(d->job);
	dbwrite_free(d);
}

/* --- validation helpers --- */

static int
registry_writable(struct dc_req *r)
{
	struct dc_worker *w = r->w;

	if (w->cfg->system_database_url[0] == '\0') {
		dc_reply_error(r, 503, "the connection registry is disabled: "
		    "set SYSTEM_DATABASE_URL to store connections");
		return 0;
	}
	if (w->ring->nkeys == 0) {
		dc_reply_error(r, 503, "no credentials key configured "
		    "(DATABASE_CREDENTIALS_KEY or credentials_key_file): "
		    "connections cannot be stored");
		return 0;
	}
	return 1;
}

/* Path {id}: 400 when not a UUID. */
static int
path_id(struct dc_req *r, uint8_t id[16])
{
	if (r->nargs < 1 || dc_uuid_parse(r->args[0], id) != DC_OK) {
		dc_reply_error(r, 400, "invalid connection id: expected a UUID");
		return 0;
	}
	return 1;
}

/*
 * Optional string field: 1 present (value in *out, may be NULL for JSON
 * null when nullable), 0 absent, -1 replied with an error.
 */
static int
get_string(struct dc_req *r, struct json_object *body, const char *key,
    int nullable, const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(body, key, &v))
		return 0;
	if (v == NULL || json_object_is_type(v, json_type_null)) {
		if (nullable)
			return 1;
		dc_reply_error(r, 422, "%s must be a string, not null", key);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		dc_reply_error(r, 422, "%s must be a string", key);
		return -1;
	}
	*out = json_object_get_string(v);
	return 1;
}

static int
check_name(struct dc_req *r, const char *name)
{
	const char *p;

	for (p = name; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0') {
		dc_reply_error(r, 422, "name must not be empty");
		return 0;
	}
	if (strlen(name) >= DC_NAME_MAX) {
		dc_reply_error(r, 422, "name is longer than %d bytes",
		    DC_NAME_MAX - 1);
		return 0;
	}
	return 1;
}

/* The URL's scheme and the declared type must agree; postgresql only. */
static int
check_url_type(struct dc_req *r, const char *url, const char *type)
{
	const char *implied;

	if (url[0] == '\0') {
		dc_reply_error(r, 422, "database_url must not be empty");
		return 0;
	}
	if (strlen(url) >= DC_URL_MAX) {
		dc_reply_error(r, 422, "database_url is longer than %d bytes",
		    DC_URL_MAX - 1);
		return 0;
	}
	if (strcmp(type, "postgresql") != 0 && strcmp(type, "mysql") != 0 &&
	    strcmp(type, "clickhouse") != 0) {
		dc_reply_error(r, 400, "unknown database_type \"%.32s\": "
		    "expected postgresql, mysql or clickhouse", type);
		return 0;
	}
	implied = dc_url_type(url);
	if (implied == NULL) {
		dc_reply_error(r, 400, "database_url has an unknown scheme: "
		    "expected postgresql://, mysql:// or clickhouse://");
		return 0;
	}
	if (strcmp(implied, type) != 0) {
		dc_reply_error(r, 400, "database_type %s does not match the "
		    "database_url scheme (%s)", type, implied);
		return 0;
	}
	if (strcmp(type, "postgresql") != 0) {
		dc_reply_error(r, 400, "database_type %s is not supported yet: "
		    "datachatd connects to postgresql targets only", type);
		return 0;
	}
	return 1;
}

static int
check_description(struct dc_req *r, const char *desc)
{
	if (desc != NULL && strlen(desc) >= DC_DESC_MAX) {
		dc_reply_error(r, 422, "description is longer than %d bytes",
		    DC_DESC_MAX - 1);
		return 0;
	}
	return 1;
}

/* A write in progress for request r; replies 500 itself on failure. */
static struct dbwrite *
dbwrite_new(struct dc_req *r, int op, const uint8_t *id)
{
	struct dbwrite *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return NULL;
	}
	d->r = r;
	d->op = op;
	if (id != NULL)
		memcpy(d->id, id, 16);
	return d;
}

static char *
tags_text(struct dc_req *r, struct json_object *body, int *err)
{
	struct json_object *v, *pg;
	size_t i, n;
	char *out;

	*err = 0;
	if (!json_object_object_get_ex(body, "tags", &v) || v == NULL ||
	    json_object_is_type(v, json_type_null))
		return strdup("[]");
	if (!json_object_is_type(v, json_type_array)) {
		dc_reply_error(r, 422, "tags must be an array of strings");
		*err = 1;
		return NULL;
	}
	n = json_object_array_length(v);
	/* a JSON array of strings; the INSERT turns it into text[] */
	pg = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(v, i);

		if (!json_object_is_type(t, json_type_string)) {
			json_object_put(pg);
			dc_reply_error(r, 422, "tags must be an array of "
			    "strings");
			*err = 1;
			return NULL;
		}
		json_object_array_add(pg, json_object_get(t));
	}
	out = strdup(json_object_to_json_string_ext(pg,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(pg);
	if (strlen(out) >= DC_TAGS_MAX) {
		free(out);
		dc_reply_error(r, 422, "tags are longer than %d bytes",
		    DC_TAGS_MAX - 1);
		*err = 1;
		return NULL;
	}
	return out;
}

/* --- completion: refresh from the master, then answer --- */

static void
answer(struct dbwrite *d)
{
	struct dc_req *r = d->r;
	struct dc_entry *e;

	switch (d->op) {
	case OP_DEFAULT:
	case OP_DELETE:
		dc_reply_empty(r, 204);
		return;
	}
	e = malloc(sizeof(*e));
	if (e == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	if (dc_shreg_get(r->w->reg, d->id, e) != DC_OK) {
		/* committed, but the master could not publish it (yet) */
		dc_reply_error(r, 503, "the change was saved but could not be "
		    "published yet (system database or registry problem); "
		    "it will appear after the next resync");
	} else
		dc_reply_json(r, d->op == OP_CREATE ? 201 : 200,
		    dc_entry_to_json(e));
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

static void
refreshed(int status, uint64_t gen, void *arg)
{
	struct dbwrite *d = arg;

	d->refreshing = 0;
	if (d->r != NULL) {
		d->r->cancel = NULL;
		if (status != DC_OK)
			log_warn("connection %s written but the master could "
			    "not re-read it", d->ids);
		answer(d);
	}
	dbwrite_free(d);
}

static void
ask_master(struct dbwrite *d)
{
	struct dc_worker *w = d->r->w;
	int rc;

	d->refreshing = 1;
	/* a default change touches two rows: resync them all */
	rc = dc_worker_request_refresh(w, d->op == OP_DEFAULT ? NULL : d->id,
	    refreshed, d);
	if (rc != DC_OK) {
		d->refreshing = 0;
		d->r->cancel = NULL;
		dc_reply_error(d->r, 503, "the change was saved but the "
		    "master is not reachable to publish it");
		dbwrite_free(d);
	}
}

static void
committed(const struct dc_pg_result *res, void *arg)
{
	struct dbwrite *d = arg;
	struct dc_req *r = d->r;

	d->job = NULL;
	if (res->status == DC_EUNAVAIL) {
		r->cancel = NULL;
		dc_reply_error(r, 503, "system database unavailable; the "
		    "change was not saved: %s", res->error);
		dbwrite_free(d);
		return;
	}
	if (res->status != DC_OK) {
		r->cancel = NULL;
		if (res->sqlstate != NULL && strcmp(res->sqlstate, "23505") == 0)
			dc_reply_error(r, 409, "conflict: %s", res->error);
		else
			dc_reply_error(r, 500, "system database error; the "
			    "change was not saved: %s", res->error);
		dbwrite_free(d);
		return;
	}
	if ((d->op == OP_UPDATE || d->op == OP_DELETE || d->op == OP_DEFAULT) &&
	    (res->res == NULL || PQntuples(res->res) == 0)) {
		r->cancel = NULL;
		dc_reply_error(r, 404, "Database connection not found");
		dbwrite_free(d);
		return;
	}
	ask_master(d);
}

static void
submit(struct dbwrite *d)
{
	struct dc_req *r = d->r;
	struct dc_pool *pool = r->w->pool;
	const char *sql[2];
	int np[2];
	const char *const *pp[2];
	const char *p1[1], *p8[8];
	char dflt[8];
	int n = 0, rc;

	switch (d->op) {
	case OP_CREATE:
		if (d->is_default) {
			sql[n] = "UPDATE database_connections SET is_default ="
			    " false WHERE is_default";
			np[n] = 0;
			pp[n++] = NULL;
		}
		snprintf(dflt, sizeof(dflt), "%s", d->is_default ? "t" : "f");
		p8[0] = d->ids;
		p8[1] = d->name;
		p8[2] = d->token;
		p8[3] = d->type;
		p8[4] = dflt;
		p8[5] = d->tags;
		p8[6] = d->description;
		sql[n] = "INSERT INTO database_connections (connection_id, "
		    "name, database_url_encrypted, database_type, is_active, "
		    "is_default, tags, description, created_at, "
		    "datapoint_count) VALUES ($1::uuid, $2, $3, $4, true, "
		    "$5::boolean, ARRAY(SELECT jsonb_array_elements_text("
		    "$6::jsonb)), $7, now(), 0) "
		    "RETURNING connection_id";
		np[n] = 7;
		pp[n++] = p8;
		break;
	case OP_UPDATE:
		p8[0] = d->ids;
		p8[1] = d->name;
		p8[2] = d->token;
		p8[3] = d->type;
		p8[4] = d->set_description ? "t" : "f";
		p8[5] = d->description;
		sql[n] = "UPDATE database_connections SET "
		    "name = COALESCE($2, name), "
		    "database_url_encrypted = COALESCE($3, "
		    "database_url_encrypted), "
		    "database_type = COALESCE($4, database_type), "
		    "description = CASE WHEN $5::boolean THEN $6 "
		    "ELSE description END "
		    "WHERE connection_id = $1::uuid AND is_active "
		    "RETURNING connection_id";
		np[n] = 6;
		pp[n++] = p8;
		break;
	case OP_DEFAULT:
		p1[0] = d->ids;
		sql[n] = "UPDATE database_connections SET is_default = false "
		    "WHERE is_default AND connection_id <> $1::uuid AND EXISTS "
		    "(SELECT 1 FROM database_connections WHERE connection_id "
		    "= $1::uuid AND is_active)";
		np[n] = 1;
		pp[n++] = p1;
		sql[n] = "UPDATE database_connections SET is_default = true "
		    "WHERE connection_id = $1::uuid AND is_active "
		    "RETURNING connection_id";
		np[n] = 1;
		pp[n++] = p1;
		break;
	case OP_DELETE:
		p1[0] = d->ids;
		sql[n] = "DELETE FROM database_connections WHERE "
		    "connection_id = $1::uuid RETURNING connection_id";
		np[n] = 1;
		pp[n++] = p1;
		break;
	}
	rc = dc_pool_sysdb(pool, n, sql, np, pp, committed, d, &d->job);
	if (rc != DC_OK) {
		r->cancel = NULL;
		dc_reply_error(r, 500, "cannot start the system database "
		    "write");
		dbwrite_free(d);
	}
}

/* The URL is good: encrypt it, then commit. */
static void
encrypt_and_submit(struct dbwrite *d)
{
	if (d->url != NULL) {
		if (dc_fernet_encrypt(d->r->w->ring, d->url, strlen(d->url),
		    dc_wall_ms() / 1000, NULL, &d->token) != DC_OK) {
			d->r->cancel = NULL;
			dc_reply_error(d->r, 500, "cannot encrypt the "
			    "connection URL");
			dbwrite_free(d);
			return;
		}
	}
	submit(d);
}

static void
probed(const struct dc_pg_result *res, void *arg)
{
	struct dbwrite *d = arg;
	char msg[512];

	d->job = NULL;
	if (res->status != DC_OK) {
		/* libpq may echo parts of a URL it could not parse */
		d->r->cancel = NULL;
		dc_scrub_password(res->error, d->url, msg, sizeof(msg));
		dc_reply_error(d->r, 400, "Failed to connect to database: %s",
		    msg);
		dbwrite_free(d);
		return;
	}
	encrypt_and_submit(d);
}

static void
start_write(struct dbwrite *d, int probe)
{
	struct dc_req *r = d->r;

	dc_uuid_format(d->id, d->ids);
	dc_req_defer(r, dbwrite_cancel, d);
	if (probe) {
		if (dc_pool_probe(r->w->pool, d->url, probed, d,
		    &d->job) != DC_OK) {
			r->cancel = NULL;
			dc_reply_error(r, 500, "cannot start the connection "
			    "check");
			dbwrite_free(d);
		}
		return;
	}
	encrypt_and_submit(d);
}

/* --- routes --- */

/*
 * The list only changes with the registry generation, so each worker
 * keeps its last rendering and serves those bytes until the generation
 * moves (the environment entry is fixed for a worker's lifetime).
 */
static struct {
	uint64_t	 gen;
	char		*body;
	size_t		 len;
} list_cache;

static int
cmp_newest_first(const void *a, const void *b)
{
	const struct dc_entry *x = a, *y = b;

	return x->created_at < y->created_at ? 1 :
	    x->created_at > y->created_at ? -1 : 0;
}

static int
render_list(struct dc_worker *w, uint64_t gen)
{
	struct json_object *arr;
	struct dc_entry *all, env;
	const char *s;
	int i, n, max = dc_shreg_count(w->reg) + 16;

	if (max > dc_shreg_capacity(w->reg))
		max = dc_shreg_capacity(w->reg);
	all = calloc((size_t)max + 1, sizeof(*all));
	arr = json_object_new_array();
	if (all == NULL || arr == NULL) {
		free(all);
		json_object_put(arr);
		return DC_ENOMEM;
	}
	n = dc_shreg_list(w->reg, all, max);
	qsort(all, (size_t)n, sizeof(*all), cmp_newest_first);
	for (i = 0; i < n; i++)
		json_object_array_add(arr, dc_entry_to_json(&all[i]));
	if (dc_target_env_entry(w, &env) == DC_OK) {
		json_object_array_add(arr, dc_entry_to_json(&env));
		dc_explicit_bzero(&env, sizeof(env));
	}
	dc_explicit_bzero(all, (size_t)n * sizeof(*all));
	free(all);
	s = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &list_cache.len);
	free(list_cache.body);
	list_cache.body = strdup(s);
	json_object_put(arr);
	if (list_cache.body == NULL)
		return DC_ENOMEM;
	list_cache.gen = gen;
	return DC_OK;
}

static void
list_databases(struct dc_req *r)
{
	struct dc_worker *w = r->w;
	uint64_t gen = dc_shreg_gen(w->reg);

	if (w->cfg->system_database_url[0] != '\0' &&
	    dc_shreg_state(w->reg) == DC_REG_NEVER_LOADED) {
		dc_reply_error(r, 503, "the connection registry is not loaded "
		    "yet: the system database is not reachable");
		return;
	}
	if ((list_cache.body == NULL || list_cache.gen != gen) &&
	    render_list(w, gen) != DC_OK) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	dc_reply_text(r, 200, "application/json", list_cache.body,
	    list_cache.len);
}

static void
get_database(struct dc_req *r)
{
	struct dc_entry *e;
	uint8_t id[16];

	if (!path_id(r, id))
		return;
	e = malloc(sizeof(*e));
	if (e == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	if (dc_target_is_env(id) ? dc_target_env_entry(r->w, e) != DC_OK :
	    dc_shreg_get(r->w->reg, id, e) != DC_OK)
		dc_reply_error(r, 404, "Database connection not found");
	else
		dc_reply_json(r, 200, dc_entry_to_json(e));
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

static void
create_database(struct dc_req *r)
{
	struct json_object *body = NULL, *v;
	const char *name, *url, *type, *desc;
	struct dbwrite *d = NULL;
	int rc, err;

	if (dc_req_json(r, &body) != DC_OK)
		return;
	if ((rc = get_string(r, body, "name", 0, &name)) < 0 ||
	    (rc == 0 && (dc_reply_error(r, 422, "name is required"), 1)))
		goto out;
	if ((rc = get_string(r, body, "database_url", 0, &url)) < 0 ||
	    (rc == 0 && (dc_reply_error(r, 422, "database_url is required"),
	    1)))
		goto out;
	if ((rc = get_string(r, body, "database_type", 0, &type)) < 0 ||
	    (rc == 0 && (dc_reply_error(r, 422, "database_type is required"),
	    1)))
		goto out;
	if (get_string(r, body, "description", 1, &desc) < 0 ||
	    !check_description(r, desc))
		goto out;
	if (json_object_object_get_ex(body, "is_default", &v) && v != NULL &&
	    !json_object_is_type(v, json_type_boolean)) {
		dc_reply_error(r, 422, "is_default must be a boolean");
		goto out;
	}
	if (!check_name(r, name) || !check_url_type(r, url, type))
		goto out;
	if (!registry_writable(r))
		goto out;
	if (dc_shreg_count(r->w->reg) >= dc_shreg_capacity(r->w->reg)) {
		dc_reply_error(r, 507, "the connection registry is full (%d "
		    "entries, registry_capacity); raise it and restart",
		    dc_shreg_capacity(r->w->reg));
		goto out;
	}
	if ((d = dbwrite_new(r, OP_CREATE, NULL)) == NULL)
		goto out;
	d->is_default = v != NULL && json_object_get_boolean(v);
	d->tags = tags_text(r, body, &err);
	if (err)
		goto out;
	d->name = strdup(name);
	d->url = strdup(url);
	d->type = strdup(type);
	d->description = desc != NULL ? strdup(desc) : NULL;
	if (d->tags == NULL || d->name == NULL || d->url == NULL ||
	    d->type == NULL || dc_uuid_generate(d->id) != DC_OK) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	json_object_put(body);
	start_write(d, 1);
	return;
out:
	if (d != NULL)
		dbwrite_free(d);
	json_object_put(body);
}

static void
update_database(struct dc_req *r)
{
	struct json_object *body = NULL;
	const char *name, *url, *type, *desc;
	struct dbwrite *d = NULL;
	struct dc_entry *e = NULL;
	uint8_t id[16];
	int has_name, has_url, has_type, has_desc;

	if (!path_id(r, id))
		return;
	if (dc_req_json(r, &body) != DC_OK)
		return;
	if ((has_name = get_string(r, body, "name", 0, &name)) < 0 ||
	    (has_url = get_string(r, body, "database_url", 0, &url)) < 0 ||
	    (has_type = get_string(r, body, "database_type", 0, &type)) < 0 ||
	    (has_desc = get_string(r, body, "description", 1, &desc)) < 0)
		goto out;
	if (!has_name && !has_url && !has_type && !has_desc) {
		dc_reply_error(r, 400, "nothing to update: give at least one "
		    "of name, database_url, database_type, description");
		goto out;
	}
	if (dc_target_is_env(id)) {
		dc_reply_error(r, 400, "the environment database comes from "
		    "DATABASE_URL and cannot be changed through the API");
		goto out;
	}
	if ((has_name && !check_name(r, name)) || !check_description(r, desc))
		goto out;
	if (!registry_writable(r))
		goto out;
	e = malloc(sizeof(*e));
	if (e == NULL || dc_shreg_get(r->w->reg, id, e) != DC_OK) {
		dc_reply_error(r, e == NULL ? 500 : 404, e == NULL ?
		    "out of memory" : "Database connection not found");
		goto out;
	}
	if ((has_url || has_type) && !check_url_type(r, has_url ? url : e->url,
	    has_type ? type : e->type))
		goto out;
	if ((d = dbwrite_new(r, OP_UPDATE, id)) == NULL)
		goto out;
	d->name = has_name ? strdup(name) : NULL;
	d->url = has_url ? strdup(url) : NULL;
	d->type = has_type ? strdup(type) : NULL;
	d->set_description = has_desc;
	d->description = desc != NULL ? strdup(desc) : NULL;
	if ((has_name && d->name == NULL) || (has_url && d->url == NULL) ||
	    (has_type && d->type == NULL) || (desc != NULL &&
	    d->description == NULL)) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	json_object_put(body);
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
	start_write(d, has_url);
	return;
out:
	if (d != NULL)
		dbwrite_free(d);
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
	json_object_put(body);
}

static void
set_default(struct dc_req *r)
{
	struct json_object *body = NULL, *v;
	struct dbwrite *d;
	uint8_t id[16];

	if (!path_id(r, id))
		return;
	if (dc_req_json(r, &body) != DC_OK)
		return;
	if (!json_object_object_get_ex(body, "is_default", &v)) {
		dc_reply_error(r, 422, "is_default is required");
		goto out;
	}
	if (v == NULL || !json_object_is_type(v, json_type_boolean)) {
		dc_reply_error(r, 422, "is_default must be a boolean");
		goto out;
	}
	if (!json_object_get_boolean(v)) {
		dc_reply_error(r, 400, "is_default must be true: set another "
		    "connection as default instead");
		goto out;
	}
	if (dc_target_is_env(id)) {
		dc_reply_error(r, 400, "the environment database cannot be "
		    "made the registry default; it is used when no default "
		    "is set");
		goto out;
	}
	if (!registry_writable(r))
		goto out;
	if (dc_shreg_entry_gen(r->w->reg, id) == 0) {
		dc_reply_error(r, 404, "Database connection not found");
		goto out;
	}
	if ((d = dbwrite_new(r, OP_DEFAULT, id)) != NULL)
		start_write(d, 0);
out:
	json_object_put(body);
}

static void
delete_database(struct dc_req *r)
{
	struct dbwrite *d;
	uint8_t id[16];

	if (!path_id(r, id))
		return;
	if (dc_target_is_env(id)) {
		dc_reply_error(r, 400, "the environment database comes from "
		    "DATABASE_URL and cannot be deleted through the API");
		return;
	}
	if (!registry_writable(r))
		return;
	if (dc_shreg_entry_gen(r->w->reg, id) == 0) {
		dc_reply_error(r, 404, "Database connection not found");
		return;
	}
	if ((d = dbwrite_new(r, OP_DELETE, id)) != NULL)
		start_write(d, 0);
}

const struct dc_route dc_routes_databases[] = {
	{ "GET", "/api/v1/databases", list_databases },
	{ "POST", "/api/v1/databases", create_database },
	{ "GET", "/api/v1/databases/{id}", get_database },
	{ "PATCH", "/api/v1/databases/{id}", update_database },
	{ "DELETE", "/api/v1/databases/{id}", delete_database },
	{ "PUT", "/api/v1/databases/{id}/default", set_default },
	{ NULL, NULL, NULL }
};
