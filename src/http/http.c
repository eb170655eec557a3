/*
 * http.c - the request layer every route shares.
 *
 * One evhttp generic callback receives every request, gives it a context
 * (struct dc_req) and a request id, checks the registry generation, finds
 * the route by method and path, and calls its handler.  A handler replies
 * exactly once, now or later, with dc_reply_*; the reply writes the access
 * log line and frees the context.
 *
 * The client may go away while a deferred reply is pending.  libevent
 * 2.1 then detaches the request from its connection without freeing it;
 * the connection's close callback tells us, we cancel the work we can,
 * and the eventual evhttp_send_reply() frees the detached request.  So a
 * completion never touches freed memory, and nothing leaks.
 *
 * A client that half-closes its connection after its request (shutdown
 * of its writing side) still reads the reply; one that closed it whole
 * does not.  Both look alike (an EOF), so an EOF only sends an interim
 * 100 Continue, which a closed socket answers with a reset: that, not
 * the EOF, says the client is gone (client_eof below).
 *
 * Connections themselves (accept limits, deadlines, the scan of request
 * heads, draining at shutdown) are conn.c's.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <assert.h>
#include <dirent.h>
#include <poll.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <sys/queue.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "dc.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "model.h"
#include "pyjson.h"
#include "shreg.h"
#include "util.h"
#include "worker.h"

#define JSON_MAX_DEPTH	32
#define PROBE_POLL_MS	50	/* after an EOF, look for a reset */

/* Requests in flight, so a worker that leaves can free them. */
static struct dc_req *live_reqs;

/* Parses every request body, reset in between (its stack is sizable). */
static struct json_tokener *req_tok;

static const struct dc_route *const route_tables[] = {
	dc_routes_ops,
	dc_routes_databases,
	dc_routes_chat,
	dc_routes_tools,
	dc_routes_system,
	dc_routes_conversations,
	dc_routes_feedback,
	dc_routes_datapoints,
	NULL
};

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:	return "GET";
	case EVHTTP_REQ_POST:	return "POST";
	case EVHTTP_REQ_PUT:	return "PUT";
	case EVHTTP_REQ_PATCH:	return "PATCH";
	case EVHTTP_REQ_DELETE:	return "DELETE";
	case EVHTTP_REQ_HEAD:	return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default:		return "OTHER";
	}
}

/* Match path against pattern segment by segment (http.h). */
int
dc_http_match_path(const char *pattern, const char *path,
    char *args[DC_MAX_PATH_ARGS], int *nargs)
{
	const char *p = pattern, *s = path;
	int n = 0, i;

	while (*p != '\0' && *s != '\0') {
		if (*p == '{') {
			const char *pe = strchr(p, '}'), *se = strchr(s, '/');
			size_t len;

			if (pe == NULL)
				goto fail;
			len = se != NULL ? (size_t)(se - s) : strlen(s);
			if (len == 0 || n >= DC_MAX_PATH_ARGS)
				goto fail;
			if (args != NULL &&
			    (args[n] = strndup(s, len)) == NULL)
				goto fail;
			n++;
			p = pe + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			goto fail;
		p++;
		s++;
	}
	if (*p == '\0' && *s == '\0') {
		if (nargs != NULL)
			*nargs = n;
		return 1;
	}
fail:
	/* a partial match leaves nothing behind */
	for (i = 0; args != NULL && i < n; i++) {
		free(args[i]);
		args[i] = NULL;
	}
	return 0;
}

/* The same, capturing into r's args when r is not NULL. */
static int
match_path(const char *pattern, const char *path, struct dc_req *r)
{
	if (r == NULL)
		return dc_http_match_path(pattern, path, NULL, NULL);
	return dc_http_match_path(pattern, path, r->args, &r->nargs);
}

static void
free_args(struct dc_req *r)
{
	int i;

	for (i = 0; i < DC_MAX_PATH_ARGS; i++) {
		free(r->args[i]);
		r->args[i] = NULL;
	}
	r->nargs = 0;
}

static void
req_free(struct dc_req *r)
{
	if (r->live_prev != NULL)
		r->live_prev->live_next = r->live_next;
	else
		live_reqs = r->live_next;
	if (r->live_next != NULL)
		r->live_next->live_prev = r->live_prev;
	if (r->timer_set)
		evtimer_del(&r->timer);
	if (r->peer_set)
		event_del(&r->peer_ev);
	free_args(r);
	free(r->path);
	free(r);
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct dc_req *r = arg;
	dc_req_cancel_cb cb = r->cancel;

	/*
	 * The client left.  Cancellable work is stopped and the context
	 * freed now; other work replies when it completes, and that reply
	 * only frees the detached request.
	 */
	log_debug("%s client closed the connection", r->id);
	r->gone = 1;
	if (r->peer_set) {
		/* its fd is about to be closed */
		event_del(&r->peer_ev);
		r->peer_set = 0;
	}
	if (cb != NULL) {
		r->cancel = NULL;
		cb(r, r->cancel_arg);
		dc_reply_error(r, 499, "client closed the connection");
	}
}

/* Upper bounds of the duration histogram, in microseconds. */
const uint64_t dc_duration_bounds_us[DC_METRIC_BUCKETS - 1] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000, 10000000
};

