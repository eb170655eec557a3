/*
 * sqlcheck.c - a statement judged for its target before it runs (see
 * sqlcheck.h): the dialect's guard, or for PostgreSQL the parser and the
 * function policy against the target's catalog.
 *
 * The catalog is this worker's (each worker is its own process), one per
 * target, kept while the target's entry (generation, and URL for the
 * environment entry) is the same and read again after DC_PGCAT_TTL_MS,
 * so a DBA's new or changed function is known within that bound and the
 * time of one read: a worker that has no catalog for the target yet
 * reads it once for every statement waiting for it; one whose catalog
 * is older than the TTL reads it again in the background while its
 * statements go on with the one it has (they would otherwise all wait
 * for a read of thousands of rows once a minute).  A statement that
 * names a function the catalog does not hold (created since it was
 * read) gets the catalog read once more, at most every
 * DC_PGCAT_REREAD_MS per target, so a client cannot make each of its
 * statements cost a catalog read.  When the catalog cannot be read (target down), the statement is
 * still parsed: one the grammar refuses is refused as such, anything else
 * gets the target's failure.
 *
 * A verdict known before dc_sql_check() returns is kept in the wait and
 * handed over when it returns, so the caller's callback never runs while
 * the caller is still setting up.
 */
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "driver.h"
#include "log.h"
#include "pgguard.h"
#include "pgpolicy.h"
#include "pool.h"
#include "rows.h"
#include "shreg.h"
#include "sqlcheck.h"
#include "sqlguard.h"
#include "util.h"
#include "worker.h"

#define VERDICTS	256	/* admitted shapes kept per worker */
#define DC_PGCAT_TTL_MS	60000	/* a catalog is read again after this */
#define DC_PGCAT_REREAD_MS 5000	/* or after this, for a name it lacks */

struct dc_sqlcheck_wait;

/* One target's policy catalog, or the read of it in flight. */
struct pcat {
	uint8_t		 id[16];
	uint64_t	 gen;
	uint64_t	 url_hash;	/* the environment entry's gen is fixed */
	struct dc_pgcat	*cat;
	uint64_t	 catgen;	/* numbers cat among this worker's */
	uint64_t	 read_ms;	/* monotonic time cat was read */
	struct dc_job	*job;		/* read in flight */
	uint64_t	 asked_us;	/* when job was queued */
	struct dc_sqlcheck_wait *waiters;
	int		 dead;		/* replaced: freed when the read ends */
	struct pcat	*next;
};
#define SHAPE_MAX	4096	/* longer statements are parsed every time */

struct dc_sqlcheck_wait {
	struct dc_worker *w;
	struct dc_entry	*e;		/* a copy: the catalog may be read
					   again after the caller moved on */
	char		*sql;
	size_t		 len;
	char		*shape;		/* NULL: the statement has none */
	size_t		 shape_n;
	dc_sqlcheck_cb	 cb;
	void		*arg;
	struct pcat	*pc;		/* waiting for its catalog */
	struct dc_sqlcheck_wait *wnext;	/* in pc->waiters */
	int		 reread;	/* the catalog was asked for again */
	int		 in_call;	/* dc_sql_check() has not returned */
	int		 done;		/* v holds the verdict (in_call) */
	uint64_t	 start_us;	/* when dc_sql_check() got it */
	int		 quiet;		/* a warm-up: not a client's wait */
	struct dc_sqlcheck v;
	struct dc_qresult err;		/* a copy of the catalog's failure */
	char		 errmsg[512];
	char		 sqlstate[6];
};

/* Admitted verdicts of this worker (each worker is its own process). */
static struct dc_pgcache *verdicts;
static struct pcat *pcats;		/* this worker's catalogs */
static uint64_t catgens;		/* catalogs read so far */

static void
ck_free(struct dc_sqlcheck_wait *ck)
{
	if (ck->e != NULL) {
		dc_explicit_bzero(ck->e, sizeof(*ck->e));
		free(ck->e);
	}
	free(ck->sql);
	free(ck->shape);
	free(ck);
}

/* ck's verdict is handed over: how long it took, for /metrics. */
static void
ck_deliver(struct dc_sqlcheck_wait *ck)
{
	if (!ck->quiet)
		dc_query_phase_add(ck->w->stats, DC_QP_CHECK,
		    dc_now_us() - ck->start_us);
	ck->cb(&ck->v, ck->arg);
	ck_free(ck);
}

/* The verdict in ck->v is final: hand it over now, or when we return. */
static void
ck_finish(struct dc_sqlcheck_wait *ck)
{
	if (ck->in_call) {
		ck->done = 1;
		return;
	}
	ck_deliver(ck);
}

