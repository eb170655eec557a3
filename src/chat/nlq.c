/*
 * nlq.c - catalog questions (nlq.h): DataChat's phrasings, its plans and
 * answer texts; SQL extraction from LLM replies; edit distance for "did
 * you mean" suggestions.
 *
 * The phrasings are DataChat's (database/catalog.py is_*_query and
 * extract_explicit_table_name, utils/pattern_matcher.py), written as
 * word patterns (phrase.h), tried in DataChat's order: list tables, list
 * columns, sample rows, row count.  Two departures, both so that a
 * question is not misread: "show me how many rows..." counts rather than
 * samples, and a word that cannot be a table ("schema" in "table schema
 * for x") is skipped rather than taken as the table.  datachatd also
 * knows "describe X" and "columns of X", as it did before.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dc.h"
#include "driver.h"
#include "nlq.h"
#include "phrase.h"
#include "schema.h"

static const char *const list_tables_phrases[] = {
	"what tables", "which tables", "available tables", "table list",
	"list|show me? all? the? tables", "tables available",
	"^ all? the? tables $", NULL
};

static const char *const columns_phrases[] = {
	"show|list|what|which columns", "describe table", "table schema",
	"column list", "fields in", "describe @", "columns of|in", NULL
};

static const char *const sample_phrases[] = {
	"show * rows", "first|top|limit # row|rows|record|records", "preview",
	"sample row|rows|record|records|data", "sample of|from",
	"example row|rows", NULL
};

/* "show me how many rows": a count, not a sample */
static const char *const count_words[] = {
	"how many", "count", "number of", NULL
};

static const char *const row_count_phrases[] = {
	"row count", "how many rows", "number of rows", "count of rows",
	"total rows", "how many records", "record count", "rows|records in",
	"count rows|records", NULL
};

/* Where a question names its table, most specific first. */
static const char *const table_phrases[] = {
	"how many rows|row are? in the? @",
	"count of rows|row in the? @",
	"rows|row|records|record|columns|column|fields|field from|in|of the? @",
	"for table @", "table named|called @", "in the? @ table",
	"the @ table", "table @", "describe the? @", "preview|sample the? @",
	"from|in|of|for the? @",
	NULL
};

/* Words that name no table (DataChat's _DISALLOWED_TABLE_HINTS and more). */
static const char *const not_tables[] = {
	"which", "what", "who", "where", "when", "why", "how", "should",
	"would", "could", "can", "do", "does", "did", "is", "are", "be", "show",
	"list", "describe", "get", "select", "rows", "row", "columns",
	"column", "table", "tables", "end", "exit", "quit", "stop", "bye",
	"goodbye", "the", "a", "an", "schema", "named", "called", "me", "all",
	"first", "top", "last", "records", "record", "fields", "field", "it",
	"this", "that", "my", "our", "your", "database", "data", "there",
	"each", "every", "some", "any", "for", "from", "in", "of", "sample",
	"preview", NULL
};

static int
listed(const char *w, const char *const *list)
{
	int i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(w, list[i]) == 0)
			return 1;
	return 0;
}

/* DataChat's normalize_table_reference: name or schema.name. */
static int
table_ok(const char *s)
{
	int parts = 1, len = 0;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (len == 0 || ++parts > 2)
				return 0;
			len = 0;
			continue;
		}
		if (len == 0 && isdigit((unsigned char)*s))
			return 0;
		if (!isalnum((unsigned char)*s) && *s != '_' &&
		    (unsigned char)*s < 0x80)
			return 0;
		if (++len > 63)
			return 0;
	}
	return len > 0;
}