static void
account(struct dc_worker_stats *st, int route, int status, uint64_t us)
{
	int cls = status / 100 - 1, b;

	if (cls < 0 || cls > 4)
		cls = 4;
	__atomic_add_fetch(&st->route_status[route][cls], 1, __ATOMIC_RELAXED);
	for (b = 0; b < DC_METRIC_BUCKETS - 1; b++)
		if (us <= dc_duration_bounds_us[b])
			break;
	__atomic_add_fetch(&st->duration_bucket[b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->duration_us_sum, us, __ATOMIC_RELAXED);
}

int
dc_http_route_at(int idx, const char **method, const char **pattern)
{
	const struct dc_route *rt;
	int i, n = 0;

	for (i = 0; route_tables[i] != NULL; i++)
		for (rt = route_tables[i]; rt->pattern != NULL; rt++, n++)
			if (n == idx) {
				*method = rt->method;
				*pattern = rt->pattern;
				return DC_OK;
			}
	return DC_ENOENT;
}

/* The client's address for the access log: numeric, or "unix". */
static void
client_address(struct evhttp_connection *evcon, char *buf, size_t size)
{
	const struct sockaddr *sa;

	dc_strlcpy(buf, "-", size);
	if (evcon == NULL ||
	    (sa = evhttp_connection_get_addr(evcon)) == NULL)
		return;
	if (sa->sa_family == AF_UNIX)
		dc_strlcpy(buf, "unix", size);
	else if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, buf, size);
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, buf, size);
}

/* Account the reply and write its access log line. */
static void
finish(struct dc_req *r, int status, size_t bytes)
{
	struct dc_worker *w = r->w;
	struct evhttp_connection *evcon = NULL;
	struct dc_access a;
	const char *ua = NULL;
	char client[INET6_ADDRSTRLEN + 1];

	r->replied = 1;
	r->status = status;
	if (!r->gone) {
		evcon = evhttp_request_get_connection(r->req);
		ua = evhttp_find_header(evhttp_request_get_input_headers(
		    r->req), "User-Agent");
	}
	client_address(evcon, client, sizeof(client));
	a.id = r->id;
	a.client = client;
	a.method = r->method;
	a.path = r->path != NULL ? r->path : "-";
	a.user_agent = ua != NULL ? ua : "-";
	a.status = status;
	a.bytes = bytes;
	a.ms = dc_now_ms() - r->start_ms;
	a.gone = r->gone;
	dc_log_access(&a);
	account(w->stats, r->route_idx, status, dc_now_us() - r->start_us);
	if (status < 300)
		__atomic_add_fetch(&w->stats->status_2xx, 1, __ATOMIC_RELAXED);
	else if (status < 500)
		__atomic_add_fetch(&w->stats->status_4xx, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&w->stats->status_5xx, 1, __ATOMIC_RELAXED);
	if (!r->gone && (evcon = evhttp_request_get_connection(r->req)) != NULL)
		dc_conn_set_closecb(evcon, NULL, NULL);
}

/* --- CORS, as Starlette's CORSMiddleware does it for DataChat --- */

/* Methods a preflight may ask for: allow_methods=["*"] in DataChat. */
#define CORS_METHODS	"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"

int
dc_http_origin_allowed(const struct dc_config *cfg, const char *origin)
{
	return origin != NULL && dc_origin_listed(cfg->cors_origins, origin);
}

/*
 * An actual request from a browser (it carries Origin): an allowed
 * origin is echoed with credentials allowed and Vary: Origin; with "*"
 * configured, "*" is sent unless the request carries a cookie (a browser
 * refuses "*" with credentials).  Other origins get no CORS header.
 */
static void
cors_headers(struct dc_req *r, struct evkeyvalq *h)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(in, "Origin");

	if (origin == NULL || !dc_http_origin_allowed(r->w->cfg, origin))
		return;
	if (dc_origin_list_any(r->w->cfg->cors_origins) &&
	    evhttp_find_header(in, "Cookie") == NULL) {
		evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
	} else {
		evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(h, "Vary", "Origin");
	}
	evhttp_add_header(h, "Access-Control-Allow-Credentials", "true");
}

/*
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered here for every path, before routing, as the middleware does:
 * 200 "OK" when the origin and the method are allowed, with the headers
 * the browser asked for mirrored back (allow_headers=["*"]); 400 naming
 * what is not allowed otherwise, without any Access-Control-Allow-*
 * header, so the browser blocks the request.
 */
static void
cors_preflight(struct dc_req *r, const char *origin, const char *method)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	const char *want = evhttp_find_header(in,
	    "Access-Control-Request-Headers");
	int origin_ok = dc_http_origin_allowed(r->w->cfg, origin);
	static const char *const methods[] = { "DELETE", "GET", "HEAD",
	    "OPTIONS", "PATCH", "POST", "PUT" };
	int method_ok = 0;
	const char *body;
	size_t i;

	/* an exact, case-sensitive match, as Starlette compares it */
	for (i = 0; i < DC_ARRAY_SIZE(methods); i++)
		if (strcmp(method, methods[i]) == 0)
			method_ok = 1;

	evhttp_add_header(h, "Vary", "Origin");
	if (origin_ok && method_ok) {
		evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(h, "Access-Control-Allow-Methods",
		    CORS_METHODS);
		evhttp_add_header(h, "Access-Control-Max-Age", "600");
		evhttp_add_header(h, "Access-Control-Allow-Credentials",
		    "true");
		if (want != NULL)
			evhttp_add_header(h, "Access-Control-Allow-Headers",
			    want);
		body = "OK";
	} else if (!origin_ok && !method_ok)
		body = "Disallowed CORS origin, method";
	else if (!origin_ok)
		body = "Disallowed CORS origin";
	else
		body = "Disallowed CORS method";
	/* the headers are set: send_buffer must not add them again */
	r->cors_done = 1;
	dc_reply_text(r, origin_ok && method_ok ? 200 : 400,
	    "text/plain; charset=utf-8", body, strlen(body));
}