static void
ck_refused(struct dc_sqlcheck_wait *ck, const struct dc_pg_refusal *ref)
{
	ck->v.status = DC_EINVAL;
	dc_pgguard_describe(ref, ck->v.reason, sizeof(ck->v.reason));
	dc_pgguard_clean(ck->v.reason);
	ck_finish(ck);
}

static void
ck_admitted(struct dc_sqlcheck_wait *ck, int kind, size_t len, int unusual)
{
	ck->v.status = DC_OK;
	ck->v.kind = kind == DC_PGSTMT_EXPLAIN ? DC_SQL_EXPLAIN :
	    kind == DC_PGSTMT_SHOW ? DC_SQL_SHOW : DC_SQL_SELECT;
	ck->v.len = len;
	ck->v.unusual = unusual;
	ck_finish(ck);
}

/*
 * The statement's length without a trailing ';'.  Only for a statement
 * with a shape: no comment, so what ends it is blanks and semicolons.
 */
static size_t
shape_len(const char *sql, size_t len)
{
	while (len > 0 && (sql[len - 1] == ';' || sql[len - 1] == ' ' ||
	    sql[len - 1] == '\t' || sql[len - 1] == '\n' ||
	    sql[len - 1] == '\r'))
		len--;
	return len;
}

static void	 catalog_ready(struct dc_sqlcheck_wait *, const struct dc_pgcat *,
		     uint64_t, const struct dc_qresult *);

static uint64_t
url_hash(const char *url)
{
	return dc_fnv1a(DC_FNV1A_INIT, url, strlen(url));
}

static void
pcat_unlink(struct pcat *pc)
{
	struct pcat **pp;

	for (pp = &pcats; *pp != NULL; pp = &(*pp)->next)
		if (*pp == pc) {
			*pp = pc->next;
			break;
		}
	pc->next = NULL;
}

/* The policy catalog from the rows of the dialect's policy_sql. */
static int
pcat_parse(const struct dc_rows *res, struct dc_pgcat **out)
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

/* The read of pc's catalog ended: every check waiting for it goes on. */
static void
pcat_read(const struct dc_qresult *r, void *arg)
{
	struct pcat *pc = arg;
	struct dc_sqlcheck_wait *ck, *list;
	struct dc_pgcat *cat = NULL;
	struct dc_qresult bad;
	uint64_t t0;
	int rc = DC_OK;

	pc->job = NULL;
	t0 = dc_now_us();
	if (r->status == DC_OK && (rc = pcat_parse(r->rows, &cat)) != DC_OK) {
		memset(&bad, 0, sizeof(bad));
		bad.status = rc == DC_ENOMEM ? DC_ENOMEM : DC_ERR;
		bad.error = rc == DC_ENOMEM ? "out of memory while reading the "
		    "catalog" : "the target's catalog could not be read";
		r = &bad;
	}
	/* the parse runs on the worker's loop: how long it held it */
	log_debug("policy catalog read in %.1f ms, %d rows parsed in %.1f ms",
	    (double)(t0 - pc->asked_us) / 1e3, r->status == DC_OK &&
	    r->rows != NULL ? r->rows->nrows : 0,
	    (double)(dc_now_us() - t0) / 1e3);
	if (cat != NULL) {
		dc_pgcat_free(pc->cat);
		pc->cat = cat;
		pc->catgen = ++catgens;
		pc->read_ms = dc_now_ms();
	} else if (pc->cat != NULL)
		/* a read in the background failed: the next in a while */
		pc->read_ms = dc_now_ms() - DC_PGCAT_TTL_MS +
		    DC_PGCAT_REREAD_MS;
	list = pc->waiters;
	pc->waiters = NULL;
	/*
	 * A check may ask for the catalog again (a name it lacks): that adds
	 * it to pc->waiters anew and starts another read, which never ends
	 * before this returns with a catalog that would replace cat.
	 */
	while ((ck = list) != NULL) {
		list = ck->wnext;
		ck->pc = NULL;
		catalog_ready(ck, cat, pc->catgen, cat != NULL ? NULL : r);
	}
	if (pc->dead && pc->job == NULL && pc->waiters == NULL) {
		dc_pgcat_free(pc->cat);
		free(pc);
	}
}

/*
 * Get ck's target's catalog: at once (catalog_ready runs before this
 * returns) or once a read ends.  stale: a catalog generation the check
 * found wanting (0: none), read again when old enough.
 */
