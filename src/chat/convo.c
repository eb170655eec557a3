/*
 * convo.c - conversation memory (convo.h).
 *
 * The pure part (turns, the prompt's conversation so far, session_state
 * and its summary, follow-up detection, the tables a statement reads) is
 * unit-tested; the store is two statements on the system database, sent
 * through the worker's pool like the registry writes.
 *
 * The store keeps one row per conversation: its last conversation_turns
 * turns as a JSON array, the latest session_summary and session_state,
 * and updated_at.  A turn is appended by one INSERT ... ON CONFLICT whose
 * update trims the array in the database, so two workers (or two
 * instances) answering the same conversation at once both keep their
 * turn; a row older than conversation_ttl counts as empty, and the
 * master deletes such rows at each registry resync.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "convo.h"
#include "dc.h"
#include "jsonw.h"
#include "log.h"
#include "pool.h"
#include "rows.h"
#include "util.h"
#include "worker.h"

#define TURN_ANSWER_MAX		400	/* bytes of an answer kept */
#define TURN_QUESTION_MAX	1000
#define TURN_COLUMNS_MAX	20
#define HINTS_MAX		10	/* table_hints kept */
#define CTX_SQL_MAX		1500	/* bytes of one turn's SQL in a prompt */
#define SUMMARY_MAX		600

/* --- turns --- */

/*
 * key: s cut to at most max bytes, not inside a UTF-8 sequence, or null
 * when s is NULL.
 */
static void
add_cut(struct dc_jb *b, struct json_object *o, const char *key,
    const char *s, size_t max)
{
	size_t n;

	if (s == NULL) {
		dc_jb_null(b, o, key);
		return;
	}
	n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	dc_jb_add(b, o, key, json_object_new_string_len(s, (int)n));
}

/* key: the first TURN_COLUMNS_MAX of t's columns */
static void
add_columns(struct dc_jb *b, struct json_object *o, const char *key,
    const struct dc_convo_turn *t)
{
	struct json_object *cols = json_object_new_array();
	int i;

	for (i = 0; i < t->ncolumns && i < TURN_COLUMNS_MAX; i++)
		dc_jb_push(b, cols, json_object_new_string(t->columns[i]));
	dc_jb_add(b, o, key, cols);
}

/* key: t's row count, or null when nothing ran */
static void
add_rows(struct dc_jb *b, struct json_object *o, const char *key,
    const struct dc_convo_turn *t)
{
	if (t->rows >= 0)
		dc_jb_add(b, o, key, json_object_new_int(t->rows));
	else
		dc_jb_null(b, o, key);
}

struct json_object *
dc_convo_turn_json(const struct dc_convo_turn *t)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };

	add_cut(&b, o, "question", t->question, TURN_QUESTION_MAX);
	add_cut(&b, o, "resolved_query", t->resolved, TURN_QUESTION_MAX);
	dc_jb_str(&b, o, "target_database", t->target);
	dc_jb_str(&b, o, "database_type", t->dbtype);
	dc_jb_str(&b, o, "sql", t->sql);
	add_cut(&b, o, "answer", t->answer, TURN_ANSWER_MAX);
	dc_jb_str(&b, o, "answer_source", t->source);
	add_columns(&b, o, "columns", t);
	add_rows(&b, o, "row_count", t);
	dc_jb_add(&b, o, "at", json_object_new_int64((int64_t)dc_wall_ms()));
	return dc_jb_done(&b, o);
}

static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int
get_int(struct json_object *o, const char *key, int dflt)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int(v);
}

