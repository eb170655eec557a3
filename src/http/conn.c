/*
 * conn.c - the client connections under evhttp (conn.h).
 *
 * evhttp owns each connection; this file follows them from accept to
 * close to do what evhttp 2.1 does not:
 *
 *  - max_clients per worker: accepting pauses while the worker holds
 *    that many connections and resumes when one closes;
 *  - out of file descriptors (EMFILE, ENFILE) or memory, accepting
 *    pauses and a timer resumes it ACCEPT_PAUSE_MS later, as nginx does,
 *    where libevent would retry at once and warn every time;
 *  - a fair share of the connections: the workers accept on the same
 *    sockets, and libevent accepts until the queue is empty, so the one
 *    that wakes first would take a whole burst of clients (and keep
 *    them: clients keep their connections alive).  A worker that holds
 *    more than ACCEPT_SLACK connections above the least loaded worker
 *    still accepting (the counts are in the shared segment) stops
 *    accepting for ACCEPT_YIELD_MS, so the others take the next ones,
 *    as nginx's accept_disabled does; when they do not (busy), it takes
 *    them itself after that pause;
 *  - accepting starts once the worker is ready to serve (dc_conn_hold,
 *    while it warms its targets up);
 *  - a deadline for a request's head (header_timeout, counted from its
 *    first byte, or from the accept for a connection's first request)
 *    and one for its body (body_timeout), apart from the idle keep-alive
 *    timeout, so a client trickling bytes is closed in bounded time;
 *  - a scan of every request head as its bytes arrive, before evhttp
 *    parses them, for what RFC 9112 says to refuse and evhttp accepts:
 *    obs-fold lines, more than one Content-Length, a Content-Length that
 *    is not digits, whitespace before a header's colon, a bare CR or a
 *    NUL, too many header lines, and Transfer-Encoding (a request body
 *    must have a length here).  That request gets its error with
 *    Connection: close, so nothing behind it is ever read: no request
 *    can be smuggled past a proxy that frames it differently.
 *
 * The scan follows evhttp's framing: lines end in LF or CRLF, a head
 * ends with an empty line, HEAD and TRACE requests have no body, other
 * requests a body of Content-Length bytes, or none.
 *
 * A connection is adopted in the loop pass that accepted it, before any
 * I/O on it can be reported: its bufferevent is made here
 * (evhttp_set_bevcb), and an activated event then takes over evhttp's
 * close callback, which from then on is ours.  The request layer says
 * who else to tell through dc_conn_set_closecb.
 */
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "config.h"
#include "conn.h"
#include "dc.h"
#include "log.h"
#include "shreg.h"
#include "tls.h"
#include "worker.h"

#define ACCEPT_PAUSE_MS		100
#define ACCEPT_YIELD_MS		1	/* over its share: let others accept */
#define ACCEPT_SLACK		1	/* connections above the least loaded */
#define MAX_LISTENERS		16
#define MAX_HEADER_LINES	100
#define LINE_KEEP		96	/* bytes of a line kept for the scan */

enum phase {
	P_FIRST,	/* accepted, its first request not complete yet */
	P_HEAD,		/* a request head is arriving */
	P_BODY,		/* its body is arriving */
	P_IDLE,		/* between requests (keep-alive) */
	P_UPGRADED,	/* no longer HTTP (WebSocket): not ours to time */
};

enum pause_why {
	PAUSE_FULL = 1,		/* max_clients reached */
	PAUSE_FDS = 2,		/* accept failed for want of resources */
	PAUSE_SHARE = 4,	/* over its share: the others' turn */
	PAUSE_HOLD = 8,		/* not ready to serve yet (dc_conn_hold) */
};

struct dc_conn {
	struct dc_conn	*prev, *next;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;	/* once adopted */
	struct evbuffer_cb_entry *scan_cb;
	struct event	 timer;		/* adoption, then the deadlines */
	int		 fd;
	int		 loopback;	/* accepted on a loopback address */
	int		 tls;		/* bytes on the socket are TLS records */
	int		 phase;		/* enum phase */
	uint64_t	 idle_since;	/* monotonic ms, in P_IDLE */
	dc_conn_closecb	 cb;		/* the request layer's, if any */
	void		*cb_arg;

