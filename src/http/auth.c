/*
 * auth.c - API tokens on the request path (auth.h).
 *
 * Every route carries the least role it allows (the role column of the
 * route tables).  A request to a route that is not open presents a
 * token; its SHA-256 is looked up in the shared token table the master
 * keeps (tokens.h), the expiry is checked against the wall clock, and the
 * token's role is compared with the route's.  Nothing here blocks or
 * talks to the system database: a revoked token disappears from the
 * table when the master republishes it.
 *
 * Failed attempts are counted per client address (an IPv6 address by
 * its /64) in a fixed table per worker; an address over
 * auth_failure_limit within a minute gets 429 for the rest of that
 * minute without its token being looked at, so guessing costs a minute
 * per handful of tries.  The table is small and direct-mapped: memory
 * stays bounded whatever the number of addresses.
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth.h"
#include "config.h"
#include "dc.h"
#include "http.h"
#include "log.h"
#include "shreg.h"
#include "tokens.h"
#include "worker.h"

#define LIMIT_SLOTS	4096
#define LIMIT_WINDOW_MS	60000

struct limit_slot {
	uint64_t	 key;		/* hash of the address; 0 = free */
	uint64_t	 window_start;	/* ms */
	uint32_t	 failures;
};

static struct limit_slot limits[LIMIT_SLOTS];
static unsigned limits_used;	/* slots ever taken; 0: nobody failed */

/* FNV-1a of an address; an IPv6 address counts by its /64. */
static uint64_t
addr_key(const char *addr)
{
	struct in6_addr a6;
	const uint8_t *p = (const uint8_t *)addr;
	uint64_t h = 1469598103934665603ULL;
	size_t n = strlen(addr), i;

	if (strchr(addr, ':') != NULL && inet_pton(AF_INET6, addr, &a6) == 1) {
		p = a6.s6_addr;
		n = 8;
	}
	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h != 0 ? h : 1;
}

static struct limit_slot *
limit_slot(const char *addr, uint64_t now_ms, int create)
{
	uint64_t key = addr_key(addr);
	struct limit_slot *s = &limits[key % LIMIT_SLOTS];

	if (s->key != key) {
		if (!create)
			return NULL;
		if (s->key == 0)
			limits_used++;
		/* a collision takes the slot over: memory stays bounded */
		s->key = key;
		s->window_start = now_ms;
		s->failures = 0;
	}
	if (now_ms - s->window_start >= LIMIT_WINDOW_MS) {
		s->window_start = now_ms;
		s->failures = 0;
	}
	return s;
}

int
dc_auth_limited(const char *addr, uint64_t now_ms, int limit, int *retry_s)
{
	struct limit_slot *s;

	/* the common case, no failure yet: no hashing, no table line */
	if (limits_used == 0)
		return 0;
	s = limit_slot(addr, now_ms, 0);
	if (s == NULL || s->failures < (uint32_t)limit)
		return 0;
	*retry_s = (int)((s->window_start + LIMIT_WINDOW_MS - now_ms + 999) /
	    1000);
	return 1;
}

void
dc_auth_note_failure(const char *addr, uint64_t now_ms)
{
	struct limit_slot *s = limit_slot(addr, now_ms, 1);

	if (s->failures < UINT32_MAX)
		s->failures++;
}

void
dc_auth_reset_limits(void)
{
	memset(limits, 0, sizeof(limits));
	limits_used = 0;
}

static int
is_websocket(struct evkeyvalq *h)
{
	const char *up = evhttp_find_header(h, "Upgrade");

	return up != NULL && strcasecmp(up, "websocket") == 0;
}

/* Next comma-separated item of *s, trimmed; NULL at the end. */
static const char *
next_item(const char **s, size_t *len)
{
	const char *p = *s, *e;

	p += strspn(p, " \t,");
	if (*p == '\0')
		return NULL;
	e = p + strcspn(p, ",");
	*s = e;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*len = (size_t)(e - p);
	return p;
}

/*
 * The token the request presents, or NULL: a Bearer credential, or for
 * a WebSocket handshake (browsers cannot set headers there) an
 * access_token query parameter or a Sec-WebSocket-Protocol entry.
 * buf holds a copy when the token came from the query string.
 */
static const char *
find_token(struct dc_req *r, size_t *len, char *buf, size_t bufsz)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const struct evhttp_uri *uri;
	struct evkeyvalq q;
	const char *v, *p, *item;
	size_t n;

	if ((v = evhttp_find_header(h, "Authorization")) != NULL) {
		if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' &&
		    v[6] != '\t'))
			return NULL;
		v += 6 + strspn(v + 6, " \t");
		for (n = strlen(v); n > 0 && (v[n - 1] == ' ' ||
		    v[n - 1] == '\t'); n--)
			;
		*len = n;
		return n > 0 ? v : NULL;
	}
	if (!is_websocket(h))
		return NULL;
	if ((v = evhttp_find_header(h, "Sec-WebSocket-Protocol")) != NULL) {
		p = v;
		while ((item = next_item(&p, &n)) != NULL)
			if (n > 5 && strncmp(item, DC_TOKEN_PREFIX, 5) == 0) {
				*len = n;
				return item;
			}
	}
	uri = evhttp_request_get_evhttp_uri(r->req);
	if (uri == NULL || (p = evhttp_uri_get_query(uri)) == NULL)
		return NULL;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(p, &q) != 0) {
		evhttp_clear_headers(&q);
		return NULL;
	}
	v = evhttp_find_header(&q, "access_token");
	if (v != NULL && (n = strlen(v)) < bufsz) {
		memcpy(buf, v, n + 1);
		*len = n;
		v = buf;
	} else
		v = NULL;
	evhttp_clear_headers(&q);
	return v;
}

