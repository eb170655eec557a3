/*
 * catalog.c - the per-worker, per-target catalog entries: the schema
 * snapshot and the function policy of each target, read, kept fresh and
 * dropped together (see catalog.h).
 *
 * The entries are a short list, one per target this worker has been
 * asked about.  Each half (snapshot, policy) has at most one read in
 * flight, and collects waiters that all get what that read brings.  An
 * entry dropped while something of it is in flight is marked dead and
 * freed when the last of it ends, so the pool's callbacks never see
 * freed memory; a dead entry is never found again, a new one takes its
 * place.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "dc.h"
#include "driver.h"
#include "log.h"
#include "pgpolicy.h"
#include "pool.h"
#include "result.h"
#include "rows.h"
#include "schema.h"
#include "shreg.h"
#include "target.h"
#include "util.h"
#include "worker.h"

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

struct cat_ent {
	/* the key */
	uint8_t		 id[16];
	uint64_t	 gen;
	uint64_t	 url_hash;	/* the environment entry's gen is fixed */
	int		 dead;		/* dropped; freed when nothing is in
					   flight any more */
	int		 delivering;	/* waiters are being called */
	const struct dc_dialect *dialect;	/* the target's engine's */
	struct dc_worker *w;

	/* the snapshot, and the version check that keeps it fresh */
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
	struct dc_catalog_wait *waiters;
	struct found	*found;		/* lookups, for this snapshot */
	int		 nfound;
	struct dc_catalog_wait *lookups;	/* in flight */
	double		 tokens;	/* lookups it may start now */
	uint64_t	 tokens_ms;

	/* the function policy (dialects with policy_sql) */
	struct dc_pgcat	*pol;
	uint64_t	 polgen;	/* numbers pol among this worker's */
	uint64_t	 pol_ms;	/* monotonic time pol was read */
	int		 pol_stale;	/* the catalog moved since pol was
					   read: read again (and wait for it)
					   once DC_POLICY_REREAD_MS passed */
	int		 pol_moved;	/* ... moved while pol_job ran, which
					   may not show it */
	struct dc_job	*pol_job;	/* read in flight */
	uint64_t	 pol_asked_us;	/* when pol_job was queued */
	struct dc_catalog_wait *pol_waiters;

	struct cat_ent	*next;
};

enum wait_kind { W_SCHEMA, W_LOOKUP, W_POLICY };

struct dc_catalog_wait {
	struct cat_ent	*ent;
	enum wait_kind	 kind;
	dc_catalog_schema_cb scb;	/* W_SCHEMA, W_LOOKUP */
	dc_catalog_policy_cb pcb;	/* W_POLICY */
	void		*arg;
	/* a lookup: its own query and name */
	struct dc_job	*job;
	char		 key[2 * DC_SCHEMA_NAME_MAX];
	struct dc_catalog_wait *next;
};

/* A new waiter of kind on *list, handed to the caller in *waitp. */
static struct dc_catalog_wait *
wait_add(struct cat_ent *ent, enum wait_kind kind,
    struct dc_catalog_wait **list, void *arg, struct dc_catalog_wait **waitp)
{
	struct dc_catalog_wait *wt;

	if ((wt = calloc(1, sizeof(*wt))) == NULL)
		return NULL;
	wt->ent = ent;
	wt->kind = kind;
	wt->arg = arg;
	wt->next = *list;
	*list = wt;
	*waitp = wt;
	return wt;
}

/* This worker's entries: each worker is its own process. */
static struct cat_ent *cache;
static uint64_t polgens;		/* policies read so far */

static uint64_t
url_hash(const char *url)
{
	return dc_fnv1a(DC_FNV1A_INIT, url, strlen(url));
}

static void
found_clear(struct cat_ent *ent)
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
entry_wipe(struct cat_ent *ent)
{
	if (ent->e != NULL) {
		dc_explicit_bzero(ent->e, sizeof(*ent->e));
		free(ent->e);
		ent->e = NULL;
	}
}

/* Free what ent holds, and ent (unlinked by the caller). */
static void
ent_free(struct cat_ent *ent)
{
	dc_schema_free(ent->snap);
	free(ent->version);
	free(ent->pending_version);
	found_clear(ent);
	entry_wipe(ent);
	dc_pgcat_free(ent->pol);
	free(ent);
}

static void
ent_unlink_free(struct cat_ent *ent)
{
	struct cat_ent **pp;

	assert(ent->job == NULL && ent->pol_job == NULL &&
	    ent->lookups == NULL && !ent->delivering);
	for (pp = &cache; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ent) {
			*pp = ent->next;
			break;
		}
	}
	ent_free(ent);
}

