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
 * Every command, whoever carries it out, is one row of dc_ctl_commands[]
 * (control.c): its name, where it runs, how many arguments it takes, their
 * synopsis, how long datachatctl waits for it and a line of help.  The
 * master checks a request against that row before its handler runs;
 * datachatctl builds its usage text and its dispatch from it; the docs
 * test reads it back from `datachatctl -h`.  Registry administration
 * (list, add, remove, set-default, rename) goes from datachatctl over
 * HTTP through the REST API, the same validation and write path; the
 * master's `status` tells it where the daemon listens.  genkey runs in
 * datachatctl alone.
 *
 * A stale socket file left by a crash is replaced; a live one (a master
 * answers on it) makes a second master refuse to start.
 */
#ifndef DC_CONTROL_H
#define DC_CONTROL_H

#include <stddef.h>

#include <json-c/json.h>

struct event_base;
struct dc_control;
struct dc_ctl_conn;

#define DC_CTL_MAX_LINE		65536

/* Who carries a command out. */
enum dc_ctl_where {
	DC_CTL_MASTER = 1,	/* sent over the control socket */
	DC_CTL_REST,		/* datachatctl calls the REST API */
	DC_CTL_LOCAL,		/* datachatctl alone, no daemon */
};

/* The commands; the enum indexes dc_ctl_commands[]. */
enum dc_ctl_cmd {
	DC_CTL_STATUS,
	DC_CTL_WORKERS,
	DC_CTL_TARGETS,
	DC_CTL_RELOAD,
	DC_CTL_RESYNC,
	DC_CTL_INVALIDATE,
	DC_CTL_STOP,
	DC_CTL_LOG_REOPEN,
	DC_CTL_ROTATE_KEY,
	DC_CTL_CONFIG,
	DC_CTL_LIST,
	DC_CTL_ADD,
	DC_CTL_REMOVE,
	DC_CTL_SET_DEFAULT,
	DC_CTL_RENAME,
	DC_CTL_GENKEY,
	DC_CTL_TOKEN,
	DC_CTL_NCMDS
};

struct dc_ctl_command {
	int		 id;		/* enum dc_ctl_cmd, its index */
	const char	*name;
	int		 where;		/* enum dc_ctl_where */
	int		 min_args, max_args;	/* max -1: any number */
	const char	*synopsis;	/* its arguments, for usage lines */
	int		 timeout_s;	/* how long datachatctl waits */
	const char	*const *columns; /* datachatctl prints a table */
	const char	*help;		/* one line */
};

extern const struct dc_ctl_command dc_ctl_commands[DC_CTL_NCMDS];

/* The command called name, or NULL. */
const struct dc_ctl_command *dc_ctl_find(const char *name);

/*
 * NULL when nargs suits cmd, else a usage line ("usage: stop
 * [smart|fast|immediate]") in buf.
 */
const char	*dc_ctl_check_args(const struct dc_ctl_command *cmd, int nargs,
		     char *buf, size_t bufsz);

/*
 * The master's handler, called only for a DC_CTL_MASTER command whose
 * arguments (all strings) passed dc_ctl_check_args: fills *data (a JSON
 * value it owns, or NULL) and returns NULL, or returns an error message.
 * A handler may also defer: return DC_CTL_DEFER and later call
 * dc_control_answer() with the conn.
 */
typedef const char *(*dc_ctl_handler)(struct dc_ctl_conn *cc,
    const struct dc_ctl_command *cmd, struct json_object *args,
    struct json_object **data);

#define DC_CTL_DEFER	((const char *)1)

/* Open the socket (replacing a stale one).  0, or DC_ERR with a log line. */
int		 dc_control_open(struct event_base *base, const char *path,
		     dc_ctl_handler handler, struct dc_control **out);
void		 dc_control_close(struct dc_control *ctl);
int		 dc_control_fd(const struct dc_control *ctl);	/* for fork */

/* Who is asking, for the audit log: "control socket (uid U, pid P)". */
void		 dc_control_peer(struct dc_ctl_conn *cc, char *buf, size_t sz);

/* Answer a deferred request: data (owned) or error. */
void		 dc_control_answer(struct dc_ctl_conn *cc, struct json_object *data,
		     const char *error);

/*
 * Bind a unix stream socket at path with the given mode, replacing a
 * stale socket file and refusing a live one (the control socket and the
 * API's unix listeners).  The fd is non-blocking and close-on-exec, not
 * yet listening.  0, or DC_ERR with a log line.
 */
int		 dc_unix_bind(const char *path, int mode, int *fd);

/* Client side (datachatctl): one request, its answer parsed. */
int		 dc_control_call(const char *path, const char *cmd,
		     struct json_object *args, int timeout_s,
		     struct json_object **answer, char *err, size_t errsz);

#endif /* DC_CONTROL_H */
