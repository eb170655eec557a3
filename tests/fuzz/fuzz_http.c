/*
 * fuzz_http.c - the whole request path in process: the bytes a client
 * sends on one connection -> evhttp's parser -> conn.c (the scan of each
 * request head, deadlines) -> http.c's dispatch (path decoding, Origin,
 * CORS, routing, auth against a token table) -> the route's body
 * validation and handler -> the reply on the wire.
 *
 * Each input gets a fresh detached worker (worker.h: the daemon's own
 * set-up without a master, on a registry of one target and a table of
 * two tokens made here, with a pool that reaches no database, so routes
 * needing one answer as if it were down) and one connection: TCP on
 * 127.0.0.1, accepted by the worker on its own listener, so the Host
 * check of a loopback listener runs (localhost, loopback addresses and
 * the server_names configured here pass, any other Host is 403) and so
 * does the Origin check (cors_origins, or the trusted host itself).
 * The client writes the input, shuts its writing side down (as a client
 * that half-closes after its requests) and reads until the worker
 * closes; then the worker is freed whole, so nothing carries over from
 * one input to the next and every leak is this input's.  Each client
 * connects from the next address of 127.1.0.0/12, so the connections
 * it leaves in TIME_WAIT never run out of ports however long a run is.
 *
 * fuzz_https.c builds this file with FUZZ_HTTP_TLS: the same on a TLS
 * listener (tls.c's context from a key and certificate made at start,
 * bufferevent_openssl under evhttp).  Its client completes a TLS
 * handshake, sends the input as application data and decrypts what the
 * worker answers; the same invariants hold of the plaintext.  It cannot
 * half-close: its OpenSSL drops what arrives after its own close_notify,
 * and a worker's bufferevent_openssl reports an EOF in the pass that
 * read the request, before evhttp answered it, so the answer is lost
 * (a client shutting its writing side after a request gets no answer
 * over TLS; it does over plain TCP).  So it waits until nothing is in
 * flight and nothing arrived for two ticks of IDLE_MS, then sends
 * close_notify and closes, and the worker must let the connection go
 * within CLOSE_WITHIN_S.
 *
 * What must hold: the worker closes the connection soon after the
 * client's EOF; what it wrote first is an HTTP/1.0 or 1.1 response
 * (DataChat's own 500s included: a tool called with the wrong
 * arguments is one); nothing it wrote carries the credentials key or a
 * database password; ASan finds no leak and no bad access.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "config.h"
#include "conn.h"
#include "dc.h"
#include "auth.h"
#include "fernet.h"
#include "fuzz.h"
#include "log.h"
#include "shreg.h"
#include "tokens.h"
#include "worker.h"
#ifdef FUZZ_HTTP_TLS
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"
#define NAME		"fuzz_https"
#else
#define NAME		"fuzz_http"
#endif

/* Seeds send these (tests/fuzz/corpus/http). */
#define TOKEN_ADMIN	"dcat_fuzzADMINfuzzADMINfuzzADMINfuzzADMINfuzzAD"
#define TOKEN_READ	"dcat_fuzzREADfuzzREADfuzzREADfuzzREADfuzzREADfu"
#define SYSDB_SECRET	"sysdbSECRETpw"
#define KEY		"ZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXktZnV6ei0="
#define CLOSE_WITHIN_S	5
#define IDLE_MS		5

static const char conf_text[] =
    "listen = \"127.0.0.1:8000\"\n"
    "server_names = \"api.example, dc.internal\"\n"
    "auth = required\n"
    "metrics_auth = required\n"
    "cors_origins = \"http://app.example,http://localhost:3000\"\n"
    "max_body_size = 65536\n"
    "system_database_url = \"postgresql://dc:" SYSDB_SECRET
    "@127.0.0.1:9/sys\"\n"
    "credentials_key = \"" KEY "\"\n";

