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
#include "log.h"

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
	struct json_object *o = json_object_new_object();
	const char *s;

	cc->pending = 0;
	if (cc->bev == NULL) {
		json_object_put(data);
		json_object_put(o);
		free(cc);
		return;
	}
	json_object_object_add(o, "ok", json_object_new_boolean(error == NULL));
	if (error != NULL)
		json_object_object_add(o, "error", json_object_new_string(error));
	else
		json_object_object_add(o, "data", data);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	bufferevent_write(cc->bev, s, strlen(s));
	bufferevent_write(cc->bev, "\n", 1);
	json_object_put(o);
	bufferevent_setcb(cc->bev, NULL, conn_written, conn_event, cc);
	bufferevent_enable(cc->bev, EV_WRITE);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct dc_ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct json_object *req = NULL, *cmd, *args = NULL, *data = NULL;
	const char *err;
	size_t len;
	char *line;

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
	cc->pending = 1;
	err = cc->ctl->handler(cc, json_object_get_string(cmd), args, &data);
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
dc_control_open(struct event_base *base, const char *path,
    dc_ctl_handler handler, struct dc_control **out)
{
	struct dc_control *ctl = NULL;
	struct sockaddr_un sun;
	mode_t old;
	int fd = -1;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("control socket path too long: %s", path);
		return DC_ERR;
	}
	if (socket_alive(path)) {
		log_error("control socket %s is in use: is another datachatd "
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
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		goto fail;
	}
	umask(old);
	chmod(path, 0600);
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
	if (fd != -1)
		close(fd);
	return DC_ERR;
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
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[8192], *acc = NULL, *nl;
	size_t used = 0;
	const char *s;
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
		else
			snprintf(err, errsz, "datachatd is not running (cannot "
			    "connect to %s: %s)", path, strerror(errno));
		close(fd);
		return DC_EUNAVAIL;
	}
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	json_object_object_add(req, "args", args != NULL ?
	    json_object_get(args) : json_object_new_array());
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s) ||
	    write(fd, "\n", 1) != 1) {
		snprintf(err, errsz, "cannot send to %s: %s", path,
		    strerror(errno));
		json_object_put(req);
		close(fd);
		return DC_EUNAVAIL;
	}
	json_object_put(req);
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
