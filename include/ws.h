/*
 * ws.h - WebSocket sessions (RFC 6455) on the REST listener.
 *
 * A route that speaks WebSocket calls dc_ws_accept() with its request:
 * the handshake is checked (Upgrade, Connection, Sec-WebSocket-Version
 * 13, Sec-WebSocket-Key, Origin against cors_origins), answered 101, and
 * the connection leaves evhttp for good.  From then on the worker owns
 * the socket: wslay (libwslay) parses and writes the frames on the
 * connection's bufferevent, answers pings and close frames, refuses
 * unmasked, reserved, oversized (max_body_size) and non-UTF-8 text
 * frames with the close code RFC 6455 gives them, and this module keeps
 * the session's timers: ws_idle_timeout while it is not busy, a ping
 * every ws_ping_interval (a peer silent for two intervals is dropped),
 * and a bounded wait for the peer's close frame.
 *
 * Ownership: the session belongs to this module.  The handler's
 * callbacks run from the event loop; closed() runs when the session ends
 * for a reason the application did not ask for (the peer closed or
 * vanished, a protocol error, a timeout, a shutdown), and the session is
 * invalid after it.  An application that is done calls dc_ws_close():
 * from then on no callback of it runs, and this module finishes the
 * closing handshake and frees the session on its own.  Nothing here
 * frees a session from inside a dc_ws_* call, so a callback may send
 * and close freely.
 *
 * Shutdown: a fast one closes every session with 1001 at once; a smart
 * one closes the sessions that are not busy with 1001 and lets the busy
 * ones finish (dc_ws_busy), which close themselves when done.
 */
#ifndef DC_WS_H
#define DC_WS_H

#include <stddef.h>

struct dc_req;
struct dc_worker;
struct dc_ws;

/* Close codes used here (RFC 6455 section 7.4.1). */
#define DC_WS_NORMAL		1000
#define DC_WS_GOING_AWAY	1001
#define DC_WS_PROTOCOL_ERROR	1002
#define DC_WS_UNSUPPORTED_DATA	1003
#define DC_WS_ABNORMAL		1006	/* never sent: no close frame */
#define DC_WS_INVALID_DATA	1007
#define DC_WS_POLICY		1008
#define DC_WS_TOO_BIG		1009
#define DC_WS_INTERNAL		1011

struct dc_ws_handler {
	/* A whole text message: valid UTF-8, at most max_body_size bytes. */
	void	(*text)(struct dc_ws *ws, const char *msg, size_t len,
		    void *arg);
	/* A whole binary message (its bytes are not kept). */
	void	(*binary)(struct dc_ws *ws, size_t len, void *arg);
	/*
	 * The session ended with close code code (sent or received;
	 * DC_WS_ABNORMAL when the connection just dropped).  ws is
	 * invalid once this returns.
	 */
	void	(*closed)(struct dc_ws *ws, int code, void *arg);
};

/*
 * Upgrade request r to a WebSocket session with handler h.  On success
 * the 101 is on its way, r is finished (logged, freed) and *out is the
 * session.  Otherwise r has been answered (400, 403, 426, 500) and the
 * return value is DC_EINVAL or DC_ENOMEM.
 */
int		 dc_ws_accept(struct dc_req *r, const struct dc_ws_handler *h,
		     void *arg, struct dc_ws **out);

/* Queue a text message; DC_EINVAL once the session is closing. */
int		 dc_ws_send_text(struct dc_ws *ws, const char *msg, size_t len);

/*
 * Say goodbye with code and reason (at most 123 bytes): messages sent
 * before go out first.  The handler is forgotten (no callback runs
 * after this) and the session frees itself when the closing handshake
 * is done or has waited long enough.
 */
void		 dc_ws_close(struct dc_ws *ws, int code, const char *reason);

/*
 * The application is working for the peer (busy = 1) or waiting for it
 * (0).  The idle timeout runs only while it waits, and a smart shutdown
 * closes only sessions that wait.
 */
void		 dc_ws_busy(struct dc_ws *ws, int busy);

/* The request id of the handshake, for log lines. */
const char	*dc_ws_id(const struct dc_ws *ws);

/* Sessions open in this worker (a smart shutdown waits for none). */
int		 dc_ws_count(void);

/* The worker begins a shutdown (enum dc_shutdown mode). */
void		 dc_ws_shutdown(struct dc_worker *w, int mode);

/* The worker leaves: free every session, telling its handler. */
void		 dc_ws_teardown(void);

#endif /* DC_WS_H */
