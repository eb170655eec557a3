/*
 * model.c - request validation from declarative field tables (model.h).
 *
 * This is the part of pydantic 2 (as FastAPI 0.128 calls it:
 * validate_python on what json.loads made, from_attributes on) that
 * DataChat's models use: str with min_length, bool, int with bounds,
 * float, Literal, dict, list[str], list[dict], a list of sub-models, UUID
 * and datetime, each optionally nullable, with defaults.  The coercions
 * are pydantic's lax mode, no more and no less: a bool accepts 0, 1 and
 * the words "true", "yes", "on", "1", "t", "y" (and their opposites) in
 * any case; an int accepts an integral float and a numeric string; a str
 * accepts only a string.  Errors carry pydantic's type names and
 * messages, in field order, every field checked (not the first only).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dc.h"
#include "jsonw.h"
#include "model.h"
#include "util.h"

int
dc_model_nfields(const struct dc_model *m)
{
	int n = 0;

	while (m->fields[n].name != NULL)
		n++;
	assert(n <= DC_MODEL_MAX_FIELDS);
	return n;
}

int
dc_model_field(const struct dc_model *m, const char *name)
{
	int i;

	for (i = 0; m->fields[i].name != NULL; i++)
		if (strcmp(m->fields[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * Where a value sits (["body", "tags", 0]), kept as a chain on the stack
 * while validating and made into JSON only for an error: a valid request
 * allocates nothing for it.
 */
struct lpath {
	const struct lpath *up;
	const char	*key;		/* or NULL: idx */
	size_t		 idx;
};

static void
lpath_add(struct dc_jb *b, struct json_object *arr, const struct lpath *p)
{
	if (p->up != NULL)
		lpath_add(b, arr, p->up);
	dc_jb_push(b, arr, p->key != NULL ? json_object_new_string(p->key) :
	    json_object_new_int64((int64_t)p->idx));
}

static struct json_object *
lpath_json(const struct lpath *p)
{
	struct json_object *arr = json_object_new_array();
	struct dc_jb b = { 0 };

	lpath_add(&b, arr, p);
	return dc_jb_done(&b, arr);
}

int
dc_model_error(struct json_object *errs, const char *type,
    struct json_object *loc, const char *msg, struct json_object *input,
    struct json_object *ctx)
{
	struct json_object *e = json_object_new_object();
	struct dc_jb b = { 0 };

	dc_jb_add(&b, e, "type", json_object_new_string(type));
	dc_jb_add(&b, e, "loc", loc);
	dc_jb_add(&b, e, "msg", json_object_new_string(msg));
	if (input != NULL)
		dc_jb_add(&b, e, "input", json_object_get(input));
	else
		dc_jb_null(&b, e, "input");
	if (ctx != NULL)
		dc_jb_add(&b, e, "ctx", ctx);
	if ((e = dc_jb_done(&b, e)) == NULL)
		return -1;
	dc_jb_push(&b, errs, e);
	return b.failed ? -1 : 1;
}

int
dc_model_missing_body(struct json_object *errs)
{
	struct json_object *loc = json_object_new_array();
	struct dc_jb b = { 0 };

	dc_jb_push(&b, loc, json_object_new_string("body"));
	if ((loc = dc_jb_done(&b, loc)) == NULL)
		return -1;
	return dc_model_error(errs, "missing", loc, "Field required", NULL,
	    NULL);
}

/* Characters, as Python's len() counts them. */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* pydantic's str_as_bool: no trimming, these words in any case. */
static int
str_bool(const char *s, int *out)
{
	static const char *const no[] = { "0", "off", "f", "false", "n", "no" };
	static const char *const yes[] = { "1", "on", "t", "true", "y", "yes" };
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 1;
		}
	for (i = 0; i < DC_ARRAY_SIZE(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 1;
		}
	return 0;
}

/* An integer from a string: whitespace around, a sign, digits, ".0". */
static int
str_int(const char *s, int64_t *out)
{
	const char *p = s, *d;
	int neg = 0;
	uint64_t v = 0;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	for (d = p; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == d)
		return 0;
	if (*p == '.') {
		for (p++; *p == '0'; p++)
			;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '\0' || v > (uint64_t)INT64_MAX)
		return 0;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 1;
}

