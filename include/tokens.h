/*
 * tokens.h - API tokens: the roles, the token format, the shared table
 * the workers check requests against, and the statements that keep the
 * tokens in the system database.
 *
 * A token is "dcat_" and 44 url-safe base64 characters (33 random bytes).
 * Only its SHA-256 is stored: in the datachatd_api_tokens table of the
 * system database, so that every instance sharing it agrees, and in one
 * anonymous MAP_SHARED table made by the master before fork.  The master
 * is the only writer of that table (a full replacement under one
 * seqlock, after a NOTIFY, a resync or a datachatctl command); workers
 * look a hash up without locks (tokens.c says why a search on hashes
 * is safe).
 */
#ifndef DC_TOKENS_H
#define DC_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

/* Roles, each including the ones before it. */
enum dc_role {
	DC_ROLE_NONE = 0,	/* a route open to anyone */
	DC_ROLE_READ,		/* registry, schema, tools list, status */
	DC_ROLE_QUERY,		/* read + chat, /ws/chat, tools, history */
	DC_ROLE_ADMIN,		/* query + registry writes, system routes */
	DC_ROLE_METRICS,	/* route table only: read, or open when
				   metrics_auth = off */
};

/* The one table of roles a token can have (name, role, what it allows). */
struct dc_role_def {
	const char	*name;
	int		 role;
	const char	*allows;
};
extern const struct dc_role_def dc_roles[];	/* ends with name NULL */

int		 dc_role_parse(const char *name);	/* role or DC_EINVAL */
const char	*dc_role_name(int role);

#define DC_TOKEN_PREFIX		"dcat_"
#define DC_TOKEN_RANDOM		33
#define DC_TOKEN_LEN		(5 + 44)
#define DC_TOKEN_NAME_MAX	64
#define DC_TOKEN_HASH_LEN	32
#define DC_TOKENS_MAX		1024

struct dc_token {
	uint8_t		 hash[DC_TOKEN_HASH_LEN];	/* SHA-256(token) */
	char		 name[DC_TOKEN_NAME_MAX];
	int32_t		 role;
	int32_t		 operator_;	/* datachatctl's own: no quota */
	int64_t		 expires_ms;	/* wall clock; 0 = never */
};

/* A new random token and its hash.  0 or DC_ERR. */
int		 dc_token_generate(char out[DC_TOKEN_LEN + 1],
		     uint8_t hash[DC_TOKEN_HASH_LEN]);
void		 dc_token_hash(const char *tok, size_t len,
		     uint8_t hash[DC_TOKEN_HASH_LEN]);
/* 1 when name is 1-63 of [A-Za-z0-9._@-], safe in any log line. */
int		 dc_token_name_valid(const char *name);

/* --- the shared table --- */

struct dc_tokens;	/* opaque: the mapping */

int		 dc_tokens_create(struct dc_tokens **t, int capacity);
void		 dc_tokens_destroy(struct dc_tokens *t);

/* Writer (master only): replace the whole table.  Extra rows are dropped
 * (returns how many were kept). */
int		 dc_tokens_publish(struct dc_tokens *t,
		     const struct dc_token *list, int n);
/* Mark the table loaded (tokens from the system database are in it). */
void		 dc_tokens_set_loaded(struct dc_tokens *t, int loaded);

/*
 * Reader: copy the token whose hash matches into out (a binary search
 * on the hashes, the match compared in constant time).  0 or DC_ENOENT.
 */
int		 dc_tokens_lookup(const struct dc_tokens *t,
		     const uint8_t hash[DC_TOKEN_HASH_LEN],
		     struct dc_token *out);
int		 dc_tokens_count(const struct dc_tokens *t);
int		 dc_tokens_loaded(const struct dc_tokens *t);

/* --- the system database (master, blocking, short statements) --- */

/* Every token row (not yet expired).  *list is malloc'ed. */
int		 dc_tokens_db_load(PGconn *c, struct dc_token **list, int *n,
		     char *err, size_t errsz);

/*
 * Store a token.  expires: NULL or "" for never, N followed by s, m, h,
 * d or w for a duration from now, or a timestamp PostgreSQL reads.
 * *expires_ms gets the expiry (0 never).  DC_EINVAL (err says why, e.g.
 * a name that exists or an expiry in the past) or DC_EUNAVAIL.
 */
int		 dc_tokens_db_add(PGconn *c, const char *name, int role,
		     const uint8_t hash[DC_TOKEN_HASH_LEN], const char *expires,
		     int64_t *expires_ms, char *err, size_t errsz);
/* Delete a token by name: 0, DC_ENOENT or DC_EUNAVAIL. */
int		 dc_tokens_db_revoke(PGconn *c, const char *name, char *err,
		     size_t errsz);
/* [{name, role, created, expires}], expired ones included (flagged). */
int		 dc_tokens_db_list(PGconn *c, struct json_object **out,
		     char *err, size_t errsz);

#endif /* DC_TOKENS_H */