/* The table the question names, into out ("" when none). */
static void
table_of(const char *message, const struct dc_words *w, char *out,
    size_t outsz)
{
	char cap[DC_WORD_LEN];
	const char *colon;
	struct dc_words *tail;
	int i, at;

	out[0] = '\0';
	/* a reply to a clarification: 'Regarding "Which table...?": sales' */
	if ((colon = strrchr(message, ':')) != NULL &&
	    (tail = malloc(sizeof(*tail))) != NULL) {
		dc_words_split(colon + 1, 1, tail);
		if (tail->n > 0 && !listed(tail->w[0], not_tables) &&
		    table_ok(tail->w[0]))
			dc_strlcpy(out, tail->w[0], outsz);
		free(tail);
		if (out[0] != '\0')
			return;
	}
	for (i = 0; table_phrases[i] != NULL; i++)
		for (at = dc_phrase_find(table_phrases[i], w, 0, NULL, cap,
		    sizeof(cap)); at >= 0; at = dc_phrase_find(table_phrases[i],
		    w, at + 1, NULL, cap, sizeof(cap)))
			if (!listed(cap, not_tables) && table_ok(cap)) {
				dc_strlcpy(out, cap, outsz);
				return;
			}
}

/* DataChat's extract_limit: first/top/limit N, or show N rows; 3; 1..10. */
static int
limit_of(const struct dc_words *w)
{
	char num[DC_WORD_LEN];
	long v;

	if (dc_phrase_find("first|top|limit #", w, 0, NULL, num,
	    sizeof(num)) < 0 && dc_phrase_find("show me? # row|rows", w, 0, NULL,
	    num, sizeof(num)) < 0)
		return DC_NLQ_SAMPLE_DEFAULT;
	v = strlen(num) > 6 ? DC_NLQ_SAMPLE_MAX : strtol(num, NULL, 10);
	return v < 1 ? 1 : v > DC_NLQ_SAMPLE_MAX ? DC_NLQ_SAMPLE_MAX : (int)v;
}

void
dc_nlq_classify(const char *message, struct dc_nlq_intent *in)
{
	struct dc_words *w = malloc(sizeof(*w));

	memset(in, 0, sizeof(*in));
	if (w == NULL)
		return;		/* the LLM gets it: nothing is lost */
	message = message != NULL ? message : "";
	dc_words_split(message, 1, w);
	if (dc_phrase_any(list_tables_phrases, w, NULL))
		in->kind = DC_NLQ_LIST_TABLES;
	else if (dc_phrase_any(columns_phrases, w, NULL))
		in->kind = DC_NLQ_COLUMNS;
	else if (dc_phrase_any(sample_phrases, w, NULL) &&
	    !dc_phrase_any(count_words, w, NULL)) {
		in->kind = DC_NLQ_SAMPLE;
		in->limit = limit_of(w);
	} else if (dc_phrase_any(row_count_phrases, w, NULL))
		in->kind = DC_NLQ_ROW_COUNT;
	if (in->kind != DC_NLQ_NONE && in->kind != DC_NLQ_LIST_TABLES)
		table_of(message, w, in->table, sizeof(in->table));
	free(w);
}

const char *
dc_nlq_operation(int kind)
{
	switch (kind) {
	case DC_NLQ_LIST_TABLES:
		return "list_tables";
	case DC_NLQ_COLUMNS:
		return "list_columns";
	case DC_NLQ_ROW_COUNT:
		return "row_count";
	case DC_NLQ_SAMPLE:
		return "sample_rows";
	}
	return NULL;
}

const char *
dc_nlq_question(int kind)
{
	switch (kind) {
	case DC_NLQ_COLUMNS:
		return "Which table should I list columns for?";
	case DC_NLQ_ROW_COUNT:
		return "Which table should I count rows for?";
	case DC_NLQ_SAMPLE:
		return "Which table should I sample rows from?";
	}
	return NULL;
}

