/*
 * control.c - the control socket (server side in the master, client side
 * in datachatctl); the protocol is described in control.h.
 *
 * The server is a libevent listener on a unix socket; each connection
 * carries one JSON line in and one JSON line out, then closes.  A request
 * that needs to wait (reload --wait) is answered later through its
 * struct dc_ctl_conn, which outlives a client that hangs up early.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "control.h"
#include "dc.h"
#include "jsonw.h"
#include "log.h"

static const char *const worker_columns[] = { "slot", "pid", "state",
    "started", "requests", "inflight", "target_connections", "generation",
    NULL };
static const char *const target_columns[] = { "connection_id", "name",
    "database_type", "is_default", "open_connections", "privileges", NULL };
static const char *const list_columns[] = { "connection_id", "name",
    "database_type", "is_default", "database_url", NULL };
static const char *const token_columns[] = { "name", "role", "created",
    "expires", "expired", NULL };

#define C(id, name, where, min, max, syn, tmo, cols, help)		\
	[id] = { id, name, where, min, max, syn, tmo, cols, help }

const struct dc_ctl_command dc_ctl_commands[DC_CTL_NCMDS] = {
	C(DC_CTL_STATUS, "status", DC_CTL_MASTER, 0, 0, "", 10, NULL,
	    "version, uptime, workers, registry, system DB"),
	C(DC_CTL_WORKERS, "workers", DC_CTL_MASTER, 0, 0, "", 10,
	    worker_columns, "per worker: pid, requests, in flight, generation"),
	C(DC_CTL_TARGETS, "targets", DC_CTL_MASTER, 0, 0, "", 10,
	    target_columns, "per target: connections open in the workers, "
	    "what its role may do beyond reading"),
	C(DC_CTL_RELOAD, "reload", DC_CTL_MASTER, 0, 1, "[--wait]", 60, NULL,
	    "reread the config, resync the registry (HUP)"),
	C(DC_CTL_RESYNC, "resync", DC_CTL_MASTER, 0, 0, "", 60, NULL,
	    "reread every registry row"),
	C(DC_CTL_INVALIDATE, "invalidate", DC_CTL_MASTER, 1, 1, "ID|all", 10,
	    NULL, "close the workers' connections to a target"),
	C(DC_CTL_STOP, "stop", DC_CTL_MASTER, 0, 1,
	    "[smart|fast|immediate]", 10, NULL,
	    "stop; smart lets the requests finish"),
	C(DC_CTL_LOG_REOPEN, "log-reopen", DC_CTL_MASTER, 0, 0, "", 10, NULL,
	    "reopen the log files (USR1)"),
	C(DC_CTL_ROTATE_KEY, "rotate-key", DC_CTL_MASTER, 0, 0, "", 60, NULL,
	    "re-encrypt stored URLs with the first key"),
	C(DC_CTL_CONFIG, "config", DC_CTL_MASTER, 0, 0, "", 10, NULL,
	    "the running configuration, secrets masked"),
	C(DC_CTL_LIST, "list", DC_CTL_REST, 0, 0, "", 60, list_columns,
	    "the connections, passwords masked"),
	C(DC_CTL_ADD, "add", DC_CTL_REST, 0, -1,
	    "--name N --type T --url URL|- [--default] [--tag T]... "
	    "[--description D]", 60, NULL,
	    "register a connection (--url - reads stdin)"),
	C(DC_CTL_REMOVE, "remove", DC_CTL_REST, 1, 1, "ID", 60, NULL,
	    "delete a connection"),
	C(DC_CTL_SET_DEFAULT, "set-default", DC_CTL_REST, 1, 1, "ID", 60, NULL,
	    "make a connection the default"),
	C(DC_CTL_RENAME, "rename", DC_CTL_REST, 2, 2, "ID NAME", 60, NULL,
	    "rename a connection"),
	C(DC_CTL_GENKEY, "genkey", DC_CTL_LOCAL, 0, 0, "", 0, NULL,
	    "print a new Fernet key (no daemon needed)"),
	C(DC_CTL_TOKEN, "token", DC_CTL_MASTER, 1, 6,
	    "add NAME --role read|query|admin [--expires E] | list | "
	    "revoke NAME", 10, token_columns,
	    "API tokens; add prints the new one, once"),
};

#undef C

const struct dc_ctl_command *
dc_ctl_find(const char *name)
{
	int i;

	for (i = 0; i < DC_CTL_NCMDS; i++) {
		/* the enum and the rows must stay in step */
		assert(dc_ctl_commands[i].id == i &&
		    dc_ctl_commands[i].name != NULL);
		if (strcmp(dc_ctl_commands[i].name, name) == 0)
			return &dc_ctl_commands[i];
	}
	return NULL;
}

const char *
dc_ctl_check_args(const struct dc_ctl_command *cmd, int nargs, char *buf,
    size_t bufsz)
{
	if (nargs >= cmd->min_args &&
	    (cmd->max_args < 0 || nargs <= cmd->max_args))
		return NULL;
	snprintf(buf, bufsz, "usage: %s%s%s", cmd->name,
	    cmd->synopsis[0] != '\0' ? " " : "", cmd->synopsis);
	return buf;
}