static void
flush_done(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	if (evcon != NULL)
		dc_conn_set_closecb(evcon, NULL, NULL);
	dc_worker_request_done(arg);
}

static void
flush_closed(struct evhttp_connection *evcon, void *arg)
{
	/* the client left before the reply was written */
	dc_worker_request_done(arg);
}

/*
 * Put a reply on the wire now, rather than on the next pass of the loop
 * once the socket reports it writable (it nearly always is): one epoll
 * change and one wakeup less per request.  When all of it went, tell
 * evhttp as its write callback would; else that callback still comes.
 */
static void
write_now(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	struct evbuffer *out;
	int fd;

	if (bev == NULL || (fd = bufferevent_getfd(bev)) < 0 ||
	    !dc_conn_is_plain(evcon))
		return;		/* TLS: the bufferevent writes records */
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0 || evbuffer_write(out, fd) <= 0 ||
	    evbuffer_get_length(out) != 0)
		return;
	bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
}

static void
send_buffer(struct dc_req *r, int status, const char *ctype,
    struct evbuffer *buf)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct dc_worker *w = r->w;
	struct evhttp_connection *evcon;
	const char *reason;

	if (r->replied) {
		log_error("%s replied twice (bug)", r->id);
		return;
	}
	finish(r, status, buf != NULL ? evbuffer_get_length(buf) : 0);
	if (!r->gone && !r->cors_done)
		cors_headers(r, h);
	if (buf != NULL && evhttp_request_get_command(r->req) ==
	    EVHTTP_REQ_HEAD) {
		/* the headers GET would have, and no body */
		char cl[24];

		snprintf(cl, sizeof(cl), "%zu", evbuffer_get_length(buf));
		evhttp_add_header(h, "Content-Length", cl);
		evbuffer_drain(buf, evbuffer_get_length(buf));
	}
	if (ctype != NULL)
		evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "X-Request-Id", r->id);
	evhttp_add_header(h, "X-Datachatd-Worker", w->index_str);
	if (r->w->shutting_down)
		evhttp_add_header(h, "Connection", "close");
	switch (status) {
	case 200: reason = "OK"; break;
	case 201: reason = "Created"; break;
	case 202: reason = "Accepted"; break;
	case 204: reason = "No Content"; break;
	case 307: reason = "Temporary Redirect"; break;
	case 400: reason = "Bad Request"; break;
	case 401: reason = "Unauthorized"; break;
	case 403: reason = "Forbidden"; break;
	case 404: reason = "Not Found"; break;
	case 405: reason = "Method Not Allowed"; break;
	case 409: reason = "Conflict"; break;
	case 411: reason = "Length Required"; break;
	case 413: reason = "Payload Too Large"; break;
	case 415: reason = "Unsupported Media Type"; break;
	case 422: reason = "Unprocessable Entity"; break;
	case 426: reason = "Upgrade Required"; break;
	case 429: reason = "Too Many Requests"; break;
	case 431: reason = "Request Header Fields Too Large"; break;
	case 500: reason = "Internal Server Error"; break;
	case 501: reason = "Not Implemented"; break;
	case 502: reason = "Bad Gateway"; break;
	case 503: reason = "Service Unavailable"; break;
	case 504: reason = "Gateway Timeout"; break;
	case 505: reason = "HTTP Version Not Supported"; break;
	case 507: reason = "Insufficient Storage"; break;
	default: reason = NULL; break;
	}
	if (r->gone) {
		/* this just frees the detached request */
		evhttp_send_reply(r->req, status, reason, buf);
		req_free(r);
		dc_worker_request_done(w);
		return;
	}
	/*
	 * The request stays in flight until its reply is on the wire, so a
	 * smart shutdown does not cut it off: flush_done or flush_closed,
	 * whichever comes first, ends it.
	 */
	evhttp_request_set_on_complete_cb(r->req, flush_done, w);
	evcon = evhttp_request_get_connection(r->req);
	if (evcon != NULL)
		dc_conn_set_closecb(evcon, flush_closed, w);
	evhttp_send_reply(r->req, status, reason, buf);
	req_free(r);
	if (evcon != NULL)
		write_now(evcon);
}

