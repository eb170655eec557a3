/*
 * schema.c - snapshots of a target's catalog (see schema.h); the
 * per-worker cache that keeps them is catalog.c's.
 *
 * Each dialect's catalog query (driver.h) returns one row per column, or
 * one row per table when columns are not asked for, already sorted, in
 * the same ten columns whatever the engine, so building a snapshot is
 * one pass.
 */
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "jsonw.h"
#include "rows.h"
#include "schema.h"
#include "util.h"

enum {
	F_SCHEMA, F_TABLE, F_TYPE, F_ROWS, F_COLUMN, F_DATATYPE, F_NULLABLE,
	F_PK, F_FTABLE, F_FCOLUMN, F_COUNT
};

/* The text of a cell, "" for NULL. */
static const char *
field(const struct dc_rows *res, int row, int col)
{
	const char *v = dc_rows_cell(res, row, col)->v;

	return v != NULL ? v : "";
}

static int
field_null(const struct dc_rows *res, int row, int col)
{
	return dc_rows_cell(res, row, col)->v == NULL;
}

/* A flag column: "t", "true" or "1" (engines spell booleans their way). */
static int
field_true(const struct dc_rows *res, int row, int col)
{
	const char *v = field(res, row, col);

	return v[0] == 't' || v[0] == 'T' || v[0] == '1';
}

static char *
field_dup(const struct dc_rows *res, int row, int col)
{
	if (field_null(res, row, col))
		return NULL;
	return strdup(field(res, row, col));
}

static int
same_table(const struct dc_rows *res, int a, int b)
{
	return strcmp(field(res, a, F_SCHEMA), field(res, b, F_SCHEMA)) == 0 &&
	    strcmp(field(res, a, F_TABLE), field(res, b, F_TABLE)) == 0;
}

static int
parse_table(const struct dc_rows *res, int first, int last,
    struct dc_schema_table *t)
{
	struct dc_schema_column *c;
	int row;

	t->schema = field_dup(res, first, F_SCHEMA);
	t->name = field_dup(res, first, F_TABLE);
	t->table_type = field_dup(res, first, F_TYPE);
	t->row_count = field_null(res, first, F_ROWS) ? -1 :
	    strtoll(field(res, first, F_ROWS), NULL, 10);
	if (t->schema == NULL || t->name == NULL || t->table_type == NULL)
		return DC_ENOMEM;
	t->cols = calloc((size_t)(last - first), sizeof(*t->cols));
	if (t->cols == NULL)
		return DC_ENOMEM;
	for (row = first; row < last; row++) {
		if (field_null(res, row, F_COLUMN))
			continue;	/* tables only, or a table without columns */
		c = &t->cols[t->ncols++];
		c->name = field_dup(res, row, F_COLUMN);
		c->data_type = field_dup(res, row, F_DATATYPE);
		c->nullable = field_true(res, row, F_NULLABLE);
		c->is_pk = field_true(res, row, F_PK);
		c->is_fk = !field_null(res, row, F_FTABLE);
		c->foreign_table = field_dup(res, row, F_FTABLE);
		c->foreign_column = field_dup(res, row, F_FCOLUMN);
		if (c->name == NULL || c->data_type == NULL ||
		    (c->is_fk && (c->foreign_table == NULL ||
		    c->foreign_column == NULL)))
			return DC_ENOMEM;
	}
	return DC_OK;
}

int
dc_schema_parse(const struct dc_rows *res, struct dc_schema **out)
{
	struct dc_schema *s;
	int n = res->nrows, row, first, k = 0;

	*out = NULL;
	if (res->ncols != F_COUNT)
		return DC_EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DC_ENOMEM;
	s->fetched_at = (int64_t)dc_wall_ms() * 1000;
	for (row = 0; row < n; row++)
		if (row == 0 || !same_table(res, row - 1, row))
			s->ntables++;
	s->tables = calloc((size_t)(s->ntables > 0 ? s->ntables : 1),
	    sizeof(*s->tables));
	if (s->tables == NULL)
		goto fail;
	for (first = 0; first < n; first = row) {
		for (row = first + 1; row < n && same_table(res, first, row);
		    row++)
			;
		if (parse_table(res, first, row, &s->tables[k++]) != DC_OK)
			goto fail;
	}
	*out = s;
	return DC_OK;
fail:
	s->ntables = k;
	dc_schema_free(s);
	return DC_ENOMEM;
}

void
dc_schema_free(struct dc_schema *s)
{
	struct dc_schema_table *t;
	int i, k;

	if (s == NULL)
		return;
	for (i = 0; s->tables != NULL && i < s->ntables; i++) {
		t = &s->tables[i];
		for (k = 0; t->cols != NULL && k < t->ncols; k++) {
			free(t->cols[k].name);
			free(t->cols[k].data_type);
			free(t->cols[k].foreign_table);
			free(t->cols[k].foreign_column);
		}
		free(t->cols);
		free(t->schema);
		free(t->name);
		free(t->table_type);
	}
	free(s->tables);
	free(s);
}

struct json_object *
dc_schema_table_json(const struct dc_schema_table *t)
{
	struct dc_jb b = { 0 };
	struct json_object *o = json_object_new_object(), *cols, *c;
	int i;

	cols = json_object_new_array_ext(t->ncols);
	dc_jb_str(&b, o, "schema_name", t->schema);
	dc_jb_str(&b, o, "table_name", t->name);
	if (t->row_count >= 0)
		dc_jb_add(&b, o, "row_count", json_object_new_int64(t->row_count));
	else
		dc_jb_null(&b, o, "row_count");
	dc_jb_str(&b, o, "table_type", t->table_type);
	for (i = 0; cols != NULL && !b.failed && i < t->ncols; i++) {
		const struct dc_schema_column *col = &t->cols[i];

		c = json_object_new_object();
		dc_jb_str(&b, c, "name", col->name);
		dc_jb_str(&b, c, "data_type", col->data_type);
		dc_jb_add(&b, c, "is_nullable",
		    json_object_new_boolean(col->nullable));
		dc_jb_add(&b, c, "is_primary_key",
		    json_object_new_boolean(col->is_pk));
		dc_jb_add(&b, c, "is_foreign_key",
		    json_object_new_boolean(col->is_fk));
		dc_jb_str(&b, c, "foreign_table", col->foreign_table);
		dc_jb_str(&b, c, "foreign_column",
		    col->foreign_column);
		dc_jb_push(&b, cols, c);
	}
	dc_jb_add(&b, o, "columns", cols);
	return dc_jb_done(&b, o);
}