/* Free a dead entry once nothing of it is in flight. */
static void
ent_reap(struct cat_ent *ent)
{
	if (ent->dead && ent->job == NULL && ent->pol_job == NULL &&
	    ent->lookups == NULL && !ent->delivering)
		ent_unlink_free(ent);
}

/*
 * Forget a target's snapshot and policy; what is in flight still answers.
 * While waiters are being called they may hold the snapshot or policy
 * being handed over: then both are freed with the entry, after them.
 */
static void
ent_drop(struct cat_ent *ent)
{
	if (!ent->delivering) {
		dc_schema_free(ent->snap);
		ent->snap = NULL;
		found_clear(ent);
		dc_pgcat_free(ent->pol);
		ent->pol = NULL;
	}
	ent->dead = 1;
	ent_reap(ent);
}

/* An entry that a failed first request left empty goes. */
static void
ent_drop_if_empty(struct cat_ent *ent)
{
	if (ent->snap == NULL && ent->pol == NULL && ent->job == NULL &&
	    ent->pol_job == NULL && ent->lookups == NULL &&
	    ent->waiters == NULL && ent->pol_waiters == NULL &&
	    !ent->delivering)
		ent_drop(ent);
}

/* The entry of target e, made when there is none; NULL: out of memory. */
static struct cat_ent *
ent_find(struct dc_worker *w, const struct dc_entry *e,
    const struct dc_dialect *d)
{
	uint64_t h = url_hash(e->url);
	struct cat_ent *ent;

	for (ent = cache; ent != NULL; ent = ent->next)
		if (!ent->dead && memcmp(ent->id, e->id, 16) == 0)
			break;
	if (ent != NULL && (ent->gen != e->gen || ent->url_hash != h)) {
		/* the registry moved before the worker synced: both go */
		ent_drop(ent);
		ent = NULL;
	}
	if (ent == NULL && (ent = calloc(1, sizeof(*ent))) != NULL) {
		memcpy(ent->id, e->id, 16);
		ent->dialect = d;
		ent->w = w;
		ent->gen = e->gen;
		ent->url_hash = h;
		ent->tokens = LOOKUP_BURST;
		ent->next = cache;
		cache = ent;
	}
	return ent;
}

/* --- the function policy --- */

/* The policy from the rows of the dialect's policy_sql. */
static int
policy_parse(const struct dc_rows *res, struct dc_pgcat **out)
{
	const char *f[DC_PGCAT_COLUMNS];
	struct dc_pgcat *cat;
	int row, col, rc = DC_OK;

	*out = NULL;
	if (res->ncols != DC_PGCAT_COLUMNS)
		return DC_EINVAL;
	if ((cat = dc_pgcat_new()) == NULL)
		return DC_ENOMEM;
	for (row = 0; row < res->nrows && rc == DC_OK; row++) {
		for (col = 0; col < DC_PGCAT_COLUMNS; col++)
			f[col] = dc_rows_cell(res, row, col)->v;
		rc = dc_pgcat_add_row(cat, f);
	}
	if (rc == DC_OK)
		rc = dc_pgcat_finish(cat);
	if (rc != DC_OK) {
		dc_pgcat_free(cat);
		return rc;
	}
	*out = cat;
	return DC_OK;
}