struct evhttp_connection *
dc_req_switch_protocols(struct dc_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct dc_worker *w = r->w;
	struct evhttp_connection *evcon;

	/* called while the request is dispatched: the client is there */
	assert(!r->replied && !r->gone && r->cancel == NULL);
	evcon = evhttp_request_get_connection(r->req);
	assert(evcon != NULL);
	finish(r, 101, 0);
	evhttp_add_header(h, "X-Request-Id", r->id);
	evhttp_add_header(h, "X-Datachatd-Worker", w->index_str);
	/* a 101 has no body: evhttp writes the head and nothing else */
	evhttp_send_reply_start(r->req, 101, "Switching Protocols");
	req_free(r);
	/* after req_free, which hands the connection back to its timers */
	dc_conn_upgraded(evcon);
	dc_worker_request_done(w);
	return evcon;
}

void
dc_reply_text(struct dc_req *r, int status, const char *ctype,
    const char *body, size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || (len > 0 && evbuffer_add(buf, body, len) != 0)) {
		/* out of memory: the status says it, there is no room for more */
		status = 500;
		ctype = NULL;
		if (buf != NULL)
			evbuffer_drain(buf, evbuffer_get_length(buf));
	}
	send_buffer(r, status, ctype, buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

/* 500 out of memory without building anything that could fail again */
static void
reply_oom(struct dc_req *r)
{
	static const char body[] = "{\"detail\":\"out of memory\"}";

	dc_reply_text(r, 500, "application/json", body, sizeof(body) - 1);
}

void
dc_reply_json(struct dc_req *r, int status, struct json_object *obj)
{
	struct dc_jw jw;

	if (obj == NULL) {
		reply_oom(r);
		return;
	}
	/* written by jsonw.c, which notices running out of memory */
	dc_jw_init(&jw);
	dc_jw_json(&jw, obj);
	json_object_put(obj);
	if (jw.err)
		reply_oom(r);
	else
		dc_reply_text(r, status, "application/json", jw.buf, jw.len);
	dc_jw_free(&jw);
}

void
dc_reply_error(struct dc_req *r, int status, const char *fmt, ...)
{
	struct json_object *o;
	struct dc_jb b = { 0 };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_object_new_object();
	dc_jb_add(&b, o, "detail", json_object_new_string(msg));
	if ((o = dc_jb_done(&b, o)) == NULL)
		reply_oom(r);
	else
		dc_reply_json(r, status, o);
}

void
dc_reply_empty(struct dc_req *r, int status)
{
	send_buffer(r, status, NULL, NULL);
}

/*
 * FastAPI reads a body as JSON when there is no Content-Type, or when it
 * is application/json or application/<anything>+json (parameters
 * allowed); any other type leaves the body as bytes, which no model
 * accepts.
 */
static int
ctype_is_json(const char *ctype)
{
	const char *p = ctype, *slash, *end;
	size_t n;

	if (ctype == NULL)
		return 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 1;	/* an empty header is no header to FastAPI */
	if ((slash = strchr(p, '/')) == NULL)
		return 0;
	for (end = slash + 1; *end != '\0' && *end != ';' && *end != ' ' &&
	    *end != '\t'; end++)
		;
	n = (size_t)(end - slash - 1);
	if ((size_t)(slash - p) != 11 || strncasecmp(p, "application", 11) != 0)
		return 0;
	return (n == 4 && strncasecmp(slash + 1, "json", 4) == 0) ||
	    (n >= 5 && strncasecmp(end - 5, "+json", 5) == 0);
}

void
dc_reply_422(struct dc_req *r, struct json_object *errs)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };

	dc_jb_add(&b, o, "detail", errs);
	if ((o = dc_jb_done(&b, o)) == NULL)
		dc_reply_error(r, 500, "out of memory");
	else
		dc_reply_json(r, 422, o);
}

/* FastAPI's json_invalid: the message and position json.loads gives. */
static void
reply_json_invalid(struct dc_req *r, const char *data, size_t len)
{
	struct json_object *errs, *loc, *ctx, *input;
	struct dc_jb b = { 0 };
	const char *msg;
	size_t pos;
	int rc;

	if (dc_pyjson_error(data, len, &msg, &pos) != 1) {
		/* Python would have read it (NaN, deep nesting): we do not */
		dc_reply_error(r, 400, "There was an error parsing the body");
		return;
	}
	errs = json_object_new_array();
	loc = json_object_new_array();
	ctx = json_object_new_object();
	dc_jb_push(&b, loc, json_object_new_string("body"));
	dc_jb_push(&b, loc, json_object_new_int64((int64_t)pos));
	dc_jb_add(&b, ctx, "error", json_object_new_string(msg));
	loc = dc_jb_done(&b, loc);
	ctx = dc_jb_done(&b, ctx);
	input = json_object_new_object();
	rc = errs == NULL || loc == NULL || ctx == NULL || input == NULL ? -1 :
	    dc_model_error(errs, "json_invalid", loc, "JSON decode error",
	    input, ctx);
	if (rc < 0 && (loc == NULL || ctx == NULL || input == NULL || errs ==
	    NULL)) {
		/* dc_model_error took neither: drop what was made */
		json_object_put(loc);
		json_object_put(ctx);
	}
	json_object_put(input);
	if (rc < 0) {
		json_object_put(errs);
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	dc_reply_422(r, errs);
}

/* 1 when the n bytes at s are all JSON whitespace. */
static int
json_blanks(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
		    s[i] != '\n')
			return 0;
	return 1;
}