	/* the scan of the head arriving */
	int		 stopped;	/* a head was refused: scan no more */
	int		 kill;		/* close in this loop pass, after any
					   reply the routes wrote at once */
	uint32_t	 heads;		/* heads complete so far */
	uint32_t	 refused_head;	/* 1-based index of the refused one */
	int		 refused_status;
	const char	*refused_why;
	uint32_t	 dispatched;	/* requests handed to the routes */
	int		 lineno;	/* 0: the request line */
	size_t		 linelen;
	char		 line[LINE_KEEP];
	char		 tail[9];	/* the request line's last bytes */
	int		 cr;		/* the last byte was a CR */
	int		 nobody;	/* HEAD or TRACE: never a body */
	int		 ncl, te, bad;
	uint64_t	 cl;
	uint64_t	 body_left;
};

static struct {
	struct dc_worker *w;
	struct evconnlistener *lev[MAX_LISTENERS];
	int		 nlev;
	int		 paused;	/* enum pause_why bits */
	struct event	*resume;
	struct event	*yield;		/* ends a PAUSE_SHARE */
	struct dc_conn	*conns;
	int		 count;
	int		 max_clients;
	struct dc_conn	**by_fd;	/* fd -> adopted connection */
	int		 nby_fd;
	uint64_t	 last_warn;
	uint64_t	 warned_pauses;
} C;

static void	 conn_free(struct dc_conn *c);

/* --- accepting --- */

#define LOAD(v)	__atomic_load_n(&(v), __ATOMIC_RELAXED)

/*
 * Tell the other workers whether we take new connections: not when
 * paused for anything but our share (that pause is only a turn).
 */
static void
publish_accepting(void)
{
	int on = C.nlev > 0 && (C.paused & ~PAUSE_SHARE) == 0 &&
	    !C.w->shutting_down;

	__atomic_store_n(&C.w->stats->accepting, (uint64_t)on,
	    __ATOMIC_RELAXED);
}

/*
 * Do we hold more connections than our share: more than ACCEPT_SLACK
 * above the least loaded other worker that accepts?  A worker that died
 * has its block cleared by the master when it is reaped.
 */
static int
over_share(void)
{
	const struct dc_worker_stats *st;
	uint64_t least = UINT64_MAX, n;
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (i == C.w->index ||
		    (st = dc_shreg_stats(C.w->reg, i)) == NULL ||
		    LOAD(st->pid) == 0 || !LOAD(st->accepting))
			continue;
		if ((n = LOAD(st->conns_open)) < least)
			least = n;
	}
	return least != UINT64_MAX && (uint64_t)C.count > least + ACCEPT_SLACK;
}

static void
accept_set(int on)
{
	int i;

	for (i = 0; i < C.nlev; i++) {
		if (on)
			evconnlistener_enable(C.lev[i]);
		else
			evconnlistener_disable(C.lev[i]);
	}
}

static void
pause_accept(int why)
{
	if (C.paused == 0)
		accept_set(0);
	C.paused |= why;
	publish_accepting();
}

static void
resume_accept(int why)
{
	if ((C.paused & why) == 0)
		return;
	C.paused &= ~why;
	if (C.paused == 0 && !C.w->shutting_down)
		accept_set(1);
	publish_accepting();
}

static void
resume_tick(evutil_socket_t fd, short what, void *arg)
{
	resume_accept(PAUSE_FDS);
}

static void
yield_tick(evutil_socket_t fd, short what, void *arg)
{
	resume_accept(PAUSE_SHARE);
}

void
dc_conn_hold(int on)
{
	if (on)
		pause_accept(PAUSE_HOLD);
	else
		resume_accept(PAUSE_HOLD);
}

