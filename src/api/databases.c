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
#include "jsonw.h"
#include "tokens.h"
#include "log.h"
#include "model.h"
#include "pgurl.h"
#include "system.h"
#include "driver.h"
#include "pool.h"
#include "rows.h"
#include "shreg.h"
#include "store.h"
#include "target.h"
#include "util.h"
#include "worker.h"

enum write_op { OP_CREATE = 1, OP_UPDATE, OP_DEFAULT, OP_DELETE };

/* DataChat's models/database.py, field for field. */
static const char *const db_types[] = { "postgresql", "clickhouse", "mysql",
    NULL };

enum { C_NAME, C_URL, C_TYPE, C_TAGS, C_DESC, C_DEFAULT };
static const struct dc_field create_fields[] = {
	{ .name = "name", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1, .max_length = DC_NAME_MAX - 1 },
	{ .name = "database_url", .type = DC_FT_STR,
	    .flags = DC_F_REQUIRED | DC_F_SECRET, .max_length = DC_URL_MAX - 1 },
	{ .name = "database_type", .type = DC_FT_LITERAL,
	    .flags = DC_F_REQUIRED, .choices = db_types },
	{ .name = "tags", .type = DC_FT_LIST_STR },
	{ .name = "description", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .max_length = DC_DESC_MAX - 1 },
	{ .name = "is_default", .type = DC_FT_BOOL, .dflt = "false" },
	{ .name = NULL }
};
static const struct dc_model create_model = { "DatabaseConnectionCreate",
    create_fields };

enum { U_NAME, U_URL, U_TYPE, U_DESC };
static const struct dc_field update_fields[] = {
	{ .name = "name", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .min_length = 1, .max_length = DC_NAME_MAX - 1 },
	{ .name = "database_url", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE | DC_F_SECRET, .max_length = DC_URL_MAX - 1 },
	{ .name = "database_type", .type = DC_FT_LITERAL,
	    .flags = DC_F_NULLABLE, .choices = db_types },
	{ .name = "description", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .max_length = DC_DESC_MAX - 1 },
	{ .name = NULL }
};
static const struct dc_model update_model = { "DatabaseConnectionUpdate",
    update_fields };

static const struct dc_field default_fields[] = {
	{ .name = "is_default", .type = DC_FT_BOOL, .dflt = "true" },
	{ .name = NULL }
};
static const struct dc_model default_model = {
    "DatabaseConnectionUpdateDefault", default_fields };

/* One write in progress; lives until the reply (or the client leaving). */
struct dbwrite {
	struct dc_req	*r;		/* NULL once the client is gone */
	int		 op;
	struct dc_job	*job;
	int		 refreshing;	/* waiting for the master */
	uint8_t		 id[16];
	char		 ids[DC_UUID_STR_LEN + 1];
	int		 is_default;
	char		*name, *url, *type, *description, *tags;
	int		 set_description;	/* PATCH: description present */
	char		*token;		/* Fernet token of url */
	dc_db_done_cb	 done;		/* answers instead of us (setup) */
	void		*done_arg;
	char		*owner;		/* token whose quota a create counts on */
	char		 quota[16];
	struct dc_entry	*row;		/* the row as committed (create, update) */
	int		 published;	/* the master re-read and published it */
	char		 changed[160];	/* what changed, for the audit line */
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
	free(d->owner);
	if (d->row != NULL) {
		dc_explicit_bzero(d->row, sizeof(*d->row));
		free(d->row);
	}
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
	if (!dc_target_registry_usable(r->w)) {
		dc_reply_error(r, 503, "Database registry is unavailable. Ensure "
		    "DATABASE_CREDENTIALS_KEY is set.");
		return 0;
	}
	if (dc_shreg_state(r->w->reg) == DC_REG_NEVER_LOADED) {
		dc_reply_error(r, 503, "the connection registry is not loaded "
		    "yet: the system database is not reachable");
		return 0;
	}
	return 1;
}