static struct dc_config cfg;
static struct dc_shreg *reg;
static struct dc_tokens *tokens;
static struct dc_fernet_ring ring;
static int listen_fd;			/* TCP, 127.0.0.1, a free port */
static struct sockaddr_in listen_addr;
static uint32_t next_src;		/* the client's next address */
static int show;
#ifdef FUZZ_HTTP_TLS
static struct ssl_ctx_st *server_tls;	/* tls.c's, from the config */
static SSL_CTX *client_tls;
#endif

struct client {
	struct event_base *base;
	struct event	*ev;
	int		 fd;
	const uint8_t	*in;
	size_t		 in_left;
	int		 sent;		/* all of it, and shut down */
	char		*out;
	size_t		 outlen, outcap;
	int		 eof;
#ifdef FUZZ_HTTP_TLS
	SSL		*ssl;
	struct dc_worker *w;
	struct event	*idle;		/* idle(), every IDLE_MS */
	int		 busy;		/* bytes arrived since the last tick */
	int		 quiet;		/* ticks without */
	int		 closed;	/* by the client, when all was quiet */
	int		 handshaken;
	int		 tls_failed;	/* our client and server disagreed */
	short		 events;	/* what c->ev waits for now */
#endif
};

static void
report(void *arg, const char *file, int line, const char *msg)
{
	fprintf(stderr, NAME ": %s:%d: %s\n", file, line, msg);
	abort();
}

static void
add_token(struct dc_token *t, const char *tok, const char *name, int role)
{
	memset(t, 0, sizeof(*t));
	dc_token_hash(tok, strlen(tok), t->hash);
	dc_strlcpy(t->name, name, sizeof(t->name));
	t->role = role;
}

#ifdef FUZZ_HTTP_TLS
/*
 * A P-256 key and a self-signed certificate for localhost, written to
 * dir/key.pem (mode 600, as the config requires) and dir/cert.pem.
 */
