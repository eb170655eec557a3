/*
 * driver.h - what a database engine supplies to the target pool, and
 * what the pool offers it in return.
 *
 * The pool (pool.h) is engine-neutral, the way PgBouncer's pooler is:
 * per-target buckets, a queue, the connection cap, host name lookup on
 * the worker's loop, connect and idle timeouts, close-when-stale, retry
 * once, cancellation, statistics, and the choice of a connection for each
 * job (pipelining included).  A driver (one folder per engine under
 * src/drivers/) turns jobs into its engine's protocol: it opens a
 * connection, sends a job's statements read-only, reads what comes back
 * into a dc_rows (rows.h), classifies failures, and tells the pool.
 *
 * Everything runs on the worker's one thread and event loop: no driver
 * call may block.  A driver either watches its socket with
 * dc_conn_watch() (the pool calls ops->io when it is ready) or drives
 * its I/O by other means on the same loop (an HTTP engine through the
 * worker's libcurl multi handle, curlev.h), and reports to the pool with
 * the dc_conn_*() functions below.
 *
 * Connections.  The pool allocates ops->conn_size bytes (zeroed), whose
 * first member is the struct dc_conn below, and calls ops->connect.  The
 * connection is "connecting" until the driver calls dc_conn_ready() (set
 * up, may take jobs) or dc_conn_connect_failed().  The pool's connect
 * timer (connect_timeout) covers both connecting and any setup the driver
 * does before dc_conn_ready().  Afterwards the pool hands it jobs with
 * ops->submit; jobs on one connection are answered in the order they
 * were submitted (c->job is the one whose results come next, c->jtail the
 * last, linked by j->next).  A driver without DC_DRV_PIPELINE gets a job
 * only when c->njobs is 0.
 *
 * Jobs.  A job is one read-only statement on a target (DC_JOB_READ with
 * the row cap, DC_JOB_CATALOG uncapped, for the dialect's own catalog
 * queries) or, for a driver with DC_DRV_SYSDB, a short list of statements
 * run in one read-write transaction on the system database, whose last
 * statement's rows are the result.  The driver guarantees read-only by
 * construction for READ and CATALOG jobs: its engine's read-only
 * transaction, the statement timeout (cfg->statement_timeout ms), and for
 * READ at most j->max_rows + 1 rows kept, the rest dropped or the
 * statement stopped.  A READ job also has a byte budget, j->max_bytes
 * (max_result_bytes): the driver gives it to its rows (dc_rows_budget),
 * whose dc_rows_add() refuses a row that does not fit, and then calls
 * dc_job_over_budget() and stops the statement as for the row cap.  A
 * driver that can tell a row is too big before its engine has it whole
 * in memory says so the same way, earlier.  Nothing a job does may outlive it in the session
 * (settings, locks, temporary objects): drivers end each job with their
 * engine's rollback and whatever reset it needs.
 *
 * A job ends in exactly one of these ways, each reported by the driver:
 *   - dc_conn_job_done(c, requeue): the head job's results are complete
 *     (j->rows on success, or dc_job_fail() was called).  requeue 1 says
 *     it did not run at all (the server skipped it after an earlier
 *     error) and the pool runs it again elsewhere.  The pool pops it.
 *   - dc_conn_answer_and_close(c): the head job has its max_rows + 1 rows
 *     while the statement still sends more: it is answered now and the
 *     connection closed (ops->abort first), the jobs behind it requeued.
 *   - dc_conn_broken(c, why): the connection failed under its jobs; the
 *     pool retries each once on a fresh connection (a system database job
 *     only when j->answered is 0), or fails it with DC_EUNAVAIL ("lost").
 *   - dc_conn_restart_target(c): the connection cannot run its jobs as
 *     they were sent (the driver changed the target's quirks, e.g. named
 *     statements do not survive a proxy): every connection of the target
 *     is replaced and the jobs are requeued.
 * A job whose client left is cancelled by the pool: queued, it is
 * dropped; sent behind another job, it runs and its answer is dropped;
 * running, the pool calls ops->abort (stop the statement on the server if
 * closing the connection does not) and closes the connection.
 *
 * Re-entrancy.  dc_conn_ready(), dc_conn_job_done(), dc_conn_broken()
 * and the other functions that end jobs or close connections run user
 * callbacks, which may submit jobs (to this connection too), cancel jobs
 * or close connections.  So a driver calls them only from ops->io (or
 * from its own events), never from connect, submit, flush, reset or
 * abort, which report through their return value; to finish one of those
 * at once, it arms a zero timeout (dc_conn_watch(c, -1, 0, 0)) and
 * finishes from io.  The pool keeps a connection's memory alive while
 * ops->io runs; after calling any dc_conn_*() function from io, the
 * driver checks c->dead and, when set, returns at once without touching
 * its engine handle (ops->close has already run).
 *
 * Errors reach the client through dc_job_fail(): status DC_ERR when the
 * database refused the statement (syntax, permissions, a missing table:
 * set DC_JOBF_NO_TABLE), DC_ETIMEOUT when it ran into the statement
 * timeout, DC_EUNAVAIL is the pool's (connect failures, broken
 * connections), and so is DC_EPERM (a target refused by
 * privileged_targets, dc_conn_privileges).  Messages never contain a
 * password: drivers pass engine text that may echo the URL through
 * dc_conn_scrub().
 */
