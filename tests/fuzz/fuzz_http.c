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
 * needing one answer as if it were down) and one connection: a
 * unix socket the worker accepts on its own listener.  The client writes
 * the input, shuts its writing side down (as a client that half-closes
 * after its requests) and reads until the worker closes; then the
 * worker is freed whole, so nothing carries over from one input to the
 * next and every leak is this input's.  A unix socket is not loopback:
 * the Host check (dc_host_trusted, its own unit test) does not run here.
 *
 * What must hold: the worker closes the connection soon after the
 * client's EOF; what it wrote first is an HTTP/1.0 or 1.1 response
 * (DataChat's own 500s included: a tool called with the wrong
 * arguments is one); nothing it wrote carries the credentials key or a
 * database password; ASan finds no leak and no bad access.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
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

/* Seeds send these (tests/fuzz/corpus/http). */
#define TOKEN_ADMIN	"dcat_fuzzADMINfuzzADMINfuzzADMINfuzzADMINfuzzAD"
#define TOKEN_READ	"dcat_fuzzREADfuzzREADfuzzREADfuzzREADfuzzREADfu"
#define SYSDB_SECRET	"sysdbSECRETpw"
#define KEY		"ZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXktZnV6ei0="
#define CLOSE_WITHIN_S	5

static const char conf_text[] =
    "listen = \"127.0.0.1:8000\"\n"
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
static int listen_fd;			/* a unix socket, abstract name */
static struct sockaddr_un listen_addr;
static socklen_t listen_len;
static int show;

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
};

static void
report(void *arg, const char *file, int line, const char *msg)
{
	fprintf(stderr, "fuzz_http: %s:%d: %s\n", file, line, msg);
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

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t id[16] = { 0x6b, 0x1f, 0x3e, 0x21, 0x7c, 0x55,
	    0x4a, 0x0e, 0x9d, 0x11, 0x2f, 0x38, 0x41, 0x5a, 0x63, 0x7e };
	struct dc_token list[2];
	struct dc_entry e;
	const char *why;
	int bad;

	show = getenv("FUZZ_HTTP_SHOW") != NULL;
	dc_log_open("stderr", show ? DC_LOG_DEBUG : DC_LOG_ERROR, 0);
	if (dc_fernet_init() != DC_OK || dc_config_defaults(&cfg) != DC_OK ||
	    dc_config_parse_text(&cfg, "fuzz_http.conf", conf_text, report,
	    NULL) != 0 || dc_config_validate(&cfg, report, NULL) != 0 ||
	    dc_fernet_ring_parse(&ring, cfg.credentials_key, &why, &bad) !=
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
	listen_addr.sun_family = AF_UNIX;
	snprintf(listen_addr.sun_path + 1, sizeof(listen_addr.sun_path) - 1,
	    "datachatd-fuzz-http-%d", (int)getpid());
	listen_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(listen_addr.sun_path + 1));
	if ((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 || bind(listen_fd, (struct sockaddr *)
	    &listen_addr, listen_len) == -1 || listen(listen_fd, 16) == -1)
		abort();
	return 0;
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
	int lfd, fd;

	if ((w = dc_worker_detached(&cfg, reg, tokens, &ring)) == NULL)
		abort();
	dc_auth_reset_limits();
	/* the worker accepts on its own copy, closed when it is freed */
	if ((lfd = dup(listen_fd)) == -1 ||
	    (bound = evhttp_accept_socket_with_handle(w->http, lfd)) == NULL)
		abort();
	dc_conn_listen(evhttp_bound_socket_get_listener(bound));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || connect(fd, (struct sockaddr *)&listen_addr,
	    listen_len) == -1)
		abort();

	memset(&c, 0, sizeof(c));
	c.base = w->base;
	c.fd = fd;
	c.in = data;
	c.in_left = size;
	c.ev = event_new(w->base, fd, EV_READ | EV_WRITE | EV_PERSIST,
	    client_io, &c);
	timer = evtimer_new(w->base, too_long, &c);
	if (c.ev == NULL || timer == NULL)
		abort();
	event_add(c.ev, NULL);
	evtimer_add(timer, &tv);
	event_base_dispatch(w->base);
	if (show)	/* FUZZ_HTTP_SHOW=1: what the worker wrote */
		fwrite(c.out, 1, c.outlen, stderr);
	FUZZ_ASSERT(c.eof);	/* closed within CLOSE_WITHIN_S of the EOF */
	check_replies(&c, data, size);

	event_free(timer);
	event_free(c.ev);
	close(fd);
	free(c.out);
	dc_worker_detached_free(w);
	return 0;
}
