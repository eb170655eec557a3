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
	o = dc_result_columnar(res, 3);
	CHECK_STR(js(o), "{\"i2\":[-7,0,null],\"i4\":[2147483647,0,null],"
	    "\"i8\":[9223372036854775807,-1,null],\"o\":[4294967295,0,null],"
	    "\"f4\":[1.5,\"NaN\",null],\"f8\":[1e+100,\"-Infinity\",null],"
	    "\"n\":[12345678901234567890.123456789,\"NaN\",null],"
	    "\"b\":[true,false,null],\"j\":[{\"a\":[1,null]},\"not json\",null],"
	    "\"jb\":[[true],null,null],\"t\":[\"hello \\\"x\\\"\",\"\",null],"
	    "\"d\":[\"2024-02-29\",\"1999-01-01\",null]}");
	/* the writer of the query path says the same, byte for byte */
	{
		struct dc_result_cols names;
		struct dc_jw w;

		CHECK(dc_result_cols(res, &names) == DC_OK);
		dc_jw_init(&w);
		dc_result_write_columnar(&w, res, &names, 3);
		CHECK(!w.err);
		CHECK_STR(w.buf, js(o));
		dc_jw_free(&w);
		dc_jw_init(&w);
		dc_result_write_columnar(&w, res, &names, 1);
		CHECK(!w.err);
		CHECK_STR(w.buf, "{\"i2\":[-7],\"i4\":[2147483647],\"i8\":"
		    "[9223372036854775807],\"o\":[4294967295],\"f4\":[1.5],"
		    "\"f8\":[1e+100],\"n\":[12345678901234567890.123456789],"
		    "\"b\":[true],\"j\":[{\"a\":[1,null]}],\"jb\":[[true]],"
		    "\"t\":[\"hello \\\"x\\\"\"],\"d\":[\"2024-02-29\"]}");
		dc_jw_free(&w);
		dc_result_cols_free(&names);
	}
	json_object_put(o);
	/* fewer rows than the result holds: the row cap */
	o = dc_result_rows(res, 1);
	CHECK(json_object_array_length(o) == 1);
	CHECK_STR(js(json_object_object_get(json_object_array_get_idx(o, 0),
	    "n")), "12345678901234567890.123456789");
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
	o = dc_result_columnar(res, 8);
	CHECK_STR(js(o), "{\"x\":[\"+1\",\".5\",\"1.\",\"01\",\"1e\",\"--1\","
	    "\"Infinity\",0.0]}");
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
	o = dc_result_columnar(res, 0);
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
	    "\"d\":450.00,\"b1\":true,\"b0\":false,\"t\":\"x\\ty\","
	    "\"j\":{\"k\":1},\"dt\":\"2024-02-29\",\"tm\":\"12:00:01\","
	    "\"ts\":\"2024-02-29 12:00:01.5\","
	    "\"tz\":\"2024-02-29 12:00:01+00\","
	    "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\","
	    "\"by\":\"\\\\x0102\",\"o\":\"{1,2}\",\"n\":null}");
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
	CHECK(dc_pg_vtype(1186) == DC_VT_OTHER);	/* interval */
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
	test_values();
	test_rows_neutral();
	test_rows_budget();
	test_bad_numbers_stay_strings();
	test_column_names();
	test_failures();
	T_DONE();
}
