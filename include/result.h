/*
 * result.h - a query's rows (rows.h) as JSON, typed by their neutral
 * column type, whatever the engine.
 *
 * Every query route answers rows the same way, the way DataChat does:
 * each value is what its driver (asyncpg, mysql-connector) gives Python
 * written by pydantic v2 in JSON mode: integers and floats as numbers
 * (NaN and the infinities null), Decimal as its str() in a string,
 * dates, times and timestamps in ISO 8601 (timestamptz in UTC with "Z"),
 * intervals as ISO 8601 durations, bytes as UTF-8 text, json and jsonb
 * as strings, PostgreSQL arrays as lists of their elements, NULL as
 * null.  A value DataChat's Python cannot hold is
 * the engine's text (result.c says which).  Column names that repeat in
 * one result ("SELECT 1 AS a, 2 AS a") get a suffix ("a", "a_2") so no
 * column is lost in a JSON object.
 *
 * It also says how a query that produced no rows is answered over HTTP,
 * so every route maps the pool's failures to the same statuses.
 */
#ifndef DC_RESULT_H
#define DC_RESULT_H

#include <stddef.h>

#include <json-c/json.h>

struct dc_qresult;
struct dc_rows;
struct dc_jw;

/*
 * How values are written.  DC_ENC_PYDANTIC: as pydantic writes a
 * response_model (DataChat's REST answers; above).  DC_ENC_JSONABLE: as
 * FastAPI's jsonable_encoder leaves them for json.dumps (DataChat's
 * WebSocket complete event): a Decimal with no fraction digits as an
 * integer, any other as a float ("450.00" is 450.0), a datetime or
 * time in UTC with "+00:00" rather than "Z", a timedelta as its total
 * seconds (86400.0); the rest as pydantic writes them.  NaN and the
 * infinities are null either way (json.dumps would write NaN, which is
 * no JSON).
 */
enum dc_enc {
	DC_ENC_PYDANTIC,
	DC_ENC_JSONABLE
};

/* The result's column names, made unique. */
struct dc_result_cols {
	int		 n;
	char		**names;
};

int		 dc_result_cols(const struct dc_rows *res,
		     struct dc_result_cols *out);
void		 dc_result_cols_free(struct dc_result_cols *cols);

/* Rows to show: the rows capped at max_rows (max_rows <= 0: no cap). */
int		 dc_result_nrows(const struct dc_rows *res, int max_rows);

/*
 * One field as a JSON value in *out (NULL for SQL NULL, json-c's null):
 * DC_OK, or DC_ENOMEM with *out NULL.
 */
int		 dc_result_value(const struct dc_rows *res, int row, int col,
		     enum dc_enc enc, struct json_object **out);

/* ["a", "b"] */
struct json_object *dc_result_columns(const struct dc_rows *res);

/* {"a": [v1, v2, ...], "b": [...]} over the first nrows rows. */
struct json_object *dc_result_columnar(const struct dc_rows *res, int nrows,
		     enum dc_enc enc);

/* [{"a": v1, "b": w1}, ...] over the first nrows rows (pydantic's). */
struct json_object *dc_result_rows(const struct dc_rows *res, int nrows);

/* The same as text, for replies written with jsonw.h. */
void		 dc_result_write_value(struct dc_jw *w,
		     const struct dc_rows *res, int row, int col,
		     enum dc_enc enc);
void		 dc_result_write_columnar(struct dc_jw *w,
		     const struct dc_rows *res,
		     const struct dc_result_cols *cols, int nrows,
		     enum dc_enc enc);

/*
 * A failed query (r->status != DC_OK): the HTTP status and detail when
 * the failure is the gateway's or the target's (target unreachable 503,
 * connection lost 502, entry removed or changed meanwhile 404, target
 * refused by privileged_targets 403, out of memory 500),
 * or 0 when the database refused the statement itself (SQL error,
 * statement timeout), which routes report in their own answer with
 * r->error.
 */
int		 dc_result_failure(const struct dc_qresult *r, char *detail,
		     size_t detailsz);

/*
 * dc_pool_query() refused to start (DC_EFULL, DC_ENOMEM, DC_EINVAL: no
 * driver for the target's type): status, detail.
 */
int		 dc_result_submit_failure(int rc, char *detail, size_t detailsz);

#endif /* DC_RESULT_H */