/* 'a', 'b' or 'c', as pydantic lists a Literal's choices. */
static void
expected_list(const char *const *c, char *buf, size_t sz)
{
	size_t o = 0, n, i;

	for (n = 0; c[n] != NULL; n++)
		;
	buf[0] = '\0';
	for (i = 0; i < n && o < sz; i++)
		o += (size_t)snprintf(buf + o, sz - o, "%s'%s'",
		    i == 0 ? "" : i == n - 1 ? " or " : ", ", c[i]);
}

/* --- UUIDs: pydantic's (the uuid crate's) parser and its errors --- */

static int
hex32(const char *h, uint8_t out[16])
{
	int i, a, b;

	for (i = 0; i < 16; i++) {
		if ((a = dc_hexval(h[2 * i])) < 0 ||
		    (b = dc_hexval(h[2 * i + 1])) < 0)
			return DC_EINVAL;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return DC_OK;
}

/*
 * The uuid crate's Uuid::parse_str: simple (32 hex), hyphenated, braced,
 * or urn:uuid:.  On failure, why gets the crate's error text.
 */
static int
uuid_strict(const char *s, uint8_t out[16], char *why, size_t whysz)
{
	static const size_t starts[5] = { 0, 9, 14, 19, 24 };
	static const size_t glen[5] = { 8, 4, 4, 4, 12 };
	size_t len = strlen(s), off = 0, n, i, bounds[4] = { 0 }, hy = 0;
	const char *u = s;
	char h[33];
	int simple = 1;

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		u = s + 1;
		n = len - 2;
		off = 1;
		simple = 0;
	} else if (len >= 9 && strncmp(s, "urn:uuid:", 9) == 0) {
		u = s + 9;
		n = len - 9;
		off = 9;
		simple = 0;
	} else
		n = len;
	if (n == 32 && simple) {
		memcpy(h, u, 32);
		h[32] = '\0';
		if (hex32(h, out) == DC_OK)
			return DC_OK;
	} else if (n == 36 && u[8] == '-' && u[13] == '-' && u[18] == '-' &&
	    u[23] == '-') {
		for (i = 0, hy = 0; i < 36; i++)
			if (u[i] != '-')
				h[hy++] = u[i];
		h[32] = '\0';
		if (hy == 32 && hex32(h, out) == DC_OK)
			return DC_OK;
	}
	/* what went wrong, in the crate's words */
	hy = 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];

		if (c >= 0x80) {
			snprintf(why, whysz, "invalid character: expected an "
			    "optional prefix of `urn:uuid:` followed by "
			    "[0-9a-fA-F-], found `%.*s` at %zu",
			    (int)((c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ?
			    3 : 4), u + i, utf8_chars(u, i) + off + 1);
			return DC_EINVAL;
		}
		if (c == '-') {
			if (hy < 4)
				bounds[hy] = i;
			hy++;
		} else if (dc_hexval(c) < 0) {
			snprintf(why, whysz, "invalid character: expected an "
			    "optional prefix of `urn:uuid:` followed by "
			    "[0-9a-fA-F-], found `%c` at %zu", c, i + off + 1);
			return DC_EINVAL;
		}
	}
	if (hy == 0 && simple)
		snprintf(why, whysz, "invalid length: expected length 32 for "
		    "simple format, found %zu", len);
	else if (hy != 4)
		snprintf(why, whysz, "invalid group count: expected 5, found "
		    "%zu", hy + 1);
	else {
		for (i = 0; i < 4; i++)
			if (bounds[i] != starts[i + 1] - 1) {
				snprintf(why, whysz, "invalid group length in "
				    "group %zu: expected %zu, found %zu", i,
				    glen[i], bounds[i] - starts[i]);
				return DC_EINVAL;
			}
		snprintf(why, whysz, "invalid group length in group 4: "
		    "expected 12, found %zu", n - starts[4]);
	}
	return DC_EINVAL;
}

int
dc_model_uuid_lax(const char *s, uint8_t out[16])
{
	char h[33];
	size_t n = 0;
	const char *p = s, *end = s + strlen(s);

	/* uuid.UUID(): drop "urn:" and "uuid:", braces at the ends, dashes */
	if (strncmp(p, "urn:", 4) == 0)
		p += 4;
	if (strncmp(p, "uuid:", 5) == 0)
		p += 5;
	while (p < end && *p == '{')
		p++;
	while (end > p && end[-1] == '}')
		end--;
	for (; p < end; p++) {
		if (*p == '-')
			continue;
		if (n == 32)
			return DC_EINVAL;
		h[n++] = *p;
	}
	if (n != 32)
		return DC_EINVAL;
	h[32] = '\0';
	return hex32(h, out);
}