static void
ask_catalog(struct dc_sqlcheck_wait *ck, uint64_t stale)
{
	const struct dc_driver *drv = dc_driver_find(ck->e->type);
	uint64_t h = url_hash(ck->e->url), now = dc_now_ms();
	struct pcat *pc;
	int rc;

	for (pc = pcats; pc != NULL; pc = pc->next)
		if (memcmp(pc->id, ck->e->id, 16) == 0)
			break;
	if (pc != NULL && (pc->gen != ck->e->gen || pc->url_hash != h)) {
		/* the entry changed: its catalog goes, a read still answers */
		pcat_unlink(pc);
		if (pc->job != NULL)
			pc->dead = 1;
		else {
			dc_pgcat_free(pc->cat);
			free(pc);
		}
		pc = NULL;
	}
	if (pc != NULL && pc->cat != NULL && (stale == 0 ||
	    stale != pc->catgen || now - pc->read_ms < DC_PGCAT_REREAD_MS)) {
		if (now - pc->read_ms >= DC_PGCAT_TTL_MS && pc->job == NULL) {
			pc->asked_us = dc_now_us();
			if (dc_pool_query(ck->w->pool, ck->e, DC_JOB_CATALOG,
			    drv->dialect->policy_sql, 0, NULL, pcat_read, pc,
			    &pc->job) != DC_OK)
				pc->job = NULL;	/* the next tries again */
		}
		/* pcat_read may have run (a refused connect): cat stays */
		catalog_ready(ck, pc->cat, pc->catgen, NULL);
		return;
	}
	if (pc == NULL) {
		if ((pc = calloc(1, sizeof(*pc))) == NULL) {
			rc = DC_ENOMEM;
			goto fail;
		}
		memcpy(pc->id, ck->e->id, 16);
		pc->gen = ck->e->gen;
		pc->url_hash = h;
		pc->next = pcats;
		pcats = pc;
	}
	ck->pc = pc;
	ck->wnext = pc->waiters;
	pc->waiters = ck;
	if (pc->job != NULL)
		return;			/* joins the read in flight */
	pc->asked_us = dc_now_us();
	/* pcat_read may run (and finish ck) before this returns */
	rc = dc_pool_query(ck->w->pool, ck->e, DC_JOB_CATALOG,
	    drv->dialect->policy_sql, 0, NULL, pcat_read, pc, &pc->job);
	if (rc == DC_OK)
		return;
	pc->waiters = ck->wnext;
	ck->pc = NULL;
fail:
	/* DC_EFULL, DC_ENOMEM: err NULL, as dc_pool_query's */
	ck->v.status = rc;
	ck->v.err = NULL;
	ck_finish(ck);
}

/* Take ck out of its catalog's waiters. */
static void
unwait(struct dc_sqlcheck_wait *ck)
{
	struct dc_sqlcheck_wait **pp;

	if (ck->pc == NULL)
		return;
	for (pp = &ck->pc->waiters; *pp != NULL; pp = &(*pp)->wnext)
		if (*pp == ck) {
			*pp = ck->wnext;
			break;
		}
	ck->pc = NULL;
}

/* Judge the statement against cat (generation catgen), or parse it only. */
static void
judge(struct dc_sqlcheck_wait *ck, const struct dc_pgcat *cat,
    uint64_t catgen)
{
	struct dc_pgstmt *st = NULL;
	struct dc_pg_refusal ref;
	size_t len;
	int rc, kind, unusual = 0;

	if (cat != NULL && ck->shape != NULL && verdicts != NULL &&
	    dc_pgcache_get(verdicts, catgen, ck->shape, ck->shape_n, &kind,
	    &unusual)) {
		ck_admitted(ck, kind, shape_len(ck->sql, ck->len), unusual);
		return;
	}
	rc = dc_pgguard_parse(ck->sql, ck->len, &st, &ref);
	if (rc == DC_OK && cat != NULL)
		rc = dc_pgpolicy_check(cat, st, ck->sql, ck->len, &ref,
		    &unusual);
	if (rc == DC_ENOENT && !ck->reread) {
		/* a function made since the catalog was read? */
		dc_pgguard_free(st);
		ck->reread = 1;
		ask_catalog(ck, catgen);
		return;
	}
	if (rc == DC_OK && cat == NULL) {
		/* the grammar admits it, but the catalog is out of reach */
		dc_pgguard_free(st);
		ck->v.status = ck->err.status;
		ck->v.err = &ck->err;
		ck_finish(ck);
		return;
	}
	if (rc == DC_OK) {
		if (ck->shape != NULL && verdicts != NULL)
			dc_pgcache_put(verdicts, catgen, ck->shape, ck->shape_n,
			    st->kind, unusual);
		kind = st->kind;
		len = st->len;
		dc_pgguard_free(st);
		ck_admitted(ck, kind, len, unusual);
		return;
	}
	dc_pgguard_free(st);
	if (rc == DC_ENOMEM) {
		ck->v.status = DC_ENOMEM;
		dc_strlcpy(ck->v.reason, "out of memory", sizeof(ck->v.reason));
		ck_finish(ck);
		return;
	}
	ck_refused(ck, &ref);
}