int
dc_req_body(struct dc_req *r, struct json_object **out, int *absent)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *ctype = evhttp_find_header(h, "Content-Type");
	struct json_object *o = NULL;
	size_t len = evbuffer_get_length(in);
	enum json_tokener_error jerr;
	const char *data;

	*out = NULL;
	*absent = 0;
	if (len > (size_t)r->w->cfg->max_body_size) {
		dc_reply_error(r, 413, "request body is %zu bytes; the limit "
		    "is %d (max_body_size)", len, r->w->cfg->max_body_size);
		return DC_EINVAL;
	}
	if (len == 0) {
		*absent = 1;
		return DC_OK;
	}
	data = (const char *)evbuffer_pullup(in, -1);
	if (data == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return DC_EINVAL;
	}
	if (!dc_pyjson_utf8_ok(data, len)) {
		dc_reply_error(r, 400, "There was an error parsing the body");
		return DC_EINVAL;
	}
	if (!ctype_is_json(ctype)) {
		/* bytes: no model takes them; they are the error's input */
		*out = json_object_new_string_len(data, (int)len);
		return *out != NULL ? DC_OK : DC_ENOMEM;
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;	/* json.loads(bytes) reads UTF-8 with a BOM */
		len -= 3;
	}
	if (req_tok == NULL &&
	    (req_tok = json_tokener_new_ex(JSON_MAX_DEPTH)) != NULL)
		json_tokener_set_flags(req_tok, JSON_TOKENER_STRICT);
	if (req_tok == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return DC_EINVAL;
	}
	json_tokener_reset(req_tok);
	o = json_tokener_parse_ex(req_tok, data, (int)len);
	jerr = json_tokener_get_error(req_tok);
	/* trailing whitespace is fine (the body is not NUL-terminated) */
	if (jerr != json_tokener_success ||
	    !json_blanks(data + json_tokener_get_parse_end(req_tok),
	    len - json_tokener_get_parse_end(req_tok))) {
		json_object_put(o);
		reply_json_invalid(r, data, len);
		return DC_EINVAL;
	}
	if (o == NULL)
		*absent = 1;	/* the body was JSON null */
	*out = o;
	return DC_OK;
}

int
dc_req_model(struct dc_req *r, const struct dc_model *m, int optional,
    struct dc_val *vals, struct json_object **body)
{
	struct json_object *o = NULL, *errs = NULL, *empty = NULL;
	int absent, n;

	*body = NULL;
	if (dc_req_body(r, &o, &absent) != DC_OK)
		return DC_EINVAL;
	if ((errs = json_object_new_array()) == NULL)
		goto oom;
	if (absent && !optional) {
		if (dc_model_missing_body(errs) < 0)
			goto oom;
		json_object_put(o);
		dc_reply_422(r, errs);
		return DC_EINVAL;
	}
	if (absent) {
		/* an optional body left out: every field at its default */
		if ((empty = json_object_new_object()) == NULL)
			goto oom;
		n = dc_model_validate(m, empty, "body", vals, errs);
		json_object_put(o);
		o = empty;
	} else
		n = dc_model_validate(m, o, "body", vals, errs);
	if (n < 0)
		goto oom;
	if (n > 0) {
		json_object_put(o);
		dc_reply_422(r, errs);
		return DC_EINVAL;
	}
	json_object_put(errs);
	*body = o;
	return DC_OK;
oom:
	json_object_put(o);
	json_object_put(errs);
	dc_reply_error(r, 500, "out of memory");
	return DC_EINVAL;
}

int
dc_req_query(struct dc_req *r, const struct dc_model *m,
    struct dc_val *vals, struct json_object **query)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq kv;
	struct evkeyval *e;
	struct json_object *o, *errs;
	struct dc_jb b = { 0 };
	int n;

	*query = NULL;
	if ((o = json_object_new_object()) == NULL ||
	    (errs = json_object_new_array()) == NULL) {
		json_object_put(o);
		dc_reply_error(r, 500, "out of memory");
		return DC_EINVAL;
	}
	TAILQ_INIT(&kv);
	if (q != NULL && evhttp_parse_query_str(q, &kv) == 0) {
		/* a repeated parameter: the last one, as Starlette reads it */
		TAILQ_FOREACH(e, &kv, next)
			dc_jb_add(&b, o, e->key, json_object_new_string(e->value));
	}
	evhttp_clear_headers(&kv);
	n = b.failed ? -1 : dc_model_validate(m, o, "query", vals, errs);
	if (n != 0) {
		json_object_put(o);
		if (n < 0) {
			json_object_put(errs);
			dc_reply_error(r, 500, "out of memory");
		} else
			dc_reply_422(r, errs);
		return DC_EINVAL;
	}
	json_object_put(errs);
	*query = o;
	return DC_OK;
}

static void
request_timed_out(struct dc_req *r)
{
	dc_req_cancel_cb cb = r->cancel;

	r->cancel = NULL;
	if (cb != NULL)
		cb(r, r->cancel_arg);
	dc_reply_error(r, 504, "request timed out after %d s "
	    "(request_timeout)", r->w->cfg->request_timeout);
}

