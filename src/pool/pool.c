/*
 * pool.c - a worker's PostgreSQL connections (see pool.h).
 *
 * Everything here is non-blocking: a target's host name is looked up with
 * evdns on the worker's loop (libpq would call getaddrinfo() and block),
 * connections are opened at that address with
 * PQconnectStartParams/PQconnectPoll, statements sent in pipeline mode
 * with PQsendQueryParams + PQpipelineSync, and results read with
 * PQconsumeInput/PQgetResult when libevent says the socket is readable.
 * A slow statement on one target therefore never delays another request.
 *
 * Targets are buckets keyed by connection id, each remembering the entry
 * generation its connections were opened for.  dc_pool_sync() compares
 * with the shared registry (and, for the environment entry, with the
 * configured DATABASE_URL): a changed or vanished entry marks its
 * connections close_needed; idle ones close at once, busy ones when their
 * job ends.  The per-worker schema cache (schema.h) is dropped along with
 * them.  An idle connection whose server went away is noticed by its read
 * event and closed.  A read-only job whose connection breaks (a target
 * restart) is run once more on a fresh connection: it is rolled back
 * whatever happened, so running it again is always safe.  A system
 * database job is retried only when nothing of it had been answered yet.
 *
 * Connections to a target that is down fail fast: a failed connect fails
 * the jobs queued behind it (unless other live connections can serve
 * them), with SQLSTATE 08001 so routes can answer 503; a connection lost
 * under a job that was already retried reports 08006 (502).
 *
 * A read-only job is BEGIN READ ONLY; <sql>; ROLLBACK.  A target
 * connection prepares BEGIN and ROLLBACK once, right after connecting,
 * and sets the session's statement_timeout, so each job sends only its
 * own SQL as text (the extended protocol refuses a second statement in
 * it) and the server skips parsing the rest.  The ROLLBACK also undoes
 * any setting the statement changed with set_config(), the timeout
 * included, so nothing of one job outlives it in the session.  Where
 * named statements do not survive (a transaction-pooling proxy, below)
 * neither would the session's timeout: there the job is BEGIN READ ONLY;
 * SET LOCAL statement_timeout; <sql>; ROLLBACK, all as text.
 *
 * The statement's rows come in single-row mode; the first max_rows + 1
 * are gathered into one PGresult (the first row's own when it is the
 * only one) and any more already received are dropped.  When the job
 * has its max_rows + 1 rows and the statement is still sending, the job
 * is answered at once and the connection closed, which stops the
 * statement (an endless one would otherwise run into its timeout).
 *
 * Jobs are pipelined: a target connection may have up to
 * target_pipeline_depth jobs sent, whose results come back in order.
 * The jobs one pass of the event loop gives a connection share one Sync,
 * sent when the pass ends (pool_sync_pass), so the server gets them in
 * one read and flushes their answers once.  When the target's jobs are
 * quick, a job
 * goes behind those of a busy connection that made progress in the last
 * PIPELINE_WINDOW_US (so not behind a slow statement); else to an idle
 * connection, else it waits for one (or for a new one within
 * max_target_connections).  Under load the
 * server then gets several jobs per read and the worker several answers
 * per wakeup.  A job that fails leaves its transaction aborted; the jobs
 * of its group are skipped by the server (PGRES_PIPELINE_ABORTED), those
 * of later groups are refused at their BEGIN (25P02), neither ran, and
 * all go back to the queue; the connection takes nothing more until a
 * ROLLBACK ended that transaction.  Jobs behind one whose connection must
 * close (cancelled, capped, broken) go back to the queue as well.
 *
 * A target that loses named
 * statements between transactions (a transaction-pooling proxy, 26000)
 * is switched to sending them as text.
 *
 * Each connection has one read/write event and one timer, embedded and
 * re-armed only when what we wait for changes, so the steady state of a
 * busy connection costs no allocation per query.  The timer is the
 * connect timeout while connecting and the idle timeout afterwards; the
 * idle timeout is checked lazily against the last use.
 *
 * Cancelling a running job closes its connection: the server notices
 * through client_connection_check_interval and stops the statement.  A
 * cancelled job still waiting behind another runs, and its answer is
 * dropped.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include "dc.h"
#include "log.h"
#include "pool.h"
#include "schema.h"
#include "shreg.h"
#include "target.h"
#include "util.h"
#include "worker.h"

enum conn_state {
	C_CONNECTING = 1,
	C_SETUP,		/* preparing our fixed statements */
	C_IDLE,
	C_BUSY,
	C_CLEANUP,		/* sending ROLLBACK after a failed job */
};

#define MAX_STMTS	8

/*
 * The fixed statements of a read-only job.  A target connection prepares
 * BEGIN and ROLLBACK once (named statements) and sets the timeout for the
 * session, so a job sends only its own SQL as text; a target behind a
 * proxy that does not keep named statements (PgBouncer in transaction
 * mode, say) gets all of them as text instead.
 */
enum stmt_kind {
	S_TEXT = 0,		/* sql[i] with params[i] */
	S_BEGIN,
	S_TIMEOUT,
	S_ROLLBACK,
	S_NKINDS
};

static const char *const fixed_name[S_NKINDS] = {
	[S_BEGIN] = "dc_begin",
	[S_ROLLBACK] = "dc_rollback",
};
#define MAX_QUEUE	1024	/* jobs waiting for one target, per worker */
#define PIPELINE_WINDOW_US	2000	/* see target_pipeline_conn() */
#define PIPELINE_FAST_US	1000

/* SQLSTATEs libpq itself uses for client-side connection failures. */
#define SQLSTATE_CANNOT_CONNECT	"08001"
#define SQLSTATE_CONN_FAILURE	"08006"

struct target;

struct pgconn {
	struct dc_pool	*pool;
	struct target	*t;		/* NULL for a probe */
	PGconn		*conn;
	struct event	 ev;
	struct event	 timer;		/* connect timeout, idle timeout */
	int		 ev_fd;		/* -1: ev not added */
	short		 ev_what;
	int		 state;
	int		 close_needed;
	int		 prepared;	/* the fixed statements exist */
	int		 prep_timeout;	/* statement_timeout they were made with */
	char		 names[S_NKINDS][32];	/* of the fixed statements */
	uint64_t	 gen;
	uint64_t	 last_used_ms;
	struct dc_pgjob	*job;		/* the job whose results come next */
	struct dc_pgjob	*jtail;		/* jobs sent behind it, by j->next */
	int		 njobs;
	int		 poisoned;	/* a job failed: no more jobs until the
					   ROLLBACK that ends its transaction */
	uint64_t	 progress_us;	/* last given work idle, or job ended */
	int		 inuse;		/* its results are being handed out */
	struct evdns_getaddrinfo_request *dns_req;	/* resolving its host */
	char		*pending_url;	/* the URL, while resolving (secret) */
	int		 dns_dead;	/* closed while resolving: freed by
					   conn_resolved() */
	int		 dns_in_open;	/* conn_open() is starting the lookup */
	int		 dns_err;	/* what a lookup answered at once */
	char		 dns_addr[INET6_ADDRSTRLEN];
	int		 unsynced;	/* jobs sent without their Sync yet:
					   on the pool's list */
	struct pgconn	*sync_next;
	int		 dead;		/* closed meanwhile: free when done */
	struct pgconn	*next;
};

struct dc_pgjob {
	struct dc_pool	*pool;
	struct target	*t;
	struct pgconn	*c;
	int		 nstmts;
	unsigned char	 kind[MAX_STMTS];	/* enum stmt_kind */
	char		*sql[MAX_STMTS];
	int		 nparams[MAX_STMTS];
	char		**params[MAX_STMTS];
	int		 result_idx;
	int		 single;	/* result_idx runs in single-row mode */
	int		 nsent;		/* statements sent to this connection */
	int		 ridx;		/* result_idx among those */
	int		 capped;	/* single: max_rows + 1 rows arrived */
	int		 step;		/* statement whose results we read */
	int		 fail_step;	/* statement of the first error */
	int		 got_rows;	/* some result arrived */
	int		 cancelled;	/* nobody waits for it any more */
	int		 sync;		/* the last job before a Sync */
	int		 aborted;	/* skipped after an error before it */
	uint64_t	 sent_us;
	dc_pg_cb	 cb;
	void		*arg;
	PGresult	*result;
	int		 status;
	char		 error[512];
	char		 sqlstate[6];
	int		 retried;
	int		 max_rows;
	int		 is_probe;
	char		*probe_url;
	struct dc_pgjob	*next;		/* target queue, connection's jobs */
};

