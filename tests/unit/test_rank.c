/*
 * test_rank.c - schema ranking on a generated warehouse of about six
 * hundred tables: a retail core (customers, orders, products, stores,
 * marketing, support, billing: 35 tables with their foreign keys) inside
 * the sprawl real warehouses have (staging copies, history and audit
 * tables, monthly event and log partitions, per-department tables with
 * the same generic columns everywhere, reports, feature tables, backups).
 *
 * For each question, the tables its SQL needs; every one of them must be
 * in the prompt dc_prompt_build() writes, within the first five tables
 * of it.  The table order is read back from the prompt text itself.
 * Prints the recall and the prompt size in tokens (4 characters a token,
 * the estimate the budgets use).
 */
#include <stdlib.h>

#include "dc.h"
#include "prompt.h"
#include "t.h"

/* --- the warehouse --- */

static struct dc_schema wh;
static int cap;

/* Columns as "name type [pk] [fk=table.col]" separated by ';'. */
static void
add_table(const char *schema, const char *name, long long rows,
    const char *spec)
{
	struct dc_schema_table *t;
	struct dc_schema_column *c;
	char *copy, *item, *save = NULL, *f[4];
	int n;

	if (wh.ntables == cap) {
		cap = cap ? cap * 2 : 256;
		wh.tables = realloc(wh.tables, sizeof(*wh.tables) * (size_t)cap);
		if (wh.tables == NULL)
			abort();
	}
	t = &wh.tables[wh.ntables++];
	memset(t, 0, sizeof(*t));
	t->schema = strdup(schema);
	t->name = strdup(name);
	t->table_type = strdup("BASE TABLE");
	t->row_count = rows;
	t->cols = calloc(64, sizeof(*t->cols));
	copy = strdup(spec);
	for (item = strtok_r(copy, ";", &save); item != NULL;
	    item = strtok_r(NULL, ";", &save)) {
		char *w, *s2 = NULL;

		n = 0;
		for (w = strtok_r(item, " ", &s2); w != NULL && n < 4;
		    w = strtok_r(NULL, " ", &s2))
			f[n++] = w;
		c = &t->cols[t->ncols++];
		c->name = strdup(f[0]);
		c->data_type = strdup(n > 1 ? f[1] : "text");
		c->nullable = 1;
		for (int k = 2; k < n; k++) {
			if (strcmp(f[k], "pk") == 0) {
				c->is_pk = 1;
				c->nullable = 0;
			} else if (strncmp(f[k], "fk=", 3) == 0) {
				char *dot = strrchr(f[k] + 3, '.');

				c->is_fk = 1;
				c->foreign_table = strndup(f[k] + 3,
				    (size_t)(dot - f[k] - 3));
				c->foreign_column = strdup(dot + 1);
			}
		}
	}
	free(copy);
}