/*
 * libevent 2.1 stops reading a connection once its request is read, so
 * a client that hangs up while its reply is deferred goes unnoticed.
 * While work is pending we watch the socket ourselves: readable with
 * nothing to read (EOF) or an error means the client left, or only
 * stopped writing (a half-close): see client_left.  Bytes of a
 * pipelined next request are left alone, and the watch stops.
 *
 * The watch starts in the pass that read the request, where evhttp
 * stopped reading the socket, so the socket stays in epoll while the
 * request waits: libevent's changelist turns evhttp's removal and our
 * addition into one EPOLL_CTL_MOD.  With the reply written in one pass
 * (write_now), a request costs that one epoll change, where evhttp alone
 * makes three (remove, add for writing, modify for reading).
 */
static void
client_gone(struct dc_req *r)
{
	struct evhttp_connection *evcon;
	dc_req_cancel_cb cb;

	log_debug("%s client closed the connection", r->id);
	/* libevent does not know yet: it must not call us back later */
	evcon = evhttp_request_get_connection(r->req);
	if (evcon != NULL)
		dc_conn_set_closecb(evcon, NULL, NULL);
	r->gone = 1;
	event_del(&r->peer_ev);
	cb = r->cancel;
	r->cancel = NULL;
	if (cb != NULL) {
		cb(r, r->cancel_arg);
		dc_reply_error(r, 499, "client closed the connection");
	}
}

/* After an EOF: has a keepalive probe found the socket closed? */
static void
probe_check(evutil_socket_t fd, short what, void *arg)
{
	struct dc_req *r = arg;
	struct pollfd p = { r->peer_fd, POLLOUT, 0 };

	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
		client_gone(r);
}

/*
 * EOF on a request's connection: the client closed it, or only shut
 * its writing side down and waits for the reply.  TCP tells them apart
 * once data is sent: a closed socket answers it with a reset.  So an
 * HTTP/1.1 client gets an interim "100 Continue", which every client
 * must accept before the final answer (RFC 9110, 15.2), and a timer
 * looks for the reset (a unix socket shows a full close as POLLHUP, or
 * the send fails).  Written straight to the socket: evhttp has nothing
 * in flight for this connection while the request is being answered.
 */
static void
client_eof(struct dc_req *r, int fd)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct timeval tv = { 0, PROBE_POLL_MS * 1000 };
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	/* libevent 2.1 has no getter for the version: its struct says it */
	int v11 = r->req->major > 1 || (r->req->major == 1 &&
	    r->req->minor >= 1);

	event_del(&r->peer_ev);
	r->peer_fd = fd;
	evcon = evhttp_request_get_connection(r->req);
	bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	if (bev != NULL && v11 && dc_conn_is_plain(evcon) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    send(fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	    -1 && errno != EAGAIN && errno != EINTR) {
		client_gone(r);
		return;
	}
	event_assign(&r->peer_ev, r->w->base, -1, EV_PERSIST, probe_check, r);
	event_add(&r->peer_ev, &tv);
}

static void
peer_check(evutil_socket_t fd, short what, void *arg)
{
	struct dc_req *r = arg;
	ssize_t n;
	char c;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		event_del(&r->peer_ev);
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 0)
		client_eof(r, fd);
	else
		client_gone(r);
}

/* Start watching the client of a deferred request (see peer_check). */
static void
peer_watch(struct dc_req *r)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;

	if (r->peer_set || r->gone ||
	    (evcon = evhttp_request_get_connection(r->req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    bufferevent_getfd(bev) < 0)
		return;
	event_assign(&r->peer_ev, r->w->base, bufferevent_getfd(bev),
	    EV_READ | EV_PERSIST, peer_check, r);
	r->peer_set = 1;
	event_add(&r->peer_ev, NULL);
}

/* Arm the request's timer for what is left of request_timeout. */
static void
arm_deadline(struct dc_req *r, uint64_t now)
{
	uint64_t left = r->deadline_ms > now ? r->deadline_ms - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
	evtimer_add(&r->timer, &tv);
}

/* The request's one timer: request_timeout (504). */
static void
req_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dc_req *r = arg;
	uint64_t now = dc_now_ms();

	if (now < r->deadline_ms)
		arm_deadline(r, now);	/* it fired early */
	else
		request_timed_out(r);
}

void
dc_req_defer(struct dc_req *r, dc_req_cancel_cb cancel, void *arg)
{
	r->cancel = cancel;
	r->cancel_arg = arg;
	if (r->timer_set)
		return;
	r->deadline_ms = r->start_ms +
	    (uint64_t)r->w->cfg->request_timeout * 1000;
	evtimer_assign(&r->timer, r->w->base, req_timer, r);
	r->timer_set = 1;	/* request_timeout is 1 s at least */
	peer_watch(r);
	arm_deadline(r, dc_now_ms());
}