/*
 * accept(2) failed with something other than "try again": for want of
 * descriptors or memory, pause and let a timer resume.  One log line a
 * minute at most says so, with how many pauses it stands for.
 */
static void
accept_error(struct evconnlistener *lev, void *arg)
{
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int err = errno;
	uint64_t now = dc_now_ms();

	C.warned_pauses++;
	if (now - C.last_warn >= 60000 || C.last_warn == 0) {
		log_warn("accept: %s with %d connection(s) open; pausing "
		    "accept for %d ms (%llu time(s) since the last message)",
		    strerror(err), C.count, ACCEPT_PAUSE_MS,
		    (unsigned long long)C.warned_pauses);
		C.last_warn = now;
		C.warned_pauses = 0;
	}
	pause_accept(PAUSE_FDS);
	evtimer_add(C.resume, &tv);
}

void
dc_conn_listen(struct evconnlistener *lev)
{
	if (lev == NULL) {
		/* the listeners are being freed: no more enable/disable */
		C.nlev = 0;
		publish_accepting();
		return;
	}
	if (C.nlev == MAX_LISTENERS)
		return;
	evconnlistener_set_error_cb(lev, accept_error);
	C.lev[C.nlev++] = lev;
	if (C.paused)
		evconnlistener_disable(lev);
	publish_accepting();
}

/* --- deadlines --- */

static void
arm(struct dc_conn *c, int seconds)
{
	struct timeval tv = { seconds, 0 };

	evtimer_add(&c->timer, &tv);
}

static void
deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dc_conn *c = arg;
	const struct dc_config *cfg = C.w->cfg;

	if (c->kill) {
		evhttp_connection_free(c->evcon);	/* frees c */
		return;
	}
	if (c->cb != NULL) {
		/*
		 * A pipelined request is arriving while we answer the one
		 * before it: its clock starts when we are done.
		 */
		arm(c, cfg->header_timeout);
		return;
	}
	__atomic_add_fetch(&C.w->stats->conns_timed_out, 1, __ATOMIC_RELAXED);
	log_debug("closing connection on fd %d: request %s not complete "
	    "within %d s (%s)", c->fd, c->phase == P_BODY ? "body" : "head",
	    c->phase == P_BODY ? cfg->body_timeout : cfg->header_timeout,
	    c->phase == P_BODY ? "body_timeout" : "header_timeout");
	/* our close callback runs and frees c */
	evhttp_connection_free(c->evcon);
}

/* --- the scan --- */

/*
 * The head being scanned is refused, from now: whenever evhttp hands it
 * to the routes (it may take fewer lines than we do, cutting a head at a
 * NUL), it gets this answer, and nothing after it is scanned.  A request
 * line refused (a NUL, a bare CR) is one evhttp reads otherwise than we
 * do, and may answer itself in whatever version it finds there
 * ("HTTP/1.13 400", found by fuzz_http): that connection is closed
 * unanswered, as for a version we do not speak.
 */
static void
refuse(struct dc_conn *c, int status, const char *why)
{
	if (c->bad)
		return;
	if (c->lineno == 0)
		c->kill = 1;
	c->bad = 1;
	c->refused_status = status;
	c->refused_why = why;
	c->refused_head = c->heads + 1;
	c->stopped = 1;
}

static int
name_is(const char *line, size_t n, const char *name)
{
	size_t len = strlen(name);

	return n > len && line[len] == ':' && strncasecmp(line, name, len) == 0;
}

