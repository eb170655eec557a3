/*
 * result.c - a query's rows as JSON (see result.h).
 *
 * Every value arrives as the engine's text; the column's neutral type
 * (rows.h) says what the text means.  DataChat hands the values its
 * driver gives (asyncpg's Decimal, datetime, timedelta, bytes, str ...)
 * to pydantic v2, which writes them in JSON mode; conv_table below says,
 * type by type, what that gives, and each conv_* function writes it from
 * the engine's text.  A text a function cannot read, or a value Python
 * cannot hold (years before 1 or after 9999, days beyond a timedelta,
 * bytes that are not UTF-8: DataChat fails the whole query on them), goes
 * out as the engine's own text in a JSON string; so does a value whose
 * conversion finds no memory.
 *
 * A PostgreSQL array (DC_COL_ARRAY) is a list to asyncpg, nested for
 * each dimension, of its elements' values: a JSON array whose elements
 * are written as the column's type writes them (array_json).
 *
 * DataChat's WebSocket writes its values with jsonable_encoder instead
 * (DC_ENC_JSONABLE, result.h): the converters whose Python object it
 * writes otherwise (Decimal, datetime and time with a zone, timedelta)
 * see COL_JSONABLE in the column's flags and write that form.
 */
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dc.h"
#include "jsonw.h"
#include "pool.h"
#include "driver.h"
#include "pyjson.h"
#include "result.h"
#include "rows.h"
#include "util.h"

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

/*
 * One value as DataChat writes it: a JSON number or string whose text is
 * s (in buf, in heap, or the cell's own text), true/false, or null.
 */
enum value_kind {
	V_NULL,
	V_NUMBER,		/* s is a JSON number */
	V_INTEGER,		/* s is a JSON integer */
	V_BOOL,			/* s is the cell's text */
	V_STRING,		/* s is the string's content */
};

struct value {
	enum value_kind	 kind;
	const char	*s;
	size_t		 len;
	char		*heap;		/* freed by value_done() */
	char		 buf[96];
};

/* In a column's flags, only here: write as jsonable_encoder does. */
#define COL_JSONABLE	0x80000000u

/* A converter: 0 when it read the cell's text, -1 when it could not. */
typedef int (*conv_fn)(const struct dc_col *, const char *, size_t,
    struct value *);

/* Room for n bytes in v: its buf, or the heap.  NULL: out of memory. */
static char *
value_room(struct value *v, size_t n)
{
	if (n <= sizeof(v->buf))
		return v->buf;
	v->heap = malloc(n);
	return v->heap;
}

static void
value_done(struct value *v)
{
	free(v->heap);
	v->heap = NULL;
}

/* Accept s as written. */
static int
value_text(struct value *v, enum value_kind kind, const char *s, size_t len)
{
	v->kind = kind;
	v->s = s;
	v->len = len;
	return 0;
}

/* The string v->buf holds up to end (NUL-terminated there). */
static int
value_buf(struct value *v, char *end)
{
	assert(end >= v->buf && end < v->buf + sizeof(v->buf));
	*end = '\0';		/* json_object_new_double_s copies a C string */
	v->kind = V_STRING;
	v->s = v->buf;
	v->len = (size_t)(end - v->buf);
	return 0;
}

/* n decimal digits of s; -1 unless they are all digits. */
static long long
digits(const char *s, int n)
{
	long long x = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	return x;
}

/* A run of at least one digit at *s (at most 18): its value, s moved. */
static long long
number(const char **s)
{
	const char *p = *s;
	long long x = 0;

	while (*p >= '0' && *p <= '9' && p - *s < 18)
		x = x * 10 + (*p++ - '0');
	if (p == *s || (*p >= '0' && *p <= '9'))
		return -1;
	*s = p;
	return x;
}

/* str and UUID (and what DataChat gets as something else): the text. */
static int
conv_text(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	(void)col;
	return value_text(v, V_STRING, s, len);
}

/* int: the digits. */
static int
conv_int(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	char *end;

	(void)col;
	(void)strtoll(s, &end, 10);
	if (end == s || *end != '\0' || !json_number_ok(s))
		return -1;
	if (strcmp(s, "-0") == 0)
		return value_text(v, V_INTEGER, "0", 1);	/* int("-0") */
	return value_text(v, V_INTEGER, s, len);
}

static int
conv_bool(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	(void)col;
	return value_text(v, V_BOOL, s, len);
}

/*
 * Significant digits and decimal exponent of a number's text
 * ([-]d[.d][e[+-]d]): the value is 0.<dig> * 10^*decpt.  0, or -1 when s
 * is no such number.  Zero has no digits.
 */
static int
decimal_digits(const char *s, int *neg, char *dig, size_t digsz,
    size_t *ndig, long *decpt)
{
	long point = 0, exp = 0;
	size_t n = 0;
	int seen = 0, lead = 1, esign = 1, after = 0;

	*neg = *s == '-';
	if (*s == '-' || *s == '+')
		s++;
	for (;; s++) {
		if (*s == '.' && !after) {
			after = 1;
			continue;
		}
		if (*s < '0' || *s > '9')
			break;
		seen = 1;
		if (lead && *s == '0') {
			if (after)
				point--;
			continue;
		}
		lead = 0;
		if (n == digsz)
			return -1;
		dig[n++] = *s;
		if (!after)
			point++;
	}
	if (!seen)
		return -1;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			esign = *s++ == '-' ? -1 : 1;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9' && exp < 100000)
			exp = exp * 10 + (*s++ - '0');
	}
	if (*s != '\0')
		return -1;
	while (n > 0 && dig[n - 1] == '0')
		n--;
	*ndig = n;
	*decpt = point + esign * exp;
	return 0;
}

