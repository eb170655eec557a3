/*
 * nlq.c - catalog-question recognition, SQL extraction from LLM replies,
 * and edit distance for "did you mean" suggestions (nlq.h).
 *
 * The catalog phrasings are DataChat's: list tables ("list/show/what/which
 * tables", "available tables", "table list"), columns ("show/list/what
 * columns", "describe table X", "table schema", "fields in X"), row count
 * ("how many rows/records in X", "row count", "number of rows", "rows in
 * X"), and samples ("show me the first N rows from X", "preview X",
 * "sample rows", "top/limit N rows").  Matching works on lower-cased
 * words, so punctuation and case do not matter.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dc.h"
#include "nlq.h"

#define MAX_WORDS	64
#define WORD_LEN	128

struct words {
	int	 n;
	char	 w[MAX_WORDS][WORD_LEN];
};

/* Split into lower-case words; identifiers keep '_', '.', '"'. */
static void
split(const char *s, struct words *out)
{
	size_t len;

	out->n = 0;
	while (*s != '\0' && out->n < MAX_WORDS) {
		while (*s != '\0' && !(isalnum((unsigned char)*s) || *s == '_' ||
		    *s == '"'))
			s++;
		if (*s == '\0')
			break;
		len = 0;
		while (*s != '\0' && (isalnum((unsigned char)*s) || *s == '_' ||
		    *s == '.' || *s == '"')) {
			if (*s != '"' && len + 1 < WORD_LEN)
				out->w[out->n][len++] = (char)tolower(
				    (unsigned char)*s);
			s++;
		}
		while (len > 0 && out->w[out->n][len - 1] == '.')
			len--;	/* sentence end */
		out->w[out->n][len] = '\0';
		if (len > 0)
			out->n++;
	}
}

static int
find(const struct words *w, const char *word, int from)
{
	int i;

	for (i = from; i < w->n; i++)
		if (strcmp(w->w[i], word) == 0)
			return i;
	return -1;
}

static int
has(const struct words *w, const char *word)
{
	return find(w, word, 0) >= 0;
}

