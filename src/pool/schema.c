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
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "driver.h"
#include "log.h"
#include "pool.h"
#include "rows.h"
#include "schema.h"
#include "target.h"
#include "util.h"
#include "worker.h"

enum {
	F_SCHEMA, F_TABLE, F_TYPE, F_ROWS, F_COLUMN, F_DATATYPE, F_NULLABLE,
	F_PK, F_FTABLE, F_FCOLUMN, F_COUNT
};

struct cache_ent {
	uint8_t		 id[16];
	uint64_t	 gen;
	uint64_t	 url_hash;	/* the environment entry's gen is fixed */
	int		 dead;		/* dropped; freed when the fetch ends */
	int		 delivering;	/* waiters are being called */
	struct dc_schema *snap;
	uint64_t	 snap_ms;	/* monotonic time of the snapshot */
	struct dc_job	*job;		/* fetch in flight */
	struct dc_schema_wait *waiters;
	struct cache_ent *next;
};

struct dc_schema_wait {
	struct cache_ent *ent;
	dc_schema_cb	 cb;
	void		*arg;
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

static struct json_object *
opt_string(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

struct json_object *
dc_schema_table_json(const struct dc_schema_table *t)
{
	struct json_object *o = json_object_new_object(), *cols, *c;
	int i;

	cols = json_object_new_array_ext(t->ncols);
	if (o == NULL || cols == NULL) {
		json_object_put(o);
		json_object_put(cols);
		return NULL;
	}
	json_object_object_add(o, "schema_name", json_object_new_string(t->schema));
	json_object_object_add(o, "table_name", json_object_new_string(t->name));
	json_object_object_add(o, "row_count", t->row_count >= 0 ?
	    json_object_new_int64(t->row_count) : NULL);
	json_object_object_add(o, "table_type",
	    json_object_new_string(t->table_type));
	for (i = 0; i < t->ncols; i++) {
		const struct dc_schema_column *col = &t->cols[i];

		c = json_object_new_object();
		json_object_object_add(c, "name",
		    json_object_new_string(col->name));
		json_object_object_add(c, "data_type",
		    json_object_new_string(col->data_type));
		json_object_object_add(c, "is_nullable",
		    json_object_new_boolean(col->nullable));
		json_object_object_add(c, "is_primary_key",
		    json_object_new_boolean(col->is_pk));
		json_object_object_add(c, "is_foreign_key",
		    json_object_new_boolean(col->is_fk));
		json_object_object_add(c, "foreign_table",
		    opt_string(col->foreign_table));
		json_object_object_add(c, "foreign_column",
		    opt_string(col->foreign_column));
		json_object_array_add(cols, c);
	}
	json_object_object_add(o, "columns", cols);
	return o;
}

/* --- the cache --- */

static uint64_t
url_hash(const char *url)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *url != '\0'; url++) {
		h ^= (unsigned char)*url;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void
ent_unlink_free(struct cache_ent *ent)
{
	struct cache_ent **pp;

	for (pp = &cache; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ent) {
			*pp = ent->next;
			break;
		}
	}
	dc_schema_free(ent->snap);
	free(ent);
}

/* Forget a target's snapshot; a fetch in flight still answers its waiters. */
static void
ent_drop(struct cache_ent *ent)
{
	dc_schema_free(ent->snap);
	ent->snap = NULL;
	if (ent->job != NULL || ent->delivering)
		ent->dead = 1;
	else
		ent_unlink_free(ent);
}

static void
fetched(const struct dc_qresult *r, void *arg)
{
	struct cache_ent *ent = arg;
	struct dc_schema_wait *wt, *list;
	struct dc_schema *snap = NULL;
	struct dc_qresult oom;

	ent->job = NULL;
	if (r->status == DC_OK && dc_schema_parse(r->rows, &snap) != DC_OK) {
		memset(&oom, 0, sizeof(oom));
		oom.status = DC_ENOMEM;
		oom.error = "out of memory while reading the catalog";
		r = &oom;
	}
	if (snap != NULL && !ent->dead) {
		dc_schema_free(ent->snap);
		ent->snap = snap;
		ent->snap_ms = dc_now_ms();
	}
	list = ent->waiters;
	ent->waiters = NULL;
	ent->delivering = 1;
	while ((wt = list) != NULL) {
		list = wt->next;
		wt->cb(snap, snap != NULL ? NULL : r, wt->arg);
		free(wt);
	}
	ent->delivering = 0;
	if (ent->dead) {
		if (snap != ent->snap)
			dc_schema_free(snap);
		ent_unlink_free(ent);
	}
}

int
dc_schema_get(struct dc_worker *w, const struct dc_entry *e, dc_schema_cb cb,
    void *arg, struct dc_schema_wait **waitp)
{
	const char *params[DC_SCHEMA_SQL_NPARAMS] = { NULL, NULL, "true" };
	const struct dc_driver *drv = dc_driver_find(e->type);
	uint64_t h = url_hash(e->url);
	struct cache_ent *ent;
	struct dc_schema_wait *wt;
	int rc;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	for (ent = cache; ent != NULL; ent = ent->next)
		if (!ent->dead && memcmp(ent->id, e->id, 16) == 0)
			break;
	if (ent != NULL && (ent->gen != e->gen || ent->url_hash != h)) {
		ent_drop(ent);
		ent = NULL;
	}
	if (ent != NULL && ent->snap != NULL &&
	    dc_now_ms() - ent->snap_ms < DC_SCHEMA_TTL_MS) {
		cb(ent->snap, NULL, arg);
		return DC_OK;
	}
	if (ent == NULL) {
		if ((ent = calloc(1, sizeof(*ent))) == NULL)
			return DC_ENOMEM;
		memcpy(ent->id, e->id, 16);
		ent->gen = e->gen;
		ent->url_hash = h;
		ent->next = cache;
		cache = ent;
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
		return DC_OK;		/* joins the fetch in flight */
	/* the callback may run (and free wt) before this returns */
	rc = dc_pool_query(w->pool, e, DC_JOB_CATALOG,
	    drv->dialect->catalog_sql, DC_SCHEMA_SQL_NPARAMS, params, fetched,
	    ent, &ent->job);
	if (rc != DC_OK) {
		ent->waiters = wt->next;
		free(wt);
		*waitp = NULL;
		if (ent->snap == NULL)
			ent_drop(ent);
	}
	return rc;
}

void
dc_schema_cancel(struct dc_schema_wait *wt)
{
	struct dc_schema_wait **pp;

	for (pp = &wt->ent->waiters; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	}
	/* the fetch goes on: its snapshot serves the next request */
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
		dc_schema_free(ent->snap);
		free(ent);
	}
}