static struct json_object *
get_array(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

struct json_object *
dc_convo_from_client(struct json_object *history, struct json_object *state)
{
	struct json_object *turns = json_object_new_array(), *turn = NULL, *m;
	const char *role, *content, *s;
	size_t i, n = history != NULL ? json_object_array_length(history) : 0;
	struct dc_jb b = { 0 };

	/* a failed push frees turn: nothing touches it after a failure */
	for (i = 0; i < n && !b.failed; i++) {
		m = json_object_array_get_idx(history, i);
		role = get_str(m, "role");
		content = get_str(m, "content");
		if (role == NULL || content == NULL || content[0] == '\0')
			continue;
		if (strcmp(role, "user") == 0) {
			turn = json_object_new_object();
			add_cut(&b, turn, "question", content,
			    TURN_QUESTION_MAX);
			dc_jb_push(&b, turns, turn);
		} else if (strcmp(role, "assistant") == 0 && turn != NULL)
			add_cut(&b, turn, "answer", content, TURN_ANSWER_MAX);
	}
	if (b.failed)
		return dc_jb_done(&b, turns);
	if (turn == NULL && (s = get_str(state, "last_goal")) != NULL) {
		/* no history, but the state says what was asked last */
		turn = json_object_new_object();
		add_cut(&b, turn, "question", s, TURN_QUESTION_MAX);
		dc_jb_push(&b, turns, turn);
	}
	if (turn != NULL) {
		/* what the state knows belongs to the last question */
		static const char *const keys[] = { "last_sql",
		    "target_database", "database_type", "last_columns",
		    "last_row_count" };
		static const char *const as[] = { "sql", "target_database",
		    "database_type", "columns", "row_count" };
		struct json_object *v;
		size_t k;

		for (k = 0; k < DC_ARRAY_SIZE(keys) && !b.failed; k++)
			if (state != NULL &&
			    json_object_is_type(state, json_type_object) &&
			    json_object_object_get_ex(state, keys[k], &v) &&
			    v != NULL)
				dc_jb_add(&b, turn, as[k], json_object_get(v));
	}
	return dc_jb_done(&b, turns);
}

/* --- follow-ups --- */

int
dc_convo_followup(const char *question)
{
	/* how a question that leans on the one before usually begins */
	static const char *const starts[] = {
		"and ", "and?", "what about", "how about", "what of",
		"only ", "just ", "now ", "same ", "also ", "but ", "instead",
		"then ", "show that", "show it", "show them", "show those",
		"plot", "chart", "graph", "visuali", "as a ", "by ", "per ",
		"for ", "except", "excluding", "without ", "sorted", "sort ",
		"order ", "group ", "limit ", "break it", "break that",
		"split ", "compare", "same for", "the other", "other ",
		"in the other", "on the other", "switch to", "try ",
	};
	/* words that point back at an earlier answer */
	static const char *const refs[] = {
		" that", " those", " them", " it", " these", " same ",
		" previous", " above", " other database", " instead",
	};
	char q[256], *p;
	size_t i, n;

	if (question == NULL)
		return 0;
	while (isspace((unsigned char)*question))
		question++;
	for (n = 0; question[n] != '\0' && n < sizeof(q) - 2; n++)
		q[n + 1] = (char)tolower((unsigned char)question[n]);
	q[0] = ' ';
	q[n + 1] = '\0';
	p = q + 1;
	for (i = 0; i < DC_ARRAY_SIZE(starts); i++)
		if (strncmp(p, starts[i], strlen(starts[i])) == 0)
			return 1;
	for (i = 0; i < DC_ARRAY_SIZE(refs); i++) {
		const char *hit = strstr(q, refs[i]);
		size_t l = strlen(refs[i]);

		/* a whole word: what follows is not a letter */
		if (hit != NULL && !isalpha((unsigned char)hit[l]))
			return 1;
	}
	return 0;
}

char *
dc_convo_resolve(const char *last_goal, const char *question)
{
	char *s = NULL;

	if (asprintf(&s, "%s (follow-up: %s)", last_goal, question) < 0)
		return NULL;
	return s;
}

const char *
dc_convo_last_goal(struct json_object *turns, struct json_object *state)
{
	size_t n = turns != NULL ? json_object_array_length(turns) : 0;
	const char *s;

	if (n > 0 && (s = get_str(json_object_array_get_idx(turns, n - 1),
	    "question")) != NULL)
		return s;
	return get_str(state, "last_goal");
}

/* --- the prompt's conversation so far --- */

/* One turn, as the prompt tells it. */
static char *
turn_text(struct json_object *t, int no, const char *target)
{
	const char *q = get_str(t, "question"), *sql = get_str(t, "sql");
	const char *tg = get_str(t, "target_database");
	const char *ty = get_str(t, "database_type");
	const char *ans = get_str(t, "answer");
	struct json_object *cols = get_array(t, "columns");
	int rows = get_int(t, "row_count", -1);
	char *s = NULL, where[160], shape[600];
	size_t i, n, o;
	int len;

	if (q == NULL)
		return strdup("");
	if (tg == NULL || target == NULL || strcmp(tg, target) == 0)
		snprintf(where, sizeof(where), "on this database");
	else
		snprintf(where, sizeof(where), "on another database (%s, "
		    "connection %s), not the one asked now", ty != NULL ? ty :
		    "unknown type", tg);
	o = 0;
	shape[0] = '\0';
	if (rows >= 0)
		o = (size_t)snprintf(shape, sizeof(shape), "%d row%s", rows,
		    rows == 1 ? "" : "s");
	n = cols != NULL ? json_object_array_length(cols) : 0;
	for (i = 0; i < n && o < sizeof(shape); i++)
		o += (size_t)snprintf(shape + o, sizeof(shape) - o, "%s%s",
		    i == 0 ? (o > 0 ? "; columns " : "columns ") : ", ",
		    json_object_get_string(json_object_array_get_idx(cols, i)));
	len = asprintf(&s, "Q%d (%s): %s\n%s%.*s%s%s%s%s%s%s\n", no, where, q,
	    sql != NULL ? "SQL: " : "", sql != NULL ? CTX_SQL_MAX : 0,
	    sql != NULL ? sql : "", sql != NULL ? "\n" : "",
	    shape[0] != '\0' ? "Result: " : "", shape,
	    shape[0] != '\0' ? "\n" : "", ans != NULL ? "Answer: " : "",
	    ans != NULL ? ans : "");
	return len < 0 ? NULL : s;
}

char *
dc_convo_context(struct json_object *turns, const char *target,
    size_t budget)
{
	static const char head[] = "Conversation so far (oldest first); the "
	    "question below may refer to it:\n";
	size_t n = turns != NULL ? json_object_array_length(turns) : 0;
	size_t used = sizeof(head) - 1, len, i, first = n, o;
	char **parts, *out = NULL;

	if (n == 0 || budget <= used)
		return strdup("");
	if ((parts = calloc(n, sizeof(*parts))) == NULL)
		return NULL;
	/* the latest turns first, until the budget is spent */
	for (i = n; i-- > 0; ) {
		parts[i] = turn_text(json_object_array_get_idx(turns, i),
		    (int)i + 1, target);
		if (parts[i] == NULL)
			goto out;
		len = strlen(parts[i]);
		if (used + len > budget)
			break;
		used += len;
		first = i;
	}
	if (first == n) {
		out = strdup("");
		goto out;
	}
	if ((out = malloc(used + 1)) == NULL)
		goto out;
	memcpy(out, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (i = first; i < n; i++) {
		len = strlen(parts[i]);
		memcpy(out + o, parts[i], len);
		o += len;
	}
	out[o] = '\0';
out:
	for (i = 0; i < n; i++)
		free(parts[i]);
	free(parts);
	return out;
}

/* --- the tables a statement reads --- */

static int
ident_char(int c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* Skip spaces, comments and string literals from p; never past the end. */
static const char *
skip_space(const char *p)
{
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");

			p = e != NULL ? e + 2 : p + strlen(p);
		} else
			return p;
	}
}

/* One identifier (bare or "quoted"), copied to out; NULL if none. */
static const char *
read_ident(const char *p, char *out, size_t outsz, size_t *o)
{
	if (*p == '"') {
		for (p++; *p != '\0'; p++) {
			if (*p == '"' && p[1] == '"')
				p++;
			else if (*p == '"')
				return p + 1;
			if (*o + 1 < outsz)
				out[(*o)++] = *p;
		}
		return NULL;
	}
	if (!isalpha((unsigned char)*p) && *p != '_')
		return NULL;
	while (ident_char(*p)) {
		if (*o + 1 < outsz)
			out[(*o)++] = *p;
		p++;
	}
	return p;
}

/* p starts with the keyword w (any case), as a whole word. */
static int
kw(const char *p, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(p, w, n) == 0 && !ident_char(p[n]);
}

/* A word that ends a table reference rather than naming its alias. */
static int
clause_word(const char *p)
{
	static const char *const words[] = { "where", "join", "inner", "left",
	    "right", "full", "cross", "natural", "on", "using", "group",
	    "order", "limit", "offset", "having", "union", "intersect",
	    "except", "window", "fetch", "for", "tablesample" };
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(words); i++)
		if (kw(p, words[i]))
			return 1;
	return 0;
}

