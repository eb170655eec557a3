/*
 * test_pyjson.c - unit tests for src/core/pyjson.c: every bad document
 * below is reported with the message and character position that
 * CPython 3.13's json.loads gives (the vectors were made with it), and
 * documents Python accepts are not reported.
 */
#include <stdio.h>
#include <string.h>

#include "pyjson.h"
#include "t.h"

static const struct {
	const char	*doc;
	size_t		 len;
	const char	*msg;
	size_t		 pos;
} bad[] = {
	{ "{", 1, "Expecting property name enclosed in double quotes", 1 },
	{ "[1,2", 4, "Expecting ',' delimiter", 4 },
	{ "{\"a\": }", 7, "Expecting value", 6 },
	{ "nul", 3, "Expecting value", 0 },
	{ "{\"a\": 1} trailing", 17, "Extra data", 9 },
	{ "\x00""\x01""", 2, "Expecting value", 0 },
	{ "{\"a\":1,}", 8, "Illegal trailing comma before end of object", 6 },
	{ "[1,]", 4, "Illegal trailing comma before end of array", 2 },
	{ "{\"a\" 1}", 7, "Expecting ':' delimiter", 5 },
	{ "{a:1}", 5, "Expecting property name enclosed in double quotes", 1 },
	{ "\"abc", 4, "Unterminated string starting at", 0 },
	{ "\"a\\qb\"", 6, "Invalid \\escape", 2 },
	{ "\"\\u12\"", 6, "Invalid \\uXXXX escape", 2 },
	{ "\"\\u12x4\"", 8, "Invalid \\uXXXX escape", 2 },
	{ "\"a\x0a""b\"", 5, "Invalid control character at", 2 },
	{ "[1 2]", 5, "Expecting ',' delimiter", 3 },
	{ "{\"a\":1 \"b\":2}", 13, "Expecting ',' delimiter", 7 },
	{ "-", 1, "Expecting value", 0 },
	{ "-x", 2, "Expecting value", 0 },
	{ "01", 2, "Extra data", 1 },
	{ "1.", 2, "Extra data", 1 },
	{ "1e", 2, "Extra data", 1 },
	{ "1e+", 3, "Extra data", 1 },
	{ "[.5]", 4, "Expecting value", 1 },
	{ "{\"\xc3""\xa9""\": \"\xc3""\xbc""\", \"x\": }", 19, "Expecting value", 16 },
	{ "  [1, 2, 3,  ]  ", 16, "Illegal trailing comma before end of array", 10 },
	{ "{\"k\": [true, fals]}", 19, "Expecting value", 13 },
	{ "\"\\", 2, "Unterminated string starting at", 0 },
	{ "{\"a\":\"\\u00e9\\ud83d\\ude00\"} x", 28, "Extra data", 27 },
	{ "{\"a\": -}", 8, "Expecting value", 6 },
	{ "{\"name\": \"x\", \"tags\": [\"a\",]}", 29, "Illegal trailing comma before end of array", 26 },
	{ "   ", 3, "Expecting value", 3 },
	{ "{\"a\":1}{", 8, "Extra data", 7 },
	{ "\"\\uD83D\"x", 9, "Extra data", 8 },
	{ "tru", 3, "Expecting value", 0 },
	{ "{\"a\":\"\\u00\"}", 12, "Invalid \\uXXXX escape", 7 },
	{ "[1,2", 4, "Expecting ',' delimiter", 4 },
	{ "{\"a\":[{\"b\":{\"c\":[1,2,{]}}]}", 27, "Expecting property name enclosed in double quotes", 22 },
};

static void
test_bad(void)
{
	const char *msg;
	size_t i, pos;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(dc_pyjson_error(bad[i].doc, bad[i].len, &msg, &pos) == 1);
		if (msg == NULL)
			continue;
		if (strcmp(msg, bad[i].msg) != 0 || pos != bad[i].pos)
			fprintf(stderr, "doc %zu: got \"%s\" at %zu\n", i, msg,
			    pos);
		CHECK_STR(msg, bad[i].msg);
		CHECK(pos == bad[i].pos);
	}
}

static void
test_good(void)
{
	static const char *good[] = {
		"{}", " [ ] ", "{\"a\": [1, 2.5, -3e-2, true, false, null]}",
		"\"\\u00e9\\n\\t\\\"\"", "[NaN, Infinity, -Infinity]", "0",
		"{\"\xc3\xa9\": \"\xf0\x9f\x98\x80\"}\n",
	};
	const char *msg;
	size_t i, pos;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(dc_pyjson_error(good[i], strlen(good[i]), &msg, &pos) == 0);
}

static void
test_utf8(void)
{
	CHECK(dc_pyjson_utf8_ok("plain", 5));
	CHECK(dc_pyjson_utf8_ok("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	CHECK(!dc_pyjson_utf8_ok("\xc3", 1));
	CHECK(!dc_pyjson_utf8_ok("\xc0\xaf", 2));		/* overlong */
	CHECK(!dc_pyjson_utf8_ok("\xed\xa0\x80", 3));		/* surrogate */
	CHECK(!dc_pyjson_utf8_ok("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	CHECK(!dc_pyjson_utf8_ok("\xff", 1));
	CHECK(!dc_pyjson_utf8_ok("a\x80", 2));
}

int
main(void)
{
	test_bad();
	test_good();
	test_utf8();
	T_DONE();
}