/*
 * float: repr() of the double (json.dumps writes that): its shortest
 * digits, fixed notation with ".0" for a whole number while the decimal
 * exponent is in -4..15, else "1e+16", "1.5e-05".  pydantic writes NaN
 * and the infinities as null (ser_json_inf_nan "null").
 */
static int
conv_float(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	char dig[32], tmp[40], *p = v->buf;
	size_t n, i;
	long decpt, e;
	int neg, prec;
	double d;
	float f;

	(void)len;
	if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
	    strcmp(s, "-Infinity") == 0 || strcmp(s, "inf") == 0 ||
	    strcmp(s, "-inf") == 0 || strcmp(s, "+inf") == 0 ||
	    strcmp(s, "nan") == 0 || strcmp(s, "-nan") == 0) {
		v->kind = V_NULL;
		return 0;
	}
	if (decimal_digits(s, &neg, dig, sizeof(dig), &n, &decpt) != 0)
		return -1;
	if (col->flags & DC_COL_FLOAT4) {
		/* asyncpg widens float4 to a double: its shortest digits */
		f = strtof(s, NULL);
		d = (double)f;
		for (prec = 0; prec < 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
		if (decimal_digits(tmp, &neg, dig, sizeof(dig), &n,
		    &decpt) != 0)
			return -1;
	}
	if (neg)
		*p++ = '-';
	if (n == 0) {
		memcpy(p, "0.0", 3);
		p += 3;
	} else if (decpt <= -4 || decpt > 16) {
		*p++ = dig[0];
		if (n > 1) {
			*p++ = '.';
			memcpy(p, dig + 1, n - 1);
			p += n - 1;
		}
		e = decpt - 1;
		p += snprintf(p, 16, "e%c%02ld", e < 0 ? '-' : '+',
		    e < 0 ? -e : e);
	} else if (decpt <= 0) {
		*p++ = '0';
		*p++ = '.';
		for (e = decpt; e < 0; e++)
			*p++ = '0';
		memcpy(p, dig, n);
		p += n;
	} else {
		for (i = 0; i < (size_t)decpt; i++)
			*p++ = i < n ? dig[i] : '0';
		*p++ = '.';
		if ((size_t)decpt >= n)
			*p++ = '0';
		else {
			memcpy(p, dig + decpt, n - (size_t)decpt);
			p += n - (size_t)decpt;
		}
	}
	value_buf(v, p);
	v->kind = V_NUMBER;
	return 0;
}

/* A double as repr() writes it (as conv_float writes a float's text). */
static int
value_repr(double d, struct value *v)
{
	static const struct dc_col plain = { NULL, DC_VT_FLOAT, 0 };
	char tmp[40];
	int prec;

	if (d != d || d > DBL_MAX || d < -DBL_MAX) {
		v->kind = V_NULL;	/* as conv_float writes NaN, inf */
		return 0;
	}
	/* the fewest digits that read back as d: repr()'s */
	for (prec = 0; prec < 16; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 16)
		snprintf(tmp, sizeof(tmp), "%.16e", d);
	return conv_float(&plain, tmp, strlen(tmp), v);
}

/*
 * Decimal through jsonable_encoder (decimal_encoder): int() when its
 * exponent is not negative (no fraction digits in the text), else
 * float(): "10000" is 10000, "450.00" is 450.0, "-0" is 0.
 */
static int
conv_decimal_jsonable(const char *s, size_t len, struct value *v)
{
	const char *p = s, *intp;
	char *out, *o;
	int frac = 0;

	if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
	    strcmp(s, "-Infinity") == 0) {
		v->kind = V_NULL;	/* float('nan'): no JSON for it */
		return 0;
	}
	if (*p == '-')
		p++;
	intp = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == intp)
		return -1;
	if (*p == '.') {
		frac = 1;
		if (!(p[1] >= '0' && p[1] <= '9'))
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if (*p != '\0')
		return -1;
	if (frac)
		return value_repr(strtod(s, NULL), v);
	/* int(): the digits without leading zeros, no sign for 0 */
	while (*intp == '0' && intp[1] != '\0')
		intp++;
	if ((out = value_room(v, len + 1)) == NULL)
		return -1;
	o = out;
	if (*s == '-' && *intp != '0')
		*o++ = '-';
	memcpy(o, intp, (size_t)(p - intp));
	o += p - intp;
	*o = '\0';
	v->kind = V_INTEGER;
	v->s = out;
	v->len = (size_t)(o - out);
	return 0;
}

/*
 * Decimal: str() of the Decimal the driver built, as a string.  Its
 * digits and exponent are the text's (exponent minus the scale), but for
 * asyncpg's binary numeric an integral value moves its trailing zeros in
 * groups of four into the exponent (DC_COL_NUMERIC_GROUPS).  str() writes
 * the plain form when the exponent is at most 0 and the adjusted exponent
 * at least -6, else "1E+4", "1.23E-7", "0E-7".
 */
