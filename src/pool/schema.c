/*
 * schema.c - snapshots of a target's catalog and the per-worker schema
 * cache (see schema.h).
 *
 * Each dialect's catalog query (driver.h) returns one row per column, or
 * one row per table when columns are not asked for, already sorted, in
 * the same ten columns whatever the engine, so building a snapshot is
 * one pass.
 *
 * The cache is a short list of entries, one per target this worker has
 * been asked about.  An entry with a fetch in flight collects waiters;
 * when the fetch ends every waiter gets the same snapshot.  An entry
 * dropped while its fetch is in flight is marked dead and freed when the
 * fetch ends, so the pool's callback never sees freed memory.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dc.h"
#include "driver.h"
#include "jsonw.h"
#include "log.h"
#include "pool.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "target.h"
#include "util.h"
#include "worker.h"

enum {
	F_SCHEMA, F_TABLE, F_TYPE, F_ROWS, F_COLUMN, F_DATATYPE, F_NULLABLE,
	F_PK, F_FTABLE, F_FCOLUMN, F_COUNT
};

/* Tables looked up by name, and names that are not there. */
struct found {
	char		 key[2 * DC_SCHEMA_NAME_MAX];	/* "schema.table" or
					   ".table", lower case */
	struct dc_schema *s;		/* the tables (maybe none) */
	struct found	*next;
};

#define FOUND_MAX	64	/* names remembered per target */
#define LOOKUP_BURST	4	/* lookups a target may get at once */
#define LOOKUP_EVERY_MS	250	/* ... and one more this often */

struct cache_ent {
	uint8_t		 id[16];
	uint64_t	 gen;
	uint64_t	 url_hash;	/* the environment entry's gen is fixed */
	int		 dead;		/* dropped; freed when nothing is in
					   flight any more */
	int		 delivering;	/* waiters are being called */
	const struct dc_dialect *dialect;	/* the target's engine's */
	struct dc_schema *snap;
	char		*version;	/* the catalog's, when snap was read */
	uint64_t	 snap_ms;	/* monotonic time snap was read */
	uint64_t	 checked_ms;	/* ... its version last confirmed */
	struct dc_job	*job;		/* check or fetch in flight */
	int		 fetching;	/* job is the fetch, not the check */
	char		*pending_version;	/* read before the fetch */
	uint64_t	 pending_ms;
	struct dc_entry	*e;		/* the target, between check and
					   fetch only (wiped after) */
	struct dc_worker *w;
	struct found	*found;		/* lookups, for this version */
	int		 nfound;
	struct dc_schema_wait *lookups;	/* in flight */
	double		 tokens;	/* lookups it may start now */
	uint64_t	 tokens_ms;
	struct dc_schema_wait *waiters;
	struct cache_ent *next;
};

struct dc_schema_wait {
	struct cache_ent *ent;
	dc_schema_cb	 cb;
	void		*arg;
	/* a lookup: its own query and name */
	struct dc_job	*job;
	char		 key[2 * DC_SCHEMA_NAME_MAX];
	struct dc_schema_wait *next;
};

/* This worker's cache: each worker is its own process. */
static struct cache_ent *cache;

/* --- snapshots --- */

/* The text of a cell, "" for NULL. */
static const char *
field(const struct dc_rows *res, int row, int col)
{
	const char *v = dc_rows_cell(res, row, col)->v;

	return v != NULL ? v : "";
}

static int
field_null(const struct dc_rows *res, int row, int col)
{
	return dc_rows_cell(res, row, col)->v == NULL;
}

/* A flag column: "t", "true" or "1" (engines spell booleans their way). */
static int
field_true(const struct dc_rows *res, int row, int col)
{
	const char *v = field(res, row, col);

	return v[0] == 't' || v[0] == 'T' || v[0] == '1';
}

static char *
field_dup(const struct dc_rows *res, int row, int col)
{
	if (field_null(res, row, col))
		return NULL;
	return strdup(field(res, row, col));
}

static int
same_table(const struct dc_rows *res, int a, int b)
{
	return strcmp(field(res, a, F_SCHEMA), field(res, b, F_SCHEMA)) == 0 &&
	    strcmp(field(res, a, F_TABLE), field(res, b, F_TABLE)) == 0;
}