static const char *
skip_string(const char *p)
{
	for (p++; *p != '\0'; p++) {
		if (*p == '\'' && p[1] == '\'')
			p++;
		else if (*p == '\'')
			return p + 1;
	}
	return p;
}

static void
add_table(char out[][128], int *n, int max, const char *name)
{
	int i;

	for (i = 0; i < *n; i++)
		if (strcasecmp(out[i], name) == 0)
			return;
	if (*n < max)
		dc_strlcpy(out[(*n)++], name, 128);
}

/* The tables after FROM (a comma list when list) or JOIN, at p. */
static const char *
read_tables(const char *p, char out[][128], int *n, int max, int list)
{
	char name[128], alias[8];
	const char *q;
	size_t o;

	for (;;) {
		p = skip_space(p);
		if (kw(p, "only"))
			p = skip_space(p + 4);
		if (*p == '(' || kw(p, "lateral"))
			return p;	/* a subquery: its own FROM follows */
		o = 0;
		if ((q = read_ident(p, name, sizeof(name), &o)) == NULL)
			return p;
		if (*q == '.') {
			if (o < sizeof(name) - 1)
				name[o++] = '.';
			if ((q = read_ident(q + 1, name, sizeof(name), &o)) ==
			    NULL)
				return p + 1;
		}
		name[o] = '\0';
		p = skip_space(q);
		if (*p == '(')
			return p;	/* a function, not a table */
		add_table(out, n, max, name);
		if (kw(p, "as"))
			p = skip_space(p + 2);
		if ((isalpha((unsigned char)*p) || *p == '_' || *p == '"') &&
		    !clause_word(p)) {
			o = 0;
			if ((q = read_ident(p, alias, sizeof(alias), &o)) !=
			    NULL)
				p = skip_space(q);
		}
		if (!list || *p != ',')
			return p;
		p++;
	}
}

