/*
 * jsonw.c - JSON text written straight into a buffer (see jsonw.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

#define JW_MIN	2048

void
dc_jw_init(struct dc_jw *w)
{
	memset(w, 0, sizeof(*w));
}

void
dc_jw_free(struct dc_jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Grow to hold n more bytes and a NUL, or err. */
static int
grow(struct dc_jw *w, size_t n)
{
	size_t cap;
	char *p;

	if (w->err)
		return -1;
	for (cap = w->cap > 0 ? w->cap : JW_MIN; cap < w->len + n + 1; cap *= 2)
		;
	if ((p = realloc(w->buf, cap)) == NULL) {
		w->err = 1;
		return -1;
	}
	w->buf = p;
	w->cap = cap;
	return 0;
}

/* Room for n more bytes (and a NUL), or err. */
static inline int
reserve(struct dc_jw *w, size_t n)
{
	if (w->len + n + 1 <= w->cap && !w->err)
		return 0;
	return grow(w, n);
}

static void
put(struct dc_jw *w, const char *s, size_t n)
{
	if (reserve(w, n) != 0)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
put_char(struct dc_jw *w, char c)
{
	if (reserve(w, 1) != 0)
		return;
	w->buf[w->len++] = c;
	w->buf[w->len] = '\0';
}

/* The comma before a value or key, unless it is the first or a key's. */
static void
separate(struct dc_jw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth == 0)
		return;
	if (w->count[w->depth - 1])
		put_char(w, ',');
	w->count[w->depth - 1] = 1;
}

static void
open_level(struct dc_jw *w, char c)
{
	separate(w);
	if (w->depth >= DC_JW_DEPTH) {
		w->err = 1;
		return;
	}
	put_char(w, c);
	w->count[w->depth++] = 0;
}

static void
close_level(struct dc_jw *w, char c)
{
	if (w->depth == 0) {
		w->err = 1;
		return;
	}
	w->depth--;
	put_char(w, c);
}

void
dc_jw_object(struct dc_jw *w)
{
	open_level(w, '{');
}

void
dc_jw_object_end(struct dc_jw *w)
{
	close_level(w, '}');
}

void
dc_jw_array(struct dc_jw *w)
{
	open_level(w, '[');
}

void
dc_jw_array_end(struct dc_jw *w)
{
	close_level(w, ']');
}

/*
 * "s", escaped, into room reserved once for the worst case (every byte
 * a six-byte \u escape); runs of plain bytes are copied whole.
 */
static void
put_string(struct dc_jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, run = 0;
	char *d;

	if (n > ((size_t)-1 - 3) / 6 || reserve(w, n * 6 + 2) != 0) {
		w->err = 1;
		return;
	}
	d = w->buf + w->len;
	*d++ = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		memcpy(d, s + run, i - run);
		d += i - run;
		run = i + 1;
		*d++ = '\\';
		switch (c) {
		case '"':  *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '\b': *d++ = 'b'; break;
		case '\f': *d++ = 'f'; break;
		case '\n': *d++ = 'n'; break;
		case '\r': *d++ = 'r'; break;
		case '\t': *d++ = 't'; break;
		default:
			memcpy(d, "u00", 3);
			d[3] = hex[c >> 4];
			d[4] = hex[c & 0xf];
			d += 5;
			break;
		}
	}
	memcpy(d, s + run, n - run);
	d += n - run;
	*d++ = '"';
	*d = '\0';
	w->len = (size_t)(d - w->buf);
}

void
dc_jw_key(struct dc_jw *w, const char *key)
{
	separate(w);
	put_string(w, key, strlen(key));
	put_char(w, ':');
	w->after_key = 1;
}

void
dc_jw_string(struct dc_jw *w, const char *s)
{
	if (s == NULL)
		dc_jw_null(w);
	else
		dc_jw_string_len(w, s, strlen(s));
}