static int
parse_table(const struct dc_rows *res, int first, int last,
    struct dc_schema_table *t)
{
	struct dc_schema_column *c;
	int row;

	t->schema = field_dup(res, first, F_SCHEMA);
	t->name = field_dup(res, first, F_TABLE);
	t->table_type = field_dup(res, first, F_TYPE);
	t->row_count = field_null(res, first, F_ROWS) ? -1 :
	    strtoll(field(res, first, F_ROWS), NULL, 10);
	if (t->schema == NULL || t->name == NULL || t->table_type == NULL)
		return DC_ENOMEM;
	t->cols = calloc((size_t)(last - first), sizeof(*t->cols));
	if (t->cols == NULL)
		return DC_ENOMEM;
	for (row = first; row < last; row++) {
		if (field_null(res, row, F_COLUMN))
			continue;	/* tables only, or a table without columns */
		c = &t->cols[t->ncols++];
		c->name = field_dup(res, row, F_COLUMN);
		c->data_type = field_dup(res, row, F_DATATYPE);
		c->nullable = field_true(res, row, F_NULLABLE);
		c->is_pk = field_true(res, row, F_PK);
		c->is_fk = !field_null(res, row, F_FTABLE);
		c->foreign_table = field_dup(res, row, F_FTABLE);
		c->foreign_column = field_dup(res, row, F_FCOLUMN);
		if (c->name == NULL || c->data_type == NULL ||
		    (c->is_fk && (c->foreign_table == NULL ||
		    c->foreign_column == NULL)))
			return DC_ENOMEM;
	}
	return DC_OK;
}

int
dc_schema_parse(const struct dc_rows *res, struct dc_schema **out)
{
	struct dc_schema *s;
	int n = res->nrows, row, first, k = 0;

	*out = NULL;
	if (res->ncols != F_COUNT)
		return DC_EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DC_ENOMEM;
	s->fetched_at = (int64_t)dc_wall_ms() * 1000;
	for (row = 0; row < n; row++)
		if (row == 0 || !same_table(res, row - 1, row))
			s->ntables++;
	s->tables = calloc((size_t)(s->ntables > 0 ? s->ntables : 1),
	    sizeof(*s->tables));
	if (s->tables == NULL)
		goto fail;
	for (first = 0; first < n; first = row) {
		for (row = first + 1; row < n && same_table(res, first, row);
		    row++)
			;
		if (parse_table(res, first, row, &s->tables[k++]) != DC_OK)
			goto fail;
	}
	*out = s;
	return DC_OK;
fail:
	s->ntables = k;
	dc_schema_free(s);
	return DC_ENOMEM;
}

void
dc_schema_free(struct dc_schema *s)
{
	struct dc_schema_table *t;
	int i, k;

	if (s == NULL)
		return;
	for (i = 0; s->tables != NULL && i < s->ntables; i++) {
		t = &s->tables[i];
		for (k = 0; t->cols != NULL && k < t->ncols; k++) {
			free(t->cols[k].name);
			free(t->cols[k].data_type);
			free(t->cols[k].foreign_table);
			free(t->cols[k].foreign_column);
		}
		free(t->cols);
		free(t->schema);
		free(t->name);
		free(t->table_type);
	}
	free(s->tables);
	free(s);
}

