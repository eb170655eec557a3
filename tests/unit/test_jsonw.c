/*
 * test_jsonw.c - unit tests for src/jsonw.c: commas between values and
 * members at every depth, escaping (quotes, backslashes, control bytes,
 * UTF-8 left alone), raw numbers, json-c values, and the failures
 * (too deep, closing what is not open) that make the writer refuse.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "jsonw.h"
#include "t.h"

static void
test_shapes(void)
{
	struct dc_jw w;

	dc_jw_init(&w);
	dc_jw_object(&w);
	dc_jw_key(&w, "a");
	dc_jw_int(&w, -42);
	dc_jw_key(&w, "b");
	dc_jw_array(&w);
	dc_jw_bool(&w, 1);
	dc_jw_bool(&w, 0);
	dc_jw_null(&w);
	dc_jw_object(&w);
	dc_jw_object_end(&w);
	dc_jw_array(&w);
	dc_jw_array_end(&w);
	dc_jw_raw(&w, "1.50", 4);
	dc_jw_array_end(&w);
	dc_jw_key(&w, "c");
	dc_jw_string(&w, NULL);
	dc_jw_key(&w, "d");
	dc_jw_object(&w);
	dc_jw_key(&w, "e");
	dc_jw_string(&w, "f");
	dc_jw_object_end(&w);
	dc_jw_object_end(&w);
	CHECK(!w.err);
	CHECK_STR(w.buf, "{\"a\":-42,\"b\":[true,false,null,{},[],1.50],"
	    "\"c\":null,\"d\":{\"e\":\"f\"}}");
	CHECK(w.len == strlen(w.buf) && w.depth == 0);
	dc_jw_free(&w);

	dc_jw_init(&w);
	dc_jw_array(&w);
	dc_jw_int(&w, 0);
	dc_jw_int(&w, 9);
	dc_jw_int(&w, -10);
	dc_jw_int(&w, LLONG_MAX);
	dc_jw_int(&w, LLONG_MIN);
	dc_jw_array_end(&w);
	CHECK_STR(w.buf, "[0,9,-10,9223372036854775807,-9223372036854775808]");
	dc_jw_free(&w);
}

static void
test_escaping(void)
{
	struct dc_jw w;
	struct json_object *o;
	const char s[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f caf\xc3\xa9";

	dc_jw_init(&w);
	dc_jw_string_len(&w, s, sizeof(s) - 1);
	CHECK_STR(w.buf, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f "
	    "caf\xc3\xa9\"");
	/* json-c reads back exactly what went in */
	o = json_tokener_parse(w.buf);
	CHECK(o != NULL && json_object_get_string_len(o) == sizeof(s) - 1 &&
	    memcmp(json_object_get_string(o), s, sizeof(s) - 1) == 0);
	json_object_put(o);
	dc_jw_free(&w);

	/* a NUL inside a counted string is escaped, not the end */
	dc_jw_init(&w);
	dc_jw_string_len(&w, "a\0b", 3);
	CHECK_STR(w.buf, "\"a\\u0000b\"");
	dc_jw_free(&w);

	/* keys are escaped too */
	dc_jw_init(&w);
	dc_jw_object(&w);
	dc_jw_key(&w, "k\"ey");
	dc_jw_int(&w, 1);
	dc_jw_object_end(&w);
	CHECK_STR(w.buf, "{\"k\\\"ey\":1}");
	dc_jw_free(&w);
}

static void
test_json_c_values(void)
{
	struct dc_jw w;
	struct json_object *o = json_tokener_parse("{\"x\":[1,\"a/b\"]}");

	dc_jw_init(&w);
	dc_jw_array(&w);
	dc_jw_json(&w, o);
	dc_jw_json(&w, NULL);
	dc_jw_array_end(&w);
	CHECK_STR(w.buf, "[{\"x\":[1,\"a/b\"]},null]");
	json_object_put(o);
	dc_jw_free(&w);
}