void
dc_jw_string_len(struct dc_jw *w, const char *s, size_t n)
{
	separate(w);
	put_string(w, s, n);
}

void
dc_jw_int(struct dc_jw *w, long long v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	dc_jw_raw(w, p, (size_t)(buf + sizeof(buf) - p));
}

void
dc_jw_bool(struct dc_jw *w, int v)
{
	dc_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void
dc_jw_null(struct dc_jw *w)
{
	dc_jw_raw(w, "null", 4);
}

void
dc_jw_raw(struct dc_jw *w, const char *s, size_t n)
{
	separate(w);
	put(w, s, n);
}

/*
 * A number as json-c writes it (its own format, or the text it was made
 * from).  json-c appends a number to the value's fresh print buffer in
 * one step, so what comes back is all of it or, out of memory, nothing.
 */
static void
put_number(struct dc_jw *w, struct json_object *o)
{
	const char *s;
	size_t n;

	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	if (s == NULL || n == 0) {
		w->err = 1;
		return;
	}
	dc_jw_raw(w, s, n);
}

/*
 * The tree is walked here rather than printed by json-c, whose printer
 * (0.16) ignores a failed append and goes on: out of memory, it returns
 * text with pieces missing.  Written here, a failure sets err.
 */
void
dc_jw_json(struct dc_jw *w, struct json_object *o)
{
	size_t i, n;
	int64_t v;

	switch (json_object_get_type(o)) {
	case json_type_null:
		dc_jw_null(w);
		break;
	case json_type_boolean:
		dc_jw_bool(w, json_object_get_boolean(o));
		break;
	case json_type_int:
		/* INT64_MAX may be a larger unsigned value: json-c knows */
		if ((v = json_object_get_int64(o)) != INT64_MAX)
			dc_jw_int(w, v);
		else
			put_number(w, o);
		break;
	case json_type_double:
		put_number(w, o);
		break;
	case json_type_string:
		dc_jw_string_len(w, json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		dc_jw_array(w);
		n = json_object_array_length(o);
		for (i = 0; i < n && !w->err; i++)
			dc_jw_json(w, json_object_array_get_idx(o, i));
		dc_jw_array_end(w);
		break;
	case json_type_object:
		dc_jw_object(w);
		json_object_object_foreach(o, key, val) {
			if (w->err)
				break;
			dc_jw_key(w, key);
			dc_jw_json(w, val);
		}
		dc_jw_object_end(w);
		break;
	}
}

char *
dc_jw_text(struct json_object *o, size_t *len)
{
	struct dc_jw w;

	dc_jw_init(&w);
	dc_jw_json(&w, o);
	if (w.err) {
		dc_jw_free(&w);
		return NULL;
	}
	if (len != NULL)
		*len = w.len;
	return w.buf;	/* never NULL: a value is at least "null" */
}

/* --- json-c trees under the out-of-memory policy --- */

void
dc_jb_add(struct dc_jb *b, struct json_object *obj, const char *key,
    struct json_object *val)
{
	if (obj == NULL || val == NULL ||
	    json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);	/* not taken on failure */
		b->failed = 1;
	}
}

void
dc_jb_null(struct dc_jb *b, struct json_object *obj, const char *key)
{
	if (obj == NULL || json_object_object_add(obj, key, NULL) != 0)
		b->failed = 1;
}

void
dc_jb_str(struct dc_jb *b, struct json_object *obj, const char *key,
    const char *s)
{
	if (s == NULL)
		dc_jb_null(b, obj, key);
	else
		dc_jb_add(b, obj, key, json_object_new_string(s));
}

void
dc_jb_push(struct dc_jb *b, struct json_object *arr, struct json_object *val)
{
	if (arr == NULL || val == NULL || json_object_array_add(arr, val) != 0) {
		json_object_put(val);
		b->failed = 1;
	}
}

struct json_object *
dc_jb_done(struct dc_jb *b, struct json_object *obj)
{
	if (b->failed || obj == NULL) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}