const char *
dc_req_peer(struct dc_req *r)
{
	struct evhttp_connection *evcon;
	ev_uint16_t port;
	char *addr = NULL;

	if (r->peer != NULL)
		return r->peer;
	if (r->req != NULL &&
	    (evcon = evhttp_request_get_connection(r->req)) != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	/* a unix socket's peer has no name: call it what it is */
	r->peer = addr != NULL && addr[0] != '\0' ? addr : "unix";
	return r->peer;
}

/*
 * Decode a path's percent-escapes into *out.  A % not followed by two
 * hex digits is refused (evhttp would keep it as it is), and so is an
 * escape of NUL (evhttp would cut the path short there: /a%00/b would
 * be routed as /a) or of another control character (it would reach the
 * log line).
 */
int
dc_http_decode_path(const char *raw, char **out)
{
	size_t n = strlen(raw), i, j;
	int hi, lo, v;
	char *p;

	*out = NULL;
	if ((p = malloc(n + 1)) == NULL)
		return DC_ENOMEM;
	for (i = j = 0; i < n; i++) {
		if (raw[i] != '%') {
			p[j++] = raw[i];
			continue;
		}
		if ((hi = dc_hexval(raw[i + 1])) < 0 ||
		    (lo = dc_hexval(raw[i + 2])) < 0)
			goto bad;
		v = hi << 4 | lo;
		if (v < 0x20 || v == 0x7f)
			goto bad;
		p[j++] = (char)v;
		i += 2;
	}
	p[j] = '\0';
	*out = p;
	return DC_OK;
bad:
	free(p);
	return DC_EINVAL;
}

/*
 * DNS rebinding: a page from evil.example whose name the attacker then
 * points at 127.0.0.1 reaches a loopback listener as a same-origin
 * request, with Host: evil.example.  On a loopback listener only
 * localhost, loopback addresses and server_names are served.
 */
static int
host_allowed(struct dc_req *r, struct evhttp_connection *evcon,
    struct evkeyvalq *in)
{
	const char *host = evhttp_find_header(in, "Host");

	if (host == NULL || evcon == NULL || !dc_conn_is_loopback(evcon) ||
	    dc_host_trusted(host, r->w->cfg->server_names))
		return 1;
	dc_reply_error(r, 403, "Host %.100s is not served on a loopback "
	    "listener: use localhost or a loopback address, or add the name "
	    "to server_names", host);
	return 0;
}

/*
 * A browser sends a cross-site POST (a form, or fetch with no-cors and a
 * body of any type) without asking first, and a WebSocket handshake
 * too.  Whatever its Content-Type, a state-changing request or a
 * handshake whose Origin is neither one of cors_origins nor the trusted
 * host it is sent to is refused before any route sees it.
 */
static int
origin_allowed(struct dc_req *r, struct evkeyvalq *in)
{
	const struct dc_config *cfg = r->w->cfg;
	const char *origin = evhttp_find_header(in, "Origin"), *up;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);

	if (origin == NULL)
		return 1;	/* not a browser, or a same-origin GET */
	up = evhttp_find_header(in, "Upgrade");
	if (cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PUT &&
	    cmd != EVHTTP_REQ_PATCH && cmd != EVHTTP_REQ_DELETE &&
	    (up == NULL || strcasecmp(up, "websocket") != 0))
		return 1;
	if (dc_http_origin_allowed(cfg, origin) ||
	    dc_origin_same_trusted(origin, evhttp_find_header(in, "Host"),
	    cfg->server_names))
		return 1;
	dc_reply_error(r, 403, "Origin %.100s is not allowed to change "
	    "anything here (cors_origins)", origin);
	return 0;
}

int
dc_http_origin_check(struct dc_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);

	return origin_allowed(r, in) ? DC_OK : DC_EINVAL;
}

/* "pid-n" in hex, as "%x-%llx" would write it (this is per request). */
static void
request_id(char *out, size_t sz, unsigned pid, unsigned long long n)
{
	static const char hex[] = "0123456789abcdef";
	char buf[40], *p = buf + sizeof(buf);

	*--p = '\0';
	do {
		*--p = hex[n & 0xf];
		n >>= 4;
	} while (n != 0);
	*--p = '-';
	do {
		*--p = hex[pid & 0xf];
		pid >>= 4;
	} while (pid != 0);
	dc_strlcpy(out, p, sz);
}

/*
 * Starlette's redirect_slashes: a path no route knows that ends in "/"
 * is answered 307 to the same URL without it, when some route (for any
 * method) knows that one.  Location is absolute, built from Host.
 */
static int
redirect_slash(struct dc_req *r, const struct evhttp_uri *uri,
    const char *raw)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const struct dc_route *rt;
	const char *host, *query;
	size_t len = strlen(r->path);
	char *path, *loc = NULL;
	int i, known = 0;

	if (len < 2 || r->path[len - 1] != '/' ||
	    (path = strndup(r->path, len - 1)) == NULL)
		return 0;
	for (i = 0; route_tables[i] != NULL && !known; i++)
		for (rt = route_tables[i]; rt->pattern != NULL; rt++)
			if (match_path(rt->pattern, path, NULL)) {
				known = 1;
				break;
			}
	free(path);
	if (!known)
		return 0;
	host = evhttp_find_header(in, "Host");
	query = evhttp_uri_get_query(uri);
	len = strlen(raw);
	while (len > 1 && raw[len - 1] == '/')
		len--;
	if (asprintf(&loc, "%s%s%.*s%s%s", host != NULL ? "http://" : "",
	    host != NULL ? host : "", (int)len, raw,
	    query != NULL ? "?" : "", query != NULL ? query : "") < 0) {
		dc_reply_error(r, 500, "out of memory");
		return 1;
	}
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "Location", loc);
	free(loc);
	dc_reply_empty(r, 307);
	return 1;
}

