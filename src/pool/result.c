/*
 * result.c - a query's rows as JSON (see result.h).
 *
 * Every value arrives as the engine's text; the column's neutral type
 * (rows.h) says what the text means.  Numbers keep the server's own
 * spelling (json_object_new_double_s), so numeric(30,10) and float8's
 * shortest round-trip form reach the client digit for digit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "jsonw.h"
#include "pool.h"
#include "driver.h"
#include "result.h"
#include "rows.h"

#define JSON_VALUE_DEPTH	64

/* 1 when s is a number JSON accepts (RFC 8259: no NaN, no leading +). */
static int
json_number_ok(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return 0;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static struct json_object *
json_value(const char *s, int len)
{
	struct json_tokener *tok = json_tokener_new_ex(JSON_VALUE_DEPTH);
	struct json_object *o = NULL;

	if (tok == NULL)
		return json_object_new_string_len(s, len);
	/*
	 * Include the terminating NUL (every cell has one, rows.h): a
	 * top-level scalar such as 5 or null only ends at the end of input.
	 */
	o = json_tokener_parse_ex(tok, s, len + 1);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != (size_t)len) {
		if (o != NULL)
			json_object_put(o);
		o = json_object_new_string_len(s, len);
	} else if (o == NULL)
		o = json_object_new_null();	/* the JSON value null */
	json_tokener_free(tok);
	return o;
}

/* What a field is as JSON, by its column's type and its text. */
enum value_kind {
	V_NULL,
	V_INTEGER,		/* the text is a JSON integer */
	V_NUMBER,		/* the text is a JSON number */
	V_BOOL,
	V_JSON,			/* json or jsonb: to be parsed */
	V_STRING,
};

static enum value_kind
value_kind(const struct dc_rows *res, int row, int col, const char **s,
    int *len)
{
	const struct dc_cell *cell = dc_rows_cell(res, row, col);
	char *end;

	if (cell->v == NULL)
		return V_NULL;
	*s = cell->v;
	*len = (int)cell->len;
	switch (res->cols[col].type) {
	case DC_VT_INT:
		(void)strtoll(*s, &end, 10);
		if (end != *s && *end == '\0' && json_number_ok(*s))
			return V_INTEGER;
		break;
	case DC_VT_FLOAT:
	case DC_VT_DECIMAL:
		if (json_number_ok(*s))
			return V_NUMBER;
		break;		/* NaN, Infinity, -Infinity */
	case DC_VT_BOOL:
		return V_BOOL;
	case DC_VT_JSON:
		return V_JSON;
	default:
		break;
	}
	return V_STRING;
}

/* A DC_VT_BOOL cell's value: "t", "true" and "1" are true. */
static int
bool_value(const char *s)
{
	return s[0] == 't' || s[0] == 'T' || s[0] == '1';
}

struct json_object *
dc_result_value(const struct dc_rows *res, int row, int col)
{
	const char *s = NULL;
	int len = 0;

	switch (value_kind(res, row, col, &s, &len)) {
	case V_NULL:
		return NULL;
	case V_INTEGER:
		return json_object_new_int64(strtoll(s, NULL, 10));
	case V_NUMBER:
		return json_object_new_double_s(strtod(s, NULL), s);
	case V_BOOL:
		return json_object_new_boolean(bool_value(s));
	case V_JSON:
		return json_value(s, len);
	default:
		return json_object_new_string_len(s, len);
	}
}

void
dc_result_write_value(struct dc_jw *w, const struct dc_rows *res, int row,
    int col)
{
	struct json_object *o;
	const char *s = NULL;
	int len = 0;

	switch (value_kind(res, row, col, &s, &len)) {
	case V_NULL:
		dc_jw_null(w);
		break;
	case V_INTEGER:
	case V_NUMBER:
		dc_jw_raw(w, s, (size_t)len);	/* the server's own spelling */
		break;
	case V_BOOL:
		dc_jw_bool(w, bool_value(s));
		break;
	case V_JSON:
		/* parsed and written again: only JSON json-c accepts */
		o = json_value(s, len);
		dc_jw_json(w, o);
		json_object_put(o);
		break;
	default:
		dc_jw_string_len(w, s, (size_t)len);
		break;
	}
}

void
dc_result_write_columnar(struct dc_jw *w, const struct dc_rows *res,
    const struct dc_result_cols *cols, int nrows)
{
	int i, row;

	dc_jw_object(w);
	for (i = 0; i < cols->n; i++) {
		dc_jw_key(w, cols->names[i]);
		dc_jw_array(w);
		for (row = 0; row < nrows; row++)
			dc_result_write_value(w, res, row, i);
		dc_jw_array_end(w);
	}
	dc_jw_object_end(w);
}