const char *
dc_auth_ws_protocol(struct dc_req *r)
{
	static char chosen[64];
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *v, *p, *item;
	size_t n;

	if ((v = evhttp_find_header(h, "Sec-WebSocket-Protocol")) == NULL)
		return NULL;
	p = v;
	while ((item = next_item(&p, &n)) != NULL) {
		if (n >= 5 && strncmp(item, DC_TOKEN_PREFIX, 5) == 0)
			continue;
		if (n >= sizeof(chosen))
			continue;
		memcpy(chosen, item, n);
		chosen[n] = '\0';
		return chosen;
	}
	return NULL;
}

static void
challenge(struct dc_req *r, const char *error)
{
	char v[128];

	if (error != NULL)
		snprintf(v, sizeof(v), "Bearer realm=\"datachatd\", "
		    "error=\"%s\"", error);
	else
		snprintf(v, sizeof(v), "Bearer realm=\"datachatd\"");
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "WWW-Authenticate", v);
}

/*
 * The token check proper, once the route needs a role and auth is on:
 * the rate limit, the token, its hash looked up, expiry and role.
 */
static int
check_token(struct dc_req *r, int need)
{
	const struct dc_config *cfg = r->w->cfg;
	struct dc_token t;
	uint8_t hash[DC_TOKEN_HASH_LEN];
	char qbuf[DC_TOKEN_LEN + 16];
	const char *tok, *peer = dc_req_peer(r);
	uint64_t now = 0;	/* the wall clock, read when needed */
	size_t len;
	int retry;

	if (limits_used != 0 && dc_auth_limited(peer, now = dc_wall_ms(),
	    cfg->auth_failure_limit, &retry)) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", retry);
		evhttp_add_header(evhttp_request_get_output_headers(r->req),
		    "Retry-After", ra);
		dc_reply_error(r, 429, "too many failed authentication "
		    "attempts from this address; retry in %d s", retry);
		return DC_EINVAL;
	}
	if ((tok = find_token(r, &len, qbuf, sizeof(qbuf))) == NULL) {
		challenge(r, NULL);
		dc_reply_error(r, 401, "Not authenticated: this route needs "
		    "an API token (Authorization: Bearer)");
		return DC_EINVAL;
	}
	dc_token_hash(tok, len, hash);
	dc_explicit_bzero(qbuf, sizeof(qbuf));
	if (dc_tokens_lookup(r->w->tokens, hash, &t) != DC_OK ||
	    (t.expires_ms != 0 && (uint64_t)t.expires_ms <= (now =
	    dc_wall_ms()))) {
		if (!dc_tokens_loaded(r->w->tokens) &&
		    cfg->system_database_url[0] != '\0') {
			dc_reply_error(r, 503, "API tokens are not loaded yet: "
			    "the system database is not reachable");
			return DC_EINVAL;
		}
		dc_auth_note_failure(peer, now != 0 ? now : dc_wall_ms());
		log_info("%s invalid or expired token from %s", r->id, peer);
		challenge(r, "invalid_token");
		dc_reply_error(r, 401, "Invalid or expired token");
		return DC_EINVAL;
	}
	dc_strlcpy(r->who, t.name, sizeof(r->who));
	r->role = t.role;
	r->operator_ = t.operator_;
	if (t.role < need) {
		challenge(r, "insufficient_scope");
		dc_reply_error(r, 403, "the token's role (%s) does not allow "
		    "%s %s: it needs %s", dc_role_name(t.role), r->method,
		    r->path, dc_role_name(need));
		return DC_EINVAL;
	}
	return DC_OK;
}

/* CLOCK_MONOTONIC in ns: in us, most checks would round to 0 or 1 */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int
dc_auth_check(struct dc_req *r, int need)
{
	const struct dc_config *cfg = r->w->cfg;
	struct dc_worker_stats *st = r->w->stats;
	uint64_t t0;
	int rc;

	if (need == DC_ROLE_METRICS)
		need = cfg->metrics_open ? DC_ROLE_NONE : DC_ROLE_READ;
	if (need == DC_ROLE_NONE || !cfg->auth_required) {
		dc_strlcpy(r->who, "anonymous", sizeof(r->who));
		r->role = DC_ROLE_ADMIN;
		return DC_OK;
	}
	/*
	 * What the check costs, for /metrics (scripts/bench-registry puts
	 * it against the workers' CPU time): two vDSO clock reads.
	 */
	t0 = now_ns();
	rc = check_token(r, need);
	__atomic_add_fetch(&st->auth_checks, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->auth_check_ns_sum, now_ns() - t0,
	    __ATOMIC_RELAXED);
	return rc;
}