struct target {
	uint8_t		 id[16];
	int		 is_sysdb;
	uint64_t	 gen;
	char		*url;		/* libpq form, decrypted, never logged */
	struct pgconn	*conns;
	int		 nconns;
	struct dc_pgjob	*qhead, *qtail;
	int		 qlen;
	int		 no_prepare;	/* named statements do not survive */
	uint64_t	 svc_us;	/* mean time of a job at the head of
					   its connection; 0: none yet */
	struct dc_target_stats *ts;	/* this worker's counters for it */
	struct target	*next;
};

struct dc_pool {
	struct dc_worker *w;
	struct evdns_base *dns;		/* resolves target host names */
	struct event	 sync_ev;	/* end of the loop pass: send */
	int		 sync_set;
	struct pgconn	*to_sync;	/* connections with unsynced jobs */
	struct target	*targets;
	struct pgconn	*probes;
};

static void	 conn_event(evutil_socket_t fd, short what, void *arg);
static void	 conn_timer(evutil_socket_t fd, short what, void *arg);
static void	 conn_close(struct pgconn *c);
static void	 conn_broken(struct pgconn *c, const char *why);
static void	 job_finish(struct dc_pgjob *j);
static void	 target_kick(struct target *t);
static void	 target_close_stale(struct target *t);

struct dc_pool *
dc_pool_new(struct dc_worker *w)
{
	struct dc_pool *p = calloc(1, sizeof(*p));

	if (p != NULL)
		p->w = w;
	return p;
}

static void
job_free(struct dc_pgjob *j)
{
	int i, k;

	for (i = 0; i < j->nstmts; i++) {
		free(j->sql[i]);
		if (j->params[i] != NULL) {
			for (k = 0; k < j->nparams[i]; k++)
				free(j->params[i][k]);
			free(j->params[i]);
		}
	}
	if (j->result != NULL)
		PQclear(j->result);
	if (j->probe_url != NULL) {
		dc_explicit_bzero(j->probe_url, strlen(j->probe_url));
		free(j->probe_url);
	}
	free(j);
}

static int
job_add(struct dc_pgjob *j, const char *sql, int nparams,
    const char *const *params)
{
	int i = j->nstmts, k;

	if (i >= MAX_STMTS || (j->sql[i] = strdup(sql)) == NULL)
		return DC_ENOMEM;
	j->nstmts++;
	j->nparams[i] = nparams;
	if (nparams > 0) {
		j->params[i] = calloc((size_t)nparams, sizeof(char *));
		if (j->params[i] == NULL)
			return DC_ENOMEM;
		for (k = 0; k < nparams; k++)
			if (params[k] != NULL &&
			    (j->params[i][k] = strdup(params[k])) == NULL)
				return DC_ENOMEM;
	}
	return DC_OK;
}

static int
job_add_fixed(struct dc_pgjob *j, int kind)
{
	if (j->nstmts >= MAX_STMTS)
		return DC_ENOMEM;
	j->kind[j->nstmts++] = (unsigned char)kind;
	return DC_OK;
}

/* The text of a fixed statement, for a connection that did not prepare. */
static void
fixed_text(int kind, int timeout, char *buf, size_t sz)
{
	switch (kind) {
	case S_BEGIN:
		dc_strlcpy(buf, "BEGIN READ ONLY", sz);
		break;
	case S_TIMEOUT:
		snprintf(buf, sz, "SET LOCAL statement_timeout = %d", timeout);
		break;
	default:
		dc_strlcpy(buf, "ROLLBACK", sz);
		break;
	}
}

/*
 * Record a failure.  libpq messages span lines ("...failed: Connection
 * refused\n\tIs the server running..."): fold them into one line.
 */
static void
set_error(struct dc_pgjob *j, int status, const char *msg,
    const char *sqlstate)
{
	char *s, *d;

	j->status = status;
	dc_strlcpy(j->error, msg != NULL && *msg ? msg : "unknown error",
	    sizeof(j->error));
	for (s = d = j->error; *s != '\0'; s++) {
		if (*s == '\n' || *s == '\t' || *s == '\r') {
			if (d > j->error && d[-1] != ' ')
				*d++ = ' ';
			continue;
		}
		*d++ = *s;
	}
	while (d > j->error && d[-1] == ' ')
		d--;
	*d = '\0';
	if (sqlstate != NULL)
		dc_strlcpy(j->sqlstate, sqlstate, sizeof(j->sqlstate));
}

/* A libpq message about url, with its password (if echoed) masked. */
static void
conn_message(const char *prefix, const char *msg, const char *url, char *out,
    size_t outsz)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s%s", prefix, msg != NULL ? msg : "");
	dc_scrub_password(buf, url, out, outsz);
}

/* --- targets --- */

static struct target *
target_find(struct dc_pool *p, const uint8_t id[16], int sysdb)
{
	struct target *t;

	for (t = p->targets; t != NULL; t = t->next)
		if (t->is_sysdb == sysdb && memcmp(t->id, id, 16) == 0)
			return t;
	return NULL;
}

static void
target_set_url(struct target *t, const char *url)
{
	if (t->url != NULL) {
		dc_explicit_bzero(t->url, strlen(t->url));
		free(t->url);
	}
	t->url = url != NULL ? dc_url_libpq(url) : NULL;
}

static void
target_mark_stale(struct target *t)
{
	struct pgconn *c;

	for (c = t->conns; c != NULL; c = c->next)
		c->close_needed = 1;
}

/* 1 when t's connections were opened for url. */
static int
url_is(const struct target *t, const char *url)
{
	char *u = dc_url_libpq(url);
	int same = u != NULL && t->url != NULL && strcmp(u, t->url) == 0;

	if (u != NULL) {
		dc_explicit_bzero(u, strlen(u));
		free(u);
	}
	return same;
}

/*
 * The per-target counter block of this worker in the shared segment
 * (for /metrics and datachatctl targets); NULL when all are taken.
 */
static struct dc_target_stats *
target_stats(struct dc_pool *p, const uint8_t id[16])
{
	struct dc_target_stats *ts = p->w->stats->targets, *fr = NULL;
	int i;

	for (i = 0; i < DC_METRIC_TARGETS; i++) {
		if (memcmp(ts[i].id, id, 16) == 0)
			return &ts[i];
		if (fr == NULL && dc_uuid_is_zero(ts[i].id))
			fr = &ts[i];
	}
	if (fr != NULL) {
		memset(fr, 0, sizeof(*fr));
		memcpy(fr->id, id, 16);
	}
	return fr;
}

