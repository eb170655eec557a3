/*
 * tokens.c - API tokens (tokens.h): the role table, token generation and
 * hashing, the shared table the workers read, and the statements on the
 * datachatd_api_tokens table of the system database.
 *
 * The shared table is small and changes rarely, so it is replaced whole
 * under one seqlock: the master makes seq odd, rewrites the entries (in
 * the order of their hashes) and the count, and makes seq even again; a
 * reader copies what it needs and tries again when seq was odd or moved.
 * A lookup is a binary search on the hashes, then one constant-time
 * comparison: a scan of every entry cost 2 us a request with 1024
 * tokens (tests/auth_bench).  How long the search takes depends on
 * where the presented token's SHA-256 falls among the stored ones,
 * which says nothing about any token: finding a token from its hash, or
 * from hashes near it, is as hard as inverting SHA-256.
 */
#include <sys/mman.h>

#include <assert.h>
#include <ctype.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#include "dc.h"
#include "jsonw.h"
#include "fernet.h"
#include "tokens.h"

#define DC_TOKENS_MAGIC		0x6463746f6b656e01ULL	/* "dctoken" v1 */

const struct dc_role_def dc_roles[] = {
	{ "read", DC_ROLE_READ,
	    "the registry, schemas, the tools list and status" },
	{ "query", DC_ROLE_QUERY,
	    "read, plus chat, /ws/chat, running tools and conversations" },
	{ "admin", DC_ROLE_ADMIN,
	    "query, plus registry writes, system/initialize and system/reset" },
	{ NULL, 0, NULL }
};

