/*
 * conn.h - the client connections under evhttp: how many a worker takes
 * (max_clients), what happens when file descriptors run out, deadlines
 * for a request's head and body apart from the idle keep-alive timeout,
 * and a scan of each request head for what RFC 9112 says to refuse
 * before evhttp acts on it.  See conn.c.
 */
#ifndef DC_CONN_H
#define DC_CONN_H

#include <stdint.h>

struct dc_worker;
struct dc_conn;
struct evhttp;
struct evhttp_connection;
struct evconnlistener;
struct ssl_ctx_st;

typedef void (*dc_conn_closecb)(struct evhttp_connection *evcon, void *arg);

/*
 * On each new evhttp, before it accepts: its connections are made here,
 * wrapped in TLS with tls (NULL: plain).
 */
void		 dc_conn_setup(struct dc_worker *w, struct evhttp *http,
		     struct ssl_ctx_st *tls);
/* Accept on lev (one of the worker's listeners); NULL forgets them all. */
void		 dc_conn_listen(struct evconnlistener *lev);
/*
 * on: take no new connection (the worker is not ready to serve yet);
 * off: take them again.  Before the first dc_conn_listen too.
 */
void		 dc_conn_hold(int on);
/* Before evhttp_free: forget the listeners and the request layer. */
void		 dc_conn_quiet(void);
void		 dc_conn_teardown(void);

/*
 * What evhttp_connection_set_closecb does, for a connection that may be
 * ours: the request layer says who to tell when the client goes away
 * (cb NULL: nobody, the connection is idle again).
 */
void		 dc_conn_set_closecb(struct evhttp_connection *evcon,
		     dc_conn_closecb cb, void *arg);

/*
 * The scan refused the head of the request being dispatched: its status
 * (400, 411, 431) and why; 0 when the head is acceptable.  A refused
 * request must be answered with Connection: close.
 */
int		 dc_conn_refused(struct evhttp_connection *evcon,
		     const char **why);

/*
 * A draining worker: close the connections idle for grace_ms after a
 * reply (their next request would race with the close otherwise), and
 * return how many remain open.
 */
int		 dc_conn_drain(uint64_t grace_ms);
/*
 * The connection left HTTP (a 101 went out): stop scanning its input for
 * request heads and its deadlines; whoever took it frees it with
 * evhttp_connection_free().  A drain counts it, never closes it.
 */
void		 dc_conn_upgraded(struct evhttp_connection *evcon);
/* 1 for a connection accepted on a loopback address (Host is checked). */
int		 dc_conn_is_loopback(struct evhttp_connection *evcon);
/* 1 when bytes written to the socket reach the client as they are. */
int		 dc_conn_is_plain(struct evhttp_connection *evcon);
int		 dc_conn_count(void);

#endif /* DC_CONN_H */