static void
tstat(struct target *t, size_t off, int delta)
{
	uint64_t *f;

	if (t == NULL || t->ts == NULL || t->is_sysdb)
		return;
	f = (uint64_t *)((char *)t->ts + off);
	if (delta >= 0)
		__atomic_add_fetch(f, (uint64_t)delta, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(f, (uint64_t)-delta, __ATOMIC_RELAXED);
}

#define TSTAT(t, field, d) \
	tstat((t), offsetof(struct dc_target_stats, field), (d))

static struct target *
target_get(struct dc_pool *p, const uint8_t id[16], uint64_t gen,
    const char *url, int sysdb)
{
	struct target *t = target_find(p, id, sysdb);

	if (t == NULL) {
		t = calloc(1, sizeof(*t));
		if (t == NULL)
			return NULL;
		memcpy(t->id, id, 16);
		t->is_sysdb = sysdb;
		if (!sysdb)
			t->ts = target_stats(p, id);
		t->next = p->targets;
		p->targets = t;
	}
	if (t->url == NULL || t->gen != gen ||
	    (!sysdb && dc_target_is_env(id) && !url_is(t, url))) {
		/* the entry changed under us: new connections, new URL */
		t->gen = gen;
		target_set_url(t, url);
		target_mark_stale(t);
	}
	return t->url != NULL ? t : NULL;
}

static void
target_free(struct target *t)
{
	/* the counters go with the target: its slot is free again */
	if (t->ts != NULL && __atomic_load_n(&t->ts->open,
	    __ATOMIC_RELAXED) == 0)
		memset(t->ts, 0, sizeof(*t->ts));
	target_set_url(t, NULL);
	free(t);
}

static struct dc_pgjob *
dequeue(struct target *t)
{
	struct dc_pgjob *j = t->qhead;

	if (j != NULL) {
		t->qhead = j->next;
		if (t->qhead == NULL)
			t->qtail = NULL;
		j->next = NULL;
		t->qlen--;
	}
	return j;
}

static void
target_fail_queue(struct target *t, int status, const char *msg,
    const char *sqlstate)
{
	struct dc_pgjob *j;

	while ((j = dequeue(t)) != NULL) {
		set_error(j, status, msg, sqlstate);
		job_finish(j);
	}
}

static void
enqueue(struct target *t, struct dc_pgjob *j)
{
	j->next = NULL;
	if (t->qtail != NULL)
		t->qtail->next = j;
	else
		t->qhead = j;
	t->qtail = j;
	t->qlen++;
}

static void
enqueue_head(struct target *t, struct dc_pgjob *j)
{
	j->next = t->qhead;
	t->qhead = j;
	if (t->qtail == NULL)
		t->qtail = j;
	t->qlen++;
}

/* 1 when the target has a connection that is up (idle, busy, cleaning). */
static int
target_has_live(const struct target *t)
{
	const struct pgconn *c;

	for (c = t->conns; c != NULL; c = c->next)
		if (c->state != C_CONNECTING && c->state != C_SETUP &&
		    !c->close_needed)
			return 1;
	return 0;
}

static void
stat_add(struct dc_pool *p, uint64_t *field, int delta)
{
	if (delta >= 0)
		__atomic_add_fetch(field, (uint64_t)delta, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(field, (uint64_t)-delta, __ATOMIC_RELAXED);
}

/* --- connections --- */

/* Wait for what on the connection's socket; a no-op when unchanged. */
static void
conn_arm(struct pgconn *c, short what)
{
	int fd = PQsocket(c->conn);

	if (c->ev_fd == fd && c->ev_what == what && (what & EV_PERSIST))
		return;
	if (c->ev_fd != -1)
		event_del(&c->ev);
	c->ev_fd = -1;
	if (fd < 0)
		return;
	event_assign(&c->ev, c->pool->w->base, fd, what, conn_event, c);
	if (event_add(&c->ev, NULL) == 0) {
		c->ev_fd = fd;
		c->ev_what = what;
	}
}

static void
conn_unlink(struct pgconn *c)
{
	struct pgconn **pp = c->t != NULL ? &c->t->conns : &c->pool->probes;

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->t != NULL)
		c->t->nconns--;
}

/* Forget the URL a connection kept while its host was looked up. */
static void
conn_drop_url(struct pgconn *c)
{
	if (c->pending_url != NULL) {
		dc_explicit_bzero(c->pending_url, strlen(c->pending_url));
		free(c->pending_url);
		c->pending_url = NULL;
	}
}

/* Take c off the pool's list of connections to sync at the end of the pass. */
static void
conn_unlist_sync(struct pgconn *c)
{
	struct pgconn **pp;

	if (!c->unsynced)
		return;
	for (pp = &c->pool->to_sync; *pp != NULL; pp = &(*pp)->sync_next)
		if (*pp == c) {
			*pp = c->sync_next;
			break;
		}
	c->sync_next = NULL;
	c->unsynced = 0;
}

static void
conn_close(struct pgconn *c)
{
	struct dc_pool *p = c->pool;

	conn_unlink(c);
	conn_unlist_sync(c);
	if (c->ev_fd != -1)
		event_del(&c->ev);
	evtimer_del(&c->timer);
	if (c->conn != NULL)
		PQfinish(c->conn);
	if (c->t != NULL && c->state != C_CONNECTING && !c->t->is_sysdb) {
		stat_add(p, &p->w->stats->target_conns_open, -1);
		TSTAT(c->t, open, -1);
	}
	conn_drop_url(c);
	if (c->inuse) {
		/* conn_results() is handing out its results: it frees c */
		c->conn = NULL;
		c->job = c->jtail = NULL;
		c->dead = 1;
		return;
	}
	if (c->dns_req != NULL) {
		/* its callback is still to come, maybe from inside cancel */
		struct evdns_getaddrinfo_request *req = c->dns_req;

		c->dns_req = NULL;
		c->dns_dead = 1;
		evdns_getaddrinfo_cancel(req);
		return;
	}
	free(c);
}

/* Take every job off c, in the order they were sent. */
static struct dc_pgjob *
conn_take_jobs(struct pgconn *c)
{
	struct dc_pgjob *list = c->job;

	c->job = c->jtail = NULL;
	c->njobs = 0;
	return list;
}

/* Unlink the job whose results came (the first one sent). */
static struct dc_pgjob *
conn_pop_job(struct pgconn *c)
{
	struct dc_pgjob *j = c->job;

	c->job = j->next;
	if (c->job == NULL)
		c->jtail = NULL;
	c->njobs--;
	j->next = NULL;
	j->c = NULL;
	return j;
}

/*
 * 1 when c may take a job: its entry did not change, and what it prepared
 * still matches the configuration (a reload may change both values).
 */
static int
conn_current(const struct pgconn *c)
{
	const struct dc_config *cfg = c->pool->w->cfg;

	if (c->close_needed || c->t == NULL || c->gen != c->t->gen)
		return 0;
	return !c->prepared || c->prep_timeout == cfg->statement_timeout;
}

static void
conn_idle(struct pgconn *c)
{
	struct timeval tv = { c->pool->w->cfg->target_idle_timeout, 0 };
	struct target *t = c->t;

	c->job = c->jtail = NULL;
	c->njobs = 0;
	c->poisoned = 0;
	c->state = C_IDLE;
	c->last_used_ms = dc_now_ms();
	if (!conn_current(c)) {
		conn_close(c);
		if (t != NULL)
			target_kick(t);
		return;
	}
	conn_arm(c, EV_READ | EV_PERSIST);	/* notice a server that leaves */
	if (!evtimer_pending(&c->timer, NULL))
		evtimer_add(&c->timer, &tv);
	target_kick(t);
}

/* Close the group of jobs sent to c: a Sync after the last one. */
static int
conn_sync_now(struct pgconn *c)
{
	int rc;

	conn_unlist_sync(c);
	if (c->jtail == NULL)
		return DC_OK;
	c->jtail->sync = 1;
	if (PQpipelineSync(c->conn) != 1 || (rc = PQflush(c->conn)) < 0)
		return DC_ERR;
	conn_arm(c, EV_READ | EV_PERSIST | (rc == 1 ? EV_WRITE : 0));
	return DC_OK;
}

/*
 * The jobs given to one target connection in one pass of the event loop
 * share one Sync, sent (and flushed) once every event of the pass ran:
 * the server gets them in one segment, and answers them with one flush
 * (it flushes at each Sync), so one wakeup of its backend and one of
 * ours carry them all.  A job that fails makes the server skip the rest
 * of its group (PGRES_PIPELINE_ABORTED): those did not run and go back
 * to the queue.
 */
static void
pool_sync_pass(evutil_socket_t fd, short what, void *arg)
{
	struct dc_pool *p = arg;
	struct pgconn *c;

	while ((c = p->to_sync) != NULL)
		if (conn_sync_now(c) != DC_OK)
			conn_broken(c, PQerrorMessage(c->conn));
}

static void
conn_defer_sync(struct pgconn *c)
{
	struct dc_pool *p = c->pool;

	if (c->unsynced)
		return;
	c->unsynced = 1;
	c->sync_next = p->to_sync;
	p->to_sync = c;
	if (!p->sync_set) {
		event_assign(&p->sync_ev, p->w->base, -1, 0, pool_sync_pass, p);
		p->sync_set = 1;
	}
	event_active(&p->sync_ev, EV_TIMEOUT, 0);
}

static int
conn_send(struct pgconn *c, struct dc_pgjob *j)
{
	const struct dc_config *cfg = c->pool->w->cfg;
	int i, ok;
	char text[64];

	j->c = c;
	j->sync = 0;
	j->step = 0;
	j->fail_step = -1;
	j->got_rows = 0;
	j->next = NULL;
	j->sent_us = dc_now_us();
	if (c->job == NULL) {
		c->job = j;
		c->progress_us = j->sent_us;
	} else {
		c->jtail->next = j;
		stat_add(c->pool, &c->pool->w->stats->queries_pipelined, 1);
	}
	c->jtail = j;
	c->njobs++;
	c->state = C_BUSY;
	j->nsent = 0;
	j->ridx = -1;
	for (i = 0; i < j->nstmts; i++) {
		if (j->kind[i] == S_TIMEOUT && c->prepared)
			continue;	/* the session has it: conn_prepare() */
		if (i == j->result_idx)
			j->ridx = j->nsent;
		j->nsent++;
		if (j->kind[i] == S_TEXT)
			ok = PQsendQueryParams(c->conn, j->sql[i], j->nparams[i],
			    NULL, (const char *const *)j->params[i], NULL, NULL,
			    0);
		else if (c->prepared)
			ok = PQsendQueryPrepared(c->conn, c->names[j->kind[i]],
			    0, NULL, NULL, NULL, 0);
		else {
			fixed_text(j->kind[i], cfg->statement_timeout, text,
			    sizeof(text));
			ok = PQsendQueryParams(c->conn, text, 0, NULL, NULL,
			    NULL, NULL, 0);
		}
		if (ok != 1)
			return DC_ERR;
	}
	if (c->t != NULL && !c->t->is_sysdb) {
		conn_defer_sync(c);
		return DC_OK;
	}
	return conn_sync_now(c);
}

/* Forget what a job's earlier attempt produced, before running it again. */
static void
job_reset(struct dc_pgjob *j)
{
	if (j->result != NULL)
		PQclear(j->result);
	j->result = NULL;
	j->status = DC_OK;
	j->error[0] = '\0';
	j->sqlstate[0] = '\0';
	j->c = NULL;
	j->step = 0;
	j->fail_step = -1;
	j->got_rows = 0;
	j->capped = 0;
	j->aborted = 0;
}

/*
 * Put jobs that did not run to completion back at the head of their
 * target's queue, in the order they were sent; a cancelled one is freed.
 */
static void
requeue_jobs(struct target *t, struct dc_pgjob *list)
{
	struct dc_pgjob *j, *rev = NULL;

	while ((j = list) != NULL) {
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev) != NULL) {
		rev = j->next;
		j->next = NULL;
		if (j->cancelled) {
			job_free(j);
			continue;
		}
		job_reset(j);
		enqueue_head(t, j);
		stat_add(j->pool, &j->pool->w->stats->queries_requeued, 1);
	}
}

