/*
 * test_result.c - unit tests for src/pool/result.c and the PostgreSQL
 * driver's rows: values typed by column OID through their neutral type
 * (integers, exact numerics, NaN and infinities as strings, booleans,
 * nulls, parsed json/jsonb), repeated column names made unique, the
 * columnar and row shapes (also as written by jsonw.h), rows built by
 * copying as well as by reference, and the HTTP status of failed queries.
 * The PGresults are built in memory with libpq's PQmakeEmptyPGresult and
 * turned into rows by the driver (dc_pg_rows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "drv_pg.h"
#include "jsonw.h"
#include "pool.h"
#include "result.h"
#include "rows.h"
#include "t.h"

struct col {
	const char	*name;
	Oid		 type;
};

/*
 * One row of text values (NULL for SQL NULL) per entry of rows, as the
 * PostgreSQL driver hands a PGresult over.
 */
static struct dc_rows *
make_result(const struct col *cols, int ncols, const char *const *rows,
    int nrows)
{
	PGresAttDesc attrs[16];
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	struct dc_rows *out;
	int i, r;

	memset(attrs, 0, sizeof(attrs));
	for (i = 0; i < ncols; i++) {
		attrs[i].name = (char *)cols[i].name;
		attrs[i].typid = cols[i].type;
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	if (res == NULL || !PQsetResultAttrs(res, ncols, attrs))
		return NULL;
	for (r = 0; r < nrows; r++)
		for (i = 0; i < ncols; i++) {
			const char *v = rows[r * ncols + i];

			if (!PQsetvalue(res, r, i, (char *)v,
			    v != NULL ? (int)strlen(v) : -1))
				return NULL;
		}
	return dc_pg_rows(res, &out) == DC_OK ? out : NULL;
}

static const char *
js(struct json_object *o)
{
	return o != NULL ? json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN) : "null";
}

static void
test_values(void)
{
	static const struct col cols[] = {
		{ "i2", 21 }, { "i4", 23 }, { "i8", 20 }, { "o", 26 },
		{ "f4", 700 }, { "f8", 701 }, { "n", 1700 }, { "b", 16 },
		{ "j", 114 }, { "jb", 3802 }, { "t", 25 }, { "d", 1082 },
	};
	static const char *const rows[] = {
		"-7", "2147483647", "9223372036854775807", "4294967295",
		"1.5", "1e+100", "12345678901234567890.123456789", "t",
		"{\"a\": [1, null]}", "[true]", "hello \"x\"", "2024-02-29",
		"0", "0", "-1", "0", "NaN", "-Infinity", "NaN", "f",
		"not json", "null", "", "1999-01-01",
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		NULL, NULL,
	};
	struct dc_rows *res = make_result(cols, 12, rows, 3);
	struct json_object *o;

	CHECK(res != NULL);
	if (res == NULL)
		return;
	o = dc_result_columnar(res, 3, DC_ENC_PYDANTIC);
	CHECK_STR(js(o), "{\"i2\":[-7,0,null],\"i4\":[2147483647,0,null],"
	    "\"i8\":[9223372036854775807,-1,null],\"o\":[4294967295,0,null],"
	    "\"f4\":[1.5,null,null],\"f8\":[1e+100,null,null],"
	    "\"n\":[\"12345678901234567890.123456789\",\"NaN\",null],"
	    "\"b\":[true,false,null],"
	    "\"j\":[\"{\\\"a\\\": [1, null]}\",\"not json\",null],"
	    "\"jb\":[\"[true]\",\"null\",null],"
	    "\"t\":[\"hello \\\"x\\\"\",\"\",null],"
	    "\"d\":[\"2024-02-29\",\"1999-01-01\",null]}");
	/* the writer of the query path says the same, byte for byte */
	{
		struct dc_result_cols names;
		struct dc_jw w;

		CHECK(dc_result_cols(res, &names) == DC_OK);
		dc_jw_init(&w);
		dc_result_write_columnar(&w, res, &names, 3,
		    DC_ENC_PYDANTIC);
		CHECK(!w.err);
		CHECK_STR(w.buf, js(o));
		dc_jw_free(&w);
		dc_jw_init(&w);
		dc_result_write_columnar(&w, res, &names, 1,
		    DC_ENC_PYDANTIC);
		CHECK(!w.err);
		CHECK_STR(w.buf, "{\"i2\":[-7],\"i4\":[2147483647],\"i8\":"
		    "[9223372036854775807],\"o\":[4294967295],\"f4\":[1.5],"
		    "\"f8\":[1e+100],"
		    "\"n\":[\"12345678901234567890.123456789\"],\"b\":[true],"
		    "\"j\":[\"{\\\"a\\\": [1, null]}\"],\"jb\":[\"[true]\"],"
		    "\"t\":[\"hello \\\"x\\\"\"],\"d\":[\"2024-02-29\"]}");
		dc_jw_free(&w);
		dc_result_cols_free(&names);
	}
	json_object_put(o);
	/* fewer rows than the result holds: the row cap */
	o = dc_result_rows(res, 1);
	CHECK(json_object_array_length(o) == 1);
	CHECK_STR(js(json_object_object_get(json_object_array_get_idx(o, 0),
	    "n")), "\"12345678901234567890.123456789\"");
	json_object_put(o);
	CHECK(dc_result_nrows(res, 2) == 2);
	CHECK(dc_result_nrows(res, 0) == 3);
	CHECK(dc_result_nrows(res, 10) == 3);
	dc_rows_free(res);
}