static int
conv_decimal(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	const char *p = s, *intp, *frac = NULL;
	size_t nint, nfrac = 0, ncoef, i, lead;
	long exp, left, dot;
	char *out, *o;
	int neg;

	if (col->flags & COL_JSONABLE)
		return conv_decimal_jsonable(s, len, v);
	if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
	    strcmp(s, "-Infinity") == 0)
		return value_text(v, V_STRING, s, len);
	neg = *p == '-';
	if (neg)
		p++;
	intp = p;
	while (*p >= '0' && *p <= '9')
		p++;
	nint = (size_t)(p - intp);
	if (*p == '.') {
		frac = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		nfrac = (size_t)(p - frac);
		if (nfrac == 0)
			return -1;
	}
	if (nint == 0 || *p != '\0' || len > 1000000)
		return -1;
	/* the coefficient: integer and fraction digits, no leading zeros */
	exp = -(long)nfrac;
	for (lead = 0; lead < nint - 1 && intp[lead] == '0'; lead++)
		;
	if (nint - lead == 1 && intp[lead] == '0' && nfrac > 0) {
		lead = nint;	/* 0.xxx: leading zeros go on in frac */
		for (i = 0; i < nfrac - 1 && frac[i] == '0'; i++)
			;
		frac += i;
		nfrac -= i;
	}
	nint -= lead;
	intp += lead;
	if (nfrac == 0 && (col->flags & DC_COL_NUMERIC_GROUPS) &&
	    !(nint == 1 && intp[0] == '0')) {
		for (i = 0; i < nint && intp[nint - 1 - i] == '0'; i++)
			;
		nint -= i / 4 * 4;
		exp = (long)(i / 4 * 4);
	}
	ncoef = nint + nfrac;
	if ((out = value_room(v, ncoef + 32)) == NULL)
		return -1;
	o = out;
	if (neg)
		*o++ = '-';
	left = exp + (long)ncoef;
	dot = exp <= 0 && left > -6 ? left : 1;
	/* the coefficient's digit k: intp, then frac */
#define COEF(k) ((size_t)(k) < nint ? intp[(k)] : frac[(size_t)(k) - nint])
	if (dot <= 0) {
		*o++ = '0';
		*o++ = '.';
		for (i = 0; i < (size_t)-dot; i++)
			*o++ = '0';
		for (i = 0; i < ncoef; i++)
			*o++ = COEF(i);
	} else if ((size_t)dot >= ncoef) {
		for (i = 0; i < ncoef; i++)
			*o++ = COEF(i);
		for (i = ncoef; i < (size_t)dot; i++)
			*o++ = '0';
	} else {
		for (i = 0; i < (size_t)dot; i++)
			*o++ = COEF(i);
		*o++ = '.';
		for (i = (size_t)dot; i < ncoef; i++)
			*o++ = COEF(i);
	}
#undef COEF
	if (left != dot)
		o += snprintf(o, 24, "E%+ld", left - dot);
	v->kind = V_STRING;
	v->s = out;
	v->len = (size_t)(o - out);
	return 0;
}

/* --- dates and times --- */

struct civil {
	long long	 y;
	int		 mo, d, h, mi, s, us;
	int		 has_off;	/* an offset followed */
	long		 off;		/* its seconds east of UTC */
};

/* "YYYY-MM-DD" (4 digits or more) at *s; -1 when it is not one. */
static int
parse_date(const char **s, struct civil *c)
{
	const char *p = *s;

	if ((c->y = number(&p)) < 0 || p - *s < 4 || *p++ != '-' ||
	    (c->mo = (int)digits(p, 2)) < 1 || c->mo > 12 || p[2] != '-' ||
	    (c->d = (int)digits(p + 3, 2)) < 1 || c->d > 31)
		return -1;
	*s = p + 5;
	return 0;
}

/* ".f" (1 digit or more; past 6 dropped) at *s, if any, into *us; -1 when
   malformed. */
static int
parse_frac(const char **s, int *us)
{
	const char *p = *s;
	int n;

	*us = 0;
	if (*p != '.')
		return 0;
	p++;
	for (n = 0; n < 6 && *p >= '0' && *p <= '9'; n++)
		*us = *us * 10 + (*p++ - '0');
	if (n == 0)
		return -1;
	for (; n < 6; n++)
		*us *= 10;
	/* past the microsecond (ClickHouse's DateTime64(9)): dropped, as
	   clickhouse-connect's floor division does */
	while (*p >= '0' && *p <= '9')
		p++;
	*s = p;
	return 0;
}

/* "HH:MM:SS[.f]" at *s (hours up to 24); -1 when it is not one. */
static int
parse_time(const char **s, struct civil *c)
{
	const char *p = *s;

	if ((c->h = (int)digits(p, 2)) < 0 || c->h > 24 || p[2] != ':' ||
	    (c->mi = (int)digits(p + 3, 2)) < 0 || c->mi > 59 ||
	    p[5] != ':' || (c->s = (int)digits(p + 6, 2)) < 0 || c->s > 60)
		return -1;
	p += 8;
	if (parse_frac(&p, &c->us) != 0)
		return -1;
	*s = p;
	return 0;
}