struct json_object *
dc_schema_table_json(const struct dc_schema_table *t)
{
	struct dc_jb b = { 0 };
	struct json_object *o = json_object_new_object(), *cols, *c;
	int i;

	cols = json_object_new_array_ext(t->ncols);
	dc_jb_str(&b, o, "schema_name", t->schema);
	dc_jb_str(&b, o, "table_name", t->name);
	if (t->row_count >= 0)
		dc_jb_add(&b, o, "row_count", json_object_new_int64(t->row_count));
	else
		dc_jb_null(&b, o, "row_count");
	dc_jb_str(&b, o, "table_type", t->table_type);
	for (i = 0; cols != NULL && !b.failed && i < t->ncols; i++) {
		const struct dc_schema_column *col = &t->cols[i];

		c = json_object_new_object();
		dc_jb_str(&b, c, "name", col->name);
		dc_jb_str(&b, c, "data_type", col->data_type);
		dc_jb_add(&b, c, "is_nullable",
		    json_object_new_boolean(col->nullable));
		dc_jb_add(&b, c, "is_primary_key",
		    json_object_new_boolean(col->is_pk));
		dc_jb_add(&b, c, "is_foreign_key",
		    json_object_new_boolean(col->is_fk));
		dc_jb_str(&b, c, "foreign_table", col->foreign_table);
		dc_jb_str(&b, c, "foreign_column",
		    col->foreign_column);
		dc_jb_push(&b, cols, c);
	}
	dc_jb_add(&b, o, "columns", cols);
	return dc_jb_done(&b, o);
}

/* --- the cache --- */

static uint64_t
url_hash(const char *url)
{
	return dc_fnv1a(DC_FNV1A_INIT, url, strlen(url));
}

static void
found_clear(struct cache_ent *ent)
{
	struct found *f;

	while ((f = ent->found) != NULL) {
		ent->found = f->next;
		dc_schema_free(f->s);
		free(f);
	}
	ent->nfound = 0;
}

static void
entry_wipe(struct cache_ent *ent)
{
	if (ent->e != NULL) {
		dc_explicit_bzero(ent->e, sizeof(*ent->e));
		free(ent->e);
		ent->e = NULL;
	}
}

static void
ent_unlink_free(struct cache_ent *ent)
{
	struct cache_ent **pp;

	assert(ent->job == NULL && ent->lookups == NULL && !ent->delivering);
	for (pp = &cache; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ent) {
			*pp = ent->next;
			break;
		}
	}
	dc_schema_free(ent->snap);
	free(ent->version);
	free(ent->pending_version);
	found_clear(ent);
	entry_wipe(ent);
	free(ent);
}

/* Free a dead entry once nothing of it is in flight. */
static void
ent_reap(struct cache_ent *ent)
{
	if (ent->dead && ent->job == NULL && ent->lookups == NULL &&
	    !ent->delivering)
		ent_unlink_free(ent);
}

/* Forget a target's snapshot; what is in flight still answers. */
static void
ent_drop(struct cache_ent *ent)
{
	dc_schema_free(ent->snap);
	ent->snap = NULL;
	found_clear(ent);
	ent->dead = 1;
	ent_reap(ent);
}

/* Hand snap (or the failure r) to every waiter; ent may be freed. */
static void
deliver(struct cache_ent *ent, const struct dc_schema *snap,
    const struct dc_qresult *r)
{
	struct dc_schema_wait *wt, *list = ent->waiters;

	ent->waiters = NULL;
	ent->delivering++;
	while ((wt = list) != NULL) {
		list = wt->next;
		wt->cb(snap, snap != NULL ? NULL : r, wt->arg);
		free(wt);
	}
	ent->delivering--;
	ent_reap(ent);
}

static void
fetched(const struct dc_qresult *r, void *arg)
{
	struct cache_ent *ent = arg;
	struct dc_schema *snap = NULL;
	struct dc_qresult oom;
	int kept = 0;

	ent->job = NULL;
	ent->fetching = 0;
	if (r->status == DC_OK && dc_schema_parse(r->rows, &snap) != DC_OK) {
		memset(&oom, 0, sizeof(oom));
		oom.status = DC_ENOMEM;
		oom.error = "out of memory while reading the catalog";
		r = &oom;
	}
	if (snap != NULL && !ent->dead) {
		dc_schema_free(ent->snap);
		ent->snap = snap;
		free(ent->version);
		ent->version = ent->pending_version;
		ent->pending_version = NULL;
		/* what the snapshot shows is at least as new as the check */
		ent->snap_ms = ent->checked_ms = ent->pending_ms;
		found_clear(ent);
		kept = 1;
	}
	/* ent may be gone after this; a kept snapshot went with it */
	deliver(ent, snap, r);
	if (!kept)
		dc_schema_free(snap);
}