static void
make_pair(const char *dir, char *cert, char *key, size_t sz)
{
	EVP_PKEY *pk;
	X509 *x;
	X509_NAME *nm;
	FILE *f;
	int fd;

	snprintf(cert, sz, "%s/cert.pem", dir);
	snprintf(key, sz, "%s/key.pem", dir);
	if ((pk = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		abort();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	if (X509_set_issuer_name(x, nm) != 1 || X509_set_pubkey(x, pk) != 1 ||
	    X509_sign(x, pk, EVP_sha256()) == 0)
		abort();
	if ((fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL ||
	    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fclose(f) != 0)
		abort();
	if ((f = fopen(cert, "w")) == NULL || PEM_write_X509(f, x) != 1 ||
	    fclose(f) != 0)
		abort();
	X509_free(x);
	EVP_PKEY_free(pk);
}

/*
 * The TLS listener's part of the configuration, and the contexts: the
 * server's from tls.c (as the master makes it), a client's that takes
 * any certificate.  The files go once the context holds them.
 */
static void
tls_setup(char *conf, size_t confsz)
{
	char dir[] = "/tmp/datachatd-fuzz-https-XXXXXX";
	char cert[128], key[128], err[256];
	size_t n = strlen(conf);

	if (mkdtemp(dir) == NULL)
		abort();
	make_pair(dir, cert, key, sizeof(cert));
	snprintf(conf + n, confsz - n, "listen = \"127.0.0.1:8443 tls\"\n"
	    "tls_cert_file = \"%s\"\ntls_key_file = \"%s\"\n", cert, key);
	if (dc_config_parse_text(&cfg, NAME ".conf", conf, report, NULL) != 0 ||
	    dc_config_validate(&cfg, report, NULL) != 0 ||
	    dc_tls_ctx_new(&cfg, &server_tls, err, sizeof(err)) != DC_OK ||
	    server_tls == NULL) {
		fprintf(stderr, NAME ": %s\n", err);
		abort();
	}
	unlink(cert);
	unlink(key);
	rmdir(dir);
	if ((client_tls = SSL_CTX_new(TLS_client_method())) == NULL)
		abort();
	SSL_CTX_set_min_proto_version(client_tls, TLS1_2_VERSION);
	SSL_CTX_set_verify(client_tls, SSL_VERIFY_NONE, NULL);
}
#endif

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t id[16] = { 0x6b, 0x1f, 0x3e, 0x21, 0x7c, 0x55,
	    0x4a, 0x0e, 0x9d, 0x11, 0x2f, 0x38, 0x41, 0x5a, 0x63, 0x7e };
	struct dc_token list[2];
	struct dc_entry e;
	const char *why;
	char conf[1024];
	socklen_t len = sizeof(listen_addr);
	int bad;

	/* as a worker does: a write to a closed peer is an error, not death */
	signal(SIGPIPE, SIG_IGN);
	show = getenv("FUZZ_HTTP_SHOW") != NULL;
	dc_log_open("stderr", show ? DC_LOG_DEBUG : DC_LOG_ERROR, 0);
	dc_strlcpy(conf, conf_text, sizeof(conf));
	if (dc_fernet_init() != DC_OK || dc_config_defaults(&cfg) != DC_OK)
		abort();
#ifdef FUZZ_HTTP_TLS
	tls_setup(conf, sizeof(conf));
#else
	if (dc_config_parse_text(&cfg, NAME ".conf", conf, report, NULL) != 0 ||
	    dc_config_validate(&cfg, report, NULL) != 0)
		abort();
#endif
	if (dc_fernet_ring_parse(&ring, cfg.credentials_key, &why, &bad) !=
	    DC_OK || dc_shreg_create(&reg, 8) != DC_OK ||
	    dc_tokens_create(&tokens, 8) != DC_OK)
		abort();
	add_token(&list[0], TOKEN_ADMIN, "fuzz-admin", DC_ROLE_ADMIN);
	add_token(&list[1], TOKEN_READ, "fuzz-read", DC_ROLE_READ);
	if (dc_tokens_publish(tokens, list, 2) != 2)
		abort();
	dc_tokens_set_loaded(tokens, 1);

	/* one default target (its id is in the seeds) */
	memset(&e, 0, sizeof(e));
	memcpy(e.id, id, sizeof(e.id));
	e.created_at = 1764460800000000LL;
	e.is_active = 1;
	e.is_default = 1;
	dc_strlcpy(e.type, "postgresql", sizeof(e.type));
	dc_strlcpy(e.name, "sales", sizeof(e.name));
	dc_strlcpy(e.url, "postgresql://app:" SYSDB_SECRET
	    "@127.0.0.1:9/sales", sizeof(e.url));
	dc_strlcpy(e.tags, "[\"fuzz\"]", sizeof(e.tags));
	if (dc_shreg_put(reg, &e) != DC_OK)
		abort();
	dc_shreg_commit(reg);
	dc_shreg_set_state(reg, DC_REG_FRESH);
	dc_shreg_set_sysdb_up(reg, 1);
	dc_shreg_beat(reg, dc_now_ms());

	memset(&listen_addr, 0, sizeof(listen_addr));
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 || bind(listen_fd, (struct sockaddr *)
	    &listen_addr, sizeof(listen_addr)) == -1 ||
	    listen(listen_fd, 16) == -1 || getsockname(listen_fd,
	    (struct sockaddr *)&listen_addr, &len) == -1)
		abort();
	return 0;
}

/* A client socket from the next address of 127.1.0.0/12, connecting. */
static int
client_socket(void)
{
	struct sockaddr_in src;
	int fd;

	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f010000U + (next_src++ & 0xfffffU));
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1)
		abort();
	if (connect(fd, (struct sockaddr *)&listen_addr,
	    sizeof(listen_addr)) == -1 && errno != EINPROGRESS)
		abort();
	return fd;
}

