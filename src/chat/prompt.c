/*
 * prompt.c - the prompts sent to the LLM (prompt.h).
 *
 * Tables are ranked by how much of the question they touch: a table whose
 * name (or its singular) is a word of the question ranks first, then
 * tables with matching column names; ties keep catalog order.  Tables are
 * then written one line each until the budget is spent, so a large schema
 * still fits and the relevant part is never the part cut off.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "dc.h"
#include "prompt.h"

char *
dc_prompt_system(const char *dialect, const char *rules)
{
	char *s = NULL;

	if (asprintf(&s,
	    "You translate questions into SQL for a %s database.\n"
	    "Rules:\n"
	    "- Answer with exactly one read-only statement (SELECT or WITH ... "
	    "SELECT) in the %s dialect, and nothing else: no explanation.\n"
	    "- Never write INSERT, UPDATE, DELETE, DDL, transaction control, "
	    "SET, COPY or more than one statement.\n"
	    "- Use only the tables and columns listed in the schema.\n"
	    "%s"
	    "- Add a LIMIT of at most 100 rows unless the question asks for an "
	    "aggregate or a specific number of rows.\n"
	    "- Reply with the SQL in a ```sql fenced block.\n",
	    dialect, dialect, rules != NULL ? rules : "") < 0)
		return NULL;
	return s;
}

/* Lower-case words of the question, NUL-separated, in one buffer. */
static int
word_match(const char *question, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (n == 0)
		return 0;
	for (p = question; (p = strcasestr(p, name)) != NULL; p++) {
		int before = p == question || !isalnum((unsigned char)p[-1]);
		char after = p[n];

		/* whole word, allowing a plural or possessive ending */
		if (before && (!isalnum((unsigned char)after) ||
		    ((after == 's' || after == 'S') &&
		    !isalnum((unsigned char)p[n + 1]))))
			return 1;
	}
	return 0;
}

int
dc_prompt_score(const struct dc_schema_table *t, const char *question)
{
	char singular[256];
	size_t n;
	int score = 0, i;

	if (word_match(question, t->name))
		score += 100;
	n = strlen(t->name);
	if (n > 1 && n < sizeof(singular) && t->name[n - 1] == 's') {
		memcpy(singular, t->name, n - 1);
		singular[n - 1] = '\0';
		if (word_match(question, singular))
			score += 90;
	}
	for (i = 0; i < t->ncols; i++)
		if (strlen(t->cols[i].name) > 2 &&
		    word_match(question, t->cols[i].name))
			score += 10;
	return score;
}

struct ranked {
	int	 idx;
	int	 score;
};

static int
cmp_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->score != y->score)
		return y->score - x->score;
	return x->idx - y->idx;
}

static void
table_line(struct evbuffer *b, const struct dc_schema_table *t)
{
	int i;

	evbuffer_add_printf(b, "- %s.%s", t->schema, t->name);
	if (t->row_count >= 0)
		evbuffer_add_printf(b, " (~%lld rows)", (long long)t->row_count);
	evbuffer_add_printf(b, ": ");
	for (i = 0; i < t->ncols; i++) {
		const struct dc_schema_column *c = &t->cols[i];

		evbuffer_add_printf(b, "%s%s %s%s", i ? ", " : "", c->name,
		    c->data_type, c->is_pk ? " PK" : "");
		if (c->is_fk && c->foreign_table != NULL)
			evbuffer_add_printf(b, " FK->%s.%s", c->foreign_table,
			    c->foreign_column != NULL ? c->foreign_column : "?");
	}
	evbuffer_add_printf(b, "\n");
}

static char *
prompt_user(const struct dc_schema *s, const char *question,
    const char *context, const char *rank_hint, const char *prev_sql,
    const char *error, size_t budget, int *ntables_out)
{
	struct evbuffer *b = evbuffer_new(), *line = NULL;
	struct ranked *rk = NULL;
	size_t used = 0, len, clen = context != NULL ? strlen(context) : 0;
	char *out = NULL;
	int i, n = s != NULL ? s->ntables : 0, shown = 0;

	if (b == NULL || (line = evbuffer_new()) == NULL)
		goto out;
	if (n > 0 && (rk = calloc((size_t)n, sizeof(*rk))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		rk[i].idx = i;
		/* the question first; what it follows up on next */
		rk[i].score = 2 * dc_prompt_score(&s->tables[i], question);
		if (rank_hint != NULL)
			rk[i].score += dc_prompt_score(&s->tables[i],
			    rank_hint);
	}
	/* the conversation so far shares the budget with the schema */
	budget = clen < budget ? budget - clen : 0;
	if (n > 0)
		qsort(rk, (size_t)n, sizeof(*rk), cmp_rank);
	evbuffer_add_printf(b, "Schema (live from the database, most relevant "
	    "tables first):\n");
	for (i = 0; i < n; i++) {
		evbuffer_drain(line, evbuffer_get_length(line));
		table_line(line, &s->tables[rk[i].idx]);
		len = evbuffer_get_length(line);
		if (used + len > budget)
			continue;	/* a smaller table may still fit */
		evbuffer_add_buffer(b, line);
		used += len;
		shown++;
	}
	if (shown < n)
		evbuffer_add_printf(b, "(%d more tables not shown)\n", n - shown);
	if (clen > 0)
		evbuffer_add_printf(b, "\n%s", context);
	evbuffer_add_printf(b, "\nQuestion: %s\n", question);
	if (prev_sql != NULL)
		evbuffer_add_printf(b, "\nYour previous SQL:\n```sql\n%s\n```\n"
		    "failed with this error:\n%s\nWrite a corrected statement.\n",
		    prev_sql, error != NULL ? error : "(no message)");
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, len);
		out[len] = '\0';
	}
	if (ntables_out != NULL)
		*ntables_out = shown;
out:
	free(rk);
	if (line != NULL)
		evbuffer_free(line);
	if (b != NULL)
		evbuffer_free(b);
	return out;
}

char *
dc_prompt_user(const struct dc_schema *s, const char *question,
    const char *prev_sql, const char *error, size_t budget, int *ntables_out)
{
	return prompt_user(s, question, NULL, NULL, prev_sql, error, budget,
	    ntables_out);
}

char *
dc_prompt_user_ctx(const struct dc_schema *s, const char *question,
    const char *context, const char *rank_hint, size_t budget,
    int *ntables_out)
{
	return prompt_user(s, question, context, rank_hint, NULL, NULL, budget,
	    ntables_out);
}