int
dc_convo_sql_tables(const char *sql, char out[][128], int max)
{
	const char *p = sql != NULL ? sql : "", *q;
	char word[16];
	size_t o;
	int n = 0;

	while (*p != '\0' && n < max) {
		p = skip_space(p);
		if (*p == '\'') {
			p = skip_string(p);
			continue;
		}
		if (*p == '"') {
			o = 0;
			q = read_ident(p, word, sizeof(word), &o);
			p = q != NULL ? q : p + strlen(p);
			continue;
		}
		if (!isalpha((unsigned char)*p) && *p != '_') {
			if (*p != '\0')
				p++;
			continue;
		}
		o = 0;
		p = read_ident(p, word, sizeof(word), &o);
		word[o] = '\0';
		if (strcasecmp(word, "from") == 0)
			p = read_tables(p, out, &n, max, 1);
		else if (strcasecmp(word, "join") == 0)
			p = read_tables(p, out, &n, max, 0);
	}
	return n;
}

/* --- session_state and session_summary --- */

struct json_object *
dc_convo_next_state(struct json_object *prev, const struct dc_convo_turn *t,
    int turn_count)
{
	struct json_object *st = NULL, *hints, *slots, *old, *v;
	struct dc_jb b = { 0 };
	char tables[HINTS_MAX][128];
	size_t i, n;
	int nt = 0, k, clar;

	if (prev != NULL && json_object_is_type(prev, json_type_object) &&
	    json_object_deep_copy(prev, &st, NULL) != 0)
		return NULL;
	if (st == NULL && (st = json_object_new_object()) == NULL)
		return NULL;
	add_cut(&b, st, "last_goal", t->question, TURN_QUESTION_MAX);
	add_cut(&b, st, "resolved_query", t->resolved, TURN_QUESTION_MAX);
	dc_jb_str(&b, st, "last_sql", t->sql);

	/* table_hints: the tables read so far, the latest last */
	hints = json_object_new_array();
	old = get_array(st, "table_hints");
	if (t->sql != NULL)
		nt = dc_convo_sql_tables(t->sql, tables, HINTS_MAX);
	n = old != NULL ? json_object_array_length(old) : 0;
	for (i = 0; i < n; i++) {
		const char *h = json_object_get_string(
		    json_object_array_get_idx(old, i));

		for (k = 0; k < nt; k++)
			if (h == NULL || strcasecmp(h, tables[k]) == 0)
				break;
		if (h != NULL && k == nt)
			dc_jb_push(&b, hints, json_object_new_string(h));
	}
	for (k = 0; k < nt; k++)
		dc_jb_push(&b, hints, json_object_new_string(tables[k]));
	while (hints != NULL && json_object_array_length(hints) > HINTS_MAX)
		json_object_array_del_idx(hints, 0, 1);
	dc_jb_add(&b, st, "table_hints", hints);
	if (get_array(st, "column_hints") == NULL)
		dc_jb_add(&b, st, "column_hints", json_object_new_array());

	/* slots: DataChat's table, metric and time range */
	if (json_object_object_get_ex(st, "slots", &v) &&
	    json_object_is_type(v, json_type_object))
		slots = json_object_get(v);
	else {
		slots = json_object_new_object();
		dc_jb_null(&b, slots, "table");
		dc_jb_null(&b, slots, "metric");
		dc_jb_null(&b, slots, "time_range");
	}
	if (nt > 0)
		dc_jb_add(&b, slots, "table", json_object_new_string(tables[0]));
	dc_jb_add(&b, st, "slots", slots);

	clar = t->clarifying != NULL &&
	    json_object_array_length(t->clarifying) > 0;
	dc_jb_add(&b, st, "clarification_count", json_object_new_int(
	    get_int(st, "clarification_count", 0) + (clar ? 1 : 0)));
	dc_jb_add(&b, st, "last_clarifying_questions", clar ?
	    json_object_get(t->clarifying) : json_object_new_array());
	v = clar ? json_object_array_get_idx(t->clarifying, 0) : NULL;
	if (v != NULL)
		dc_jb_add(&b, st, "last_clarifying_question",
		    json_object_get(v));
	else
		dc_jb_null(&b, st, "last_clarifying_question");
	if (!json_object_object_get_ex(st, "any_table", NULL))
		dc_jb_add(&b, st, "any_table", json_object_new_boolean(0));
	if (!json_object_object_get_ex(st, "target_subquery_index", NULL))
		dc_jb_null(&b, st, "target_subquery_index");

	/* datachatd's own: where the last answer came from, and its shape */
	dc_jb_str(&b, st, "target_database", t->target);
	dc_jb_str(&b, st, "database_type", t->dbtype);
	dc_jb_str(&b, st, "last_answer_source", t->source);
	add_columns(&b, st, "last_columns", t);
	add_rows(&b, st, "last_row_count", t);
	dc_jb_add(&b, st, "turn_count", json_object_new_int(turn_count));
	dc_jb_add(&b, st, "updated_at", json_object_new_int64(
	    (int64_t)(dc_wall_ms() / 1000)));
	return dc_jb_done(&b, st);
}