static void
client_io(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	ssize_t n;

	if ((what & EV_WRITE) && !c->sent) {
		n = c->in_left > 0 ? send(fd, c->in, c->in_left,
		    MSG_NOSIGNAL) : 0;
		if (n > 0) {
			c->in += n;
			c->in_left -= (size_t)n;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR)
			c->in_left = 0;		/* the worker closed already */
		if (c->in_left == 0) {
			/* all sent: a half-close, then read to the end */
			c->sent = 1;
			shutdown(fd, SHUT_WR);
			event_del(c->ev);
			event_assign(c->ev, c->base, fd, EV_READ | EV_PERSIST,
			    client_io, c);
			event_add(c->ev, NULL);
		}
	}
	if (!(what & EV_READ))
		return;
	for (;;) {
		if (c->outcap - c->outlen < 4096) {
			c->outcap = c->outcap * 2 + 4096;
			if ((c->out = realloc(c->out, c->outcap + 1)) == NULL)
				abort();
		}
		n = recv(fd, c->out + c->outlen, c->outcap - c->outlen, 0);
		if (n > 0) {
			c->outlen += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		c->eof = 1;	/* closed (0), or reset (-1) */
		event_base_loopbreak(c->base);
		return;
	}
}

#ifdef FUZZ_HTTP_TLS
static void	 tls_io(evutil_socket_t, short, void *);

/* Wait for what, if it is not what c->ev waits for already. */
static void
tls_wait(struct client *c, short what)
{
	if (c->events == what)
		return;
	event_del(c->ev);
	event_assign(c->ev, c->base, c->fd, what | EV_PERSIST, tls_io, c);
	event_add(c->ev, NULL);
	c->events = what;
}

/* After an SSL call failed: wait for what it needs, or give up (0). */
static int
tls_retry(struct client *c, int rc)
{
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		tls_wait(c, EV_READ);
		return 1;
	case SSL_ERROR_WANT_WRITE:
		tls_wait(c, EV_READ | EV_WRITE);
		return 1;
	default:
		ERR_clear_error();
		return 0;
	}
}

/*
 * The TLS client: the handshake, then the input as application data,
 * reading what comes back all the while (as the plain client does)
 * until the worker closes or idle() closes.
 */
static void
tls_io(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	int n;

	if (!c->handshaken) {
		if ((n = SSL_connect(c->ssl)) != 1) {
			if (!tls_retry(c, n)) {
				/* our own client and server: never */
				c->tls_failed = 1;
				c->eof = 1;
				event_base_loopbreak(c->base);
			}
			return;
		}
		c->handshaken = 1;
		tls_wait(c, EV_READ | EV_WRITE);
	}
	while (!c->sent && c->in_left > 0) {
		n = SSL_write(c->ssl, c->in, c->in_left > 16384 ? 16384 :
		    (int)c->in_left);
		if (n > 0) {
			c->in += n;
			c->in_left -= (size_t)n;
		} else if (!tls_retry(c, n))
			c->in_left = 0;		/* the worker closed already */
		else
			break;
	}
	if (!c->sent && c->in_left == 0) {
		/* no half-close (see the top): idle() ends it */
		c->sent = 1;
		tls_wait(c, EV_READ);
	}
	for (;;) {
		if (c->outcap - c->outlen < 4096) {
			c->outcap = c->outcap * 2 + 4096;
			if ((c->out = realloc(c->out, c->outcap + 1)) == NULL)
				abort();
		}
		n = SSL_read(c->ssl, c->out + c->outlen,
		    (int)(c->outcap - c->outlen));
		if (n > 0) {
			c->outlen += (size_t)n;
			c->busy = 1;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			if (c->sent)
				tls_wait(c, EV_READ);
			return;
		case SSL_ERROR_WANT_WRITE:
			return;
		}
		/* close_notify, EOF or a reset: the worker is done */
		ERR_clear_error();
		c->eof = 1;
		event_base_loopbreak(c->base);
		return;
	}
}

/*
 * Every IDLE_MS: once everything is sent, no request is in flight and
 * nothing arrived for two ticks, the client says close_notify and
 * closes the socket, and the worker has CLOSE_WITHIN_S to let go of
 * the connection (conn.c counts it).
 */
static void
idle(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->closed) {
		if (dc_conn_count() == 0) {
			c->eof = 1;
			event_base_loopbreak(c->base);
		}
		return;
	}
	if (!c->sent || c->busy || c->w->inflight != 0) {
		c->busy = 0;
		c->quiet = 0;
		return;
	}
	if (++c->quiet < 2)
		return;
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	shutdown(c->fd, SHUT_RDWR);
	event_del(c->ev);
	c->closed = 1;
}
#endif

