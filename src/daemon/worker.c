/*
 * worker.c - a worker process.
 *
 * After fork the worker builds its own event base and evhttp on the
 * listening sockets it inherited (every listen line), and a bufferevent on its channel to the
 * master.  It never touches the master's event base or system-database
 * connection (their fds were closed for it before this runs).  Signals
 * that the master relays (HUP, INT, QUIT, USR1) are ignored here: the
 * master turns them into channel messages.  When the channel reaches EOF
 * the master is gone and the worker leaves at once, so no worker outlives
 * its master.
 *
 * A new worker warms up before it accepts (warm_start): the targets the
 * running workers hold connections to, up to warm_targets of them, are
 * learned from their counters in the shared segment; the new worker
 * opens as many connections to each as the busiest of them holds
 * (within max_target_connections) and reads each one's policy catalog
 * (by judging a trivial statement, sqlcheck.h).  Its first clients then
 * wait for neither, which they would (a connect with its authentication
 * exchange, a catalog read of thousands of rows) outside the query
 * timings.  When every read answered and no connection is still being
 * opened, or after warm_timeout, it accepts and tells the master
 * (DC_MSG_READY), which only then retires the workers it replaces after
 * a reload: they accept meanwhile.
 *
 * A worker that queues the first job for a target tells the master
 * (DC_MSG_HOT), which tells the others (DC_MSG_WARM): each opens a
 * connection to it and reads its catalog in the background, at most
 * warm_targets targets in its life, so the clients the kernel hands it
 * next do not find it cold when its peer was warming up already.
 *
 * dc_worker_detached sets the same worker up without a master, for the
 * in-process harness of the whole request path (tests/fuzz/fuzz_http.c).
 */
#include <sys/prctl.h>
#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "conn.h"
#include "curlev.h"
#include "dc.h"
#include "http.h"
#include "llm.h"
#include "log.h"
#include "msg.h"
#include "pgurl.h"
#include "pool.h"
#include "proctitle.h"
#include "catalog.h"
#include "shreg.h"
#include "sqlcheck.h"
#include "target.h"
#include "util.h"
#include "worker.h"
#include "ws.h"

struct dc_worker *dc_worker;

/* A draining worker closes connections idle this long after a reply. */
#define DRAIN_IDLE_MS	1000
/* How often a warming worker looks whether it is done. */
#define WARM_POLL_MS	5

static struct dc_worker W;

/* The warm-up (warm_start); timer NULL when done or never started. */
static struct {
	struct event	*timer;
	uint64_t	 deadline;	/* monotonic ms */
	int		 checks;	/* catalog reads not answered yet */
	int		 targets;	/* targets warmed */
	uint64_t	 started;	/* monotonic ms */
	int		 peers;		/* targets warmed for DC_MSG_WARM */
} warm;

static void	 warm_peer(const uint8_t id[16]);

/* Free what the worker holds, its event base last. */
static void
worker_free(void)
{
	struct dc_refresh_wait *rw;

	if (warm.timer != NULL) {
		event_free(warm.timer);
		warm.timer = NULL;
	}
	/* sessions first: their handlers cancel queries and LLM calls */
	dc_ws_teardown();
	dc_llm_free(W.llm);
	/* the catalog's reads are jobs of the pool: cancel them first,
	   the checks waiting for a policy before the catalog itself */
	dc_sql_check_shutdown();
	dc_catalog_shutdown();
	if (W.pool != NULL)
		dc_pool_free(W.pool);
	if (W.urlpol != NULL) {
		dc_pgurl_policy_free(W.urlpol);
		free(W.urlpol);
	}
	/* after every client that adds transfers to it */
	dc_curlev_free(W.curl);
	dc_http_teardown(&W);
	if (W.http != NULL)
		evhttp_free(W.http);
	if (W.https != NULL)
		evhttp_free(W.https);
	dc_conn_teardown();
	while ((rw = W.waits) != NULL) {
		W.waits = rw->next;
		rw->cb(DC_EUNAVAIL, 0, rw->arg);
		free(rw);
	}
	if (W.chan != NULL)
		bufferevent_free(W.chan);
	if (W.shutdown_timer != NULL)
		event_free(W.shutdown_timer);
	if (W.drain_timer != NULL)
		event_free(W.drain_timer);
	if (W.base != NULL)
		event_base_free(W.base);
	__atomic_store_n(&W.stats->inflight, 0, __ATOMIC_RELAXED);
}