/*
 * Making a connection the default clears the flag on whichever row has
 * it.  An instance that cannot decrypt some rows (a wrong or missing
 * key) cannot see which one that is, so it leaves the default alone
 * until it can read every row.
 */
static int
default_writable(struct dc_req *r)
{
	int bad = dc_shreg_bad_rows(r->w->reg);

	if (bad == 0)
		return 1;
	dc_reply_error(r, 503, "this instance cannot decrypt %d stored "
	    "connection(s) (wrong or missing credentials key?), so it does "
	    "not change the default connection until it can read them all",
	    bad);
	return 0;
}

/*
 * With tokens, a create counts against the creating token's quota
 * (registry_token_quota), so one token cannot fill the registry.  The
 * operator's datachatctl has none.
 */
static int
claim_quota(struct dc_req *r, struct dbwrite *d)
{
	const struct dc_config *c = r->w->cfg;
	int quota = c->registry_token_quota;

	if (!c->auth_required || r->operator_)
		return DC_OK;
	if (quota == 0)
		quota = c->registry_capacity / 4 > 0 ?
		    c->registry_capacity / 4 : 1;
	snprintf(d->quota, sizeof(d->quota), "%d", quota);
	if ((d->owner = strdup(r->who)) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return DC_ENOMEM;
	}
	return DC_OK;
}

/* Path {id}: Python's uuid.UUID() must read it, else DataChat's 400. */
static int
path_id(struct dc_req *r, uint8_t id[16])
{
	if (r->nargs < 1 || dc_model_uuid_lax(r->args[0], id) != DC_OK) {
		dc_reply_error(r, 400, "Invalid connection ID.");
		return 0;
	}
	return 1;
}

/* The environment entry's id, exactly as DataChat compares it. */
static int
path_is_env(struct dc_req *r)
{
	return r->nargs >= 1 && strcmp(r->args[0], DC_ENV_ENTRY_ID) == 0;
}

/* str(KeyError(...)): the quotes stay. */
static void
reply_not_found(struct dc_req *r, const char *id)
{
	dc_reply_error(r, 404, "'Connection not found: %.200s'", id);
}

/*
 * DataChat's _validate_connection before it connects: the type must be
 * the one the URL's scheme implies, and the URL must name a host.  Its
 * message quotes the URL; ours masks the password in it.  The engines
 * datachatd does not drive yet are refused after that, clearly.
 */
