/*
 * test_nlq.c - catalog questions with DataChat's phrasings, its plans
 * (the statements of catalog.py and catalog_templates.py) and its answer
 * texts, table names in a snapshot, SQL extraction from LLM replies,
 * edit distance.
 */
#include <stdlib.h>

#include "dc.h"
#include "driver.h"
#include "nlq.h"
#include "schema.h"
#include "t.h"

/* PostgreSQL's statements, as its driver writes them */
static const struct dc_dialect *
pg_dialect(void)
{
	return dc_driver_find("postgresql")->dialect;
}

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
	expect("thanks, now list all the tables", DC_NLQ_LIST_TABLES, NULL, 0);
	expect("tables?", DC_NLQ_LIST_TABLES, NULL, 0);
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
	expect("show columns", DC_NLQ_COLUMNS, "", 0);
	expect("Which columns are in information_schema.tables?",
	    DC_NLQ_COLUMNS, "information_schema.tables", 0);
	expect("Regarding \"Which table should I list columns for?\": "
	    "vbs_registrations", DC_NLQ_COLUMNS, "vbs_registrations", 0);
	/* row count */
	expect("how many rows are in customers", DC_NLQ_ROW_COUNT,
	    "customers", 0);
	expect("How many records in orders?", DC_NLQ_ROW_COUNT, "orders", 0);
	expect("row count of products", DC_NLQ_ROW_COUNT, "products", 0);
	expect("number of rows in sales", DC_NLQ_ROW_COUNT, "sales", 0);
	expect("count rows in events", DC_NLQ_ROW_COUNT, "events", 0);
	expect("How many rows are in information_schema.tables?",
	    DC_NLQ_ROW_COUNT, "information_schema.tables", 0);
	expect("show me how many rows are in orders", DC_NLQ_ROW_COUNT,
	    "orders", 0);
	expect("how many rows?", DC_NLQ_ROW_COUNT, "", 0);
	/* samples: DataChat shows 3 rows unless told, at most 10 */
	expect("show me the first 10 rows from customers", DC_NLQ_SAMPLE,
	    "customers", 10);
	expect("Show me the first 2 rows from information_schema.tables",
	    DC_NLQ_SAMPLE, "information_schema.tables", 2);
	expect("show me 50 rows from customers", DC_NLQ_SAMPLE, "customers", 10);
	expect("preview orders", DC_NLQ_SAMPLE, "orders", 3);
	expect("sample rows from products", DC_NLQ_SAMPLE, "products", 3);
	expect("top 3 rows of sales", DC_NLQ_SAMPLE, "sales", 3);
	expect("limit 7 rows from events", DC_NLQ_SAMPLE, "events", 7);
	expect("show first 1000 rows from t", DC_NLQ_SAMPLE, "t", 10);
	expect("show 2 rows in public.events", DC_NLQ_SAMPLE, "public.events",
	    2);
	expect("Show top 5 rows from public.transactions", DC_NLQ_SAMPLE,
	    "public.transactions", 5);
	expect("show some rows", DC_NLQ_SAMPLE, "", 3);
	/* not catalog questions */
	expect("Top 10 customers by revenue", DC_NLQ_NONE, NULL, 0);
	expect("What was the total revenue last month?", DC_NLQ_NONE, NULL, 0);
	expect("average order value per region", DC_NLQ_NONE, NULL, 0);
	/* DataChat's own test: not a sample */
	expect("Show total deposits, withdrawals, and net flow by segment for "
	    "the last 8 weeks, then identify the top 2 segments driving "
	    "week-over-week net flow decline.", DC_NLQ_NONE, NULL, 0);
	expect("", DC_NLQ_NONE, NULL, 0);
	expect(NULL, DC_NLQ_NONE, NULL, 0);
}