static int
is_number(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static int
stopword(const char *s)
{
	static const char *const stop[] = { "the", "a", "an", "table", "tables",
	    "from", "in", "of", "for", "on", "are", "is", "there", "me", "my",
	    "rows", "records", "columns", "fields", "first", "top", "show",
	    "all", "data", "please", "what", "which", "list", "describe",
	    "schema", "structure", "preview", "sample", "limit", "how", "many",
	    "count", "number", "row", "does", "do", "have", "has", "with",
	    "and", "to", "get", "give", "display", "tell", "about", "inside",
	    "contained", "stored", "exist", "exists", "available", "some",
	    "few", "n", "by", "at", "be", NULL };
	int i;

	for (i = 0; stop[i] != NULL; i++)
		if (strcmp(s, stop[i]) == 0)
			return 1;
	return is_number(s);
}

/*
 * The table a question names: the word after a marker ("from", "in",
 * "of", "table", "describe", "preview"), else the last word that is not a
 * stop word.
 */
static int
table_after(const struct words *w, const char *const *markers,
    char *out, size_t outsz)
{
	int i, j, k;

	for (k = 0; markers[k] != NULL; k++) {
		for (i = find(w, markers[k], 0); i >= 0;
		    i = find(w, markers[k], i + 1)) {
			for (j = i + 1; j < w->n; j++) {
				if (strcmp(w->w[j], "the") == 0 ||
				    strcmp(w->w[j], "table") == 0)
					continue;
				if (stopword(w->w[j]))
					break;
				dc_strlcpy(out, w->w[j], outsz);
				return 1;
			}
		}
	}
	for (i = w->n - 1; i >= 0; i--)
		if (!stopword(w->w[i])) {
			dc_strlcpy(out, w->w[i], outsz);
			return 1;
		}
	return 0;
}

static int
number_in(const struct words *w, int def)
{
	int i;
	long v;

	for (i = 0; i < w->n; i++)
		if (is_number(w->w[i])) {
			v = strtol(w->w[i], NULL, 10);
			return v < 1 ? 1 : v > 100 ? 100 : (int)v;
		}
	return def;
}

void
dc_nlq_classify(const char *message, struct dc_nlq_intent *in)
{
	static const char *const tbl_markers[] = { "from", "in", "of", "table",
	    "describe", "preview", "sample", NULL };
	struct words *w = malloc(sizeof(*w));
	int rows, cols, tables;

	memset(in, 0, sizeof(*in));
	if (w == NULL)
		return;
	split(message != NULL ? message : "", w);
	rows = has(w, "rows") || has(w, "records") || has(w, "row");
	cols = has(w, "columns") || has(w, "fields") || has(w, "column");
	tables = has(w, "tables") || (has(w, "table") && has(w, "list"));

	/* row count: "how many rows/records", "row count", "number of rows" */
	if ((has(w, "how") && has(w, "many") && rows) ||
	    (has(w, "row") && has(w, "count")) ||
	    (has(w, "number") && has(w, "of") && rows) ||
	    (has(w, "count") && rows)) {
		if (table_after(w, tbl_markers, in->table, sizeof(in->table)))
			in->kind = DC_NLQ_ROW_COUNT;
		goto out;
	}
	/* samples: first/top/limit N rows, preview X, sample rows */
	if (has(w, "preview") || (has(w, "sample") && (rows ||
	    has(w, "data"))) || (rows && (has(w, "first") || has(w, "top") ||
	    has(w, "limit") || has(w, "show")))) {
		if (table_after(w, tbl_markers, in->table, sizeof(in->table))) {
			in->kind = DC_NLQ_SAMPLE;
			in->limit = number_in(w, 5);
		}
		goto out;
	}
	/* columns: show/list/what columns, describe table X, fields in X */
	if (cols || has(w, "describe") || (has(w, "schema") && has(w, "table")) ||
	    has(w, "structure")) {
		if (table_after(w, tbl_markers, in->table, sizeof(in->table)))
			in->kind = DC_NLQ_COLUMNS;
		goto out;
	}
	/* list tables */
	if (tables && (has(w, "list") || has(w, "show") || has(w, "what") ||
	    has(w, "which") || has(w, "available") || has(w, "all") ||
	    w->n <= 3))
		in->kind = DC_NLQ_LIST_TABLES;
	else if (has(w, "table") && has(w, "list"))
		in->kind = DC_NLQ_LIST_TABLES;
out:
	free(w);
}

static char *
trim_sql(const char *s, size_t len)
{
	char *out;

	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && (isspace((unsigned char)s[len - 1]) ||
	    s[len - 1] == ';'))
		len--;
	if (len == 0)
		return NULL;
	out = malloc(len + 1);
	if (out != NULL) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

char *
dc_nlq_extract_sql(const char *reply)
{
	struct json_object *o, *sql;
	const char *fence, *start, *end;
	char *out = NULL;

	if (reply == NULL)
		return NULL;
	/* JSON {"sql": "..."} (maybe inside a fence) */
	start = strchr(reply, '{');
	end = strrchr(reply, '}');
	if (start != NULL && end != NULL && end > start) {
		char *js = strndup(start, (size_t)(end - start + 1));

		o = js != NULL ? json_tokener_parse(js) : NULL;
		free(js);
		if (o != NULL && json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "sql", &sql) &&
		    json_object_is_type(sql, json_type_string)) {
			out = trim_sql(json_object_get_string(sql),
			    strlen(json_object_get_string(sql)));
			json_object_put(o);
			return out;
		}
		if (o != NULL)
			json_object_put(o);
	}
	/* a fenced block: ```sql ... ``` or ``` ... ``` */
	fence = strstr(reply, "```");
	if (fence != NULL) {
		start = fence + 3;
		while (*start != '\0' && *start != '\n' &&
		    isalnum((unsigned char)*start))
			start++;	/* the language tag */
		end = strstr(start, "```");
		if (end == NULL)
			end = start + strlen(start);
		return trim_sql(start, (size_t)(end - start));
	}
	/* plain text: from the first SQL keyword on */
	{
		static const char *const kw[] = { "with", "select", "values",
		    "table", "explain", "show", NULL };
		const char *p;
		int i;

		for (p = reply; *p != '\0'; p++) {
			if (p != reply && isalnum((unsigned char)p[-1]))
				continue;
			for (i = 0; kw[i] != NULL; i++)
				if (strncasecmp(p, kw[i], strlen(kw[i])) == 0 &&
				    !isalnum((unsigned char)p[strlen(kw[i])]))
					return trim_sql(p, strlen(p));
		}
	}
	return trim_sql(reply, strlen(reply));
}

int
dc_nlq_distance(const char *a, const char *b)
{
	int prev[65], cur[65], la, lb, i, j, cost, t;

	la = (int)strlen(a);
	lb = (int)strlen(b);
	if (la > 64)
		la = 64;
	if (lb > 64)
		lb = 64;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			cost = tolower((unsigned char)a[i - 1]) ==
			    tolower((unsigned char)b[j - 1]) ? 0 : 1;
			t = prev[j] + 1;
			if (cur[j - 1] + 1 < t)
				t = cur[j - 1] + 1;
			if (prev[j - 1] + cost < t)
				t = prev[j - 1] + cost;
			cur[j] = t;
		}
		memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
	}
	return prev[lb];
}