char *
dc_convo_summary(struct json_object *state)
{
	struct json_object *hints = get_array(state, "table_hints");
	struct json_object *cols = get_array(state, "last_columns"), *slots;
	const char *goal = get_str(state, "last_goal"), *s;
	char buf[SUMMARY_MAX + 8];
	size_t o, i, n;
	int rows = get_int(state, "last_row_count", -1), clar;

	o = (size_t)snprintf(buf, sizeof(buf), "Intent summary:");
#define ADD(...) do {							\
	if (o < sizeof(buf))						\
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, __VA_ARGS__); \
} while (0)
	if (goal != NULL)
		ADD(" last_goal=%.200s |", goal);
	if ((s = get_str(state, "resolved_query")) != NULL)
		ADD(" resolved_query=%.200s |", s);
	n = hints != NULL ? json_object_array_length(hints) : 0;
	for (i = 0; i < n; i++)
		ADD("%s%s", i == 0 ? " table_hints=" : ", ",
		    json_object_get_string(json_object_array_get_idx(hints, i)));
	if (n > 0)
		ADD(" |");
	if (json_object_object_get_ex(state, "slots", &slots) &&
	    (s = get_str(slots, "table")) != NULL)
		ADD(" slots=table:%s |", s);
	if ((clar = get_int(state, "clarification_count", 0)) > 0)
		ADD(" clarifications=%d |", clar);
	if (rows >= 0) {
		ADD(" last_result=%d row%s", rows, rows == 1 ? "" : "s");
		n = cols != NULL ? json_object_array_length(cols) : 0;
		for (i = 0; i < n && i < 6; i++)
			ADD("%s%s", i == 0 ? " (" : ", ", json_object_get_string(
			    json_object_array_get_idx(cols, i)));
		if (n > 0)
			ADD(")");
		ADD(" |");
	}