/* --- datetimes --- */

static int
digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * RFC 3339 / ISO 8601 as pydantic (speedate) reads it: a date, then
 * optionally T (or t, _, space), HH:MM[:SS[.ffffff]] and Z or +-HH[:]MM.
 * A date alone is midnight.  A time without an offset is taken as UTC,
 * which is what the system database stores it as.  why gets speedate's
 * words for the first thing wrong.
 */
static int
parse_datetime(const char *s, int64_t *usec, const char **why)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = 100000;
	size_t len = strlen(s);
	const char *p;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	if (len < 10) {
		*why = "input is too short";
		return DC_EINVAL;
	}
	if (!digits(s, 4, &y)) {
		*why = "invalid character in year";
		return DC_EINVAL;
	}
	if (s[4] != '-' || s[7] != '-') {
		*why = "invalid date separator, expected `-`";
		return DC_EINVAL;
	}
	if (!digits(s + 5, 2, &mo)) {
		*why = "invalid character in month";
		return DC_EINVAL;
	}
	if (!digits(s + 8, 2, &d)) {
		*why = "invalid character in day";
		return DC_EINVAL;
	}
	if (mo < 1 || mo > 12) {
		*why = "month value is outside expected range of 1-12";
		return DC_EINVAL;
	}
	if (d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 &&
	    !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))) {
		*why = "day value is outside expected range";
		return DC_EINVAL;
	}
	p = s + 10;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != '_' && *p != ' ') {
			*why = "invalid datetime separator, expected `T`, `t`, "
			    "`_` or space";
			return DC_EINVAL;
		}
		p++;
		if (strlen(p) < 5 || !digits(p, 2, &h) || p[2] != ':' ||
		    !digits(p + 3, 2, &mi)) {
			*why = strlen(p) < 5 ? "input is too short" :
			    "invalid character in hour";
			return DC_EINVAL;
		}
		p += 5;
		if (*p == ':') {
			if (!digits(p + 1, 2, &sec)) {
				*why = "invalid character in second";
				return DC_EINVAL;
			}
			p += 3;
			if (*p == '.' || *p == ',') {
				for (p++; *p >= '0' && *p <= '9'; p++) {
					if (scale > 0) {
						frac += (*p - '0') * scale;
						scale /= 10;
					}
				}
				if (scale == 100000) {
					*why = "second fraction value is more "
					    "than 6 digits long";
					return DC_EINVAL;
				}
			}
		}
		if (h > 23 || mi > 59 || sec > 59) {
			*why = h > 23 ? "hour value is outside expected range "
			    "of 0-23" : mi > 59 ? "minute value is outside "
			    "expected range of 0-59" : "second value is "
			    "outside expected range of 0-59";
			return DC_EINVAL;
		}
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-') {
			sign = *p == '-' ? -1 : 1;
			if (!digits(p + 1, 2, &oh)) {
				*why = "invalid timezone sign";
				return DC_EINVAL;
			}
			p += 3;
			if (*p == ':')
				p++;
			if (*p != '\0' && !digits(p, 2, &om)) {
				*why = "invalid timezone sign";
				return DC_EINVAL;
			}
			if (*p != '\0')
				p += 2;
		}
		if (*p != '\0') {
			*why = "unexpected extra characters at the end of the "
			    "input";
			return DC_EINVAL;
		}
	}
	*usec = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
	    sec - sign * (oh * 3600 + om * 60)) * 1000000) + frac;
	return DC_OK;
}

void
dc_model_datetime(int64_t usec, char *out, size_t outsz)
{
	struct tm tm;
	time_t secs = (time_t)(usec / 1000000);
	int64_t frac = usec % 1000000;

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	if (outsz == 0 || gmtime_r(&secs, &tm) == NULL) {
		if (outsz > 0)
			out[0] = '\0';
		return;
	}
	if (frac != 0)
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)frac);
	else
		snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
}

/* --- one field --- */

struct vctx {
	struct json_object *errs;
	struct json_object *input;	/* the object, secrets masked */
	struct json_object *mask;	/* echo this instead of a secret */
	int		 n;		/* errors appended */
	int		 oom;
};

