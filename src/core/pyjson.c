/*
 * pyjson.c - where Python's json module says a document is wrong.
 *
 * DataChat answers a body that is not JSON with FastAPI's 422
 * json_invalid error, which carries the message and the position of
 * CPython 3.13's json scanner ("Expecting ',' delimiter" at character
 * 17).  datachatd parses bodies with json-c; when json-c refuses one,
 * this scanner walks it again the way Modules/_json.c does and reports
 * the first error with the same words and the same position, counted in
 * characters (code points), not bytes.  It only runs on the error path.
 */
#include <stddef.h>
#include <string.h>

#include "dc.h"
#include "pyjson.h"

#define PYJSON_MAX_DEPTH	900	/* below CPython's recursion limit */

struct scan {
	const unsigned char *s;
	size_t		 len;		/* bytes */
	size_t		 i;		/* byte offset */
	const char	*msg;		/* the error, once found */
	size_t		 at;		/* its byte offset */
	int		 depth;
};

static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
skip_ws(struct scan *sc)
{
	while (sc->i < sc->len && is_ws(sc->s[sc->i]))
		sc->i++;
}

static int
fail(struct scan *sc, const char *msg, size_t at)
{
	sc->msg = msg;
	sc->at = at;
	return -1;
}

static int
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * A string whose opening quote is at sc->i - 1 (scanstring_unicode).
 * The positions it reports are those of the C scanner: the quote for an
 * unterminated string, the backslash for a bad escape, the 'u' + 1 - 1
 * dance for \u escapes.
 */
static int
scan_string(struct scan *sc)
{
	size_t begin = sc->i - 1, k;
	unsigned char c;

	for (;;) {
		while (sc->i < sc->len) {
			c = sc->s[sc->i];
			if (c == '"' || c == '\\')
				break;
			if (c <= 0x1f)
				return fail(sc, "Invalid control character at",
				    sc->i);
			sc->i++;
		}
		if (sc->i >= sc->len)
			return fail(sc, "Unterminated string starting at", begin);
		if (sc->s[sc->i] == '"') {
			sc->i++;
			return 0;
		}
		sc->i++;	/* the backslash */
		if (sc->i >= sc->len)
			return fail(sc, "Unterminated string starting at", begin);
		c = sc->s[sc->i];
		if (c != 'u') {
			if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
				return fail(sc, "Invalid \\escape", sc->i - 1);
			sc->i++;
			continue;
		}
		sc->i++;
		/* four hex digits, and the doc must go on after them */
		if (sc->i + 4 >= sc->len)
			return fail(sc, "Invalid \\uXXXX escape", sc->i - 1);
		for (k = 0; k < 4; k++)
			if (!is_hex(sc->s[sc->i + k]))
				return fail(sc, "Invalid \\uXXXX escape",
				    sc->i - 1);
		sc->i += 4;
	}
}

static int	 scan_value(struct scan *sc);

/* _match_number_unicode: the text must start a number, else no value. */
static int
scan_number(struct scan *sc)
{
	size_t start = sc->i, e;

	if (sc->s[sc->i] == '-') {
		sc->i++;
		if (sc->i >= sc->len)
			return fail(sc, "Expecting value", start);
	}
	if (sc->s[sc->i] >= '1' && sc->s[sc->i] <= '9') {
		while (sc->i < sc->len && sc->s[sc->i] >= '0' &&
		    sc->s[sc->i] <= '9')
			sc->i++;
	} else if (sc->s[sc->i] == '0')
		sc->i++;
	else
		return fail(sc, "Expecting value", start);
	if (sc->i + 1 < sc->len && sc->s[sc->i] == '.' &&
	    sc->s[sc->i + 1] >= '0' && sc->s[sc->i + 1] <= '9') {
		sc->i += 2;
		while (sc->i < sc->len && sc->s[sc->i] >= '0' &&
		    sc->s[sc->i] <= '9')
			sc->i++;
	}
	if (sc->i + 1 < sc->len && (sc->s[sc->i] == 'e' ||
	    sc->s[sc->i] == 'E')) {
		e = sc->i++;
		if (sc->i + 1 < sc->len && (sc->s[sc->i] == '-' ||
		    sc->s[sc->i] == '+'))
			sc->i++;
		while (sc->i < sc->len && sc->s[sc->i] >= '0' &&
		    sc->s[sc->i] <= '9')
			sc->i++;
		if (!(sc->s[sc->i - 1] >= '0' && sc->s[sc->i - 1] <= '9'))
			sc->i = e;	/* not an exponent: backtrack */
	}
	return 0;
}