/* "+hh[:mm[:ss]]" at *s, if any; -1 when it is malformed. */
static int
parse_offset(const char **s, struct civil *c)
{
	const char *p = *s;
	int sign, h, m = 0, sec = 0;

	c->has_off = 0;
	if (*p != '+' && *p != '-')
		return 0;
	sign = *p++ == '-' ? -1 : 1;
	if ((h = (int)digits(p, 2)) < 0)
		return -1;
	p += 2;
	if (*p == ':') {
		if ((m = (int)digits(p + 1, 2)) < 0)
			return -1;
		p += 3;
		if (*p == ':') {
			if ((sec = (int)digits(p + 1, 2)) < 0)
				return -1;
			p += 3;
		}
	}
	c->has_off = 1;
	c->off = sign * (h * 3600L + m * 60L + sec);
	*s = p;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant). */
static long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void
civil_from_days(long long z, struct civil *c)
{
	long long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	c->d = (int)(doy - (153 * mp + 2) / 5 + 1);
	c->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
	c->y = yoe + era * 400 + (c->mo <= 2);
}

/* A date Python's datetime.date holds (and the day exists). */
static int
date_ok(const struct civil *c)
{
	struct civil back;

	if (c->y < 1 || c->y > 9999)
		return 0;
	civil_from_days(days_from_civil(c->y, c->mo, c->d), &back);
	return back.d == c->d && back.mo == c->mo;
}

static char *
put_date(char *p, const struct civil *c)
{
	return p + snprintf(p, 16, "%04lld-%02d-%02d", c->y, c->mo, c->d);
}

/* "HH:MM:SS", and ".ffffff" when the microseconds are not 0 (speedate) */
static char *
put_time(char *p, const struct civil *c)
{
	p += snprintf(p, 16, "%02d:%02d:%02d", c->h, c->mi, c->s);
	if (c->us != 0)
		p += snprintf(p, 16, ".%06d", c->us);
	return p;
}

/*
 * What asyncpg makes of PostgreSQL's infinities: date.max, date.min,
 * and for both timestamp types the naive datetime.max and datetime.min.
 */
static int
infinity(const char *s, int with_time, struct value *v)
{
	const char *out;

	if (strcmp(s, "infinity") == 0)
		out = with_time ? "9999-12-31T23:59:59.999999" : "9999-12-31";
	else if (strcmp(s, "-infinity") == 0)
		out = with_time ? "0001-01-01T00:00:00" : "0001-01-01";
	else
		return -1;
	return value_text(v, V_STRING, out, strlen(out));
}

/* date: "2026-11-29". */
static int
conv_date(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	struct civil c;

	(void)col;
	(void)len;
	if (infinity(s, 0, v) == 0)
		return 0;
	if (parse_date(&s, &c) != 0 || *s != '\0' || !date_ok(&c))
		return -1;
	return value_buf(v, put_date(v->buf, &c));
}

/*
 * A timestamp's text into c, with its offset (timestamptz), or without;
 * -1 when it is not one or Python cannot hold it.
 */
static int
parse_timestamp(const char *s, int with_off, struct civil *c)
{
	if (parse_date(&s, c) != 0 || *s++ != ' ' || parse_time(&s, c) != 0 ||
	    parse_offset(&s, c) != 0 || c->has_off != with_off || *s != '\0')
		return -1;
	return date_ok(c) && c->h < 24 && c->s < 60 ? 0 : -1;
}

/* datetime without tzinfo: "2026-11-29T20:47:39.194460". */
static int
conv_timestamp(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	struct civil c;
	char *p;

	(void)col;
	(void)len;
	if (infinity(s, 1, v) == 0)
		return 0;
	if (parse_timestamp(s, 0, &c) != 0)
		return -1;
	p = put_date(v->buf, &c);
	*p++ = 'T';
	return value_buf(v, put_time(p, &c));
}

/*
 * datetime in UTC (asyncpg's timestamptz): the local time minus the
 * session's offset, "2026-11-29T20:47:39.194460Z" (isoformat(), for
 * jsonable_encoder: "...+00:00").
 */
static int
conv_timestamptz(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	long long secs, days;
	struct civil c;
	char *p;

	(void)len;
	if (infinity(s, 1, v) == 0)
		return 0;
	if (parse_timestamp(s, 1, &c) != 0)
		return -1;
	secs = days_from_civil(c.y, c.mo, c.d) * 86400 + c.h * 3600LL +
	    c.mi * 60LL + c.s - c.off;
	days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	secs -= days * 86400;
	civil_from_days(days, &c);
	c.h = (int)(secs / 3600);
	c.mi = (int)(secs / 60 % 60);
	c.s = (int)(secs % 60);
	if (c.y < 1 || c.y > 9999)
		return -1;
	p = put_date(v->buf, &c);
	*p++ = 'T';
	p = put_time(p, &c);
	if (col->flags & COL_JSONABLE) {
		memcpy(p, "+00:00", 6);
		p += 6;
	} else
		*p++ = 'Z';
	return value_buf(v, p);
}

