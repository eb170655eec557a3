/*
 * control.h - the master's control socket and the protocol datachatctl
 * speaks on it.
 *
 * A unix stream socket (mode 0600, owned by the daemon's user).  The
 * protocol is one request and one answer per connection, each a single
 * line of JSON terminated by "\n":
 *
 *   request:  {"cmd": "status", "args": [...]}\n
 *   answer:   {"ok": true, "data": {...}}\n
 *          or {"ok": false, "error": "one-line reason"}\n
 *
 * Commands handled by the master (DC_CTL_COMMANDS lists them for the docs
 * and the tests): status, workers, targets, reload [--wait], resync,
 * invalidate ID|all, stop [smart|fast|immediate], log-reopen, rotate-key.
 * Registry administration (list, add, remove, set-default, rename) is done
 * by datachatctl over HTTP through the REST API, the same validation and
 * write path; `status` tells it where the daemon listens.  genkey runs in
 * datachatctl alone.
 *
 * A stale socket file left by a crash is replaced; a live one (a master
 * answers on it) makes a second master refuse to start.
 */
#ifndef DC_CONTROL_H
#define DC_CONTROL_H

#include <json-c/json.h>

struct event_base;
struct dc_control;
struct dc_ctl_conn;

#define DC_CTL_MAX_LINE		65536

#define DC_CTL_COMMANDS \
	"status", "workers", "targets", "reload", "resync", "invalidate", \
	"stop", "log-reopen", "rotate-key", "list", "add", "remove", \
	"set-default", "rename", "genkey"

/*
 * The master's handler: fills *data (a JSON value it owns, or NULL) and
 * returns NULL, or returns an error message.  A handler may also defer:
 * return DC_CTL_DEFER and later call dc_control_answer() with the conn.
 */
typedef const char *(*dc_ctl_handler)(struct dc_ctl_conn *cc,
    const char *cmd, struct json_object *args, struct json_object **data);

#define DC_CTL_DEFER	((const char *)1)

/* Open the socket (replacing a stale one).  0, or DC_ERR with a log line. */
int		 dc_control_open(struct event_base *base, const char *path,
		     dc_ctl_handler handler, struct dc_control **out);
void		 dc_control_close(struct dc_control *ctl);
int		 dc_control_fd(const struct dc_control *ctl);	/* for fork */

/* Answer a deferred request: data (owned) or error. */
void		 dc_control_answer(struct dc_ctl_conn *cc, struct json_object *data,
		     const char *error);

/* Client side (datachatctl): one request, its answer parsed. */
int		 dc_control_call(const char *path, const char *cmd,
		     struct json_object *args, int timeout_s,
		     struct json_object **answer, char *err, size_t errsz);

#endif /* DC_CONTROL_H */