static const struct {
	const char	*name;
	long long	 rows;
	const char	*cols;
} core[] = {
	{ "regions", 6, "id integer pk;name text;code text" },
	{ "countries", 120, "id integer pk;name text;iso_code text;"
	    "region_id integer fk=regions.id;currency text" },
	{ "customer_segments", 8, "id integer pk;name text;description text" },
	{ "customers", 52000, "id integer pk;first_name text;last_name text;"
	    "email text;phone text;city text;country_id integer "
	    "fk=countries.id;segment_id integer fk=customer_segments.id;"
	    "created_at timestamptz;updated_at timestamptz" },
	{ "departments", 14, "id integer pk;name text;cost_center text" },
	{ "stores", 85, "id integer pk;name text;city text;country_id integer "
	    "fk=countries.id;opened_at date;square_meters integer" },
	{ "employees", 2400, "id integer pk;first_name text;last_name text;"
	    "email text;hire_date date;department_id integer "
	    "fk=departments.id;store_id integer fk=stores.id;title text;"
	    "salary numeric(12,2)" },
	{ "categories", 60, "id integer pk;name text;parent_id integer "
	    "fk=categories.id" },
	{ "suppliers", 310, "id integer pk;name text;country_id integer "
	    "fk=countries.id;contact_email text;rating numeric(3,1)" },
	{ "products", 8800, "id integer pk;sku text;name text;category_id "
	    "integer fk=categories.id;supplier_id integer fk=suppliers.id;"
	    "list_price numeric(10,2);unit_cost numeric(10,2);"
	    "created_at timestamptz;discontinued boolean" },
	{ "orders", 2100000, "id integer pk;customer_id integer "
	    "fk=customers.id;store_id integer fk=stores.id;employee_id integer "
	    "fk=employees.id;order_date date;status text;total_amount "
	    "numeric(12,2);currency text;shipping_cost numeric(10,2);"
	    "created_at timestamptz" },
	{ "order_items", 6400000, "id integer pk;order_id integer "
	    "fk=orders.id;product_id integer fk=products.id;quantity integer;"
	    "unit_price numeric(10,2);discount numeric(5,2)" },
	{ "payments", 2050000, "id integer pk;order_id integer fk=orders.id;"
	    "paid_at timestamptz;amount numeric(12,2);method text;status text" },
	{ "carriers", 12, "id integer pk;name text;tracking_url text" },
	{ "shipments", 1900000, "id integer pk;order_id integer fk=orders.id;"
	    "carrier_id integer fk=carriers.id;shipped_at timestamptz;"
	    "promised_at timestamptz;delivered_at timestamptz;"
	    "tracking_number text" },
	{ "returns", 140000, "id integer pk;order_item_id integer "
	    "fk=order_items.id;returned_at timestamptz;reason text;"
	    "refund_amount numeric(10,2)" },
	{ "warehouses", 9, "id integer pk;name text;city text;country_id "
	    "integer fk=countries.id" },
	{ "inventory", 64000, "id integer pk;product_id integer "
	    "fk=products.id;warehouse_id integer fk=warehouses.id;"
	    "quantity_on_hand integer;reorder_level integer;"
	    "updated_at timestamptz" },
	{ "marketing_campaigns", 420, "id integer pk;name text;channel text;"
	    "start_date date;end_date date;budget numeric(12,2)" },
	{ "ad_clicks", 9800000, "id bigint pk;campaign_id integer "
	    "fk=marketing_campaigns.id;customer_id integer fk=customers.id;"
	    "clicked_at timestamptz;cost numeric(8,4);landing_url text" },
	{ "web_sessions", 14000000, "id bigint pk;customer_id integer "
	    "fk=customers.id;started_at timestamptz;ended_at timestamptz;"
	    "device text;browser text;landing_page text" },
	{ "page_views", 61000000, "id bigint pk;session_id bigint "
	    "fk=web_sessions.id;url text;viewed_at timestamptz;"
	    "time_on_page_ms integer" },
	{ "support_tickets", 230000, "id integer pk;customer_id integer "
	    "fk=customers.id;agent_id integer fk=employees.id;subject text;"
	    "priority text;status text;opened_at timestamptz;"
	    "closed_at timestamptz" },
	{ "plans", 6, "id integer pk;name text;monthly_price numeric(8,2)" },
	{ "subscriptions", 31000, "id integer pk;customer_id integer "
	    "fk=customers.id;plan_id integer fk=plans.id;started_at "
	    "timestamptz;cancelled_at timestamptz;mrr numeric(10,2)" },
	{ "invoices", 400000, "id integer pk;customer_id integer "
	    "fk=customers.id;subscription_id integer fk=subscriptions.id;"
	    "issued_at date;due_at date;paid_at date;total numeric(12,2);"
	    "status text" },
	{ "reviews", 330000, "id integer pk;product_id integer "
	    "fk=products.id;customer_id integer fk=customers.id;rating "
	    "integer;title text;body text;created_at timestamptz" },
	{ "promotions", 900, "id integer pk;code text;discount_pct "
	    "numeric(5,2);starts_at timestamptz;ends_at timestamptz" },
	{ "order_promotions", 380000, "order_id integer fk=orders.id;"
	    "promotion_id integer fk=promotions.id" },
	{ "exchange_rates", 21000, "currency text;rate_date date;"
	    "rate_to_usd numeric(14,6)" },
	{ "loyalty_accounts", 41000, "id integer pk;customer_id integer "
	    "fk=customers.id;points integer;tier text;enrolled_at date" },
	{ "gift_cards", 12000, "id integer pk;code text;balance numeric(10,2);"
	    "issued_to integer fk=customers.id;issued_at timestamptz" },
	{ "store_visits", 3100000, "id bigint pk;store_id integer "
	    "fk=stores.id;visited_at timestamptz;visitors integer" },
	{ "price_changes", 95000, "id integer pk;product_id integer "
	    "fk=products.id;old_price numeric(10,2);new_price numeric(10,2);"
	    "changed_at timestamptz" },
	{ "wishlists", 88000, "customer_id integer fk=customers.id;"
	    "product_id integer fk=products.id;added_at timestamptz" },
};

/* A deterministic "random" number for sizes. */
static unsigned
rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) & 0x7fff;
}

