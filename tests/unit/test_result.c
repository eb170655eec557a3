/*
 * test_result.c - unit tests for src/result.c: values typed by column
 * OID (integers, exact numerics, NaN and infinities as strings, booleans,
 * nulls, parsed json/jsonb), repeated column names made unique, the
 * columnar and row shapes (also as written by jsonw.h), and the HTTP
 * status of failed queries.  The
 * PGresults are built in memory with libpq's PQmakeEmptyPGresult.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "jsonw.h"
#include "pool.h"
#include "result.h"
#include "t.h"

struct col {
	const char	*name;
	Oid		 type;
};

/* One row of text values (NULL for SQL NULL) per entry of rows. */
static PGresult *
make_result(const struct col *cols, int ncols, const char *const *rows,
    int nrows)
{
	PGresAttDesc attrs[16];
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
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
	return res;
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
	PGresult *res = make_result(cols, 12, rows, 3);
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
	PQclear(res);
}

static void
test_bad_numbers_stay_strings(void)
{
	static const struct col cols[] = { { "x", 1700 } };
	static const char *const rows[] = { "+1", ".5", "1.", "01", "1e", "--1",
	    "Infinity", "0.0" };
	PGresult *res = make_result(cols, 1, rows, 8);
	struct json_object *o;

	CHECK(res != NULL);
	if (res == NULL)
		return;
	o = dc_result_columnar(res, 8);
	CHECK_STR(js(o), "{\"x\":[\"+1\",\".5\",\"1.\",\"01\",\"1e\",\"--1\","
	    "\"Infinity\",0.0]}");
	json_object_put(o);
	PQclear(res);
}

static void
test_column_names(void)
{
	static const struct col cols[] = {
		{ "a", 23 }, { "a", 23 }, { "a_2", 23 }, { "a", 23 }, { "", 23 },
	};
	static const char *const rows[] = { "1", "2", "3", "4", "5" };
	PGresult *res = make_result(cols, 5, rows, 1);
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
	PQclear(res);

	res = make_result(cols, 0, NULL, 0);
	o = dc_result_columnar(res, 0);
	CHECK_STR(js(o), "{}");
	json_object_put(o);
	PQclear(res);
}

static void
test_failures(void)
{
	struct dc_pg_result r;
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
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 502);
	CHECK(strstr(d, "lost") != NULL);
	r.status = DC_ENOENT;
	CHECK(dc_result_failure(&r, d, sizeof(d)) == 404);
	CHECK(dc_result_submit_failure(DC_EFULL, d, sizeof(d)) == 503);
	CHECK(dc_result_submit_failure(DC_ENOMEM, d, sizeof(d)) == 500);
}

int
main(void)
{
	test_values();
	test_bad_numbers_stay_strings();
	test_column_names();
	test_failures();
	T_DONE();
}