/* {key: v}; out of memory marks the validation failed. */
static struct json_object *
ctx1(struct vctx *vc, const char *key, struct json_object *v)
{
	struct json_object *c = json_object_new_object();
	struct dc_jb b = { 0 };

	dc_jb_add(&b, c, key, v);
	if ((c = dc_jb_done(&b, c)) == NULL)
		vc->oom = 1;
	return c;
}

static void
verr(struct vctx *c, const char *type, const struct lpath *loc,
    const char *msg, struct json_object *input, struct json_object *ctx)
{
	int rc = dc_model_error(c->errs, type, lpath_json(loc), msg,
	    c->mask != NULL ? c->mask : input, ctx);

	if (rc < 0)
		c->oom = 1;
	else
		c->n++;
}

static void	 validate_obj(const struct dc_model *m, struct json_object *obj,
		     const struct lpath *loc, struct dc_val *vals,
		     struct vctx *c);

/* The error a non-nullable field of this type gives for a wrong kind. */
static void
type_error(struct vctx *c, const struct dc_field *f, const struct lpath *loc,
    struct json_object *v)
{
	char exp[256];

	switch (f->type) {
	case DC_FT_STR:
		verr(c, "string_type", loc, "Input should be a valid string", v,
		    NULL);
		break;
	case DC_FT_BOOL:
		verr(c, "bool_type", loc, "Input should be a valid boolean", v,
		    NULL);
		break;
	case DC_FT_INT:
		verr(c, "int_type", loc, "Input should be a valid integer", v,
		    NULL);
		break;
	case DC_FT_FLOAT:
		verr(c, "float_type", loc, "Input should be a valid number", v,
		    NULL);
		break;
	case DC_FT_LITERAL: {
		char msg[300];

		expected_list(f->choices, exp, sizeof(exp));
		snprintf(msg, sizeof(msg), "Input should be %s", exp);
		verr(c, "literal_error", loc, msg, v, ctx1(c, "expected",
		    json_object_new_string(exp)));
		break;
	}
	case DC_FT_DICT:
		verr(c, "dict_type", loc, "Input should be a valid dictionary",
		    v, NULL);
		break;
	case DC_FT_UUID:
		verr(c, "uuid_type", loc, "UUID input should be a string, bytes "
		    "or UUID object", v, NULL);
		break;
	case DC_FT_DATETIME:
		verr(c, "datetime_type", loc, "Input should be a valid datetime",
		    v, NULL);
		break;
	default:
		verr(c, "list_type", loc, "Input should be a valid list", v,
		    NULL);
		break;
	}
}

static void
int_bounds(struct vctx *c, const struct dc_field *f, const struct lpath *loc,
    struct json_object *v, int64_t x)
{
	char msg[128];

	if ((f->flags & DC_F_GT) && !(x > f->ge)) {
		snprintf(msg, sizeof(msg), "Input should be greater than %lld",
		    (long long)f->ge);
		verr(c, "greater_than", loc, msg, v, ctx1(c, "gt",
		    json_object_new_int64(f->ge)));
	} else if ((f->flags & DC_F_GE) && x < f->ge) {
		snprintf(msg, sizeof(msg), "Input should be greater than or "
		    "equal to %lld", (long long)f->ge);
		verr(c, "greater_than_equal", loc, msg, v, ctx1(c, "ge",
		    json_object_new_int64(f->ge)));
	} else if ((f->flags & DC_F_LE) && x > f->le) {
		snprintf(msg, sizeof(msg), "Input should be less than or equal "
		    "to %lld", (long long)f->le);
		verr(c, "less_than_equal", loc, msg, v, ctx1(c, "le",
		    json_object_new_int64(f->le)));
	}
}

static void
set_default(const struct dc_field *f, struct dc_val *val)
{
	const char *d = f->dflt;

	if (d == NULL) {
		val->null = 1;
		return;
	}
	switch (f->type) {
	case DC_FT_STR:
	case DC_FT_LITERAL:
		val->s = d;
		val->slen = strlen(d);
		break;
	case DC_FT_BOOL:
		val->i = strcmp(d, "true") == 0;
		break;
	case DC_FT_INT:
		val->i = strtoll(d, NULL, 10);
		break;
	case DC_FT_FLOAT:
		val->d = strtod(d, NULL);
		break;
	default:
		break;		/* containers: empty, v stays NULL */
	}
}