/* The policy read ended: keep it, and every waiter goes on. */
static void
policy_read(const struct dc_qresult *r, void *arg)
{
	struct cat_ent *ent = arg;
	struct dc_catalog_wait *wt, *list;
	struct dc_pgcat *cat = NULL;
	struct dc_qresult bad;
	uint64_t gen = 0, t0;
	int rc = DC_OK;

	ent->pol_job = NULL;
	t0 = dc_now_us();
	if (r->status == DC_OK && (rc = policy_parse(r->rows, &cat)) !=
	    DC_OK) {
		memset(&bad, 0, sizeof(bad));
		bad.status = rc == DC_ENOMEM ? DC_ENOMEM : DC_ERR;
		bad.error = rc == DC_ENOMEM ? "out of memory while reading the "
		    "catalog" : "the target's catalog could not be read";
		r = &bad;
	}
	/* the parse runs on the worker's loop: how long it held it */
	log_debug("policy catalog read in %.1f ms, %d rows parsed in %.1f ms",
	    (double)(t0 - ent->pol_asked_us) / 1e3, r->status == DC_OK &&
	    r->rows != NULL ? r->rows->nrows : 0,
	    (double)(dc_now_us() - t0) / 1e3);
	if (cat != NULL) {
		gen = ++polgens;
		if (!ent->dead) {
			dc_pgcat_free(ent->pol);
			ent->pol = cat;
			ent->polgen = gen;
			ent->pol_ms = dc_now_ms();
			ent->pol_stale = ent->pol_moved;
		}
	} else if (!ent->dead && ent->pol != NULL)
		/* a read in the background failed: the next in a while */
		ent->pol_ms = dc_now_ms() - DC_POLICY_TTL_MS +
		    DC_POLICY_REREAD_MS;
	ent->pol_moved = 0;
	list = ent->pol_waiters;
	ent->pol_waiters = NULL;
	/*
	 * A waiter may ask again (a name the policy lacks): that adds it to
	 * ent->pol_waiters anew, or answers it at once from cat, which stays
	 * ent's until a read ends, never before this returns.
	 */
	ent->delivering++;
	while ((wt = list) != NULL) {
		list = wt->next;
		wt->pcb(cat, gen, cat != NULL ? NULL : r, wt->arg);
		free(wt);
	}
	ent->delivering--;
	if (cat != NULL && ent->pol != cat)
		dc_pgcat_free(cat);	/* the entry was dropped before */
	ent_reap(ent);
}

/*
 * Start reading ent's policy through target e (stale: as
 * dc_catalog_policy's, for the log).  0 or dc_pool_query's.
 */
static int
policy_start(struct cat_ent *ent, const struct dc_entry *e, uint64_t stale)
{
	char id[DC_UUID_STR_LEN + 1];

	assert(ent->pol_job == NULL && ent->dialect->policy_sql != NULL);
	dc_uuid_format(ent->id, id);
	log_debug("policy of %s: %s, reading the function catalog", id,
	    ent->pol == NULL ? "none yet" :
	    dc_now_ms() - ent->pol_ms >= DC_POLICY_TTL_MS ? "past its lifetime" :
	    ent->pol_stale ? "the catalog moved" :
	    stale != 0 ? "a statement names what it lacks" : "due");
	ent->pol_moved = 0;
	ent->pol_asked_us = dc_now_us();
	/* policy_read may run before this returns */
	return dc_pool_query(ent->w->pool, e, DC_JOB_CATALOG,
	    ent->dialect->policy_sql, 0, NULL, policy_read, ent,
	    &ent->pol_job);
}

/*
 * Whether a statement must wait for the policy to be read (again): there
 * is none, or it is known to lack something (stale: as
 * dc_catalog_policy's; or the catalog moved) and old enough to read again.
 */
static int
policy_wait(const struct cat_ent *ent, uint64_t stale, uint64_t now)
{
	if (ent->pol == NULL)
		return 1;
	if (ent->pol_stale || (stale != 0 && stale == ent->polgen))
		return now - ent->pol_ms >= DC_POLICY_REREAD_MS;
	return 0;
}

/*
 * Whether the policy is to be read again: as policy_wait, or older than
 * DC_POLICY_TTL_MS (then read in the background, statements going on
 * with the one the worker has rather than all waiting once a minute).
 */
static int
policy_due(const struct cat_ent *ent, uint64_t stale, uint64_t now)
{
	return policy_wait(ent, stale, now) ||
	    now - ent->pol_ms >= DC_POLICY_TTL_MS;
}

/*
 * A round that reads the snapshot may read the policy too (catalog.h,
 * DC_CATALOG_POLICY, and a moved version): start it unless it is fresh
 * or already on its way.  Nobody waits for it here: a failure is left
 * for the policy's own next request.  With no read in flight nobody
 * waits for the policy either, so a read that ends before this returns
 * calls no one back.
 */
static void
policy_along(struct cat_ent *ent, const struct dc_entry *e)
{
	if (ent->dead || ent->dialect->policy_sql == NULL ||
	    ent->pol_job != NULL || !policy_due(ent, 0, dc_now_ms()))
		return;
	(void)policy_start(ent, e, 0);
}