/* One complete line of a head (without its LF and CR). */
static void
scan_line(struct dc_conn *c)
{
	size_t n = c->linelen < LINE_KEEP ? c->linelen : LINE_KEEP;
	const char *l = c->line, *v, *colon;
	size_t vn, i;

	if (c->lineno++ == 0) {
		/* evhttp refuses an empty or malformed request line itself */
		c->nobody = (n >= 5 && memcmp(l, "HEAD ", 5) == 0) ||
		    (n >= 6 && memcmp(l, "TRACE ", 6) == 0);
		/*
		 * evhttp takes any HTTP/d.d and answers in kind ("HTTP/0.1
		 * 200"): only 1.0 and 1.1 are spoken here.
		 */
		if (c->linelen < 9 ||
		    (memcmp(c->tail, " HTTP/1.1", 9) != 0 &&
		    memcmp(c->tail, " HTTP/1.0", 9) != 0)) {
			refuse(c, 505, "only HTTP/1.0 and HTTP/1.1 are spoken "
			    "here");
			/*
			 * evhttp's own errors (an unknown method, a bad line)
			 * would go out in that version too: close first.
			 */
			c->kill = 1;
		}
		return;
	}
	if (l[0] == ' ' || l[0] == '\t') {
		refuse(c, 400, "obsolete line folding (a header line that "
		    "starts with whitespace) is not accepted");
		return;
	}
	if (c->lineno - 1 > MAX_HEADER_LINES) {
		refuse(c, 431, "too many header lines");
		return;
	}
	colon = memchr(l, ':', n);
	if (colon == NULL)
		return;		/* evhttp refuses it */
	for (i = 0; l + i < colon; i++)
		if (l[i] == ' ' || l[i] == '\t') {
			refuse(c, 400, "whitespace in a header name");
			return;
		}
	if (name_is(l, n, "Transfer-Encoding")) {
		c->te = 1;
		return;
	}
	if (!name_is(l, n, "Content-Length"))
		return;
	if (++c->ncl > 1) {
		refuse(c, 400, "more than one Content-Length header");
		return;
	}
	if (c->linelen > LINE_KEEP) {
		refuse(c, 400, "Content-Length is not a number");
		return;
	}
	v = colon + 1;
	vn = n - (size_t)(v - l);
	while (vn > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vn--;
	}
	while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	if (vn == 0 || vn > 18) {
		refuse(c, 400, "Content-Length is not a number");
		return;
	}
	c->cl = 0;
	for (i = 0; i < vn; i++) {
		if (v[i] < '0' || v[i] > '9') {
			refuse(c, 400, "Content-Length is not a number");
			return;
		}
		c->cl = c->cl * 10 + (uint64_t)(v[i] - '0');
	}
}

/* The empty line: the head is complete. */
static void
scan_head_end(struct dc_conn *c)
{
	const struct dc_config *cfg = C.w->cfg;

	if (c->te)
		refuse(c, 411, "Transfer-Encoding is not accepted in a "
		    "request: send the body with a Content-Length");
	else if (c->nobody && c->ncl > 0 && c->cl > 0)
		refuse(c, 400, "a HEAD or TRACE request has no body");
	c->heads++;
	if (c->bad) {
		/* answered, then closed: the rest is never read */
		evtimer_del(&c->timer);
		return;
	}
	c->body_left = c->nobody || c->ncl == 0 ? 0 : c->cl;
	c->lineno = 0;
	c->ncl = c->te = c->nobody = 0;
	c->cl = 0;
	if (c->body_left > 0) {
		c->phase = P_BODY;
		arm(c, cfg->body_timeout);
	} else {
		c->phase = P_IDLE;
		evtimer_del(&c->timer);
	}
}