#undef ADD
	if (o >= sizeof(buf))
		o = sizeof(buf) - 1;
	/* no trailing separator */
	while (o > 0 && (buf[o - 1] == '|' || buf[o - 1] == ' '))
		buf[--o] = '\0';
	buf[o] = '\0';
	if (strcmp(buf, "Intent summary:") == 0)
		return NULL;
	return strdup(buf);
}

/* --- the store --- */

struct dc_convo_op {
	struct dc_job	*job;
	dc_convo_loaded_cb loaded;
	dc_convo_saved_cb saved;
	void		*arg;
};

void
dc_convo_cancel(struct dc_convo_op *op)
{
	if (op->job != NULL)
		dc_pool_cancel(op->job);
	free(op);
}

int
dc_convo_enabled(const struct dc_worker *w)
{
	return w->cfg->system_database_url[0] != '\0' &&
	    w->cfg->conversation_turns > 0;
}

static struct json_object *
parse(const char *s)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (s == NULL || (tok = json_tokener_new_ex(64)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)strlen(s));
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static void
loaded(const struct dc_qresult *r, void *arg)
{
	struct dc_convo_op *op = arg;
	struct json_object *turns = NULL, *state = NULL;
	const char *summary = NULL;

	if (r->status != DC_OK) {
		op->loaded(NULL, NULL, NULL, r->error != NULL ? r->error :
		    "the system database failed", op->arg);
		free(op);
		return;
	}
	if (r->rows != NULL && r->rows->nrows == 1 && r->rows->ncols == 3) {
		turns = parse(dc_rows_cell(r->rows, 0, 0)->v);
		summary = dc_rows_cell(r->rows, 0, 1)->v;
		state = parse(dc_rows_cell(r->rows, 0, 2)->v);
	}
	if (turns != NULL && !json_object_is_type(turns, json_type_array)) {
		json_object_put(turns);
		turns = NULL;
	}
	if (state != NULL && !json_object_is_type(state, json_type_object)) {
		json_object_put(state);
		state = NULL;
	}
	op->loaded(turns, state, summary, NULL, op->arg);
	json_object_put(turns);
	json_object_put(state);
	free(op);
}

