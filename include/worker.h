/*
 * worker.h - a worker process: one event base, one evhttp on the sockets
 * inherited from the master, a channel back to the master, and the
 * per-worker state the routes use (target pool, caches).  Workers read the
 * shared registry without locks and leave when the master's channel
 * closes.
 */
#ifndef DC_WORKER_H
#define DC_WORKER_H

#include <stdint.h>

#include "config.h"
#include "fernet.h"
#include "shreg.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct ssl_ctx_st;
struct bufferevent;
struct event;
struct dc_pool;
struct dc_llm;
struct dc_curlev;
struct dc_pgurl_policy;
struct dc_tokens;

typedef void (*dc_refresh_cb)(int status, uint64_t gen, void *arg);

struct dc_refresh_wait {
	uint32_t	 token;
	dc_refresh_cb	 cb;
	void		*arg;
	struct dc_refresh_wait *next;
};

struct dc_worker {
	int		 index;		/* stats slot in the shared segment */
	char		 index_str[12];	/* for the X-Datachatd-Worker header */
	struct event_base *base;
	struct evhttp	*http;		/* plain listeners */
	struct evhttp	*https;		/* TLS listeners, or NULL */
	struct ssl_ctx_st *tls;		/* their context (tls.h), or NULL */
	struct evhttp_bound_socket *bound[DC_MAX_LISTENERS];
	struct evhttp	*bound_on[DC_MAX_LISTENERS];	/* http or https */
	int		 nbound;	/* accepting on; 0 once draining */
	struct bufferevent *chan;
	struct dc_config *cfg;
	struct dc_shreg	*reg;
	struct dc_tokens *tokens;	/* API tokens (tokens.h) */
	const struct dc_fernet_ring *ring;
	struct dc_worker_stats *stats;
	struct dc_pool	*pool;		/* target connections (pool.h) */
	struct dc_llm	*llm;		/* LLM client (llm.h) */
	struct dc_curlev *curl;		/* libcurl on the loop (curlev.h) */
	struct dc_pgurl_policy *urlpol;	/* what a target URL may be */

	int		 offline;	/* detached: no master, no databases */

	uint64_t	 gen_seen;	/* last registry generation applied */
	uint64_t	 next_req_id;
	uint64_t	 inflight;
	int		 shutting_down;	/* enum dc_shutdown, 0 = running */
	struct event	*shutdown_timer;
	struct event	*drain_timer;	/* smart shutdown: unserved conns */
	uint32_t	 next_token;
	struct dc_refresh_wait *waits;
};

/* The one worker of this process (NULL in the master). */
extern struct dc_worker *dc_worker;

/* Entry point after fork; never returns. */
void		 dc_worker_main(int index, const int *listen_fds, int nlisten,
		     int chan_fd, struct dc_config *cfg, struct dc_shreg *reg,
		     struct dc_tokens *tokens, struct ssl_ctx_st *tls,
		     const struct dc_fernet_ring *ring) __attribute__((noreturn));

/*
 * A worker without a master, for a harness that hands it connections
 * itself (evhttp_accept_socket_with_handle on w->http, or on w->https
 * when tls is a context: tests/fuzz/fuzz_http.c): the same event base,
 * evhttp, connection layer and routes, on a registry and a token table
 * the caller made, with no listener, no channel (a refresh answers
 * DC_EUNAVAIL), no LLM client and a pool that never connects (a job
 * fails as a target that cannot be reached).  One per process; NULL
 * when out of memory.  dc_worker_detached_free undoes it (the caller
 * keeps and frees tls).
 */
struct dc_worker *dc_worker_detached(struct dc_config *cfg,
		     struct dc_shreg *reg, struct dc_tokens *tokens,
		     struct ssl_ctx_st *tls,
		     const struct dc_fernet_ring *ring);
void		 dc_worker_detached_free(struct dc_worker *w);

/*
 * Apply a registry generation change: drop per-target state whose entry
 * changed or vanished, then acknowledge the generation to the master.
 */
void		 dc_worker_sync_registry(struct dc_worker *w);

/*
 * Ask the master to re-read one connection id (or all, id == NULL) from
 * the system database and publish it; cb runs when the master answered.
 */
int		 dc_worker_request_refresh(struct dc_worker *w,
		     const uint8_t id[16], dc_refresh_cb cb, void *arg);

/* A request finished: account it and maybe finish a smart shutdown. */
void		 dc_worker_request_done(struct dc_worker *w);

#endif /* DC_WORKER_H */