static void
test_bad_numbers_stay_strings(void)
{
	static const struct col cols[] = { { "x", 1700 } };
	static const char *const rows[] = { "+1", ".5", "1.", "01", "1e", "--1",
	    "Infinity", "0.0" };
	struct dc_rows *res = make_result(cols, 1, rows, 8);
	struct json_object *o;

	CHECK(res != NULL);
	if (res == NULL)
		return;
	o = dc_result_columnar(res, 8, DC_ENC_PYDANTIC);
	CHECK_STR(js(o), "{\"x\":[\"+1\",\".5\",\"1.\",\"1\",\"1e\",\"--1\","
	    "\"Infinity\",\"0.0\"]}");
	json_object_put(o);
	dc_rows_free(res);
}

static void
test_column_names(void)
{
	static const struct col cols[] = {
		{ "a", 23 }, { "a", 23 }, { "a_2", 23 }, { "a", 23 }, { "", 23 },
	};
	static const char *const rows[] = { "1", "2", "3", "4", "5" };
	struct dc_rows *res = make_result(cols, 5, rows, 1);
	struct json_object *o;

	CHECK(res != NULL);
	if (res == NULL)
		return;
	o = dc_result_columns(res);
	CHECK_STR(js(o), "[\"a\",\"a_2\",\"a_2_2\",\"a_3\",\"?column?\"]");
	json_object_put(o);
	o = dc_result_rows(res, 1);
	CHECK_STR(js(o), "[{\"a\":1,\"a_2\":2,\"a_2_2\":3,\"a_3\":4,"
	    "\"?column?\":5}]");
	json_object_put(o);
	dc_rows_free(res);

	res = make_result(cols, 0, NULL, 0);
	o = dc_result_columnar(res, 0, DC_ENC_PYDANTIC);
	CHECK_STR(js(o), "{}");
	json_object_put(o);
	dc_rows_free(res);
}

static void
test_failures(void)
{
	struct dc_qresult r;
	char d[256];

	memset(&r, 0, sizeof(r));
	r.status = DC_ERR;
	r.error = "relation \"x\" does not exist";
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 0);
	r.status = DC_ETIMEOUT;
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 0);
	r.status = DC_EUNAVAIL;
	r.error = "could not connect to the database: refused";
	r.sqlstate = "08001";
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 503);
	CHECK(strstr(d, "unavailable") != NULL && strstr(d, "refused") != NULL);
	r.sqlstate = "08006";
	r.lost = 1;
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 502);
	CHECK(strstr(d, "lost") != NULL);
	r.status = DC_ENOENT;
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 404);
	CHECK(dc_result_submit_failure(DC_EFULL, d, sizeof(d)) == 503);
	CHECK(dc_result_submit_failure(DC_ENOMEM, d, sizeof(d)) == 500);
	CHECK(dc_result_submit_failure(DC_EINVAL, d, sizeof(d)) == 400);
	CHECK(strstr(d, "postgresql") != NULL);
}

/* Rows a driver copies (MySQL, the second row of PostgreSQL's single-row
   mode) say the same as rows by reference; every neutral type is written. */