/*
 * The connection broke under a job.  A read-only target job is run again
 * once on a fresh connection; a system database job only when nothing of
 * it was answered (a COMMIT may have happened).
 */
static void
conn_broken(struct pgconn *c, const char *why)
{
	struct dc_pgjob *j, *list, *again = NULL, **againp = &again;
	struct dc_pgjob *failed = NULL, **failedp = &failed;
	struct target *t = c->t;
	char msg[512], lost[560];

	conn_message("", why, t != NULL ? t->url : NULL, msg, sizeof(msg));
	list = conn_take_jobs(c);
	conn_close(c);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		if (!j->retried && !j->cancelled && t != NULL &&
		    (!t->is_sysdb || !j->got_rows)) {
			j->retried = 1;
			*againp = j;
			againp = &j->next;
		} else {
			*failedp = j;
			failedp = &j->next;
		}
	}
	if (again != NULL) {
		log_info("target connection broken (%s); retrying on a new "
		    "connection", msg);
		/* to the head of the queue: they waited long enough */
		requeue_jobs(t, again);
		target_kick(t);
	} else if (t != NULL)
		target_kick(t);
	snprintf(lost, sizeof(lost), "connection to the database was lost: "
	    "%s", msg);
	while ((j = failed) != NULL) {
		failed = j->next;
		j->next = NULL;
		job_reset(j);
		set_error(j, DC_EUNAVAIL, lost, SQLSTATE_CONN_FAILURE);
		job_finish(j);
	}
}

/*
 * Our named statements vanished (26000: a transaction-pooling proxy gave
 * us another server session): use text for this target from now on and
 * run the job again on a fresh connection.
 */
static void
prepared_lost(struct pgconn *c)
{
	struct dc_pgjob *list;
	struct target *t = c->t;

	log_warn("target does not keep prepared statements (a transaction "
	    "pooling proxy?); sending every statement as text");
	t->no_prepare = 1;
	target_mark_stale(t);
	list = conn_take_jobs(c);
	conn_close(c);
	target_close_stale(t);
	requeue_jobs(t, list);
	target_kick(t);
}

/* Errors that mean the session is gone, not that the statement failed. */
static int
session_lost(const char *sqlstate)
{
	return sqlstate != NULL && (strncmp(sqlstate, "57P0", 4) == 0 ||
	    strncmp(sqlstate, "08", 2) == 0);
}

static void
handle_result(struct pgconn *c, struct dc_pgjob *j, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	const char *msg, *state;

	switch (st) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		j->got_rows = 1;
		if (j->step == j->ridx && j->status == DC_OK) {
			if (j->result != NULL)
				PQclear(j->result);
			j->result = res;
			return;
		}
		break;
	case PGRES_PIPELINE_ABORTED:
		if (j->step == 0)
			j->aborted = 1;	/* none of it ran */
		break;
	default:
		j->got_rows = 1;
		if (j->fail_step < 0)
			j->fail_step = j->step;
		if (j->status == DC_OK) {
			msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			set_error(j, DC_ERR, msg != NULL ? msg :
			    PQresultErrorMessage(res), state);
			if (state != NULL && strcmp(state, "57014") == 0)
				j->status = DC_ETIMEOUT;
		}
		break;
	}
	PQclear(res);
}

/*
 * A result of the statement read in single-row mode: the first row's
 * result is handed back as it is when no other row follows; a second
 * row copies it into one that grows (PQcopyResult, then PQsetvalue);
 * rows beyond max_rows + 1 are dropped; the statement's final (empty)
 * PGRES_TUPLES_OK stands for a statement without rows.
 */