int
dc_result_cols(const struct dc_rows *res, struct dc_result_cols *out)
{
	int i, k, n = res->ncols, suffix;
	const char *name;
	char buf[128];

	out->n = 0;
	out->names = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
	if (out->names == NULL)
		return DC_ENOMEM;
	for (i = 0; i < n; i++) {
		name = res->cols[i].name;
		if (name == NULL || *name == '\0')
			name = "?column?";
		dc_strlcpy(buf, name, sizeof(buf));
		/* a name seen before gets the first free _N suffix */
		for (suffix = 2;; suffix++) {
			for (k = 0; k < i; k++)
				if (strcmp(out->names[k], buf) == 0)
					break;
			if (k == i)
				break;
			snprintf(buf, sizeof(buf), "%.100s_%d", name, suffix);
		}
		if ((out->names[i] = strdup(buf)) == NULL) {
			out->n = i;
			dc_result_cols_free(out);
			return DC_ENOMEM;
		}
		out->n = i + 1;
	}
	return DC_OK;
}

void
dc_result_cols_free(struct dc_result_cols *cols)
{
	int i;

	for (i = 0; i < cols->n; i++)
		free(cols->names[i]);
	free(cols->names);
	cols->names = NULL;
	cols->n = 0;
}

int
dc_result_nrows(const struct dc_rows *res, int max_rows)
{
	int n = res->nrows;

	return max_rows > 0 && n > max_rows ? max_rows : n;
}

struct json_object *
dc_result_columns(const struct dc_rows *res)
{
	struct dc_result_cols cols;
	struct json_object *a;
	int i;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	a = json_object_new_array_ext(cols.n);
	for (i = 0; a != NULL && i < cols.n; i++)
		json_object_array_add(a, json_object_new_string(cols.names[i]));
	dc_result_cols_free(&cols);
	return a;
}

struct json_object *
dc_result_columnar(const struct dc_rows *res, int nrows)
{
	struct dc_result_cols cols;
	struct json_object *o, *a;
	int i, row;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	o = json_object_new_object();
	for (i = 0; o != NULL && i < cols.n; i++) {
		a = json_object_new_array_ext(nrows);
		if (a == NULL) {
			json_object_put(o);
			o = NULL;
			break;
		}
		for (row = 0; row < nrows; row++)
			json_object_array_add(a, dc_result_value(res, row, i));
		json_object_object_add(o, cols.names[i], a);
	}
	dc_result_cols_free(&cols);
	return o;
}

struct json_object *
dc_result_rows(const struct dc_rows *res, int nrows)
{
	struct dc_result_cols cols;
	struct json_object *a, *o;
	int i, row;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	a = json_object_new_array_ext(nrows);
	for (row = 0; a != NULL && row < nrows; row++) {
		o = json_object_new_object();
		if (o == NULL) {
			json_object_put(a);
			a = NULL;
			break;
		}
		for (i = 0; i < cols.n; i++)
			json_object_object_add(o, cols.names[i],
			    dc_result_value(res, row, i));
		json_object_array_add(a, o);
	}
	dc_result_cols_free(&cols);
	return a;
}

int
dc_result_failure(const struct dc_qresult *r, char *detail, size_t sz)
{
	const char *msg = r->error != NULL ? r->error : "unknown error";

	switch (r->status) {
	case DC_ERR:
	case DC_ETIMEOUT:
		return 0;
	case DC_EUNAVAIL:
		if (r->lost) {
			snprintf(detail, sz, "target database connection lost: "
			    "%s", msg);
			return 502;
		}
		snprintf(detail, sz, "target database unavailable: %s", msg);
		return 503;
	case DC_ENOENT:
		snprintf(detail, sz, "Database connection not found: it was "
		    "removed while the query waited");
		return 404;
	case DC_ENOMEM:
		snprintf(detail, sz, "out of memory");
		return 500;
	default:
		snprintf(detail, sz, "query failed: %s", msg);
		return 500;
	}
}

int
dc_result_submit_failure(int rc, char *detail, size_t sz)
{
	if (rc == DC_EFULL) {
		snprintf(detail, sz, "too many requests are waiting for this "
		    "target database; try again later");
		return 503;
	}
	if (rc == DC_EINVAL) {
		snprintf(detail, sz, "datachatd has no driver for this target's "
		    "database_type (it connects to %s targets)",
		    dc_driver_names());
		return 400;
	}
	snprintf(detail, sz, "cannot start the query: out of memory");
	return 500;
}
