/*
 * pool.h - a worker's database connections: persistent per-target
 * connections and one read-write connection to the system database, all
 * non-blocking on the worker's event base, whatever the engine.
 *
 * A query is a job on one target.  Read-only jobs run in the engine's
 * read-only transaction with the statement timeout, and a DC_JOB_READ
 * job keeps at most max_rows + 1 rows and max_result_bytes of values,
 * so a statement can neither write nor return more than the caps,
 * whatever its text says.  How each
 * engine does that is its driver's business (driver.h, src/drivers/).
 *
 * Connections are keyed by connection id and entry generation.  When the
 * registry moves (dc_pool_sync), connections whose entry changed or
 * vanished are closed: idle ones at once, busy ones when their job ends
 * (PgBouncer's close_needed).  The pool only reports: whoever keeps
 * state derived from the same entries (the catalog entries) is told by the
 * worker, which sequences both.
 */
#ifndef DC_POOL_H
#define DC_POOL_H

#include <stdint.h>

#include "shreg.h"

struct dc_worker;
struct dc_pool;
struct dc_job;
struct dc_rows;

enum dc_job_kind {
	DC_JOB_READ = 1,	/* read-only, rows capped at max_rows + 1 */
	DC_JOB_CATALOG,		/* read-only, the dialect's catalog query */
	DC_JOB_SYSDB,		/* read-write transaction, system database */
};

/*
 * Or'ed into DC_JOB_READ: the statement is unusual (pgpolicy.h: it calls
 * code not built into the engine, reads a user view...).  Nothing is sent
 * behind it on its connection, which is closed after it, so no session
 * state it may leave reaches another job.
 */
#define DC_JOB_UNUSUAL	0x100

struct dc_qresult {
	/*
	 * DC_OK; DC_ERR: the database refused the statement; DC_ETIMEOUT:
	 * it ran into the statement timeout; DC_EUNAVAIL: no connection
	 * could be made (target down) or it was lost (see lost); DC_ENOENT:
	 * the target was removed meanwhile, or changed (the job carried an
	 * older copy of its entry than the pool follows); DC_EPERM: refused
	 * by privileged_targets; DC_ENOMEM.
	 */
	int		 status;
	int		 lost;		/* DC_EUNAVAIL: the connection broke
					   under the job (else none was made) */
	int		 no_table;	/* DC_ERR: a table it names is missing */
	const struct dc_rows *rows;	/* on DC_OK; owned by the pool, valid
					   during the callback; with a row cap
					   up to max_rows + 1 rows */
	int		 truncated;	/* more rows than the cap, or cut_bytes */
	int		 cut_bytes;	/* cut at max_result_bytes */
	const char	*error;		/* message, never a URL or password */
	const char	*sqlstate;	/* the engine's SQLSTATE, when it has
					   one ("08001" cannot connect, "08006"
					   connection lost) */
	int		 retried;	/* 1 when run again on a fresh connection */
};

typedef void (*dc_query_cb)(const struct dc_qresult *r, void *arg);

struct dc_pool	*dc_pool_new(struct dc_worker *w);
void		 dc_pool_free(struct dc_pool *pool);

/*
 * Run one statement on target t (its driver from t->type), read-only,
 * with the configured timeout and, for DC_JOB_READ, row cap.  params
 * (may be NULL) are in the driver's placeholder syntax.  *job (optional)
 * allows cancelling.  The callback runs exactly once unless the job is
 * cancelled, possibly before this returns (a target that refuses
 * connections at once), so a caller sets up everything its callback
 * needs first.  Returns 0, DC_ENOMEM, DC_EINVAL (no driver for the
 * type), or DC_EFULL when too many jobs already wait for the target.
 */
int		 dc_pool_query(struct dc_pool *pool, const struct dc_entry *t,
		     int kind, const char *sql, int nparams,
		     const char *const *params, dc_query_cb cb, void *arg,
		     struct dc_job **job);

/*
 * Run statements on the system database in one transaction; the result
 * of the last one is returned.  Used by the registry write path.
 */
int		 dc_pool_sysdb(struct dc_pool *pool, int nstmts,
		     const char *const *sql, const int *nparams,
		     const char *const *const *params, dc_query_cb cb, void *arg,
		     struct dc_job **job);

/*
 * Connect to url once (timeout from config) and close: the write check.
 * The driver comes from the URL's scheme.  A URL the driver refuses
 * outright is answered before this returns.
 */
int		 dc_pool_probe(struct dc_pool *pool, const char *url,
		     dc_query_cb cb, void *arg, struct dc_job **job);

/* The request went away: never call its callback, abort what we can. */
void		 dc_pool_cancel(struct dc_job *job);

/*
 * Warm target e up: open connections to it until this worker has n
 * (at most max_target_connections), which wait idle for jobs.  Returns
 * how many it started.  dc_pool_connecting() says how many connections
 * (to any target) are still being opened.
 */
int		 dc_pool_warm(struct dc_pool *pool, const struct dc_entry *e,
		     int n);
int		 dc_pool_connecting(const struct dc_pool *pool);
/* 1 when this worker has used or warmed target id. */
int		 dc_pool_knows(struct dc_pool *pool, const uint8_t id[16]);

/*
 * cb(id, arg) runs when a job is first queued for target id in this
 * worker (not for dc_pool_warm): the worker tells its peers.
 */
typedef void (*dc_pool_first_use_cb)(const uint8_t id[16], void *arg);
void		 dc_pool_on_first_use(struct dc_pool *pool,
		     dc_pool_first_use_cb cb, void *arg);

/* Registry moved: close connections whose entry changed or vanished. */
void		 dc_pool_sync(struct dc_pool *pool);

/* Close the connections of one target (id) or of all (NULL). */
void		 dc_pool_invalidate(struct dc_pool *pool, const uint8_t *id);

/*
 * Upper bounds (microseconds) of the query phase histograms (shreg.h,
 * enum dc_query_phase), and the phases' names for /metrics.
 */
extern const uint64_t dc_query_bounds_us[DC_METRIC_QBUCKETS - 1];
extern const char *const dc_query_phase_names[DC_QP_N];

/* A query phase took us: into the worker's histogram, sum and maximum. */
void		 dc_query_phase_add(struct dc_worker_stats *st, int phase,
		     uint64_t us);

/* The worker this pool belongs to. */
struct dc_worker *dc_pool_worker(const struct dc_pool *pool);

#endif /* DC_POOL_H */