static void __attribute__((noreturn))
worker_exit(void)
{
	worker_free();
	log_debug("worker leaving");
	exit(0);
}

void
dc_worker_sync_registry(struct dc_worker *w)
{
	uint64_t gen = dc_shreg_gen(w->reg);

	if (gen == w->gen_seen)
		return;
	/* connections first, then what was read through them */
	if (w->pool != NULL)
		dc_pool_sync(w->pool);
	dc_catalog_sync(w);
	w->gen_seen = gen;
	__atomic_store_n(&w->stats->gen_applied, gen, __ATOMIC_RELAXED);
	if (w->chan != NULL)
		dc_msg_send(w->chan, DC_MSG_GEN_ACK, 0, 0, gen, 0, NULL);
}

int
dc_worker_request_refresh(struct dc_worker *w, const uint8_t id[16],
    dc_refresh_cb cb, void *arg)
{
	struct dc_refresh_wait *rw;
	uint32_t token = ++w->next_token;

	if (w->chan == NULL)
		return DC_EUNAVAIL;
	rw = calloc(1, sizeof(*rw));
	if (rw == NULL)
		return DC_ENOMEM;
	rw->token = token;
	rw->cb = cb;
	rw->arg = arg;
	if (dc_msg_send(w->chan, id != NULL ? DC_MSG_REFRESH : DC_MSG_RESYNC,
	    token, 0, 0, 0, id) != DC_OK) {
		free(rw);
		return DC_EUNAVAIL;
	}
	rw->next = w->waits;
	w->waits = rw;
	return DC_OK;
}

static void
refresh_answered(const struct dc_msg *m)
{
	struct dc_refresh_wait **pp, *rw;

	for (pp = &W.waits; (rw = *pp) != NULL; pp = &rw->next) {
		if (rw->token != m->token)
			continue;
		*pp = rw->next;
		/* the master published before answering: apply it first */
		dc_worker_sync_registry(&W);
		rw->cb(m->status, m->gen, rw->arg);
		free(rw);
		return;
	}
}

/*
 * A smart shutdown ends when no request is in flight, no WebSocket
 * session is open and no client connection is left.  Every reply from
 * now on says Connection: close; a connection idle after its reply for
 * DRAIN_IDLE_MS is closed by us (sooner, its client's next request could
 * cross our close on the wire and be lost); one accepted but not yet
 * served waits for its request, within header_timeout.  drain_poll
 * checks again as they go, and for sessions that end.
 */
static void
maybe_finish_shutdown(void)
{
	if (W.shutting_down == DC_SHUTDOWN_SMART && W.inflight == 0 &&
	    dc_ws_count() == 0 && dc_conn_drain(DRAIN_IDLE_MS) == 0)
		event_base_loopexit(W.base, NULL);
}

static void
drain_poll(evutil_socket_t fd, short what, void *arg)
{
	maybe_finish_shutdown();
}

void
dc_worker_request_done(struct dc_worker *w)
{
	if (w->inflight > 0)
		w->inflight--;
	__atomic_store_n(&w->stats->inflight, w->inflight, __ATOMIC_RELAXED);
	maybe_finish_shutdown();
}

static void
shutdown_expired(evutil_socket_t fd, short what, void *arg)
{
	log_warn("shutdown timeout with %llu request(s) in flight, %d "
	    "connection(s) open and %d WebSocket session(s)",
	    (unsigned long long)W.inflight, dc_conn_count(), dc_ws_count());
	event_base_loopexit(W.base, NULL);
}

static void
begin_shutdown(int mode)
{
	struct timeval tv = { W.cfg->shutdown_timeout, 0 };
	struct timeval poll = { 0, 50000 };
	int i;

	if (mode == DC_SHUTDOWN_IMMEDIATE)
		_exit(0);
	/* stop accepting; the other workers keep the sockets */
	dc_conn_listen(NULL);
	for (i = 0; i < W.nbound; i++)
		evhttp_del_accept_socket(W.bound_on[i], W.bound[i]);
	W.nbound = 0;
	W.shutting_down = mode;
	/* fast: every session gets its 1001 now; smart: the idle ones */
	dc_ws_shutdown(&W, mode);
	if (mode == DC_SHUTDOWN_FAST) {
		event_base_loopexit(W.base, NULL);
		return;
	}
	W.shutdown_timer = evtimer_new(W.base, shutdown_expired, NULL);
	if (W.shutdown_timer != NULL)
		evtimer_add(W.shutdown_timer, &tv);
	W.drain_timer = event_new(W.base, -1, EV_PERSIST, drain_poll, NULL);
	if (W.drain_timer != NULL)
		evtimer_add(W.drain_timer, &poll);
	maybe_finish_shutdown();
}

