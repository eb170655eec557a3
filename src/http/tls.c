/*
 * tls.c - TLS on the listeners marked `tls` (tls.h).
 *
 * One SSL_CTX per configuration: TLS 1.2 or later, no compression, no
 * renegotiation, the certificate chain of tls_cert_file and the key of
 * tls_key_file, checked to match.  The master makes it before fork, so
 * every worker shares its certificate and the key file may be readable
 * by the master's user alone; a reload makes a new one for the new
 * workers, and a context that cannot be made keeps the running
 * configuration.  Each accepted connection gets its SSL and a
 * bufferevent_openssl in the accepting state; libevent does the
 * handshake and the records, and evhttp above it sees plain bytes.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "config.h"
#include "dc.h"
#include "tls.h"

/* OpenSSL's reason for the last failure, and clear its queue. */
static void
ssl_error(char *err, size_t errsz, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char reason[200];

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		dc_strlcpy(reason, "unknown error", sizeof(reason));
	snprintf(err, errsz, "%s %s: %s", what, file, reason);
	ERR_clear_error();
}

static int
any_tls(const struct dc_config *cfg)
{
	int i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].tls)
			return 1;
	return 0;
}

int
dc_tls_ctx_new(const struct dc_config *cfg, struct ssl_ctx_st **ctxp,
    char *err, size_t errsz)
{
	SSL_CTX *ctx = NULL;
	int rc = DC_EINVAL;

	*ctxp = NULL;
	if (!any_tls(cfg))
		return DC_OK;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_error(err, errsz, "cannot make a TLS context", "");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		ssl_error(err, errsz, "tls_cert_file", cfg->tls_cert_file);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file,
	    SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errsz, "tls_key_file", cfg->tls_key_file);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errsz, "tls_key_file %s is not the key of the "
		    "certificate in %s", cfg->tls_key_file, cfg->tls_cert_file);
		ERR_clear_error();
		goto out;
	}
	*ctxp = ctx;
	ctx = NULL;
	rc = DC_OK;
out:
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	return rc;
}

void
dc_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	if (ctx != NULL)
		SSL_CTX_free(ctx);
}

struct bufferevent *
dc_tls_bev(struct event_base *base, struct ssl_ctx_st *ctx)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	/* evhttp gives the socket to the bufferevent once it is made */
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* a client that closes without close_notify is not an error here */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}
