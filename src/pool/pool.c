/*
 * pool.c - a worker's database connections, whatever the engine (see
 * pool.h; the drivers' side of the contract is driver.h).
 *
 * Targets are buckets keyed by connection id, each remembering the entry
 * generation its connections were opened for and the driver of its
 * database_type.  dc_pool_sync() compares with the shared registry (and,
 * for the environment entry, with the configured DATABASE_URL): a
 * changed or vanished entry marks its connections close_needed; idle
 * ones close at once, busy ones when their job ends, and the jobs that
 * wait for it are refused.  A target never goes back: a job that carries
 * an older copy of its entry than the one it follows (resolved before
 * the change) is refused too (entry_older).  An idle connection
 * whose server went away is noticed by its driver and closed.
 *
 * A read-only job whose connection breaks (a target restart) is run once
 * more on a fresh connection: it is rolled back whatever happened, so
 * running it again is always safe.  A system database job is retried only
 * when nothing of it had been answered yet.  Connections to a target that
 * is down fail fast: a failed connect fails the jobs queued behind it
 * (unless other live connections can serve them), with SQLSTATE 08001 so
 * routes can answer 503; a connection lost under a job that was already
 * retried reports 08006 (502).
 *
 * Everything is non-blocking.  A target's host name is looked up with
 * evdns on the worker's loop before the driver connects (an engine's
 * client library would call getaddrinfo() and block the worker).  Each
 * connection has one socket event and one timer, allocated once and
 * re-armed only when what the driver waits for changes, so the steady
 * state of a busy connection costs no allocation per query.  The timer is
 * the connect timeout while connecting and the idle timeout afterwards;
 * the idle timeout is checked lazily against the last use.
 *
 * Choosing a connection.  A driver that pipelines (DC_DRV_PIPELINE) may
 * get up to target_pipeline_depth jobs per connection, answered in order.
 * When the target's jobs are quick (under a twentieth of
 * target_stall_timeout on average), a job goes behind those of a busy
 * connection that made progress in the last PIPELINE_WINDOW_US (so not
 * behind a slow statement); else to an idle connection, else it waits for
 * one (or for a new one within max_target_connections).  Under load the
 * server then gets several jobs per read and the worker several answers
 * per wakeup.  The jobs one pass of the event loop gives a connection are
 * flushed together when the pass ends (pool_flush_pass), so the server
 * gets them in one read.  Jobs that did not run (the server skipped them
 * after an earlier one failed, or their connection had to close) go back
 * to the head of the queue.
 *
 * Stalls.  A job sent behind others still waits behind whatever happens
 * to its connection afterwards: a statement that turns out slow, a
 * backend or a socket that stops moving.  So no job waits behind a
 * connection that made no progress (no bytes from the server, no job
 * finished) for target_stall_timeout: a timer that runs while jobs are
 * pipelined (pool_stall_check) moves the jobs behind the head of such a
 * connection to the head of the queue, from where they go to another
 * connection or to a new one within max_target_connections.  Their
 * statements were sent already and will still run there: each leaves a
 * ghost in its place (a cancelled copy, whose answer is dropped), so the
 * driver reads the results it expects and the job is answered exactly
 * once, by its new run.  Read-only jobs only: system database jobs never
 * pipeline.  The stalled connection takes nothing behind its head
 * (c->depth 1) and regains one job of depth per job it finishes.
 *
 * Cancelling a running job closes its connection after the driver's
 * abort (the server stops the statement).  A cancelled job still waiting
 * behind another runs, and its answer is dropped.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "dc.h"
#include "driver.h"
#include "log.h"
#include "pool.h"
#include "rows.h"
#include "shreg.h"
#include "target.h"
#include "util.h"
#include "worker.h"

#define MAX_QUEUE	1024	/* jobs waiting for one target, per worker */
#define PIPELINE_WINDOW_US	2000	/* see target_pipeline_conn() */
#define PIPELINE_FAST_DIV	20	/* quick: svc_us under stall bound / 20 */
#define SYSDB_CONNS	2

/* A job for an older copy of its target's entry (entry_older()). */
#define STALE_JOB_MSG	"Database connection changed while the query " \
	"waited: run it again"

/* SQLSTATEs of client-side connection failures (libpq's own). */
#define SQLSTATE_CANNOT_CONNECT	"08001"
#define SQLSTATE_CONN_FAILURE	"08006"

struct dc_pool_target {
	uint8_t		 id[16];
	int		 is_sysdb;
	uint64_t	 gen;
	const struct dc_driver *drv;
	char		*url;		/* decrypted, never logged */
	struct dc_conn	*conns;
	int		 nconns;
	struct dc_job	*qhead, *qtail;
	int		 qlen;
	unsigned	 quirks;	/* dc_conn_set_quirks() */
	uint64_t	 svc_us;	/* mean time of a job at the head of
					   its connection; 0: none yet */
	struct dc_target_stats *ts;	/* this worker's counters for it */
	unsigned	 privs_logged;	/* dc_conn_privileges() said so, with
					   DC_PRIV_KNOWN */
	struct dc_pool_target *next;
};

/* A driver's state for this pool (driver.h, start/stop). */
struct drvstate {
	const struct dc_driver *drv;
	void		*state;
	struct drvstate	*next;
};

struct dc_pool {
	struct dc_worker *w;
	struct evdns_base *dns;		/* resolves target host names */
	struct event	*flush_ev;	/* end of the loop pass: flush */
	struct event	*stall_ev;	/* pool_stall_check(), while jobs are
					   pipelined */
	struct dc_conn	*to_flush;	/* connections with jobs to flush */
	struct dc_pool_target *targets;
	struct dc_conn	*probes;
	struct drvstate	*drvs;
	dc_pool_first_use_cb first_use;	/* a target's first job here */
	void		*first_use_arg;
};

const uint64_t dc_query_bounds_us[DC_METRIC_QBUCKETS - 1] = {
	250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000,
	1000000
};

const char *const dc_query_phase_names[DC_QP_N] = {
	[DC_QP_QUEUE] = "queue",
	[DC_QP_BEHIND] = "behind",
	[DC_QP_FIRST] = "first_result",
	[DC_QP_TOTAL] = "total",
	[DC_QP_CHECK] = "check",
};

static void	 conn_close(struct dc_conn *c);
static void	 conn_broken(struct dc_conn *c, const char *why);
static void	 job_finish(struct dc_job *j);
static void	 target_kick(struct dc_pool_target *t);
static void	 target_close_stale(struct dc_pool_target *t);
static void	 pool_stall_arm(struct dc_pool *p);

struct dc_pool *
dc_pool_new(struct dc_worker *w)
{
	struct dc_pool *p = calloc(1, sizeof(*p));

	if (p != NULL)
		p->w = w;
	return p;
}

struct dc_worker *
dc_pool_worker(const struct dc_pool *p)
{
	return p->w;
}

void
dc_pool_on_first_use(struct dc_pool *p, dc_pool_first_use_cb cb, void *arg)
{
	p->first_use = cb;
	p->first_use_arg = arg;
}