/*
 * time: "20:47:39[.ffffff]"; a time with time zone adds its offset as
 * asyncpg keeps it (whole minutes, seconds dropped) and speedate writes
 * it: "Z" for 0, else "+05:30", "-03:00" (isoformat(), for
 * jsonable_encoder: "+00:00" for 0).
 */
static int
conv_time(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	struct civil c;
	long m;
	char *p;

	(void)len;
	if (parse_time(&s, &c) != 0 || parse_offset(&s, &c) != 0 ||
	    *s != '\0' || c.h > 23 || c.s > 59)
		return -1;
	p = put_time(v->buf, &c);
	if (c.has_off) {
		m = c.off / 60;		/* toward zero, as asyncpg does */
		if (m == 0 && !(col->flags & COL_JSONABLE))
			*p++ = 'Z';
		else
			p += snprintf(p, 16, "%c%02ld:%02ld", m < 0 ? '-' : '+',
			    (m < 0 ? -m : m) / 60, (m < 0 ? -m : m) % 60);
	}
	return value_buf(v, p);
}

#define US_PER_DAY	86400000000LL
#define TIMEDELTA_MAX_DAYS 999999999LL

/*
 * timedelta: asyncpg counts a month as 30 days and a year as 365; pydantic
 * writes speedate's ISO 8601 duration of it: "-" when negative, then of
 * its absolute value "P", years of 365 days "1Y", days "3D", and "T" with
 * "4H", "5M", "6.5S" for the parts that are not 0 ("PT0S" for nothing).
 * jsonable_encoder writes total_seconds() instead: 86400.0, -79200.0.
 */
static int
conv_interval(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	long long n, days = 0, us = 0, sec;
	const char *word;
	int sign, neg, mi, se, frac;
	size_t wl;
	char *p, secs[48];

	(void)len;
	while (*s != '\0') {
		sign = 1;
		if (*s == '-' || *s == '+')
			sign = *s++ == '-' ? -1 : 1;
		if ((n = number(&s)) < 0)
			return -1;
		if (*s == ':') {
			/* the time part, last: "H:MM:SS[.f]", hours unbounded */
			if ((mi = (int)digits(s + 1, 2)) < 0 || mi > 59 ||
			    s[3] != ':' || (se = (int)digits(s + 4, 2)) < 0 ||
			    se > 59 || n > 2562047787LL)
				return -1;
			s += 6;
			if (parse_frac(&s, &frac) != 0 || *s != '\0')
				return -1;
			us = sign * (((n * 60 + mi) * 60 + se) * 1000000 + frac);
			break;
		}
		if (*s++ != ' ')
			return -1;
		word = s;
		while (*s >= 'a' && *s <= 'z')
			s++;
		wl = (size_t)(s - word);
		if (n > TIMEDELTA_MAX_DAYS)	/* also in years, months */
			return -1;
		if (wl >= 4 && strncmp(word, "year", 4) == 0)
			n *= 365;
		else if (wl >= 3 && strncmp(word, "mon", 3) == 0)
			n *= 30;
		else if (!(wl >= 3 && strncmp(word, "day", 3) == 0))
			return -1;
		days += sign * n;
		if (days > 1000 * TIMEDELTA_MAX_DAYS ||
		    days < -1000 * TIMEDELTA_MAX_DAYS)
			return -1;
		if (*s == ' ')
			s++;
		else if (*s != '\0')
			return -1;
	}
	/* timedelta's normal form, then the sign and the absolute value */
	days += us / US_PER_DAY;
	us %= US_PER_DAY;
	if (days > 0 && us < 0) {
		days--;
		us += US_PER_DAY;
	} else if (days < 0 && us > 0) {
		days++;
		us -= US_PER_DAY;
	}
	neg = days < 0 || us < 0;
	if (neg) {
		days = -days;
		us = -us;
	}
	if (days > TIMEDELTA_MAX_DAYS)
		return -1;
	if (col->flags & COL_JSONABLE) {
		/* the exact seconds in decimal: strtod rounds as Python's
		   int / int does */
		snprintf(secs, sizeof(secs), "%s%lld.%06lld", neg ? "-" : "",
		    days * 86400 + us / 1000000, us % 1000000);
		return value_repr(strtod(secs, NULL), v);
	}
	p = v->buf;
	if (neg)
		*p++ = '-';
	*p++ = 'P';
	if (days / 365 != 0)
		p += snprintf(p, 24, "%lldY", days / 365);
	if (days % 365 != 0)
		p += snprintf(p, 24, "%lldD", days % 365);
	if (us != 0) {
		sec = us / 1000000;
		*p++ = 'T';
		if (sec / 3600 != 0)
			p += snprintf(p, 24, "%lldH", sec / 3600);
		if (sec / 60 % 60 != 0)
			p += snprintf(p, 24, "%lldM", sec / 60 % 60);
		if (sec % 60 != 0 || us % 1000000 != 0) {
			p += snprintf(p, 24, "%lld", sec % 60);
			if (us % 1000000 != 0) {
				p += snprintf(p, 24, ".%06lld", us % 1000000);
				while (p[-1] == '0')
					p--;
			}
			*p++ = 'S';
		}
	} else if (days == 0) {
		memcpy(p, "T0S", 3);
		p += 3;
	}
	return value_buf(v, p);
}

