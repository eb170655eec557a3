/*
 * jsonw.h - JSON text written straight into a buffer.
 *
 * json-c builds a tree (an object, a hash table and an entry array per
 * JSON object, an allocation per value) that a reply then serialises and
 * frees.  For the replies on the query path that tree cost more than the
 * rest of the request; these calls append the text directly, with the
 * commas where they belong.  A value in an object follows its key; the
 * first allocation failure makes the writer fail (err) and ignore the
 * rest.  Strings are escaped as json-c does (without escaping '/').
 */
#ifndef DC_JSONW_H
#define DC_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define DC_JW_DEPTH	64

struct dc_jw {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	int		 err;		/* out of memory: buf is incomplete */
	int		 depth;
	int		 after_key;	/* the next value is a key's */
	unsigned char	 count[DC_JW_DEPTH];	/* values so far, capped at 1 */
};

void		 dc_jw_init(struct dc_jw *w);
void		 dc_jw_free(struct dc_jw *w);

void		 dc_jw_object(struct dc_jw *w);		/* { */
void		 dc_jw_object_end(struct dc_jw *w);	/* } */
void		 dc_jw_array(struct dc_jw *w);		/* [ */
void		 dc_jw_array_end(struct dc_jw *w);	/* ] */
void		 dc_jw_key(struct dc_jw *w, const char *key);

void		 dc_jw_string(struct dc_jw *w, const char *s);	/* NULL: null */
void		 dc_jw_string_len(struct dc_jw *w, const char *s, size_t n);
void		 dc_jw_int(struct dc_jw *w, long long v);
void		 dc_jw_bool(struct dc_jw *w, int v);
void		 dc_jw_null(struct dc_jw *w);
/* A JSON value's text as it is (a number as the server spelt it). */
void		 dc_jw_raw(struct dc_jw *w, const char *s, size_t n);
/* A json-c value (NULL: null). */
void		 dc_jw_json(struct dc_jw *w, struct json_object *o);

/*
 * The text of a json-c value as dc_jw_json writes it, malloc'ed (its
 * length in *len unless len is NULL), or NULL when out of memory: what
 * json-c's own printer cannot say (see jsonw.c).
 */
char		*dc_jw_text(struct json_object *o, size_t *len);

/*
 * Building a json-c tree under the out-of-memory policy (dc.h).  Each
 * call adds val to obj (or arr) when both exist and the add succeeds;
 * otherwise it drops val and marks the build failed.  A NULL val is a
 * constructor that failed, so a JSON null is added with dc_jb_null.  The
 * builder checks once, at the end: dc_jb_done returns obj, or NULL after
 * dropping it when anything failed.
 */
struct dc_jb {
	int		 failed;
};

void		 dc_jb_add(struct dc_jb *b, struct json_object *obj,
		     const char *key, struct json_object *val);
void		 dc_jb_null(struct dc_jb *b, struct json_object *obj,
		     const char *key);
/* s as a JSON string, or null when s is NULL. */
void		 dc_jb_str(struct dc_jb *b, struct json_object *obj,
		     const char *key, const char *s);
void		 dc_jb_push(struct dc_jb *b, struct json_object *arr,
		     struct json_object *val);
struct json_object *dc_jb_done(struct dc_jb *b, struct json_object *obj);

#endif /* DC_JSONW_H */