/* The driver's state for p, started on first use; 0 or DC_ERR. */
static int
pool_driver_start(struct dc_pool *p, const struct dc_driver *drv)
{
	struct drvstate *d;

	if (drv->start == NULL)
		return DC_OK;
	for (d = p->drvs; d != NULL; d = d->next)
		if (d->drv == drv)
			return DC_OK;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return DC_ENOMEM;
	if (drv->start(p, &d->state) != DC_OK) {
		free(d);
		return DC_ERR;
	}
	d->drv = drv;
	d->next = p->drvs;
	p->drvs = d;
	return DC_OK;
}

void *
dc_conn_driver_state(const struct dc_conn *c)
{
	const struct drvstate *d;

	for (d = c->pool->drvs; d != NULL; d = d->next)
		if (d->drv == c->drv)
			return d->state;
	return NULL;
}

/* --- jobs --- */

static void
job_free(struct dc_job *j)
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
	dc_rows_free(j->rows);
	if (j->probe_url != NULL) {
		dc_explicit_bzero(j->probe_url, strlen(j->probe_url));
		free(j->probe_url);
	}
	free(j);
}

static struct dc_job *
job_new(struct dc_pool *p, const struct dc_driver *drv, dc_query_cb cb,
    void *arg)
{
	struct dc_job *j = calloc(1, sizeof(*j) + drv->job_size);

	if (j == NULL)
		return NULL;
	j->pool = p;
	j->cb = cb;
	j->arg = arg;
	return j;
}

