/*
 * fuzz_model.c - a request body -> the verdict of its model
 * (dc_model_validate, src/http/model.c), for every model a route, query
 * string, path or tool validates (the dc_models_* lists of src/api).
 *
 * The first byte picks the model; the rest is the body, read the way
 * dc_req_body reads one (UTF-8 only, a BOM skipped, json-c in strict
 * mode, depth 32, trailing whitespace allowed).  A body that is not JSON
 * stops there: dc_req_body answers it without a model.
 *
 * Invariants: validation never fails but for memory; it returns the
 * number of errors it appended; a valid body has every required field
 * set, each string within its length bounds and a literal among its
 * choices, each integer within its bounds; an invalid one gives a 422
 * detail that json-c writes as JSON a strict parser reads back, each
 * error with a type, a msg and a loc starting where the model is used.
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "model.h"
#include "pyjson.h"

#define JSON_MAX_DEPTH	32	/* as src/http/http.c */

static const struct dc_model_use *const lists[] = {
	dc_models_chat, dc_models_conversations, dc_models_databases,
	dc_models_datapoints, dc_models_feedback, dc_models_system,
	dc_models_tools, NULL
};

static const struct dc_model_use *uses[64];
static int nuses;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct dc_model_use *u;
	int i;

	(void)argc;
	(void)argv;
	for (i = 0; lists[i] != NULL; i++)
		for (u = lists[i]; u->model != NULL; u++) {
			FUZZ_ASSERT(nuses < (int)(sizeof(uses) / sizeof(uses[0])));
			FUZZ_ASSERT(dc_model_nfields(u->model) <=
			    DC_MODEL_MAX_FIELDS);
			uses[nuses++] = u;
		}
	FUZZ_ASSERT(nuses > 0);
	return 0;
}

/* What a valid verdict promises about field f's value v. */
static void
check_val(const struct dc_field *f, const struct dc_val *v)
{
	const char *const *c;
	size_t	 n;

	if ((f->flags & DC_F_REQUIRED) != 0)
		FUZZ_ASSERT(v->set);
	if (v->null) {
		FUZZ_ASSERT((f->flags & DC_F_NULLABLE) != 0 || !v->set);
		return;
	}
	switch (f->type) {
	case DC_FT_STR:
		FUZZ_ASSERT(v->s != NULL);
		if (f->max_length > 0)
			FUZZ_ASSERT(v->slen <= (size_t)f->max_length);
		/* min_length counts characters: at least as many bytes */
		FUZZ_ASSERT(v->slen >= (size_t)f->min_length);
		break;
	case DC_FT_LITERAL:
		FUZZ_ASSERT(v->s != NULL && f->choices != NULL);
		for (c = f->choices; *c != NULL; c++)
			if (strlen(*c) == v->slen &&
			    memcmp(*c, v->s, v->slen) == 0)
				break;
		FUZZ_ASSERT(*c != NULL);
		break;
	case DC_FT_INT:
		if ((f->flags & DC_F_GE) != 0)
			FUZZ_ASSERT(v->i >= f->ge);
		if ((f->flags & DC_F_GT) != 0)
			FUZZ_ASSERT(v->i > f->ge);
		if ((f->flags & DC_F_LE) != 0)
			FUZZ_ASSERT(v->i <= f->le);
		break;
	case DC_FT_BOOL:
		FUZZ_ASSERT(v->i == 0 || v->i == 1);
		break;
	case DC_FT_UUID:
	case DC_FT_DATETIME:
		FUZZ_ASSERT(v->s != NULL);
		break;
	default:
		break;
	}
	(void)n;
}

/* The 422 reply as http.c writes it, read back strictly. */
static void
check_detail(struct json_object *errs, int n, const char *where)
{
	struct json_object *o, *back, *d, *e, *x, *loc;
	struct json_tokener *tok;
	const char *s;
	size_t	 len;
	int	 i;

	o = json_object_new_object();
	FUZZ_ASSERT(o != NULL);
	json_object_object_add(o, "detail", json_object_get(errs));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	FUZZ_ASSERT(s != NULL && strlen(s) == len);
	FUZZ_ASSERT(dc_pyjson_utf8_ok(s, len));
	tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	FUZZ_ASSERT(tok != NULL);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, s, (int)len);
	FUZZ_ASSERT(json_tokener_get_error(tok) == json_tokener_success);
	FUZZ_ASSERT(json_tokener_get_parse_end(tok) == len);
	json_tokener_free(tok);
	FUZZ_ASSERT(json_object_object_get_ex(back, "detail", &d));
	FUZZ_ASSERT(json_object_is_type(d, json_type_array));
	FUZZ_ASSERT((int)json_object_array_length(d) == n);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(d, (size_t)i);
		FUZZ_ASSERT(json_object_is_type(e, json_type_object));
		FUZZ_ASSERT(json_object_object_get_ex(e, "type", &x) &&
		    json_object_is_type(x, json_type_string) &&
		    json_object_get_string_len(x) > 0);
		FUZZ_ASSERT(json_object_object_get_ex(e, "msg", &x) &&
		    json_object_is_type(x, json_type_string) &&
		    json_object_get_string_len(x) > 0);
		FUZZ_ASSERT(json_object_object_get_ex(e, "loc", &loc) &&
		    json_object_is_type(loc, json_type_array) &&
		    json_object_array_length(loc) >= 1);
		x = json_object_array_get_idx(loc, 0);
		FUZZ_ASSERT(json_object_is_type(x, json_type_string) &&
		    strcmp(json_object_get_string(x), where) == 0);
		FUZZ_ASSERT(json_object_object_get_ex(e, "input", &x));
	}
	json_object_put(back);
	json_object_put(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dc_model_use *u;
	const struct dc_model *m;
	struct dc_val vals[DC_MODEL_MAX_FIELDS];
	struct json_tokener *tok;
	struct json_object *o = NULL, *errs;
	const char *body;
	size_t	 len, end;
	int	 n, i;

	if (size < 1)
		return 0;
	u = uses[data[0] % nuses];
	m = u->model;
	body = (const char *)data + 1;
	len = size - 1;
	if (!dc_pyjson_utf8_ok(body, len))
		return 0;		/* 400 before any model */
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (len > 0) {
		tok = json_tokener_new_ex(JSON_MAX_DEPTH);
		FUZZ_ASSERT(tok != NULL);
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		o = json_tokener_parse_ex(tok, body, (int)len);
		end = json_tokener_get_parse_end(tok);
		while (end < len && (body[end] == ' ' || body[end] == '\t' ||
		    body[end] == '\r' || body[end] == '\n'))
			end++;
		if (json_tokener_get_error(tok) != json_tokener_success ||
		    end != len) {
			json_tokener_free(tok);
			json_object_put(o);
			return 0;	/* 422 json_invalid, no model */
		}
		json_tokener_free(tok);
	}
	if (o == NULL && (o = json_object_new_object()) == NULL)
		abort();		/* absent: every field at its default */
	errs = json_object_new_array();
	FUZZ_ASSERT(errs != NULL);
	memset(vals, 0xa5, sizeof(vals));
	n = dc_model_validate(m, o, u->where, vals, errs);
	FUZZ_ASSERT(n >= 0);
	FUZZ_ASSERT((size_t)n == json_object_array_length(errs));
	if (n == 0)
		for (i = 0; m->fields[i].name != NULL; i++)
			check_val(&m->fields[i], &vals[i]);
	else
		check_detail(errs, n, u->where);
	json_object_put(errs);
	json_object_put(o);
	return 0;
}