static void
test_rows_neutral(void)
{
	static const struct {
		const char	*name;
		int		 type;
		const char	*v;
	} cols[] = {
		{ "i", DC_VT_INT, "-42" }, { "f", DC_VT_FLOAT, "2.5" },
		{ "d", DC_VT_DECIMAL, "450.00" }, { "b1", DC_VT_BOOL, "true" },
		{ "b0", DC_VT_BOOL, "0" }, { "t", DC_VT_TEXT, "x\ty" },
		{ "j", DC_VT_JSON, "{\"k\":1}" }, { "dt", DC_VT_DATE, "2024-02-29" },
		{ "tm", DC_VT_TIME, "12:00:01" },
		{ "ts", DC_VT_TIMESTAMP, "2024-02-29 12:00:01.5" },
		{ "tz", DC_VT_TIMESTAMPTZ, "2024-02-29 12:00:01+00" },
		{ "u", DC_VT_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
		{ "by", DC_VT_BYTES, "\\x0102" }, { "o", DC_VT_OTHER, "{1,2}" },
		{ "n", DC_VT_INT, NULL },
	};
	enum { N = sizeof(cols) / sizeof(cols[0]) };
	struct dc_cell row[N];
	struct dc_rows *r = dc_rows_new(N);
	struct json_object *o;
	char buf[8];
	int i;

	CHECK(r != NULL);
	if (r == NULL)
		return;
	for (i = 0; i < N; i++) {
		CHECK(dc_rows_set_col(r, i, cols[i].name, cols[i].type) ==
		    DC_OK);
		row[i].v = cols[i].v;
		row[i].len = cols[i].v != NULL ? strlen(cols[i].v) : 0;
	}
	CHECK(dc_rows_add_ref(r, row) == DC_OK);
	/* a copy outlives the buffer it came from */
	snprintf(buf, sizeof(buf), "%d", 7);
	row[0].v = buf;
	row[0].len = strlen(buf);
	CHECK(dc_rows_add(r, row) == DC_OK);
	buf[0] = '9';
	CHECK(r->nrows == 2);
	CHECK_STR(dc_rows_cell(r, 1, 0)->v, "7");
	CHECK(dc_rows_cell(r, 1, N - 1)->v == NULL);
	o = dc_result_rows(r, 2);
	CHECK_STR(js(json_object_array_get_idx(o, 0)), "{\"i\":-42,\"f\":2.5,"
	    "\"d\":\"450.00\",\"b1\":true,\"b0\":false,\"t\":\"x\\ty\","
	    "\"j\":\"{\\\"k\\\":1}\",\"dt\":\"2024-02-29\","
	    "\"tm\":\"12:00:01\",\"ts\":\"2024-02-29T12:00:01.500000\","
	    "\"tz\":\"2024-02-29T12:00:01Z\","
	    "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\","
	    "\"by\":\"\\u0001\\u0002\",\"o\":\"{1,2}\",\"n\":null}");
	CHECK_STR(js(json_object_object_get(json_object_array_get_idx(o, 1),
	    "i")), "7");
	json_object_put(o);
	CHECK(r->bytes > 0);
	dc_rows_free(r);

	/* the PostgreSQL type map */
	CHECK(dc_pg_vtype(1082) == DC_VT_DATE);
	CHECK(dc_pg_vtype(1184) == DC_VT_TIMESTAMPTZ);
	CHECK(dc_pg_vtype(2950) == DC_VT_UUID);
	CHECK(dc_pg_vtype(1700) == DC_VT_DECIMAL);
	CHECK(dc_pg_vtype(17) == DC_VT_BYTES);
	CHECK(dc_pg_vtype(1186) == DC_VT_INTERVAL);
	CHECK(dc_pg_vtype(1007) == DC_VT_INT);	/* int4[] (DC_COL_ARRAY) */
	CHECK(dc_pg_vtype(1034) == DC_VT_OTHER);	/* aclitem[] */
}

/*
 * One PostgreSQL value of type oid, text v, as the query path writes it;
 * the json-c path must agree.  The expected JSON is what DataChat
 * answers: asyncpg's Python value through pydantic 2.12 (to_python in
 * JSON mode) and json.dumps, as FastAPI 0.128 writes a response_model.
 */
static void
check_pg(int line, Oid oid, const char *v, enum dc_enc enc, const char *want)
{
	struct col c = { "x", oid };
	const char *rows[1] = { v };
	struct dc_rows *res = make_result(&c, 1, rows, 1);
	struct json_object *o;
	struct dc_jw w;

	CHECK(res != NULL);
	if (res == NULL)
		return;
	dc_jw_init(&w);
	dc_result_write_value(&w, res, 0, 0, enc);
	CHECK(dc_result_value(res, 0, 0, enc, &o) == DC_OK);
	t_checks++;
	if (w.err || strcmp(w.buf, want) != 0 || strcmp(js(o), want) != 0) {
		t_failures++;
		fprintf(stderr, "%s:%d: %s: %s / %s != %s\n", __FILE__, line, v,
		    w.err ? "(error)" : w.buf, js(o), want);
	}
	json_object_put(o);
	dc_jw_free(&w);
	dc_rows_free(res);
}

#define PG(oid, v, want)	check_pg(__LINE__, (oid), (v), DC_ENC_PYDANTIC, \
				    (want))
