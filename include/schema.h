/*
 * schema.h - what a target database holds, and a per-worker cache of it.
 *
 * One catalog query per engine (its dialect's catalog_sql, driver.h)
 * answers every schema question the daemon asks a target: the tables
 * (schema, name, type, row count), optionally with their columns (type,
 * nullability, primary and foreign keys).  The tools (list_tables,
 * list_columns) run it with filters; GET /api/v1/databases/{id}/schema
 * and the chat path (the schema given to the LLM, catalog answers) use
 * the full snapshot through the cache.
 *
 * The cache is per worker (each worker is a process) and per target,
 * keyed by connection id and entry generation (plus the URL for the
 * environment entry, whose generation never moves).  When the registry
 * moves, the worker calls dc_schema_sync() right after dc_pool_sync(),
 * which drops the snapshots of entries that changed or vanished, so a
 * snapshot never outlives the connection details it was read with.
 *
 * Freshness.  Reading the catalog costs a count per small table; asking
 * whether it changed costs a millisecond: each dialect's version_sql
 * (driver.h) returns one value that every CREATE, ALTER, DROP, RENAME
 * (and, on PostgreSQL, GRANT) moves: PostgreSQL's sums the transaction
 * ids of the catalog rows (pg_class, pg_attribute, pg_constraint,
 * pg_namespace, pg_proc), MySQL's checksums information_schema's tables,
 * columns and foreign keys of the URL's database.  A snapshot is used as
 * it is for schema_check_interval milliseconds after its version was
 * last confirmed; after that the next request asks for the version first
 * and reads the catalog again only when it moved (or when the snapshot
 * is older than schema_max_age seconds, for its row counts).  So every
 * worker answers from a catalog at most schema_check_interval old, and
 * workers agree within that bound.  A caller that misses a table the
 * question names asks again at once (DC_SCHEMA_RECHECK, at most once per
 * DC_SCHEMA_RECHECK_MS per target), so a table created a moment ago is
 * found by the next question on any worker.  Concurrent requests for one
 * target share one round trip.
 */
#ifndef DC_SCHEMA_H
#define DC_SCHEMA_H

#include <stdint.h>

#include <json-c/json.h>

#include "shreg.h"

struct dc_worker;
struct dc_qresult;
struct dc_rows;
struct dc_schema_wait;

#define DC_SCHEMA_RECHECK_MS	1000
#define DC_SCHEMA_NAME_MAX	130	/* "schema.table", NUL included */

struct dc_schema_column {
	char		*name;
	char		*data_type;	/* as in DDL: "character varying(20)" */
	int		 nullable;
	int		 is_pk;
	int		 is_fk;
	char		*foreign_table;	/* "t", or "s.t" in another schema */
	char		*foreign_column;
};

struct dc_schema_table {
	char		*schema;
	char		*name;
	char		*table_type;	/* BASE TABLE, VIEW, MATERIALIZED VIEW,
					   FOREIGN TABLE */
	int64_t		 row_count;	/* -1: unknown */
	int		 ncols;
	struct dc_schema_column *cols;
};

struct dc_schema {
	int64_t		 fetched_at;	/* microseconds since the epoch */
	int		 ntables;
	struct dc_schema_table *tables;	/* sorted by schema, then name */
};

/*
 * The catalog query's parameters (driver.h, catalog_sql): schema or NULL
 * (all but system schemas), table name or NULL, "true" to list columns,
 * "false" for tables only.  The system schemas (information_schema,
 * pg_*, mysql, ...) are left out unless a table is named.  Run it as
 * DC_JOB_CATALOG.
 */
#define DC_SCHEMA_SQL_NPARAMS	3

/* Build a snapshot from the catalog query's rows.  0 or DC_ENOMEM. */
int		 dc_schema_parse(const struct dc_rows *res,
		     struct dc_schema **out);
void		 dc_schema_free(struct dc_schema *s);

/* Table and column objects as GET /databases/{id}/schema shows them. */
struct json_object *dc_schema_table_json(const struct dc_schema_table *t);

/*
 * The snapshot of target e, from the cache or fetched (checked first when
 * it is due, see Freshness).  cb gets the snapshot (valid during the call
 * only) or, on failure, s == NULL and the pool's result.  When the cache
 * answers, cb runs before this returns and *wait is NULL; otherwise
 * *wait allows cancelling.  flags: DC_SCHEMA_RECHECK when the caller
 * misses a table the snapshot it got lacks.  Returns 0 or an error code
 * (cb not called).
 */
#define DC_SCHEMA_RECHECK	1
typedef void (*dc_schema_cb)(const struct dc_schema *s,
		     const struct dc_qresult *err, void *arg);
int		 dc_schema_get(struct dc_worker *w, const struct dc_entry *e,
		     int flags, dc_schema_cb cb, void *arg,
		     struct dc_schema_wait **wait);

/*
 * The tables named table (in schema, or in any schema when it is NULL),
 * system schemas included, without columns: what a question names that
 * no snapshot holds (information_schema.tables, pg_catalog.pg_class).
 * cb as for dc_schema_get; s may hold no table.  Answers are remembered
 * until the catalog's version moves, and at most four new names at once
 * (then one every 250 ms) are asked of a target, so typos cannot hammer
 * it: beyond that a name is reported missing.
 */
int		 dc_schema_lookup(struct dc_worker *w, const struct dc_entry *e,
		     const char *schema, const char *table, dc_schema_cb cb,
		     void *arg, struct dc_schema_wait **wait);

/* Stop waiting (a snapshot or a lookup); cb is not called. */
void		 dc_schema_cancel(struct dc_schema_wait *wait);

/* Registry moved: drop snapshots whose entry changed or vanished. */
void		 dc_schema_sync(struct dc_worker *w);

/* Drop the snapshot of one target (id) or all (NULL). */
void		 dc_schema_invalidate(const uint8_t *id);

/* The worker leaves: cancel fetches, free everything (before the pool). */
void		 dc_schema_shutdown(void);

#endif /* DC_SCHEMA_H */
