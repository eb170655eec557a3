/*
 * viz.c - DataChat's visualization hint, rule for rule (viz.h).
 *
 * No rows or no columns: "none".  One column: "table".  Two numeric
 * columns or more and at most 400 rows: "scatter".  A numeric column and
 * a date-like column name: "line_chart".  A numeric column, a
 * non-numeric one and at most 40 rows: "bar_chart".  Otherwise "table".
 * What counts as numeric is DataChat's _to_float over the values its
 * database driver hands it (see result.h for which column types those
 * are): integers and floats, and text that float() reads after commas
 * are dropped.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "viz.h"

const char *
dc_viz_hint(int ncols, const char *const *names, const int *numeric,
    int nrows)
{
	int i, nnum = 0, ndate = 0, ncat = 0;

	if (ncols <= 0 || nrows <= 0)
		return "none";
	if (ncols == 1)
		return "table";
	for (i = 0; i < ncols; i++) {
		if (numeric[i])
			nnum++;
		else
			ncat++;
		if (dc_viz_date_like(names[i]))
			ndate++;
	}
	if (nnum >= 2 && nrows <= 400)
		return "scatter";
	if (nnum > 0 && ndate > 0)
		return "line_chart";
	if (nnum > 0 && ncat > 0 && nrows <= 40)
		return "bar_chart";
	return "table";
}

int
dc_viz_date_like(const char *name)
{
	static const char *const markers[] = { "date", "time", "timestamp",
	    "datetime", "day", "week", "month", "year" };
	const char *p = name, *s;
	size_t n, i;

	/* lower(), "-" as "_", split on "_", any token a marker */
	while (*p != '\0') {
		while (*p == '_' || *p == '-')
			p++;
		for (s = p; *p != '\0' && *p != '_' && *p != '-'; p++)
			;
		n = (size_t)(p - s);
		for (i = 0; n > 0 && i < sizeof(markers) / sizeof(markers[0]);
		    i++)
			if (strlen(markers[i]) == n &&
			    strncasecmp(s, markers[i], n) == 0)
				return 1;
	}
	return 0;
}

/* Python's str.strip() whitespace, ASCII part. */
static int
py_space(int c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x1c ||
	    c == 0x1d || c == 0x1e || c == 0x1f;
}

/* digits with single underscores between them; *p advances */
static int
py_digits(const char **p)
{
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s) || (*s == '_' &&
	    isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[-1])))
		s++;
	*p = s;
	return 1;
}

int
dc_viz_text_is_number(const char *s)
{
	char buf[256];
	const char *p, *e;
	size_t n = 0;
	int mant = 0;

	/* .strip(), then .replace(",", "") */
	while (py_space((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && py_space((unsigned char)e[-1]))
		e--;
	for (p = s; p < e && n < sizeof(buf) - 1; p++)
		if (*p != ',')
			buf[n++] = *p;
	if (p < e)
		return 0;	/* longer than any number we would care about */
	buf[n] = '\0';
	/* float(): optional whitespace again (inner, after commas went) */
	p = buf;
	while (py_space((unsigned char)*p))
		p++;
	e = buf + n;
	while (e > p && py_space((unsigned char)e[-1]))
		e--;
	if (p == e)
		return 0;
	if (*p == '+' || *p == '-')
		p++;
	if ((size_t)(e - p) == 3 && strncasecmp(p, "inf", 3) == 0)
		return 1;
	if ((size_t)(e - p) == 8 && strncasecmp(p, "infinity", 8) == 0)
		return 1;
	if ((size_t)(e - p) == 3 && strncasecmp(p, "nan", 3) == 0)
		return 1;
	if (py_digits(&p))
		mant = 1;
	if (*p == '.') {
		p++;
		if (py_digits(&p))
			mant = 1;
	}
	if (!mant)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!py_digits(&p))
			return 0;
	}
	return p == e;
}