/* bytes: pydantic decodes them as UTF-8 (ser_json_bytes "utf8"). */
static int
conv_bytes(const struct dc_col *col, const char *s, size_t len,
    struct value *v)
{
	size_t i, n;
	char *out;
	int hi, lo;

	(void)col;
	if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2 != 0)
		return -1;
	n = (len - 2) / 2;
	if ((out = value_room(v, n + 1)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((hi = dc_hexval((unsigned char)s[2 + 2 * i])) < 0 ||
		    (lo = dc_hexval((unsigned char)s[3 + 2 * i])) < 0)
			return -1;
		out[i] = (char)(hi << 4 | lo);
	}
	if (!dc_pyjson_utf8_ok(out, n))
		return -1;
	v->kind = V_STRING;
	v->s = out;
	v->len = n;
	return 0;
}

/*
 * The one table: what DataChat's driver gives for each neutral type, and
 * what pydantic v2 writes of it in JSON mode (FastAPI's response_model).
 */
static const struct {
	conv_fn		 conv;
	const char	*python;	/* what the driver gives DataChat */
} conv_table[DC_VT_NTYPES] = {
	[DC_VT_OTHER] =		{ conv_text, "str (asyncpg: its text)" },
	[DC_VT_INT] =		{ conv_int, "int" },
	[DC_VT_FLOAT] =		{ conv_float, "float" },
	[DC_VT_DECIMAL] =	{ conv_decimal, "decimal.Decimal" },
	[DC_VT_BOOL] =		{ conv_bool, "bool" },
	[DC_VT_TEXT] =		{ conv_text, "str" },
	[DC_VT_JSON] =		{ conv_text, "str (not parsed)" },
	[DC_VT_DATE] =		{ conv_date, "datetime.date" },
	[DC_VT_TIME] =		{ conv_time, "datetime.time" },
	[DC_VT_TIMESTAMP] =	{ conv_timestamp, "datetime.datetime" },
	[DC_VT_TIMESTAMPTZ] =	{ conv_timestamptz, "datetime.datetime (UTC)" },
	[DC_VT_UUID] =		{ conv_text, "uuid.UUID" },
	[DC_VT_BYTES] =		{ conv_bytes, "bytes" },
	[DC_VT_INTERVAL] =	{ conv_interval, "datetime.timedelta" },
};

/* Column col of res as enc writes it: its type and flags. */
static struct dc_col
col_of(const struct dc_rows *res, int col, enum dc_enc enc)
{
	struct dc_col c = res->cols[col];

	assert(c.type >= 0 && c.type < DC_VT_NTYPES);
	assert(conv_table[c.type].conv != NULL);
	assert(!(c.flags & COL_JSONABLE));
	if (enc == DC_ENC_JSONABLE)
		c.flags |= COL_JSONABLE;
	return c;
}

/* The field at (row, col) as DataChat writes it; value_done() after. */
static void
value_of(const struct dc_rows *res, int row, int col, enum dc_enc enc,
    struct value *v)
{
	const struct dc_cell *cell = dc_rows_cell(res, row, col);
	struct dc_col c = col_of(res, col, enc);

	v->heap = NULL;
	if (cell->v == NULL) {
		v->kind = V_NULL;
		return;
	}
	if (conv_table[c.type].conv(&c, cell->v, cell->len, v) != 0) {
		value_done(v);
		if (c.flags & DC_COL_INVALID_NULL)
			v->kind = V_NULL;	/* the connector's None */
		else
			value_text(v, V_STRING, cell->v, cell->len);
	}
}

/* A DC_VT_BOOL cell's value: "t", "true" and "1" are true. */
static int
bool_value(const char *s)
{
	return s[0] == 't' || s[0] == 'T' || s[0] == '1';
}

/* v as a json-c value (NULL for null, and when out of memory). */
static struct json_object *
value_json(const struct value *v)
{
	struct json_object *o;

	switch (v->kind) {
	case V_NULL:
		o = NULL;
		break;
	case V_INTEGER:
		/* beyond int64 (MySQL's unsigned BIGINT): the digits as written */
		errno = 0;
		o = json_object_new_int64(strtoll(v->s, NULL, 10));
		if (errno == ERANGE) {
			json_object_put(o);
			o = json_object_new_double_s(strtod(v->s, NULL), v->s);
		}
		break;
	case V_NUMBER:
		o = json_object_new_double_s(strtod(v->s, NULL), v->s);
		break;
	case V_BOOL:
		o = json_object_new_boolean(bool_value(v->s));
		break;
	default:
		o = json_object_new_string_len(v->s, (int)v->len);
		break;
	}
	return o;
}

/*
 * PostgreSQL arrays, as array_out writes them: optional bounds
 * ("[0:1][1:2]=") when a lower bound is not 1, then "{" elements "}"
 * separated by ",", each a nested array, NULL, a double-quoted string
 * with backslash escapes, or bare text.  asyncpg ignores the bounds.
 * ClickHouse's (DC_COL_ARRAY_CH) are "[" elements "]", strings, dates
 * and the like single-quoted with C-like escapes ("\n", "\'").
 */
#define ARRAY_MAXDIM	6		/* PostgreSQL's MAXDIM */