static void
chan_read(struct bufferevent *bev, void *arg)
{
	struct dc_msg m;
	int rc;

	while ((rc = dc_msg_recv(bev, &m)) == 1) {
		switch (m.type) {
		case DC_MSG_NUDGE:
			dc_worker_sync_registry(&W);
			break;
		case DC_MSG_SHUTDOWN:
			if (W.shutting_down < (int)m.arg)
				begin_shutdown((int)m.arg);
			break;
		case DC_MSG_LOG_REOPEN:
			dc_log_reopen();
			break;
		case DC_MSG_INVALIDATE:
			if (W.pool != NULL)
				dc_pool_invalidate(W.pool,
				    dc_uuid_is_zero(m.id) ? NULL : m.id);
			dc_catalog_invalidate(dc_uuid_is_zero(m.id) ? NULL :
			    m.id);
			break;
		case DC_MSG_REFRESHED:
			refresh_answered(&m);
			break;
		case DC_MSG_WARM:
			warm_peer(m.id);
			break;
		default:
			log_warn("unexpected %s from the master",
			    dc_msg_name(m.type));
			break;
		}
	}
	if (rc < 0) {
		log_error("malformed message from the master; leaving");
		worker_exit();
	}
}

static void
chan_event(struct bufferevent *bev, short what, void *arg)
{
	/* the master is gone: so are we */
	log_debug("channel to the master closed");
	bufferevent_free(W.chan);
	W.chan = NULL;
	worker_exit();
}

/*
 * The changelist folds the add/del/mod of one loop iteration into at
 * most one epoll_ctl per fd: evhttp flips a connection between reading
 * and writing for every request.  Safe because no fd in a worker is
 * ever dup()ed.
 */
