"""Schema ranking end to end (issue 18): a warehouse of several hundred
tables in a real PostgreSQL (a retail core with its foreign keys, inside
the sprawl real warehouses have: staging copies, audit trails, monthly
event and log partitions, every department's tables with the same
generic columns, reports), questions asked of the daemon, and the prompt
the test LLM server received.  Every table each question's SQL needs
must be in that prompt, within its first five tables.  Prints the recall
and the prompt sizes in tokens (4 characters a token, the estimate the
budgets use).  tests/unit/test_rank.c does the same on dc_prompt_build()
alone; this one reads the catalog the daemon reads."""
import re

import requests

from conftest import clean_env

KEY = "sk-test-not-a-real-key-0123456789"

# name: columns, "name type [pk] [fk=table.col]" separated by ';'
CORE = [
    ("regions", "id integer pk;name text;code text"),
    ("countries", "id integer pk;name text;iso_code text;"
     "region_id integer fk=regions.id;currency text"),
    ("customer_segments", "id integer pk;name text;description text"),
    ("customers", "id integer pk;first_name text;last_name text;email text;"
     "phone text;city text;country_id integer fk=countries.id;"
     "segment_id integer fk=customer_segments.id;created_at timestamptz"),
    ("departments", "id integer pk;name text;cost_center text"),
    ("stores", "id integer pk;name text;city text;"
     "country_id integer fk=countries.id;opened_at date"),
    ("employees", "id integer pk;first_name text;last_name text;email text;"
     "hire_date date;department_id integer fk=departments.id;"
     "store_id integer fk=stores.id;title text;salary numeric(12,2)"),
    ("categories", "id integer pk;name text;parent_id integer fk=categories.id"),
    ("suppliers", "id integer pk;name text;country_id integer fk=countries.id;"
     "contact_email text;rating numeric(3,1)"),
    ("products", "id integer pk;sku text;name text;"
     "category_id integer fk=categories.id;"
     "supplier_id integer fk=suppliers.id;list_price numeric(10,2);"
     "unit_cost numeric(10,2);discontinued boolean"),
    ("orders", "id integer pk;customer_id integer fk=customers.id;"
     "store_id integer fk=stores.id;employee_id integer fk=employees.id;"
     "order_date date;status text;total_amount numeric(12,2);currency text;"
     "shipping_cost numeric(10,2)"),
    ("order_items", "id integer pk;order_id integer fk=orders.id;"
     "product_id integer fk=products.id;quantity integer;"
     "unit_price numeric(10,2);discount numeric(5,2)"),
    ("payments", "id integer pk;order_id integer fk=orders.id;"
     "paid_at timestamptz;amount numeric(12,2);method text;status text"),
    ("carriers", "id integer pk;name text;tracking_url text"),
    ("shipments", "id integer pk;order_id integer fk=orders.id;"
     "carrier_id integer fk=carriers.id;shipped_at timestamptz;"
     "promised_at timestamptz;delivered_at timestamptz"),
    ("returns", "id integer pk;order_item_id integer fk=order_items.id;"
     "returned_at timestamptz;reason text;refund_amount numeric(10,2)"),
    ("warehouses", "id integer pk;name text;city text;"
     "country_id integer fk=countries.id"),
    ("inventory", "id integer pk;product_id integer fk=products.id;"
     "warehouse_id integer fk=warehouses.id;quantity_on_hand integer;"
     "reorder_level integer"),
    ("marketing_campaigns", "id integer pk;name text;channel text;"
     "start_date date;end_date date;budget numeric(12,2)"),
    ("ad_clicks", "id bigint pk;campaign_id integer fk=marketing_campaigns.id;"
     "customer_id integer fk=customers.id;clicked_at timestamptz;"
     "cost numeric(8,4)"),
    ("web_sessions", "id bigint pk;customer_id integer fk=customers.id;"
     "started_at timestamptz;ended_at timestamptz;device text;browser text"),
    ("page_views", "id bigint pk;session_id bigint fk=web_sessions.id;"
     "url text;viewed_at timestamptz;time_on_page_ms integer"),
    ("support_tickets", "id integer pk;customer_id integer fk=customers.id;"
     "agent_id integer fk=employees.id;subject text;priority text;"
     "status text;opened_at timestamptz;closed_at timestamptz"),
    ("plans", "id integer pk;name text;monthly_price numeric(8,2)"),
    ("subscriptions", "id integer pk;customer_id integer fk=customers.id;"
     "plan_id integer fk=plans.id;started_at timestamptz;"
     "cancelled_at timestamptz;mrr numeric(10,2)"),
    ("invoices", "id integer pk;customer_id integer fk=customers.id;"
     "subscription_id integer fk=subscriptions.id;issued_at date;"
     "due_at date;paid_at date;total numeric(12,2);status text"),
    ("reviews", "id integer pk;product_id integer fk=products.id;"
     "customer_id integer fk=customers.id;rating integer;title text;"
     "created_at timestamptz"),
    ("promotions", "id integer pk;code text;discount_pct numeric(5,2);"
     "starts_at timestamptz;ends_at timestamptz"),
    ("order_promotions", "order_id integer fk=orders.id;"
     "promotion_id integer fk=promotions.id"),
    ("loyalty_accounts", "id integer pk;customer_id integer fk=customers.id;"
     "points integer;tier text;enrolled_at date"),
]