int
dc_convo_load(struct dc_worker *w, const char *conversation_id,
    dc_convo_loaded_cb cb, void *arg, struct dc_convo_op **out)
{
	static const char *const sql[] = {
		"SELECT turns::text, session_summary, session_state::text "
		"FROM datachatd_conversations WHERE conversation_id = $1 AND "
		"updated_at > now() - make_interval(secs => $2::int)"
	};
	static const int np[] = { 2 };
	const char *p[2];
	const char *const *pp[1] = { p };
	char ttl[16];
	struct dc_convo_op *op;
	int rc;

	if (!dc_convo_enabled(w))
		return DC_EINVAL;
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return DC_ENOMEM;
	op->loaded = cb;
	op->arg = arg;
	snprintf(ttl, sizeof(ttl), "%d", w->cfg->conversation_ttl);
	p[0] = conversation_id;
	p[1] = ttl;
	/* the callback may run, and free op, before this returns */
	*out = op;
	rc = dc_pool_sysdb(w->pool, 1, sql, np, pp, loaded, op, &op->job);
	if (rc != DC_OK) {
		*out = NULL;
		free(op);
	}
	return rc;
}

static void
saved(const struct dc_qresult *r, void *arg)
{
	struct dc_convo_op *op = arg;

	op->saved(r->status == DC_OK ? NULL : r->error != NULL ? r->error :
	    "the system database failed", op->arg);
	free(op);
}

int
dc_convo_save(struct dc_worker *w, const char *conversation_id,
    struct json_object *turn, const char *summary, struct json_object *state,
    dc_convo_saved_cb cb, void *arg, struct dc_convo_op **out)
{
	/*
	 * The new turn goes last; the update keeps the last $5 turns of a
	 * row that has not expired, in the database, so concurrent answers
	 * to one conversation each keep theirs.
	 */
	static const char *const sql[] = {
		"INSERT INTO datachatd_conversations AS c (conversation_id, "
		"turns, session_summary, session_state, updated_at) "
		"VALUES ($1, jsonb_build_array($2::jsonb), $3, $4::jsonb, now()) "
		"ON CONFLICT (conversation_id) DO UPDATE SET turns = ("
		"SELECT jsonb_agg(t ORDER BY n) FROM (SELECT t, n FROM "
		"jsonb_array_elements(CASE WHEN c.updated_at > now() - "
		"make_interval(secs => $6::int) THEN c.turns ELSE '[]'::jsonb "
		"END || jsonb_build_array($2::jsonb)) WITH ORDINALITY AS "
		"x(t, n) ORDER BY n DESC LIMIT $5::int) y), "
		"session_summary = EXCLUDED.session_summary, "
		"session_state = EXCLUDED.session_state, updated_at = now()"
	};
	static const int np[] = { 6 };
	const char *p[6];
	const char *const *pp[1] = { p };
	char turns[16], ttl[16], *turn_text = NULL, *state_text = NULL;
	struct dc_convo_op *op;
	int rc;

	if (!dc_convo_enabled(w))
		return DC_EINVAL;
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return DC_ENOMEM;
	op->saved = cb;
	op->arg = arg;
	snprintf(turns, sizeof(turns), "%d", w->cfg->conversation_turns);
	snprintf(ttl, sizeof(ttl), "%d", w->cfg->conversation_ttl);
	p[0] = conversation_id;
	p[1] = turn_text = dc_jw_text(turn, NULL);
	p[2] = summary;
	p[3] = state != NULL ? (state_text = dc_jw_text(state, NULL)) : NULL;
	p[4] = turns;
	p[5] = ttl;
	if (turn_text == NULL || (state != NULL && state_text == NULL)) {
		free(op);
		rc = DC_ENOMEM;
		goto out;
	}
	*out = op;
	/* the pool copies the parameters */
	rc = dc_pool_sysdb(w->pool, 1, sql, np, pp, saved, op, &op->job);
	if (rc != DC_OK) {
		*out = NULL;
		free(op);
	}
out:
	free(turn_text);
	free(state_text);
	return rc;
}
