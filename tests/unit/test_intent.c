/*
 * test_intent.c - the intent gate: every category with several of
 * DataChat's phrasings (and its own test sentences), mixed messages that
 * are data questions, the table of answers, the word-pattern matcher it
 * stands on, and replies to clarifying questions merged as DataChat
 * merges them.
 */
#include <stdlib.h>

#include "dc.h"
#include "intent.h"
#include "phrase.h"
#include "t.h"

static void
expect(const char *msg, int kind)
{
	struct dc_intent in;

	dc_intent_classify(msg, &in);
	if (in.cat->kind != kind)
		fprintf(stderr, "  message \"%s\": %s (%s), expected %s\n",
		    msg, in.cat->name, in.why, dc_intent_categories[kind].name);
	CHECK(in.cat->kind == kind);
	CHECK(in.why != NULL);
}

static void
test_categories(void)
{
	/* exit: DataChat's tests and eval set */
	expect("let's talk later", DC_INTENT_EXIT);
	expect("Ok I'm done for now", DC_INTENT_EXIT);
	expect("never mind, i'll ask later", DC_INTENT_EXIT);
	expect("bye", DC_INTENT_EXIT);
	expect("Goodbye!", DC_INTENT_EXIT);
	expect("exit", DC_INTENT_EXIT);
	expect("thanks, bye", DC_INTENT_EXIT);
	expect("no more questions", DC_INTENT_EXIT);
	expect("That's all, thank you", DC_INTENT_EXIT);
	expect("please end this chat", DC_INTENT_EXIT);
	expect("see you later", DC_INTENT_EXIT);
	expect("We’re done here", DC_INTENT_EXIT);

	/* setup help */
	expect("help", DC_INTENT_SETUP_HELP);
	expect("Help!", DC_INTENT_SETUP_HELP);
	expect("what can you do?", DC_INTENT_SETUP_HELP);
	expect("How do I connect a database?", DC_INTENT_SETUP_HELP);
	expect("where do I put my API key", DC_INTENT_SETUP_HELP);
	expect("hi, what can you do?", DC_INTENT_SETUP_HELP);
	expect("how to configure the database url", DC_INTENT_SETUP_HELP);

	/* datapoint help: truthful in live-schema mode */
	expect("show datapoints", DC_INTENT_DATAPOINT_HELP);
	expect("list data points", DC_INTENT_DATAPOINT_HELP);
	expect("view pending datapoints", DC_INTENT_DATAPOINT_HELP);
	expect("what datapoints are available?", DC_INTENT_DATAPOINT_HELP);
	expect("available data points", DC_INTENT_DATAPOINT_HELP);
	/* DataChat: a metric explanation is a data question */
	expect("what datapoint explains loan default rate?",
	    DC_INTENT_DATA_QUERY);

	/* small talk */
	expect("hi", DC_INTENT_SMALL_TALK);
	expect("Hello!", DC_INTENT_SMALL_TALK);
	expect("hey there, how are you?", DC_INTENT_SMALL_TALK);
	expect("Good morning", DC_INTENT_SMALL_TALK);
	expect("what's up", DC_INTENT_SMALL_TALK);
	expect("hello datachat", DC_INTENT_SMALL_TALK);
	expect("hello? anyone there?", DC_INTENT_SMALL_TALK);

	/* out of scope, unless the message has data words */
	expect("Tell me a joke", DC_INTENT_OUT_OF_SCOPE);
	expect("what's the weather like in Lagos?", DC_INTENT_OUT_OF_SCOPE);
	expect("write me a poem about spring", DC_INTENT_OUT_OF_SCOPE);
	expect("hi, tell me a story", DC_INTENT_OUT_OF_SCOPE);
	expect("write an email to my boss", DC_INTENT_OUT_OF_SCOPE);
	expect("tell me a joke about the orders table", DC_INTENT_DATA_QUERY);
	expect("stock levels per warehouse", DC_INTENT_DATA_QUERY);

	/* clarify: non-actionable input */
	expect("ok", DC_INTENT_CLARIFY);
	expect("Okay.", DC_INTENT_CLARIFY);
	expect("sure!", DC_INTENT_CLARIFY);
	expect("thanks", DC_INTENT_CLARIFY);
	expect("thank you!", DC_INTENT_CLARIFY);
	expect("yes", DC_INTENT_CLARIFY);
	expect("continue", DC_INTENT_CLARIFY);
	expect("go on", DC_INTENT_CLARIFY);
	expect("ok thanks", DC_INTENT_CLARIFY);
	expect("thank you so much!", DC_INTENT_CLARIFY);
	expect("nah", DC_INTENT_CLARIFY);
	expect("", DC_INTENT_CLARIFY);
	expect("   ", DC_INTENT_CLARIFY);
	expect("?!", DC_INTENT_CLARIFY);
	expect(NULL, DC_INTENT_CLARIFY);

	/* data questions, mixed ones included */
	expect("thanks, now list tables", DC_INTENT_DATA_QUERY);
	expect("ok, show me the first 5 rows from orders",
	    DC_INTENT_DATA_QUERY);
	expect("hi, list tables", DC_INTENT_DATA_QUERY);
	expect("hello! Top 10 customers by revenue", DC_INTENT_DATA_QUERY);
	expect("good morning, what was revenue last month?",
	    DC_INTENT_DATA_QUERY);
	expect("sure, and by region?", DC_INTENT_DATA_QUERY);
	expect("list tables", DC_INTENT_DATA_QUERY);
	expect("show columns", DC_INTENT_DATA_QUERY);
	expect("Top 10 customers by revenue", DC_INTENT_DATA_QUERY);
	expect("customers", DC_INTENT_DATA_QUERY);
	/* a catalog question is never setup help or a goodbye */
	expect("how many rows are in the connect table",
	    DC_INTENT_DATA_QUERY);
	expect("list tables, that's all", DC_INTENT_DATA_QUERY);
}

