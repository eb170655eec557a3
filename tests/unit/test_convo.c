/*
 * test_convo.c - unit tests for the pure part of src/chat/convo.c: the
 * tables a statement reads, follow-up questions, turns from a client's
 * history and state, the prompt's conversation so far within its budget,
 * and session_state / session_summary from one turn to the next.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "convo.h"
#include "dc.h"
#include "t.h"

static void
test_sql_tables(void)
{
	char t[8][128];
	int n;

	n = dc_convo_sql_tables("SELECT name, sum(o.revenue) FROM customers c "
	    "JOIN orders o ON o.customer_id = c.id GROUP BY 1", t, 8);
	CHECK(n == 2);
	CHECK_STR(t[0], "customers");
	CHECK_STR(t[1], "orders");
	n = dc_convo_sql_tables("select * from sales.orders, \"Weird Name\" w, "
	    "public.x where a = 'from nothing' -- from comment\n", t, 8);
	CHECK(n == 3);
	CHECK_STR(t[0], "sales.orders");
	CHECK_STR(t[1], "Weird Name");
	CHECK_STR(t[2], "public.x");
	/* subqueries and functions in FROM are not tables; theirs are */
	n = dc_convo_sql_tables("SELECT * FROM (SELECT id FROM inner_t) s "
	    "LEFT JOIN generate_series(1, 3) g ON true JOIN b USING (id)",
	    t, 8);
	CHECK(n == 2);
	CHECK_STR(t[0], "inner_t");
	CHECK_STR(t[1], "b");
	/* repeats once, and the limit holds */
	n = dc_convo_sql_tables("SELECT 1 FROM a JOIN a ON true JOIN c ON true",
	    t, 1);
	CHECK(n == 1);
	CHECK(dc_convo_sql_tables("SELECT 1", t, 8) == 0);
	CHECK(dc_convo_sql_tables("", t, 8) == 0);
	CHECK(dc_convo_sql_tables("SELECT 'unterminated FROM x", t, 8) == 0);
	CHECK(dc_convo_sql_tables("SELECT * FROM \"unterminated", t, 8) == 0);
	CHECK(dc_convo_sql_tables("SELECT * FROM /* open", t, 8) == 0);
}

static void
test_followup(void)
{
	static const char *const yes[] = { "and by region?", "And by region",
	    "only for 2025", "show that as a chart", "what about the other "
	    "database?", "How about last month?", "by month", "same for "
	    "sensors", "sort it by name", "plot them", "now for the north" };
	static const char *const no[] = { "Top 10 customers by revenue",
	    "list tables", "how many orders were placed in 2025",
	    "which product sells best", "", "itemised sales per day" };
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(yes); i++) {
		if (!dc_convo_followup(yes[i]))
			fprintf(stderr, "not a follow-up: %s\n", yes[i]);
		CHECK(dc_convo_followup(yes[i]));
	}
	for (i = 0; i < DC_ARRAY_SIZE(no); i++) {
		if (dc_convo_followup(no[i]))
			fprintf(stderr, "a follow-up: %s\n", no[i]);
		CHECK(!dc_convo_followup(no[i]));
	}
	CHECK(!dc_convo_followup(NULL));
}

static struct json_object *
parse(const char *s)
{
	return json_tokener_parse(s);
}