static void
single_result(struct pgconn *c, struct dc_pgjob *j, PGresult *res)
{
	int n, col, ncols, null;

	if (PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
		if (j->result != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
			PQclear(res);	/* the end of rows we already hold */
		else
			handle_result(c, j, res);
		return;
	}
	j->got_rows = 1;
	if (j->status != DC_OK || j->capped)
		goto drop;
	if (j->result == NULL) {
		j->result = res;	/* one row is a result as it is */
		return;
	}
	if (PQresultStatus(j->result) == PGRES_SINGLE_TUPLE) {
		/* a second row: into a result that can grow */
		PGresult *all = PQcopyResult(j->result, PG_COPYRES_ATTRS |
		    PG_COPYRES_TUPLES);

		if (all == NULL) {
			set_error(j, DC_ERR, "out of memory", NULL);
			goto drop;
		}
		PQclear(j->result);
		j->result = all;
	}
	n = PQntuples(j->result);
	if (j->max_rows > 0 && n == j->max_rows)
		j->capped = 1;		/* this is the one over the cap */
	ncols = PQnfields(res);
	for (col = 0; col < ncols; col++) {
		null = PQgetisnull(res, 0, col);
		if (PQsetvalue(j->result, n, col, null ? NULL :
		    PQgetvalue(res, 0, col), null ? -1 :
		    PQgetlength(res, 0, col)) != 1) {
			set_error(j, DC_ERR, "out of memory", NULL);
			break;
		}
	}
drop:
	PQclear(res);
}

/*
 * Read what arrived.  Returns 1 when the job's pipeline is complete, 2
 * when a single-row statement has its max_rows + 1 rows and the rest of
 * its output has not arrived yet (the caller answers now and closes the
 * connection, which stops the statement), 3 when sending its Sync failed,
 * else 0.
 */
static int
conn_read_results(struct pgconn *c)
{
	struct dc_pgjob *j = c->job;
	PGresult *res;

	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (res == NULL) {
			/* end of one statement's results */
			if (j->step < j->nsent)
				j->step++;
			else
				return 1;
			if (j->step == j->nsent && !j->sync) {
				if (j != c->jtail || !c->unsynced)
					return 1;	/* the next job shares
							   its Sync */
				/*
				 * Done before the pass sent its group's Sync
				 * (an error is flushed at once, and libpq may
				 * flush early): send it now, it is j's.
				 */
				if (conn_sync_now(c) != DC_OK)
					return 3;
			}
			/* the next one's first result has not been parsed yet */
			if (j->single && j->step == j->ridx &&
			    PQsetSingleRowMode(c->conn) != 1)
				log_warn("single-row mode refused; reading the "
				    "whole result");
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return 1;
		}
		if (j->single && j->step == j->ridx)
			single_result(c, j, res);
		else
			handle_result(c, j, res);
	}
	return j->capped && j->step == j->ridx && j->status == DC_OK ?
	    2 : 0;
}

static void
cleanup_done(struct pgconn *c)
{
	PGresult *res;

	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (res == NULL)
			continue;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			conn_idle(c);
			return;
		}
		PQclear(res);
	}
}

/*
 * A single-row job has all the rows it may return while its statement
 * is still sending more: answer now rather than wait for (or time out
 * on) output that may be unbounded, and close the connection, which
 * stops the statement on the server.
 */
static void
job_capped_on_conn(struct pgconn *c)
{
	struct dc_pgjob *j = conn_pop_job(c), *rest;
	struct target *t = c->t;

	log_debug("row cap reached while the statement still runs; closing "
	    "its connection");
	rest = conn_take_jobs(c);
	conn_close(c);
	requeue_jobs(t, rest);
	target_kick(t);
	job_finish(j);
}

/*
 * A connection whose last job failed is still in that job's transaction:
 * end it before the connection takes another job.
 */
static void
conn_cleanup(struct pgconn *c)
{
	struct target *t = c->t;

	c->state = C_CLEANUP;
	if (PQsendQueryParams(c->conn, "ROLLBACK", 0, NULL, NULL, NULL,
	    NULL, 0) != 1 || PQpipelineSync(c->conn) != 1 ||
	    PQflush(c->conn) < 0) {
		conn_close(c);
		target_kick(t);
	}
}

/*
 * How long j took once it was at the head of c (not waiting behind the
 * jobs before it), averaged into its target's svc_us.
 */
static void
job_timed(struct pgconn *c, const struct dc_pgjob *j)
{
	uint64_t now = dc_now_us(), start, svc;
	struct target *t = c->t;

	start = j->sent_us > c->progress_us ? j->sent_us : c->progress_us;
	svc = now > start ? now - start : 1;
	t->svc_us = t->svc_us == 0 ? svc : (t->svc_us * 7 + svc) / 8;
	c->progress_us = now;
}

/*
 * Hand out the jobs whose results arrived, as many as there are.  A job
 * that failed leaves its transaction aborted, and the jobs sent behind it
 * are refused at their BEGIN (25P02) without running: they go back to the
 * queue, and the connection takes no more jobs until a ROLLBACK ended
 * that transaction.  Callbacks may close the connection meanwhile
 * (inuse/dead), or send it more jobs.
 */
static void
conn_results(struct pgconn *c)
{
	struct target *t = c->t;
	struct dc_pgjob *j;
	int rc, was_poisoned;

	c->inuse++;
	while (c->job != NULL && !c->dead) {
		j = c->job;
		rc = conn_read_results(c);
		if (rc == 0) {
			if (PQstatus(c->conn) != CONNECTION_OK)
				conn_broken(c, "server closed the connection");
			else if (session_lost(j->sqlstate))
				conn_broken(c, j->error);
			break;
		}
		if (rc == 2) {
			job_capped_on_conn(c);
			break;
		}
		if (rc == 3) {
			conn_broken(c, PQerrorMessage(c->conn));
			break;
		}
		if (session_lost(j->sqlstate)) {
			conn_broken(c, j->error);
			break;
		}
		if (c->prepared && strcmp(j->sqlstate, "26000") == 0) {
			prepared_lost(c);
			break;
		}
		conn_pop_job(c);
		job_timed(c, j);
		was_poisoned = c->poisoned;
		if (j->fail_step >= 0)
			c->poisoned = 1;	/* its transaction is aborted */
		if (j->aborted || (was_poisoned && j->fail_step == 0 &&
		    strcmp(j->sqlstate, "25P02") == 0)) {
			/* refused because of the job before it: run it again */
			requeue_jobs(t, j);
			j = NULL;
		}
		/* the connection first, so the callback may reuse it */
		if (c->job == NULL) {
			if (c->poisoned)
				conn_cleanup(c);
			else
				conn_idle(c);
		} else if (j == NULL)
			target_kick(t);
		if (j != NULL)
			job_finish(j);
	}
	if (--c->inuse == 0 && c->dead)
		free(c);
}

static void
connect_failed(struct pgconn *c, const char *msg)
{
	struct target *t = c->t;
	struct dc_pgjob *j;

	if (t == NULL) {	/* a probe */
		j = c->job;
		c->job = NULL;
		conn_close(c);
		set_error(j, DC_EUNAVAIL, msg, SQLSTATE_CANNOT_CONNECT);
		job_finish(j);
		return;
	}
	if (!t->is_sysdb) {
		stat_add(c->pool, &c->pool->w->stats->target_conns_failed, 1);
		TSTAT(t, failed, 1);
	}
	log_debug("target connection failed: %s", msg);
	conn_close(c);
	/*
	 * The target is down: fail fast rather than queue behind it.  When
	 * other connections are up (this one hit max_connections, say), the
	 * queued jobs wait for them instead.
	 */
	if (target_has_live(t))
		target_kick(t);
	else
		target_fail_queue(t, DC_EUNAVAIL, msg, SQLSTATE_CANNOT_CONNECT);
}

static void
notice_quiet(void *arg, const char *message)
{
	log_debug("target notice: %s", message);
}

/*
 * Prepare the fixed statements of read-only jobs, in one round trip,
 * with the configuration's timeout and row cap baked in.  The connect
 * timer keeps running until they are ready.
 */
