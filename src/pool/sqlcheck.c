/*
 * sqlcheck.c - a statement judged for its target before it runs (see
 * sqlcheck.h): the dialect's guard, or for PostgreSQL the parser and the
 * function policy against the target's catalog.
 *
 * The function policy is the target's catalog entry's (catalog.h: kept
 * per worker and per target beside the schema snapshot, read on first
 * use, dropped when the registry entry changes, read again in the
 * background after DC_POLICY_TTL_MS, or at once when the catalog moved):
 * at once when this worker has it, else after one read shared by every
 * statement waiting for it.
 * A statement that names a function the policy does not hold (created
 * since it was read) asks for it once more, which reads it again at most
 * every DC_POLICY_REREAD_MS per target, so a client cannot make each of
 * its statements cost a catalog read.  When the catalog cannot be read
 * (target down), the statement is still parsed: one the grammar refuses
 * is refused as such, anything else gets the target's failure.
 *
 * A verdict known before dc_sql_check() returns is kept in the wait and
 * handed over when it returns, so the caller's callback never runs while
 * the caller is still setting up.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "dc.h"
#include "driver.h"
#include "pgguard.h"
#include "pgpolicy.h"
#include "pool.h"
#include "shreg.h"
#include "sqlcheck.h"
#include "sqlguard.h"
#include "util.h"
#include "worker.h"

#define VERDICTS	256	/* admitted shapes kept per worker */
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
	struct dc_catalog_wait *cw;	/* waiting for its policy */
	struct dc_sqlcheck_wait *prev, *wnext;	/* in waiting */
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
static struct dc_sqlcheck_wait *waiting;	/* checks asking for a policy */

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

static void	 catalog_ready(const struct dc_pgcat *, uint64_t,
		     const struct dc_qresult *, void *);

/* ck waits for its policy, or no longer (wait_unlink: cw is not ours). */
static void
wait_link(struct dc_sqlcheck_wait *ck)
{
	assert(ck->prev == NULL && ck->wnext == NULL && waiting != ck);
	ck->prev = NULL;
	ck->wnext = waiting;
	if (waiting != NULL)
		waiting->prev = ck;
	waiting = ck;
}

static void
wait_unlink(struct dc_sqlcheck_wait *ck)
{
	if (ck->prev == NULL && waiting != ck)
		return;			/* not waiting */
	if (ck->prev != NULL)
		ck->prev->wnext = ck->wnext;
	else
		waiting = ck->wnext;
	if (ck->wnext != NULL)
		ck->wnext->prev = ck->prev;
	ck->prev = ck->wnext = NULL;
	ck->cw = NULL;
}

/*
 * Get ck's target's policy: at once (catalog_ready runs before this
 * returns) or once a read ends.  stale: a policy generation the check
 * found wanting (0: none), read again when old enough (catalog.h).
 */
static void
ask_catalog(struct dc_sqlcheck_wait *ck, uint64_t stale)
{
	int rc;

	/* waiting first: catalog_ready may run (and free ck) before this
	   returns */
	wait_link(ck);
	rc = dc_catalog_policy(ck->w, ck->e, stale, catalog_ready, ck, &ck->cw);
	if (rc != DC_OK) {
		/* DC_EFULL, DC_ENOMEM: err NULL, as dc_pool_query's */
		wait_unlink(ck);
		ck->v.status = rc;
		ck->v.err = NULL;
		ck_finish(ck);
	}
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

/* The policy is known (cat), or cannot be read (err). */
static void
catalog_ready(const struct dc_pgcat *cat, uint64_t catgen,
    const struct dc_qresult *err, void *arg)
{
	struct dc_sqlcheck_wait *ck = arg;

	wait_unlink(ck);	/* its wait is the catalog's to free */
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
	/* the read goes on: its policy serves the next statement */
	if (ck->cw != NULL)
		dc_catalog_cancel(ck->cw);
	wait_unlink(ck);
	ck_free(ck);
}

void
dc_sql_check_shutdown(void)
{
	struct dc_sqlcheck_wait *ck;

	while ((ck = waiting) != NULL)
		dc_sql_check_cancel(ck);
	dc_pgcache_free(verdicts);
	verdicts = NULL;
}
