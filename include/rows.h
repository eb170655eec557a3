/*
 * rows.h - a query's result as every engine hands it over: named columns
 * with a neutral value type, and rows of cells, each the engine's text
 * for one value or SQL NULL.
 *
 * Drivers (driver.h) build a dc_rows while the result arrives; everything
 * above the pool (result.h writes JSON, schema.h reads the catalog, the
 * routes) reads only this, never an engine's own result type.
 *
 * A cell is (v, len): v points at len bytes of text followed by a NUL
 * (so strtoll() and friends may read it), or v is NULL for SQL NULL.
 * Text may contain NUL bytes only in DC_VT_BYTES and DC_VT_OTHER cells.
 *
 * What the text of each type looks like, whatever the engine (drivers
 * convert where their engine writes something else):
 *
 *   DC_VT_INT          decimal digits with an optional '-': "-7", "42"
 *   DC_VT_FLOAT        binary floating point in the engine's shortest
 *                      round-trip form: "1.5", "1e+100"; "NaN", "Infinity",
 *                      "-Infinity" for the values JSON has no number for
 *   DC_VT_DECIMAL      exact numeric with its scale kept: "450.00"; "NaN",
 *                      "Infinity", "-Infinity"
 *   DC_VT_BOOL         "t" or "f" (also accepted: "true"/"false", "1"/"0")
 *   DC_VT_TEXT         character strings, as stored
 *   DC_VT_JSON         a JSON document (json, jsonb, MySQL JSON)
 *   DC_VT_DATE         "YYYY-MM-DD", the year with 4 digits or more;
 *                      PostgreSQL adds " BC" before year 1 and writes
 *                      "infinity", "-infinity"
 *   DC_VT_TIME         a time of day, "HH:MM:SS[.f]" (1 to 6 fraction
 *                      digits), with "+hh[:mm[:ss]]" for a time with time
 *                      zone
 *   DC_VT_TIMESTAMP    "YYYY-MM-DD HH:MM:SS[.f]", no zone (the same years,
 *                      " BC" and infinities as dates; up to 9 fraction
 *                      digits from ClickHouse's DateTime64(9))
 *   DC_VT_TIMESTAMPTZ  the same followed by the offset of the session's
 *                      time zone, "+hh[:mm[:ss]]" ("2024-01-02 03:04:05+00",
 *                      " BC" after the offset)
 *   DC_VT_INTERVAL     a duration in PostgreSQL's "postgres" IntervalStyle:
 *                      "[N year[s]] [N mon[s]] [N day[s]] [+-]H:MM:SS[.f]",
 *                      each part signed, any part left out ("1 day",
 *                      "-1 days +02:00:00", "00:00:00"); MySQL's TIME
 *                      ("-838:59:59.000000") is this form's time part
 *   DC_VT_UUID         "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case
 *   DC_VT_BYTES        binary strings as "\x" and two lower-case hex
 *                      digits a byte (PostgreSQL's bytea_output hex)
 *   DC_VT_OTHER        anything else (geometry, enums, arrays of types
 *                      the driver does not know): the engine's text
 *
 * A column's flags say how the engine's client library, which DataChat
 * uses, reads such a text (result.c writes what DataChat then writes):
 *
 *   DC_COL_NUMERIC_GROUPS  DC_VT_DECIMAL read from PostgreSQL's binary
 *                      numeric (asyncpg): an integral value loses its
 *                      trailing zeros in groups of four into the Decimal's
 *                      exponent (10000 is Decimal("1E+4"))
 *   DC_COL_FLOAT4      DC_VT_FLOAT of single precision, widened to a
 *                      double before it is printed (1.1 is
 *                      1.100000023841858)
 *   DC_COL_ARRAY       the cell is a PostgreSQL array of the column's type
 *                      in array_out's text ("{1,2}", "{{\"a b\",NULL}}",
 *                      "[0:1]={1,2}"), each element that type's text:
 *                      asyncpg reads it as a list (nested for more
 *                      dimensions) of the elements' values
 *   DC_COL_ARRAY_CH    with DC_COL_ARRAY: ClickHouse's array text instead
 *                      ("[1,NULL]", "['a\\'b']", "[[1],[2]]"), which
 *                      clickhouse-connect reads as a list too
 *   DC_COL_INVALID_NULL  a DC_VT_DATE or DC_VT_TIMESTAMP whose text is no
 *                      date Python can build (MySQL's 0000-00-00, a zero
 *                      month or day) is None to the connector
 *                      (mysql-connector): null, not the engine's text
 *
 * How a type is written as JSON is result.h's business, in one place.
 *
 * The row path is one place: every row a driver keeps goes through
 * dc_rows_add() or dc_rows_add_ref(), which count r->bytes and enforce
 * the byte budget (dc_rows_budget, from max_result_bytes): a row that
 * would take r->bytes past it is refused before it is copied, and the
 * driver cuts the result there or refuses the statement
 * (dc_job_over_budget, driver.h).
 */