struct array_text {
	struct dc_col	 elem;		/* the elements' column: no ARRAY */
	const char	*p;		/* next byte to read */
	const char	*end;
	char		*scratch;	/* one element's text, unescaped */
	int		 nomem;
	char		 open, close, quote;	/* "{}\"" or "[]'" */
};

/* The character a ClickHouse escape "\c" stands for. */
static char
ch_unescape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case 'r':
		return '\r';
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case '0':
		return '\0';
	default:
		return c;
	}
}

/* The element at a->p, its text unescaped into a->scratch: 0 or -1. */
static int
array_element(struct array_text *a, struct json_object **out)
{
	const char *start = a->p;
	char *q = a->scratch;
	struct value v;
	int quoted = *a->p == a->quote;

	*out = NULL;
	if (quoted) {
		for (a->p++; a->p < a->end && *a->p != a->quote; a->p++) {
			if (*a->p != '\\')
				*q++ = *a->p;
			else if (++a->p == a->end)
				return -1;
			else
				*q++ = a->quote == '\'' ? ch_unescape(*a->p) :
				    *a->p;
		}
		if (a->p == a->end)
			return -1;
		a->p++;
	} else {
		while (a->p < a->end && *a->p != ',' && *a->p != a->close) {
			if (*a->p == a->quote || *a->p == a->open ||
			    *a->p == '\\' || *a->p == ' ')
				return -1;	/* the engine quotes these */
			*q++ = *a->p++;
		}
		if (q == a->scratch)
			return -1;
		if (a->p - start == 4 && strncasecmp(start, "NULL", 4) == 0) {
			*out = NULL;
			return 0;
		}
	}
	*q = '\0';
	v.heap = NULL;
	if (conv_table[a->elem.type].conv(&a->elem, a->scratch,
	    (size_t)(q - a->scratch), &v) != 0) {
		value_done(&v);
		value_text(&v, V_STRING, a->scratch, (size_t)(q - a->scratch));
	}
	*out = value_json(&v);
	value_done(&v);
	if (*out == NULL && v.kind != V_NULL)
		a->nomem = 1;
	return a->nomem ? -1 : 0;
}

/* The array at a->p ("{...}") as a JSON array: 0, or -1 (*out NULL). */
static int
array_nest(struct array_text *a, int depth, struct json_object **out)
{
	struct json_object *list, *e;
	int rc;

	*out = NULL;
	if (depth > ARRAY_MAXDIM || a->p == a->end || *a->p != a->open)
		return -1;
	if ((list = json_object_new_array()) == NULL) {
		a->nomem = 1;
		return -1;
	}
	if (*++a->p == a->close) {
		a->p++;
		*out = list;
		return 0;
	}
	for (;;) {
		if (a->p < a->end && *a->p == a->open)
			rc = array_nest(a, depth + 1, &e);
		else
			rc = array_element(a, &e);
		if (rc == 0 && json_object_array_add(list, e) != 0)
			rc = -1, a->nomem = 1;
		if (rc != 0) {
			json_object_put(e);
			json_object_put(list);
			return -1;
		}
		if (a->p < a->end && *a->p == ',') {
			a->p++;
			continue;
		}
		if (a->p < a->end && *a->p == a->close)
			break;
		json_object_put(list);
		return -1;
	}
	a->p++;
	*out = list;
	return 0;
}

/*
 * An array cell as the list asyncpg gives; NULL when the text is not
 * array_out's (the caller writes the text then), or with *nomem set
 * when out of memory.
 */
static struct json_object *
array_json(const struct dc_col *c, const struct dc_cell *cell, int *nomem)
{
	struct array_text a;
	struct json_object *o = NULL;

	*nomem = 0;
	a.elem = *c;
	a.elem.flags &= ~(DC_COL_ARRAY | DC_COL_ARRAY_CH);
	a.p = cell->v;
	a.end = cell->v + cell->len;
	a.nomem = 0;
	a.open = '{';
	a.close = '}';
	a.quote = '"';
	if (c->flags & DC_COL_ARRAY_CH) {
		a.open = '[';
		a.close = ']';
		a.quote = '\'';
	} else if (a.p < a.end && *a.p == '[') {
		/* the bounds: "[lo:hi]" per dimension, then "=" */
		while (a.p < a.end && strchr("[]:-0123456789", *a.p) != NULL)
			a.p++;
		if (a.p == a.end || *a.p++ != '=')
			return NULL;
	}
	if ((a.scratch = malloc(cell->len + 1)) == NULL) {
		*nomem = 1;
		return NULL;
	}
	if (array_nest(&a, 1, &o) != 0 || a.p != a.end) {
		json_object_put(o);
		o = NULL;
	}
	free(a.scratch);
	*nomem = a.nomem;
	return o;
}

/* An array column's cell (not NULL) as JSON: its list, else its text. */
static struct json_object *
array_value(const struct dc_col *c, const struct dc_cell *cell)
{
	struct json_object *o;
	int nomem;

	assert(cell->v != NULL && (c->flags & DC_COL_ARRAY));
	if ((o = array_json(c, cell, &nomem)) == NULL && !nomem)
		o = json_object_new_string_len(cell->v, (int)cell->len);
	return o;
}