#ifndef DC_DRIVER_H
#define DC_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

struct event;
struct evdns_getaddrinfo_request;
struct dc_worker;
struct dc_sql_verdict;
struct dc_rows;
struct dc_pool_target;
struct dc_conn;

/* --- the dialect: what the SQL layer and the LLM need to know --- */

struct dc_dialect {
	const char	*name;		/* for the LLM and the trace: "PostgreSQL" */
	/*
	 * The statement guard: admit one read-only statement (sqlguard.h).
	 * Fills v; 0 admitted, DC_EINVAL refused with v->reason.
	 */
	int		(*guard)(const char *sql, size_t len,
			    struct dc_sql_verdict *v);
	/*
	 * The function policy's catalog query (pgpolicy.h: dc_pgcat_sql),
	 * or NULL when the guard alone judges a statement.  With one, every
	 * statement is parsed and judged against the target's own catalog
	 * (sqlcheck.h) before it is run; the guard above is then only the
	 * parser's verdict, for callers that have no catalog.
	 */
	const char	*policy_sql;
	char		 quote;		/* identifier quote: '"' or '`' */
	/*
	 * The schema a table name without one means ("public"), or NULL when
	 * the target's schema is its database (MySQL): catalog answers then
	 * show bare names.
	 */
	const char	*default_schema;
	/*
	 * The catalog query (schema.h): three parameters, in the driver's
	 * placeholder syntax: schema or NULL (every non-system schema),
	 * table name or NULL, "true" to list columns or "false".  One row
	 * per column (one per table without columns), sorted by schema,
	 * table, column position, with these ten columns: schema, table,
	 * table type (BASE TABLE, VIEW, ...), row count or NULL, column
	 * name, its type as written in DDL, nullable ("t"/"f"), primary key
	 * ("t"/"f"), referenced table or NULL, referenced column or NULL.
	 */
	const char	*catalog_sql;
	/*
	 * The catalog's version (catalog.h, Freshness): no parameter, one
	 * row with one text value that changes whenever the tables, columns
	 * or keys the catalog query reads change, cheap to ask.
	 */
	const char	*version_sql;
	/*
	 * The catalog questions' statements in DataChat's form (its
	 * catalog_templates.py and catalog.py; nlq.h): list the tables (the
	 * whole statement), list a table's columns (printf: the table's and
	 * the schema's string literals, quotes included), count a table's
	 * rows ("SELECT COUNT(*) AS row_count FROM %s") and show a few of
	 * them ("SELECT * FROM %s LIMIT %d"), %s the qualified table.
	 */
	const char	*list_tables_sql;
	const char	*list_columns_sql;
	const char	*count_sql;
	const char	*sample_sql;
	/* lines added to the LLM's rules ("- ...\n" each), or NULL */
	const char	*prompt_rules;
	/*
	 * DataChat's connector names the columns of a result with no rows
	 * (mysql-connector's cursor.description, clickhouse-connect's
	 * column_names), so its data is {"a": []}; asyncpg's rows name
	 * them, and with none its data is {}.
	 */
	int		 empty_names_columns;
};