/*
 * pydantic echoes the input in its errors; datachatd never sends a
 * secret back, not even to the client that sent it (it may be a log's
 * or a proxy's): a secret field's value is masked as SecretStr prints.
 */
static const char secret_mask[] = "**********";

static struct json_object *
masked_input(const struct dc_model *m, struct json_object *obj)
{
	struct json_object *copy = NULL, *v;
	const struct dc_field *f;
	struct dc_jb b = { 0 };

	for (f = m->fields; f->name != NULL; f++) {
		if (!(f->flags & DC_F_SECRET) ||
		    !json_object_object_get_ex(obj, f->name, &v) ||
		    !json_object_is_type(v, json_type_string))
			continue;
		if (copy == NULL) {
			struct json_object_iter it;

			copy = json_object_new_object();
			json_object_object_foreachC(obj, it) {
				if (it.val != NULL)
					dc_jb_add(&b, copy, it.key,
					    json_object_get(it.val));
				else
					dc_jb_null(&b, copy, it.key);
			}
		}
		dc_jb_add(&b, copy, f->name, json_object_new_string(secret_mask));
	}
	if (copy == NULL)
		return json_object_get(obj);
	/* NULL: the caller echoes nothing rather than the secret */
	return dc_jb_done(&b, copy);
}

static void
validate_field(const struct dc_field *f, struct json_object *obj,
    const struct lpath *loc0, struct dc_val *val, struct vctx *c)
{
	struct lpath here = { loc0, f->name, 0 }, ip;
	const struct lpath *loc = &here;
	struct json_object *v, *item, *mask = NULL;
	enum json_type t;
	size_t i, n;
	int64_t x;
	double dv;
	int b = 0, ok;
	char why[200], msg[300];
	const char *w;

	memset(val, 0, sizeof(*val));
	if (!json_object_object_get_ex(obj, f->name, &v)) {
		if (f->flags & DC_F_REQUIRED)
			verr(c, "missing", loc, "Field required", c->input, NULL);
		else
			set_default(f, val);
		return;
	}
	val->set = 1;
	val->v = v;
	t = json_object_get_type(v);
	if (t == json_type_null && (f->flags & DC_F_NULLABLE)) {
		val->null = 1;
		return;
	}
	if (f->flags & DC_F_SECRET) {
		/* errors below echo the mask, the value stays in val */
		if (t == json_type_string && (mask = json_object_new_string(
		    secret_mask)) != NULL)
			c->mask = mask;
	}
	switch (f->type) {
	case DC_FT_STR:
		if (t != json_type_string) {
			type_error(c, f, loc, v);
			break;
		}
		val->s = json_object_get_string(v);
		val->slen = (size_t)json_object_get_string_len(v);
		if (f->min_length > 0 &&
		    utf8_chars(val->s, val->slen) < (size_t)f->min_length) {
			snprintf(msg, sizeof(msg), "String should have at least "
			    "%d character%s", f->min_length,
			    f->min_length == 1 ? "" : "s");
			verr(c, "string_too_short", loc, msg, v, ctx1(c, "min_length",
			    json_object_new_int(f->min_length)));
		} else if (f->max_length > 0 && val->slen >
		    (size_t)f->max_length) {
			snprintf(msg, sizeof(msg), "String should have at most "
			    "%d characters", f->max_length);
			verr(c, "string_too_long", loc, msg, v, ctx1(c, "max_length",
			    json_object_new_int(f->max_length)));
		}
		break;
	case DC_FT_BOOL:
		ok = 1;
		if (t == json_type_boolean)
			val->i = json_object_get_boolean(v);
		else if (t == json_type_int) {
			x = json_object_get_int64(v);
			ok = x == 0 || x == 1;
			val->i = x;
		} else if (t == json_type_double) {
			dv = json_object_get_double(v);
			ok = dv == 0.0 || dv == 1.0;
			val->i = dv == 1.0;
		} else if (t == json_type_string) {
			ok = str_bool(json_object_get_string(v), &b);
			val->i = b;
		} else {
			type_error(c, f, loc, v);
			break;
		}
		if (!ok)
			verr(c, "bool_parsing", loc, "Input should be a valid "
			    "boolean, unable to interpret input", v, NULL);
		break;
	case DC_FT_INT:
		if (t == json_type_int || t == json_type_boolean)
			x = json_object_get_int64(v);
		else if (t == json_type_double) {
			dv = json_object_get_double(v);
			if (dv != floor(dv) || !isfinite(dv) || fabs(dv) > 9e18) {
				verr(c, "int_from_float", loc, "Input should be a "
				    "valid integer, got a number with a "
				    "fractional part", v, NULL);
				break;
			}
			x = (int64_t)dv;
		} else if (t == json_type_string) {
			if (!str_int(json_object_get_string(v), &x)) {
				verr(c, "int_parsing", loc, "Input should be a "
				    "valid integer, unable to parse string as an "
				    "integer", v, NULL);
				break;
			}
		} else {
			type_error(c, f, loc, v);
			break;
		}
		val->i = x;
		int_bounds(c, f, loc, v, x);
		break;
	case DC_FT_FLOAT:
		if (t == json_type_int || t == json_type_double ||
		    t == json_type_boolean)
			val->d = json_object_get_double(v);
		else if (t == json_type_string) {
			char *end;

			errno = 0;
			w = json_object_get_string(v);
			val->d = strtod(w, &end);
			while (*end == ' ' || *end == '\t' || *end == '\n')
				end++;
			if (end == w || *end != '\0' || strchr(w, 'x') ||
			    strchr(w, 'X'))
				verr(c, "float_parsing", loc, "Input should be a "
				    "valid number, unable to parse string as a "
				    "number", v, NULL);
		} else
			type_error(c, f, loc, v);
		break;
	case DC_FT_LITERAL:
		if (t == json_type_string)
			for (i = 0; f->choices[i] != NULL; i++)
				if (strcmp(f->choices[i],
				    json_object_get_string(v)) == 0) {
					val->s = f->choices[i];
					val->slen = strlen(val->s);
					break;
				}
		if (val->s == NULL)
			type_error(c, f, loc, v);
		break;
	case DC_FT_DICT:
		if (t != json_type_object)
			type_error(c, f, loc, v);
		break;
	case DC_FT_LIST_STR:
	case DC_FT_LIST_DICT:
	case DC_FT_LIST_MODEL:
		if (t != json_type_array) {
			type_error(c, f, loc, v);
			break;
		}
		n = json_object_array_length(v);
		for (i = 0; i < n && !c->oom; i++) {
			item = json_object_array_get_idx(v, i);
			ip.up = loc;
			ip.key = NULL;
			ip.idx = i;
			if (f->type == DC_FT_LIST_STR &&
			    !json_object_is_type(item, json_type_string))
				verr(c, "string_type", &ip, "Input should be a "
				    "valid string", item, NULL);
			else if (f->type == DC_FT_LIST_DICT &&
			    !json_object_is_type(item, json_type_object))
				verr(c, "dict_type", &ip, "Input should be a "
				    "valid dictionary", item, NULL);
			else if (f->type == DC_FT_LIST_MODEL) {
				struct dc_val sub[DC_MODEL_MAX_FIELDS];

				if (!json_object_is_type(item, json_type_object))
					verr(c, "model_attributes_type", &ip,
					    "Input should be a valid dictionary "
					    "or object to extract fields from",
					    item, NULL);
				else
					validate_obj(f->sub, item, &ip, sub, c);
			}
		}
		break;
	case DC_FT_UUID:
		if (t != json_type_string) {
			type_error(c, f, loc, v);
			break;
		}
		val->s = json_object_get_string(v);
		val->slen = strlen(val->s);
		if (uuid_strict(val->s, val->uuid, why, sizeof(why)) != DC_OK) {
			snprintf(msg, sizeof(msg), "Input should be a valid UUID, "
			    "%s", why);
			verr(c, "uuid_parsing", loc, msg, v, ctx1(c, "error",
			    json_object_new_string(why)));
		}
		break;
	case DC_FT_DATETIME:
		if (t == json_type_int) {
			/* a Unix time: seconds, or milliseconds when large */
			x = json_object_get_int64(v);
			val->usec = x > 20000000000LL || x < -20000000000LL ?
			    x * 1000 : x * 1000000;
			break;
		}
		if (t != json_type_string) {
			type_error(c, f, loc, v);
			break;
		}
		val->s = json_object_get_string(v);
		val->slen = strlen(val->s);
		if (parse_datetime(val->s, &val->usec, &w) != DC_OK) {
			snprintf(msg, sizeof(msg), "Input should be a valid "
			    "datetime or date, %s", w);
			verr(c, "datetime_from_date_parsing", loc, msg, v,
			    ctx1(c, "error", json_object_new_string(w)));
		}
		break;
	}
	c->mask = NULL;
	json_object_put(mask);
}