static void
test_from_client(void)
{
	struct json_object *h, *st, *turns, *t;

	h = parse("[{\"role\":\"user\",\"content\":\"Top 10 customers\"},"
	    "{\"role\":\"assistant\",\"content\":\"10 rows: name\"},"
	    "{\"role\":\"user\",\"content\":\"and by region?\"},"
	    "{\"role\":\"assistant\",\"content\":\"\"},"
	    "{\"role\":\"system\",\"content\":\"ignored\"}]");
	st = parse("{\"last_sql\":\"SELECT region FROM customers\","
	    "\"target_database\":\"t1\",\"last_row_count\":2}");
	turns = dc_convo_from_client(h, st);
	CHECK(json_object_array_length(turns) == 2);
	t = json_object_array_get_idx(turns, 0);
	CHECK_STR(json_object_get_string(json_object_object_get(t,
	    "question")), "Top 10 customers");
	CHECK_STR(json_object_get_string(json_object_object_get(t, "answer")),
	    "10 rows: name");
	CHECK(json_object_object_get(t, "sql") == NULL);
	/* the state's SQL belongs to the last question */
	t = json_object_array_get_idx(turns, 1);
	CHECK_STR(json_object_get_string(json_object_object_get(t, "sql")),
	    "SELECT region FROM customers");
	CHECK(json_object_get_int(json_object_object_get(t, "row_count")) == 2);
	CHECK_STR(dc_convo_last_goal(turns, st), "and by region?");
	json_object_put(turns);
	json_object_put(h);

	/* no history: the state alone */
	json_object_object_add(st, "last_goal",
	    json_object_new_string("Top 10 customers"));
	turns = dc_convo_from_client(NULL, st);
	CHECK(json_object_array_length(turns) == 1);
	CHECK_STR(dc_convo_last_goal(turns, st), "Top 10 customers");
	json_object_put(turns);
	json_object_put(st);
	turns = dc_convo_from_client(NULL, NULL);
	CHECK(turns != NULL && json_object_array_length(turns) == 0);
	CHECK(dc_convo_last_goal(turns, NULL) == NULL);
	json_object_put(turns);
}

static struct json_object *
turn(const char *q, const char *target, const char *sql, int rows)
{
	static const char *const cols[] = { "name", "revenue" };
	struct dc_convo_turn t;

	memset(&t, 0, sizeof(t));
	t.question = q;
	t.target = target;
	t.dbtype = "postgresql";
	t.sql = sql;
	t.answer = "an answer";
	t.source = "sql";
	t.columns = cols;
	t.ncolumns = 2;
	t.rows = rows;
	return dc_convo_turn_json(&t);
}

static void
test_context(void)
{
	struct json_object *turns = json_object_new_array();
	char *c, q[64];
	int i;

	c = dc_convo_context(turns, "t1", 1000);
	CHECK_STR(c, "");
	free(c);
	json_object_array_add(turns, turn("Top 10 customers by revenue", "t1",
	    "SELECT name, revenue FROM customers LIMIT 10", 10));
	json_object_array_add(turns, turn("and on the other one?", "t2",
	    "SELECT location FROM sensors", 9));
	c = dc_convo_context(turns, "t1", 4000);
	CHECK(strstr(c, "Conversation so far") == c);
	CHECK(strstr(c, "Q1 (on this database): Top 10 customers by revenue\n"
	    "SQL: SELECT name, revenue FROM customers LIMIT 10\n"
	    "Result: 10 rows; columns name, revenue\nAnswer: an answer\n") !=
	    NULL);
	CHECK(strstr(c, "Q2 (on another database (postgresql, connection t2)")
	    != NULL);
	CHECK(strstr(c, "Q1") < strstr(c, "Q2"));
	free(c);

	/* a small budget keeps the latest turns, oldest first */
	for (i = 3; i <= 40; i++) {
		snprintf(q, sizeof(q), "question number %d", i);
		json_object_array_add(turns, turn(q, "t1", "SELECT 1", 1));
	}
	c = dc_convo_context(turns, "t1", 700);
	CHECK(strlen(c) <= 700);
	CHECK(strstr(c, "question number 40") != NULL);
	CHECK(strstr(c, "question number 39") < strstr(c, "question number 40"));
	CHECK(strstr(c, "Top 10 customers") == NULL);
	free(c);
	c = dc_convo_context(turns, "t1", 10);
	CHECK_STR(c, "");
	free(c);
	json_object_put(turns);
}