static void
catalog_ready(struct dc_sqlcheck_wait *ck, const struct dc_pgcat *cat,
    uint64_t catgen, const struct dc_qresult *err)
{
	if (cat == NULL) {
		/* kept: the verdict may be handed over after err is gone */
		ck->err = *err;
		dc_strlcpy(ck->errmsg, err->error != NULL ? err->error : "",
		    sizeof(ck->errmsg));
		ck->err.error = err->error != NULL ? ck->errmsg : NULL;
		dc_strlcpy(ck->sqlstate, err->sqlstate != NULL ?
		    err->sqlstate : "", sizeof(ck->sqlstate));
		ck->err.sqlstate = err->sqlstate != NULL ? ck->sqlstate : NULL;
		ck->err.rows = NULL;
	}
	judge(ck, cat, catgen);
}

static int
check_start(struct dc_worker *w, const struct dc_entry *e, const char *sql,
    dc_sqlcheck_cb cb, void *arg, struct dc_sqlcheck_wait **waitp, int quiet)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct dc_sqlcheck_wait *ck;
	struct dc_sql_verdict sv;
	struct dc_sqlcheck v;
	char shape[SHAPE_MAX];
	int n;

	*waitp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if (drv->dialect->policy_sql == NULL) {
		/* a lexer alone: its verdict is final */
		memset(&v, 0, sizeof(v));
		v.status = drv->dialect->guard(sql, strlen(sql), &sv);
		v.kind = sv.kind;
		v.len = sv.len;
		dc_strlcpy(v.reason, sv.reason, sizeof(v.reason));
		cb(&v, arg);
		return DC_OK;
	}
	if (verdicts == NULL)
		verdicts = dc_pgcache_new(VERDICTS);	/* NULL: no cache */
	if ((ck = calloc(1, sizeof(*ck))) == NULL)
		return DC_ENOMEM;
	ck->w = w;
	ck->start_us = dc_now_us();
	ck->quiet = quiet;
	ck->cb = cb;
	ck->arg = arg;
	ck->len = strlen(sql);
	if ((ck->sql = strdup(sql)) == NULL ||
	    (ck->e = malloc(sizeof(*ck->e))) == NULL) {
		ck_free(ck);
		return DC_ENOMEM;
	}
	memcpy(ck->e, e, sizeof(*e));
	n = dc_pgguard_shape(sql, ck->len, shape, sizeof(shape));
	if (n >= 0 && (ck->shape = malloc((size_t)n + 1)) != NULL) {
		memcpy(ck->shape, shape, (size_t)n + 1);
		ck->shape_n = (size_t)n;
	}
	ck->in_call = 1;
	ask_catalog(ck, 0);
	ck->in_call = 0;
	if (ck->done)
		ck_deliver(ck);
	else
		*waitp = ck;
	return DC_OK;
}

int
dc_sql_check(struct dc_worker *w, const struct dc_entry *e, const char *sql,
    dc_sqlcheck_cb cb, void *arg, struct dc_sqlcheck_wait **waitp)
{
	return check_start(w, e, sql, cb, arg, waitp, 0);
}

int
dc_sql_check_warm(struct dc_worker *w, const struct dc_entry *e,
    dc_sqlcheck_cb cb, void *arg)
{
	struct dc_sqlcheck_wait *wait;

	/* judging a statement that names no function reads the catalog */
	return check_start(w, e, "SELECT 1", cb, arg, &wait, 1);
}

void
dc_sql_check_cancel(struct dc_sqlcheck_wait *ck)
{
	/* the read goes on: its catalog serves the next statement */
	unwait(ck);
	ck_free(ck);
}

void
dc_sql_check_shutdown(void)
{
	struct dc_sqlcheck_wait *ck;
	struct pcat *pc;

	while ((pc = pcats) != NULL) {
		pcats = pc->next;
		if (pc->job != NULL)
			dc_pool_cancel(pc->job);
		while ((ck = pc->waiters) != NULL) {
			pc->waiters = ck->wnext;
			ck_free(ck);
		}
		dc_pgcat_free(pc->cat);
		free(pc);
	}
	dc_pgcache_free(verdicts);
	verdicts = NULL;
}
