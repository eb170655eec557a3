/*
 * tls.h - TLS on the listeners marked `tls`: OpenSSL through libevent's
 * bufferevent_openssl.  The master builds the context from tls_cert_file
 * and tls_key_file before fork (and again on reload, so a renewed
 * certificate is served by the new workers); each worker wraps the
 * connections of its TLS listeners in it.
 */
#ifndef DC_TLS_H
#define DC_TLS_H

#include <stddef.h>

struct dc_config;
struct event_base;
struct bufferevent;
struct ssl_ctx_st;

/*
 * The context for cfg's TLS listeners: TLS 1.2 at least, the certificate
 * chain and the key, which must match.  *ctx is NULL when no listener
 * asks for TLS.  0, or DC_EINVAL with err filled (never key material).
 */
int		 dc_tls_ctx_new(const struct dc_config *cfg,
		     struct ssl_ctx_st **ctx, char *err, size_t errsz);
void		 dc_tls_ctx_free(struct ssl_ctx_st *ctx);

/* A server-side TLS bufferevent for a connection evhttp is accepting. */
struct bufferevent *dc_tls_bev(struct event_base *base,
		     struct ssl_ctx_st *ctx);

#endif /* DC_TLS_H */
