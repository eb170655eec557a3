/*
 * schema.h - what a target database holds: a snapshot of its catalog.
 *
 * One catalog query per engine (its dialect's catalog_sql, driver.h)
 * answers every schema question the daemon asks a target: the tables
 * (schema, name, type, row count), optionally with their columns (type,
 * nullability, primary and foreign keys).  The tools (list_tables,
 * list_columns) run it with filters; GET /api/v1/databases/{id}/schema
 * and the chat path (the schema given to the LLM, catalog answers) use
 * the full snapshot, which each worker keeps per target beside the
 * target's function policy, fresh by the same rule (catalog.h).
 */
#ifndef DC_SCHEMA_H
#define DC_SCHEMA_H

#include <stdint.h>

#include <json-c/json.h>

#include "shreg.h"

struct dc_rows;

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

#endif /* DC_SCHEMA_H */