int
dc_catalog_policy(struct dc_worker *w, const struct dc_entry *e,
    uint64_t stale, dc_catalog_policy_cb cb, void *arg,
    struct dc_catalog_wait **waitp)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct cat_ent *ent;
	struct dc_catalog_wait *wt;
	int rc;

	*waitp = NULL;
	if (drv == NULL || drv->dialect->policy_sql == NULL)
		return DC_EINVAL;
	if ((ent = ent_find(w, e, drv->dialect)) == NULL)
		return DC_ENOMEM;
	if (!policy_wait(ent, stale, dc_now_ms())) {
		/* nobody waits for the policy here: a read calls no one */
		policy_along(ent, e);
		cb(ent->pol, ent->polgen, NULL, arg);
		return DC_OK;
	}
	if ((wt = wait_add(ent, W_POLICY, &ent->pol_waiters, arg,
	    waitp)) == NULL) {
		rc = DC_ENOMEM;
		goto fail;
	}
	wt->pcb = cb;
	if (ent->pol_job != NULL)
		return DC_OK;		/* joins the read in flight */
	/* the callback may run (and free wt) before this returns */
	if ((rc = policy_start(ent, e, stale)) == DC_OK)
		return DC_OK;
	ent->pol_waiters = wt->next;
	free(wt);
	*waitp = NULL;
fail:
	ent_drop_if_empty(ent);
	return rc;
}

/* --- the snapshot --- */

/* Hand snap (or the failure r) to every waiter; ent may be freed. */
static void
deliver(struct cat_ent *ent, const struct dc_schema *snap,
    const struct dc_qresult *r)
{
	struct dc_catalog_wait *wt, *list = ent->waiters;

	ent->waiters = NULL;
	ent->delivering++;
	while ((wt = list) != NULL) {
		list = wt->next;
		wt->scb(snap, snap != NULL ? NULL : r, wt->arg);
		free(wt);
	}
	ent->delivering--;
	ent_reap(ent);
}