/*
 * "schema"."table" quoted for d (table alone when schema is NULL) into
 * out.  Names must have passed dc_sql_ident_ok().  0, or DC_EINVAL when
 * out is too small.
 */
int		 dc_dialect_table(const struct dc_dialect *d, const char *schema,
		     const char *table, char *out, size_t outsz);

/* --- the driver --- */

enum dc_driver_caps {
	DC_DRV_PIPELINE = 1 << 0,	/* several jobs in flight per connection */
	DC_DRV_PREPARED = 1 << 1,	/* prepares its fixed statements */
	DC_DRV_SYSDB = 1 << 2,		/* can serve the system database */
};

struct dc_driver {
	const char	*type;		/* database_type: "postgresql" */
	unsigned	 caps;		/* enum dc_driver_caps */
	const struct dc_dialect *dialect;
	size_t		 conn_size;	/* >= sizeof(struct dc_conn), which
					   comes first */
	size_t		 job_size;	/* bytes of j->drv it needs */

	/*
	 * The host name the pool must look up before ops->connect (with
	 * evdns, on the loop), malloc'ed, or NULL when there is none to look
	 * up: an address, several hosts, a URL the driver cannot parse (its
	 * connect reports that), or a driver that resolves itself without
	 * blocking.
	 */
	char		*(*url_host)(const char *url);

	/*
	 * Start connecting c to url (decrypted; never log it) at hostaddr
	 * (the numeric address the pool looked up for url_host, or NULL).
	 * c->probe: a connection check; call dc_conn_ready() as soon as the
	 * engine accepted the login, with no setup.  c->sysdb: the system
	 * database (DC_DRV_SYSDB).  Returns 0, or DC_ERR with err set (the
	 * URL is refused outright, or out of memory): then ops->close is
	 * still called.
	 */
	int		(*connect)(struct dc_conn *c, const char *url,
			    const char *hostaddr, char *err, size_t errsz);

	/* The socket given to dc_conn_watch() is ready (EV_READ, EV_WRITE,
	   EV_TIMEOUT), in any state of c. */
	void		(*io)(struct dc_conn *c, short what);

	/*
	 * Send job j (already linked as c->jtail, c->njobs counts it).
	 * The driver may send at once or wait for ops->flush; return 0, or
	 * DC_ERR when the connection failed (the pool calls
	 * dc_conn_broken with ops->error).
	 */
	int		(*submit)(struct dc_conn *c, struct dc_job *j);

	/*
	 * Optional.  The loop pass that submitted jobs to c ends (requested
	 * with dc_conn_flush_later): send what submit kept back, in one
	 * write.  0 or DC_ERR as submit.
	 */
	int		(*flush)(struct dc_conn *c);

	/*
	 * Optional.  c has no jobs left but is c->blocked: bring the session
	 * back (roll back a failed transaction), then clear c->blocked and
	 * call dc_conn_idle().  0, or DC_ERR (the pool closes c).
	 */
	int		(*reset)(struct dc_conn *c);

	/*
	 * Optional.  The pool is about to close c while its head job's
	 * statement may still run on the server (its client left, or it
	 * has all the rows it may return): stop it there, if closing the
	 * connection does not.  Must not call back into the pool.
	 */
	void		(*abort)(struct dc_conn *c);

	/*
	 * Release the engine's handle; c is freed by the pool afterwards.
	 * Called once for every connection the pool made, also when
	 * connect failed or never ran (the host lookup failed): the
	 * driver's part of c is then still zeroed.
	 */
	void		(*close)(struct dc_conn *c);

	/*
	 * Optional.  0 when c, once idle, must not take another job because
	 * what it set up no longer matches the configuration (a reload
	 * changed the statement timeout).
	 */
	int		(*current)(const struct dc_conn *c);

	/* The last connection-level error message, for the pool's logs. */
	const char	*(*error)(const struct dc_conn *c);

	/*
	 * Optional: driver state for one pool (one worker), made when the
	 * pool first uses the driver and given back to stop() when the
	 * pool is freed; read it with dc_conn_driver_state().
	 */
	int		(*start)(struct dc_pool *p, void **state);
	void		(*stop)(void *state);
};