/* dc_jw_json walks the tree itself: the text must be json-c's, byte for byte. */
static void
test_json_c_tree(void)
{
	static const char *const docs[] = {
	    "{}", "[]", "null", "true", "-0", "0.1", "1e300", "-2.5e-7",
	    "9223372036854775807", "-9223372036854775808",
	    "18446744073709551615", "12345678901234567890123",
	    "{\"a\":{\"b\":[[],{},[null,false,3.0]]},\"k\\\"/\\u0001\":"
	    "\"tab\\there \\u00e9 \\ud83d\\ude00 a/b\"}",
	    "[1.5,2,\"\",{\"\":\"\"}]" };
	struct json_object *o;
	struct dc_jw w;
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(docs); i++) {
		o = json_tokener_parse(docs[i]);
		CHECK(o != NULL || strcmp(docs[i], "null") == 0);
		dc_jw_init(&w);
		dc_jw_json(&w, o);
		CHECK(!w.err);
		CHECK_STR(w.buf, json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		dc_jw_free(&w);
		json_object_put(o);
	}
	/* a number kept as the text it came from, and a built double */
	o = json_object_new_array();
	json_object_array_add(o, json_object_new_double_s(0.1,
	    "0.1000000000000000055511151231257827"));
	json_object_array_add(o, json_object_new_double(1.0 / 3));
	json_object_array_add(o, json_object_new_uint64(UINT64_MAX));
	dc_jw_init(&w);
	dc_jw_json(&w, o);
	CHECK_STR(w.buf, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	dc_jw_free(&w);
	json_object_put(o);
}

static void
test_failures(void)
{
	struct dc_jw w;
	int i;

	dc_jw_init(&w);
	for (i = 0; i < DC_JW_DEPTH + 1; i++)
		dc_jw_array(&w);
	CHECK(w.err);
	dc_jw_free(&w);

	dc_jw_init(&w);
	dc_jw_object_end(&w);
	CHECK(w.err);
	dc_jw_free(&w);

	/* a large document grows its buffer */
	dc_jw_init(&w);
	dc_jw_array(&w);
	for (i = 0; i < 10000; i++)
		dc_jw_string(&w, "0123456789");
	dc_jw_array_end(&w);
	CHECK(!w.err && w.len == 2 + 10000 * 12 + 9999);
	dc_jw_free(&w);
}

/* The json-c builder of the out-of-memory policy (dc.h). */
static void
test_jb(void)
{
	struct json_object *o, *a;
	struct dc_jb b = { 0 };

	o = json_object_new_object();
	a = json_object_new_array();
	dc_jb_add(&b, o, "n", json_object_new_int(7));
	dc_jb_null(&b, o, "none");
	dc_jb_push(&b, a, json_object_new_string("x"));
	dc_jb_add(&b, o, "list", a);
	CHECK(!b.failed);
	o = dc_jb_done(&b, o);
	CHECK(o != NULL);
	CHECK_STR(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	    "{\"n\":7,\"none\":null,\"list\":[\"x\"]}");
	json_object_put(o);

	/* a constructor that failed (NULL) fails the build; no leak */
	o = json_object_new_object();
	dc_jb_add(&b, o, "ok", json_object_new_int(1));
	dc_jb_add(&b, o, "lost", NULL);
	CHECK(b.failed);
	CHECK(dc_jb_done(&b, o) == NULL);	/* o was dropped */
	b.failed = 0;
	/* a container that failed: the value is dropped, not leaked */
	dc_jb_add(&b, NULL, "k", json_object_new_string("v"));
	CHECK(b.failed);
	b.failed = 0;
	dc_jb_push(&b, NULL, json_object_new_int(2));
	CHECK(b.failed);
	b.failed = 0;
	a = json_object_new_array();
	dc_jb_push(&b, a, NULL);
	CHECK(b.failed && json_object_array_length(a) == 0);
	json_object_put(a);
	CHECK(dc_jb_done(&b, NULL) == NULL);
}

int
main(void)
{
	test_shapes();
	test_escaping();
	test_json_c_values();
	test_json_c_tree();
	test_failures();
	test_jb();
	T_DONE();
}