struct dc_control {
	struct event_base *base;
	struct evconnlistener *lev;
	dc_ctl_handler	 handler;
	char		*path;
};

struct dc_ctl_conn {
	struct dc_control *ctl;
	struct bufferevent *bev;	/* NULL once the client hung up */
	int		 pending;	/* a deferred answer is owed */
};

static void
conn_free(struct dc_ctl_conn *cc)
{
	if (cc->bev != NULL)
		bufferevent_free(cc->bev);
	free(cc);
}

static void
conn_written(struct bufferevent *bev, void *arg)
{
	struct dc_ctl_conn *cc = arg;

	if (!cc->pending && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(cc);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct dc_ctl_conn *cc = arg;

	bufferevent_free(cc->bev);
	cc->bev = NULL;
	if (!cc->pending)
		free(cc);
}

void
dc_control_answer(struct dc_ctl_conn *cc, struct json_object *data,
    const char *error)
{
	static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
	struct json_object *o;
	struct dc_jb b = { 0 };
	char *text;

	cc->pending = 0;
	if (cc->bev == NULL) {
		json_object_put(data);
		free(cc);
		return;
	}
	o = json_object_new_object();
	dc_jb_add(&b, o, "ok", json_object_new_boolean(error == NULL));
	if (error != NULL) {
		dc_jb_add(&b, o, "error", json_object_new_string(error));
		json_object_put(data);
	} else if (data != NULL)
		dc_jb_add(&b, o, "data", data);
	else
		dc_jb_null(&b, o, "data");
	o = dc_jb_done(&b, o);
	text = o != NULL ? dc_jw_text(o, NULL) : NULL;
	json_object_put(o);
	/*
	 * Out of memory here the client may get nothing but a closed
	 * connection (a failed write is not retried): it reports that.
	 */
	if (bufferevent_write(cc->bev, text != NULL ? text : oom,
	    strlen(text != NULL ? text : oom)) == 0)
		bufferevent_write(cc->bev, "\n", 1);
	free(text);
	bufferevent_setcb(cc->bev, NULL, conn_written, conn_event, cc);
	bufferevent_enable(cc->bev, EV_WRITE);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct dc_ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct json_object *req = NULL, *cmd, *args = NULL, *data = NULL;
	const struct dc_ctl_command *c;
	const char *err;
	char usage[160], *line;
	size_t len;
	int i, nargs;

	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > DC_CTL_MAX_LINE)
			dc_control_answer(cc, NULL, "request too long");
		return;
	}
	bufferevent_disable(bev, EV_READ);
	req = json_tokener_parse(line);
	free(line);
	if (req == NULL || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string)) {
		dc_control_answer(cc, NULL, "malformed request: expected "
		    "{\"cmd\": ..., \"args\": [...]}");
		goto out;
	}
	if (json_object_object_get_ex(req, "args", &args) && args != NULL &&
	    !json_object_is_type(args, json_type_array)) {
		dc_control_answer(cc, NULL, "malformed request: args must be "
		    "an array");
		goto out;
	}
	nargs = args != NULL ? (int)json_object_array_length(args) : 0;
	for (i = 0; i < nargs; i++)
		if (!json_object_is_type(json_object_array_get_idx(args, i),
		    json_type_string)) {
			dc_control_answer(cc, NULL, "malformed request: "
			    "every argument must be a string");
			goto out;
		}
	c = dc_ctl_find(json_object_get_string(cmd));
	if (c == NULL || c->where != DC_CTL_MASTER) {
		dc_control_answer(cc, NULL, "unknown command (see "
		    "datachatctl(8))");
		goto out;
	}
	if ((err = dc_ctl_check_args(c, nargs, usage, sizeof(usage))) != NULL) {
		dc_control_answer(cc, NULL, err);
		goto out;
	}
	cc->pending = 1;
	err = cc->ctl->handler(cc, c, args, &data);
	if (err != DC_CTL_DEFER)
		dc_control_answer(cc, data, err);
out:
	json_object_put(req);
}

static void
accepted(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int socklen, void *arg)
{
	struct dc_control *ctl = arg;
	struct dc_ctl_conn *cc = calloc(1, sizeof(*cc));

	if (cc == NULL) {
		close(fd);
		return;
	}
	cc->ctl = ctl;
	cc->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL) {
		close(fd);
		free(cc);
		return;
	}
	bufferevent_setcb(cc->bev, conn_read, NULL, conn_event, cc);
	bufferevent_enable(cc->bev, EV_READ);
}

/* 1 when a live master answers on path. */
static int
socket_alive(const char *path)
{
	struct sockaddr_un sun;
	int fd, alive;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	dc_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	alive = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return alive;
}