/* SQL keywords PostgreSQL and MySQL reserve: a bare name cannot be one. */
static const char *const reserved[] = {
	"all", "analyse", "analyze", "and", "any", "array", "as", "asc",
	"asymmetric", "authorization", "binary", "both", "case", "cast",
	"check", "collate", "collation", "column", "concurrently",
	"constraint", "create", "cross", "current_catalog", "current_date",
	"current_role", "current_schema", "current_time", "current_timestamp",
	"current_user", "database", "default", "deferrable", "delete", "desc",
	"distinct", "do", "else", "end", "except", "false", "fetch", "for",
	"foreign", "freeze", "from", "full", "grant", "group", "having",
	"ilike", "in", "index", "initially", "inner", "insert", "intersect",
	"interval", "into", "is", "isnull", "join", "key", "lateral",
	"leading", "left", "like", "limit", "localtime", "localtimestamp",
	"natural", "not", "notnull", "null", "offset", "on", "only", "or",
	"order", "outer", "overlaps", "placing", "primary", "range", "references",
	"returning", "right", "row", "rows", "schema", "select",
	"session_user", "similar", "some", "symmetric", "system_user",
	"table", "tablesample", "then", "to", "trailing", "true", "union",
	"unique", "update", "user", "using", "values", "variadic", "verbose",
	"when", "where", "window", "with",
	NULL
};

/* Whether s may be written bare: a lower-case identifier, not reserved. */
static int
bare_ok(const char *s, int first)
{
	const char *p;

	if (*s == '\0' || isdigit((unsigned char)*s))
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
		    *p == '_'))
			return 0;
	return !first || !listed(s, reserved);
}

static size_t
put_ident(const struct dc_dialect *d, const char *s, int first, char *out,
    size_t outsz)
{
	size_t o = 0;

	if (bare_ok(s, first))
		return (size_t)snprintf(out, outsz, "%s", s);
	if (o + 1 < outsz)
		out[o] = d->quote;
	o++;
	for (; *s != '\0'; s++) {
		if (*s == d->quote) {
			if (o + 1 < outsz)
				out[o] = *s;
			o++;
		}
		if (o + 1 < outsz)
			out[o] = *s;
		o++;
	}
	if (o + 1 < outsz)
		out[o] = d->quote;
	o++;
	if (outsz > 0)
		out[o < outsz ? o : outsz - 1] = '\0';
	return o;
}

void
dc_nlq_qualify(const struct dc_dialect *d, const char *schema,
    const char *table, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz > 0)
		out[0] = '\0';
	if (schema != NULL) {
		o = put_ident(d, schema, 1, out, outsz);
		if (o + 1 < outsz)
			out[o] = '.';
		o++;
	}
	if (o < outsz)
		put_ident(d, table, schema == NULL, out + o, outsz - o);
}

/* 'name' as a string literal; 0, or DC_EINVAL for what cannot be one. */
static int
literal(const char *s, char *out, size_t outsz)
{
	size_t o = 0;

	if (*s == '\0' || outsz < 3)
		return DC_EINVAL;
	out[o++] = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\\' || (unsigned char)*s < 0x20)
			return DC_EINVAL;	/* MySQL reads escapes */
		if (o + 3 >= outsz)
			return DC_EINVAL;
		if (*s == '\'')
			out[o++] = '\'';
		out[o++] = *s;
	}
	out[o++] = '\'';
	out[o] = '\0';
	return DC_OK;
}