static void
generate(void)
{
	static const char *const depts[] = { "crm", "erp", "hr", "fin", "ops",
	    "mkt", "it", "legal", "iot", "geo" };
	static const char *const things[] = { "accounts", "contacts", "leads",
	    "opportunities", "assets", "devices", "tasks", "projects",
	    "documents", "notes", "jobs", "approvals", "budgets", "forecasts",
	    "tickets", "settings", "users", "teams", "locations", "vendors",
	    "contracts", "invoices", "expenses", "metrics", "alerts",
	    "schedules", "files", "comments", "tags", "audits" };
	static const char *const reports[] = { "rpt_sales_daily",
	    "rpt_kpi_summary", "rpt_store_traffic", "rpt_finance_close",
	    "rpt_marketing_funnel", "rpt_inventory_aging",
	    "dash_exec_weekly", "dash_ops_overview", "mart_customer_360",
	    "mart_product_performance", "mart_attribution",
	    "agg_hourly_web_traffic", "agg_ticket_backlog",
	    "agg_payment_failures", "agg_shipping_sla" };
	char name[128], spec[2048];
	unsigned seed = 42;
	size_t i, k;
	int y, m;

	for (i = 0; i < DC_ARRAY_SIZE(core); i++)
		add_table("public", core[i].name, core[i].rows, core[i].cols);
	/* staging copies of everything, loaded nightly */
	for (i = 0; i < DC_ARRAY_SIZE(core); i++) {
		char *p;

		snprintf(name, sizeof(name), "stg_%s", core[i].name);
		snprintf(spec, sizeof(spec), "%s;_loaded_at timestamptz;"
		    "_batch_id bigint;_source_file text", core[i].cols);
		/* staging has no keys */
		while ((p = strstr(spec, " fk=")) != NULL) {
			char *e = strchr(p, ';');

			memmove(p, e, strlen(e) + 1);
		}
		while ((p = strstr(spec, " pk")) != NULL)
			memmove(p, p + 3, strlen(p + 3) + 1);
		add_table("staging", name, core[i].rows, spec);
	}
	/* history (slowly changing) of the first twenty */
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "%s_history", core[i].name);
		snprintf(spec, sizeof(spec), "history_id bigint pk;%s;"
		    "valid_from timestamptz;valid_to timestamptz", core[i].cols);
		for (char *p; (p = strstr(spec, "id integer pk")) != NULL;)
			memcpy(p, "id integer   ", 13);
		for (char *p; (p = strstr(spec, " fk=")) != NULL;) {
			char *e = strchr(p, ';');

			memmove(p, e, strlen(e) + 1);
		}
		add_table("history", name, core[i].rows * 3, spec);
	}
	/* audit trails */
	for (i = 0; i < DC_ARRAY_SIZE(core); i++) {
		snprintf(name, sizeof(name), "audit_%s", core[i].name);
		add_table("audit", name, 1000 + rnd(&seed) * 30,
		    "audit_id bigint pk;row_id bigint;changed_at timestamptz;"
		    "changed_by text;operation text;old_values jsonb;"
		    "new_values jsonb");
	}
	/* event and log partitions */
	for (y = 2019; y <= 2024; y++)
		for (m = 1; m <= 12; m++) {
			snprintf(name, sizeof(name), "events_%d_%02d", y, m);
			add_table("events", name, 200000 + rnd(&seed) * 40,
			    "event_id bigint pk;user_id bigint;event_type text;"
			    "occurred_at timestamptz;properties jsonb;"
			    "session_key text");
		}
	for (y = 2022; y <= 2024; y++)
		for (m = 1; m <= 12; m++) {
			snprintf(name, sizeof(name), "app_logs_%d_%02d", y, m);
			add_table("logs", name, 500000 + rnd(&seed) * 80,
			    "id bigint pk;level text;message text;logged_at "
			    "timestamptz;user_id bigint;request_id text");
		}
	for (y = 2023; y <= 2024; y++)
		for (m = 1; m <= 12; m++) {
			snprintf(name, sizeof(name), "sensor_readings_%d_%02d",
			    y, m);
			add_table("iot", name, 900000 + rnd(&seed) * 50,
			    "device_id integer;reading_at timestamptz;"
			    "metric text;value double precision");
		}
	/* each department's own tables, with the usual columns */
	for (i = 0; i < DC_ARRAY_SIZE(depts); i++)
		for (k = 0; k < DC_ARRAY_SIZE(things); k++) {
			const char *t = things[k];
			size_t o;

			snprintf(name, sizeof(name), "%s_%s", depts[i], t);
			o = (size_t)snprintf(spec, sizeof(spec), "id integer pk;"
			    "name text;status text;owner_id integer;"
			    "created_at timestamptz;updated_at timestamptz");
			if (strstr("budgets forecasts invoices expenses "
			    "contracts opportunities", t) != NULL)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";amount numeric(12,2);currency text;"
				    "period_start date;period_end date");
			if (strstr("contacts leads accounts", t) != NULL)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";email text;phone text%s", strcmp(depts[i],
				    "crm") == 0 || strcmp(depts[i], "mkt") == 0 ?
				    ";customer_id integer fk=public.customers.id" :
				    "");
			if (strcmp(t, "tasks") == 0)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";project_id integer fk=%s_projects.id;"
				    "due_date date;priority text", depts[i]);
			if (strcmp(t, "comments") == 0 || strcmp(t, "notes") == 0)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";body text;document_id integer "
				    "fk=%s_documents.id", depts[i]);
			if (strcmp(t, "tickets") == 0)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";priority text;opened_at timestamptz;"
				    "closed_at timestamptz;assignee_id integer "
				    "fk=%s_users.id", depts[i]);
			if (strcmp(t, "devices") == 0 || strcmp(t, "assets") == 0)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";serial text;location_id integer "
				    "fk=%s_locations.id;value numeric(12,2)",
				    depts[i]);
			if (strcmp(t, "users") == 0)
				o += (size_t)snprintf(spec + o, sizeof(spec) - o,
				    ";email text;team_id integer fk=%s_teams.id;"
				    "last_login_at timestamptz", depts[i]);
			(void)o;
			add_table(depts[i], name, rnd(&seed) * 7, spec);
		}
	/* reports and marts */
	for (i = 0; i < DC_ARRAY_SIZE(reports); i++)
		add_table("reporting", reports[i], 300 + rnd(&seed) * 3,
		    "period_start date;period_end date;dimension text;"
		    "metric_name text;metric_value numeric(18,4);"
		    "refreshed_at timestamptz");
	/* features, scratch and backups */
	for (i = 1; i <= 8; i++) {
		snprintf(name, sizeof(name), "features_v%zu", i);
		add_table("ml", name, 50000, "entity_id bigint;feature_set text;"
		    "vector jsonb;computed_at timestamptz;model_version text");
	}
	for (i = 1; i <= 10; i++) {
		snprintf(name, sizeof(name), "tmp_import_%zu", 1000 + i * 37);
		add_table("scratch", name, rnd(&seed), "line_no integer;raw text;"
		    "error text;imported_at timestamptz");
	}
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "backup_%s_2023", core[i * 5].name);
		add_table("scratch", name, core[i * 5].rows, core[i * 5].cols);
	}
}

