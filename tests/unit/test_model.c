/*
 * test_model.c - unit tests for src/http/model.c: pydantic's lax
 * coercions and error list from a field table, the uuid crate's error
 * texts, Python's uuid.UUID() forms, datetimes as pydantic reads and
 * writes them, and the JSON Schema of a tool's parameters.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "dc.h"
#include "model.h"
#include "t.h"

static const char *const kinds[] = { "a", "b", "c", NULL };
static const struct dc_field fields[] = {
	{ .name = "s", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 2 },
	{ .name = "b", .type = DC_FT_BOOL, .dflt = "true" },
	{ .name = "i", .type = DC_FT_INT, .dflt = "5",
	    .flags = DC_F_GE | DC_F_LE, .ge = 1, .le = 10 },
	{ .name = "k", .type = DC_FT_LITERAL, .flags = DC_F_NULLABLE,
	    .choices = kinds },
	{ .name = "u", .type = DC_FT_UUID, .flags = DC_F_NULLABLE },
	{ .name = "t", .type = DC_FT_DATETIME, .flags = DC_F_NULLABLE },
	{ .name = NULL }
};
static const struct dc_model model = { "M", fields };

/* Validate text; the errors as compact JSON (or "" when valid). */
static const char *
run(const char *text, struct dc_val *v)
{
	static char out[4096];
	struct json_object *o = json_tokener_parse(text);
	struct json_object *errs = json_object_new_array();
	int n = dc_model_validate(&model, o, "body", v, errs);

	snprintf(out, sizeof(out), "%s", n == 0 ? "" :
	    json_object_to_json_string_ext(errs, JSON_C_TO_STRING_PLAIN));
	json_object_put(errs);
	json_object_put(o);
	return out;
}

static void
test_lax(void)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	static const char *truths[] = { "true", "1", "\"yes\"", "\"ON\"",
	    "\"t\"", "\"Y\"", "1.0" };
	static const char *lies[] = { "false", "0", "\"no\"", "\"Off\"",
	    "\"f\"", "\"0\"" };
	char buf[128];
	size_t i;

	CHECK_STR(run("{\"s\":\"ab\"}", v), "");
	CHECK(v[1].i == 1 && !v[1].set && v[2].i == 5 && v[3].null);
	for (i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"s\":\"ab\",\"b\":%s}", truths[i]);
		CHECK_STR(run(buf, v), "");
		CHECK(v[1].i == 1);
	}
	for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"s\":\"ab\",\"b\":%s}", lies[i]);
		CHECK_STR(run(buf, v), "");
		CHECK(v[1].i == 0);
	}
	CHECK_STR(run("{\"s\":\"ab\",\"i\":\" 7 \"}", v), "");
	CHECK(v[2].i == 7);
	CHECK_STR(run("{\"s\":\"ab\",\"i\":3.0}", v), "");
	CHECK(v[2].i == 3);
	/* two characters, four bytes */
	CHECK_STR(run("{\"s\":\"\\u00e9\\u00e9\"}", v), "");
}

static void
test_errors(void)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];

	CHECK_STR(run("{}", v), "[{\"type\":\"missing\",\"loc\":[\"body\",\"s\"],"
	    "\"msg\":\"Field required\",\"input\":{}}]");
	CHECK_STR(run("{\"s\":\"x\",\"b\":2,\"i\":0,\"k\":\"d\"}", v),
	    "[{\"type\":\"string_too_short\",\"loc\":[\"body\",\"s\"],\"msg\":"
	    "\"String should have at least 2 characters\",\"input\":\"x\","
	    "\"ctx\":{\"min_length\":2}},{\"type\":\"bool_parsing\",\"loc\":"
	    "[\"body\",\"b\"],\"msg\":\"Input should be a valid boolean, unable "
	    "to interpret input\",\"input\":2},{\"type\":\"greater_than_equal\","
	    "\"loc\":[\"body\",\"i\"],\"msg\":\"Input should be greater than or "
	    "equal to 1\",\"input\":0,\"ctx\":{\"ge\":1}},{\"type\":"
	    "\"literal_error\",\"loc\":[\"body\",\"k\"],\"msg\":\"Input should "
	    "be 'a', 'b' or 'c'\",\"input\":\"d\",\"ctx\":{\"expected\":\"'a', "
	    "'b' or 'c'\"}}]");
	CHECK_STR(run("{\"s\":1,\"b\":[],\"i\":1.5}", v),
	    "[{\"type\":\"string_type\",\"loc\":[\"body\",\"s\"],\"msg\":\"Input "
	    "should be a valid string\",\"input\":1},{\"type\":\"bool_type\","
	    "\"loc\":[\"body\",\"b\"],\"msg\":\"Input should be a valid boolean\","
	    "\"input\":[]},{\"type\":\"int_from_float\",\"loc\":[\"body\",\"i\"],"
	    "\"msg\":\"Input should be a valid integer, got a number with a "
	    "fractional part\",\"input\":1.5}]");
	CHECK_STR(run("[1]", v), "[{\"type\":\"model_attributes_type\",\"loc\":"
	    "[\"body\"],\"msg\":\"Input should be a valid dictionary or object "
	    "to extract fields from\",\"input\":[1]}]");
}