int
dc_unix_bind(const char *path, int mode, int *out)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd = -1;

	*out = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("unix socket path too long: %s", path);
		return DC_ERR;
	}
	if (socket_alive(path)) {
		log_error("socket %s is in use: is another datachatd "
		    "running?", path);
		return DC_ERR;
	}
	unlink(path);	/* stale, from a crash */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	dc_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		goto fail;
	/* never a moment with wider permissions than asked for */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (chmod(path, (mode_t)mode) == -1)
		goto fail;
	*out = fd;
	return DC_OK;
fail:
	log_error("cannot open unix socket %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	return DC_ERR;
}

int
dc_control_open(struct event_base *base, const char *path,
    dc_ctl_handler handler, struct dc_control **out)
{
	struct dc_control *ctl = NULL;
	int fd = -1;

	if (dc_unix_bind(path, 0600, &fd) != DC_OK)
		return DC_ERR;
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL || (ctl->path = strdup(path)) == NULL)
		goto fail;
	ctl->base = base;
	ctl->handler = handler;
	ctl->lev = evconnlistener_new(base, accepted, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (ctl->lev == NULL)
		goto fail;
	*out = ctl;
	return DC_OK;
fail:
	log_error("cannot open control socket %s: %s", path, strerror(errno));
	if (ctl != NULL) {
		free(ctl->path);
		free(ctl);
	}
	close(fd);
	unlink(path);
	return DC_ERR;
}

void
dc_control_peer(struct dc_ctl_conn *cc, char *buf, size_t sz)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int fd = cc->bev != NULL ? bufferevent_getfd(cc->bev) : -1;

	if (fd == -1 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc,
	    &len) == -1)
		snprintf(buf, sz, "control socket");
	else
		snprintf(buf, sz, "control socket (uid %d, pid %d)",
		    (int)uc.uid, (int)uc.pid);
}

int
dc_control_fd(const struct dc_control *ctl)
{
	return ctl != NULL ? evconnlistener_get_fd(ctl->lev) : -1;
}

void
dc_control_close(struct dc_control *ctl)
{
	if (ctl == NULL)
		return;
	evconnlistener_free(ctl->lev);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}

/* --- client --- */

int
dc_control_call(const char *path, const char *cmd, struct json_object *args,
    int timeout_s, struct json_object **answer, char *err, size_t errsz)
{
	struct json_object *req;
	struct dc_jb b = { 0 };
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[8192], *acc = NULL, *nl;
	size_t used = 0, len;
	char *s;
	ssize_t n;
	int fd, rc = DC_ERR;

	*answer = NULL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "control socket path too long: %s", path);
		return DC_EINVAL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return DC_EUNAVAIL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	dc_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EACCES || errno == EPERM)
			snprintf(err, errsz, "permission denied on the control "
			    "socket %s", path);
		else if (errno == ENOENT)
			snprintf(err, errsz, "no control socket %s: is "
			    "datachatd running with this control_socket? "
			    "(give it with -s, or -c with its config)", path);
		else if (errno == ECONNREFUSED)
			snprintf(err, errsz, "datachatd is not running (nothing "
			    "listens on %s)", path);
		else
			snprintf(err, errsz, "cannot connect to %s: %s", path,
			    strerror(errno));
		close(fd);
		return DC_EUNAVAIL;
	}
	req = json_object_new_object();
	dc_jb_add(&b, req, "cmd", json_object_new_string(cmd));
	dc_jb_add(&b, req, "args", args != NULL ? json_object_get(args) :
	    json_object_new_array());
	req = dc_jb_done(&b, req);
	s = req != NULL ? dc_jw_text(req, &len) : NULL;
	json_object_put(req);
	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		close(fd);
		return DC_ENOMEM;
	}
	if (write(fd, s, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		snprintf(err, errsz, "cannot send to %s: %s", path,
		    strerror(errno));
		free(s);
		close(fd);
		return DC_EUNAVAIL;
	}
	free(s);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		int pr = poll(&pfd, 1, timeout_s * 1000);

		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0) {
			snprintf(err, errsz, "no answer from datachatd within "
			    "%d s", timeout_s);
			rc = DC_ETIMEOUT;
			goto out;
		}
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		char *nacc = realloc(acc, used + (size_t)n + 1);

		if (nacc == NULL)
			goto out;
		acc = nacc;
		memcpy(acc + used, buf, (size_t)n);
		used += (size_t)n;
		acc[used] = '\0';
		if (memchr(buf, '\n', (size_t)n) != NULL)
			break;
	}
	if (acc == NULL || (nl = strchr(acc, '\n')) == NULL) {
		snprintf(err, errsz, "datachatd closed the control connection "
		    "without an answer");
		rc = DC_EUNAVAIL;
		goto out;
	}
	*nl = '\0';
	*answer = json_tokener_parse(acc);
	if (*answer == NULL) {
		snprintf(err, errsz, "malformed answer from datachatd");
		goto out;
	}
	rc = DC_OK;
out:
	free(acc);
	close(fd);
	return rc;
}
