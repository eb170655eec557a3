/*
 * curlev.c - libcurl on the worker's libevent loop (see curlev.h).
 *
 * curl tells us which sockets to watch (sock_cb) and when to wake it up
 * (timer_cb); we turn those into libevent events and hand readiness back
 * with curl_multi_socket_action().  Name resolution uses curl's threaded
 * resolver, so nothing here ever waits.
 *
 * Ended transfers are collected with curl_multi_info_read() after every
 * socket_action, outside any curl callback, and each is taken out of the
 * multi handle before its done callback runs, so a callback may start,
 * remove or re-add transfers.  The share handle needs no locks: a worker
 * has one thread.
 */
#include <stdlib.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "curlev.h"
#include "dc.h"
#include "log.h"

/* One socket curl asked us to watch. */
struct sock {
	struct dc_curlev *cv;
	struct event	*ev;
	struct sock	*prev, *next;
};

struct dc_curlev {
	struct event_base *base;
	CURLM		*multi;
	CURLSH		*share;
	struct event	*timer;
	struct sock	*socks;
};

static void
check_done(struct dc_curlev *cv)
{
	struct dc_curl_xfer *x;
	CURLMsg *m;
	CURLcode res;
	char *priv;
	int left;

	while ((m = curl_multi_info_read(cv->multi, &left)) != NULL) {
		priv = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		res = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv == NULL)
			continue;
		x = (struct dc_curl_xfer *)(void *)priv;
		/* m is invalid once its handle leaves the multi handle */
		curl_multi_remove_handle(cv->multi, x->easy);
		x->added = 0;
		x->done(x, res);
	}
}

static void
sock_free(struct dc_curlev *cv, struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		cv->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->ev != NULL)
		event_free(s->ev);
	free(s);
}

static void
sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;
	struct dc_curlev *cv = s->cv;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	/* s may be freed by sock_cb during this */
	curl_multi_socket_action(cv->multi, fd, action, &running);
	check_done(cv);
}

static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct dc_curlev *cv = userp;
	struct sock *s = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_free(cv, s);
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->cv = cv;
		s->next = cv->socks;
		if (cv->socks != NULL)
			cv->socks->prev = s;
		cv->socks = s;
		curl_multi_assign(cv->multi, fd, s);
	} else if (s->ev != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	s->ev = event_new(cv->base, fd, kind, sock_event, s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0)
		return -1;
	return 0;
}

static void
timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct dc_curlev *cv = arg;
	int running;

	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(cv);
}

/* curl wants to be woken up in timeout_ms (-1: never).  Just schedule. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct dc_curlev *cv = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(cv->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(cv->timer, &tv) == 0 ? 0 : -1;
}

struct dc_curlev *
dc_curlev_new(struct event_base *base)
{
	struct dc_curlev *cv;

	if ((cv = calloc(1, sizeof(*cv))) == NULL)
		goto fail;
	cv->base = base;
	cv->multi = curl_multi_init();
	cv->share = curl_share_init();
	cv->timer = evtimer_new(base, timer_event, cv);
	if (cv->multi == NULL || cv->share == NULL || cv->timer == NULL)
		goto fail;
	/* one process, one thread: the share needs no lock callbacks */
	if (curl_share_setopt(cv->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(cv->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(cv->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
		goto fail;
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
	return cv;
fail:
	log_error("cannot set up libcurl on the event loop");
	dc_curlev_free(cv);
	return NULL;
}

void
dc_curlev_free(struct dc_curlev *cv)
{
	if (cv == NULL)
		return;
	if (cv->multi != NULL)
		curl_multi_cleanup(cv->multi);
	/* after every easy handle: it closes the cached connections */
	if (cv->share != NULL)
		curl_share_cleanup(cv->share);
	while (cv->socks != NULL)
		sock_free(cv, cv->socks);
	if (cv->timer != NULL)
		event_free(cv->timer);
	free(cv);
}

CURLSH *
dc_curlev_share(struct dc_curlev *cv)
{
	return cv->share;
}

int
dc_curlev_add(struct dc_curlev *cv, struct dc_curl_xfer *x)
{
	if (cv == NULL || x->easy == NULL || x->done == NULL)
		return DC_ERR;
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
	if (curl_multi_add_handle(cv->multi, x->easy) != CURLM_OK)
		return DC_ERR;
	x->added = 1;
	return DC_OK;
}

void
dc_curlev_remove(struct dc_curlev *cv, struct dc_curl_xfer *x)
{
	if (!x->added)
		return;
	curl_multi_remove_handle(cv->multi, x->easy);
	x->added = 0;
}