/* No snapshot for the waiters: status and a message, as the pool says. */
static void
deliver_failure(struct cache_ent *ent, int status, const char *error)
{
	struct dc_qresult fail;

	memset(&fail, 0, sizeof(fail));
	fail.status = status;
	fail.error = error;
	deliver(ent, NULL, &fail);
}

/* The catalog's version is known: keep the snapshot, or read anew. */
static void
checked(const struct dc_qresult *r, void *arg)
{
	const char *params[DC_SCHEMA_SQL_NPARAMS] = { NULL, NULL, "true" };
	struct cache_ent *ent = arg;
	struct dc_entry *e = ent->e;
	char detail[256], id[DC_UUID_STR_LEN + 1];
	const char *v;
	int rc;

	ent->job = NULL;
	ent->e = NULL;
	if (ent->dead || r->status != DC_OK || r->rows->nrows != 1 ||
	    r->rows->ncols != 1 || dc_rows_cell(r->rows, 0, 0)->v == NULL) {
		if (ent->dead)
			deliver_failure(ent, DC_ENOENT, "Database connection "
			    "changed while its catalog was read: run the "
			    "query again");
		else if (r->status != DC_OK)
			deliver(ent, NULL, r);
		else
			deliver_failure(ent, DC_ERR, "the catalog's version "
			    "could not be read");
		goto out;
	}
	v = dc_rows_cell(r->rows, 0, 0)->v;
	dc_uuid_format(ent->id, id);
	if (ent->snap != NULL && ent->version != NULL &&
	    strcmp(v, ent->version) == 0 && ent->pending_ms - ent->snap_ms <
	    (uint64_t)ent->w->cfg->schema_max_age * 1000) {
		log_debug("schema of %s: catalog version unchanged", id);
		ent->checked_ms = ent->pending_ms;
		deliver(ent, ent->snap, NULL);
		goto out;
	}
	log_debug("schema of %s: %s, reading the catalog", id,
	    ent->snap == NULL ? "no snapshot" : ent->version == NULL ||
	    strcmp(v, ent->version) != 0 ? "catalog version moved" :
	    "snapshot older than schema_max_age");
	free(ent->pending_version);
	if ((ent->pending_version = strdup(v)) == NULL) {
		deliver_failure(ent, DC_ENOMEM, "out of memory while reading the "
		    "catalog");
		goto out;
	}
	/* fetched() may run, and free ent, before this returns */
	ent->fetching = 1;
	rc = dc_pool_query(ent->w->pool, e, DC_JOB_CATALOG,
	    ent->dialect->catalog_sql, DC_SCHEMA_SQL_NPARAMS, params, fetched,
	    ent, &ent->job);
	if (rc != DC_OK) {
		ent->fetching = 0;
		deliver_failure(ent, dc_result_submit_failure(rc, detail,
		    sizeof(detail)) == 500 ? DC_ENOMEM : DC_EUNAVAIL, detail);
	}
out:
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
}

/* The entry of target e, made when there is none; NULL: out of memory. */
static struct cache_ent *
ent_find(const struct dc_entry *e, const struct dc_dialect *d)
{
	uint64_t h = url_hash(e->url);
	struct cache_ent *ent;

	for (ent = cache; ent != NULL; ent = ent->next)
		if (!ent->dead && memcmp(ent->id, e->id, 16) == 0)
			break;
	if (ent != NULL && (ent->gen != e->gen || ent->url_hash != h)) {
		ent_drop(ent);
		ent = NULL;
	}
	if (ent == NULL && (ent = calloc(1, sizeof(*ent))) != NULL) {
		memcpy(ent->id, e->id, 16);
		ent->dialect = d;
		ent->gen = e->gen;
		ent->url_hash = h;
		ent->tokens = LOOKUP_BURST;
		ent->next = cache;
		cache = ent;
	}
	return ent;
}