static void
fetched(const struct dc_qresult *r, void *arg)
{
	struct cat_ent *ent = arg;
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
deliver_failure(struct cat_ent *ent, int status, const char *error)
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
	struct cat_ent *ent = arg;
	struct dc_entry *e = ent->e;
	char detail[256], id[DC_UUID_STR_LEN + 1];
	const char *v;
	int rc, moved;

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
	moved = ent->version != NULL && strcmp(v, ent->version) != 0;
	if (moved && ent->pol != NULL) {
		/* a function may have changed with it: the policy follows */
		ent->pol_stale = 1;
		ent->pol_moved = ent->pol_job != NULL;
		policy_along(ent, e);
	}
	if (ent->snap != NULL && !moved && ent->version != NULL &&
	    ent->pending_ms - ent->snap_ms <
	    (uint64_t)ent->w->cfg->schema_max_age * 1000) {
		log_debug("schema of %s: catalog version unchanged", id);
		ent->checked_ms = ent->pending_ms;
		deliver(ent, ent->snap, NULL);
		goto out;
	}
	log_debug("schema of %s: %s, reading the catalog", id,
	    ent->snap == NULL ? "no snapshot" : moved || ent->version == NULL ?
	    "catalog version moved" : "snapshot older than schema_max_age");
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

int
dc_catalog_schema(struct dc_worker *w, const struct dc_entry *e, int flags,
    dc_catalog_schema_cb cb, void *arg, struct dc_catalog_wait **waitp)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	const struct dc_config *cfg = w->cfg;
	struct cat_ent *ent;
	struct dc_catalog_wait *wt;
	uint64_t now = dc_now_ms();
	int rc, fresh;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if ((ent = ent_find(w, e, drv->dialect)) == NULL)
		return DC_ENOMEM;
	if (ent->snap != NULL && ent->job == NULL) {
		fresh = now - ent->checked_ms < (uint64_t)cfg->schema_check_interval;
		/* a table the caller misses: look again, but not too often */
		if ((flags & DC_CATALOG_RECHECK) &&
		    now - ent->checked_ms >= DC_CATALOG_RECHECK_MS)
			fresh = 0;
		if (fresh) {
			/* the policy's own rule: it may be due all the same */
			if (flags & DC_CATALOG_POLICY)
				policy_along(ent, e);
			cb(ent->snap, NULL, arg);
			return DC_OK;
		}
	}
	if ((wt = wait_add(ent, W_SCHEMA, &ent->waiters, arg,
	    waitp)) == NULL) {
		rc = DC_ENOMEM;
		goto fail;
	}
	wt->scb = cb;
	if (flags & DC_CATALOG_POLICY)
		policy_along(ent, e);	/* beside the version check */
	if (ent->job != NULL)
		return DC_OK;		/* joins the check or fetch in flight */
	if ((ent->e = malloc(sizeof(*ent->e))) == NULL) {
		rc = DC_ENOMEM;
		goto unwait;
	}
	memcpy(ent->e, e, sizeof(*e));
	ent->w = w;
	ent->pending_ms = now;
	/* the callback may run (and free wt) before this returns */
	rc = dc_pool_query(w->pool, e, DC_JOB_CATALOG, ent->dialect->version_sql,
	    0, NULL, checked, ent, &ent->job);
	if (rc == DC_OK)
		return DC_OK;	/* ent->e is checked()'s now */
	entry_wipe(ent);
unwait:
	ent->waiters = wt->next;
	free(wt);
	*waitp = NULL;
fail:
	ent_drop_if_empty(ent);
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
found_get(struct cat_ent *ent, const char *key)
{
	struct found *f;

	for (f = ent->found; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

static void
found_put(struct cat_ent *ent, const char *key, struct dc_schema *s)
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
	struct dc_catalog_wait *wt = arg, **pp;
	struct cat_ent *ent = wt->ent;
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
	wt->scb(s, s != NULL ? NULL : r, wt->arg);
	ent->delivering--;
	if (s != NULL && !ent->dead)
		found_put(ent, wt->key, s);
	else
		dc_schema_free(s);
	free(wt);
	ent_reap(ent);
}

int
dc_catalog_lookup(struct dc_worker *w, const struct dc_entry *e,
    const char *schema, const char *table, dc_catalog_schema_cb cb, void *arg,
    struct dc_catalog_wait **waitp)
{
	const char *params[DC_SCHEMA_SQL_NPARAMS] = { schema, table, "false" };
	static const struct dc_schema none = { 0, 0, NULL };
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct cat_ent *ent;
	struct dc_catalog_wait *wt;
	struct found *f;
	char key[2 * DC_SCHEMA_NAME_MAX], id[DC_UUID_STR_LEN + 1];
	uint64_t now = dc_now_ms();
	int rc;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if ((ent = ent_find(w, e, drv->dialect)) == NULL)
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
	if ((wt = wait_add(ent, W_LOOKUP, &ent->lookups, arg,
	    waitp)) == NULL) {
		ent_drop_if_empty(ent);
		return DC_ENOMEM;
	}
	wt->scb = cb;
	dc_strlcpy(wt->key, key, sizeof(wt->key));
	/* the callback may run (and free wt) before this returns */
	rc = dc_pool_query(w->pool, e, DC_JOB_CATALOG, ent->dialect->catalog_sql,
	    DC_SCHEMA_SQL_NPARAMS, params, looked_up, wt, &wt->job);
	if (rc != DC_OK) {
		ent->lookups = wt->next;
		free(wt);
		*waitp = NULL;
		ent_drop_if_empty(ent);
	}
	return rc;
}

/* --- the entries as a whole --- */

/* Take wt out of the list *head. */
static void
unlink_wait(struct dc_catalog_wait **head, struct dc_catalog_wait *wt)
{
	struct dc_catalog_wait **pp;

	for (pp = head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
}

void
dc_catalog_cancel(struct dc_catalog_wait *wt)
{
	struct cat_ent *ent = wt->ent;

	switch (wt->kind) {
	case W_LOOKUP:
		/* its query is its own */
		unlink_wait(&ent->lookups, wt);
		dc_pool_cancel(wt->job);
		free(wt);
		ent_reap(ent);
		return;
	case W_SCHEMA:
		unlink_wait(&ent->waiters, wt);
		break;
	case W_POLICY:
		unlink_wait(&ent->pol_waiters, wt);
		break;
	}
	/* the read goes on: it serves the next request */
	free(wt);
}

void
dc_catalog_sync(struct dc_worker *w)
{
	struct cat_ent *ent, *next;
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
dc_catalog_invalidate(const uint8_t *id)
{
	struct cat_ent *ent, *next;

	for (ent = cache; ent != NULL; ent = next) {
		next = ent->next;
		if (!ent->dead && (id == NULL || memcmp(ent->id, id, 16) == 0))
			ent_drop(ent);
	}
}

/* Free a list of waits; their callers are gone (shutdown). */
static void
free_waits(struct dc_catalog_wait *wt)
{
	struct dc_catalog_wait *next;

	for (; wt != NULL; wt = next) {
		next = wt->next;
		if (wt->job != NULL)
			dc_pool_cancel(wt->job);
		free(wt);
	}
}

void
dc_catalog_shutdown(void)
{
	struct cat_ent *ent;

	while ((ent = cache) != NULL) {
		cache = ent->next;
		if (ent->job != NULL)
			dc_pool_cancel(ent->job);
		if (ent->pol_job != NULL)
			dc_pool_cancel(ent->pol_job);
		free_waits(ent->waiters);
		free_waits(ent->lookups);
		free_waits(ent->pol_waiters);
		ent_free(ent);
	}
}