static int
check_url_type(struct dc_req *r, const char *url, const char *type)
{
	const char *implied = dc_url_type(url), *p, *host;
	char masked[DC_URL_MAX], scheme[64], why[320];
	size_t n;

	if (implied == NULL) {
		p = strstr(url, "://");
		n = p != NULL ? (size_t)(p - url) : strcspn(url, ":");
		if (p == NULL && url[n] != ':')
			n = 0;
		snprintf(scheme, sizeof(scheme), "%.*s", (int)(n < 63 ? n : 63),
		    url);
		dc_reply_error(r, 400, "Unsupported database URL scheme: %s",
		    scheme);
		return 0;
	}
	if (strcmp(implied, type) != 0) {
		dc_url_mask(url, masked, sizeof(masked));
		dc_reply_error(r, 400, "Database type does not match URL scheme: "
		    "received '%s', inferred '%s' from '%s'.", type, implied,
		    masked);
		return 0;
	}
	host = strstr(url, "://") + 3;
	if ((p = strrchr(host, '@')) != NULL && p < host + strcspn(host, "/?"))
		host = p + 1;
	if (*host == '\0' || *host == '/' || *host == '?' || *host == ':') {
		dc_reply_error(r, 400, "Invalid database URL: host is required.");
		return 0;
	}
	if (dc_driver_find(type) == NULL) {
		dc_reply_error(r, 400, "database_type %s is not supported yet: "
		    "datachatd connects to %s targets only", type,
		    dc_driver_names());
		return 0;
	}
	/* what libpq would read in it, before it connects anywhere */
	if (strcmp(type, "postgresql") == 0 && dc_pgurl_check(url, r->w->urlpol, why, sizeof(why)) != DC_OK) {
		dc_reply_error(r, 400, "%s", why);
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

/* tags (validated list[str]) as JSON text; the INSERT makes it text[]. */
static char *
tags_text(struct dc_req *r, struct json_object *tags, int *err)
{
	char *s;
	size_t len;

	*err = 0;
	if (tags == NULL)
		return strdup("[]");
	if ((s = dc_jw_text(tags, &len)) == NULL)
		return NULL;	/* out of memory: the caller says so */
	if (len >= DC_TAGS_MAX) {
		dc_reply_error(r, 400, "tags are longer than %d bytes in all "
		    "(datachatd's limit)", DC_TAGS_MAX - 1);
		*err = 1;
		free(s);
		return NULL;
	}
	return s;
}

/* --- completion: refresh from the master, then answer --- */

static void
answer(struct dbwrite *d)
{
	struct dc_req *r = d->r;
	struct dc_entry *e;

	if (d->done != NULL) {
		d->done(r, d->done_arg);
		return;
	}
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
	/*
	 * The published entry when the master could publish it; else the row
	 * as committed: the write happened, and a client told otherwise
	 * would retry it (and create a duplicate).  The master publishes it
	 * once it reaches the system database again.
	 */
	if (!d->published || dc_shreg_get(r->w->reg, d->id, e) != DC_OK) {
		if (d->row == NULL) {
			dc_reply_error(r, 500, "the change was saved but cannot "
			    "be shown");
			goto out;
		}
		memcpy(e, d->row, sizeof(*e));
	}
	dc_reply_json(r, d->op == OP_CREATE ? 201 : 200, dc_entry_to_json(e));
out:
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

static void
refreshed(int status, uint64_t gen, void *arg)
{
	struct dbwrite *d = arg;

	d->refreshing = 0;
	d->published = status == DC_OK;
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
		/* saved all the same: say so, from the row as committed */
		d->refreshing = 0;
		d->r->cancel = NULL;
		log_warn("connection %s written but the master cannot be "
		    "asked to publish it", d->ids);
		answer(d);
		dbwrite_free(d);
	}
}

/*
 * One line per registry change: what changed (never a URL), which token,
 * from which address.  Names are quoted with control characters
 * replaced, so a name cannot forge a log line.
 */
static void
audit(struct dbwrite *d)
{
	static const char *const ops[] = { [OP_CREATE] = "create",
	    [OP_UPDATE] = "update", [OP_DEFAULT] = "default",
	    [OP_DELETE] = "delete" };
	struct dc_req *r = d->r;

	log_info("audit: connection %s id=%s%s by %s from %s", ops[d->op],
	    d->ids, d->changed, r->who, dc_req_peer(r));
}

/* Append ` key="value"' to d->changed, value shortened and made safe. */
static void
note_change(struct dbwrite *d, const char *key, const char *value)
{
	size_t n = strlen(d->changed), i, j;
	char safe[48];

	for (i = j = 0; value != NULL && value[i] != '\0' &&
	    j < sizeof(safe) - 4; i++)
		safe[j++] = (unsigned char)value[i] < 0x20 ||
		    value[i] == '"' || value[i] == 0x7f ? '?' : value[i];
	if (value != NULL && value[i] != '\0') {
		memcpy(safe + j, "...", 3);
		j += 3;
	}
	safe[j] = '\0';
	snprintf(d->changed + n, sizeof(d->changed) - n, value != NULL ?
	    " %s=\"%s\"" : " %s", key, safe);
}

/*
 * The row as committed (RETURNING DC_STORE_COLUMNS), for the answer when
 * the master cannot publish it now.  Left NULL if it does not read.
 */
static void
keep_row(struct dbwrite *d, const struct dc_rows *rows)
{
	const char *v[DC_STORE_NCOLS];
	char why[256];
	int i;

	if (rows->nrows != 1 || rows->ncols != DC_STORE_NCOLS)
		return;
	for (i = 0; i < DC_STORE_NCOLS; i++)
		v[i] = dc_rows_cell(rows, 0, i)->v;
	if ((d->row = malloc(sizeof(*d->row))) == NULL)
		return;
	if (dc_store_cells_to_entry(v, d->r->w->ring, d->r->w->urlpol, d->row,
	    why, sizeof(why)) != DC_OK) {
		free(d->row);
		d->row = NULL;
	}
}

static void
committed(const struct dc_qresult *res, void *arg)
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
		else if (res->sqlstate != NULL &&
		    strcmp(res->sqlstate, DC_SQLSTATE_QUOTA) == 0)
			dc_reply_error(r, 507, "%s; delete some of them, or "
			    "raise it", res->error);
		else
			dc_reply_error(r, 500, "system database error; the "
			    "change was not saved: %s", res->error);
		dbwrite_free(d);
		return;
	}
	if ((d->op == OP_UPDATE || d->op == OP_DELETE || d->op == OP_DEFAULT) &&
	    (res->rows == NULL || res->rows->nrows == 0)) {
		r->cancel = NULL;
		reply_not_found(r, r->args[0]);
		dbwrite_free(d);
		return;
	}
	if ((d->op == OP_CREATE || d->op == OP_UPDATE) && res->rows != NULL)
		keep_row(d, res->rows);
	audit(d);
	ask_master(d);
}