static void
too_long(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	event_base_loopbreak(c->base);
}

/*
 * No secret in anything written that the client did not send; the
 * first response (if any) is HTTP/1.0 or 1.1 with a status.  Later ones
 * are not framed here: a HEAD reply's Content-Length has no body
 * behind it, which only the request says.
 */
static void
check_secret(const struct client *c, const uint8_t *in, size_t size,
    const char *secret)
{
	/* the client may send it itself: an echo of its input is no leak */
	if (memmem(in, size, secret, strlen(secret)) == NULL)
		FUZZ_ASSERT(memmem(c->out, c->outlen, secret,
		    strlen(secret)) == NULL);
}

static void
check_replies(const struct client *c, const uint8_t *in, size_t size)
{
	const char *p = c->out;
	int status;

	check_secret(c, in, size, SYSDB_SECRET);
	check_secret(c, in, size, KEY);
	if (c->outlen == 0)
		return;
	FUZZ_ASSERT(c->outlen >= 12);
	FUZZ_ASSERT(memcmp(p, "HTTP/1.1 ", 9) == 0 ||
	    memcmp(p, "HTTP/1.0 ", 9) == 0);
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	FUZZ_ASSERT(status >= 100 && status < 600);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evhttp_bound_socket *bound;
	struct dc_worker *w;
	struct client c;
	struct event *timer;
	struct timeval tv = { CLOSE_WITHIN_S, 0 };
#ifdef FUZZ_HTTP_TLS
	struct timeval idle_tv = { 0, IDLE_MS * 1000 };
#endif
	struct evhttp *http;
	struct ssl_ctx_st *tls = NULL;
	event_callback_fn io = client_io;
	int lfd, fd;

#ifdef FUZZ_HTTP_TLS
	tls = server_tls;
	io = tls_io;
#endif
	if ((w = dc_worker_detached(&cfg, reg, tokens, tls, &ring)) == NULL)
		abort();
	dc_auth_reset_limits();
	/* the worker accepts on its own copy, closed when it is freed */
	http = tls != NULL ? w->https : w->http;
	if ((lfd = dup(listen_fd)) == -1 ||
	    (bound = evhttp_accept_socket_with_handle(http, lfd)) == NULL)
		abort();
	dc_conn_listen(evhttp_bound_socket_get_listener(bound));
	fd = client_socket();

	memset(&c, 0, sizeof(c));
	c.base = w->base;
	c.fd = fd;
	c.in = data;
	c.in_left = size;
#ifdef FUZZ_HTTP_TLS
	if ((c.ssl = SSL_new(client_tls)) == NULL || SSL_set_fd(c.ssl, fd) != 1)
		abort();
	SSL_set_connect_state(c.ssl);
	c.events = EV_READ | EV_WRITE;
	c.w = w;
	if ((c.idle = event_new(w->base, -1, EV_PERSIST, idle, &c)) == NULL)
		abort();
	event_add(c.idle, &idle_tv);
#endif
	c.ev = event_new(w->base, fd, EV_READ | EV_WRITE | EV_PERSIST, io,
	    &c);
	timer = evtimer_new(w->base, too_long, &c);
	if (c.ev == NULL || timer == NULL)
		abort();
	event_add(c.ev, NULL);
	evtimer_add(timer, &tv);
	event_base_dispatch(w->base);
	if (show)	/* FUZZ_HTTP_SHOW=1: what the worker wrote */
		fwrite(c.out, 1, c.outlen, stderr);
	FUZZ_ASSERT(c.eof);	/* closed within CLOSE_WITHIN_S of the EOF */
#ifdef FUZZ_HTTP_TLS
	FUZZ_ASSERT(!c.tls_failed);
	SSL_free(c.ssl);
	event_free(c.idle);
#endif
	check_replies(&c, data, size);

	event_free(timer);
	event_free(c.ev);
	close(fd);
	free(c.out);
	dc_worker_detached_free(w);
	return 0;
}
