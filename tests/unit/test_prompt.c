/*
 * test_prompt.c - the LLM prompts: dialect and rules, schema ranking (the
 * question's words, synonyms, foreign keys, centrality, the relevance
 * cut), the budgets, and the correction round.  The ranking on a large
 * generated warehouse is test_rank.c.
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
	struct dc_prompt_in in;
	struct dc_prompt_out po;
	struct dc_rank *rk;
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

	/* customers by name, orders by its foreign key and revenue */
	CHECK(dc_prompt_rank(&s, "Top 10 customers by revenue", NULL, NULL,
	    &rk) == DC_OK);
	CHECK(rk[0].idx == 1 && rk[0].tier == DC_RANK_MATCH);
	CHECK(strstr(rk[0].why, "name matches \"customers\"") != NULL);
	CHECK(rk[1].idx == 2 && rk[1].tier != DC_RANK_REST);
	CHECK(rk[2].idx == 0 && rk[2].tier == DC_RANK_REST);
	free(rk);
	/* synonyms: a client is a customer, an amount is revenue */
	CHECK(dc_prompt_rank(&s, "which client spent most", NULL, NULL,
	    &rk) == DC_OK);
	CHECK(rk[0].idx == 1 && strstr(rk[0].why, "is like") != NULL);
	free(rk);
	/* a follow-up's hint ranks what it follows up on */
	CHECK(dc_prompt_rank(&s, "and by line?", "SELECT * FROM audit_log",
	    NULL, &rk) == DC_OK);
	CHECK(rk[0].idx == 0 && rk[0].tier == DC_RANK_MATCH);
	free(rk);
	/* nothing matches: by centrality (customers is referenced) */
	CHECK(dc_prompt_rank(&s, "zzz", NULL, NULL, &rk) == DC_OK);
	CHECK(rk[0].idx == 1 && rk[0].tier == DC_RANK_REST);
	free(rk);

	p = dc_prompt_user(&s, "Top 10 customers by revenue", NULL, NULL,
	    100000, &shown);
	CHECK(shown == 2);
	CHECK(strstr(p, "Question: Top 10 customers by revenue") != NULL);
	CHECK(strstr(p, "customer_id integer FK->customers.id") != NULL);
	CHECK(strstr(p, "id integer PK") != NULL);
	CHECK(strstr(p, "(~50 rows)") != NULL);
	/* customers first, then orders; audit_log by name only */
	q = strstr(p, "public.customers");
	CHECK(q != NULL && q < strstr(p, "public.orders"));
	CHECK(strstr(p, "Other tables (names only): public.audit_log\n") != NULL);
	CHECK(strstr(p, "line text") == NULL);
	CHECK(strstr(p, "previous SQL") == NULL);
	free(p);

	/* a tight budget: a wide table loses columns, not its place */
	p = dc_prompt_user(&s, "Top 10 customers by revenue", NULL, NULL, 170,
	    &shown);
	CHECK(shown == 2);
	CHECK(strstr(p, "public.customers") != NULL);
	CHECK(strstr(p, "more columns)") != NULL);
	free(p);
	p = dc_prompt_user(&s, "Top 10 customers by revenue", NULL, NULL, 10,
	    &shown);
	CHECK(shown == 0);
	CHECK(strstr(p, "names only): public.customers, public.orders") !=
	    NULL);
	free(p);

	/* the names have a budget of their own */
	memset(&in, 0, sizeof(in));
	in.schema = &s;
	in.question = "zzz";
	in.budget = 100000;
	in.names_budget = 20;
	in.context = "Conversation so far: x\n";
	p = dc_prompt_build(&in, &po);
	CHECK(po.ntables == 0 && po.nnames == 1 && po.nrank == 3);
	CHECK(strstr(p, "(2 more tables not shown)") != NULL);
	CHECK(strstr(p, "Conversation so far: x\n\nQuestion: zzz") != NULL);
	free(po.rank);
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