#define WS(oid, v, want)	check_pg(__LINE__, (oid), (v), DC_ENC_JSONABLE, \
				    (want))

static void
test_datachat_values(void)
{
	/* numeric: Decimal's str(); asyncpg's integral values lose groups */
	PG(1700, "450.00", "\"450.00\"");
	PG(1700, "-450.00", "\"-450.00\"");
	PG(1700, "0", "\"0\"");
	PG(1700, "0.00", "\"0.00\"");
	PG(1700, "-0.5", "\"-0.5\"");
	PG(1700, "0.000001", "\"0.000001\"");
	PG(1700, "0.0000001", "\"1E-7\"");
	PG(1700, "0.0000000", "\"0E-7\"");
	PG(1700, "0.00000010", "\"1.0E-7\"");
	PG(1700, "100", "\"100\"");
	PG(1700, "10000", "\"1E+4\"");
	PG(1700, "-20000", "\"-2E+4\"");
	PG(1700, "1230000", "\"1.23E+6\"");
	PG(1700, "100000000", "\"1E+8\"");
	PG(1700, "10000.00", "\"10000.00\"");
	PG(1700, "12345678901234567890.123456789",
	    "\"12345678901234567890.123456789\"");
	PG(1700, "NaN", "\"NaN\"");
	PG(1700, "Infinity", "\"Infinity\"");
	PG(1700, "-Infinity", "\"-Infinity\"");
	/* float8: repr(); NaN and the infinities null */
	PG(701, "1.5", "1.5");
	PG(701, "450", "450.0");
	PG(701, "-0", "-0.0");
	PG(701, "0", "0.0");
	PG(701, "1e+100", "1e+100");
	PG(701, "1e+16", "1e+16");
	PG(701, "1e+15", "1000000000000000.0");
	PG(701, "0.0001", "0.0001");
	PG(701, "1e-05", "1e-05");
	PG(701, "5e-324", "5e-324");
	PG(701, "1.7976931348623157e+308", "1.7976931348623157e+308");
	PG(701, "123456789.125", "123456789.125");
	PG(701, "NaN", "null");
	PG(701, "Infinity", "null");
	PG(701, "-Infinity", "null");
	/* float4: widened to a double first */
	PG(700, "1.1", "1.100000023841858");
	PG(700, "0.5", "0.5");
	PG(700, "NaN", "null");
	/* timestamptz: in UTC, "Z"; microseconds only when not 0 */
	PG(1184, "2026-11-29 20:47:39.19446+00", "\"2026-11-29T20:47:39.194460Z\"");
	PG(1184, "2026-11-29 20:47:39+00", "\"2026-11-29T20:47:39Z\"");
	PG(1184, "2026-11-29 20:47:39.000001+00", "\"2026-11-29T20:47:39.000001Z\"");
	PG(1184, "2026-11-30 02:17:39+05:30", "\"2026-11-29T20:47:39Z\"");
	PG(1184, "2026-11-29 17:47:39-03", "\"2026-11-29T20:47:39Z\"");
	PG(1184, "2026-12-31 22:00:00-03", "\"2027-01-01T01:00:00Z\"");
	PG(1184, "2024-03-01 01:00:00+02", "\"2024-02-29T23:00:00Z\"");
	PG(1184, "1900-01-01 00:00:00+00:53:28", "\"1899-12-31T23:06:32Z\"");
	PG(1184, "0001-01-01 01:00:00+01", "\"0001-01-01T00:00:00Z\"");
	PG(1184, "infinity", "\"9999-12-31T23:59:59.999999\"");
	PG(1184, "-infinity", "\"0001-01-01T00:00:00\"");
	/* what Python cannot hold stays PostgreSQL's text (DataChat fails) */
	PG(1184, "0001-01-01 00:30:00+01", "\"0001-01-01 00:30:00+01\"");
	PG(1184, "0044-03-15 12:00:00+00 BC", "\"0044-03-15 12:00:00+00 BC\"");
	PG(1184, "10000-01-01 00:00:00+00", "\"10000-01-01 00:00:00+00\"");
	PG(1184, "9999-12-31 23:00:00-03", "\"9999-12-31 23:00:00-03\"");
	/* timestamp: no zone, no "Z" */
	PG(1114, "2026-11-29 20:47:39.19446", "\"2026-11-29T20:47:39.194460\"");
	PG(1114, "2026-11-29 20:47:39", "\"2026-11-29T20:47:39\"");
	PG(1114, "infinity", "\"9999-12-31T23:59:59.999999\"");
	PG(1114, "-infinity", "\"0001-01-01T00:00:00\"");
	PG(1114, "2026-02-30 00:00:00", "\"2026-02-30 00:00:00\"");
	/* date */
	PG(1082, "2026-11-29", "\"2026-11-29\"");
	PG(1082, "0001-01-01", "\"0001-01-01\"");
	PG(1082, "infinity", "\"9999-12-31\"");
	PG(1082, "-infinity", "\"0001-01-01\"");
	PG(1082, "0001-12-31 BC", "\"0001-12-31 BC\"");
	PG(1082, "12345-01-01", "\"12345-01-01\"");
	/* time, timetz: the offset in whole minutes, "Z" for 0 */
	PG(1083, "20:47:39", "\"20:47:39\"");
	PG(1083, "20:47:39.000005", "\"20:47:39.000005\"");
	PG(1083, "20:47:39.5", "\"20:47:39.500000\"");
	PG(1083, "24:00:00", "\"24:00:00\"");
	PG(1266, "12:00:00+05:30", "\"12:00:00+05:30\"");
	PG(1266, "12:00:00-03", "\"12:00:00-03:00\"");
	PG(1266, "12:00:00+00", "\"12:00:00Z\"");
	PG(1266, "12:00:00-00:30", "\"12:00:00-00:30\"");
	PG(1266, "12:00:00.25+05:30:15", "\"12:00:00.250000+05:30\"");
	/* interval: timedelta (month 30 days, year 365) in ISO 8601 */
	PG(1186, "1 day", "\"P1D\"");
	PG(1186, "00:00:00", "\"PT0S\"");
	PG(1186, "-1 days +02:00:00", "\"-PT22H\"");
	PG(1186, "-00:00:01", "\"-PT1S\"");
	PG(1186, "1 year 2 mons 3 days 04:05:06.789",
	    "\"P1Y63DT4H5M6.789S\"");
	PG(1186, "838:59:59", "\"P34DT22H59M59S\"");
	PG(1186, "-838:59:59", "\"-P34DT22H59M59S\"");
	PG(1186, "00:00:00.5", "\"PT0.5S\"");
	PG(1186, "2 years", "\"P2Y\"");
	PG(1186, "-1 years -1 mons -5 days +00:00:03",
	    "\"-P1Y34DT23H59M57S\"");
	PG(1186, "@ 1 day", "\"@ 1 day\"");	/* not the postgres style */
	/* bytea: its bytes as UTF-8; not UTF-8 stays PostgreSQL's text */
	PG(17, "\\x0102", "\"\\u0001\\u0002\"");
	PG(17, "\\x636166c3a9", "\"caf\xc3\xa9\"");
	PG(17, "\\x", "\"\"");
	PG(17, "\\xff", "\"\\\\xff\"");
	/* json and jsonb: asyncpg's str, not parsed */
	PG(114, "{\"a\": 1}", "\"{\\\"a\\\": 1}\"");
	PG(3802, "[1, 2]", "\"[1, 2]\"");
	/* uuid */
	PG(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	    "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
}

/*
 * Arrays: asyncpg's lists (nested per dimension, bounds dropped), each
 * element as its type is written alone.
 */
static void
test_datachat_arrays(void)
{
	PG(1007, "{1,2,3}", "[1,2,3]");
	PG(1007, "{}", "[]");
	PG(1007, "{NULL,-7}", "[null,-7]");
	PG(1005, "{{1,2},{3,4}}", "[[1,2],[3,4]]");
	PG(1016, "{{{1}},{{2}}}", "[[[1]],[[2]]]");
	PG(1007, "[0:1]={5,6}", "[5,6]");
	PG(1007, "[0:1][2:2]={{5},{6}}", "[[5],[6]]");
	PG(1009, "{a,\"b c\",\"\",\"NULL\",NULL}",
	    "[\"a\",\"b c\",\"\",\"NULL\",null]");
	PG(1009, "{\"q\\\"x\",\"back\\\\slash\",\"{,}\"}",
	    "[\"q\\\"x\",\"back\\\\slash\",\"{,}\"]");
	PG(1009, "{caf\xc3\xa9}", "[\"caf\xc3\xa9\"]");
	PG(1015, "{x}", "[\"x\"]");
	PG(1000, "{t,f,NULL}", "[true,false,null]");
	PG(1231, "{450.00,10000,NaN,-0.5}",
	    "[\"450.00\",\"1E+4\",\"NaN\",\"-0.5\"]");
	PG(1022, "{1.5,450,NaN,-Infinity,1e+100}",
	    "[1.5,450.0,null,null,1e+100]");
	PG(1021, "{1.1,0.5}", "[1.100000023841858,0.5]");
	PG(1182, "{2026-11-29,infinity}", "[\"2026-11-29\",\"9999-12-31\"]");
	PG(1115, "{\"2026-11-29 20:47:39.5\"}",
	    "[\"2026-11-29T20:47:39.500000\"]");
	PG(1185, "{\"2026-11-30 02:17:39+05:30\",NULL}",
	    "[\"2026-11-29T20:47:39Z\",null]");
	PG(1183, "{20:47:39}", "[\"20:47:39\"]");
	PG(1270, "{12:00:00-03}", "[\"12:00:00-03:00\"]");
	PG(1187, "{\"1 day\",\"-1 days +02:00:00\"}",
	    "[\"P1D\",\"-PT22H\"]");
	PG(2951, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
	    "[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"]");
	PG(1001, "{\"\\\\x0102\",\"\\\\xff\"}",
	    "[\"\\u0001\\u0002\",\"\\\\xff\"]");
	PG(3807, "{\"{\\\"a\\\": 1}\",\"[1, 2]\"}",
	    "[\"{\\\"a\\\": 1}\",\"[1, 2]\"]");
	/* an element a type cannot read stays its text, as a scalar does */
	PG(1182, "{\"0044-03-15 BC\"}", "[\"0044-03-15 BC\"]");
	/* text that is no array_out's: the whole text */
	PG(1007, "{1,2", "\"{1,2\"");
	PG(1007, "{1,2}x", "\"{1,2}x\"");
	PG(1007, "{1,,2}", "\"{1,,2}\"");
	PG(1007, "{\"1}", "\"{\\\"1}\"");
	PG(1007, "[0:1]{1,2}", "\"[0:1]{1,2}\"");
	PG(1007, "{{{{{{{1}}}}}}}", "\"{{{{{{{1}}}}}}}\"");
	PG(1007, "{{{{{{1}}}}}}", "[[[[[[1]]]]]]");
}

/*
 * The WebSocket's values: asyncpg's value through FastAPI 0.128's
 * jsonable_encoder and json.dumps (Python 3.11), as DataChat's /ws/chat
 * complete event writes them; the other types as pydantic writes them.
 */
static void
test_jsonable_values(void)
{
	/* Decimal: int without fraction digits, else float */
	WS(1700, "450.00", "450.0");
	WS(1700, "-450.00", "-450.0");
	WS(1700, "0", "0");
	WS(1700, "-0", "0");
	WS(1700, "0.00", "0.0");
	WS(1700, "-0.00", "-0.0");
	WS(1700, "-0.5", "-0.5");
	WS(1700, "1.10", "1.1");
	WS(1700, "0.0000001", "1e-07");
	WS(1700, "10000", "10000");
	WS(1700, "-20000", "-20000");
	WS(1700, "10000.00", "10000.0");
	WS(1700, "007", "7");
	WS(1700, "12345678901234567890.123456789", "1.2345678901234567e+19");
	WS(1700, "123456789012345678901234567890",
	    "123456789012345678901234567890");
	WS(1700, "NaN", "null");	/* json.dumps: NaN, not JSON */
	WS(1700, "Infinity", "null");
	WS(1700, "1e5", "\"1e5\"");	/* never a driver's text */
	/* datetime and time with a zone: isoformat(), "+00:00" */
	WS(1184, "2026-11-29 20:47:39.19446+00",
	    "\"2026-11-29T20:47:39.194460+00:00\"");
	WS(1184, "2026-11-30 02:17:39+05:30", "\"2026-11-29T20:47:39+00:00\"");
	WS(1184, "infinity", "\"9999-12-31T23:59:59.999999\"");
	WS(1266, "12:00:00+00", "\"12:00:00+00:00\"");
	WS(1266, "12:00:00.25+05:30", "\"12:00:00.250000+05:30\"");
	WS(1114, "2026-11-29 20:47:39.19446", "\"2026-11-29T20:47:39.194460\"");
	WS(1082, "2026-11-29", "\"2026-11-29\"");
	WS(1083, "20:47:39.5", "\"20:47:39.500000\"");
	/* timedelta: total_seconds() */
	WS(1186, "1 day", "86400.0");
	WS(1186, "-1 days +02:00:00", "-79200.0");
	WS(1186, "00:00:00", "0.0");
	WS(1186, "-00:00:01", "-1.0");
	WS(1186, "00:00:00.5", "0.5");
	WS(1186, "00:00:00.000001", "1e-06");
	WS(1186, "1 year 2 mons 3 days 04:05:06.789", "36993906.789");
	WS(1186, "-1 years -1 mons -5 days +00:00:03", "-34559997.0");
	WS(1186, "838:59:59", "3020399.0");
	/* the same as pydantic's */
	WS(701, "1.5", "1.5");
	WS(701, "NaN", "null");
	WS(700, "1.1", "1.100000023841858");
	WS(20, "-7", "-7");
	WS(16, "t", "true");
	WS(17, "\\x636166c3a9", "\"caf\xc3\xa9\"");
	WS(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	    "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
	/* arrays: lists of those */
	WS(1231, "{450.00,10000,NULL}", "[450.0,10000,null]");
	WS(1185, "{\"2026-11-29 20:47:39+00\"}",
	    "[\"2026-11-29T20:47:39+00:00\"]");
	WS(1187, "{\"1 day\"}", "[86400.0]");
}

/*
 * MySQL's (and ClickHouse's) rows: a Decimal built from the text keeps
 * its zeros; a date mysql-connector cannot build is None (the driver
 * flags its date columns); fraction digits past the microsecond are
 * dropped (clickhouse-connect).
 */
#define CH_ARRAY	(DC_COL_ARRAY | DC_COL_ARRAY_CH)

static void
test_mysql_values(void)
{
	static const struct {
		int		 type;
		unsigned	 flags;
		const char	*v, *want;
	} cases[] = {
		{ DC_VT_DECIMAL, 0, "10000", "\"10000\"" },
		{ DC_VT_DECIMAL, 0, "450.00", "\"450.00\"" },
		{ DC_VT_FLOAT, 0, "1.1", "1.1" },
		{ DC_VT_TIMESTAMP, DC_COL_INVALID_NULL,
		    "2026-11-29 20:47:39.194460", "\"2026-11-29T20:47:39.194460\"" },
		{ DC_VT_TIMESTAMP, DC_COL_INVALID_NULL, "2026-11-29 20:47:39.10",
		    "\"2026-11-29T20:47:39.100000\"" },
		{ DC_VT_TIMESTAMP, DC_COL_INVALID_NULL, "0000-00-00 00:00:00",
		    "null" },
		{ DC_VT_TIMESTAMP, DC_COL_INVALID_NULL, "2024-02-30 00:00:00",
		    "null" },
		{ DC_VT_DATE, DC_COL_INVALID_NULL, "0000-00-00", "null" },
		{ DC_VT_DATE, DC_COL_INVALID_NULL, "2024-00-10", "null" },
		{ DC_VT_DATE, DC_COL_INVALID_NULL, "2024-02-29", "\"2024-02-29\"" },
		{ DC_VT_DATE, 0, "0000-00-00", "\"0000-00-00\"" },
		{ DC_VT_INTERVAL, 0, "-12:30:00.000000", "\"-PT12H30M\"" },
		{ DC_VT_INTERVAL, 0, "838:59:59.000000", "\"P34DT22H59M59S\"" },
		{ DC_VT_TIMESTAMP, 0, "2024-02-29 12:34:56.123456789",
		    "\"2024-02-29T12:34:56.123456\"" },
		{ DC_VT_TIMESTAMP, 0, "1969-12-31 23:59:59.999999999",
		    "\"1969-12-31T23:59:59.999999\"" },
		/* ClickHouse arrays: clickhouse-connect's lists */
		{ DC_VT_INT, CH_ARRAY, "[1,2]", "[1,2]" },
		{ DC_VT_INT, CH_ARRAY, "[]", "[]" },
		{ DC_VT_INT, CH_ARRAY, "[[1],[2,3],[]]", "[[1],[2,3],[]]" },
		{ DC_VT_INT, CH_ARRAY, "[1,NULL]", "[1,null]" },
		{ DC_VT_TEXT, CH_ARRAY, "['a\\'b','x\\ty','',NULL,'NULL']",
		    "[\"a'b\",\"x\\ty\",\"\",null,\"NULL\"]" },
		{ DC_VT_DATE, CH_ARRAY, "['2024-02-29']", "[\"2024-02-29\"]" },
		{ DC_VT_FLOAT, CH_ARRAY | DC_COL_FLOAT4, "[1.1,inf,-nan]",
		    "[1.100000023841858,null,null]" },
		{ DC_VT_DECIMAL, CH_ARRAY, "[450.00,1.5]",
		    "[\"450.00\",\"1.5\"]" },
		{ DC_VT_INT, CH_ARRAY, "[1,2", "\"[1,2\"" },
		{ DC_VT_INT, CH_ARRAY, "{1,2}", "\"{1,2}\"" },
	};
	struct dc_rows *r;
	struct dc_cell cell;
	struct dc_jw w;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = dc_rows_new(1);
		CHECK(r != NULL);
		if (r == NULL)
			return;
		cell.v = cases[i].v;
		cell.len = strlen(cell.v);
		CHECK(dc_rows_set_col(r, 0, "x", cases[i].type) == DC_OK);
		dc_rows_set_flags(r, 0, cases[i].flags);
		CHECK(dc_rows_add(r, &cell) == DC_OK);
		dc_jw_init(&w);
		dc_result_write_value(&w, r, 0, 0, DC_ENC_PYDANTIC);
		CHECK_STR(w.buf, cases[i].want);
		dc_jw_free(&w);
		dc_rows_free(r);
	}
}

/* max_result_bytes: a row that would pass the budget is not kept */
static void
test_rows_budget(void)
{
	struct dc_rows *r = dc_rows_new(2);
	struct dc_cell row[2] = { { "abcd", 4 }, { NULL, 0 } };

	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK(dc_rows_set_col(r, 0, "a", DC_VT_TEXT) == DC_OK);
	CHECK(dc_rows_set_col(r, 1, "b", DC_VT_TEXT) == DC_OK);
	dc_rows_budget(r, 10);
	CHECK(dc_rows_row_bytes(r, row) == 4);
	CHECK(dc_rows_add(r, row) == DC_OK);
	CHECK(dc_rows_add_ref(r, row) == DC_OK);
	CHECK(r->bytes == 8);
	/* 4 more would make 12 */
	CHECK(dc_rows_add(r, row) == DC_EFULL);
	CHECK(dc_rows_add_ref(r, row) == DC_EFULL);
	CHECK(r->nrows == 2 && r->bytes == 8);
	/* NULLs cost nothing, and exactly the budget fits */
	row[0].v = NULL;
	row[0].len = 0;
	CHECK(dc_rows_add(r, row) == DC_OK);
	row[0].v = "xy";
	row[0].len = 2;
	CHECK(dc_rows_add(r, row) == DC_OK);
	CHECK(r->nrows == 4 && r->bytes == 10);
	row[0].v = "";
	row[0].len = 0;
	CHECK(dc_rows_add(r, row) == DC_OK);
	row[0].v = "z";
	row[0].len = 1;
	CHECK(dc_rows_add(r, row) == DC_EFULL);
	dc_rows_free(r);
}

int
main(void)
{
	test_datachat_values();
	test_datachat_arrays();
	test_jsonable_values();
	test_mysql_values();
	test_values();
	test_rows_neutral();
	test_rows_budget();
	test_bad_numbers_stay_strings();
	test_column_names();
	test_failures();
	T_DONE();
}
