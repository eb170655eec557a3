/*
 * test_prompt.c - the LLM prompts: dialect and rules, schema ranking by
 * the question's words, the budget, and the correction round.
 */
#include <stdlib.h>

#include "dc.h"
#include "prompt.h"
#include "t.h"

static struct dc_schema_column cust_cols[] = {
	{ "id", "integer", 0, 1, 0, NULL, NULL },
	{ "name", "text", 1, 0, 0, NULL, NULL },
	{ "region", "text", 1, 0, 0, NULL, NULL },
};
static struct dc_schema_column order_cols[] = {
	{ "id", "integer", 0, 1, 0, NULL, NULL },
	{ "customer_id", "integer", 0, 0, 1, "customers", "id" },
	{ "revenue", "numeric(10,2)", 1, 0, 0, NULL, NULL },
};
static struct dc_schema_column log_cols[] = {
	{ "line", "text", 1, 0, 0, NULL, NULL },
};

static struct dc_schema_table tables[] = {
	{ "public", "audit_log", "BASE TABLE", 100000, 1, log_cols },
	{ "public", "customers", "BASE TABLE", 50, 3, cust_cols },
	{ "public", "orders", "BASE TABLE", 500, 3, order_cols },
};

int
main(void)
{
	struct dc_schema s = { 0, 3, tables };
	char *p, *q;
	int shown;

	p = dc_prompt_system("PostgreSQL", "- Qualify tables.\n");
	CHECK(p != NULL && strstr(p, "PostgreSQL") != NULL);
	CHECK(strstr(p, "one read-only statement") != NULL);
	CHECK(strstr(p, "schema.\n- Qualify tables.\n- Add a LIMIT") != NULL);
	free(p);
	p = dc_prompt_system("MySQL", NULL);
	CHECK(strstr(p, "MySQL") != NULL);
	CHECK(strstr(p, "schema.\n- Add a LIMIT") != NULL);
	free(p);

	CHECK(dc_prompt_score(&tables[1], "Top 10 customers by revenue") >= 100);
	CHECK(dc_prompt_score(&tables[1], "which customer spent most") >= 90);
	CHECK(dc_prompt_score(&tables[2], "Top 10 customers by revenue") == 10);
	CHECK(dc_prompt_score(&tables[0], "Top 10 customers by revenue") == 0);

	p = dc_prompt_user(&s, "Top 10 customers by revenue", NULL, NULL,
	    100000, &shown);
	CHECK(shown == 3);
	CHECK(strstr(p, "Question: Top 10 customers by revenue") != NULL);
	CHECK(strstr(p, "customer_id integer FK->customers.id") != NULL);
	CHECK(strstr(p, "id integer PK") != NULL);
	CHECK(strstr(p, "(~50 rows)") != NULL);
	/* customers first, then orders (a column matches), audit_log last */
	q = strstr(p, "public.customers");
	CHECK(q != NULL && q < strstr(p, "public.orders"));
	CHECK(strstr(p, "public.orders") < strstr(p, "public.audit_log"));
	CHECK(strstr(p, "previous SQL") == NULL);
	free(p);

	/* a tight budget keeps the relevant tables and drops the rest */
	p = dc_prompt_user(&s, "Top 10 customers by revenue", NULL, NULL, 180,
	    &shown);
	CHECK(shown == 2);
	CHECK(strstr(p, "public.customers") != NULL);
	CHECK(strstr(p, "public.orders") != NULL);
	CHECK(strstr(p, "audit_log") == NULL);
	CHECK(strstr(p, "(1 more tables not shown)") != NULL);
	free(p);

	/* correction round */
	p = dc_prompt_user(&s, "q", "SELECT nme FROM customers",
	    "column \"nme\" does not exist", 100000, NULL);
	CHECK(strstr(p, "SELECT nme FROM customers") != NULL);
	CHECK(strstr(p, "column \"nme\" does not exist") != NULL);
	free(p);

	/* no schema at all still makes a prompt */
	p = dc_prompt_user(NULL, "anything", NULL, NULL, 1000, &shown);
	CHECK(p != NULL && shown == 0);
	free(p);
	T_DONE();
}