/* --- the questions --- */

static const struct {
	const char	*q;
	const char	*need[5];
} questions[] = {
	{ "Top 10 customers by revenue", { "customers", "orders" } },
	{ "Monthly revenue in 2024", { "orders" } },
	{ "Which products never sold?", { "products", "order_items" } },
	{ "Revenue by product category", { "categories", "products",
	    "order_items" } },
	{ "Average order value per country", { "orders", "customers",
	    "countries" } },
	{ "How many shipments did each carrier deliver late last month?",
	    { "shipments", "carriers" } },
	{ "Which employees handled the most orders last quarter?",
	    { "employees", "orders" } },
	{ "Total refunds by return reason", { "returns" } },
	{ "Return rate per product", { "returns", "order_items",
	    "products" } },
	{ "Stock on hand per warehouse for each product", { "inventory",
	    "warehouses", "products" } },
	{ "Which suppliers provide the most products?", { "suppliers",
	    "products" } },
	{ "Sales per store and region", { "stores", "orders", "countries",
	    "regions" } },
	{ "Cost per click of each marketing campaign by channel",
	    { "marketing_campaigns", "ad_clicks" } },
	{ "Customers who clicked an ad but never placed an order",
	    { "customers", "ad_clicks", "orders" } },
	{ "Average page views per web session by device", { "web_sessions",
	    "page_views" } },
	{ "Support tickets opened per priority this month",
	    { "support_tickets" } },
	{ "Average ticket resolution time per agent", { "support_tickets",
	    "employees" } },
	{ "Monthly recurring revenue by plan", { "subscriptions", "plans" } },
	{ "Overdue invoices with the customer's email", { "invoices",
	    "customers" } },
	{ "Average product rating by category", { "reviews", "products",
	    "categories" } },
	{ "Which promotion codes were used most often?", { "promotions",
	    "order_promotions" } },
	{ "Payments by payment method last year", { "payments" } },
	{ "How many employees were hired per department each year?",
	    { "employees", "departments" } },
	{ "Loyalty points by tier", { "loyalty_accounts" } },
	{ "Order totals converted to USD with the exchange rates",
	    { "orders", "exchange_rates" } },
	{ "Number of customers per segment", { "customers",
	    "customer_segments" } },
};

