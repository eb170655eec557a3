/*
 * ws.c - WebSocket sessions on the REST listener (see ws.h).
 *
 * The handshake arrives as an ordinary evhttp request.  Once it checks
 * out, the 101 goes out through evhttp (dc_req_switch_protocols) and the
 * connection's bufferevent becomes ours: its callbacks are replaced (evhttp
 * has stopped reading it: the request was read), its timeouts cleared,
 * and the evhttp connection is only kept to free the socket with it at
 * the end.  libevent 2.1 has no call that detaches a bufferevent from its
 * connection, and freeing the connection is what closes the socket.
 *
 * wslay's event API does the framing: its recv callback takes bytes from
 * the bufferevent's input, its send callback appends to the output (and
 * says "would block" above WS_OUT_HIGH, so a peer that does not read
 * holds up wslay's queue rather than an ever larger socket buffer).  Whole
 * messages reach the handler; wslay answers pings, echoes close frames and
 * queues the close RFC 6455 prescribes for protocol errors (1002),
 * oversized messages (1009) and text that is not UTF-8 (1007).
 *
 * wslay sends control frames ahead of queued data, so a close asked for
 * by the application (or a shutdown) is only queued once every message
 * before it has left: an error event always reaches the peer before the
 * close that follows it.
 *
 * Sessions are freed only from this file's own event callbacks (read,
 * write, event, timer) and from a shutdown, never inside a call from the
 * application; a call that needs the session gone activates its timer.
 */
#include <sys/uio.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <gcrypt.h>
#include <wslay/wslay.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "dc.h"
#include "http.h"
#include "log.h"
#include "msg.h"
#include "worker.h"
#include "ws.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_OUT_HIGH	(256 * 1024)	/* output bytes before wslay waits */
#define WS_CLOSE_WAIT_MS 5000		/* for the peer's close frame */
#define WS_REASON_MAX	123		/* RFC 6455: 125 minus the code */

struct dc_ws {
	struct dc_worker *w;
	struct evhttp_connection *evcon;	/* owns bev and the socket */
	struct bufferevent *bev;
	wslay_event_context_ptr ctx;
	const struct dc_ws_handler *h;	/* NULL once the application left */
	void		*arg;
	char		 id[24];	/* the handshake's request id */
	int		 busy;
	int		 in_recv;	/* inside wslay_event_recv */
	int		 closing;	/* no more messages either way */
	int		 close_code;	/* to send once the queue is empty */
	int		 close_queued;
	int		 dead;		/* drop the connection now */
	int		 failed;	/* past wslay: hang up once the output
					   is out */
	char		 reason[WS_REASON_MAX + 1];
	uint64_t	 start_ms;
	uint64_t	 last_rx_ms;	/* bytes from the peer */
	uint64_t	 idle_ms;	/* not busy since */
	uint64_t	 ping_ms;	/* next ping */
	uint64_t	 close_by_ms;	/* closing: stop waiting then */
	struct event	 timer;
	struct dc_ws	*prev, *next;
};

static struct dc_ws *sessions;
static int	 nsessions;
static int	 shutting_down;	/* enum dc_shutdown, 0 = running */

static void	 ws_check(struct dc_ws *s);

/* --- the handshake --- */

/* Whether the comma-separated header value v lists token t. */
static int
has_token(const char *v, const char *t)
{
	size_t n = strlen(t), len;

	while (v != NULL && *v != '\0') {
		v += strspn(v, " \t,");
		len = strcspn(v, ",");
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(v, t, n) == 0)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

/* A Sec-WebSocket-Key: 16 bytes in base64, which is 24 characters. */
static int
key_ok(const char *k)
{
	size_t i;

	if (k == NULL || strlen(k) != 24 || strcmp(k + 22, "==") != 0)
		return 0;
	for (i = 0; i < 22; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' &&
		    k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
		    k[i] == '+' || k[i] == '/'))
			return 0;
	return 1;
}

