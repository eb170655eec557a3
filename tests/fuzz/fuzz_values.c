/*
 * fuzz_values.c - a database value's text (whatever a target's rows hold)
 * written as DataChat writes it (result.c): the first byte picks the
 * column's neutral type, flags and the encoding (pydantic's or
 * jsonable_encoder's), the rest is the cell's text: its value / 14 holds
 * the ARRAY, FLOAT4 and NUMERIC_GROUPS flags (bits 0-2), the encoding
 * (bit 3) and, with bit 4, ClickHouse's arrays (bit 0 set too) or
 * INVALID_NULL.
 *
 * Invariants: both writers (jsonw and json-c) give the same JSON, and it
 * is one JSON value json-c parses whole; an array column's value is a
 * JSON array, or the cell's own text when that is no array_out's.
 */
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "dc.h"
#include "jsonw.h"
#include "result.h"
#include "rows.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	struct json_object *o, *back;
	struct dc_rows *r;
	struct dc_cell cell;
	const char *js;
	struct dc_jw w;
	enum dc_enc enc;
	unsigned x;

	if (size < 1 || (r = dc_rows_new(1)) == NULL)
		return 0;
	FUZZ_ASSERT(dc_rows_set_col(r, 0, "v", data[0] % DC_VT_NTYPES) ==
	    DC_OK);
	x = (unsigned)(data[0] / DC_VT_NTYPES);
	dc_rows_set_flags(r, 0, (x & 7u) | (!(x & 16u) ? 0 : (x & 1u) ?
	    DC_COL_ARRAY | DC_COL_ARRAY_CH : DC_COL_INVALID_NULL));
	enc = x & 8u ? DC_ENC_JSONABLE : DC_ENC_PYDANTIC;
	cell.v = (const char *)data + 1;
	cell.len = size - 1;
	if (memchr(cell.v, '\0', cell.len) != NULL ||
	    dc_rows_add(r, &cell) != DC_OK) {
		dc_rows_free(r);
		return 0;
	}
	dc_jw_init(&w);
	dc_result_write_value(&w, r, 0, 0, enc);
	FUZZ_ASSERT(dc_result_value(r, 0, 0, enc, &o) == DC_OK);
	FUZZ_ASSERT(!w.err);
	js = o != NULL ? json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "null";
	if (strcmp(w.buf, js) != 0)	/* say what differs, then fail */
		fprintf(stderr, "jsonw %s, json-c %s\n", w.buf, js);
	FUZZ_ASSERT(strcmp(w.buf, js) == 0);
	tok = json_tokener_new();
	FUZZ_ASSERT(tok != NULL);
	back = json_tokener_parse_ex(tok, w.buf, (int)strlen(w.buf) + 1);
	FUZZ_ASSERT(json_tokener_get_error(tok) == json_tokener_success);
	if (r->cols[0].flags & DC_COL_ARRAY)
		FUZZ_ASSERT(json_object_is_type(back, json_type_array) ||
		    (json_object_is_type(back, json_type_string) &&
		    (size_t)json_object_get_string_len(back) == cell.len &&
		    memcmp(json_object_get_string(back), cell.v, cell.len) == 0));
	json_object_put(back);
	json_tokener_free(tok);
	json_object_put(o);
	dc_jw_free(&w);
	dc_rows_free(r);
	return 0;
}