static void
validate_obj(const struct dc_model *m, struct json_object *obj,
    const struct lpath *loc, struct dc_val *vals, struct vctx *c)
{
	struct json_object *saved = c->input;
	int i;

	if ((c->input = masked_input(m, obj)) == NULL)
		c->oom = 1;
	for (i = 0; m->fields[i].name != NULL && !c->oom; i++) {
		assert(i < DC_MODEL_MAX_FIELDS);
		validate_field(&m->fields[i], obj, loc, &vals[i], c);
	}
	json_object_put(c->input);
	c->input = saved;
}

int
dc_model_validate(const struct dc_model *m, struct json_object *obj,
    const char *where, struct dc_val *vals, struct json_object *errs)
{
	struct lpath root = { NULL, where, 0 };
	const struct lpath *loc = &root;
	struct json_object *mask = NULL;
	struct vctx c;
	int i;

	memset(&c, 0, sizeof(c));
	c.errs = errs;
	if (!json_object_is_type(obj, json_type_object)) {
		/*
		 * A body that was not JSON may hold a secret field's value:
		 * one mask, however many secret fields the model has.
		 */
		for (i = 0; m->fields[i].name != NULL && mask == NULL; i++)
			if ((m->fields[i].flags & DC_F_SECRET) &&
			    json_object_is_type(obj, json_type_string))
				c.mask = mask = json_object_new_string(
				    secret_mask);
		verr(&c, "model_attributes_type", loc, "Input should be a valid "
		    "dictionary or object to extract fields from", obj, NULL);
		c.mask = NULL;
		json_object_put(mask);
		memset(vals, 0, sizeof(*vals) * (size_t)dc_model_nfields(m));
	} else
		validate_obj(m, obj, loc, vals, &c);
	return c.oom ? -1 : c.n;
}