int
dc_schema_get(struct dc_worker *w, const struct dc_entry *e, int flags,
    dc_schema_cb cb, void *arg, struct dc_schema_wait **waitp)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	const struct dc_config *cfg = w->cfg;
	struct cache_ent *ent;
	struct dc_schema_wait *wt;
	uint64_t now = dc_now_ms();
	int rc, fresh;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if ((ent = ent_find(e, drv->dialect)) == NULL)
		return DC_ENOMEM;
	if (ent->snap != NULL && ent->job == NULL) {
		fresh = now - ent->checked_ms < (uint64_t)cfg->schema_check_interval;
		/* a table the caller misses: look again, but not too often */
		if ((flags & DC_SCHEMA_RECHECK) &&
		    now - ent->checked_ms >= DC_SCHEMA_RECHECK_MS)
			fresh = 0;
		if (fresh) {
			cb(ent->snap, NULL, arg);
			return DC_OK;
		}
	}
	if ((wt = calloc(1, sizeof(*wt))) == NULL)
		return DC_ENOMEM;
	wt->ent = ent;
	wt->cb = cb;
	wt->arg = arg;
	wt->next = ent->waiters;
	ent->waiters = wt;
	*waitp = wt;
	if (ent->job != NULL)
		return DC_OK;		/* joins the check or fetch in flight */
	if ((ent->e = malloc(sizeof(*ent->e))) == NULL) {
		rc = DC_ENOMEM;
		goto fail;
	}
	memcpy(ent->e, e, sizeof(*e));
	ent->w = w;
	ent->pending_ms = now;
	/* the callback may run (and free wt) before this returns */
	rc = dc_pool_query(w->pool, e, DC_JOB_CATALOG, ent->dialect->version_sql,
	    0, NULL, checked, ent, &ent->job);
	if (rc == DC_OK)
		return DC_OK;	/* ent->e is checked()'s now */
fail:
	entry_wipe(ent);
	ent->waiters = wt->next;
	free(wt);
	*waitp = NULL;
	if (ent->snap == NULL)
		ent_drop(ent);
	return rc;
}

/* --- tables looked up by name --- */

static void
lookup_key(const char *schema, const char *table, char *key, size_t sz)
{
	size_t i;

	snprintf(key, sz, "%s.%s", schema != NULL ? schema : "", table);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
}