static void
test_uuid(void)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	uint8_t id[16];

	CHECK_STR(run("{\"s\":\"ab\",\"u\":\"{12345678-1234-1234-1234-"
	    "1234567890ab}\"}", v), "");
	CHECK(v[4].uuid[0] == 0x12 && v[4].uuid[15] == 0xab);
	CHECK_STR(run("{\"s\":\"ab\",\"u\":\"urn:uuid:12345678123412341234"
	    "1234567890ab\"}", v), "[{\"type\":\"uuid_parsing\",\"loc\":[\"body\","
	    "\"u\"],\"msg\":\"Input should be a valid UUID, invalid group count: "
	    "expected 5, found 1\",\"input\":\"urn:uuid:12345678123412341234123"
	    "4567890ab\",\"ctx\":{\"error\":\"invalid group count: expected 5, "
	    "found 1\"}}]");
	CHECK(strstr(run("{\"s\":\"ab\",\"u\":\"1234567-1234-1234-1234-"
	    "1234567890abc\"}", v), "invalid group length in group 0: expected "
	    "8, found 7") != NULL);
	CHECK(strstr(run("{\"s\":\"ab\",\"u\":\"x\"}", v), "found `x` at 1") !=
	    NULL);
	CHECK(strstr(run("{\"s\":\"ab\",\"u\":5}", v), "uuid_type") != NULL);

	CHECK(dc_model_uuid_lax("12345678123412341234123456789ABC", id) == 0);
	CHECK(dc_model_uuid_lax("{12345678-1234-1234-1234-123456789abc}", id) ==
	    0);
	CHECK(dc_model_uuid_lax("urn:uuid:12345678-1234-1234-1234-123456789abc",
	    id) == 0);
	CHECK(dc_model_uuid_lax("1234-5678", id) == DC_EINVAL);
	CHECK(dc_model_uuid_lax("12345678-1234-1234-1234-123456789abg", id) ==
	    DC_EINVAL);
}

static void
test_datetime(void)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	char buf[48];

	CHECK_STR(run("{\"s\":\"ab\",\"t\":\"2026-01-02T03:04:05.25Z\"}", v), "");
	dc_model_datetime(v[5].usec, buf, sizeof(buf));
	CHECK_STR(buf, "2026-01-02T03:04:05.250000Z");
	CHECK_STR(run("{\"s\":\"ab\",\"t\":\"2026-01-02 04:04:05+01:00\"}", v),
	    "");
	dc_model_datetime(v[5].usec, buf, sizeof(buf));
	CHECK_STR(buf, "2026-01-02T03:04:05Z");
	CHECK_STR(run("{\"s\":\"ab\",\"t\":\"2024-02-29\"}", v), "");
	dc_model_datetime(v[5].usec, buf, sizeof(buf));
	CHECK_STR(buf, "2024-02-29T00:00:00Z");
	CHECK(strstr(run("{\"s\":\"ab\",\"t\":\"2023-02-29\"}", v),
	    "datetime_from_date_parsing") != NULL);
	CHECK(strstr(run("{\"s\":\"ab\",\"t\":\"soon\"}", v),
	    "input is too short") != NULL);
	CHECK(strstr(run("{\"s\":\"ab\",\"t\":true}", v), "datetime_type") !=
	    NULL);
}

static void
test_schema(void)
{
	struct json_object *s = dc_model_schema(&model);

	CHECK_STR(json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN),
	    "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"},"
	    "\"b\":{\"type\":\"boolean\",\"default\":true},\"i\":{\"type\":"
	    "\"integer\",\"default\":5},\"k\":{\"anyOf\":[{\"type\":\"string\"},"
	    "{\"type\":\"null\"}]},\"u\":{\"anyOf\":[{\"type\":\"string\"},"
	    "{\"type\":\"null\"}]},\"t\":{\"anyOf\":[{\"type\":\"string\"},"
	    "{\"type\":\"null\"}]}},\"required\":[\"s\"],"
	    "\"additionalProperties\":false}");
	json_object_put(s);
}

/*
 * Found by fuzz_model: a body that is a bare string, against a model
 * with two secret fields (SystemInitializeRequest), leaked a mask per
 * secret field but the last.  The sanitize build's leak check sees it.
 */
static void
test_secret_string_body(void)
{
	static const struct dc_field sf[] = {
		{ .name = "a", .type = DC_FT_STR, .flags = DC_F_SECRET },
		{ .name = "b", .type = DC_FT_STR, .flags = DC_F_SECRET },
		{ .name = NULL }
	};
	static const struct dc_model sm = { "S", sf };
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *o = json_object_new_string("hunter2");
	struct json_object *errs = json_object_new_array();

	CHECK(dc_model_validate(&sm, o, "body", v, errs) == 1);
	CHECK(strstr(json_object_to_json_string(errs), "hunter2") == NULL);
	CHECK(strstr(json_object_to_json_string(errs), "**********") != NULL);
	json_object_put(errs);
	json_object_put(o);
}

int
main(void)
{
	test_lax();
	test_errors();
	test_uuid();
	test_datetime();
	test_schema();
	test_secret_string_body();
	T_DONE();
}