#ifndef DC_ROWS_H
#define DC_ROWS_H

#include <stddef.h>

enum dc_vtype {
	DC_VT_OTHER = 0,
	DC_VT_INT,
	DC_VT_FLOAT,
	DC_VT_DECIMAL,
	DC_VT_BOOL,
	DC_VT_TEXT,
	DC_VT_JSON,
	DC_VT_DATE,
	DC_VT_TIME,
	DC_VT_TIMESTAMP,
	DC_VT_TIMESTAMPTZ,
	DC_VT_UUID,
	DC_VT_BYTES,
	DC_VT_INTERVAL,
	DC_VT_NTYPES
};

struct dc_col {
	const char	*name;		/* as the engine named it; may repeat */
	int		 type;		/* enum dc_vtype */
	unsigned	 flags;		/* DC_COL_* */
};

#define DC_COL_NUMERIC_GROUPS	0x1u
#define DC_COL_FLOAT4		0x2u
#define DC_COL_ARRAY		0x4u
#define DC_COL_INVALID_NULL	0x8u
#define DC_COL_ARRAY_CH		0x10u

struct dc_cell {
	const char	*v;		/* NUL-terminated text, NULL: SQL NULL */
	size_t		 len;		/* bytes before that NUL */
};

struct dc_rows_block;
struct dc_rows_hold;

/*
 * Read the public fields; build and free only with the functions below.
 * cells holds nrows * ncols cells, row after row.
 */
struct dc_rows {
	int		 ncols;
	struct dc_col	*cols;
	int		 nrows;
	struct dc_cell	*cells;
	size_t		 bytes;		/* text bytes of every cell added */
	size_t		 max_bytes;	/* budget for bytes, 0: none */

	/* private */
	int		 cap;		/* rows cells has room for */
	struct dc_rows_block *blocks;	/* copies of names and values */
	struct dc_rows_hold *holds;	/* what referenced cells point into */
};

/* Row row's ncols cells. */
static inline const struct dc_cell *
dc_rows_row(const struct dc_rows *r, int row)
{
	return &r->cells[(size_t)row * (size_t)r->ncols];
}

static inline const struct dc_cell *
dc_rows_cell(const struct dc_rows *r, int row, int col)
{
	return &r->cells[(size_t)row * (size_t)r->ncols + (size_t)col];
}

/* A cell's text, "" for SQL NULL (for callers that do not care). */
static inline const char *
dc_rows_text(const struct dc_rows *r, int row, int col)
{
	const char *v = dc_rows_cell(r, row, col)->v;

	return v != NULL ? v : "";
}

/* An empty result of ncols columns (names unset).  NULL: out of memory. */
struct dc_rows	*dc_rows_new(int ncols);
void		 dc_rows_free(struct dc_rows *r);

/* Name (copied) and type of column i.  0 or DC_ENOMEM. */
int		 dc_rows_set_col(struct dc_rows *r, int i, const char *name,
		     int type);

/* Flags (DC_COL_*) of column i, set after dc_rows_set_col. */
void		 dc_rows_set_flags(struct dc_rows *r, int i, unsigned flags);

/* Room for n more rows, when the driver knows how many come. */
int		 dc_rows_reserve(struct dc_rows *r, int n);

/*
 * The budget: rows added from now on may bring r->bytes up to max_bytes
 * and no further (0: no budget).
 */
void		 dc_rows_budget(struct dc_rows *r, size_t max_bytes);

/* The text bytes of one row of r->ncols cells, as the budget counts them. */
size_t		 dc_rows_row_bytes(const struct dc_rows *r,
		     const struct dc_cell *row);

/*
 * Append one row of ncols cells, copying their text.  0, DC_ENOMEM, or
 * DC_EFULL when the row does not fit the budget (nothing is copied).
 */
int		 dc_rows_add(struct dc_rows *r, const struct dc_cell *row);

/*
 * Append one row of ncols cells without copying: their text must live
 * until dc_rows_free (see dc_rows_hold).  0, DC_ENOMEM or DC_EFULL, as
 * dc_rows_add.
 */
int		 dc_rows_add_ref(struct dc_rows *r, const struct dc_cell *row);

/*
 * Keep obj until dc_rows_free, then release(obj): the engine's buffer
 * that referenced cells point into (a PGresult, say).  On DC_ENOMEM obj
 * is released at once.
 */
int		 dc_rows_hold(struct dc_rows *r, void *obj,
		     void (*release)(void *));

/* Copy len bytes (and a NUL) into r's memory; NULL when out of memory. */
char		*dc_rows_strdup(struct dc_rows *r, const char *s, size_t len);

#endif /* DC_ROWS_H */