static struct found *
found_get(struct cache_ent *ent, const char *key)
{
	struct found *f;

	for (f = ent->found; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

static void
found_put(struct cache_ent *ent, const char *key, struct dc_schema *s)
{
	struct found *f, **pp;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		dc_schema_free(s);	/* not remembered: asked again later */
		return;
	}
	dc_strlcpy(f->key, key, sizeof(f->key));
	f->s = s;
	f->next = ent->found;
	ent->found = f;
	if (++ent->nfound > FOUND_MAX) {
		/* forget the oldest */
		for (pp = &ent->found; (*pp)->next != NULL; pp = &(*pp)->next)
			;
		dc_schema_free((*pp)->s);
		free(*pp);
		*pp = NULL;
		ent->nfound--;
	}
}

static void
looked_up(const struct dc_qresult *r, void *arg)
{
	struct dc_schema_wait *wt = arg, **pp;
	struct cache_ent *ent = wt->ent;
	struct dc_schema *s = NULL;

	wt->job = NULL;
	for (pp = &ent->lookups; *pp != NULL; pp = &(*pp)->next)
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	if (r->status == DC_OK && dc_schema_parse(r->rows, &s) != DC_OK)
		s = NULL;
	ent->delivering++;
	wt->cb(s, s != NULL ? NULL : r, wt->arg);
	ent->delivering--;
	if (s != NULL && !ent->dead)
		found_put(ent, wt->key, s);
	else
		dc_schema_free(s);
	free(wt);
	ent_reap(ent);
}

int
dc_schema_lookup(struct dc_worker *w, const struct dc_entry *e,
    const char *schema, const char *table, dc_schema_cb cb, void *arg,
    struct dc_schema_wait **waitp)
{
	const char *params[DC_SCHEMA_SQL_NPARAMS] = { schema, table, "false" };
	static const struct dc_schema none = { 0, 0, NULL };
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct cache_ent *ent;
	struct dc_schema_wait *wt;
	struct found *f;
	char key[2 * DC_SCHEMA_NAME_MAX], id[DC_UUID_STR_LEN + 1];
	uint64_t now = dc_now_ms();
	int rc;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if ((ent = ent_find(e, drv->dialect)) == NULL)
		return DC_ENOMEM;
	lookup_key(schema, table, key, sizeof(key));
	if ((f = found_get(ent, key)) != NULL) {
		cb(f->s, NULL, arg);
		return DC_OK;
	}
	/* a bounded number of names a second: typos cost the target little */
	ent->tokens += (double)(now - ent->tokens_ms) / LOOKUP_EVERY_MS;
	if (ent->tokens > LOOKUP_BURST)
		ent->tokens = LOOKUP_BURST;
	ent->tokens_ms = now;
	dc_uuid_format(ent->id, id);
	if (ent->tokens < 1) {
		log_debug("schema of %s: %s not looked up (too many names at "
		    "once)", id, key);
		cb(&none, NULL, arg);
		return DC_OK;
	}
	ent->tokens -= 1;
	log_debug("schema of %s: looking up %s", id, key);
	if ((wt = calloc(1, sizeof(*wt))) == NULL)
		return DC_ENOMEM;
	wt->ent = ent;
	wt->cb = cb;
	wt->arg = arg;
	dc_strlcpy(wt->key, key, sizeof(wt->key));
	wt->next = ent->lookups;
	ent->lookups = wt;
	*waitp = wt;
	/* the callback may run (and free wt) before this returns */
	rc = dc_pool_query(w->pool, e, DC_JOB_CATALOG, ent->dialect->catalog_sql,
	    DC_SCHEMA_SQL_NPARAMS, params, looked_up, wt, &wt->job);
	if (rc != DC_OK) {
		ent->lookups = wt->next;
		free(wt);
		*waitp = NULL;
	}
	return rc;
}

void
dc_schema_cancel(struct dc_schema_wait *wt)
{
	struct cache_ent *ent = wt->ent;
	struct dc_schema_wait **pp;

	if (wt->job != NULL) {
		/* a lookup: its query is its own */
		for (pp = &ent->lookups; *pp != NULL; pp = &(*pp)->next)
			if (*pp == wt) {
				*pp = wt->next;
				break;
			}
		dc_pool_cancel(wt->job);
		free(wt);
		ent_reap(ent);
		return;
	}
	for (pp = &ent->waiters; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	}
	/* the check or fetch goes on: it serves the next request */
	free(wt);
}

void
dc_schema_sync(struct dc_worker *w)
{
	struct cache_ent *ent, *next;
	struct dc_entry *e = NULL;
	int keep;

	for (ent = cache; ent != NULL; ent = next) {
		next = ent->next;
		if (ent->dead)
			continue;
		if (dc_target_is_env(ent->id)) {
			if (e == NULL && (e = malloc(sizeof(*e))) == NULL) {
				ent_drop(ent);
				continue;
			}
			keep = dc_target_env_entry(w, e) == DC_OK &&
			    url_hash(e->url) == ent->url_hash;
		} else
			keep = dc_shreg_entry_gen(w->reg, ent->id) == ent->gen;
		if (!keep)
			ent_drop(ent);
	}
	if (e != NULL) {
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
}

void
dc_schema_invalidate(const uint8_t *id)
{
	struct cache_ent *ent, *next;

	for (ent = cache; ent != NULL; ent = next) {
		next = ent->next;
		if (!ent->dead && (id == NULL || memcmp(ent->id, id, 16) == 0))
			ent_drop(ent);
	}
}

void
dc_schema_shutdown(void)
{
	struct cache_ent *ent;
	struct dc_schema_wait *wt;

	while ((ent = cache) != NULL) {
		cache = ent->next;
		if (ent->job != NULL)
			dc_pool_cancel(ent->job);
		while ((wt = ent->waiters) != NULL) {
			ent->waiters = wt->next;
			free(wt);
		}
		while ((wt = ent->lookups) != NULL) {
			ent->lookups = wt->next;
			dc_pool_cancel(wt->job);
			free(wt);
		}
		dc_schema_free(ent->snap);
		free(ent->version);
		free(ent->pending_version);
		found_clear(ent);
		entry_wipe(ent);
		free(ent);
	}
}