/* --- parameters_schema --- */

static struct json_object *
type_schema(const char *t)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };

	dc_jb_add(&b, o, "type", json_object_new_string(t));
	return dc_jb_done(&b, o);
}

struct json_object *
dc_model_schema(const struct dc_model *m)
{
	struct json_object *o = json_object_new_object(), *props, *req, *p,
	    *any;
	const struct dc_field *f;
	struct dc_jb b = { 0 };

	props = json_object_new_object();
	req = json_object_new_array();
	for (f = m->fields; f->name != NULL; f++) {
		switch (f->type) {
		case DC_FT_INT:
			p = type_schema("integer");
			break;
		case DC_FT_BOOL:
			p = type_schema("boolean");
			break;
		case DC_FT_FLOAT:
			p = type_schema("number");
			break;
		case DC_FT_DICT:
			p = type_schema("object");
			dc_jb_add(&b, p, "additionalProperties",
			    json_object_new_boolean(1));
			break;
		default:
			p = type_schema("string");
			break;
		}
		if (f->flags & DC_F_NULLABLE) {
			any = json_object_new_array();
			dc_jb_push(&b, any, p);
			dc_jb_push(&b, any, type_schema("null"));
			p = json_object_new_object();
			dc_jb_add(&b, p, "anyOf", any);
		}
		/* after anyOf, so a nullable field's text is on the field */
		if (f->desc != NULL)
			dc_jb_add(&b, p, "description",
			    json_object_new_string(f->desc));
		if (f->flags & DC_F_REQUIRED)
			dc_jb_push(&b, req, json_object_new_string(f->name));
		else if (f->dflt != NULL && !(f->flags & DC_F_NO_DEFAULT_KEY))
			dc_jb_add(&b, p, "default", f->type == DC_FT_INT ?
			    json_object_new_int64(strtoll(f->dflt, NULL, 10)) :
			    f->type == DC_FT_BOOL ? json_object_new_boolean(
			    strcmp(f->dflt, "true") == 0) :
			    json_object_new_string(f->dflt));
		dc_jb_add(&b, props, f->name, p);
	}
	dc_jb_add(&b, o, "type", json_object_new_string("object"));
	dc_jb_add(&b, o, "properties", props);
	dc_jb_add(&b, o, "required", req);
	dc_jb_add(&b, o, "additionalProperties", json_object_new_boolean(0));
	return dc_jb_done(&b, o);
}