static void
scan(struct dc_conn *c, const unsigned char *p, size_t n)
{
	size_t i = 0, k;

	while (i < n && !c->stopped) {
		if (c->phase == P_BODY) {
			k = n - i < c->body_left ? n - i : (size_t)c->body_left;
			c->body_left -= k;
			i += k;
			if (c->body_left == 0) {
				c->phase = P_IDLE;
				evtimer_del(&c->timer);
			}
			continue;
		}
		if (c->phase == P_IDLE) {
			/* the first byte of the next request */
			c->phase = P_HEAD;
			arm(c, C.w->cfg->header_timeout);
		}
		for (; i < n && !c->stopped; i++) {
			if (c->cr && p[i] != '\n') {
				refuse(c, 400, "a bare CR in the request head");
				c->cr = 0;
			}
			if (p[i] == '\r') {
				c->cr = 1;
				continue;
			}
			if (p[i] == '\n') {
				c->cr = 0;
				if (c->linelen == 0 && c->lineno > 0) {
					c->linelen = 0;
					i++;
					scan_head_end(c);
					break;
				}
				if (c->linelen == 0)
					refuse(c, 400, "an empty request line");
				scan_line(c);
				c->linelen = 0;
				continue;
			}
			if (p[i] == '\0')
				refuse(c, 400, "a NUL byte in the request head");
			if (c->linelen < LINE_KEEP)
				c->line[c->linelen] = (char)p[i];
			if (c->lineno == 0) {
				memmove(c->tail, c->tail + 1, sizeof(c->tail) - 1);
				c->tail[sizeof(c->tail) - 1] = (char)p[i];
			}
			c->linelen++;
		}
	}
}

/* Bytes were added to the connection's input: scan them. */
static void
scan_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct dc_conn *c = arg;
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[8];
	size_t done = 0;
	int i, nv;

	if (info->n_added == 0 || c->stopped)
		return;
	if (c->phase == P_FIRST)
		c->phase = P_HEAD;	/* its deadline runs since accept */
	while (done < info->n_added && !c->stopped) {
		if (evbuffer_ptr_set(buf, &pos, info->orig_size + done,
		    EVBUFFER_PTR_SET) != 0)
			break;
		nv = evbuffer_peek(buf, (ev_ssize_t)(info->n_added - done),
		    &pos, v, 8);
		if (nv <= 0)
			break;
		for (i = 0; i < nv && i < 8 && done < info->n_added; i++) {
			size_t len = v[i].iov_len;

			if (len > info->n_added - done)
				len = info->n_added - done;
			scan(c, v[i].iov_base, len);
			done += len;
		}
	}
	if (c->kill)
		event_active(&c->timer, EV_TIMEOUT, 1);
}

/* --- lifecycle --- */

static void
conn_free(struct dc_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		C.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->fd >= 0 && c->fd < C.nby_fd && C.by_fd[c->fd] == c)
		C.by_fd[c->fd] = NULL;
	if (event_initialized(&c->timer))
		evtimer_del(&c->timer);
	C.count--;
	__atomic_store_n(&C.w->stats->conns_open, (uint64_t)C.count,
	    __ATOMIC_RELAXED);
	free(c);
	if (C.count < C.max_clients)
		resume_accept(PAUSE_FULL);
}

/* evhttp closes the connection (client gone, error, timeout, or done). */
static void
conn_gone(struct evhttp_connection *evcon, void *arg)
{
	struct dc_conn *c = arg;
	dc_conn_closecb cb = c->cb;

	c->cb = NULL;
	if (c->scan_cb != NULL) {
		/* evhttp drains the buffers next: nothing left to scan */
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev),
		    c->scan_cb);
		c->scan_cb = NULL;
	}
	if (cb != NULL)
		cb(evcon, c->cb_arg);
	conn_free(c);
}

static int
remember_fd(struct dc_conn *c)
{
	struct dc_conn **p;
	int n;

	if (c->fd >= C.nby_fd) {
		for (n = C.nby_fd > 0 ? C.nby_fd : 256; n <= c->fd; n *= 2)
			;
		if ((p = realloc(C.by_fd, (size_t)n * sizeof(*p))) == NULL)
			return DC_ENOMEM;
		memset(p + C.nby_fd, 0, (size_t)(n - C.nby_fd) * sizeof(*p));
		C.by_fd = p;
		C.nby_fd = n;
	}
	C.by_fd[c->fd] = c;
	return DC_OK;
}

/* Was the socket accepted on 127.0.0.0/8 or ::1 (where Host is checked)? */
static int
local_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const void *)&ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	return ss.ss_family == AF_INET6 &&
	    (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
	    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	    sin6->sin6_addr.s6_addr[12] == 127));
}

