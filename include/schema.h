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
 * snapshot never outlives the connection details it was read with.  A
 * snapshot is also refreshed after DC_SCHEMA_TTL_MS, so new tables show
 * up, and concurrent requests for one target share one catalog round
 * trip.
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

#define DC_SCHEMA_TTL_MS	60000

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
 * "false" for tables only.  Run it as DC_JOB_CATALOG.
 */
#define DC_SCHEMA_SQL_NPARAMS	3

/* Build a snapshot from the catalog query's rows.  0 or DC_ENOMEM. */
int		 dc_schema_parse(const struct dc_rows *res,
		     struct dc_schema **out);
void		 dc_schema_free(struct dc_schema *s);

/* Table and column objects as GET /databases/{id}/schema shows them. */
struct json_object *dc_schema_table_json(const struct dc_schema_table *t);

/*
 * The snapshot of target e, from the cache or fetched.  cb gets the
 * snapshot (valid during the call only) or, on failure, s == NULL and
 * the pool's result.  When the cache answers, cb runs before this
 * returns and *wait is NULL; otherwise *wait allows cancelling.
 * Returns 0 or an error code (cb not called).
 */
typedef void (*dc_schema_cb)(const struct dc_schema *s,
		     const struct dc_qresult *err, void *arg);
int		 dc_schema_get(struct dc_worker *w, const struct dc_entry *e,
		     dc_schema_cb cb, void *arg, struct dc_schema_wait **wait);
void		 dc_schema_cancel(struct dc_schema_wait *wait);

/* Registry moved: drop snapshots whose entry changed or vanished. */
void		 dc_schema_sync(struct dc_worker *w);

/* Drop the snapshot of one target (id) or all (NULL). */
void		 dc_schema_invalidate(const uint8_t *id);

/* The worker leaves: cancel fetches, free everything (before the pool). */
void		 dc_schema_shutdown(void);

#endif /* DC_SCHEMA_H */