/* Sec-WebSocket-Accept: base64(SHA-1(key GUID)), 28 characters. */
static void
accept_value(const char *key, char out[29])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char sha[20 + 1];
	char in[24 + sizeof(WS_GUID)];
	uint32_t v;
	int i, o = 0;

	snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
	gcry_md_hash_buffer(GCRY_MD_SHA1, sha, in, strlen(in));
	sha[20] = 0;
	for (i = 0; i < 21; i += 3) {
		v = (uint32_t)sha[i] << 16 | (uint32_t)sha[i + 1] << 8 |
		    (i + 2 < 21 ? sha[i + 2] : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	/* 20 bytes: 26 characters and one '=' (the 21st byte was padding) */
	out[27] = '=';
	out[28] = '\0';
}

/* --- wslay's I/O on the bufferevent --- */

static ssize_t
ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *arg)
{
	struct dc_ws *s = arg;
	int n = evbuffer_remove(bufferevent_get_input(s->bev), buf, len);

	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t
ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct dc_ws *s = arg;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (evbuffer_get_length(out) >= WS_OUT_HIGH) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (evbuffer_add(out, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void
ws_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct dc_ws *s = arg;

	if (s->h == NULL || s->closing)
		return;
	if (m->opcode == WSLAY_TEXT_FRAME)
		s->h->text(s, (const char *)m->msg, m->msg_length, s->arg);
	else if (m->opcode == WSLAY_BINARY_FRAME)
		s->h->binary(s, m->msg_length, s->arg);
	/* pings are answered by wslay; pongs only prove the peer is there */
}

static const struct wslay_event_callbacks ws_callbacks = {
	ws_recv, ws_send, NULL, NULL, NULL, NULL, ws_msg
};

/*
 * Hand wslay's queue to the output; queue the close the application
 * (or a timeout) asked for once nothing is queued before it.
 */
static void
ws_flush(struct dc_ws *s)
{
	if (s->dead || s->failed || s->in_recv)
		return;
	if (wslay_event_send(s->ctx) != 0) {
		s->dead = 1;
		return;
	}
	if (s->close_code != 0 && !s->close_queued &&
	    wslay_event_get_queued_msg_count(s->ctx) == 0) {
		s->close_queued = 1;
		/* fails only when wslay queued a close of its own */
		wslay_event_queue_close(s->ctx, (uint16_t)s->close_code,
		    (const uint8_t *)s->reason, strlen(s->reason));
		if (wslay_event_send(s->ctx) != 0)
			s->dead = 1;
	}
}

/* --- ending a session --- */

static ssize_t
frame_send(const uint8_t *data, size_t len, int flags, void *arg)
{
	struct dc_ws *s = arg;

	if (evbuffer_add(bufferevent_get_output(s->bev), data, len) != 0)
		return WSLAY_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static void	 ws_notify(struct dc_ws *s, int code);

/*
 * wslay's frame layer refused what the peer sent (a control frame longer
 * than 125 bytes or in fragments, a length not in its shortest form) and
 * queued a close without a code.  The close the RFC asks for is 1002:
 * wslay's frame writer sends that one instead, and the session hangs up
 * once it is out, without waiting for an answer.
 */
static void
ws_fail_protocol(struct dc_ws *s)
{
	static const struct wslay_frame_callbacks cb = {
		frame_send, NULL, NULL
	};
	static const uint8_t code[2] = {
		DC_WS_PROTOCOL_ERROR >> 8, DC_WS_PROTOCOL_ERROR & 0xff
	};
	struct wslay_frame_iocb io;
	wslay_frame_context_ptr f;

	s->failed = 1;
	s->closing = 1;
	s->close_by_ms = dc_now_ms() + WS_CLOSE_WAIT_MS;
	if (!wslay_event_get_close_sent(s->ctx) &&
	    wslay_frame_context_init(&f, &cb, s) == 0) {
		memset(&io, 0, sizeof(io));
		io.fin = 1;
		io.opcode = WSLAY_CONNECTION_CLOSE;
		io.payload_length = sizeof(code);
		io.data = code;
		io.data_length = sizeof(code);
		if (wslay_frame_send(f, &io) < 0)
			s->dead = 1;
		wslay_frame_context_free(f);
	}
	ws_notify(s, DC_WS_PROTOCOL_ERROR);
}

static void
ws_free(struct dc_ws *s)
{
	int sent = wslay_event_get_close_sent(s->ctx) ?
	    wslay_event_get_status_code_sent(s->ctx) : 0;
	int got = wslay_event_get_close_received(s->ctx) ?
	    wslay_event_get_status_code_received(s->ctx) : 0;

	log_info("%s websocket closed after %llums (close sent %d, "
	    "received %d)", s->id, (unsigned long long)(dc_now_ms() -
	    s->start_ms), sent, got);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	nsessions--;
	evtimer_del(&s->timer);
	wslay_event_context_free(s->ctx);
	/* frees the bufferevent and closes the socket */
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	evhttp_connection_free(s->evcon);
	free(s);
}

/* Tell the application the session ended, once. */
static void
ws_notify(struct dc_ws *s, int code)
{
	const struct dc_ws_handler *h = s->h;

	s->h = NULL;
	if (h != NULL) {
		log_debug("%s websocket closed (%d)", s->id, code);
		h->closed(s, code, s->arg);
	}
}

/* Begin the closing handshake with code (the application is told). */
static void
ws_end(struct dc_ws *s, int code, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_code = code;
	dc_strlcpy(s->reason, reason, sizeof(s->reason));
	s->close_by_ms = dc_now_ms() + WS_CLOSE_WAIT_MS;
	ws_notify(s, code);
	ws_flush(s);
}

/* Arm the timer for the next thing that is due. */
static void
ws_arm(struct dc_ws *s, uint64_t now)
{
	const struct dc_config *c = s->w->cfg;
	uint64_t due, silent;
	struct timeval tv;

	if (s->closing)
		due = s->close_by_ms;
	else {
		due = UINT64_MAX;
		if (!s->busy)
			due = s->idle_ms + (uint64_t)c->ws_idle_timeout * 1000;
		if (c->ws_ping_interval > 0) {
			silent = s->last_rx_ms +
			    2 * (uint64_t)c->ws_ping_interval * 1000;
			if (s->ping_ms < due)
				due = s->ping_ms;
			if (silent < due)
				due = silent;
		}
	}
	if (due == UINT64_MAX) {
		evtimer_del(&s->timer);
		return;
	}
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)(due % 1000 * 1000);
	evtimer_add(&s->timer, &tv);
}

/*
 * After any event: notice a close that wslay queued or received, free
 * the session when the closing handshake is over (once its output is on
 * the wire), else re-arm the timer.  Returns having freed s, possibly.
 */
static void
ws_check(struct dc_ws *s)
{
	int code;

	ws_flush(s);
	if (s->dead) {
		ws_notify(s, DC_WS_ABNORMAL);
		ws_free(s);
		return;
	}
	if (s->failed) {
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			ws_free(s);
		else
			ws_arm(s, dc_now_ms());
		return;
	}
	if (!s->closing && (wslay_event_get_close_received(s->ctx) ||
	    !wslay_event_get_read_enabled(s->ctx))) {
		/* the peer closed, or wslay refused what it sent */
		if (wslay_event_get_close_received(s->ctx))
			code = wslay_event_get_status_code_received(s->ctx);
		else if (wslay_event_get_close_sent(s->ctx))
			code = wslay_event_get_status_code_sent(s->ctx);
		else
			code = DC_WS_PROTOCOL_ERROR;
		s->closing = 1;
		s->close_queued = 1;	/* wslay's close is the close */
		s->close_by_ms = dc_now_ms() + WS_CLOSE_WAIT_MS;
		ws_notify(s, code);
	}
	if (s->closing && wslay_event_get_close_sent(s->ctx) &&
	    (wslay_event_get_close_received(s->ctx) ||
	    !wslay_event_get_read_enabled(s->ctx)) &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		ws_free(s);
		return;
	}
	ws_arm(s, dc_now_ms());
}

/* --- the bufferevent's callbacks --- */

static void
ws_read(struct bufferevent *bev, void *arg)
{
	struct dc_ws *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int rc;

	s->last_rx_ms = dc_now_ms();
	if (s->failed || !wslay_event_want_read(s->ctx)) {
		/* closing: what the peer still sends is not read */
		evbuffer_drain(in, evbuffer_get_length(in));
	} else {
		s->in_recv = 1;
		rc = wslay_event_recv(s->ctx);
		s->in_recv = 0;
		/* our recv callback fails only to say "no more for now" */
		if (rc == WSLAY_ERR_CALLBACK_FAILURE)
			ws_fail_protocol(s);
		else if (rc != 0)
			s->dead = 1;
	}
	ws_check(s);
}

static void
ws_write(struct bufferevent *bev, void *arg)
{
	/* the output drained: what wslay held back can go, or we are done */
	ws_check(arg);
}

static void
ws_event(struct bufferevent *bev, short what, void *arg)
{
	struct dc_ws *s = arg;

	/* EOF, a socket error, or (never armed) a timeout: the peer is gone */
	log_debug("%s websocket connection %s", s->id, what & BEV_EVENT_EOF ?
	    "closed by the peer" : "failed");
	ws_notify(s, DC_WS_ABNORMAL);
	ws_free(s);
}

static void
ws_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dc_ws *s = arg;
	const struct dc_config *c = s->w->cfg;
	uint64_t now = dc_now_ms();
	struct wslay_event_msg ping = { WSLAY_PING, NULL, 0 };

	if (s->closing) {
		if (!s->dead && now >= s->close_by_ms) {
			/* the peer never answered our close: drop it */
			ws_free(s);
			return;
		}
	} else if (shutting_down && !s->busy)
		ws_end(s, DC_WS_GOING_AWAY, "server shutting down");
	else if (!s->busy &&
	    now >= s->idle_ms + (uint64_t)c->ws_idle_timeout * 1000)
		ws_end(s, DC_WS_GOING_AWAY, "idle timeout (ws_idle_timeout)");
	else if (c->ws_ping_interval > 0 && now >= s->last_rx_ms +
	    2 * (uint64_t)c->ws_ping_interval * 1000)
		ws_end(s, DC_WS_INTERNAL, "no pong within two ping intervals");
	else if (c->ws_ping_interval > 0 && now >= s->ping_ms) {
		s->ping_ms = now + (uint64_t)c->ws_ping_interval * 1000;
		if (wslay_event_queue_msg(s->ctx, &ping) != 0)
			s->dead = 1;
	}
	ws_check(s);
}

/* --- the API --- */

int
dc_ws_accept(struct dc_req *r, const struct dc_ws_handler *h, void *arg,
    struct dc_ws **out)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(r->req);
	const struct dc_config *c = r->w->cfg;
	const char *key = evhttp_find_header(in, "Sec-WebSocket-Key");
	const char *ver = evhttp_find_header(in, "Sec-WebSocket-Version");
	const char *origin = evhttp_find_header(in, "Origin");
	struct evbuffer *input;
	const char *proto;
	struct dc_ws *s;
	char acc[29];
	uint64_t now;

	*out = NULL;
	if (!has_token(evhttp_find_header(in, "Upgrade"), "websocket") ||
	    !has_token(evhttp_find_header(in, "Connection"), "upgrade")) {
		evhttp_add_header(hdr, "Upgrade", "websocket");
		evhttp_add_header(hdr, "Sec-WebSocket-Version", "13");
		dc_reply_error(r, 426, "%s is a WebSocket endpoint: the request "
		    "needs Upgrade: websocket and Connection: Upgrade", r->path);
		return DC_EINVAL;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		evhttp_add_header(hdr, "Sec-WebSocket-Version", "13");
		dc_reply_error(r, 426, "Sec-WebSocket-Version must be 13");
		return DC_EINVAL;
	}
	if (!key_ok(key)) {
		dc_reply_error(r, 400, "Sec-WebSocket-Key must be 16 bytes in "
		    "base64");
		return DC_EINVAL;
	}
	/* a browser always sends Origin; other clients need not */
	if (origin != NULL && !dc_http_origin_allowed(c, origin)) {
		dc_reply_error(r, 403, "Origin %.200s is not allowed "
		    "(cors_origins)", origin);
		return DC_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    wslay_event_context_server_init(&s->ctx, &ws_callbacks, s) != 0) {
		free(s);
		dc_reply_error(r, 500, "out of memory");
		return DC_ENOMEM;
	}
	/* frames as large as a request body: wslay answers 1009 past it */
	wslay_event_config_set_max_recv_msg_length(s->ctx,
	    (uint64_t)c->max_body_size);
	s->w = r->w;
	s->h = h;
	s->arg = arg;
	dc_strlcpy(s->id, r->id, sizeof(s->id));
	now = dc_now_ms();
	s->start_ms = s->last_rx_ms = s->idle_ms = now;
	s->ping_ms = now + (uint64_t)c->ws_ping_interval * 1000;
	evtimer_assign(&s->timer, s->w->base, ws_timer, s);
	/* counted before the request ends, so a smart shutdown waits */
	s->next = sessions;
	if (sessions != NULL)
		sessions->prev = s;
	sessions = s;
	nsessions++;

	accept_value(key, acc);
	evhttp_add_header(hdr, "Upgrade", "websocket");
	evhttp_add_header(hdr, "Connection", "Upgrade");
	evhttp_add_header(hdr, "Sec-WebSocket-Accept", acc);
	/* a browser that offered its token as a protocol needs one back */
	if ((proto = dc_auth_ws_protocol(r)) != NULL)
		evhttp_add_header(hdr, "Sec-WebSocket-Protocol", proto);
	s->evcon = dc_req_switch_protocols(r);
	s->bev = evhttp_connection_get_bufferevent(s->evcon);
	assert(s->bev != NULL);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	bufferevent_setcb(s->bev, ws_read, ws_write, ws_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	/* frames that came with the handshake: read them from the loop */
	input = bufferevent_get_input(s->bev);
	if (evbuffer_get_length(input) > 0)
		bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	ws_arm(s, now);
	*out = s;
	return DC_OK;
}

int
dc_ws_send_text(struct dc_ws *s, const char *msg, size_t len)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)msg,
	    len };

	if (s->closing || s->dead || s->failed)
		return DC_EINVAL;
	if (wslay_event_queue_msg(s->ctx, &m) != 0)
		return DC_ENOMEM;
	ws_flush(s);
	if (s->dead)
		event_active(&s->timer, EV_TIMEOUT, 1);
	return DC_OK;
}