static void
test_table(void)
{
	const struct dc_intent_category *c;
	int k;

	for (k = 0; k < DC_INTENT_NKINDS; k++) {
		c = &dc_intent_categories[k];
		CHECK(c->kind == k);
		CHECK(c->name != NULL);
		if (k == DC_INTENT_DATA_QUERY) {
			CHECK(c->answer == NULL);
			continue;
		}
		/* DataChat's vocabulary, and an answer for each */
		CHECK(c->answer != NULL && c->phrases != NULL);
		CHECK(strcmp(c->source, "system") == 0 ||
		    strcmp(c->source, "clarification") == 0);
	}
	CHECK_STR(dc_intent_categories[DC_INTENT_EXIT].answer, "Got it. Ending "
	    "the session. If you need more, just start a new chat.");
	CHECK(strstr(dc_intent_categories[DC_INTENT_OUT_OF_SCOPE].answer,
	    "connected data") != NULL);
	CHECK(strstr(dc_intent_categories[DC_INTENT_DATAPOINT_HELP].answer,
	    "live schema") != NULL);
	c = &dc_intent_categories[DC_INTENT_CLARIFY];
	CHECK_STR(c->source, "clarification");
	CHECK_STR(c->question, "What would you like to do with your data?");
	/* DataChat recognises its own clarification by this phrase */
	CHECK(strstr(c->answer, "need a bit more detail") != NULL);
	CHECK_STR(dc_intent_categories[DC_INTENT_SMALL_TALK].name,
	    "small_talk");
}

static int
find(const char *pat, const char *text, int *end, char *cap)
{
	struct dc_words w;

	dc_words_split(text, 1, &w);
	return dc_phrase_find(pat, &w, 0, end, cap, cap != NULL ?
	    DC_WORD_LEN : 0);
}

static void
test_phrase(void)
{
	struct dc_words w;
	char cap[DC_WORD_LEN];
	int end;

	dc_words_split("Let's see: information_schema.tables, DATA points!",
	    1, &w);
	CHECK(w.n == 4);
	CHECK_STR(w.w[0], "lets");
	CHECK_STR(w.w[2], "information_schema.tables");
	CHECK_STR(w.w[3], "datapoints");
	dc_words_split("information_schema.tables", 0, &w);
	CHECK(w.n == 2);

	CHECK(find("how many rows", "So, how many rows?", &end, NULL) == 1);
	CHECK(end == 4);
	CHECK(find("^ how many", "So, how many rows?", NULL, NULL) == -1);
	CHECK(find("^ bye $", "bye", NULL, NULL) == 0);
	CHECK(find("^ bye $", "bye now", NULL, NULL) == -1);
	CHECK(find("end|stop * chat", "please stop this chat", &end,
	    NULL) == 1);
	CHECK(end == 4);
	CHECK(find("show me? all? the? tables", "show all tables", NULL,
	    NULL) == 0);
	CHECK(find("show me? all? the? tables", "show me the tables", NULL,
	    NULL) == 0);
	CHECK(find("first|top # rows", "the top 10 rows", NULL, cap) == 1);
	CHECK_STR(cap, "10");
	CHECK(find("first|top # rows", "top ten rows", NULL, NULL) == -1);
	CHECK(find("rows from|in the? @", "rows from the Orders table",
	    NULL, cap) == 0);
	CHECK_STR(cap, "orders");
	CHECK(find("from @", "from 2024", NULL, cap) == -1);
}

static void
hint(const char *msg, const char *want)
{
	char h[128];
	int ok = dc_intent_reply_hint(msg, h, sizeof(h));

	if (want == NULL) {
		CHECK(ok == 0);
		CHECK(h[0] == '\0');
	} else {
		CHECK(ok == 1);
		CHECK_STR(h, want);
	}
}

static void
merge(const char *prev, const char *table, const char *want)
{
	char *m = dc_intent_merge_table(prev, table);

	CHECK_STR(m, want);
	free(m);
}

static void
test_replies(void)
{
	const char *asked[] = { "Which table should I list columns for?" };
	const char *other[] = { "What would you like to do with your data?" };

	CHECK(dc_intent_asked_table(asked, 1));
	CHECK(!dc_intent_asked_table(other, 1));
	CHECK(!dc_intent_asked_table(asked, 0));

	hint("customers", "customers");
	hint("the customers table", "customers");
	hint("use table public.orders", "public.orders");
	hint("order items", "order_items");
	hint("Regarding \"Which table should I list columns for?\": "
	    "vbs_registrations", "vbs_registrations");
	hint("show me the tables", NULL);
	hint("list tables", NULL);
	hint("what is the total revenue of all customers last year", NULL);
	hint("the table", NULL);
	hint("", NULL);

	/* DataChat's own test, and each of its forms */
	merge("show 2 rows in public.sales", "petra_campuses",
	    "Show 2 rows from petra_campuses");
	merge("show me the first 50 rows", "orders", "Show 10 rows from orders");
	merge("preview some rows", "orders", "Show 3 rows from orders");
	merge("show columns", "customers", "Show columns in customers");
	merge("What fields are there?", "customers",
	    "Show columns in customers");
	merge("how many rows?", "orders", "How many rows are in orders?");
	merge("count the records", "orders", "How many rows are in orders?");
	merge("total revenue last month.", "sales",
	    "total revenue last month Use table sales.");
}

int
main(void)
{
	test_categories();
	test_table();
	test_phrase();
	test_replies();
	T_DONE();
}
