/*
 * util.c - small pure helpers shared by every module: clocks, string
 * copying, wiping secrets, UUIDs, URL masking and type detection, ISO 8601
 * timestamps.  Nothing here touches the event loop or the network.
 */
#include <sys/random.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include "dc.h"
#include "util.h"

char dc_proc_title[32] = "master";

uint64_t
dc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
dc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
dc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

size_t
dc_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

void
dc_explicit_bzero(void *p, size_t n)
{
	explicit_bzero(p, n);
}

/* UUIDs, URL helpers and timestamps follow (util.h). */

int
dc_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
dc_pct_decode_strict(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (o + 1 >= outsz)
			return -1;
		if (s[i] == '%') {
			if (i + 2 >= n ||
			    (hi = dc_hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = dc_hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return 0;
}

uint64_t
dc_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int
dc_word_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

int
dc_uuid_parse(const char *s, uint8_t out[16])
{
	uint8_t id[16];
	int i, n = 0, hi, lo, rv = DC_EINVAL;

	if (s == NULL || strlen(s) != DC_UUID_STR_LEN)
		goto out;
	for (i = 0; i < DC_UUID_STR_LEN; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				goto out;
			continue;
		}
		if ((hi = dc_hexval((unsigned char)s[i])) < 0 ||
		    (lo = dc_hexval((unsigned char)s[i + 1])) < 0)
			goto out;
		id[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(out, id, sizeof(id));
	rv = DC_OK;
out:
	return rv;
}

void
dc_uuid_format(const uint8_t id[16], char out[DC_UUID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 0x0f];
	}
	out[o] = '\0';
}

int
dc_uuid_generate(uint8_t out[16])
{
	size_t got = 0;
	ssize_t n;
	int rv = DC_ERR;

	while (got < 16) {
		n = getrandom(out + got, 16 - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	out[6] = (out[6] & 0x0f) | 0x40;	/* version 4 */
	out[8] = (out[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	rv = DC_OK;
out:
	return rv;
}

int
dc_uuid_is_zero(const uint8_t id[16])
{
	int i;

	for (i = 0; i < 16; i++)
		if (id[i] != 0)
			return 0;
	return 1;
}

/* An output buffer that truncates instead of overflowing. */
struct dc_obuf {
	char	*p;
	size_t	 size, len;
};

static void
obuf_add(struct dc_obuf *b, const char *s, size_t n)
{
	size_t room = b->size - 1 - b->len;

	if (n > room)
		n = room;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Length of the URL scheme before "://", or 0 when there is none. */
static size_t
url_scheme_len(const char *url)
{
	size_t i;

	if (url == NULL || !isalpha((unsigned char)url[0]))
		return 0;
	for (i = 1; url[i] != '\0'; i++) {
		if (url[i] == ':')
			return strncmp(url + i, "://", 3) == 0 ? i : 0;
		if (!isalnum((unsigned char)url[i]) && url[i] != '+' &&
		    url[i] != '-' && url[i] != '.')
			return 0;
	}
	return 0;
}

/* Percent-decode [s, s + n) into out (at most outsz - 1 bytes). */
static void
pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < n && o + 1 < outsz; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    (hi = dc_hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = dc_hexval((unsigned char)s[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
}

/*
 * Does the query parameter name [s, s + n) carry a password
 * (password, sslpassword, ...)?  Decoded first: libpq reads
 * "pass%77ord" as password, so the mask must too.
 */
static int
is_password_param(const char *s, size_t n)
{
	static const char key[] = "password";
	size_t klen = sizeof(key) - 1, dn;
	char name[128];

	pct_decode(s, n, name, sizeof(name));
	dn = strlen(name);
	return dn >= klen && strncasecmp(name + dn - klen, key, klen) == 0;
}

/*
 * Copy the part of a URL after its userinfo, masking the value of every
 * password-like query parameter.  Parameters are split at '&' only, as
 * libpq splits them: a ';' or '#' belongs to the value.
 */
static void
mask_query(struct dc_obuf *b, const char *s)
{
	const char *q, *name, *eq, *end;

	if ((q = strchr(s, '?')) == NULL) {
		obuf_add(b, s, strlen(s));
		return;
	}
	obuf_add(b, s, (size_t)(q - s) + 1);
	for (name = q + 1; ; name = end + 1) {
		end = name + strcspn(name, "&");
		eq = memchr(name, '=', (size_t)(end - name));
		if (eq != NULL &&
		    is_password_param(name, (size_t)(eq - name))) {
			obuf_add(b, name, (size_t)(eq - name) + 1);
			obuf_add(b, "***", 3);
		} else
			obuf_add(b, name, (size_t)(end - name));
		if (*end == '\0')
			break;
		obuf_add(b, end, 1);
	}
}

/*
 * The userinfo ends at an '@'.  A password may hold a raw '@', '/', '?'
 * or '#' that its owner forgot to percent-encode, so do not trust the
 * first '/' to end the authority: take the first '@', then the last '@'
 * of the host part that follows it.  When that is wrong it hides too
 * much, never too little.
 */
static const char *
url_userinfo_end(const char *rest)
{
	const char *at, *p, *end;

	if ((at = strchr(rest, '@')) == NULL)
		return NULL;
	end = at + 1 + strcspn(at + 1, "/?#");
	for (p = at + 1; p < end; p++)
		if (*p == '@')
			at = p;
	return at;
}

/* Spaces or control bytes: not a URL we understand. */
static int
has_space_or_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

/* The value of a PQconninfoParse option, or NULL. */
static const char *
opt_val(const PQconninfoOption *opts, const char *key)
{
	for (; opts != NULL && opts->keyword != NULL; opts++)
		if (strcmp(opts->keyword, key) == 0)
			return opts->val;
	return NULL;
}

static void
opts_free(PQconninfoOption *opts)
{
	PQconninfoOption *o;

	if (opts == NULL)
		return;
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			dc_explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
}

/* libpq's own reading of a PostgreSQL URL, or NULL. */
static PQconninfoOption *
pg_parse(const char *url)
{
	PQconninfoOption *opts = NULL;
	const char *type = dc_url_type(url);
	char *u, *err = NULL;

	if (type == NULL || strcmp(type, "postgresql") != 0 ||
	    (u = dc_url_libpq(url)) == NULL)
		return NULL;
	opts = PQconninfoParse(u, &err);
	if (err != NULL)
		PQfreemem(err);
	dc_explicit_bzero(u, strlen(u));
	free(u);
	return opts;
}

#define SCRUB_MAX	8	/* forms of a password looked for */

struct secrets {
	int	 n;
	char	*v[SCRUB_MAX];
};

static void
secret_add(struct secrets *sc, const char *s, size_t n)
{
	size_t i;

	if (n == 0 || sc->n == SCRUB_MAX)
		return;
	for (i = 0; i < (size_t)sc->n; i++)
		if (strlen(sc->v[i]) == n && memcmp(sc->v[i], s, n) == 0)
			return;
	if ((sc->v[sc->n] = strndup(s, n)) != NULL)
		sc->n++;
}

/* Every form url's passwords may take in a message: raw and decoded. */
static void
secrets_of(const char *url, struct secrets *sc)
{
	static const char *const keys[] = { "password", "sslpassword" };
	PQconninfoOption *opts;
	const char *rest, *at, *colon, *q, *name, *eq, *end, *v;
	char dec[512];
	size_t slen, i;

	if (url == NULL || (slen = url_scheme_len(url)) == 0)
		return;
	rest = url + slen + 3;
	if ((at = url_userinfo_end(rest)) != NULL &&
	    (colon = memchr(rest, ':', (size_t)(at - rest))) != NULL) {
		secret_add(sc, colon + 1, (size_t)(at - colon - 1));
		pct_decode(colon + 1, (size_t)(at - colon - 1), dec,
		    sizeof(dec));
		secret_add(sc, dec, strlen(dec));
	}
	for (q = strchr(rest, '?'), name = q != NULL ? q + 1 : NULL;
	    name != NULL; name = *end != '\0' ? end + 1 : NULL) {
		end = name + strcspn(name, "&");
		eq = memchr(name, '=', (size_t)(end - name));
		if (eq == NULL || !is_password_param(name,
		    (size_t)(eq - name)))
			continue;
		secret_add(sc, eq + 1, (size_t)(end - eq - 1));
		pct_decode(eq + 1, (size_t)(end - eq - 1), dec, sizeof(dec));
		secret_add(sc, dec, strlen(dec));
	}
	if ((opts = pg_parse(url)) != NULL) {
		for (i = 0; i < DC_ARRAY_SIZE(keys); i++)
			if ((v = opt_val(opts, keys[i])) != NULL)
				secret_add(sc, v, strlen(v));
		opts_free(opts);
	}
	dc_explicit_bzero(dec, sizeof(dec));
}

/*
 * Would the masked form of a PostgreSQL URL still tell a password, as
 * libpq reads the two?  Every password-like parameter of the masked URL
 * must read "***", and the original's passwords must not appear in it.
 */
static int
pg_mask_leaks(const char *url, const char *masked)
{
	static const char *const keys[] = { "password", "sslpassword" };
	PQconninfoOption *mine;
	struct secrets sc;
	const char *v, *rest = strstr(masked, "://");
	size_t i;
	int leaks = 0;

	const char *type = dc_url_type(url);

	if (type == NULL || strcmp(type, "postgresql") != 0)
		return 0;
	/* whether libpq can read the original or not, it reads the mask */
	mine = pg_parse(masked);
	for (i = 0; i < DC_ARRAY_SIZE(keys); i++) {
		v = opt_val(mine, keys[i]);
		if (v != NULL && strcmp(v, "***") != 0)
			leaks = 1;
	}
	opts_free(mine);
	/*
	 * Nor may a password be found in it in any form (another
	 * parameter's value may hold it), after the scheme: a password
	 * "stgres" is in "postgresql".
	 */
	memset(&sc, 0, sizeof(sc));
	secrets_of(url, &sc);
	for (i = 0; i < (size_t)sc.n; i++) {
		if (strlen(sc.v[i]) >= 4 && rest != NULL &&
		    strstr(rest + 3, sc.v[i]) != NULL)
			leaks = 1;
		dc_explicit_bzero(sc.v[i], strlen(sc.v[i]));
		free(sc.v[i]);
	}
	return leaks;
}

void
dc_url_mask(const char *url, char *out, size_t outsz)
{
	struct dc_obuf b = { out, outsz, 0 };
	const char *rest, *at, *colon;
	size_t slen;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if ((slen = url_scheme_len(url)) == 0)
		goto hide;
	obuf_add(&b, url, slen + 3);
	rest = url + slen + 3;
	if (has_space_or_ctl(rest))
		goto hide;

	at = url_userinfo_end(rest);
	colon = at != NULL ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
	if (colon != NULL) {
		obuf_add(&b, rest, (size_t)(colon - rest) + 1);
		obuf_add(&b, "***", 3);
		rest = at;
	}
	mask_query(&b, rest);
	if (pg_mask_leaks(url, out)) {
		/* libpq reads it otherwise: show nothing but the scheme */
		out[0] = '\0';
		b.len = 0;
		obuf_add(&b, url, slen + 3);
		goto hide;
	}
	return;
hide:
	obuf_add(&b, "***", 3);
}

const char *
dc_url_type(const char *url)
{
	static const struct {
		const char	*scheme;
		const char	*type;
	} types[] = {
		{ "postgresql", "postgresql" },
		{ "postgres", "postgresql" },
		{ "mysql", "mysql" },
		{ "mariadb", "mysql" },
		{ "clickhouse", "clickhouse" },
		{ "clickhouses", "clickhouse" },
	};
	const char *plus;
	size_t i, n;

	if ((n = url_scheme_len(url)) == 0)
		return NULL;
	if ((plus = memchr(url, '+', n)) != NULL)
		n = (size_t)(plus - url);
	for (i = 0; i < DC_ARRAY_SIZE(types); i++)
		if (strlen(types[i].scheme) == n &&
		    strncasecmp(url, types[i].scheme, n) == 0)
			return types[i].type;
	return NULL;
}

char *
dc_url_libpq(const char *url)
{
	const char *plus;
	char *s;
	size_t n, len;

	if (url == NULL)
		return NULL;
	len = strlen(url);
	n = url_scheme_len(url);
	if (n == 0 || (plus = memchr(url, '+', n)) == NULL)
		return strdup(url);
	/* Keep the scheme up to '+', then everything from "://". */
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(s, url, (size_t)(plus - url));
	memcpy(s + (plus - url), url + n, len - n + 1);
	return s;
}

void
dc_iso8601(int64_t usec, char *out, size_t outsz)
{
	struct tm tm;
	time_t secs;
	int64_t frac;

	if (outsz == 0)
		return;
	/* Floor division, so times before 1970 come out right too. */
	secs = (time_t)(usec / 1000000);
	frac = usec % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		out[0] = '\0';
		return;
	}
	if (frac != 0)
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)frac);
	else
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d+00:00",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
}

static int
word_char(int c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/*
 * Copy msg, replacing a password where it stands on its own: not inside
 * a longer word, so a short password never turns "port" into "***ort".
 */
void
dc_scrub_password(const char *msg, const char *url, char *out, size_t outsz)
{
	struct secrets sc;
	size_t o = 0, i, l, best;
	const char *p;
	int k;

	if (outsz == 0)
		return;
	memset(&sc, 0, sizeof(sc));
	secrets_of(url, &sc);
	for (p = msg; *p != '\0' && o + 1 < outsz; ) {
		best = 0;
		for (k = 0; k < sc.n; k++) {
			/* as a regex's \b would: only at word edges */
			l = strlen(sc.v[k]);
			if (l <= best || strncmp(p, sc.v[k], l) != 0)
				continue;
			if (word_char(sc.v[k][0]) && p > msg &&
			    word_char(p[-1]))
				continue;
			if (word_char(sc.v[k][l - 1]) && word_char(p[l]))
				continue;
			best = l;
		}
		if (best == 0) {
			out[o++] = *p++;
			continue;
		}
		for (i = 0; i < 3 && o + 1 < outsz; i++)
			out[o++] = '*';
		p += best;
	}
	out[o] = '\0';
	for (k = 0; k < sc.n; k++) {
		dc_explicit_bzero(sc.v[k], strlen(sc.v[k]));
		free(sc.v[k]);
	}
}

int
dc_msg_has_password(const char *msg, const char *url)
{
	struct secrets sc;
	int found = 0, k;

	memset(&sc, 0, sizeof(sc));
	secrets_of(url, &sc);
	for (k = 0; k < sc.n; k++) {
		if (strlen(sc.v[k]) >= 4 && strstr(msg, sc.v[k]) != NULL)
			found = 1;
		dc_explicit_bzero(sc.v[k], strlen(sc.v[k]));
		free(sc.v[k]);
	}
	return found;
}

/*
 * One entry of a comma-separated origin list, whitespace trimmed as
 * DataChat's CORS_ORIGINS parsing does: *p advances past it.
 */
static int
next_origin(const char **p, const char **start, size_t *len)
{
	const char *s = *p, *e;

	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		for (e = s; *e != '\0' && *e != ','; e++)
			;
		*p = e;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*start = s;
		*len = (size_t)(e - s);
		return 1;
	}
	*p = s;
	return 0;
}

/* host[:port] split: the host part (brackets kept) and its length. */
static int
host_part(const char *host, size_t *len)
{
	const char *e, *port;

	if (host[0] == '[') {
		if ((e = strchr(host, ']')) == NULL)
			return DC_EINVAL;
		e++;
	} else
		e = host + strcspn(host, ":");
	port = e;
	if (*port == ':') {
		port++;
		if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
		    strlen(port) > 5)
			return DC_EINVAL;
	} else if (*port != '\0')
		return DC_EINVAL;
	*len = (size_t)(e - host);
	return *len > 0 ? DC_OK : DC_EINVAL;
}

int
dc_host_trusted(const char *host, const char *server_names)
{
	struct in_addr a4;
	struct in6_addr a6;
	const char *p = server_names, *s;
	char h[256];
	size_t len, n;

	if (host == NULL || host_part(host, &len) != DC_OK || len >= sizeof(h))
		return 0;
	memcpy(h, host, len);
	h[len] = '\0';
	if (strcasecmp(h, "localhost") == 0)
		return 1;
	if (h[0] == '[') {
		h[len - 1] = '\0';
		return inet_pton(AF_INET6, h + 1, &a6) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&a6);
	}
	/* inet_pton takes the dotted quad only, as a browser sends it */
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	while (server_names != NULL && next_origin(&p, &s, &n))
		if (n == len && strncasecmp(s, h, len) == 0)
			return 1;
	return 0;
}

int
dc_origin_same_trusted(const char *origin, const char *host,
    const char *server_names)
{
	const char *rest;

	if (origin == NULL || host == NULL)
		return 0;
	if (strncmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return 0;
	return strcasecmp(rest, host) == 0 &&
	    dc_host_trusted(host, server_names);
}

int
dc_origin_listed(const char *list, const char *origin)
{
	const char *p = list, *s;
	size_t len;

	if (list == NULL || origin == NULL)
		return 0;
	while (next_origin(&p, &s, &len))
		if ((len == 1 && *s == '*') ||
		    (strlen(origin) == len && memcmp(s, origin, len) == 0))
			return 1;
	return 0;
}

int
dc_origin_list_any(const char *list)
{
	const char *p = list, *s;
	size_t len;

	while (list != NULL && next_origin(&p, &s, &len))
		if (len == 1 && *s == '*')
			return 1;
	return 0;
}

int
dc_origin_list_check(const char *list, char *why, size_t whysz)
{
	const char *p = list, *s, *host;
	size_t len, i;

	while (next_origin(&p, &s, &len)) {
		if (len == 1 && *s == '*')
			continue;
		if (len > 7 && strncmp(s, "http://", 7) == 0)
			host = s + 7;
		else if (len > 8 && strncmp(s, "https://", 8) == 0)
			host = s + 8;
		else {
			snprintf(why, whysz, "\"%.*s\" is not an origin: "
			    "expected http://host[:port] or https://host[:port]",
			    (int)(len > 80 ? 80 : len), s);
			return DC_EINVAL;
		}
		/* a browser's Origin is scheme://host[:port], no path */
		for (i = (size_t)(host - s); i < len; i++)
			if (s[i] == '/' || s[i] == ' ' || s[i] == '\t') {
				snprintf(why, whysz, "\"%.*s\" is not an origin: "
				    "no path, no trailing slash, no spaces",
				    (int)(len > 80 ? 80 : len), s);
				return DC_EINVAL;
			}
	}
	return DC_OK;
}
