/*
 * curlev.h - libcurl's multi-socket interface on a libevent loop.
 *
 * A worker has one (w->curl): one multi handle that every HTTP client of
 * the worker adds its transfers to (the LLM client, an HTTP database
 * driver), and one share handle (DNS cache, TLS sessions, connection
 * cache) so transfers to the same server reuse idle keep-alive
 * connections.  Nothing here waits: curl tells us which sockets to watch
 * and when to wake it up, and a transfer's end is reported from the loop.
 *
 * A transfer is a struct dc_curl_xfer the caller embeds in its own state:
 * it builds x->easy (with CURLOPT_SHARE set to dc_curlev_share() if it
 * wants the shared caches; never CURLOPT_PRIVATE, which is ours), sets
 * x->done, and adds it.  x->done runs exactly once, always from the event
 * loop (never from inside dc_curlev_add), after the easy handle left the
 * multi handle, unless dc_curlev_remove() took it out first.  The caller
 * then owns the easy handle again (cleanup, or reuse and add again).
 * done may add and remove transfers, its own included.
 */
#ifndef DC_CURLEV_H
#define DC_CURLEV_H

#include <curl/curl.h>

struct event_base;
struct dc_curlev;

struct dc_curl_xfer {
	CURL		*easy;
	void		(*done)(struct dc_curl_xfer *x, CURLcode result);
	int		 added;		/* in the multi handle (read-only) */
};

/* NULL on failure (logged). */
struct dc_curlev *dc_curlev_new(struct event_base *base);

/*
 * Free the multi and share handles.  Every transfer must have ended or
 * been removed first (their owners go before this).
 */
void		 dc_curlev_free(struct dc_curlev *cv);

/* For CURLOPT_SHARE. */
CURLSH		*dc_curlev_share(struct dc_curlev *cv);

/* Start x; 0 or DC_ERR (x->done will not run). */
int		 dc_curlev_add(struct dc_curlev *cv, struct dc_curl_xfer *x);

/* Stop x before it ended (its connection is closed); done never runs. */
void		 dc_curlev_remove(struct dc_curlev *cv, struct dc_curl_xfer *x);

#endif /* DC_CURLEV_H */
