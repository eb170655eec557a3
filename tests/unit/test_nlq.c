/*
 * test_nlq.c - catalog-question classification with DataChat's phrasings,
 * SQL extraction from LLM replies, edit distance.
 */
#include <stdlib.h>

#include "dc.h"
#include "nlq.h"
#include "t.h"

static void
expect(const char *q, int kind, const char *table, int limit)
{
	struct dc_nlq_intent in;

	dc_nlq_classify(q, &in);
	if (in.kind != kind || (table != NULL && strcmp(in.table, table) != 0) ||
	    (limit > 0 && in.limit != limit))
		fprintf(stderr, "  question: %s -> kind %d table \"%s\" limit %d\n",
		    q, in.kind, in.table, in.limit);
	CHECK(in.kind == kind);
	if (table != NULL)
		CHECK_STR(in.table, table);
	if (limit > 0)
		CHECK(in.limit == limit);
}

static void
test_classify(void)
{
	/* list tables */
	expect("list tables", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("Show tables", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("What tables are there?", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("which tables exist", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("What are the available tables?", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("table list", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("show me all tables", DC_NLQ_LIST_TABLES, NULL, 0);
	/* columns */
	expect("show columns in customers", DC_NLQ_COLUMNS, "customers", 0);
	expect("list columns of orders", DC_NLQ_COLUMNS, "orders", 0);
	expect("What columns does the products table have?", DC_NLQ_COLUMNS,
	    "products", 0);
	expect("describe table customers", DC_NLQ_COLUMNS, "customers", 0);
	expect("describe orders", DC_NLQ_COLUMNS, "orders", 0);
	expect("table schema for public.orders", DC_NLQ_COLUMNS,
	    "public.orders", 0);
	expect("fields in invoices", DC_NLQ_COLUMNS, "invoices", 0);
	/* row count */
	expect("how many rows are in customers", DC_NLQ_ROW_COUNT,
	    "customers", 0);
	expect("How many records in orders?", DC_NLQ_ROW_COUNT, "orders", 0);
	expect("row count of products", DC_NLQ_ROW_COUNT, "products", 0);
	expect("number of rows in sales", DC_NLQ_ROW_COUNT, "sales", 0);
	expect("count rows in events", DC_NLQ_ROW_COUNT, "events", 0);
	/* samples */
	expect("show me the first 10 rows from customers", DC_NLQ_SAMPLE,
	    "customers", 10);
	expect("preview orders", DC_NLQ_SAMPLE, "orders", 5);
	expect("sample rows from products", DC_NLQ_SAMPLE, "products", 5);
	expect("top 3 rows of sales", DC_NLQ_SAMPLE, "sales", 3);
	expect("limit 7 rows from events", DC_NLQ_SAMPLE, "events", 7);
	expect("show first 1000 rows from t", DC_NLQ_SAMPLE, "t", 100);
	/* not catalog questions */
	expect("Top 10 customers by revenue", DC_NLQ_NONE, NULL, 0);
	expect("What was the total revenue last month?", DC_NLQ_NONE, NULL, 0);
	expect("average order value per region", DC_NLQ_NONE, NULL, 0);
	expect("", DC_NLQ_NONE, NULL, 0);
}

static void
xsql(const char *reply, const char *want)
{
	char *s = dc_nlq_extract_sql(reply);

	if (want == NULL)
		CHECK(s == NULL);
	else
		CHECK_STR(s, want);
	free(s);
}

static void
test_extract(void)
{
	xsql("SELECT 1", "SELECT 1");
	xsql("SELECT name FROM t;\n", "SELECT name FROM t");
	xsql("```sql\nSELECT a\nFROM b;\n```", "SELECT a\nFROM b");
	xsql("Here you go:\n```\nSELECT 2\n```\nThis counts things.", "SELECT 2");
	xsql("{\"sql\": \"SELECT 3;\", \"explanation\": \"x\"}", "SELECT 3");
	xsql("```json\n{\"sql\": \"SELECT 4\"}\n```", "SELECT 4");
	xsql("The query is: SELECT count(*) FROM orders;", "SELECT count(*) FROM orders");
	xsql("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x");
	xsql("", NULL);
	xsql("   \n ", NULL);
	xsql("```sql\n```", NULL);
}

static void
test_distance(void)
{
	CHECK(dc_nlq_distance("customers", "customers") == 0);
	CHECK(dc_nlq_distance("customer", "customers") == 1);
	CHECK(dc_nlq_distance("CUSTOMERS", "customers") == 0);
	CHECK(dc_nlq_distance("ordrs", "orders") == 1);
	CHECK(dc_nlq_distance("", "abc") == 3);
	CHECK(dc_nlq_distance("kitten", "sitting") == 3);
}

int
main(void)
{
	test_classify();
	test_extract();
	test_distance();
	T_DONE();
}