int
dc_result_value(const struct dc_rows *res, int row, int col,
    enum dc_enc enc, struct json_object **out)
{
	const struct dc_cell *cell = dc_rows_cell(res, row, col);
	struct dc_col c = col_of(res, col, enc);
	struct value v;

	if (cell->v != NULL && (c.flags & DC_COL_ARRAY)) {
		*out = array_value(&c, cell);
		return *out != NULL ? DC_OK : DC_ENOMEM;
	}
	value_of(res, row, col, enc, &v);
	*out = value_json(&v);
	value_done(&v);
	/* null is the value's own, or a constructor that failed */
	return *out != NULL || v.kind == V_NULL ? DC_OK : DC_ENOMEM;
}

void
dc_result_write_value(struct dc_jw *w, const struct dc_rows *res, int row,
    int col, enum dc_enc enc)
{
	const struct dc_cell *cell = dc_rows_cell(res, row, col);
	struct dc_col c = col_of(res, col, enc);
	struct json_object *o;
	struct value v;

	if (cell->v != NULL && (c.flags & DC_COL_ARRAY)) {
		/* rare enough to go through json-c, which writes the same */
		if ((o = array_value(&c, cell)) == NULL)
			w->err = 1;
		else
			dc_jw_json(w, o);
		json_object_put(o);
		return;
	}
	value_of(res, row, col, enc, &v);
	switch (v.kind) {
	case V_NULL:
		dc_jw_null(w);
		break;
	case V_INTEGER:
	case V_NUMBER:
		dc_jw_raw(w, v.s, v.len);
		break;
	case V_BOOL:
		dc_jw_bool(w, bool_value(v.s));
		break;
	default:
		dc_jw_string_len(w, v.s, v.len);
		break;
	}
	value_done(&v);
}

void
dc_result_write_columnar(struct dc_jw *w, const struct dc_rows *res,
    const struct dc_result_cols *cols, int nrows, enum dc_enc enc)
{
	int i, row;

	dc_jw_object(w);
	for (i = 0; i < cols->n; i++) {
		dc_jw_key(w, cols->names[i]);
		dc_jw_array(w);
		for (row = 0; row < nrows; row++)
			dc_result_write_value(w, res, row, i, enc);
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
	struct dc_jb b = { 0 };
	struct json_object *a;
	int i;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	a = json_object_new_array_ext(cols.n);
	for (i = 0; a != NULL && i < cols.n; i++)
		dc_jb_push(&b, a, json_object_new_string(cols.names[i]));
	dc_result_cols_free(&cols);
	return dc_jb_done(&b, a);
}

/*
 * One field into obj under key (arr: pushed); a field that cannot be
 * built fails the build (dc_jb_null keeps a SQL NULL's null).
 */
static void
add_value(struct dc_jb *b, struct json_object *obj, const char *key,
    struct json_object *arr, const struct dc_rows *res, int row, int col,
    enum dc_enc enc)
{
	struct json_object *v;

	if (dc_result_value(res, row, col, enc, &v) != DC_OK) {
		b->failed = 1;
		return;
	}
	if (v == NULL && arr == NULL)
		dc_jb_null(b, obj, key);
	else if (v == NULL && json_object_array_add(arr, NULL) != 0)
		b->failed = 1;
	else if (v != NULL && arr == NULL)
		dc_jb_add(b, obj, key, v);
	else if (v != NULL)
		dc_jb_push(b, arr, v);
}

struct json_object *
dc_result_columnar(const struct dc_rows *res, int nrows, enum dc_enc enc)
{
	struct dc_result_cols cols;
	struct dc_jb b = { 0 };
	struct json_object *o, *a;
	int i, row;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	o = json_object_new_object();
	for (i = 0; o != NULL && !b.failed && i < cols.n; i++) {
		a = json_object_new_array_ext(nrows);
		for (row = 0; a != NULL && !b.failed && row < nrows; row++)
			add_value(&b, NULL, NULL, a, res, row, i, enc);
		dc_jb_add(&b, o, cols.names[i], a);
	}
	dc_result_cols_free(&cols);
	return dc_jb_done(&b, o);
}

struct json_object *
dc_result_rows(const struct dc_rows *res, int nrows)
{
	struct dc_result_cols cols;
	struct dc_jb b = { 0 };
	struct json_object *a, *o;
	int i, row;

	if (dc_result_cols(res, &cols) != DC_OK)
		return NULL;
	a = json_object_new_array_ext(nrows);
	for (row = 0; a != NULL && !b.failed && row < nrows; row++) {
		o = json_object_new_object();
		for (i = 0; o != NULL && !b.failed && i < cols.n; i++)
			add_value(&b, o, cols.names[i], NULL, res, row, i,
			    DC_ENC_PYDANTIC);
		dc_jb_push(&b, a, o);
	}
	dc_result_cols_free(&cols);
	return dc_jb_done(&b, a);
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
		/* the pool's or the cache's words: removed, or changed */
		snprintf(detail, sz, "%s", r->error != NULL ? r->error :
		    "Database connection not found: it was removed while the "
		    "query waited");
		return 404;
	case DC_EPERM:
		snprintf(detail, sz, "%s", msg);
		return 403;
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