static void
submit(struct dbwrite *d)
{
	struct dc_req *r = d->r;
	struct dc_pool *pool = r->w->pool;
	const char *sql[3];
	int np[3];
	const char *const *pp[3];
	const char *p1[1], *p2[2], *p8[8];
	char dflt[8];
	int n = 0, rc;

	switch (d->op) {
	case OP_CREATE:
		if (d->owner != NULL) {
			/* first, so a refused create changes nothing */
			p2[0] = d->owner;
			p2[1] = d->quota;
			sql[n] = "SELECT datachatd_claim_quota($1, $2::int)";
			np[n] = 2;
			pp[n++] = p2;
		}
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
		p8[7] = d->owner;
		/* the owner row is written by the same statement, or none */
		sql[n] = "WITH c AS (INSERT INTO database_connections ("
		    "connection_id, name, database_url_encrypted, "
		    "database_type, is_active, is_default, tags, description, "
		    "created_at, datapoint_count) VALUES ($1::uuid, $2, $3, $4, "
		    "true, $5::boolean, ARRAY(SELECT jsonb_array_elements_text("
		    "$6::jsonb)), $7, now(), 0) RETURNING *), "
		    "o AS (INSERT INTO datachatd_connection_owners "
		    "(connection_id, token_name) SELECT connection_id, $8::text "
		    "FROM c WHERE $8::text IS NOT NULL) "
		    "SELECT " DC_STORE_COLUMNS " FROM c";
		np[n] = 8;
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
		    "RETURNING " DC_STORE_COLUMNS;
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
probed(const struct dc_qresult *res, void *arg)
{
	struct dbwrite *d = arg;
	char msg[512];

	d->job = NULL;
	if (res->status != DC_OK) {
		/* a driver may echo parts of a URL it could not parse */
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
	struct dc_jb b = { 0 };
	struct dc_jw jw;
	int i, n, rc, max = dc_shreg_count(w->reg) + 16;

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
	for (i = 0; i < n && !b.failed; i++)
		dc_jb_push(&b, arr, dc_entry_to_json(&all[i]));
	if ((rc = dc_target_env_listed(w, &env)) == DC_OK) {
		dc_jb_push(&b, arr, dc_entry_to_json(&env));
		dc_explicit_bzero(&env, sizeof(env));
	} else if (rc != DC_ENOENT)
		b.failed = 1;	/* out of memory */
	dc_explicit_bzero(all, (size_t)n * sizeof(*all));
	free(all);
	free(list_cache.body);
	list_cache.body = NULL;
	if ((arr = dc_jb_done(&b, arr)) == NULL)
		return DC_ENOMEM;
	/* written by jsonw.c, which notices running out of memory */
	dc_jw_init(&jw);
	dc_jw_json(&jw, arr);
	json_object_put(arr);
	if (jw.err) {
		dc_jw_free(&jw);
		return DC_ENOMEM;
	}
	list_cache.body = jw.buf;	/* ours now */
	list_cache.len = jw.len;
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

/*
 * datachatd's addition to a connection's JSON, after DataChat's fields:
 * role_privileges, what the target's role may do beyond reading as the
 * workers found when they connected ([] nothing; null: not connected
 * yet).  o is returned, or NULL when out of memory.
 */
static struct json_object *
with_privileges(struct dc_req *r, struct json_object *o,
    const uint8_t id[16])
{
	struct json_object *arr;
	unsigned privs = dc_shreg_target_privileges(r->w->reg, id);
	struct dc_jb b = { 0 };
	int i;

	if (!(privs & DC_PRIV_KNOWN)) {
		dc_jb_null(&b, o, "role_privileges");
		return dc_jb_done(&b, o);
	}
	arr = json_object_new_array();
	for (i = 0; i < DC_PRIV_COUNT; i++)
		if (privs & (1u << i))
			dc_jb_push(&b, arr, json_object_new_string(
			    dc_priv_names[i]));
	dc_jb_add(&b, o, "role_privileges", arr);
	return dc_jb_done(&b, o);
}

static void
get_database(struct dc_req *r)
{
	struct dc_entry *e;
	uint8_t id[16];
	int rc;

	e = malloc(sizeof(*e));
	if (e == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	if (path_is_env(r)) {
		if ((rc = dc_target_env_listed(r->w, e)) == DC_OK)
			dc_reply_json(r, 200, with_privileges(r,
			    dc_entry_to_json(e), e->id));
		else if (rc == DC_ENOMEM)
			dc_reply_error(r, 500, "out of memory");
		else
			dc_reply_error(r, 404, "Connection not found: %s",
			    r->args[0]);
	} else if (!dc_target_registry_usable(r->w))
		dc_reply_error(r, 503, "Database registry is unavailable. "
		    "Ensure DATABASE_CREDENTIALS_KEY is set.");
	else if (path_id(r, id)) {
		if (dc_shreg_get(r->w->reg, id, e) != DC_OK)
			reply_not_found(r, r->args[0]);
		else
			dc_reply_json(r, 200, with_privileges(r,
			    dc_entry_to_json(e), id));
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

static void
create_database(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL;
	struct dbwrite *d = NULL;
	int err;

	if (dc_req_model(r, &create_model, 0, v, &body) != DC_OK)
		return;
	if (!registry_writable(r))
		goto out;
	if (!check_url_type(r, v[C_URL].s, v[C_TYPE].s))
		goto out;
	if (dc_shreg_count(r->w->reg) >= dc_shreg_capacity(r->w->reg)) {
		dc_reply_error(r, 507, "the connection registry is full (%d "
		    "entries, registry_capacity); raise it and restart",
		    dc_shreg_capacity(r->w->reg));
		goto out;
	}
	if ((d = dbwrite_new(r, OP_CREATE, NULL)) == NULL)
		goto out;
	d->is_default = (int)v[C_DEFAULT].i;
	if (d->is_default && !default_writable(r))
		goto out;
	if (claim_quota(r, d) != DC_OK)
		goto out;
	note_change(d, "name", v[C_NAME].s);
	note_change(d, "type", v[C_TYPE].s);
	if (d->is_default)
		note_change(d, "default", NULL);
	d->tags = tags_text(r, v[C_TAGS].v, &err);
	if (err)
		goto out;
	d->name = strdup(v[C_NAME].s);
	d->url = strdup(v[C_URL].s);
	d->type = strdup(v[C_TYPE].s);
	d->description = v[C_DESC].null ? NULL : strdup(v[C_DESC].s);
	if (d->tags == NULL || d->name == NULL || d->url == NULL ||
	    d->type == NULL || (!v[C_DESC].null && d->description == NULL) ||
	    dc_uuid_generate(d->id) != DC_OK) {
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

/*
 * PATCH: DataChat's model_dump(exclude_unset=True), then a null name,
 * URL or type is dropped; a null description clears it.  A new URL or
 * type is checked by connecting, as DataChat does.
 */
static void
update_database(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL;
	struct dbwrite *d = NULL;
	struct dc_entry *e = NULL;
	uint8_t id[16];
	int has_name, has_url, has_type, has_desc;

	if (dc_req_model(r, &update_model, 0, v, &body) != DC_OK)
		return;
	if (path_is_env(r)) {
		dc_reply_error(r, 400, "Environment Database is derived from "
		    "DATABASE_URL and cannot be edited here.");
		goto out;
	}
	if (!v[U_NAME].set && !v[U_URL].set && !v[U_TYPE].set &&
	    !v[U_DESC].set) {
		dc_reply_error(r, 400, "At least one field must be provided for "
		    "update.");
		goto out;
	}
	has_name = v[U_NAME].set && !v[U_NAME].null;
	has_url = v[U_URL].set && !v[U_URL].null;
	has_type = v[U_TYPE].set && !v[U_TYPE].null;
	has_desc = v[U_DESC].set;
	if (!has_name && !has_url && !has_type && !has_desc) {
		dc_reply_error(r, 400, "At least one non-empty field must be "
		    "provided for update.");
		goto out;
	}
	if (!registry_writable(r) || !path_id(r, id))
		goto out;
	e = malloc(sizeof(*e));
	if (e == NULL || dc_shreg_get(r->w->reg, id, e) != DC_OK) {
		if (e == NULL)
			dc_reply_error(r, 500, "out of memory");
		else
			reply_not_found(r, r->args[0]);
		goto out;
	}
	/* a new URL alone implies its type; a new type checks the URL */
	if ((has_url || has_type) && !check_url_type(r,
	    has_url ? v[U_URL].s : e->url, has_type ? v[U_TYPE].s :
	    has_url ? (dc_url_type(v[U_URL].s) != NULL ?
	    dc_url_type(v[U_URL].s) : "") : e->type))
		goto out;
	if ((d = dbwrite_new(r, OP_UPDATE, id)) == NULL)
		goto out;
	if (has_name)
		note_change(d, "name", v[U_NAME].s);
	if (has_url)
		note_change(d, "url", NULL);
	if (has_type)
		note_change(d, "type", v[U_TYPE].s);
	if (has_desc)
		note_change(d, "description", NULL);
	d->name = has_name ? strdup(v[U_NAME].s) : NULL;
	d->url = has_url ? strdup(v[U_URL].s) : has_type ? strdup(e->url) :
	    NULL;
	d->type = has_type ? strdup(v[U_TYPE].s) : has_url ?
	    strdup(dc_url_type(v[U_URL].s)) : NULL;
	d->set_description = has_desc;
	d->description = has_desc && !v[U_DESC].null ?
	    strdup(v[U_DESC].s) : NULL;
	if ((has_name && d->name == NULL) || ((has_url || has_type) &&
	    (d->url == NULL || d->type == NULL)) || (has_desc &&
	    !v[U_DESC].null && d->description == NULL)) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	json_object_put(body);
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
	start_write(d, has_url || has_type);
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
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL;
	struct dbwrite *d;
	uint8_t id[16];

	if (dc_req_model(r, &default_model, 0, v, &body) != DC_OK)
		return;
	if (!v[0].i) {
		dc_reply_error(r, 400, "is_default must be true to set default "
		    "connection");
		goto out;
	}
	if (path_is_env(r)) {
		dc_reply_error(r, 400, "Environment Database is derived from "
		    "DATABASE_URL and cannot be set as an explicit registry "
		    "default.");
		goto out;
	}
	if (!registry_writable(r) || !path_id(r, id) || !default_writable(r))
		goto out;
	if (dc_shreg_entry_gen(r->w->reg, id) == 0) {
		reply_not_found(r, r->args[0]);
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

	if (path_is_env(r)) {
		dc_reply_error(r, 400, "Environment Database is derived from "
		    "DATABASE_URL and cannot be deleted here.");
		return;
	}
	if (!registry_writable(r) || !path_id(r, id))
		return;
	if (dc_shreg_entry_gen(r->w->reg, id) == 0) {
		reply_not_found(r, r->args[0]);
		return;
	}
	if ((d = dbwrite_new(r, OP_DELETE, id)) != NULL)
		start_write(d, 0);
}

/*
 * POST /system/initialize with a database_url: DataChat's setup adds it
 * as "Primary Database" (tags ["setup"], default) unless a registry row
 * already has that URL, after checking that it connects.  done() answers
 * once the row is published (or at once when nothing was to add); on
 * any failure this has replied itself.
 */
void
dc_databases_setup_register(struct dc_req *r, const char *url,
    dc_db_done_cb done, void *arg)
{
	struct dc_entry *all = NULL;
	struct dbwrite *d = NULL;
	int i, n, max, dup = 0;
	const char *type = dc_url_type(url);

	if (!registry_writable(r))
		return;
	/* an unknown scheme is replied to there */
	if (!check_url_type(r, url, type != NULL ? type : ""))
		return;
	max = dc_shreg_count(r->w->reg) + 16;
	if (max > dc_shreg_capacity(r->w->reg))
		max = dc_shreg_capacity(r->w->reg);
	if ((all = calloc((size_t)max + 1, sizeof(*all))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	n = dc_shreg_list(r->w->reg, all, max);
	for (i = 0; i < n; i++)
		if (strcmp(all[i].url, url) == 0)
			dup = 1;
	dc_explicit_bzero(all, (size_t)n * sizeof(*all));
	free(all);
	if (dup) {
		done(r, arg);
		return;
	}
	if ((d = dbwrite_new(r, OP_CREATE, NULL)) == NULL)
		return;
	d->done = done;
	d->done_arg = arg;
	d->is_default = 1;
	d->tags = strdup("[\"setup\"]");
	d->name = strdup("Primary Database");
	d->url = strdup(url);
	d->type = strdup(type);
	d->description = strdup("Added during setup");
	if (d->tags == NULL || d->name == NULL || d->url == NULL ||
	    d->type == NULL || d->description == NULL ||
	    dc_uuid_generate(d->id) != DC_OK) {
		dc_reply_error(r, 500, "out of memory");
		dbwrite_free(d);
		return;
	}
	start_write(d, 1);
}

const struct dc_route dc_routes_databases[] = {
	{ "GET", "/api/v1/databases", list_databases, DC_ROLE_READ },
	{ "POST", "/api/v1/databases", create_database, DC_ROLE_ADMIN },
	{ "GET", "/api/v1/databases/{id}", get_database, DC_ROLE_READ },
	{ "PATCH", "/api/v1/databases/{id}", update_database, DC_ROLE_ADMIN },
	{ "DELETE", "/api/v1/databases/{id}", delete_database, DC_ROLE_ADMIN },
	{ "PUT", "/api/v1/databases/{id}/default", set_default, DC_ROLE_ADMIN },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_databases[] = {
	{ "POST /api/v1/databases", "body", &create_model },
	{ "PATCH /api/v1/databases/{id}", "body", &update_model },
	{ "PUT /api/v1/databases/{id}/default", "body", &default_model },
	{ NULL, NULL, NULL }
};