int
dc_role_parse(const char *name)
{
	const struct dc_role_def *d;

	for (d = dc_roles; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			return d->role;
	return DC_EINVAL;
}

const char *
dc_role_name(int role)
{
	const struct dc_role_def *d;

	for (d = dc_roles; d->name != NULL; d++)
		if (d->role == role)
			return d->name;
	return role == DC_ROLE_NONE ? "none" : "unknown";
}

void
dc_token_hash(const char *tok, size_t len, uint8_t hash[DC_TOKEN_HASH_LEN])
{
	gcry_md_hash_buffer(GCRY_MD_SHA256, hash, tok, len);
}

int
dc_token_generate(char out[DC_TOKEN_LEN + 1], uint8_t hash[DC_TOKEN_HASH_LEN])
{
	uint8_t raw[DC_TOKEN_RANDOM];
	char *b64;

	gcry_randomize(raw, sizeof(raw), GCRY_STRONG_RANDOM);
	b64 = dc_b64url_encode(raw, sizeof(raw));
	dc_explicit_bzero(raw, sizeof(raw));
	if (b64 == NULL || strlen(b64) != DC_TOKEN_LEN - 5) {
		free(b64);
		return DC_ERR;
	}
	memcpy(out, DC_TOKEN_PREFIX, 5);
	memcpy(out + 5, b64, DC_TOKEN_LEN - 5 + 1);
	dc_explicit_bzero(b64, strlen(b64));
	free(b64);
	dc_token_hash(out, DC_TOKEN_LEN, hash);
	return DC_OK;
}

int
dc_token_name_valid(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n >= DC_TOKEN_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-' && name[i] != '@')
			return 0;
	return 1;
}

/* --- the shared table --- */

struct dc_tokens {
	uint64_t		 magic;
	size_t			 map_size;
	int			 capacity;
	_Atomic uint32_t	 seq;
	_Atomic int		 count;
	_Atomic int		 loaded;
	struct dc_token		 e[];
};

int
dc_tokens_create(struct dc_tokens **tp, int capacity)
{
	struct dc_tokens *t;
	size_t size;

	*tp = NULL;
	if (capacity <= 0 || capacity > DC_TOKENS_MAX)
		return DC_EINVAL;
	size = sizeof(*t) + (size_t)capacity * sizeof(struct dc_token);
	t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (t == MAP_FAILED)
		return DC_ENOMEM;
	if (madvise(t, size, MADV_DONTDUMP) == -1) {
		munmap(t, size);
		return DC_ERR;
	}
	t->magic = DC_TOKENS_MAGIC;
	t->map_size = size;
	t->capacity = capacity;
	atomic_init(&t->seq, 0);
	atomic_init(&t->count, 0);
	atomic_init(&t->loaded, 0);
	*tp = t;
	return DC_OK;
}

void
dc_tokens_destroy(struct dc_tokens *t)
{
	if (t != NULL)
		munmap(t, t->map_size);
}

static int
by_hash(const void *a, const void *b)
{
	return memcmp(((const struct dc_token *)a)->hash,
	    ((const struct dc_token *)b)->hash, DC_TOKEN_HASH_LEN);
}

int
dc_tokens_publish(struct dc_tokens *t, const struct dc_token *list, int n)
{
	uint32_t s = atomic_load_explicit(&t->seq, memory_order_relaxed);

	/* one writer, never concurrent with itself: seq is even here */
	assert((s & 1) == 0);
	if (n > t->capacity)
		n = t->capacity;
	atomic_store_explicit(&t->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	if (n > 0) {
		memcpy(t->e, list, (size_t)n * sizeof(*list));
		qsort(t->e, (size_t)n, sizeof(*list), by_hash);
	}
	if (n < t->capacity)
		memset(&t->e[n], 0, (size_t)(t->capacity - n) * sizeof(*list));
	atomic_store_explicit(&t->count, n, memory_order_relaxed);
	atomic_store_explicit(&t->seq, s + 2, memory_order_release);
	return n;
}

void
dc_tokens_set_loaded(struct dc_tokens *t, int loaded)
{
	atomic_store_explicit(&t->loaded, loaded, memory_order_relaxed);
}

static int
hash_equal(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;
	int i;

	for (i = 0; i < DC_TOKEN_HASH_LEN; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

int
dc_tokens_lookup(const struct dc_tokens *t,
    const uint8_t hash[DC_TOKEN_HASH_LEN], struct dc_token *out)
{
	uint32_t s1, s2;
	int lo, hi, mid, n, hit, spins = 0;

	for (;;) {
		s1 = atomic_load_explicit(&t->seq, memory_order_acquire);
		if ((s1 & 1) == 0) {
			n = atomic_load_explicit(&t->count,
			    memory_order_relaxed);
			if (n > t->capacity)
				n = t->capacity;	/* torn: seq says so */
			/* the first entry whose hash is not below ours */
			lo = 0;
			hi = n;
			while (lo < hi) {
				mid = lo + (hi - lo) / 2;
				if (memcmp(t->e[mid].hash, hash,
				    DC_TOKEN_HASH_LEN) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			hit = lo < n && hash_equal(t->e[lo].hash, hash) ? lo :
			    -1;
			if (hit >= 0)
				memcpy(out, &t->e[hit], sizeof(*out));
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(&t->seq,
			    memory_order_relaxed);
			if (s1 == s2)
				return hit >= 0 ? DC_OK : DC_ENOENT;
		}
		if (++spins >= 128) {
			spins = 0;
			sched_yield();
		}
	}
}

int
dc_tokens_count(const struct dc_tokens *t)
{
	return atomic_load_explicit(&t->count, memory_order_relaxed);
}

int
dc_tokens_loaded(const struct dc_tokens *t)
{
	return atomic_load_explicit(&t->loaded, memory_order_relaxed);
}

/* --- the system database --- */

static void
set_err(char *err, size_t errsz, const char *what, PGconn *c)
{
	size_t n;

	snprintf(err, errsz, "%s: %s", what, c != NULL ? PQerrorMessage(c) :
	    "");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	/* PostgreSQL's bytea text output: \x then hex */
	if (s[0] != '\\' || s[1] != 'x' || strlen(s + 2) != 2 * n)
		return DC_EINVAL;
	for (i = 0, s += 2; i < n; i++, s += 2) {
		hi = isdigit((unsigned char)s[0]) ? s[0] - '0' :
		    tolower((unsigned char)s[0]) - 'a' + 10;
		lo = isdigit((unsigned char)s[1]) ? s[1] - '0' :
		    tolower((unsigned char)s[1]) - 'a' + 10;
		if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
			return DC_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return DC_OK;
}

int
dc_tokens_db_load(PGconn *c, struct dc_token **listp, int *np, char *err,
    size_t errsz)
{
	struct dc_token *list = NULL;
	PGresult *res;
	int i, n, k = 0, rc = DC_EUNAVAIL;

	*listp = NULL;
	*np = 0;
	res = PQexec(c, "SELECT name, token_sha256, role, "
	    "COALESCE((extract(epoch FROM expires_at) * 1000)::bigint, 0) "
	    "FROM datachatd_api_tokens "
	    "WHERE expires_at IS NULL OR expires_at > now() ORDER BY name");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		set_err(err, errsz, "reading the API tokens", c);
		goto out;
	}
	n = PQntuples(res);
	rc = DC_ENOMEM;
	if (n > 0 && (list = calloc((size_t)n, sizeof(*list))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		struct dc_token *t = &list[k];

		if (unhex(PQgetvalue(res, i, 1), t->hash, sizeof(t->hash)) !=
		    DC_OK || (t->role = dc_role_parse(PQgetvalue(res, i, 2))) <
		    0 || !dc_token_name_valid(PQgetvalue(res, i, 0)))
			continue;	/* not ours to guess: skip the row */
		dc_strlcpy(t->name, PQgetvalue(res, i, 0), sizeof(t->name));
		t->expires_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		k++;
	}
	*listp = list;
	*np = k;
	list = NULL;
	rc = DC_OK;
out:
	free(list);
	PQclear(res);
	return rc;
}

/* "30d" -> "30 days"; 0 when s is not a duration. */
static int
duration(const char *s, char *out, size_t outsz)
{
	static const struct { char c; const char *unit; } units[] = {
		{ 's', "seconds" }, { 'm', "minutes" }, { 'h', "hours" },
		{ 'd', "days" }, { 'w', "weeks" },
	};
	size_t n = strspn(s, "0123456789"), i;

	if (n == 0 || n > 9 || s[n] == '\0' || s[n + 1] != '\0')
		return 0;
	for (i = 0; i < DC_ARRAY_SIZE(units); i++)
		if (s[n] == units[i].c) {
			snprintf(out, outsz, "%.*s %s", (int)n, s,
			    units[i].unit);
			return 1;
		}
	return 0;
}

int
dc_tokens_db_add(PGconn *c, const char *name, int role,
    const uint8_t hash[DC_TOKEN_HASH_LEN], const char *expires,
    int64_t *expires_ms, char *err, size_t errsz)
{
	char hex[2 * DC_TOKEN_HASH_LEN + 1], interval[64];
	const char *params[5];
	const char *state;
	PGresult *res;
	int i, rc = DC_EUNAVAIL;

	for (i = 0; i < DC_TOKEN_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	params[0] = name;
	params[1] = hex;
	params[2] = dc_role_name(role);
	params[3] = NULL;
	params[4] = NULL;
	if (expires != NULL && expires[0] != '\0') {
		if (duration(expires, interval, sizeof(interval)))
			params[3] = interval;
		else
			params[4] = expires;
	}
	res = PQexecParams(c,
	    "WITH e AS (SELECT COALESCE(now() + $4::interval, "
	    "$5::timestamptz) AS x) "
	    "INSERT INTO datachatd_api_tokens (name, token_sha256, role, "
	    "created_at, expires_at) "
	    "SELECT $1, decode($2, 'hex'), $3, now(), x FROM e "
	    "WHERE x IS NULL OR x > now() "
	    "RETURNING COALESCE((extract(epoch FROM expires_at) * 1000)"
	    "::bigint, 0)", 5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != NULL && strcmp(state, "23505") == 0) {
			snprintf(err, errsz, "a token named %s exists already "
			    "(revoke it first)", name);
			rc = DC_EINVAL;
		} else if (state != NULL && strncmp(state, "22", 2) == 0) {
			set_err(err, errsz, "bad expiry (use N followed by s, "
			    "m, h, d or w, or a timestamp)", c);
			rc = DC_EINVAL;
		} else
			set_err(err, errsz, "storing the token", c);
		goto out;
	}
	if (PQntuples(res) != 1) {
		snprintf(err, errsz, "the expiry is in the past");
		rc = DC_EINVAL;
		goto out;
	}
	*expires_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	rc = DC_OK;
out:
	PQclear(res);
	return rc;
}

int
dc_tokens_db_revoke(PGconn *c, const char *name, char *err, size_t errsz)
{
	const char *params[1] = { name };
	PGresult *res;
	int rc = DC_EUNAVAIL;

	res = PQexecParams(c, "DELETE FROM datachatd_api_tokens WHERE name = "
	    "$1", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_err(err, errsz, "revoking the token", c);
		goto out;
	}
	rc = strcmp(PQcmdTuples(res), "0") == 0 ? DC_ENOENT : DC_OK;
out:
	PQclear(res);
	return rc;
}

int
dc_tokens_db_list(PGconn *c, struct json_object **out, char *err,
    size_t errsz)
{
	struct json_object *arr, *o;
	struct dc_jb b = { 0 };
	PGresult *res;
	int i, n, rc = DC_EUNAVAIL;

	*out = NULL;
	res = PQexec(c, "SELECT name, role, "
	    "to_char(created_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "to_char(expires_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "expires_at IS NOT NULL AND expires_at <= now() "
	    "FROM datachatd_api_tokens ORDER BY name");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		set_err(err, errsz, "listing the API tokens", c);
		goto out;
	}
	arr = json_object_new_array();
	n = PQntuples(res);
	for (i = 0; i < n && !b.failed; i++) {
		o = json_object_new_object();
		dc_jb_add(&b, o, "name",
		    json_object_new_string(PQgetvalue(res, i, 0)));
		dc_jb_add(&b, o, "role",
		    json_object_new_string(PQgetvalue(res, i, 1)));
		dc_jb_add(&b, o, "created",
		    json_object_new_string(PQgetvalue(res, i, 2)));
		dc_jb_add(&b, o, "expires", json_object_new_string(
		    PQgetisnull(res, i, 3) ? "never" : PQgetvalue(res, i, 3)));
		dc_jb_add(&b, o, "expired", json_object_new_boolean(
		    PQgetvalue(res, i, 4)[0] == 't'));
		dc_jb_push(&b, arr, o);
	}
	if ((*out = dc_jb_done(&b, arr)) == NULL) {
		snprintf(err, errsz, "out of memory");
		rc = DC_ENOMEM;
	} else
		rc = DC_OK;
out:
	PQclear(res);
	return rc;
}