static int
conn_prepare(struct pgconn *c)
{
	const struct dc_config *cfg = c->pool->w->cfg;
	uint8_t rnd[16];
	char text[64];
	int kind, rc;

	/*
	 * Names nobody else uses: behind a pooler that hands server sessions
	 * from client to client, a job must never find another client's
	 * statement of the same name (a "dc_begin" that is not READ ONLY).
	 * Where ours are missing the job fails with 26000 before anything
	 * ran, and the target falls back to text (prepared_lost).
	 */
	if (dc_uuid_generate(rnd) != DC_OK)
		return DC_ERR;
	c->prep_timeout = cfg->statement_timeout;
	for (kind = S_BEGIN; kind < S_NKINDS; kind++) {
		if (kind == S_TIMEOUT)
			continue;
		snprintf(c->names[kind], sizeof(c->names[kind]), "%s_%02x%02x"
		    "%02x%02x%02x%02x%02x%02x", fixed_name[kind], rnd[0],
		    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		fixed_text(kind, c->prep_timeout, text, sizeof(text));
		if (PQsendPrepare(c->conn, c->names[kind], text, 0,
		    NULL) != 1)
			return DC_ERR;
	}
	/*
	 * The timeout for the whole session rather than SET LOCAL in every
	 * job: one statement less each time.  A job cannot change it for the
	 * next one (its ROLLBACK undoes set_config()), and a connection made
	 * with another value is closed (conn_current).
	 */
	snprintf(text, sizeof(text), "SET statement_timeout = %d",
	    c->prep_timeout);
	if (PQsendQueryParams(c->conn, text, 0, NULL, NULL, NULL, NULL,
	    0) != 1)
		return DC_ERR;
	if (PQpipelineSync(c->conn) != 1 || (rc = PQflush(c->conn)) < 0)
		return DC_ERR;
	conn_arm(c, EV_READ | EV_PERSIST | (rc == 1 ? EV_WRITE : 0));
	return DC_OK;
}

/* Results of conn_prepare(): the connection is ready, or it failed. */
static void
setup_event(struct pgconn *c, short what)
{
	const char *err = NULL;
	char msg[512];
	PGresult *res;
	int rc;

	if (what & EV_WRITE) {
		if ((rc = PQflush(c->conn)) < 0)
			goto fail;
		if (rc == 0)
			conn_arm(c, EV_READ | EV_PERSIST);
	}
	if (!(what & EV_READ))
		return;
	if (PQconsumeInput(c->conn) == 0)
		goto fail;
	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (res == NULL)
			continue;
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			if (err != NULL)
				goto fail;
			evtimer_del(&c->timer);
			c->prepared = 1;
			conn_idle(c);
			return;
		case PGRES_COMMAND_OK:
		case PGRES_PIPELINE_ABORTED:
			break;
		default:
			err = "could not prepare statements";
			break;
		}
		PQclear(res);
	}
	if (PQstatus(c->conn) == CONNECTION_OK)
		return;
fail:
	conn_message("could not set up the database connection: ",
	    err != NULL ? err : PQerrorMessage(c->conn), c->t->url, msg,
	    sizeof(msg));
	connect_failed(c, msg);
}

static void
connect_step(struct pgconn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->conn);
	struct dc_pgjob *j;
	char msg[512];

	switch (st) {
	case PGRES_POLLING_READING:
		conn_arm(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		conn_arm(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		conn_message("could not connect to the database: ",
		    PQerrorMessage(c->conn), c->t != NULL ? c->t->url :
		    c->job != NULL ? c->job->probe_url : NULL, msg, sizeof(msg));
		connect_failed(c, msg);
		return;
	}
	if (c->t == NULL) {	/* a probe: it connected, that is all */
		j = c->job;
		c->job = NULL;
		conn_close(c);
		job_finish(j);
		return;
	}
	if (PQsetnonblocking(c->conn, 1) != 0 ||
	    PQenterPipelineMode(c->conn) != 1) {
		connect_failed(c, "could not set up the database connection");
		return;
	}
	c->state = C_SETUP;
	if (c->t->is_sysdb) {
		evtimer_del(&c->timer);
		conn_idle(c);
		return;
	}
	stat_add(c->pool, &c->pool->w->stats->target_conns_open, 1);
	stat_add(c->pool, &c->pool->w->stats->target_conns_opened, 1);
	TSTAT(c->t, open, 1);
	TSTAT(c->t, opened, 1);
	if (c->t->no_prepare) {
		evtimer_del(&c->timer);
		conn_idle(c);
		return;
	}
	if (conn_prepare(c) != DC_OK)
		connect_failed(c, "could not set up the database connection");
}

static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	int rc;

	if (!(c->ev_what & EV_PERSIST))
		c->ev_fd = -1;		/* a one-shot event is no longer added */
	switch (c->state) {
	case C_CONNECTING:
		connect_step(c);
		return;
	case C_SETUP:
		setup_event(c, what);
		return;
	case C_IDLE:
		/* an idle connection only reads when the server talks */
		if (PQconsumeInput(c->conn) == 0 ||
		    PQstatus(c->conn) != CONNECTION_OK) {
			log_debug("idle target connection closed by server");
			conn_close(c);
		}
		return;
	case C_CLEANUP:
		if (PQconsumeInput(c->conn) == 0) {
			struct target *t = c->t;

			conn_close(c);
			target_kick(t);
			return;
		}
		cleanup_done(c);
		return;
	case C_BUSY:
		break;
	}
	if (what & EV_WRITE) {
		rc = PQflush(c->conn);
		if (rc < 0) {
			conn_broken(c, PQerrorMessage(c->conn));
			return;
		}
		if (rc == 0)
			conn_arm(c, EV_READ | EV_PERSIST);
	}
	if (what & EV_READ) {
		if (PQconsumeInput(c->conn) == 0) {
			conn_broken(c, PQerrorMessage(c->conn));
			return;
		}
		conn_results(c);
	}
}

/* Connect timeout while connecting; lazy idle timeout afterwards. */
static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	const struct dc_config *cfg = c->pool->w->cfg;
	uint64_t idle_ms = (uint64_t)cfg->target_idle_timeout * 1000, now, left;
	struct timeval tv;
	char msg[128];

	if (c->state == C_CONNECTING || c->state == C_SETUP) {
		snprintf(msg, sizeof(msg), "could not connect to the database: "
		    "timeout after %d s", cfg->connect_timeout);
		connect_failed(c, msg);
		return;
	}
	now = dc_now_ms();
	if (c->state == C_IDLE && now - c->last_used_ms >= idle_ms) {
		log_debug("closing idle target connection");
		conn_close(c);
		return;
	}
	/* used since: look again when it may have been idle long enough */
	left = c->state == C_IDLE ? idle_ms - (now - c->last_used_ms) : idle_ms;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(&c->timer, &tv);
}

/*
 * The host name libpq would look up for url, copied, or NULL when there
 * is nothing to resolve: a unix socket, an IP address, hostaddr given,
 * several hosts (libpq's own fallback list), or a URL it cannot parse.
 */
static char *
url_host_to_resolve(const char *url)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *hostaddr = NULL;
	unsigned char buf[sizeof(struct in6_addr)];
	char *err = NULL, *out = NULL;

	if ((opts = PQconninfoParse(url, &err)) == NULL) {
		PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	if (host != NULL && host[0] != '\0' && host[0] != '/' &&
	    host[0] != '@' && strchr(host, ',') == NULL &&
	    (hostaddr == NULL || hostaddr[0] == '\0') &&
	    inet_pton(AF_INET, host, buf) != 1 &&
	    inet_pton(AF_INET6, host, buf) != 1)
		out = strdup(host);
	PQconninfoFree(opts);
	return out;
}

/* Start libpq's connection to url, at hostaddr when we resolved it. */
static int
conn_start(struct pgconn *c, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	const char *keys[] = { "dbname", "application_name", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "options", "hostaddr",
	    NULL };
	const char *vals[] = { url, "datachatd", "10", "5", "3",
	    "-c client_connection_check_interval=1000", hostaddr, NULL };

	if (hostaddr == NULL)
		keys[6] = NULL;
	c->conn = PQconnectStartParams(keys, vals, 1);
	if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD) {
		conn_message("could not connect to the database: ",
		    c->conn != NULL ? PQerrorMessage(c->conn) : "out of memory",
		    url, err, errsz);
		if (c->conn != NULL)
			PQfinish(c->conn);
		c->conn = NULL;
		return DC_ERR;
	}
	PQsetNoticeProcessor(c->conn, notice_quiet, NULL);
	conn_arm(c, EV_WRITE);
	return DC_OK;
}

/* The first address of a lookup's answer, as text. */
static int
first_address(struct evutil_addrinfo *ai, char *out, size_t sz)
{
	for (; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && inet_ntop(AF_INET,
		    &((struct sockaddr_in *)ai->ai_addr)->sin_addr, out,
		    (socklen_t)sz) != NULL)
			return 0;
		if (ai->ai_family == AF_INET6 && inet_ntop(AF_INET6,
		    &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, out,
		    (socklen_t)sz) != NULL)
			return 0;
	}
	return EVUTIL_EAI_NONAME;
}