static void
test_state(void)
{
	static const char *const cols[] = { "region", "n" };
	struct json_object *st, *st2, *v, *clar;
	struct dc_convo_turn t;
	char *s;

	memset(&t, 0, sizeof(t));
	t.question = "Top 10 customers by revenue";
	t.target = "t1";
	t.dbtype = "postgresql";
	t.sql = "SELECT c.name FROM customers c JOIN orders o ON true";
	t.answer = "10 rows";
	t.source = "sql";
	t.rows = 10;
	st = dc_convo_next_state(NULL, &t, 1);
	CHECK_STR(json_object_get_string(json_object_object_get(st,
	    "last_goal")), t.question);
	CHECK(json_object_object_get(st, "resolved_query") == NULL);
	CHECK_STR(json_object_get_string(json_object_object_get(st,
	    "last_sql")), t.sql);
	v = json_object_object_get(st, "table_hints");
	CHECK(json_object_array_length(v) == 2);
	CHECK_STR(json_object_get_string(json_object_array_get_idx(v, 0)),
	    "customers");
	CHECK_STR(json_object_get_string(json_object_object_get(
	    json_object_object_get(st, "slots"), "table")), "customers");
	CHECK(json_object_get_int(json_object_object_get(st,
	    "clarification_count")) == 0);
	CHECK(json_object_get_int(json_object_object_get(st,
	    "last_row_count")) == 10);
	CHECK(json_object_object_get_ex(st, "updated_at", NULL));
	s = dc_convo_summary(st);
	CHECK_STR(s, "Intent summary: last_goal=Top 10 customers by revenue | "
	    "table_hints=customers, orders | slots=table:customers | "
	    "last_result=10 rows");
	free(s);

	/* the next turn: a follow-up, a clarification; unknown keys stay */
	json_object_object_add(st, "client_key", json_object_new_int(7));
	memset(&t, 0, sizeof(t));
	t.question = "and by region?";
	t.resolved = "Top 10 customers by revenue (follow-up: and by region?)";
	t.target = "t1";
	t.sql = "SELECT region, count(*) AS n FROM customers GROUP BY 1";
	t.columns = cols;
	t.ncolumns = 2;
	t.rows = 2;
	clar = json_tokener_parse("[\"Which year?\"]");
	t.clarifying = clar;
	st2 = dc_convo_next_state(st, &t, 2);
	CHECK(json_object_get_int(json_object_object_get(st2, "client_key")) ==
	    7);
	CHECK_STR(json_object_get_string(json_object_object_get(st2,
	    "resolved_query")), t.resolved);
	v = json_object_object_get(st2, "table_hints");
	/* customers moves to the end, as the latest table read */
	CHECK(json_object_array_length(v) == 2);
	CHECK_STR(json_object_get_string(json_object_array_get_idx(v, 1)),
	    "customers");
	CHECK(json_object_get_int(json_object_object_get(st2,
	    "clarification_count")) == 1);
	CHECK_STR(json_object_get_string(json_object_object_get(st2,
	    "last_clarifying_question")), "Which year?");
	CHECK(json_object_get_int(json_object_object_get(st2, "turn_count")) ==
	    2);
	s = dc_convo_summary(st2);
	CHECK(strstr(s, "resolved_query=Top 10 customers by revenue "
	    "(follow-up: and by region?)") != NULL);
	CHECK(strstr(s, "clarifications=1") != NULL);
	CHECK(strstr(s, "last_result=2 rows (region, n)") != NULL);
	free(s);
	/* the previous state is not touched */
	CHECK(json_object_object_get(st, "resolved_query") == NULL);
	json_object_put(clar);
	json_object_put(st);
	json_object_put(st2);

	s = dc_convo_resolve("Top 10", "and by region?");
	CHECK_STR(s, "Top 10 (follow-up: and by region?)");
	free(s);
	st = json_object_new_object();
	CHECK(dc_convo_summary(st) == NULL);
	json_object_put(st);
}

int
main(void)
{
	test_sql_tables();
	test_followup();
	test_from_client();
	test_context();
	test_state();
	T_DONE();
}