static void
dispatch(struct evhttp_request *req, void *arg)
{
	struct dc_worker *w = arg;
	const struct dc_route *rt;
	const struct evhttp_uri *uri;
	struct evhttp_connection *evcon;
	struct dc_req *r;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *raw, *origin, *acrm, *why = NULL;
	char allow[64];
	int i, idx, path_known = 0, refused = 0;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	r->live_next = live_reqs;
	if (live_reqs != NULL)
		live_reqs->live_prev = r;
	live_reqs = r;
	r->req = req;
	r->w = w;
	r->route_idx = DC_METRIC_ROUTES - 1;
	r->start_us = dc_now_us();
	r->start_ms = r->start_us / 1000;
	r->method = method_name(evhttp_request_get_command(req));
	request_id(r->id, sizeof(r->id), (unsigned)w->stats->pid,
	    ++w->next_req_id);
	w->inflight++;
	__atomic_store_n(&w->stats->inflight, w->inflight, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->stats->requests, 1, __ATOMIC_RELAXED);
	if ((evcon = evhttp_request_get_connection(req)) != NULL) {
		dc_conn_set_closecb(evcon, conn_closed, r);
		refused = dc_conn_refused(evcon, &why);
	}
	if (refused != 0) {
		if (req->major != 1 || (req->minor != 0 && req->minor != 1)) {
			/* evhttp would answer in the request's version */
			req->major = 1;
			req->minor = 1;
		}
		/* nothing behind this request is read: close after it */
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		dc_reply_error(r, refused, "%s", why);
		return;
	}

	uri = evhttp_request_get_evhttp_uri(req);
	raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (raw == NULL || dc_http_decode_path(raw, &r->path) != DC_OK) {
		dc_reply_error(r, 400, "malformed request path: a %% not "
		    "followed by two hex digits, or an escaped NUL or control "
		    "character");
		return;
	}
	/* every request sees the newest registry it can */
	dc_worker_sync_registry(w);

	if (!host_allowed(r, evcon, in) || !origin_allowed(r, in))
		return;		/* it replied */
	if (strcmp(r->method, "OPTIONS") == 0 &&
	    (origin = evhttp_find_header(in, "Origin")) != NULL &&
	    (acrm = evhttp_find_header(in,
	    "Access-Control-Request-Method")) != NULL) {
		cors_preflight(r, origin, acrm);
		return;
	}

	allow[0] = '\0';
	for (i = 0, idx = 0; route_tables[i] != NULL; i++) {
		for (rt = route_tables[i]; rt->pattern != NULL; rt++, idx++) {
			if (!match_path(rt->pattern, r->path, NULL))
				continue;
			path_known = 1;
			if (strcmp(rt->method, r->method) != 0 &&
			    !(strcmp(rt->method, "GET") == 0 &&
			    strcmp(r->method, "HEAD") == 0)) {
				if (strlen(allow) + strlen(rt->method) + 3 <
				    sizeof(allow)) {
					if (allow[0] != '\0')
						strcat(allow, ", ");
					strcat(allow, rt->method);
				}
				continue;
			}
			if (!match_path(rt->pattern, r->path, r)) {
				/* it matched above: only memory can fail */
				dc_reply_error(r, 500, "out of memory");
				return;
			}
			if (idx < DC_METRIC_ROUTES - 1)
				r->route_idx = idx;
			if (dc_auth_check(r, rt->role) != DC_OK)
				return;		/* it replied */
			rt->fn(r);
			return;
		}
	}
	if (path_known) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", allow);
		dc_reply_error(r, 405, "Method Not Allowed");
		return;
	}
	if (redirect_slash(r, uri, raw))
		return;
	dc_reply_error(r, 404, "Not Found");
}

static void
setup_one(struct dc_worker *w, struct evhttp *http, struct ssl_ctx_st *tls)
{
	const struct dc_config *c = w->cfg;

	dc_conn_setup(w, http, tls);
	/*
	 * Bodies up to max_body_size get a JSON 413 from dc_req_json; far
	 * larger ones are cut off by libevent before they fill memory.
	 */
	evhttp_set_max_body_size(http, (ev_ssize_t)c->max_body_size * 2 +
	    65536);
	evhttp_set_max_headers_size(http, c->max_header_size);
	/*
	 * evhttp stops reading while a request is answered, so this only
	 * bounds an idle connection between requests (and a reply's write);
	 * conn.c puts deadlines on the head and the body.
	 */
	evhttp_set_timeout(http, c->keepalive_timeout);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_default_content_type(http, "application/json");
	evhttp_set_gencb(http, dispatch, w);
}

void
dc_http_setup(struct dc_worker *w)
{
	/* the same routes behind both: only the bytes on the wire differ */
	setup_one(w, w->http, NULL);
	if (w->https != NULL)
		setup_one(w, w->https, w->tls);
}

void
dc_http_teardown(struct dc_worker *w)
{
	/* a fast exit with requests in flight: free their contexts */
	dc_conn_quiet();
	while (live_reqs != NULL) {
		live_reqs->cancel = NULL;
		req_free(live_reqs);
	}
	if (req_tok != NULL)
		json_tokener_free(req_tok);
	req_tok = NULL;
}