/*
 * The host name of a connection being opened was looked up (evdns, on
 * the worker's loop: a slow DNS server delays only this connection).
 */
static void
conn_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct pgconn *c = arg;
	char err[512], msg[600];

	if (result == 0)
		result = first_address(ai, c->dns_addr, sizeof(c->dns_addr));
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	c->dns_req = NULL;
	if (c->dns_dead) {	/* closed meanwhile */
		free(c);
		return;
	}
	if (c->dns_in_open) {	/* answered at once: conn_open goes on */
		c->dns_err = result != 0 ? result : 0;
		return;
	}
	if (result != 0) {
		snprintf(msg, sizeof(msg), "could not connect to the database: "
		    "could not resolve the host name: %s",
		    evutil_gai_strerror(result));
		connect_failed(c, msg);
		return;
	}
	if (conn_start(c, c->pending_url, c->dns_addr, err,
	    sizeof(err)) != DC_OK) {
		connect_failed(c, err);
		return;
	}
	conn_drop_url(c);
}

static struct evdns_base *
pool_dns(struct dc_pool *p)
{
	if (p->dns == NULL &&
	    (p->dns = evdns_base_new(p->w->base, 0)) != NULL) {
		/* resolv.conf and /etc/hosts, as libc would */
		(void)evdns_base_resolv_conf_parse(p->dns, DNS_OPTIONS_ALL,
		    p->w->cfg->resolv_conf);
	}
	return p->dns;
}

/*
 * Start looking up host for c.  DC_OK: the lookup runs (conn_resolved()
 * goes on), or it was answered at once (/etc/hosts) and the connection
 * started; else err says why.
 */
static int
conn_lookup(struct pgconn *c, struct evdns_base *dns, const char *host,
    const char *url, char *err, size_t errsz)
{
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo hints;

	if ((c->pending_url = strdup(url)) == NULL) {
		dc_strlcpy(err, "out of memory", errsz);
		return DC_ERR;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	c->dns_in_open = 1;
	c->dns_err = -1;	/* no answer yet */
	req = evdns_getaddrinfo(dns, host, NULL, &hints, conn_resolved, c);
	c->dns_in_open = 0;
	if (req != NULL) {
		c->dns_req = req;
		return DC_OK;
	}
	conn_drop_url(c);
	if (c->dns_err != 0) {
		snprintf(err, errsz, "could not connect to the database: could "
		    "not resolve host name \"%s\": %s", host,
		    evutil_gai_strerror(c->dns_err));
		return DC_ERR;
	}
	return conn_start(c, url, c->dns_addr, err, errsz);
}

static struct pgconn *
conn_open(struct dc_pool *p, struct target *t, const char *url, char *err,
    size_t errsz)
{
	struct timeval tv = { p->w->cfg->connect_timeout, 0 };
	struct evdns_base *dns;
	struct pgconn *c;
	char *host = url_host_to_resolve(url);
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		free(host);
		dc_strlcpy(err, "out of memory", errsz);
		return NULL;
	}
	c->pool = p;
	c->t = t;
	c->ev_fd = -1;
	c->state = C_CONNECTING;
	evtimer_assign(&c->timer, p->w->base, conn_timer, c);
	/*
	 * A host name is looked up first: libpq would call getaddrinfo()
	 * inside PQconnectStartParams and block the whole worker on DNS.
	 */
	if (host != NULL && (dns = pool_dns(p)) != NULL)
		rc = conn_lookup(c, dns, host, url, err, errsz);
	else
		rc = conn_start(c, url, NULL, err, errsz);
	free(host);
	if (rc != DC_OK) {
		free(c);
		return NULL;
	}
	if (t != NULL) {
		c->gen = t->gen;
		c->next = t->conns;
		t->conns = c;
		t->nconns++;
	} else {
		c->next = p->probes;
		p->probes = c;
	}
	evtimer_add(&c->timer, &tv);
	return c;
}

/*
 * A busy connection that may take one more job behind the ones it runs,
 * or NULL.  Only where that pays: the target's jobs are quick (svc_us
 * under PIPELINE_FAST_US, so slow analytic statements get connections of
 * their own and run side by side), and the connection made progress (was
 * given work while idle, or finished a job) within PIPELINE_WINDOW_US,
 * so nothing waits behind a statement that turned out slow.  The least
 * loaded such connection.  Never behind a transaction-pooling proxy
 * (no_prepare): the server session may change between two jobs.
 */
static struct pgconn *
target_pipeline_conn(struct target *t, int depth)
{
	struct pgconn *c, *best = NULL;
	uint64_t now;

	if (t->is_sysdb || t->no_prepare || depth < 2 || t->svc_us == 0 ||
	    t->svc_us > PIPELINE_FAST_US)
		return NULL;
	now = dc_now_us();
	for (c = t->conns; c != NULL; c = c->next) {
		if (c->state != C_BUSY || c->poisoned || c->njobs >= depth ||
		    now - c->progress_us > PIPELINE_WINDOW_US ||
		    !conn_current(c))
			continue;
		if (best == NULL || c->njobs < best->njobs)
			best = c;
	}
	return best;
}

/*
 * Give queued jobs idle connections, or send them behind the jobs of a
 * busy connection, or open new ones within the limit.
 */
static void
target_kick(struct target *t)
{
	struct dc_pool *p = NULL;
	struct pgconn *c, *next;
	struct dc_pgjob *j;
	char err[512];
	int connecting = 0, limit;

	while ((j = t->qhead) != NULL) {
		p = j->pool;
		/* behind a busy connection that keeps up, then an idle one */
		c = target_pipeline_conn(t, p->w->cfg->target_pipeline_depth);
		if (c == NULL)
			for (c = t->conns; c != NULL; c = c->next)
				if (c->state == C_IDLE && conn_current(c))
					break;
		if (c == NULL)
			break;
		dequeue(t);
		if (conn_send(c, j) != DC_OK)
			conn_broken(c, PQerrorMessage(c->conn));
	}
	if (t->qhead == NULL || p == NULL)
		return;
	/* idle ones that may not take a job only take a slot: close them */
	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_IDLE && !conn_current(c))
			conn_close(c);
		else if (c->state == C_CONNECTING || c->state == C_SETUP)
			connecting++;
	}
	limit = t->is_sysdb ? 2 : p->w->cfg->max_target_connections;
	for (j = t->qhead; j != NULL && connecting > 0; j = j->next)
		connecting--;	/* jobs already covered by a connect */
	for (; j != NULL && t->nconns < limit; j = j->next) {
		if (conn_open(p, t, t->url, err, sizeof(err)) == NULL) {
			if (!target_has_live(t))
				target_fail_queue(t, DC_EUNAVAIL, err,
				    SQLSTATE_CANNOT_CONNECT);
			return;
		}
	}
}

static void
job_finish(struct dc_pgjob *j)
{
	struct dc_pg_result r;

	memset(&r, 0, sizeof(r));
	r.status = j->status;
	r.res = j->status == DC_OK ? j->result : NULL;
	r.error = j->status != DC_OK ? j->error : NULL;
	r.sqlstate = j->sqlstate[0] ? j->sqlstate : NULL;
	r.retried = j->retried;
	if (r.res != NULL && j->max_rows > 0 && PQntuples(r.res) > j->max_rows)
		r.truncated = 1;
	if (!j->is_probe && !j->cancelled && j->t != NULL && !j->t->is_sysdb) {
		stat_add(j->pool, j->status == DC_OK ?
		    &j->pool->w->stats->queries_ok :
		    &j->pool->w->stats->queries_failed, 1);
		if (j->status == DC_OK)
			TSTAT(j->t, queries_ok, 1);
		else
			TSTAT(j->t, queries_failed, 1);
	}
	if (j->cb != NULL)
		j->cb(&r, j->arg);
	job_free(j);
}

/* --- public --- */

static struct dc_pgjob *
job_new(struct dc_pool *p, dc_pg_cb cb, void *arg)
{
	struct dc_pgjob *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->pool = p;
	j->cb = cb;
	j->arg = arg;
	return j;
}