/* The driver for a database_type, or NULL when there is none. */
const struct dc_driver *dc_driver_find(const char *type);

/* The database types there is a driver for, "postgresql, mysql". */
const char	*dc_driver_names(void);

/* --- connections, as the pool and the driver share them --- */

enum dc_conn_state {
	DC_CONN_CONNECTING = 1,		/* until dc_conn_ready() */
	DC_CONN_IDLE,			/* no job, may take one */
	DC_CONN_BUSY,			/* jobs in flight, or being reset */
};

struct dc_conn {
	/* read by the driver, written by the pool only */
	const struct dc_driver *drv;
	struct dc_pool	*pool;
	struct dc_worker *w;		/* w->cfg, w->base */
	int		 state;		/* enum dc_conn_state */
	int		 probe;		/* a connection check, no target */
	int		 sysdb;		/* the system database */
	struct dc_job	*job;		/* the job whose results come next */
	struct dc_job	*jtail;		/* the last one sent */
	int		 njobs;
	int		 flush_pending;	/* on the pool's end-of-pass list */
	int		 dead;		/* closed: return from io at once */

	/* written by the driver */
	int		 blocked;	/* take no more jobs (until reset) */

	/* private to the pool */
	struct dc_pool_target *t;
	struct event	*ev;
	int		 ev_fd;
	short		 ev_what;
	struct event	*timer;
	int		 close_needed;
	int		 inuse;
	uint64_t	 gen;
	uint64_t	 last_used_ms;
	uint64_t	 progress_us;	/* the head job became the head */
	uint64_t	 io_us;		/* bytes last arrived: dc_conn_progress */
	int		 depth;		/* pipeline depth it may take now, 0: the
					   configured one (lowered by a stall) */
	struct dc_conn	*flush_next;
	struct evdns_getaddrinfo_request *dns_req;
	char		*pending_url;
	int		 dns_dead;
	int		 dns_in_open;
	int		 dns_err;
	char		 dns_addr[46];	/* INET6_ADDRSTRLEN */
	struct dc_conn	*next;
};

/* --- jobs --- */

#define DC_JOB_MAX_STMTS	6

enum dc_job_flags {
	DC_JOBF_NO_TABLE = 1 << 0,	/* DC_ERR: a table does not exist */
};

struct dc_job {
	/* what to run: set by the pool, read by the driver */
	int		 kind;		/* enum dc_job_kind (pool.h) */
	int		 nstmts;	/* 1, or up to DC_JOB_MAX_STMTS (SYSDB) */
	char		*sql[DC_JOB_MAX_STMTS];
	int		 nparams[DC_JOB_MAX_STMTS];
	char		**params[DC_JOB_MAX_STMTS];	/* NULL: SQL NULL */
	int		 max_rows;	/* READ: keep at most max_rows + 1 */
	size_t		 max_bytes;	/* READ: the rows' byte budget, 0: none */
	int		 unusual;	/* READ: the guard found the statement
					   unusual (pgpolicy.h): its session
					   is not reused after it */

	/* what came back: written by the driver */
	struct dc_rows	*rows;		/* the result, owned by the job */
	int		 answered;	/* the server answered some of it */
	int		 cut;		/* rows stopped at max_bytes */

	/* private to the pool */
	struct dc_pool	*pool;
	struct dc_pool_target *t;
	struct dc_conn	*c;
	struct dc_job	*next;
	dc_query_cb	 cb;
	void		*arg;
	int		 status;
	int		 flags;		/* enum dc_job_flags */
	char		 error[512];
	char		 sqlstate[6];
	int		 retried;
	int		 moved;		/* off a stalled connection (times) */
	int		 cancelled;
	uint64_t	 queued_us;	/* dc_pool_query() */
	uint64_t	 sent_us;	/* its last run was sent */
	uint64_t	 head_us;	/* it reached the head of its connection */
	uint64_t	 first_us;	/* bytes arrived while it was the head */
	char		*probe_url;

	/* the driver's per-job state: ops->job_size bytes, zeroed before
	   each submit */
	_Alignas(16) unsigned char drv[];
};