DEPTS = ["crm", "erp", "hr", "fin", "ops", "mkt", "it", "legal", "iot", "geo"]
THINGS = ["accounts", "contacts", "leads", "opportunities", "assets",
          "devices", "tasks", "projects", "documents", "notes", "jobs",
          "approvals", "budgets", "forecasts", "tickets", "settings", "users",
          "teams", "locations", "vendors", "contracts", "invoices",
          "expenses", "metrics", "alerts", "schedules", "files", "comments",
          "tags", "audits"]

# (question, the tables its SQL needs)
QUESTIONS = [
    ("Top 10 customers by revenue", ["customers", "orders"]),
    ("Monthly revenue in 2024", ["orders"]),
    ("Which products never sold?", ["products", "order_items"]),
    ("Revenue by product category", ["categories", "products",
                                     "order_items"]),
    ("Average order value per country", ["orders", "customers",
                                         "countries"]),
    ("How many shipments did each carrier deliver late last month?",
     ["shipments", "carriers"]),
    ("Which employees handled the most orders last quarter?",
     ["employees", "orders"]),
    ("Total refunds by return reason", ["returns"]),
    ("Stock on hand per warehouse for each product", ["inventory",
                                                      "warehouses",
                                                      "products"]),
    ("Which suppliers provide the most products?", ["suppliers",
                                                    "products"]),
    ("Cost per click of each marketing campaign by channel",
     ["marketing_campaigns", "ad_clicks"]),
    ("Average page views per web session by device", ["web_sessions",
                                                      "page_views"]),
    ("Support tickets opened per priority this month", ["support_tickets"]),
    ("Average ticket resolution time per agent", ["support_tickets",
                                                  "employees"]),
    ("Monthly recurring revenue by plan", ["subscriptions", "plans"]),
    ("Overdue invoices with the customer's email", ["invoices",
                                                    "customers"]),
    ("Average product rating by category", ["reviews", "products",
                                            "categories"]),
    ("Which promotion codes were used most often?", ["promotions",
                                                     "order_promotions"]),
    ("Payments by payment method last year", ["payments"]),
    ("How many employees were hired per department each year?",
     ["employees", "departments"]),
    ("Loyalty points by tier", ["loyalty_accounts"]),
    ("Number of customers per segment", ["customers", "customer_segments"]),
]


def ddl(schema, name, spec, keys=True):
    cols = []
    for item in spec.split(";"):
        f = item.split()
        col = "%s %s" % (f[0], " ".join(w for w in f[1:] if "=" not in w
                                        and w != "pk"))
        if keys and "pk" in f:
            col += " PRIMARY KEY"
        for w in f:
            if keys and w.startswith("fk="):
                t, c = w[3:].rsplit(".", 1)
                col += " REFERENCES %s.%s(%s)" % (schema, t, c)
        cols.append(col)
    return "CREATE TABLE %s.%s (%s);" % (schema, name, ", ".join(cols))