/*
 * In the pass that accepted it, after evhttp set the connection up:
 * take its close callback over.  A connection evhttp gave up on at once
 * has cleared its bufferevent's callbacks; the reference taken in
 * make_bev kept the bufferevent itself alive until here.
 */
static void
adopt(evutil_socket_t fd, short what, void *arg)
{
	struct dc_conn *c = arg;
	struct bufferevent *bev = c->bev;
	bufferevent_data_cb rcb = NULL;
	void *cbarg = NULL;
	int one = 1;

	bufferevent_getcb(bev, &rcb, NULL, NULL, &cbarg);
	if (rcb == NULL || cbarg == NULL ||
	    (c->fd = bufferevent_getfd(bev)) < 0 || remember_fd(c) != DC_OK) {
		/* gone already, or no memory to follow it: close it */
		if (c->scan_cb != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_input(bev),
			    c->scan_cb);
		c->fd = -1;
		if (rcb != NULL && cbarg != NULL)
			evhttp_connection_free(cbarg);
		conn_free(c);
		bufferevent_decref(bev);
		return;
	}
	c->evcon = cbarg;
	c->loopback = local_is_loopback(c->fd);
	/*
	 * A reply leaves at once, whatever is unacknowledged before it
	 * (Nagle would hold a short last segment until then, and a client
	 * that delays its ACKs makes that up to 40 ms).  Fails on a unix
	 * socket, where there is nothing to hold.
	 */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evhttp_connection_set_closecb(c->evcon, conn_gone, c);
	evtimer_assign(&c->timer, C.w->base, deadline, c);
	arm(c, C.w->cfg->header_timeout);
	bufferevent_decref(bev);
}

/* evhttp's hook for a new connection's bufferevent; arg: TLS or not. */
static struct bufferevent *
make_bev(struct event_base *base, void *arg)
{
	static const struct timeval yield_tv = { 0, ACCEPT_YIELD_MS * 1000 };
	struct ssl_ctx_st *tls = arg;
	struct dc_conn *c;
	struct bufferevent *bev;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	bev = tls != NULL ? dc_tls_bev(base, tls) :
	    bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		free(c);
		return NULL;
	}
	c->bev = bev;
	c->tls = tls != NULL;
	c->fd = -1;
	c->phase = P_FIRST;
	c->scan_cb = evbuffer_add_cb(bufferevent_get_input(bev), scan_cb, c);
	c->next = C.conns;
	if (C.conns != NULL)
		C.conns->prev = c;
	C.conns = c;
	C.count++;
	__atomic_store_n(&C.w->stats->conns_open, (uint64_t)C.count,
	    __ATOMIC_RELAXED);
	__atomic_add_fetch(&C.w->stats->conns_accepted, 1, __ATOMIC_RELAXED);
	if (C.count >= C.max_clients)
		pause_accept(PAUSE_FULL);
	else if (C.yield != NULL && (C.paused & PAUSE_SHARE) == 0 &&
	    over_share()) {
		/* libevent's accept loop stops at the disabled listener */
		pause_accept(PAUSE_SHARE);
		evtimer_add(C.yield, &yield_tv);
	}
	bufferevent_incref(bev);
	event_assign(&c->timer, base, -1, 0, adopt, c);
	event_active(&c->timer, EV_TIMEOUT, 1);
	return bev;
}

static struct dc_conn *
conn_of(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	int fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	struct dc_conn *c;

	if (fd < 0 || fd >= C.nby_fd || (c = C.by_fd[fd]) == NULL ||
	    c->evcon != evcon)
		return NULL;
	return c;
}