/* Queue a job on its target; the callback may run before this returns. */
static int
job_submit(struct target *t, struct dc_pgjob *j, struct dc_pgjob **jobp)
{
	if (t->qlen >= MAX_QUEUE) {
		job_free(j);
		return DC_EFULL;
	}
	enqueue(t, j);
	if (jobp != NULL)
		*jobp = j;
	target_kick(t);
	return DC_OK;
}

int
dc_pool_query(struct dc_pool *p, const struct dc_entry *e, int kind,
    const char *sql, int nparams, const char *const *params, dc_pg_cb cb,
    void *arg, struct dc_pgjob **jobp)
{
	const struct dc_config *cfg = p->w->cfg;
	struct dc_pgjob *j;
	struct target *t;

	t = target_get(p, e->id, e->gen, e->url, 0);
	if (t == NULL || (j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->t = t;
	if (job_add_fixed(j, S_BEGIN) != DC_OK ||
	    job_add_fixed(j, S_TIMEOUT) != DC_OK)
		goto fail;
	/* the extended protocol refuses a second statement in sql */
	if (job_add(j, sql, nparams, params) != DC_OK ||
	    job_add_fixed(j, S_ROLLBACK) != DC_OK)
		goto fail;
	j->result_idx = 2;
	if (kind == DC_PG_READ) {
		/* rows one at a time, capped whatever the statement says */
		j->single = 1;
		j->max_rows = cfg->max_rows;
	}
	return job_submit(t, j, jobp);
fail:
	job_free(j);
	return DC_ENOMEM;
}

int
dc_pool_sysdb(struct dc_pool *p, int nstmts, const char *const *sql,
    const int *nparams, const char *const *const *params, dc_pg_cb cb,
    void *arg, struct dc_pgjob **jobp)
{
	static const uint8_t zero[16];
	struct dc_pgjob *j;
	struct target *t;
	int i;

	if (nstmts < 1 || nstmts > MAX_STMTS - 2)
		return DC_EINVAL;
	t = target_get(p, zero, 1, p->w->cfg->system_database_url, 1);
	if (t == NULL || (j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->t = t;
	if (job_add(j, "BEGIN", 0, NULL) != DC_OK)
		goto fail;
	for (i = 0; i < nstmts; i++)
		if (job_add(j, sql[i], nparams[i], params[i]) != DC_OK)
			goto fail;
	if (job_add(j, "COMMIT", 0, NULL) != DC_OK)
		goto fail;
	j->result_idx = nstmts;
	return job_submit(t, j, jobp);
fail:
	job_free(j);
	return DC_ENOMEM;
}

int
dc_pool_probe(struct dc_pool *p, const char *url, dc_pg_cb cb, void *arg,
    struct dc_pgjob **jobp)
{
	struct dc_pgjob *j;
	struct pgconn *c;
	char err[512];

	if ((j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->is_probe = 1;
	j->probe_url = dc_url_libpq(url);
	if (j->probe_url == NULL) {
		job_free(j);
		return DC_ENOMEM;
	}
	if ((c = conn_open(p, NULL, j->probe_url, err, sizeof(err))) == NULL) {
		/* libpq refused the URL itself: that is the probe's answer */
		if (jobp != NULL)
			*jobp = NULL;
		set_error(j, DC_EUNAVAIL, err, SQLSTATE_CANNOT_CONNECT);
		job_finish(j);
		return DC_OK;
	}
	c->job = j;
	j->c = c;
	if (jobp != NULL)
		*jobp = j;
	return DC_OK;
}

void
dc_pool_cancel(struct dc_pgjob *j)
{
	struct dc_pgjob **pp, *prev = NULL;
	struct target *t = j->t;

	j->cb = NULL;
	if (j->c != NULL) {
		struct pgconn *c = j->c;
		struct dc_pgjob *rest;

		if (c->job != j) {
			/* behind another job: let it run, drop its answer */
			j->cancelled = 1;
			return;
		}
		/*
		 * Running: drop the connection, the server stops the query;
		 * the jobs sent behind it go back to the queue.
		 */
		conn_pop_job(c);
		rest = conn_take_jobs(c);
		conn_close(c);
		job_free(j);
		if (t != NULL) {
			requeue_jobs(t, rest);
			target_kick(t);
		}
		return;
	}
	if (t != NULL) {
		for (pp = &t->qhead; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == j) {
				*pp = j->next;
				if (t->qtail == j)
					t->qtail = prev;
				t->qlen--;
				break;
			}
			prev = *pp;
		}
	}
	job_free(j);
}

static void
target_close_stale(struct target *t)
{
	struct pgconn *c, *next;

	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->close_needed && c->state == C_IDLE)
			conn_close(c);
	}
}

/*
 * The environment entry is not in the shared registry: it is current
 * while DATABASE_URL still names the URL its connections were opened
 * for.  Returns 1 current, 0 changed (e filled), -1 gone.
 */
static int
env_entry_state(struct dc_pool *p, const struct target *t, struct dc_entry *e)
{
	if (dc_target_env_entry(p->w, e) != DC_OK)
		return -1;
	return url_is(t, e->url) ? 1 : 0;
}

void
dc_pool_sync(struct dc_pool *p)
{
	struct target *t, **pp;
	struct dc_entry *e;
	uint64_t gen;
	int state;

	e = malloc(sizeof(*e));
	if (e == NULL)
		return;
	for (pp = &p->targets; (t = *pp) != NULL;) {
		if (t->is_sysdb) {
			pp = &t->next;
			continue;
		}
		if (dc_target_is_env(t->id))
			state = env_entry_state(p, t, e);
		else {
			gen = dc_shreg_entry_gen(p->w->reg, t->id);
			state = gen == 0 ? -1 : gen == t->gen ? 1 :
			    dc_shreg_get(p->w->reg, t->id, e) == DC_OK ? 0 : -1;
		}
		if (state == 1) {
			pp = &t->next;
			continue;
		}
		target_mark_stale(t);
		target_close_stale(t);
		if (state == 0) {
			if (!dc_target_is_env(t->id))
				t->gen = e->gen;
			target_set_url(t, e->url);
			dc_explicit_bzero(e->url, sizeof(e->url));
			target_kick(t);
			pp = &t->next;
			continue;
		}
		/* the entry is gone: nothing may run on it any more */
		target_fail_queue(t, DC_ENOENT, "the target database was "
		    "removed from the registry", NULL);
		if (t->conns == NULL) {
			*pp = t->next;
			target_free(t);
			continue;
		}
		pp = &t->next;
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
	dc_schema_sync(p->w);
}

void
dc_pool_invalidate(struct dc_pool *p, const uint8_t *id)
{
	struct target *t;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb || (id != NULL && memcmp(t->id, id, 16) != 0))
			continue;
		target_mark_stale(t);
		target_close_stale(t);
	}
	dc_schema_invalidate(id);
}

int
dc_pool_open(const struct dc_pool *p, const uint8_t *id)
{
	const struct target *t;
	const struct pgconn *c;
	int n = 0;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb || (id != NULL && memcmp(t->id, id, 16) != 0))
			continue;
		for (c = t->conns; c != NULL; c = c->next)
			if (c->state != C_CONNECTING)
				n++;
	}
	return n;
}

void
dc_pool_free(struct dc_pool *p)
{
	struct target *t;
	struct dc_pgjob *j;

	dc_schema_shutdown();
	while (p->probes != NULL) {
		j = p->probes->job;
		conn_close(p->probes);
		if (j != NULL)
			job_free(j);
	}
	while ((t = p->targets) != NULL) {
		p->targets = t->next;
		while (t->conns != NULL) {
			struct dc_pgjob *list = conn_take_jobs(t->conns);

			conn_close(t->conns);
			while ((j = list) != NULL) {
				list = j->next;
				job_free(j);
			}
		}
		while ((j = dequeue(t)) != NULL)
			job_free(j);
		target_free(t);
	}
	if (p->sync_set)
		event_del(&p->sync_ev);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 1);	/* calls back closed lookups */
	free(p);
}