static int
job_add(struct dc_job *j, const char *sql, int nparams,
    const char *const *params)
{
	int i = j->nstmts, k;

	if (i >= DC_JOB_MAX_STMTS || (j->sql[i] = strdup(sql)) == NULL)
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

/*
 * Record a failure; the first one of a run is kept.  Engine messages
 * span lines ("...failed: Connection refused\n\tIs the server
 * running..."): fold them into one line.
 */
static void
set_error(struct dc_job *j, int status, const char *msg,
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

void
dc_job_fail(struct dc_job *j, int status, int flags, const char *msg,
    const char *sqlstate)
{
	assert(status == DC_ERR || status == DC_ETIMEOUT ||
	    status == DC_ENOMEM);
	if (j->status != DC_OK)
		return;
	set_error(j, status, msg, sqlstate);
	j->flags = flags;
}

int
dc_job_over_budget(struct dc_job *j, int whole)
{
	char msg[256];

	assert(j->max_bytes > 0);
	if (!whole && j->rows != NULL && j->rows->nrows > 0) {
		j->cut = 1;
		return 0;
	}
	snprintf(msg, sizeof(msg), "a row of the result is larger than "
	    "max_result_bytes (%zu bytes); select fewer or shorter values "
	    "(left(), substring())", j->max_bytes);
	dc_job_fail(j, DC_ERR, 0, msg, "54000");
	return 1;
}

int
dc_job_failed(const struct dc_job *j)
{
	return j->status != DC_OK;
}

/* Forget what a job's earlier attempt produced, before running it again. */
static void
job_reset(struct dc_job *j)
{
	dc_rows_free(j->rows);
	j->rows = NULL;
	j->status = DC_OK;
	j->flags = 0;
	j->error[0] = '\0';
	j->sqlstate[0] = '\0';
	j->c = NULL;
	j->answered = 0;
	j->cut = 0;
	j->head_us = 0;
	j->first_us = 0;
}

/* --- targets --- */

static struct dc_pool_target *
target_find(struct dc_pool *p, const uint8_t id[16], int sysdb)
{
	struct dc_pool_target *t;

	for (t = p->targets; t != NULL; t = t->next)
		if (t->is_sysdb == sysdb && memcmp(t->id, id, 16) == 0)
			return t;
	return NULL;
}

static void
target_set_url(struct dc_pool_target *t, const char *url)
{
	if (t->url != NULL) {
		dc_explicit_bzero(t->url, strlen(t->url));
		free(t->url);
	}
	t->url = url != NULL ? strdup(url) : NULL;
}

static void
target_mark_stale(struct dc_pool_target *t)
{
	struct dc_conn *c;

	for (c = t->conns; c != NULL; c = c->next)
		c->close_needed = 1;
}

/* 1 when t's connections were opened for url. */
static int
url_is(const struct dc_pool_target *t, const char *url)
{
	return t->url != NULL && strcmp(t->url, url) == 0;
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
stat_add(uint64_t *field, int delta)
{
	if (delta >= 0)
		__atomic_add_fetch(field, (uint64_t)delta, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(field, (uint64_t)-delta, __ATOMIC_RELAXED);
}

static void
tstat(struct dc_pool_target *t, size_t off, int delta)
{
	if (t == NULL || t->ts == NULL || t->is_sysdb)
		return;
	stat_add((uint64_t *)((char *)t->ts + off), delta);
}

#define TSTAT(t, field, d) \
	tstat((t), offsetof(struct dc_target_stats, field), (d))
#define WSTAT(p, field, d) \
	stat_add(&(p)->w->stats->field, (d))

static struct dc_pool_target *
target_get(struct dc_pool *p, const uint8_t id[16], uint64_t gen,
    const char *url, const struct dc_driver *drv, int sysdb)
{
	struct dc_pool_target *t = target_find(p, id, sysdb);

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
	if (t->url == NULL || t->gen != gen || t->drv != drv ||
	    (!sysdb && dc_target_is_env(id) && !url_is(t, url))) {
		/* the entry changed under us: new connections, new URL */
		t->gen = gen;
		t->drv = drv;
		t->quirks = 0;
		target_set_url(t, url);
		target_mark_stale(t);
	}
	return t->url != NULL ? t : NULL;
}

/*
 * 1 when e is an older copy of t's entry than the one t follows now: it
 * was resolved before a change (its URL or type updated, DATABASE_URL
 * reloaded) that this worker has applied since, by the master's word
 * (dc_pool_sync) or through a job that carried the newer entry.  Registry
 * entries tell by their generation, which only grows; the environment
 * entry's is fixed, so its URL is compared with what DATABASE_URL says
 * now.
 */
static int
entry_older(struct dc_pool *p, const struct dc_pool_target *t,
    const struct dc_entry *e)
{
	struct dc_entry *cur;
	int older;

	if (t->url == NULL)
		return 0;
	if (!dc_target_is_env(t->id))
		return e->gen < t->gen;
	if (url_is(t, e->url))
		return 0;
	if ((cur = malloc(sizeof(*cur))) == NULL)
		return 0;	/* as before: the job's entry is taken */
	older = dc_target_env_entry(p->w, cur) != DC_OK ||
	    strcmp(cur->url, e->url) != 0;
	dc_explicit_bzero(cur, sizeof(*cur));
	free(cur);
	return older;
}

static void
target_free(struct dc_pool_target *t)
{
	/* the counters go with the target: its slot is free again */
	if (t->ts != NULL && __atomic_load_n(&t->ts->open,
	    __ATOMIC_RELAXED) == 0)
		memset(t->ts, 0, sizeof(*t->ts));
	target_set_url(t, NULL);
	free(t);
}

static struct dc_job *
dequeue(struct dc_pool_target *t)
{
	struct dc_job *j = t->qhead;

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
target_fail_queue(struct dc_pool_target *t, int status, const char *msg,
    const char *sqlstate)
{
	struct dc_job *j;

	while ((j = dequeue(t)) != NULL) {
		set_error(j, status, msg, sqlstate);
		job_finish(j);
	}
}

static void
enqueue(struct dc_pool_target *t, struct dc_job *j)
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
enqueue_head(struct dc_pool_target *t, struct dc_job *j)
{
	j->next = t->qhead;
	t->qhead = j;
	if (t->qtail == NULL)
		t->qtail = j;
	t->qlen++;
}

/* 1 when the target has a connection that is up (idle or busy). */
static int
target_has_live(const struct dc_pool_target *t)
{
	const struct dc_conn *c;

	for (c = t->conns; c != NULL; c = c->next)
		if (c->state != DC_CONN_CONNECTING && !c->close_needed)
			return 1;
	return 0;
}

/* --- connections --- */

static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct dc_conn *c = arg;

	if (!(c->ev_what & EV_PERSIST))
		c->ev_fd = -1;		/* a one-shot event is no longer added */
	c->inuse++;
	c->drv->io(c, what);
	if (--c->inuse == 0 && c->dead) {
		event_free(c->ev);
		event_free(c->timer);
		free(c);
	}
}

void
dc_conn_watch(struct dc_conn *c, int fd, short what, int timeout_ms)
{
	struct timeval tv;

	if (timeout_ms < 0 && c->ev_fd == fd && c->ev_what == what &&
	    (what & EV_PERSIST))
		return;
	if (c->ev_fd != -1)
		event_del(c->ev);
	c->ev_fd = -1;
	if ((fd < 0 && timeout_ms < 0) || c->dead)
		return;
	if (fd < 0)
		what = 0;	/* a timer alone */
	if (c->ev == NULL)
		c->ev = event_new(c->w->base, fd, what, conn_event, c);
	else
		event_assign(c->ev, c->w->base, fd, what, conn_event, c);
	if (c->ev == NULL)
		return;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
	if (event_add(c->ev, timeout_ms >= 0 ? &tv : NULL) == 0) {
		/* ev_fd says "added": a timer alone is -2, never a socket */
		c->ev_fd = fd >= 0 ? fd : -2;
		c->ev_what = what;
	}
}

static void
conn_unlink(struct dc_conn *c)
{
	struct dc_conn **pp = c->t != NULL ? &c->t->conns : &c->pool->probes;

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
conn_drop_url(struct dc_conn *c)
{
	if (c->pending_url != NULL) {
		dc_explicit_bzero(c->pending_url, strlen(c->pending_url));
		free(c->pending_url);
		c->pending_url = NULL;
	}
}

/* Take c off the pool's list of connections to flush when the pass ends. */
static void
conn_unlist_flush(struct dc_conn *c)
{
	struct dc_conn **pp;

	if (!c->flush_pending)
		return;
	for (pp = &c->pool->to_flush; *pp != NULL; pp = &(*pp)->flush_next)
		if (*pp == c) {
			*pp = c->flush_next;
			break;
		}
	c->flush_next = NULL;
	c->flush_pending = 0;
}

static void
conn_close(struct dc_conn *c)
{
	assert(!c->dead);
	conn_unlink(c);
	conn_unlist_flush(c);
	if (c->ev_fd != -1)
		event_del(c->ev);
	c->ev_fd = -1;
	evtimer_del(c->timer);
	c->drv->close(c);
	if (c->t != NULL && c->state != DC_CONN_CONNECTING && !c->sysdb) {
		WSTAT(c->pool, target_conns_open, -1);
		TSTAT(c->t, open, -1);
	}
	conn_drop_url(c);
	c->dead = 1;
	c->job = c->jtail = NULL;
	c->njobs = 0;
	if (c->inuse)
		return;		/* conn_event() frees it */
	if (c->dns_req != NULL) {
		/* its callback is still to come, maybe from inside cancel */
		struct evdns_getaddrinfo_request *req = c->dns_req;

		c->dns_req = NULL;
		c->dns_dead = 1;
		evdns_getaddrinfo_cancel(req);
		return;
	}
	if (c->ev != NULL)
		event_free(c->ev);
	event_free(c->timer);
	free(c);
}

/* Take every job off c, in the order they were sent. */
static struct dc_job *
conn_take_jobs(struct dc_conn *c)
{
	struct dc_job *list = c->job;

	c->job = c->jtail = NULL;
	c->njobs = 0;
	return list;
}

/* Unlink the job whose results came (the first one sent). */
static struct dc_job *
conn_pop_job(struct dc_conn *c)
{
	struct dc_job *j = c->job;

	assert(j != NULL && c->njobs > 0);
	c->job = j->next;
	if (c->job == NULL)
		c->jtail = NULL;
	c->njobs--;
	j->next = NULL;
	j->c = NULL;
	if (c->job != NULL && c->job->head_us == 0)
		c->job->head_us = dc_now_us();
	return j;
}

/*
 * 1 when c may take a job: its entry did not change, and what its
 * driver set up still matches the configuration.
 */
static int
conn_current(const struct dc_conn *c)
{
	if (c->close_needed || c->t == NULL || c->gen != c->t->gen)
		return 0;
	return c->drv->current == NULL || c->drv->current(c);
}

void
dc_conn_progress(struct dc_conn *c)
{
	c->io_us = dc_now_us();
	if (c->job != NULL && c->job->first_us == 0)
		c->job->first_us = c->io_us;
}

void
dc_conn_idle(struct dc_conn *c)
{
	struct timeval tv = { c->w->cfg->target_idle_timeout, 0 };
	struct dc_pool_target *t = c->t;

	assert(c->njobs == 0 && t != NULL);
	c->job = c->jtail = NULL;
	c->blocked = 0;
	c->state = DC_CONN_IDLE;
	c->last_used_ms = dc_now_ms();
	if (!conn_current(c)) {
		conn_close(c);
		target_kick(t);
		return;
	}
	if (!evtimer_pending(c->timer, NULL))
		evtimer_add(c->timer, &tv);
	target_kick(t);
}

void
dc_conn_close(struct dc_conn *c)
{
	struct dc_pool_target *t = c->t;

	assert(c->njobs == 0);
	conn_close(c);
	if (t != NULL)
		target_kick(t);
}

/*
 * The jobs given to one connection in one pass of the event loop are
 * flushed together once every event of the pass ran: the server gets
 * them in one segment, and (PostgreSQL, one Sync) answers them with one
 * flush, so one wakeup of its backend and one of ours carry them all.
 */
static void
pool_flush_pass(evutil_socket_t fd, short what, void *arg)
{
	struct dc_pool *p = arg;
	struct dc_conn *c;

	while ((c = p->to_flush) != NULL)
		if (dc_conn_flush_now(c) != DC_OK)
			conn_broken(c, c->drv->error(c));
}

int
dc_conn_flush_now(struct dc_conn *c)
{
	conn_unlist_flush(c);
	return c->drv->flush(c);
}

void
dc_conn_flush_later(struct dc_conn *c)
{
	struct dc_pool *p = c->pool;

	assert(c->drv->flush != NULL);
	if (c->flush_pending)
		return;
	if (p->flush_ev == NULL &&
	    (p->flush_ev = event_new(p->w->base, -1, 0, pool_flush_pass,
	    p)) == NULL) {
		/* no end-of-pass event: flush at once, one job at a time */
		if (c->drv->flush(c) != DC_OK)
			log_warn("flushing a target connection failed");
		return;
	}
	c->flush_pending = 1;
	c->flush_next = p->to_flush;
	p->to_flush = c;
	event_active(p->flush_ev, EV_TIMEOUT, 0);
}

unsigned
dc_conn_quirks(const struct dc_conn *c)
{
	return c->t != NULL ? c->t->quirks : 0;
}

void
dc_conn_set_quirks(struct dc_conn *c, unsigned quirks)
{
	if (c->t != NULL)
		c->t->quirks = quirks;
}

void
dc_conn_scrub(const struct dc_conn *c, const char *prefix, const char *msg,
    char *out, size_t outsz)
{
	const char *url = c->t != NULL ? c->t->url : c->job != NULL ?
	    c->job->probe_url : c->pending_url;
	char buf[512];

	snprintf(buf, sizeof(buf), "%s%s", prefix != NULL ? prefix : "",
	    msg != NULL ? msg : "");
	dc_scrub_password(buf, url, out, outsz);
}

static int
conn_send(struct dc_conn *c, struct dc_job *j)
{
	j->c = c;
	j->next = NULL;
	j->answered = 0;
	j->sent_us = dc_now_us();
	memset(j->drv, 0, c->drv->job_size);
	if (c->job == NULL) {
		c->job = j;
		c->progress_us = j->sent_us;
		j->head_us = j->sent_us;
	} else {
		c->jtail->next = j;
		WSTAT(c->pool, queries_pipelined, 1);
		pool_stall_arm(c->pool);
	}
	c->jtail = j;
	c->njobs++;
	c->state = DC_CONN_BUSY;
	/* nothing goes behind an unusual job; its session ends with it */
	if (j->unusual)
		c->close_needed = 1;
	return c->drv->submit(c, j);
}

/*
 * Put jobs that did not run to completion back at the head of their
 * target's queue, in the order they were sent; a cancelled one is freed.
 */
static void
requeue_jobs(struct dc_pool_target *t, struct dc_job *list)
{
	struct dc_job *j, *rev = NULL;

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
		WSTAT(j->pool, queries_requeued, 1);
	}
}

/*
 * The connection broke under a job.  A read-only target job is run again
 * once on a fresh connection; a system database job only when nothing of
 * it was answered (a COMMIT may have happened).
 */
static void
conn_broken(struct dc_conn *c, const char *why)
{
	struct dc_job *j, *list, *again = NULL, **againp = &again;
	struct dc_job *failed = NULL, **failedp = &failed;
	struct dc_pool_target *t = c->t;
	char msg[512], lost[560];

	dc_conn_scrub(c, "", why, msg, sizeof(msg));
	list = conn_take_jobs(c);
	conn_close(c);
	while ((j = list) != NULL) {
		list = j->next;
		j->next = NULL;
		if (!j->retried && !j->cancelled && t != NULL &&
		    (!t->is_sysdb || !j->answered)) {
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

void
dc_conn_broken(struct dc_conn *c, const char *why)
{
	conn_broken(c, why);
}

void
dc_conn_restart_target(struct dc_conn *c)
{
	struct dc_pool_target *t = c->t;
	struct dc_job *list;

	assert(t != NULL);
	target_mark_stale(t);
	list = conn_take_jobs(c);
	conn_close(c);
	target_close_stale(t);
	requeue_jobs(t, list);
	target_kick(t);
}

/*
 * How long j took once it was at the head of c (not waiting behind the
 * jobs before it), averaged into its target's svc_us.  Not a catalog
 * read: a worker's first job on a target is the policy catalog's (some
 * 4800 rows, hundreds of ms), which would keep a quick target's queries
 * from pipelining for the next forty of them.
 */
static void
job_timed(struct dc_conn *c, const struct dc_job *j)
{
	uint64_t now = dc_now_us(), start, svc;
	struct dc_pool_target *t = c->t;

	start = j->sent_us > c->progress_us ? j->sent_us : c->progress_us;
	svc = now > start ? now - start : 1;
	if (j->kind != DC_JOB_CATALOG)
		t->svc_us = t->svc_us == 0 ? svc : (t->svc_us * 7 + svc) / 8;
	c->progress_us = now;
	/* a connection that stalled regains one job of depth per job done */
	if (c->depth > 0 && ++c->depth >= c->w->cfg->target_pipeline_depth)
		c->depth = 0;
}

void
dc_conn_job_done(struct dc_conn *c, int requeue)
{
	struct dc_pool_target *t = c->t;
	struct dc_job *j = conn_pop_job(c);

	job_timed(c, j);
	if (requeue) {
		/* refused because of the job before it: run it again */
		requeue_jobs(t, j);
		j = NULL;
	}
	/* the connection first, so the callback may reuse it */
	if (c->job == NULL) {
		if (!c->blocked)
			dc_conn_idle(c);
		else if (c->drv->reset(c) != DC_OK) {
			conn_close(c);
			target_kick(t);
		}
	} else if (j == NULL)
		target_kick(t);
	if (j != NULL)
		job_finish(j);
}

void
dc_conn_answer_and_close(struct dc_conn *c)
{
	struct dc_job *j = conn_pop_job(c), *rest;
	struct dc_pool_target *t = c->t;

	log_debug("row cap reached while the statement still runs; closing "
	    "its connection");
	rest = conn_take_jobs(c);
	if (c->drv->abort != NULL)
		c->drv->abort(c);
	conn_close(c);
	requeue_jobs(t, rest);
	target_kick(t);
	job_finish(j);
}

static void
connect_failed(struct dc_conn *c, const char *msg)
{
	struct dc_pool_target *t = c->t;
	struct dc_job *j;

	if (c->probe) {
		j = c->job;
		c->job = NULL;
		conn_close(c);
		set_error(j, DC_EUNAVAIL, msg, SQLSTATE_CANNOT_CONNECT);
		job_finish(j);
		return;
	}
	if (!t->is_sysdb) {
		WSTAT(c->pool, target_conns_failed, 1);
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

void
dc_conn_connect_failed(struct dc_conn *c, const char *msg)
{
	connect_failed(c, msg);
}

int
dc_conn_privileges(struct dc_conn *c, unsigned privs)
{
	struct dc_pool_target *t = c->t;
	const char *mode = c->w->cfg->privileged_targets;
	char ids[DC_UUID_STR_LEN + 1], names[160], msg[400];
	int seen;

	assert(c->state == DC_CONN_CONNECTING);
	if (c->probe || t->is_sysdb)
		return DC_OK;
	privs |= DC_PRIV_KNOWN;
	/*
	 * Logged once: by the first worker that finds these privileges (a
	 * worker that finds what another one's counters hold stays quiet,
	 * unless both look at the same instant), and again when they
	 * change.  privs_logged covers a worker without a counter slot.
	 */
	seen = dc_shreg_target_privileges_seen(c->w->reg, t->id, privs);
	if (t->ts != NULL)
		__atomic_store_n(&t->ts->privileges, (uint64_t)privs,
		    __ATOMIC_RELAXED);
	if (privs == DC_PRIV_KNOWN)
		return DC_OK;
	dc_priv_format(privs, names, sizeof(names));
	dc_uuid_format(t->id, ids);
	if (!seen && t->privs_logged != privs) {
		t->privs_logged = privs;
		if (strcmp(mode, "allow") == 0)
			log_info("target %s: its role can do more than read: %s",
			    ids, names);
		else
			log_warn("target %s: its role can do more than read: %s "
			    "(privileged_targets = %s)", ids, names, mode);
	}
	if (strcmp(mode, "refuse") != 0)
		return DC_OK;
	snprintf(msg, sizeof(msg), "the target database's role can do more "
	    "than read (%s) and privileged_targets = refuse: connect it as a "
	    "read-only role", names);
	conn_close(c);
	target_fail_queue(t, DC_EPERM, msg, NULL);
	return DC_EPERM;
}

void
dc_conn_ready(struct dc_conn *c)
{
	struct dc_job *j;

	assert(c->state == DC_CONN_CONNECTING);
	evtimer_del(c->timer);
	if (c->probe) {		/* it connected, that is all */
		j = c->job;
		c->job = NULL;
		conn_close(c);
		job_finish(j);
		return;
	}
	c->state = DC_CONN_IDLE;
	if (!c->sysdb) {
		WSTAT(c->pool, target_conns_open, 1);
		WSTAT(c->pool, target_conns_opened, 1);
		TSTAT(c->t, open, 1);
		TSTAT(c->t, opened, 1);
	}
	dc_conn_idle(c);
}

/* Connect timeout while connecting; lazy idle timeout afterwards. */
static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dc_conn *c = arg;
	const struct dc_config *cfg = c->w->cfg;
	uint64_t idle_ms = (uint64_t)cfg->target_idle_timeout * 1000, now, left;
	struct timeval tv;
	char msg[128];

	if (c->state == DC_CONN_CONNECTING) {
		snprintf(msg, sizeof(msg), "could not connect to the database: "
		    "timeout after %d s", cfg->connect_timeout);
		connect_failed(c, msg);
		return;
	}
	now = dc_now_ms();
	if (c->state == DC_CONN_IDLE && now - c->last_used_ms >= idle_ms) {
		log_debug("closing idle target connection");
		conn_close(c);
		return;
	}
	/* used since: look again when it may have been idle long enough */
	left = c->state == DC_CONN_IDLE ? idle_ms - (now - c->last_used_ms) :
	    idle_ms;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(c->timer, &tv);
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

/* The driver starts connecting c; on failure err says why. */
static int
conn_start(struct dc_conn *c, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	if (c->drv->connect(c, url, hostaddr, err, errsz) != DC_OK) {
		if (err[0] == '\0')
			dc_strlcpy(err, "could not connect to the database",
			    errsz);
		return DC_ERR;
	}
	return DC_OK;
}

/*
 * The host name of a connection being opened was looked up (evdns, on
 * the worker's loop: a slow DNS server delays only this connection).
 */
static void
conn_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct dc_conn *c = arg;
	char err[512], msg[600];

	if (result == 0)
		result = first_address(ai, c->dns_addr, sizeof(c->dns_addr));
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	c->dns_req = NULL;
	if (c->dns_dead) {	/* closed meanwhile */
		if (c->ev != NULL)
			event_free(c->ev);
		event_free(c->timer);
		free(c);
		return;
	}
	if (c->dns_in_open) {	/* answered at once: conn_open goes on */
		c->dns_err = result;
		return;
	}
	if (result != 0) {
		snprintf(msg, sizeof(msg), "could not connect to the database: "
		    "could not resolve the host name: %s",
		    evutil_gai_strerror(result));
		connect_failed(c, msg);
		return;
	}
	err[0] = '\0';
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
conn_lookup(struct dc_conn *c, struct evdns_base *dns, const char *host,
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

/*
 * A new connection of target t (NULL: a probe of job j) with driver drv,
 * linked and connecting, or NULL with err set.
 */
static struct dc_conn *
conn_open(struct dc_pool *p, struct dc_pool_target *t,
    const struct dc_driver *drv, const char *url, struct dc_job *probe,
    char *err, size_t errsz)
{
	struct timeval tv = { p->w->cfg->connect_timeout, 0 };
	struct evdns_base *dns;
	struct dc_conn *c;
	char *host = NULL;
	int rc;

	assert(drv->conn_size >= sizeof(struct dc_conn));
	err[0] = '\0';
	if (p->w->offline) {
		/* a detached worker (worker.h) reaches no database */
		dc_strlcpy(err, "no database is reachable from a detached "
		    "worker", errsz);
		return NULL;
	}
	if (pool_driver_start(p, drv) != DC_OK ||
	    (c = calloc(1, drv->conn_size)) == NULL) {
		dc_strlcpy(err, "out of memory", errsz);
		return NULL;
	}
	c->drv = drv;
	c->pool = p;
	c->w = p->w;
	c->t = t;
	c->probe = t == NULL;
	c->sysdb = t != NULL && t->is_sysdb;
	c->job = probe;
	c->ev_fd = -1;
	c->state = DC_CONN_CONNECTING;
	if ((c->timer = evtimer_new(p->w->base, conn_timer, c)) == NULL) {
		free(c);
		dc_strlcpy(err, "out of memory", errsz);
		return NULL;
	}
	/*
	 * A host name is looked up first: the engine's library would call
	 * getaddrinfo() while connecting and block the whole worker on DNS.
	 */
	if (drv->url_host != NULL)
		host = drv->url_host(url);
	if (host != NULL && (dns = pool_dns(p)) != NULL)
		rc = conn_lookup(c, dns, host, url, err, errsz);
	else
		rc = conn_start(c, url, NULL, err, errsz);
	free(host);
	if (rc != DC_OK) {
		drv->close(c);
		if (c->ev != NULL)
			event_free(c->ev);
		event_free(c->timer);
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
	evtimer_add(c->timer, &tv);
	return c;
}

/*
 * A cancelled copy of j to stand in its place on its connection: the
 * driver reads the results j's statements produce into it, and the pool
 * drops them.  It owns nothing (no statements, no rows); NULL when out of
 * memory.
 */
static struct dc_job *
job_ghost(const struct dc_job *j)
{
	struct dc_job *g;
	size_t jsz = j->c->drv->job_size;

	assert(j->rows == NULL && !j->answered);
	if ((g = malloc(sizeof(*g) + jsz)) == NULL)
		return NULL;
	memcpy(g, j, sizeof(*g) + jsz);
	memset(g->sql, 0, sizeof(g->sql));
	memset(g->params, 0, sizeof(g->params));
	g->nstmts = 0;
	g->probe_url = NULL;
	g->cb = NULL;
	g->arg = NULL;
	g->cancelled = 1;
	return g;
}

/*
 * c made no progress for the stall bound while jobs wait behind its
 * head: move them to the head of the queue, each leaving a ghost in its
 * place, and let c take nothing behind its head until it catches up.
 * The head itself stays: it is running (or its results are on their way),
 * and moving it would run a slow statement twice.  Returns the number of
 * jobs moved.
 */
static int
conn_unstall(struct dc_conn *c)
{
	struct dc_pool_target *t = c->t;
	struct dc_job *j, *g, **pp, *moved = NULL, **mp = &moved;
	int n = 0;

	assert(c->state == DC_CONN_BUSY && c->job != NULL && !t->is_sysdb);
	for (pp = &c->job->next; (j = *pp) != NULL; pp = &(*pp)->next) {
		if (j->cancelled || j->answered || j->rows != NULL ||
		    (g = job_ghost(j)) == NULL)
			continue;	/* its answer is dropped anyway, or no
					   memory: it stays */
		g->next = j->next;
		*pp = g;
		if (c->jtail == j)
			c->jtail = g;
		j->next = NULL;
		job_reset(j);
		j->moved++;
		*mp = j;
		mp = &j->next;
		n++;
	}
	c->depth = 1;
	if (n == 0)
		return 0;
	WSTAT(c->pool, target_conns_stalled, 1);
	WSTAT(c->pool, queries_moved, n);
	/* to the head of the queue, in the order they were sent */
	for (mp = &moved, g = NULL; (j = *mp) != NULL; mp = &j->next)
		g = j;
	g->next = t->qhead;
	t->qhead = moved;
	if (t->qtail == NULL)
		t->qtail = g;
	t->qlen += n;
	return n;
}

/* 1 when c made no progress for the stall bound (bound_us) by now. */
static int
conn_stalled(const struct dc_conn *c, uint64_t now, uint64_t bound_us)
{
	uint64_t last = c->io_us > c->progress_us ? c->io_us : c->progress_us;

	return c->state == DC_CONN_BUSY && now - last >= bound_us;
}

/*
 * 1 when jobs moved off c could go somewhere else: another connection
 * that is idle or keeps making progress, or a new one within the cap.
 * Else moving them would only run their statements twice, and they
 * would still wait for c.
 */
static int
target_can_take(const struct dc_pool_target *t, const struct dc_conn *c,
    int limit, uint64_t now, uint64_t bound_us)
{
	const struct dc_conn *o;

	if (t->nconns < limit)
		return 1;
	for (o = t->conns; o != NULL; o = o->next)
		if (o != c && !o->close_needed && (o->state == DC_CONN_IDLE ||
		    (o->state == DC_CONN_BUSY && !o->blocked &&
		    !conn_stalled(o, now, bound_us))))
			return 1;
	return 0;
}

/*
 * The stall timer: every connection that has jobs behind its head and
 * made no progress (bytes from the server, a job finished, or its head
 * sent) for target_stall_timeout gives them up (conn_unstall).  Runs
 * every quarter of the bound while some connection has jobs pipelined,
 * so no job waits behind a stalled one much longer than the bound.
 */
static void
pool_stall_check(evutil_socket_t fd, short what, void *arg)
{
	struct dc_pool *p = arg;
	uint64_t now = dc_now_us();
	uint64_t bound = (uint64_t)p->w->cfg->target_stall_timeout * 1000;
	struct dc_pool_target *t;
	struct dc_conn *c;
	int again = 0, n;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb)
			continue;
		n = 0;
		for (c = t->conns; c != NULL; c = c->next) {
			if (c->state != DC_CONN_BUSY || c->njobs < 2)
				continue;
			if (conn_stalled(c, now, bound) && target_can_take(t, c,
			    p->w->cfg->max_target_connections, now, bound))
				n += conn_unstall(c);
			else
				again = 1;
		}
		if (n > 0) {
			log_debug("%d queries moved off target connections that "
			    "made no progress for %d ms", n,
			    p->w->cfg->target_stall_timeout);
			target_kick(t);
		}
	}
	if (again)
		pool_stall_arm(p);
}

/* Run pool_stall_check() soon, unless it is due already. */
static void
pool_stall_arm(struct dc_pool *p)
{
	int ms = p->w->cfg->target_stall_timeout / 4;
	struct timeval tv;

	if (p->stall_ev == NULL && (p->stall_ev = evtimer_new(p->w->base,
	    pool_stall_check, p)) == NULL)
		return;		/* no memory: jobs wait as they did */
	if (evtimer_pending(p->stall_ev, NULL))
		return;
	if (ms < 1)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(p->stall_ev, &tv);
}

/*
 * A busy connection that may take one more job behind the ones it runs,
 * or NULL.  Only where that pays: the target's jobs are quick (svc_us
 * under a PIPELINE_FAST_DIV'th of the stall bound, so slow analytic
 * statements get connections of their own and run side by side, and a
 * job rarely waits long enough behind another to be moved), and the
 * connection made progress (was given work while idle, or finished a
 * job) within PIPELINE_WINDOW_US, so nothing waits behind a statement
 * that turned out slow.  A connection that stalled takes fewer (c->depth)
 * until it catches up.  The least loaded such connection.  Never when the driver or the target cannot
 * (a transaction-pooling proxy may change the server session between
 * two jobs: DC_QUIRK_NO_PIPELINE).
 */
static struct dc_conn *
target_pipeline_conn(struct dc_pool_target *t, int depth, int stall_ms)
{
	struct dc_conn *c, *best = NULL;
	uint64_t now, fast;

	fast = (uint64_t)stall_ms * 1000 / PIPELINE_FAST_DIV;
	if (t->is_sysdb || !(t->drv->caps & DC_DRV_PIPELINE) ||
	    (t->quirks & DC_QUIRK_NO_PIPELINE) || depth < 2 ||
	    t->svc_us == 0 || t->svc_us > fast)
		return NULL;
	now = dc_now_us();
	for (c = t->conns; c != NULL; c = c->next) {
		if (c->state != DC_CONN_BUSY || c->blocked || c->njobs == 0 ||
		    c->njobs >= (c->depth > 0 && c->depth < depth ? c->depth :
		    depth) || now - c->progress_us >
		    PIPELINE_WINDOW_US || !conn_current(c))
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
target_kick(struct dc_pool_target *t)
{
	struct dc_pool *p = NULL;
	struct dc_conn *c, *next;
	struct dc_job *j;
	char err[512];
	int connecting = 0, limit;

	while ((j = t->qhead) != NULL) {
		p = j->pool;
		/* behind a busy connection that keeps up, then an idle one */
		c = target_pipeline_conn(t, p->w->cfg->target_pipeline_depth,
		    p->w->cfg->target_stall_timeout);
		if (c == NULL)
			for (c = t->conns; c != NULL; c = c->next)
				if (c->state == DC_CONN_IDLE && conn_current(c))
					break;
		if (c == NULL)
			break;
		dequeue(t);
		if (conn_send(c, j) != DC_OK)
			conn_broken(c, c->drv->error(c));
	}
	if (t->qhead == NULL || p == NULL)
		return;
	/* idle ones that may not take a job only take a slot: close them */
	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == DC_CONN_IDLE && !conn_current(c))
			conn_close(c);
		else if (c->state == DC_CONN_CONNECTING)
			connecting++;
	}
	limit = t->is_sysdb ? SYSDB_CONNS : p->w->cfg->max_target_connections;
	for (j = t->qhead; j != NULL && connecting > 0; j = j->next)
		connecting--;	/* jobs already covered by a connect */
	for (; j != NULL && t->nconns < limit; j = j->next) {
		if (conn_open(p, t, t->drv, t->url, NULL, err,
		    sizeof(err)) == NULL) {
			if (!target_has_live(t))
				target_fail_queue(t, DC_EUNAVAIL, err,
				    SQLSTATE_CANNOT_CONNECT);
			return;
		}
	}
}

void
dc_query_phase_add(struct dc_worker_stats *st, int phase, uint64_t us)
{
	int b;

	assert(phase >= 0 && phase < DC_QP_N);
	for (b = 0; b < DC_METRIC_QBUCKETS - 1; b++)
		if (us <= dc_query_bounds_us[b])
			break;
	__atomic_add_fetch(&st->query_phase_bucket[phase][b], 1,
	    __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->query_phase_us_sum[phase], us,
	    __ATOMIC_RELAXED);
	/* only this worker writes its block: no compare-and-swap needed */
	if (us > __atomic_load_n(&st->query_phase_us_max[phase],
	    __ATOMIC_RELAXED))
		__atomic_store_n(&st->query_phase_us_max[phase], us,
		    __ATOMIC_RELAXED);
}

/*
 * Where a target query's time went, from when it was queued: until it
 * was (last) sent, behind other queries on its connection, until the
 * first bytes of its results, until its answer.  A query that never got
 * a connection spent all of it queued.
 */
static void
job_timing(const struct dc_job *j)
{
	uint64_t now = dc_now_us(), sent, head, first, q = j->queued_us;
	struct dc_worker_stats *st = j->pool->w->stats;

	sent = j->sent_us >= q ? j->sent_us : now;
	head = j->head_us >= sent ? j->head_us : sent;
	first = j->first_us >= head ? j->first_us : now;
	dc_query_phase_add(st, DC_QP_QUEUE, sent - q);
	dc_query_phase_add(st, DC_QP_BEHIND, head - sent);
	dc_query_phase_add(st, DC_QP_FIRST, first - q);
	dc_query_phase_add(st, DC_QP_TOTAL, now - q);
	log_debug("query timing: queued %.3f ms, behind others %.3f ms, "
	    "first result %.3f ms, total %.3f ms (status %d%s%s)",
	    (double)(sent - q) / 1e3, (double)(head - sent) / 1e3,
	    (double)(first - q) / 1e3, (double)(now - q) / 1e3, j->status,
	    j->retried ? ", retried" : "", j->moved ? ", moved" : "");
}

static void
job_finish(struct dc_job *j)
{
	struct dc_qresult r;
	int ok = j->status == DC_OK;

	memset(&r, 0, sizeof(r));
	r.status = j->status;
	r.rows = ok ? j->rows : NULL;
	r.error = !ok ? j->error : NULL;
	r.sqlstate = j->sqlstate[0] ? j->sqlstate : NULL;
	r.retried = j->retried;
	r.lost = j->status == DC_EUNAVAIL &&
	    strcmp(j->sqlstate, SQLSTATE_CONN_FAILURE) == 0;
	r.no_table = j->status == DC_ERR && (j->flags & DC_JOBF_NO_TABLE);
	if (r.rows != NULL && j->max_rows > 0 && r.rows->nrows > j->max_rows)
		r.truncated = 1;
	if (r.rows != NULL && j->cut)
		r.truncated = r.cut_bytes = 1;
	if (j->probe_url == NULL && !j->cancelled && j->t != NULL &&
	    !j->t->is_sysdb) {
		job_timing(j);
		if (ok) {
			WSTAT(j->pool, queries_ok, 1);
			TSTAT(j->t, queries_ok, 1);
		} else {
			WSTAT(j->pool, queries_failed, 1);
			TSTAT(j->t, queries_failed, 1);
		}
	}
	if (j->cb != NULL)
		j->cb(&r, j->arg);
	job_free(j);
}

/* --- public --- */

/* Queue a job on its target; the callback may run before this returns. */
static int
job_submit(struct dc_pool_target *t, struct dc_job *j, struct dc_job **jobp)
{
	if (t->qlen >= MAX_QUEUE) {
		job_free(j);
		return DC_EFULL;
	}
	j->t = t;
	j->queued_us = dc_now_us();
	enqueue(t, j);
	if (jobp != NULL)
		*jobp = j;
	target_kick(t);
	return DC_OK;
}

int
dc_pool_query(struct dc_pool *p, const struct dc_entry *e, int kind,
    const char *sql, int nparams, const char *const *params, dc_query_cb cb,
    void *arg, struct dc_job **jobp)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct dc_pool_target *t;
	struct dc_job *j;
	int unusual;

	unusual = (kind & DC_JOB_UNUSUAL) != 0;
	kind &= ~DC_JOB_UNUSUAL;
	assert(kind == DC_JOB_READ || kind == DC_JOB_CATALOG);
	assert(!unusual || kind == DC_JOB_READ);
	if (drv == NULL)
		return DC_EINVAL;
	if (p->first_use != NULL && target_find(p, e->id, 0) == NULL)
		p->first_use(e->id, p->first_use_arg);
	if ((t = target_find(p, e->id, 0)) != NULL && entry_older(p, t, e)) {
		/*
		 * The pool never goes back to an older entry: its URL may
		 * hold an old password, point at a database moved away, or
		 * name another role.  Nor does the job run on the newer one
		 * instead: its statement was judged against the catalog (and
		 * a question's SQL written from the schema) of the database
		 * the old entry named, and what a catalog admits another may
		 * not.  So it fails as a job whose target changed under it,
		 * and the client asks again, against the entry as it is now.
		 */
		if (jobp != NULL)
			*jobp = NULL;
		if ((j = job_new(p, drv, cb, arg)) == NULL)
			return DC_ENOMEM;
		log_debug("a job for an older entry of a target: refused");
		set_error(j, DC_ENOENT, STALE_JOB_MSG, NULL);
		job_finish(j);
		return DC_OK;
	}
	t = target_get(p, e->id, e->gen, e->url, drv, 0);
	if (t == NULL || (j = job_new(p, drv, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->kind = kind;
	j->unusual = unusual;
	if (job_add(j, sql, nparams, params) != DC_OK) {
		job_free(j);
		return DC_ENOMEM;
	}
	/* rows one at a time, capped whatever the statement says */
	if (kind == DC_JOB_READ) {
		j->max_rows = p->w->cfg->max_rows;
		j->max_bytes = (size_t)p->w->cfg->max_result_bytes;
	}
	return job_submit(t, j, jobp);
}

int
dc_pool_warm(struct dc_pool *p, const struct dc_entry *e, int n)
{
	const struct dc_driver *drv = dc_driver_find(e->type);
	struct dc_pool_target *t;
	char err[512];
	int started = 0;

	if (drv == NULL || ((t = target_find(p, e->id, 0)) != NULL &&
	    entry_older(p, t, e)) ||
	    (t = target_get(p, e->id, e->gen, e->url, drv, 0)) == NULL)
		return 0;	/* never back to an older entry (entry_older) */
	if (n > p->w->cfg->max_target_connections)
		n = p->w->cfg->max_target_connections;
	/* a failed connect is counted and logged where it fails */
	while (t->nconns < n && conn_open(p, t, drv, t->url, NULL, err,
	    sizeof(err)) != NULL)
		started++;
	return started;
}

int
dc_pool_knows(struct dc_pool *p, const uint8_t id[16])
{
	return target_find(p, id, 0) != NULL;
}

int
dc_pool_connecting(const struct dc_pool *p)
{
	const struct dc_pool_target *t;
	const struct dc_conn *c;
	int n = 0;

	for (t = p->targets; t != NULL; t = t->next)
		for (c = t->conns; c != NULL; c = c->next)
			if (c->state == DC_CONN_CONNECTING)
				n++;
	return n;
}

int
dc_pool_sysdb(struct dc_pool *p, int nstmts, const char *const *sql,
    const int *nparams, const char *const *const *params, dc_query_cb cb,
    void *arg, struct dc_job **jobp)
{
	static const uint8_t zero[16];
	const struct dc_driver *drv = dc_driver_find("postgresql");
	struct dc_pool_target *t;
	struct dc_job *j;
	int i;

	assert(drv != NULL && (drv->caps & DC_DRV_SYSDB));
	if (nstmts < 1 || nstmts > DC_JOB_MAX_STMTS)
		return DC_EINVAL;
	t = target_get(p, zero, 1, p->w->cfg->system_database_url, drv, 1);
	if (t == NULL || (j = job_new(p, drv, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->kind = DC_JOB_SYSDB;
	for (i = 0; i < nstmts; i++)
		if (job_add(j, sql[i], nparams[i], params[i]) != DC_OK) {
			job_free(j);
			return DC_ENOMEM;
		}
	return job_submit(t, j, jobp);
}

int
dc_pool_probe(struct dc_pool *p, const char *url, dc_query_cb cb, void *arg,
    struct dc_job **jobp)
{
	const char *type = dc_url_type(url);
	const struct dc_driver *drv = type != NULL ? dc_driver_find(type) :
	    NULL;
	struct dc_job *j;
	struct dc_conn *c;
	char err[512];

	if (jobp != NULL)
		*jobp = NULL;
	if (drv == NULL)
		return DC_EINVAL;
	if ((j = job_new(p, drv, cb, arg)) == NULL)
		return DC_ENOMEM;
	if ((j->probe_url = strdup(url)) == NULL) {
		job_free(j);
		return DC_ENOMEM;
	}
	if ((c = conn_open(p, NULL, drv, j->probe_url, j, err,
	    sizeof(err))) == NULL) {
		/* the driver refused the URL itself: that is the answer */
		set_error(j, DC_EUNAVAIL, err, SQLSTATE_CANNOT_CONNECT);
		job_finish(j);
		return DC_OK;
	}
	j->c = c;
	if (jobp != NULL)
		*jobp = j;
	return DC_OK;
}

void
dc_pool_cancel(struct dc_job *j)
{
	struct dc_job **pp, *prev = NULL;
	struct dc_pool_target *t = j->t;

	j->cb = NULL;
	if (j->c != NULL) {
		struct dc_conn *c = j->c;
		struct dc_job *rest;

		if (c->probe) {
			/* a connection check: stop connecting */
			c->job = NULL;
			conn_close(c);
			job_free(j);
			return;
		}
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
		if (c->drv->abort != NULL)
			c->drv->abort(c);
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
target_close_stale(struct dc_pool_target *t)
{
	struct dc_conn *c, *next;

	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->close_needed && c->state == DC_CONN_IDLE)
			conn_close(c);
	}
}

/*
 * The environment entry is not in the shared registry: it is current
 * while DATABASE_URL still names the URL its connections were opened
 * for.  Returns 1 current, 0 changed (e filled), -1 gone.
 */
static int
env_entry_state(struct dc_pool *p, const struct dc_pool_target *t,
    struct dc_entry *e)
{
	if (dc_target_env_entry(p->w, e) != DC_OK)
		return -1;
	return url_is(t, e->url) ? 1 : 0;
}

void
dc_pool_sync(struct dc_pool *p)
{
	struct dc_pool_target *t, **pp;
	const struct dc_driver *drv;
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
		drv = state == 0 ? dc_driver_find(e->type) : NULL;
		if (drv != NULL) {
			if (!dc_target_is_env(t->id))
				t->gen = e->gen;
			t->drv = drv;
			t->quirks = 0;
			target_set_url(t, e->url);
			dc_explicit_bzero(e->url, sizeof(e->url));
			/*
			 * What waits was submitted with the older entry (a
			 * newer one would have moved t already): refused,
			 * as entry_older() says for what comes later.
			 */
			target_fail_queue(t, DC_ENOENT, STALE_JOB_MSG, NULL);
			target_kick(t);
			pp = &t->next;
			continue;
		}
		/* the entry is gone: nothing may run on it any more */
		target_fail_queue(t, DC_ENOENT, "Database connection not "
		    "found: it was removed while the query waited", NULL);
		if (t->conns == NULL) {
			*pp = t->next;
			target_free(t);
			continue;
		}
		pp = &t->next;
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

void
dc_pool_invalidate(struct dc_pool *p, const uint8_t *id)
{
	struct dc_pool_target *t;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb || (id != NULL && memcmp(t->id, id, 16) != 0))
			continue;
		target_mark_stale(t);
		target_close_stale(t);
	}
}

void
dc_pool_free(struct dc_pool *p)
{
	struct dc_pool_target *t;
	struct drvstate *d;
	struct dc_job *j;

	while (p->probes != NULL) {
		j = p->probes->job;
		p->probes->job = NULL;
		conn_close(p->probes);
		if (j != NULL)
			job_free(j);
	}
	while ((t = p->targets) != NULL) {
		p->targets = t->next;
		while (t->conns != NULL) {
			struct dc_job *list = conn_take_jobs(t->conns);

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
	while ((d = p->drvs) != NULL) {
		p->drvs = d->next;
		d->drv->stop(d->state);
		free(d);
	}
	if (p->flush_ev != NULL)
		event_free(p->flush_ev);
	if (p->stall_ev != NULL)
		event_free(p->stall_ev);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 1);	/* calls back closed lookups */
	free(p);
}
