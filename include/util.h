/*
 * util.h - small pure helpers: UUIDs, URL masking, database type from a
 * URL scheme, ISO 8601 timestamps.  Unit-tested in tests/unit/test_util.c.
 */
#ifndef DC_UTIL_H
#define DC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define DC_UUID_STR_LEN	36

/* Parse a canonical 8-4-4-4-12 hex UUID.  0 or DC_EINVAL. */
int		 dc_uuid_parse(const char *s, uint8_t out[16]);
void		 dc_uuid_format(const uint8_t id[16], char out[DC_UUID_STR_LEN + 1]);
int		 dc_uuid_generate(uint8_t out[16]);	/* version 4 */
int		 dc_uuid_is_zero(const uint8_t id[16]);

/*
 * Copy url into out with the password replaced by "***"
 * (postgresql://u:***@host/db), and the value of every query parameter
 * whose name, percent-decoded, ends in "password".  A PostgreSQL URL is
 * then read by libpq both ways: if the masked form would still give a
 * password, only the scheme and "***" are shown.  Never fails: a URL it
 * cannot parse is reduced to its scheme followed by three stars.
 */
void		 dc_url_mask(const char *url, char *out, size_t outsz);

/*
 * Copy msg into out with url's passwords (as written and decoded, in the
 * userinfo or a password parameter) replaced by "***" wherever one
 * stands as a word of its own, for error text that may echo a URL.  A
 * password inside a longer word ("pw" in "pwd") is left alone: that is
 * no echo, and replacing it would garble the message.
 */
void		 dc_scrub_password(const char *msg, const char *url, char *out,
		     size_t outsz);
/*
 * 1 when a password of url (4 bytes or longer) appears anywhere in msg,
 * even inside a longer word, where dc_scrub_password() leaves it.
 */
int		 dc_msg_has_password(const char *msg, const char *url);

/* A hex digit's value, -1 for anything else. */
int		 dc_hexval(int c);
/*
 * Percent-decode [s, s + n) into out (outsz bytes, NUL-terminated): 0, or
 * -1 for a bad or truncated escape, an escaped NUL, or no room.
 */
int		 dc_pct_decode_strict(const char *s, size_t n, char *out,
		     size_t outsz);
/* 1 when [s, s + n) is word, ignoring ASCII case. */
int		 dc_word_is(const char *s, size_t n, const char *word);

/*
 * FNV-1a over [p, p + n), going on from h (DC_FNV1A_INIT to start): the
 * caches' keys (target URLs, statement shapes), not a defence.
 */
#define DC_FNV1A_INIT	0xcbf29ce484222325ULL
uint64_t	 dc_fnv1a(uint64_t h, const void *p, size_t n);

/*
 * The database type a URL's scheme implies: "postgresql", "mysql",
 * "clickhouse", or NULL for an unknown scheme.
 */
const char	*dc_url_type(const char *url);

/*
 * A libpq connection string for url: drops a "+driver" suffix from the
 * scheme (postgresql+asyncpg:// -> postgresql://).  Malloc'ed.
 */
char		*dc_url_libpq(const char *url);

/*
 * CORS origin lists ("http://a:3000, https://b"): whether origin is one
 * of them (exact match, as Starlette's CORSMiddleware compares; "*"
 * lists every origin), whether the list holds "*", and whether every
 * entry looks like an origin (0, or DC_EINVAL with why filled).
 */
int		 dc_origin_listed(const char *list, const char *origin);
int		 dc_origin_list_any(const char *list);
int		 dc_origin_list_check(const char *list, char *why, size_t whysz);

/*
 * A Host header a loopback listener accepts (DNS rebinding defence):
 * localhost, a loopback address (127.0.0.0/8, [::1]) or one of the
 * comma-separated server_names (case-insensitive), each with an optional
 * :port.  1 when accepted.
 */
int		 dc_host_trusted(const char *host, const char *server_names);

/*
 * Whether origin ("http://h:p") is the same origin as a request to host
 * ("h:p") that dc_host_trusted accepts: a page served from there.
 */
int		 dc_origin_same_trusted(const char *origin, const char *host,
		     const char *server_names);

/* Microseconds since the epoch as ISO 8601 with offset. */
void		 dc_iso8601(int64_t usec, char *out, size_t outsz);

#endif /* DC_UTIL_H */
