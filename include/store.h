/*
 * store.h - the registry's home in the system database: DataChat's
 * database_connections table, the trigger that NOTIFYs datachatd of every
 * change made by anyone, and the statements that read and write it; and
 * the other table datachatd keeps there, conversation memory.
 *
 * The master uses the blocking functions on its own connection (small
 * table, local statements with a statement_timeout); workers send the
 * write statements asynchronously through their own connection, using
 * the SQL texts declared here so both sides agree on one table shape.
 */
#ifndef DC_STORE_H
#define DC_STORE_H

#include <stdint.h>

#include <libpq-fe.h>

#include "fernet.h"
#include "shreg.h"

#define DC_NOTIFY_CHANNEL	"datachatd_registry"
/* NOTIFY payload: the API tokens changed */
#define DC_NOTIFY_TOKENS	"tokens"
#define DC_SQLSTATE_QUOTA	"DC507"		/* a token's registry quota */

/*
 * Create the table, index, trigger (idempotent; adopts DataChat's table),
 * and datachatd's own tables: API tokens and connection owners.
 */
int		 dc_store_ensure_schema(PGconn *c, char *err, size_t errsz);

struct dc_pgurl_policy;

/*
 * Full resync: read every active row, decrypt, write it into reg (mark,
 * put, sweep) or onto its refused rows with the reason; the caller
 * publishes with dc_shreg_commit().  pol (may be NULL) is the target URL
 * policy PostgreSQL rows must pass.  *bad counts rows that did not
 * decrypt.  Returns 0 or DC_EUNAVAIL with err filled.
 */
int		 dc_store_load_all(PGconn *c, const struct dc_fernet_ring *ring,
		     const struct dc_pgurl_policy *pol, struct dc_shreg *reg,
		     int *bad, char *err, size_t errsz);

/* Re-read one row (removed from reg when gone or inactive); no commit. */
int		 dc_store_load_one(PGconn *c, const struct dc_fernet_ring *ring,
		     const struct dc_pgurl_policy *pol, struct dc_shreg *reg,
		     const uint8_t id[16], char *err, size_t errsz);

/*
 * Delete the conversations (datachatd_conversations, see convo.h) whose
 * last turn is older than ttl seconds.  0 or DC_ERR with err filled.
 */
int		 dc_store_expire_conversations(PGconn *c, int ttl, char *err,
		     size_t errsz);

/* Column list every reader selects, in this order. */
#define DC_STORE_COLUMNS \
	"connection_id::text, name, database_url_encrypted, database_type, " \
	"is_active, is_default, array_to_json(tags)::text, description, " \
	"(extract(epoch from created_at) * 1000000)::bigint, " \
	"(extract(epoch from last_profiled) * 1000000)::bigint, " \
	"datapoint_count"

/* How many columns DC_STORE_COLUMNS names. */
#define DC_STORE_NCOLS	11

/*
 * Turn one row (DC_STORE_COLUMNS) into an entry, whole: DC_OK,
 * DC_ETOKEN (does not decrypt) or DC_EINVAL, with why filled (no secret).
 * dc_store_row_to_entry() reads a libpq result (the master's);
 * dc_store_cells_to_entry() reads DC_STORE_NCOLS texts, NULL for SQL NULL
 * (a worker's, from a dc_rows).
 */
int		 dc_store_row_to_entry(PGresult *res, int row,
		     const struct dc_fernet_ring *ring,
		     const struct dc_pgurl_policy *pol, struct dc_entry *e,
		     char *why, size_t whysz);
int		 dc_store_cells_to_entry(const char *const *v,
		     const struct dc_fernet_ring *ring,
		     const struct dc_pgurl_policy *pol, struct dc_entry *e,
		     char *why, size_t whysz);

#endif /* DC_STORE_H */