void
dc_ws_close(struct dc_ws *s, int code, const char *reason)
{
	assert(code >= 1000 && code <= 4999);
	s->h = NULL;		/* the application is done with s */
	if (!s->closing) {
		s->closing = 1;
		s->close_code = code;
		dc_strlcpy(s->reason, reason != NULL ? reason : "",
		    sizeof(s->reason));
		s->close_by_ms = dc_now_ms() + WS_CLOSE_WAIT_MS;
		ws_flush(s);
	}
	/* whatever is due now (the end, even) happens from the loop */
	event_active(&s->timer, EV_TIMEOUT, 1);
}

void
dc_ws_busy(struct dc_ws *s, int busy)
{
	s->busy = busy;
	if (!busy)
		s->idle_ms = dc_now_ms();
	event_active(&s->timer, EV_TIMEOUT, 1);
}

const char *
dc_ws_id(const struct dc_ws *s)
{
	return s->id;
}

int
dc_ws_count(void)
{
	return nsessions;
}

void
dc_ws_shutdown(struct dc_worker *w, int mode)
{
	struct evbuffer_iovec iov[16];
	struct dc_ws *s, *next;
	struct evbuffer *out;
	ssize_t sent = 0;
	int fd, n;

	shutting_down = mode;
	for (s = sessions; s != NULL; s = next) {
		next = s->next;
		if (mode != DC_SHUTDOWN_FAST) {
			/* the timer closes it unless it is busy */
			event_active(&s->timer, EV_TIMEOUT, 1);
			continue;
		}
		/* fast: say goodbye as far as the socket takes it, and go */
		ws_end(s, DC_WS_GOING_AWAY, "server shutting down");
		out = bufferevent_get_output(s->bev);
		fd = bufferevent_getfd(s->bev);
		/*
		 * A bufferevent's output only lets the bufferevent write
		 * it (its start is frozen): send a copy, once, without
		 * waiting.  What does not fit in the socket is lost.  A
		 * TLS connection's bytes are records only its bufferevent
		 * writes: that one just goes.
		 */
		if (fd >= 0 && dc_conn_is_plain(s->evcon) &&
		    (n = evbuffer_peek(out, -1, NULL, iov,
		    DC_ARRAY_SIZE(iov))) > 0)
			sent = writev(fd, (struct iovec *)iov,
			    n < (int)DC_ARRAY_SIZE(iov) ? n :
			    (int)DC_ARRAY_SIZE(iov));
		(void)sent;	/* best effort: nothing to do either way */
		ws_free(s);
	}
}

void
dc_ws_teardown(void)
{
	while (sessions != NULL) {
		ws_notify(sessions, DC_WS_GOING_AWAY);
		ws_free(sessions);
	}
}