static void
test_plans(void)
{
	const struct dc_dialect *my;
	char *sql, name[300];

	CHECK_STR(dc_nlq_operation(DC_NLQ_SAMPLE), "sample_rows");
	CHECK_STR(dc_nlq_operation(DC_NLQ_COLUMNS), "list_columns");
	CHECK(dc_nlq_operation(DC_NLQ_NONE) == NULL);
	CHECK_STR(dc_nlq_question(DC_NLQ_ROW_COUNT),
	    "Which table should I count rows for?");
	CHECK_STR(dc_nlq_question(DC_NLQ_COLUMNS),
	    "Which table should I list columns for?");
	CHECK_STR(dc_nlq_question(DC_NLQ_SAMPLE),
	    "Which table should I sample rows from?");

	/* DataChat's statements */
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_LIST_TABLES, NULL, NULL, 0,
	    &sql) == DC_OK);
	CHECK(strstr(sql, "FROM information_schema.tables") != NULL);
	CHECK(strstr(sql, "'database_connections'") != NULL);
	free(sql);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_ROW_COUNT, "public", "orders",
	    0, &sql) == DC_OK);
	CHECK_STR(sql, "SELECT COUNT(*) AS row_count FROM public.orders");
	free(sql);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_SAMPLE, "information_schema",
	    "tables", 2, &sql) == DC_OK);
	CHECK_STR(sql, "SELECT * FROM information_schema.tables LIMIT 2");
	free(sql);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_SAMPLE, "public", "t", 500,
	    &sql) == DC_OK);
	CHECK_STR(sql, "SELECT * FROM public.t LIMIT 10");
	free(sql);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_COLUMNS, "sales", "o'rders",
	    0, &sql) == DC_OK);
	CHECK(strstr(sql, "FROM information_schema.columns WHERE table_name = "
	    "'o''rders' AND table_schema = 'sales' ORDER BY") != NULL);
	free(sql);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_COLUMNS, "s", "a\\b", 0,
	    &sql) == DC_EINVAL && sql == NULL);
	CHECK(dc_nlq_sql(pg_dialect(), DC_NLQ_COLUMNS, NULL, "t", 0,
	    &sql) == DC_EINVAL);

	/* names that cannot be written bare are quoted */
	dc_nlq_qualify(pg_dialect(), "public", "Order Items", name,
	    sizeof(name));
	CHECK_STR(name, "public.\"Order Items\"");
	dc_nlq_qualify(pg_dialect(), "user", "order", name, sizeof(name));
	CHECK_STR(name, "\"user\".order");
	dc_nlq_qualify(pg_dialect(), "my\"s", "t", name, sizeof(name));
	CHECK_STR(name, "\"my\"\"s\".t");
	dc_nlq_qualify(pg_dialect(), NULL, "select", name, sizeof(name));
	CHECK_STR(name, "\"select\"");

	/* MySQL's: backticks, the listing within the URL's database */
	my = dc_driver_find("mysql")->dialect;
	dc_nlq_qualify(my, "shop", "Order`s", name, sizeof(name));
	CHECK_STR(name, "shop.`Order``s`");
	CHECK(dc_nlq_sql(my, DC_NLQ_ROW_COUNT, "shop", "orders", 0, &sql) ==
	    DC_OK);
	CHECK_STR(sql, "SELECT COUNT(*) AS row_count FROM shop.orders");
	free(sql);
	CHECK(dc_nlq_sql(my, DC_NLQ_LIST_TABLES, NULL, NULL, 0, &sql) == DC_OK);
	CHECK(strstr(sql, "table_schema = DATABASE()") != NULL);
	free(sql);
}

static void
answer(int kind, const char *table, int nrows, int n, const char *value,
    const char *want)
{
	static const char *const names[] = { "a", "b", "c", "d", "e", "f",
	    "g", "h", "i", "j", "k", "l" };
	char *s = dc_nlq_answer(kind, table, nrows, names, n, value);

	CHECK_STR(s, want);
	free(s);
}

static void
test_answers(void)
{
	answer(DC_NLQ_LIST_TABLES, NULL, 2, 2, NULL, "Found 2 table(s): a, b.");
	answer(DC_NLQ_LIST_TABLES, NULL, 12, 12, NULL, "Found 12 table(s): a, "
	    "b, c, d, e, f, g, h, i, j (and 2 more).");
	answer(DC_NLQ_LIST_TABLES, NULL, 0, 0, NULL, "No tables were found.");
	answer(DC_NLQ_COLUMNS, "orders", 3, 3, NULL,
	    "The `orders` table has 3 column(s): a, b, c.");
	answer(DC_NLQ_COLUMNS, "orders", 0, 0, NULL,
	    "No columns were found for table `orders`.");
	answer(DC_NLQ_ROW_COUNT, "public.orders", 1, 0, "300",
	    "Table `public.orders` has 300 row(s).");
	answer(DC_NLQ_SAMPLE, "public.orders", 2, 0, NULL,
	    "Returned 2 row(s) from `public.orders`.");
	answer(DC_NLQ_SAMPLE, "public.orders", 0, 0, NULL,
	    "No results found for `public.orders`.");
}

static void
test_find(void)
{
	static struct dc_schema_table t[] = {
		{ "public", "orders", "BASE TABLE", 1, 0, NULL },
		{ "sales", "orders", "BASE TABLE", 1, 0, NULL },
		{ "sales", "regions", "BASE TABLE", 1, 0, NULL },
		{ "crm", "Leads", "BASE TABLE", 1, 0, NULL },
		{ "crm", "regions", "BASE TABLE", 1, 0, NULL },
	};
	struct dc_schema s = { 0, 5, t };
	const struct dc_schema_table *f;
	int n;

	CHECK(dc_nlq_find(&s, "orders", "public", &f, &n) == DC_NLQ_FOUND);
	CHECK(f == &t[0] && n == 1);
	CHECK(dc_nlq_find(&s, "sales.orders", "public", &f, &n) ==
	    DC_NLQ_FOUND && f == &t[1]);
	CHECK(dc_nlq_find(&s, "SALES.Orders", "public", &f, NULL) ==
	    DC_NLQ_FOUND && f == &t[1]);
	/* outside public: found when only one schema has it */
	CHECK(dc_nlq_find(&s, "leads", "public", &f, &n) == DC_NLQ_FOUND);
	CHECK(f == &t[3]);
	CHECK(dc_nlq_find(&s, "regions", "public", &f, &n) ==
	    DC_NLQ_AMBIGUOUS && n == 2 && f == &t[2]);
	CHECK(dc_nlq_find(&s, "nope", "public", &f, &n) == DC_NLQ_MISSING);
	CHECK(f == NULL && n == 0);
	CHECK(dc_nlq_find(&s, "public.regions", "public", &f, &n) ==
	    DC_NLQ_MISSING);
	CHECK(dc_nlq_find(NULL, "orders", "public", &f, &n) == DC_NLQ_MISSING);
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
	test_plans();
	test_answers();
	test_find();
	test_extract();
	test_distance();
	T_DONE();
}
