/*
 * rows.c - a query's result in neutral form (see rows.h).
 *
 * Copied text goes into blocks that are only ever appended to, so a
 * cell's pointer stays valid while later rows arrive; the cell array
 * itself grows by doubling (cells hold pointers, not text, so moving
 * them moves nothing they point at).  A driver that already holds the
 * text in its own buffer (libpq's PGresult) adds rows by reference and
 * hands the buffer over with dc_rows_hold(), so the common one-row
 * answer is never copied.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "rows.h"

#define BLOCK_MIN	1024
#define BLOCK_MAX	(64 * 1024)

struct dc_rows_block {
	struct dc_rows_block *next;
	size_t		 size, used;
	char		 data[];
};

struct dc_rows_hold {
	struct dc_rows_hold *next;
	void		*obj;
	void		(*release)(void *);
};

struct dc_rows *
dc_rows_new(int ncols)
{
	struct dc_rows *r;

	assert(ncols >= 0);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->ncols = ncols;
	r->cols = calloc((size_t)(ncols > 0 ? ncols : 1), sizeof(*r->cols));
	if (r->cols == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
dc_rows_free(struct dc_rows *r)
{
	struct dc_rows_block *b;
	struct dc_rows_hold *h;

	if (r == NULL)
		return;
	while ((b = r->blocks) != NULL) {
		r->blocks = b->next;
		free(b);
	}
	while ((h = r->holds) != NULL) {
		r->holds = h->next;
		h->release(h->obj);
		free(h);
	}
	free(r->cells);
	free(r->cols);
	free(r);
}

char *
dc_rows_strdup(struct dc_rows *r, const char *s, size_t len)
{
	struct dc_rows_block *b = r->blocks;
	size_t size;
	char *p;

	if (b == NULL || b->size - b->used < len + 1) {
		/* blocks grow with the result, so a big one takes few */
		size = b != NULL ? b->size * 2 : BLOCK_MIN;
		if (size > BLOCK_MAX)
			size = BLOCK_MAX;
		if (size < len + 1)
			size = len + 1;
		if ((b = malloc(sizeof(*b) + size)) == NULL)
			return NULL;
		b->size = size;
		b->used = 0;
		b->next = r->blocks;
		r->blocks = b;
	}
	p = b->data + b->used;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	b->used += len + 1;
	return p;
}

int
dc_rows_set_col(struct dc_rows *r, int i, const char *name, int type)
{
	assert(i >= 0 && i < r->ncols);
	assert(type >= 0 && type < DC_VT_NTYPES);
	if (name == NULL)
		name = "";
	if ((r->cols[i].name = dc_rows_strdup(r, name, strlen(name))) == NULL)
		return DC_ENOMEM;
	r->cols[i].type = type;
	r->cols[i].flags = 0;
	return DC_OK;
}

void
dc_rows_set_flags(struct dc_rows *r, int i, unsigned flags)
{
	assert(i >= 0 && i < r->ncols);
	r->cols[i].flags = flags;
}

int
dc_rows_reserve(struct dc_rows *r, int n)
{
	struct dc_cell *cells;
	int cap;

	if (r->nrows + n <= r->cap)
		return DC_OK;
	cap = r->cap > 0 ? r->cap : 1;
	while (cap < r->nrows + n)
		cap *= 2;
	cells = realloc(r->cells, (size_t)cap * (size_t)(r->ncols > 0 ?
	    r->ncols : 1) * sizeof(*cells));
	if (cells == NULL)
		return DC_ENOMEM;
	r->cells = cells;
	r->cap = cap;
	return DC_OK;
}

void
dc_rows_budget(struct dc_rows *r, size_t max_bytes)
{
	r->max_bytes = max_bytes;
}

size_t
dc_rows_row_bytes(const struct dc_rows *r, const struct dc_cell *row)
{
	size_t n = 0;
	int i;

	for (i = 0; i < r->ncols; i++)
		if (row[i].v != NULL)
			n += row[i].len;
	return n;
}

/* Whether row fits what is left of the budget (checked before copying). */
static int
row_fits(const struct dc_rows *r, const struct dc_cell *row)
{
	assert(r->max_bytes == 0 || r->bytes <= r->max_bytes);
	return r->max_bytes == 0 ||
	    dc_rows_row_bytes(r, row) <= r->max_bytes - r->bytes;
}

int
dc_rows_add_ref(struct dc_rows *r, const struct dc_cell *row)
{
	struct dc_cell *to;
	int i;

	if (!row_fits(r, row))
		return DC_EFULL;
	if (dc_rows_reserve(r, 1) != DC_OK)
		return DC_ENOMEM;
	to = &r->cells[(size_t)r->nrows * (size_t)r->ncols];
	for (i = 0; i < r->ncols; i++) {
		assert(row[i].v == NULL || row[i].v[row[i].len] == '\0');
		to[i] = row[i];
		r->bytes += row[i].len;
	}
	r->nrows++;
	return DC_OK;
}

int
dc_rows_add(struct dc_rows *r, const struct dc_cell *row)
{
	struct dc_cell *to;
	int i;

	if (!row_fits(r, row))
		return DC_EFULL;
	if (dc_rows_reserve(r, 1) != DC_OK)
		return DC_ENOMEM;
	to = &r->cells[(size_t)r->nrows * (size_t)r->ncols];
	for (i = 0; i < r->ncols; i++) {
		to[i].len = row[i].len;
		to[i].v = NULL;
		if (row[i].v == NULL)
			continue;
		if ((to[i].v = dc_rows_strdup(r, row[i].v, row[i].len)) == NULL)
			return DC_ENOMEM;	/* the row is not counted */
		r->bytes += row[i].len;
	}
	r->nrows++;
	return DC_OK;
}

int
dc_rows_hold(struct dc_rows *r, void *obj, void (*release)(void *))
{
	struct dc_rows_hold *h = malloc(sizeof(*h));

	if (h == NULL) {
		release(obj);
		return DC_ENOMEM;
	}
	h->obj = obj;
	h->release = release;
	h->next = r->holds;
	r->holds = h;
	return DC_OK;
}
