/*
 * pool.h - a worker's PostgreSQL connections: persistent per-target
 * connections and one read-write connection to the system database, all
 * non-blocking and driven by the worker's event base.
 *
 * A query is a job: a short list of statements sent at once in libpq
 * pipeline mode (one round trip) whose one interesting result is handed
 * to the callback.  Read-only jobs are wrapped as
 *   BEGIN READ ONLY; SET LOCAL statement_timeout; <sql>; ROLLBACK
 * with the statement's rows read in single-row mode and kept up to
 * max_rows + 1, so a statement can neither write nor return more rows
 * than the cap, whatever its text says.
 *
 * Connections are keyed by connection id and entry generation.  When the
 * registry moves (dc_pool_sync), connections whose entry changed or
 * vanished are closed: idle ones at once, busy ones when their job ends
 * (PgBouncer's close_needed).
 */
#ifndef DC_POOL_H
#define DC_POOL_H

#include <stdint.h>

#include <libpq-fe.h>

#include "shreg.h"

struct dc_worker;
struct dc_pool;
struct dc_pgjob;

enum dc_pg_kind {
	DC_PG_READ = 1,		/* read-only, rows capped at max_rows + 1 */
	DC_PG_CATALOG,		/* read-only, our own catalog queries, uncapped */
};

struct dc_pg_result {
	int		 status;	/* DC_OK, DC_ERR (SQL), DC_EUNAVAIL, DC_ETIMEOUT,
					   DC_ENOENT (target removed meanwhile) */
	PGresult	*res;		/* rows on DC_OK; owned by the pool; with
					   a row cap, up to max_rows + 1 rows */
	int		 truncated;	/* more rows than the cap */
	const char	*error;		/* message, never a URL or password */
	const char	*sqlstate;	/* on DC_ERR; on DC_EUNAVAIL "08001" when
					   no connection could be made (target
					   down), "08006" when it was lost */
	int		 retried;	/* 1 when run again on a fresh connection */
};

typedef void (*dc_pg_cb)(const struct dc_pg_result *r, void *arg);

struct dc_pool	*dc_pool_new(struct dc_worker *w);
void		 dc_pool_free(struct dc_pool *pool);

/*
 * Run one statement on a target, read-only, with the configured timeout
 * and row cap.  params may be NULL.  *job (optional) allows cancelling.
 * The callback runs exactly once unless the job is cancelled, possibly
 * before this returns (a target that refuses connections at once), so a
 * caller sets up everything its callback needs first.  Returns 0,
 * DC_ENOMEM, or DC_EFULL when too many jobs already wait for the target.
 */
int		 dc_pool_query(struct dc_pool *pool, const struct dc_entry *t,
		     int kind, const char *sql, int nparams,
		     const char *const *params, dc_pg_cb cb, void *arg,
		     struct dc_pgjob **job);

/*
 * Run statements on the system database in one transaction; the result
 * of the last one is returned.  Used by the registry write path.
 */
int		 dc_pool_sysdb(struct dc_pool *pool, int nstmts,
		     const char *const *sql, const int *nparams,
		     const char *const *const *params, dc_pg_cb cb, void *arg,
		     struct dc_pgjob **job);

/*
 * Connect to url once (timeout from config) and close: the write check.
 * A URL libpq refuses outright is answered before this returns.
 */
int		 dc_pool_probe(struct dc_pool *pool, const char *url,
		     dc_pg_cb cb, void *arg, struct dc_pgjob **job);

/* The request went away: never call its callback, abort what we can. */
void		 dc_pool_cancel(struct dc_pgjob *job);

/* Registry moved: close connections whose entry changed or vanished. */
void		 dc_pool_sync(struct dc_pool *pool);

/* Close the connections of one target (id) or of all (NULL). */
void		 dc_pool_invalidate(struct dc_pool *pool, const uint8_t *id);

/* Open connections to targets (for stats). */
int		 dc_pool_open(const struct dc_pool *pool, const uint8_t *id);

#endif /* DC_POOL_H */