static struct event_base *
worker_base(void)
{
	struct event_config *ecfg;
	struct event_base *base;

	if ((ecfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	return base;
}

/* What every worker is given, whether a master forked it or not. */
static void
worker_init(int index, struct dc_config *cfg, struct dc_shreg *reg,
    struct dc_tokens *tokens, struct ssl_ctx_st *tls,
    const struct dc_fernet_ring *ring)
{
	memset(&W, 0, sizeof(W));
	dc_worker = &W;
	W.index = index;
	snprintf(W.index_str, sizeof(W.index_str), "%d", index);
	W.cfg = cfg;
	W.reg = reg;
	W.tokens = tokens;
	W.tls = tls;
	W.ring = ring;
	W.stats = dc_shreg_stats(reg, index);
}

struct dc_worker *
dc_worker_detached(struct dc_config *cfg, struct dc_shreg *reg,
    struct dc_tokens *tokens, struct ssl_ctx_st *tls,
    const struct dc_fernet_ring *ring)
{
	assert(dc_worker == NULL);
	worker_init(0, cfg, reg, tokens, tls, ring);
	W.offline = 1;
	memset(W.stats, 0, sizeof(*W.stats));
	__atomic_store_n(&W.stats->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
	if ((W.base = worker_base()) == NULL ||
	    (W.http = evhttp_new(W.base)) == NULL ||
	    (tls != NULL && (W.https = evhttp_new(W.base)) == NULL))
		goto fail;
	dc_http_setup(&W);
	if ((W.urlpol = calloc(1, sizeof(*W.urlpol))) == NULL ||
	    dc_pgurl_policy_init(W.urlpol, cfg) != DC_OK ||
	    (W.pool = dc_pool_new(&W)) == NULL)
		goto fail;
	/* no libcurl, so no LLM client: natural language answers 503 */
	dc_worker_sync_registry(&W);
	return &W;
fail:
	dc_worker_detached_free(&W);
	return NULL;
}

void
dc_worker_detached_free(struct dc_worker *w)
{
	assert(w == &W && W.offline);
	worker_free();
	memset(&W, 0, sizeof(W));
	dc_worker = NULL;
}

/* The pool queues the first job for target id: tell the others. */
static void
first_use(const uint8_t id[16], void *arg)
{
	if (W.chan != NULL && !W.shutting_down)
		dc_msg_send(W.chan, DC_MSG_HOT, 0, 0, 0, 0, id);
}

static void
peer_checked(const struct dc_sqlcheck *v, void *arg)
{
	/* the catalog is read (or not: the first statement tries again) */
}

/* A peer started using target id: warm it up too, within warm_targets. */
static void
warm_peer(const uint8_t id[16])
{
	struct dc_entry *e;

	if (W.shutting_down || W.pool == NULL ||
	    warm.peers >= W.cfg->warm_targets || dc_pool_knows(W.pool, id) ||
	    (e = malloc(sizeof(*e))) == NULL)
		return;
	if ((dc_target_is_env(id) ? dc_target_env_entry(&W, e) :
	    dc_shreg_get(W.reg, id, e)) == DC_OK && e->is_active &&
	    memcmp(e->id, id, 16) == 0) {
		warm.peers++;
		dc_pool_warm(W.pool, e, 1);
		(void)dc_sql_check_warm(&W, e, peer_checked, NULL);
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
}

/* Warm enough, or out of time: accept, and say so to the master. */
static void
warm_done(void)
{
	event_free(warm.timer);
	warm.timer = NULL;
	if (warm.targets > 0)
		log_debug("warmed %d target(s) up in %llu ms%s", warm.targets,
		    (unsigned long long)(dc_now_ms() - warm.started),
		    warm.checks > 0 || dc_pool_connecting(W.pool) > 0 ?
		    " (warm_timeout: some were not ready)" : "");
	if (!W.shutting_down)
		dc_conn_hold(0);
	if (W.chan != NULL)
		dc_msg_send(W.chan, DC_MSG_READY, 0, 0, 0, 0, NULL);
}

static void
warm_poll(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, WARM_POLL_MS * 1000 };

	if ((warm.checks == 0 && dc_pool_connecting(W.pool) == 0) ||
	    dc_now_ms() >= warm.deadline || W.shutting_down)
		warm_done();
	else
		evtimer_add(warm.timer, &tv);
}

/* A catalog read answered (or failed: the worker goes on cold for it). */
static void
warm_checked(const struct dc_sqlcheck *v, void *arg)
{
	assert(warm.checks > 0);
	warm.checks--;
}

/*
 * The targets other live workers hold connections to, at most max (the
 * first found); want[i] is the most connections one worker holds to
 * ids[i].
 */
static int
warm_list(uint8_t ids[][16], int *want, int max)
{
	const struct dc_worker_stats *st;
	uint64_t open;
	int i, k, j, n = 0;

	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (i == W.index || (st = dc_shreg_stats(W.reg, i)) == NULL ||
		    __atomic_load_n(&st->pid, __ATOMIC_RELAXED) == 0)
			continue;
		for (k = 0; k < DC_METRIC_TARGETS; k++) {
			open = __atomic_load_n(&st->targets[k].open,
			    __ATOMIC_RELAXED);
			if (open == 0 || dc_uuid_is_zero(st->targets[k].id))
				continue;
			for (j = 0; j < n; j++)
				if (memcmp(ids[j], st->targets[k].id, 16) == 0)
					break;
			if (j == n) {
				if (n == max)
					continue;
				memcpy(ids[n], st->targets[k].id, 16);
				want[n++] = 0;
			}
			if (open > (uint64_t)want[j])
				want[j] = open > 1000 ? 1000 : (int)open;
		}
	}
	return n;
}

/*
 * Start warming up (see the top of this file); accepting is held until
 * warm_done.  A target whose entry is gone or inactive is skipped.
 */
static void
warm_start(void)
{
	struct timeval tv = { 0, 0 };
	uint8_t ids[DC_WARM_TARGETS_MAX][16];
	int want[DC_WARM_TARGETS_MAX];
	struct dc_entry *e;
	int i, n, max = W.cfg->warm_targets;

	warm.started = dc_now_ms();
	warm.deadline = warm.started + (uint64_t)W.cfg->warm_timeout;
	if ((warm.timer = evtimer_new(W.base, warm_poll, NULL)) == NULL)
		return;			/* no warm-up: accept at once */
	dc_conn_hold(1);
	if (max > DC_WARM_TARGETS_MAX)
		max = DC_WARM_TARGETS_MAX;
	n = max > 0 && W.cfg->warm_timeout > 0 ? warm_list(ids, want, max) : 0;
	if (n > 0 && (e = malloc(sizeof(*e))) != NULL) {
		for (i = 0; i < n; i++) {
			if ((dc_target_is_env(ids[i]) ?
			    dc_target_env_entry(&W, e) :
			    dc_shreg_get(W.reg, ids[i], e)) != DC_OK ||
			    !e->is_active)
				continue;
			warm.targets++;
			dc_pool_warm(W.pool, e, want[i]);
			warm.checks++;
			/* the answer may come before this returns */
			if (dc_sql_check_warm(&W, e, warm_checked, NULL) !=
			    DC_OK)
				warm.checks--;
		}
		dc_explicit_bzero(e, sizeof(*e));
		free(e);
	}
	/* the first look in the loop's next pass, done or not */
	evtimer_add(warm.timer, &tv);
}

void
dc_worker_main(int index, const int *listen_fds, int nlisten, int chan_fd,
    struct dc_config *cfg, struct dc_shreg *reg, struct dc_tokens *tokens,
    struct ssl_ctx_st *tls,
    const struct dc_fernet_ring *ring)
{
	struct sigaction sa;
	int i;

	worker_init(index, cfg, reg, tokens, tls, ring);
	snprintf(dc_proc_title, sizeof(dc_proc_title), "worker %d", index);
	dc_proctitle_set("datachatd: worker %d%s%s", index, cfg->source !=
	    NULL ? " -c " : "", cfg->source != NULL ? cfg->source : "");

	/* the registry holds decrypted URLs: no core files, no ptrace */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() == 1)
		_exit(0);	/* the master died before we got here */

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);

	memset(W.stats, 0, sizeof(*W.stats));
	__atomic_store_n(&W.stats->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&W.stats->started_ms, dc_wall_ms(), __ATOMIC_RELAXED);

	if ((W.base = worker_base()) == NULL)
		_exit(2);
	evutil_make_socket_nonblocking(chan_fd);
	W.chan = bufferevent_socket_new(W.base, chan_fd, BEV_OPT_CLOSE_ON_FREE);
	if (W.chan == NULL)
		_exit(2);
	bufferevent_setcb(W.chan, chan_read, NULL, chan_event, NULL);
	bufferevent_enable(W.chan, EV_READ);

	W.http = evhttp_new(W.base);
	if (W.http == NULL || (tls != NULL &&
	    (W.https = evhttp_new(W.base)) == NULL))
		_exit(2);
	assert(nlisten > 0 && nlisten <= DC_MAX_LISTENERS);
	dc_http_setup(&W);
	/* nothing is accepted before the loop runs: warm_start decides */
	for (i = 0; i < nlisten; i++) {
		/* the master made the TLS context when a listener asked */
		assert(!cfg->listeners[i].tls || W.https != NULL);
		W.bound_on[i] = cfg->listeners[i].tls ? W.https : W.http;
		W.bound[i] = evhttp_accept_socket_with_handle(W.bound_on[i],
		    listen_fds[i]);
		if (W.bound[i] == NULL) {
			log_error("cannot accept on %s",
			    cfg->listeners[i].address);
			_exit(2);
		}
		W.nbound++;
		dc_conn_listen(evhttp_bound_socket_get_listener(W.bound[i]));
	}
	if ((W.urlpol = calloc(1, sizeof(*W.urlpol))) == NULL ||
	    dc_pgurl_policy_init(W.urlpol, cfg) != DC_OK)
		_exit(2);
	W.pool = dc_pool_new(&W);
	if (W.pool == NULL)
		_exit(2);
	dc_pool_on_first_use(W.pool, first_use, NULL);
	W.curl = dc_curlev_new(W.base);
	W.llm = dc_llm_new(&W);
	dc_worker_sync_registry(&W);
	warm_start();

	event_base_dispatch(W.base);
	worker_exit();
}
