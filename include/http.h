/*
 * http.h - the request layer shared by every route: a request context
 * that survives the client going away, JSON body parsing with limits,
 * JSON replies and errors ({"detail": ...}), the route table, and the
 * access log line (request id, method, path, status, duration).
 */
#ifndef DC_HTTP_H
#define DC_HTTP_H

#include <stdint.h>

#include <event2/event_struct.h>
#include <json-c/json.h>

struct evhttp_request;
struct dc_worker;
struct dc_req;

/* Abort callback for async work a request started (query, LLM call). */
typedef void (*dc_req_cancel_cb)(struct dc_req *r, void *arg);

#define DC_MAX_PATH_ARGS	2

struct dc_req {
	struct evhttp_request *req;	/* NULL once the client went away */
	struct dc_worker *w;
	char		 id[24];	/* request id, X-Request-Id */
	uint64_t	 start_ms;
	uint64_t	 start_us;
	int		 route_idx;	/* for the metrics */
	const char	*method;
	char		*path;		/* decoded path, no query */
	char		*args[DC_MAX_PATH_ARGS];	/* {id} captures */
	int		 nargs;
	int		 replied;
	int		 cors_done;	/* CORS headers already set */
	int		 gone;		/* the client closed the connection */
	int		 status;
	dc_req_cancel_cb cancel;
	void		*cancel_arg;
	struct event	 timer;		/* request_timeout */
	struct event	 peer_ev;	/* notices a client that hangs up */
	int		 timer_set;	/* timer assigned */
	int		 peer_set;	/* peer_ev assigned */
	int		 peer_fd;	/* after an EOF: the socket probed */
	uint64_t	 deadline_ms;	/* request_timeout expires */
	char		 who[72];	/* token name, for the audit log */
	int		 role;		/* the token's role (enum dc_role) */
	int		 operator_;	/* datachatctl's token: no quota */
	const char	*peer;		/* client address, once asked */
	struct dc_req	*live_prev, *live_next;	/* requests in flight */
};

/*
 * A handler that replies later registers how to abort its work: cancel
 * must stop the work so its completion never runs, and must not reply.
 * It also arms the request_timeout timer (504).
 */
void		 dc_req_defer(struct dc_req *r, dc_req_cancel_cb cancel,
		     void *arg);

/* Route handlers: reply now or later (exactly once) with dc_reply_*. */
typedef void (*dc_route_fn)(struct dc_req *r);

struct dc_route {
	const char	*method;	/* "GET", "POST", ... */
	const char	*pattern;	/* "/api/v1/databases/{id}" */
	dc_route_fn	 fn;
	int		 role;		/* least role allowed (enum dc_role) */
};

/*
 * Install the generic callback on w->http (and w->https, TLS); teardown
 * frees leftovers.
 */
void		 dc_http_setup(struct dc_worker *w);
void		 dc_http_teardown(struct dc_worker *w);

/* Replies.  dc_reply_json takes ownership of obj. */
void		 dc_reply_json(struct dc_req *r, int status,
		     struct json_object *obj);
void		 dc_reply_error(struct dc_req *r, int status,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void		 dc_reply_empty(struct dc_req *r, int status);
void		 dc_reply_text(struct dc_req *r, int status,
		     const char *ctype, const char *body, size_t len);

struct dc_model;
struct dc_val;

/*
 * Answer r 101 Switching Protocols (with the headers the caller set) and
 * hand its connection over: the access log line is written and r is
 * freed; the caller owns the connection from now on, its bufferevent
 * included, and ends it with evhttp_connection_free().
 */
struct evhttp_connection;
struct evhttp_connection *dc_req_switch_protocols(struct dc_req *r);

/*
 * The request body as FastAPI reads it: JSON when there is no
 * Content-Type or it is application/json or application/...+json; for any
 * other type the body's text (a JSON string), which no model accepts.
 * *absent is set for an empty body or JSON null.  On a body that is not
 * JSON it has replied (422 json_invalid with Python's message and
 * position, 400 for bytes that are not UTF-8, 413 past max_body_size)
 * and returns DC_EINVAL.
 */
int		 dc_req_body(struct dc_req *r, struct json_object **out,
		     int *absent);

/*
 * Read and validate the body against model m (model.h): vals filled,
 * *body (the caller's to put; vals point into it) on success.  A
 * missing body is 422 unless optional (DataChat's "X | None = None"
 * bodies), when every field takes its default.  On failure it has
 * replied (422 with pydantic's error list) and returns DC_EINVAL.
 */
int		 dc_req_model(struct dc_req *r, const struct dc_model *m,
		     int optional, struct dc_val *vals,
		     struct json_object **body);

/* The query string against model m, loc "query"; as dc_req_model. */
int		 dc_req_query(struct dc_req *r, const struct dc_model *m,
		     struct dc_val *vals, struct json_object **query);

/* 422 {"detail": errs}; takes errs. */
void		 dc_reply_422(struct dc_req *r, struct json_object *errs);

/*
 * Whether a browser origin may call the API (cors_origins): CORS uses
 * it, and so can any check of Origin on state-changing requests.
 */
struct dc_config;
int		 dc_http_origin_allowed(const struct dc_config *cfg,
		     const char *origin);

/*
 * The Origin check of state-changing requests and WebSocket handshakes
 * (see http.c), which every request passes through before routing: 0,
 * or DC_EINVAL after replying 403.  For a WebSocket endpoint that reads
 * its handshake itself.
 */
int		 dc_http_origin_check(struct dc_req *r);

/* The client's address for logs and limits ("unix" for a unix socket). */
const char	*dc_req_peer(struct dc_req *r);

/*
 * The two steps routing takes on a request's path, exposed for the
 * route fuzzer (tests/fuzz/fuzz_route.c).  dc_http_decode_path decodes
 * raw's percent-escapes into *out (malloc'd, the caller's): DC_EINVAL
 * for a % without two hex digits or an escaped NUL or control
 * character, DC_ENOMEM.  dc_http_match_path matches a decoded path
 * against a route pattern ("/api/v1/databases/{id}"), segment by
 * segment, each {x} capturing one non-empty segment: 1 on a match, with
 * args (when not NULL) holding the *nargs captures, malloc'd, at most
 * DC_MAX_PATH_ARGS; 0 otherwise (out of memory too), args untouched.
 */
int		 dc_http_decode_path(const char *raw, char **out);
int		 dc_http_match_path(const char *pattern, const char *path,
		     char *args[DC_MAX_PATH_ARGS], int *nargs);

/* Route number idx (metrics order) -> method and pattern. */
int		 dc_http_route_at(int idx, const char **method,
		     const char **pattern);
extern const uint64_t dc_duration_bounds_us[];

/* The route tables, one per resource file under src/api. */
extern const struct dc_route dc_routes_ops[];
extern const struct dc_route dc_routes_databases[];
extern const struct dc_route dc_routes_chat[];
extern const struct dc_route dc_routes_tools[];
extern const struct dc_route dc_routes_system[];
extern const struct dc_route dc_routes_conversations[];
extern const struct dc_route dc_routes_feedback[];
extern const struct dc_route dc_routes_datapoints[];

#endif /* DC_HTTP_H */