def warehouse():
    out = ["CREATE SCHEMA staging; CREATE SCHEMA audit; CREATE SCHEMA events;"
           " CREATE SCHEMA logs; CREATE SCHEMA reporting;"]
    out += [ddl("public", n, s) for n, s in CORE]
    # staging copies, without keys
    out += [ddl("staging", "stg_" + n, s + ";_loaded_at timestamptz;"
                "_batch_id bigint", keys=False) for n, s in CORE]
    out += ["CREATE TABLE audit.audit_%s (audit_id bigint PRIMARY KEY, "
            "row_id bigint, changed_at timestamptz, changed_by text, "
            "operation text, old_values jsonb, new_values jsonb);" % n
            for n, _ in CORE]
    out += ["CREATE TABLE events.events_%d_%02d (event_id bigint, user_id "
            "bigint, event_type text, occurred_at timestamptz, properties "
            "jsonb);" % (y, m) for y in range(2019, 2025)
            for m in range(1, 13)]
    out += ["CREATE TABLE logs.app_logs_%d_%02d (id bigint, level text, "
            "message text, logged_at timestamptz, user_id bigint);" % (y, m)
            for y in range(2022, 2025) for m in range(1, 13)]
    for dept in DEPTS:
        out.append("CREATE SCHEMA %s;" % dept)
        for t in THINGS:
            extra = ""
            if t in ("budgets", "forecasts", "invoices", "expenses",
                     "contracts", "opportunities"):
                extra = ", amount numeric(12,2), currency text, " \
                        "period_start date, period_end date"
            elif t in ("contacts", "leads", "accounts"):
                extra = ", email text, phone text, customer_id integer"
            elif t == "tickets":
                extra = ", priority text, opened_at timestamptz, " \
                        "closed_at timestamptz"
            out.append("CREATE TABLE %s.%s_%s (id integer PRIMARY KEY, name "
                       "text, status text, owner_id integer, created_at "
                       "timestamptz, updated_at timestamptz%s);"
                       % (dept, dept, t, extra))
    for r in ("rpt_sales_daily", "rpt_kpi_summary", "rpt_store_traffic",
              "rpt_finance_close", "rpt_marketing_funnel",
              "rpt_inventory_aging", "dash_exec_weekly", "mart_customer_360",
              "mart_product_performance", "agg_ticket_backlog",
              "agg_payment_failures", "agg_shipping_sla"):
        out.append("CREATE TABLE reporting.%s (period_start date, dimension "
                   "text, metric_name text, metric_value numeric(18,4));" % r)
    return "\n".join(out)


TABLE_LINE = re.compile(r"^- ([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)[ :]")


def order_in(prompt):
    """The tables the prompt lists, in order: with columns, then by name."""
    tables = []
    for line in prompt.split("\n"):
        m = TABLE_LINE.match(line)
        if m:
            tables.append("%s.%s" % m.groups())
        elif line.startswith("Other tables (names only): "):
            tables += [t.strip() for t in line[27:].split(",")]
    return tables


def test_ranking_on_a_warehouse(daemon_factory, registry_env, pg, llm):
    db = pg.create_db("warehouse")
    pg.sql(db, warehouse())
    n = pg.sql(db, "SELECT count(*) FROM information_schema.tables WHERE "
               "table_schema NOT IN ('pg_catalog', 'information_schema')")[0][0]
    assert n > 500, n
    env = clean_env(registry_env)
    env.update({"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": "5",
                "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
                "LLM_OPENAI_BASE_URL": llm.url + "/v1"})
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": db, "database_type": "postgresql",
                                     "database_url": pg.url(db),
                                     "is_default": True})
    assert r.status_code == 201, r.text
    found = first5 = needed = 0
    sizes, misses = [], []
    for question, need in QUESTIONS:
        llm.queue("SELECT 1 AS n")
        before = len(llm.requests)
        r = requests.post(d.url("/api/v1/chat"), json={"message": question},
                          timeout=60)
        assert r.status_code == 200, (question, r.text)
        assert r.json()["metrics"]["llm_calls"] >= 1, question
        msgs = llm.requests[before]["body"]["messages"]
        prompt = "\n".join(m["content"] for m in msgs)
        order = order_in(prompt)
        sizes.append(len(prompt) // 4)
        for t in need:
            needed += 1
            name = "public." + t
            if name in order:
                found += 1
                if order.index(name) < 5:
                    first5 += 1
                    continue
            misses.append((question, t, order.index(name) + 1
                           if name in order else None, order[:6]))
    print("ranking: %d questions on %d tables: recall %d/%d in the prompt, "
          "%d/%d within the first five; prompt %d tokens on average, %d at "
          "most" % (len(QUESTIONS), n, found, needed, first5, needed,
                    sum(sizes) // len(sizes), max(sizes)))
    assert len(QUESTIONS) >= 20
    assert not misses, misses