/*
 * Where table (in public) comes in the prompt: 1 for the first table
 * written, 0 when it is not there at all.
 */
static int
position(const char *prompt, const char *table)
{
	char want[160];
	const char *p = prompt, *e;
	int pos = 0;
	size_t n;

	snprintf(want, sizeof(want), "public.%s", table);
	n = strlen(want);
	/* walk every "schema.name" the prompt lists, in order */
	for (;;) {
		const char *line = p;

		if (strncmp(line, "- ", 2) == 0) {
			pos++;
			if (strncmp(line + 2, want, n) == 0 &&
			    (line[2 + n] == ' ' || line[2 + n] == ':'))
				return pos;
		} else if (strncmp(line, "Other tables (names only): ", 27) == 0) {
			const char *q = line + 27;

			e = strchr(q, '\n');
			while (q < e) {
				const char *c = strpbrk(q, ",\n");

				pos++;
				if ((size_t)(c - q) == n && strncmp(q, want, n) == 0)
					return pos;
				q = c + (*c == ',' ? 2 : 0);
				if (*c == '\n')
					break;
			}
		}
		if ((p = strchr(p, '\n')) == NULL)
			return 0;
		p++;
	}
}

int
main(void)
{
	struct dc_prompt_in in;
	struct dc_prompt_out po;
	size_t i, k, full = 0, tokens, max_tokens = 0, sum_tokens = 0;
	int needed = 0, found = 0, top5 = 0, pos, bad;
	char *p;

	generate();
	CHECK(wh.ntables >= 500);
	/* the whole schema with its columns, as a prompt would show it */
	for (i = 0; i < (size_t)wh.ntables; i++) {
		full += strlen(wh.tables[i].schema) + strlen(wh.tables[i].name) +
		    20;
		for (k = 0; k < (size_t)wh.tables[i].ncols; k++)
			full += strlen(wh.tables[i].cols[k].name) +
			    strlen(wh.tables[i].cols[k].data_type) + 3;
	}
	full /= DC_PROMPT_CHARS_PER_TOKEN;
	for (i = 0; i < DC_ARRAY_SIZE(questions); i++) {
		memset(&in, 0, sizeof(in));
		in.schema = &wh;
		in.question = questions[i].q;
		in.budget = DC_PROMPT_SCHEMA_TOKENS * DC_PROMPT_CHARS_PER_TOKEN;
		in.names_budget = DC_PROMPT_NAMES_TOKENS *
		    DC_PROMPT_CHARS_PER_TOKEN;
		p = dc_prompt_build(&in, &po);
		CHECK(p != NULL);
		if (p == NULL)
			continue;
		tokens = strlen(p) / DC_PROMPT_CHARS_PER_TOKEN;
		sum_tokens += tokens;
		if (tokens > max_tokens)
			max_tokens = tokens;
		printf("%-62s %4zu tokens, %2d with columns:", questions[i].q,
		    tokens, po.ntables);
		bad = 0;
		for (k = 0; k < 5 && questions[i].need[k] != NULL; k++) {
			pos = position(p, questions[i].need[k]);
			bad |= pos < 1 || pos > 5;
			needed++;
			found += pos > 0;
			top5 += pos > 0 && pos <= 5;
			printf(" %s@%d", questions[i].need[k], pos);
			if (pos < 1 || pos > 5)
				printf("(!)");
			CHECK(pos >= 1 && pos <= 5);
		}
		printf("\n");
		if (bad || getenv("RANK_VERBOSE") != NULL) {
			for (k = 0; k < 8 && k < (size_t)po.nrank; k++)
				fprintf(stderr, "    %zu. %s.%s %.1f %s\n", k + 1,
				    wh.tables[po.rank[k].idx].schema,
				    wh.tables[po.rank[k].idx].name,
				    po.rank[k].score, po.rank[k].why);
		}
		free(po.rank);
		free(p);
	}
	printf("ranking: %zu questions on %d tables: recall %d/%d (%.0f%%) in "
	    "the prompt, %d/%d within the first five; prompt %zu tokens on "
	    "average, %zu at most (the whole schema: %zu tokens)\n",
	    DC_ARRAY_SIZE(questions), wh.ntables, found, needed,
	    100.0 * found / needed, top5, needed,
	    sum_tokens / DC_ARRAY_SIZE(questions), max_tokens, full);
	CHECK(DC_ARRAY_SIZE(questions) >= 20);
	CHECK(found == needed && top5 == needed);
	T_DONE();
}