int
dc_nlq_sql(const struct dc_dialect *d, int kind, const char *schema,
    const char *table, int limit, char **out)
{
	char name[2 * DC_NLQ_NAME_MAX + 8], lt[2 * DC_NLQ_NAME_MAX],
	    ls[2 * DC_NLQ_NAME_MAX];
	int n = -1;

	*out = NULL;
	if (kind != DC_NLQ_LIST_TABLES && (table == NULL ||
	    strlen(table) >= DC_NLQ_NAME_MAX || (schema != NULL &&
	    strlen(schema) >= DC_NLQ_NAME_MAX)))
		return DC_EINVAL;
	if (limit < 1)
		limit = DC_NLQ_SAMPLE_DEFAULT;
	if (limit > DC_NLQ_SAMPLE_MAX)
		limit = DC_NLQ_SAMPLE_MAX;
	switch (kind) {
	case DC_NLQ_LIST_TABLES:
		*out = strdup(d->list_tables_sql);
		return *out != NULL ? DC_OK : DC_ENOMEM;
	case DC_NLQ_COLUMNS:
		if (schema == NULL || literal(table, lt, sizeof(lt)) != DC_OK ||
		    literal(schema, ls, sizeof(ls)) != DC_OK)
			return DC_EINVAL;
		n = asprintf(out, d->list_columns_sql, lt, ls);
		break;
	case DC_NLQ_ROW_COUNT:
	case DC_NLQ_SAMPLE:
		dc_nlq_qualify(d, schema, table, name, sizeof(name));
		if (strlen(name) + 1 >= sizeof(name))
			return DC_EINVAL;
		n = kind == DC_NLQ_ROW_COUNT ? asprintf(out, d->count_sql, name) :
		    asprintf(out, d->sample_sql, name, limit);
		break;
	default:
		return DC_EINVAL;
	}
	if (n < 0) {
		*out = NULL;
		return DC_ENOMEM;
	}
	return DC_OK;
}

char *
dc_nlq_answer(int kind, const char *table, int nrows,
    const char *const *names, int n, const char *value)
{
	char list[1024], *out = NULL;
	size_t o = 0;
	int i, rc = -1;

	list[0] = '\0';
	for (i = 0; i < n && i < 10 && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    i > 0 ? ", " : "", names[i]);
	if (n > 10 && o < sizeof(list))
		snprintf(list + o, sizeof(list) - o, " (and %d more)", n - 10);
	switch (kind) {
	case DC_NLQ_LIST_TABLES:
		rc = nrows == 0 ? asprintf(&out, "No tables were found.") :
		    asprintf(&out, "Found %d table(s): %s.", n, list);
		break;
	case DC_NLQ_COLUMNS:
		rc = nrows == 0 ? asprintf(&out, "No columns were found for "
		    "table `%s`.", table) : asprintf(&out, "The `%s` table has "
		    "%d column(s): %s.", table, n, list);
		break;
	case DC_NLQ_ROW_COUNT:
		rc = nrows == 0 || value == NULL ? asprintf(&out, "No results "
		    "found for `%s`.", table) : asprintf(&out, "Table `%s` has "
		    "%s row(s).", table, value);
		break;
	case DC_NLQ_SAMPLE:
		rc = nrows == 0 ? asprintf(&out, "No results found for `%s`.",
		    table) : asprintf(&out, "Returned %d row(s) from `%s`.",
		    nrows, table);
		break;
	}
	return rc < 0 ? NULL : out;
}

int
dc_nlq_find(const struct dc_schema *s, const char *name,
    const char *default_schema, const struct dc_schema_table **out,
    int *nmatch)
{
	const struct dc_schema_table *t;
	const char *dot = strchr(name, '.');
	size_t slen = dot != NULL ? (size_t)(dot - name) : 0;
	int i, n = 0;

	*out = NULL;
	if (nmatch != NULL)
		*nmatch = 0;
	for (i = 0; s != NULL && i < s->ntables; i++) {
		t = &s->tables[i];
		if (dot != NULL) {
			if (strlen(t->schema) == slen &&
			    strncasecmp(t->schema, name, slen) == 0 &&
			    strcasecmp(t->name, dot + 1) == 0) {
				*out = t;
				n = 1;
				break;
			}
			continue;
		}
		if (strcasecmp(t->name, name) != 0)
			continue;
		if (default_schema != NULL &&
		    strcmp(t->schema, default_schema) == 0) {
			*out = t;	/* the schema a bare name means */
			n = 1;
			break;
		}
		if (n++ == 0)
			*out = t;
	}
	if (nmatch != NULL)
		*nmatch = n;
	return n == 0 ? DC_NLQ_MISSING : n == 1 ? DC_NLQ_FOUND :
	    DC_NLQ_AMBIGUOUS;
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