static int
word(struct scan *sc, const char *w)
{
	size_t n = strlen(w);

	if (sc->len - sc->i >= n && memcmp(sc->s + sc->i, w, n) == 0) {
		sc->i += n;
		return 1;
	}
	return 0;
}

static int
scan_object(struct scan *sc)
{
	size_t comma;

	skip_ws(sc);
	if (sc->i < sc->len && sc->s[sc->i] == '}') {
		sc->i++;
		return 0;
	}
	for (;;) {
		if (sc->i >= sc->len || sc->s[sc->i] != '"')
			return fail(sc, "Expecting property name enclosed in "
			    "double quotes", sc->i);
		sc->i++;
		if (scan_string(sc) != 0)
			return -1;
		skip_ws(sc);
		if (sc->i >= sc->len || sc->s[sc->i] != ':')
			return fail(sc, "Expecting ':' delimiter", sc->i);
		sc->i++;
		skip_ws(sc);
		if (scan_value(sc) != 0)
			return -1;
		skip_ws(sc);
		if (sc->i < sc->len && sc->s[sc->i] == '}') {
			sc->i++;
			return 0;
		}
		if (sc->i >= sc->len || sc->s[sc->i] != ',')
			return fail(sc, "Expecting ',' delimiter", sc->i);
		comma = sc->i++;
		skip_ws(sc);
		if (sc->i < sc->len && sc->s[sc->i] == '}')
			return fail(sc, "Illegal trailing comma before end of "
			    "object", comma);
	}
}

static int
scan_array(struct scan *sc)
{
	size_t comma;

	skip_ws(sc);
	if (sc->i < sc->len && sc->s[sc->i] == ']') {
		sc->i++;
		return 0;
	}
	for (;;) {
		if (scan_value(sc) != 0)
			return -1;
		skip_ws(sc);
		if (sc->i < sc->len && sc->s[sc->i] == ']') {
			sc->i++;
			return 0;
		}
		if (sc->i >= sc->len || sc->s[sc->i] != ',')
			return fail(sc, "Expecting ',' delimiter", sc->i);
		comma = sc->i++;
		skip_ws(sc);
		if (sc->i < sc->len && sc->s[sc->i] == ']')
			return fail(sc, "Illegal trailing comma before end of "
			    "array", comma);
	}
}

/* scan_once_unicode: anything it does not recognise "expects a value". */
static int
scan_value(struct scan *sc)
{
	int rc;

	if (sc->i >= sc->len)
		return fail(sc, "Expecting value", sc->i);
	switch (sc->s[sc->i]) {
	case '"':
		sc->i++;
		return scan_string(sc);
	case '{':
	case '[':
		if (++sc->depth > PYJSON_MAX_DEPTH)
			return fail(sc, NULL, sc->i);
		sc->i++;
		rc = sc->s[sc->i - 1] == '{' ? scan_object(sc) : scan_array(sc);
		sc->depth--;
		return rc;
	case 'n':
		if (word(sc, "null"))
			return 0;
		break;
	case 't':
		if (word(sc, "true"))
			return 0;
		break;
	case 'f':
		if (word(sc, "false"))
			return 0;
		break;
	case 'N':
		if (word(sc, "NaN"))
			return 0;
		break;
	case 'I':
		if (word(sc, "Infinity"))
			return 0;
		break;
	case '-':
		if (word(sc, "-Infinity"))
			return 0;
		return scan_number(sc);
	default:
		if (sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
			return scan_number(sc);
		break;
	}
	return fail(sc, "Expecting value", sc->i);
}

/* Code points in s[0..n): every byte that does not continue a sequence. */
static size_t
chars(const unsigned char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

int
dc_pyjson_utf8_ok(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0, n, k;
	unsigned cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0 && s[i] >= 0xc2) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0 && s[i] <= 0xf4) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		for (k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

int
dc_pyjson_error(const char *buf, size_t len, const char **msg, size_t *pos)
{
	struct scan sc;

	memset(&sc, 0, sizeof(sc));
	sc.s = (const unsigned char *)buf;
	sc.len = len;
	*msg = NULL;
	*pos = 0;
	/* json.loads: leading whitespace, one value, trailing whitespace */
	skip_ws(&sc);
	if (scan_value(&sc) == 0) {
		skip_ws(&sc);
		if (sc.i == sc.len)
			return 0;
		sc.msg = "Extra data";
		sc.at = sc.i;
	}
	if (sc.msg == NULL)
		return 0;	/* deeper than we follow: not our error */
	*msg = sc.msg;
	*pos = chars(sc.s, sc.at);
	return 1;
}