/* --- what a driver calls --- */

/*
 * Watch fd for what (EV_READ, EV_WRITE, with EV_PERSIST to keep it),
 * calling ops->io; timeout_ms >= 0 also wakes it with EV_TIMEOUT.  A
 * persistent watch that does not change costs nothing.  fd < 0 with
 * timeout_ms >= 0 is a timer alone; fd < 0 and timeout_ms < 0 stops.
 * One watch per connection: each call replaces the previous one.
 */
void		 dc_conn_watch(struct dc_conn *c, int fd, short what,
		     int timeout_ms);

/* Connected and set up: c takes jobs (or, a probe, answers it). */
void		 dc_conn_ready(struct dc_conn *c);

/* Could not connect (msg: scrubbed, one line); c is closed. */
void		 dc_conn_connect_failed(struct dc_conn *c, const char *msg);

/*
 * While setting c up: what the target's role may do beyond reading
 * (enum dc_priv in shreg.h, without DC_PRIV_KNOWN).  The pool shows it
 * (/metrics, datachatctl targets, the connection's JSON), logs it once
 * per target, and applies privileged_targets: DC_OK, go on to
 * dc_conn_ready(); DC_EPERM, refused: c is closed (c->dead) and the
 * target's waiting jobs failed.
 */
int		 dc_conn_privileges(struct dc_conn *c, unsigned privs);

/* See "A job ends" above. */
void		 dc_conn_job_done(struct dc_conn *c, int requeue);
void		 dc_conn_answer_and_close(struct dc_conn *c);
void		 dc_conn_broken(struct dc_conn *c, const char *why);
void		 dc_conn_restart_target(struct dc_conn *c);

/*
 * Bytes arrived on c (call it from ops->io when its socket was readable):
 * c makes progress, and its head job's first result is on its way (the
 * per-query timing in /metrics).  Runs no callback.
 */
void		 dc_conn_progress(struct dc_conn *c);

/* After ops->reset, or whenever a blocked c is usable again. */
void		 dc_conn_idle(struct dc_conn *c);

/* The server closed an idle connection: forget it. */
void		 dc_conn_close(struct dc_conn *c);

/*
 * Call ops->flush when this loop pass ends (once, whatever the number
 * of jobs submitted meanwhile), or now (dc_conn_flush_now, which also
 * takes c off the end-of-pass list; returns what flush returned).
 */
void		 dc_conn_flush_later(struct dc_conn *c);
int		 dc_conn_flush_now(struct dc_conn *c);

/*
 * Per-target flags a driver keeps across connections (one target's
 * server turned out to need something), DC_QUIRK_* for the pool, bits
 * from 8 up for the driver.  Probes have none.
 */
#define DC_QUIRK_NO_PIPELINE	(1u << 0)
unsigned	 dc_conn_quirks(const struct dc_conn *c);
void		 dc_conn_set_quirks(struct dc_conn *c, unsigned quirks);

/* The driver's start() state for c's pool, or NULL. */
void		*dc_conn_driver_state(const struct dc_conn *c);

/* msg with the password of c's URL masked, folded into one line. */
void		 dc_conn_scrub(const struct dc_conn *c, const char *prefix,
		     const char *msg, char *out, size_t outsz);

/*
 * The job failed: status DC_ERR (refused by the database) or
 * DC_ETIMEOUT; the first failure of a job is kept, later ones ignored.
 * msg is folded into one line; sqlstate may be NULL.
 */
void		 dc_job_fail(struct dc_job *j, int status, int flags,
		     const char *msg, const char *sqlstate);

/*
 * A row of j's statement does not fit j->max_bytes (whole: it is larger
 * than the whole budget by itself).  With rows kept and the row not too
 * big by itself, the result is cut there (j->cut: truncated); otherwise
 * the job fails with a message that says why (SQLSTATE 54000).  Either
 * way the driver keeps no more rows and stops the statement.  Returns 1
 * when the job failed.
 */
int		 dc_job_over_budget(struct dc_job *j, int whole);

/* 1 once dc_job_fail() was called for j's current run. */
int		 dc_job_failed(const struct dc_job *j);

#endif /* DC_DRIVER_H */