void
dc_conn_set_closecb(struct evhttp_connection *evcon, dc_conn_closecb cb,
    void *arg)
{
	struct dc_conn *c = conn_of(evcon);

	if (c == NULL) {
		/* not one of ours (we ran out of memory making it) */
		evhttp_connection_set_closecb(evcon, cb, arg);
		return;
	}
	if (cb == NULL && c->cb != NULL) {
		c->idle_since = dc_now_ms();
		if (c->phase == P_HEAD)
			arm(c, C.w->cfg->header_timeout);
	}
	c->cb = cb;
	c->cb_arg = arg;
}

int
dc_conn_refused(struct evhttp_connection *evcon, const char **why)
{
	struct dc_conn *c = conn_of(evcon);

	if (c == NULL)
		return 0;
	c->dispatched++;
	if (c->refused_head == 0 || c->dispatched < c->refused_head)
		return 0;
	__atomic_add_fetch(&C.w->stats->requests_refused, 1, __ATOMIC_RELAXED);
	*why = c->refused_why;
	return c->refused_status;
}

int
dc_conn_drain(uint64_t grace_ms)
{
	struct dc_conn *c, *next;
	uint64_t now = dc_now_ms();
	int avail, n = 0;

	for (c = C.conns; c != NULL; c = next) {
		next = c->next;
		n++;
		if (c->evcon == NULL || c->cb != NULL || c->phase != P_IDLE ||
		    now - c->idle_since < grace_ms)
			continue;
		if (ioctl(c->fd, FIONREAD, &avail) == 0 && avail > 0)
			continue;	/* a request is arriving */
		evhttp_connection_free(c->evcon);	/* frees c */
		n--;
	}
	return n;
}

void
dc_conn_upgraded(struct evhttp_connection *evcon)
{
	struct dc_conn *c = conn_of(evcon);

	if (c == NULL)
		return;
	if (c->scan_cb != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev),
		    c->scan_cb);
		c->scan_cb = NULL;
	}
	c->stopped = 1;
	c->kill = 0;
	c->phase = P_UPGRADED;
	evtimer_del(&c->timer);
}

int
dc_conn_is_loopback(struct evhttp_connection *evcon)
{
	struct dc_conn *c = conn_of(evcon);

	return c != NULL && c->loopback;
}

int
dc_conn_is_plain(struct evhttp_connection *evcon)
{
	struct dc_conn *c = conn_of(evcon);

	return c != NULL && !c->tls;
}

int
dc_conn_count(void)
{
	return C.count;
}

void
dc_conn_setup(struct dc_worker *w, struct evhttp *http,
    struct ssl_ctx_st *tls)
{
	struct rlimit rl;
	int nofile = 1024;

	/* one evhttp for plain listeners, one for TLS ones: one state */
	evhttp_set_bevcb(http, make_bev, tls);
	if (C.w != NULL)
		return;
	C.w = w;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		nofile = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
	/* auto: three quarters of the descriptors, the rest for targets */
	C.max_clients = w->cfg->max_clients > 0 ? w->cfg->max_clients :
	    nofile / 4 * 3;
	if (C.max_clients < 1)
		C.max_clients = 1;
	if (w->cfg->max_clients > nofile - 32)
		log_warn("max_clients %d is near or above this worker's limit "
		    "of %d open files: accepting will pause when they run out",
		    w->cfg->max_clients, nofile);
	C.resume = evtimer_new(w->base, resume_tick, NULL);
	C.yield = evtimer_new(w->base, yield_tick, NULL);
}

void
dc_conn_quiet(void)
{
	struct dc_conn *c;

	C.nlev = 0;
	for (c = C.conns; c != NULL; c = c->next)
		c->cb = NULL;
}

void
dc_conn_teardown(void)
{
	struct dc_conn *c;

	/* evhttp_free closed every connection; these were never adopted */
	while ((c = C.conns) != NULL)
		conn_free(c);
	if (C.resume != NULL)
		event_free(C.resume);
	C.resume = NULL;
	if (C.yield != NULL)
		event_free(C.yield);
	C.yield = NULL;
	free(C.by_fd);
	C.by_fd = NULL;
	C.nby_fd = 0;
	C.nlev = 0;
	C.w = NULL;
}
