"""The tools API (GET /api/v1/tools, POST /api/v1/tools/execute) and the
schema snapshot (GET /api/v1/databases/{id}/schema) against the real
daemon, on two target databases with different tables."""
import uuid

import pytest

from conftest import clean_env

ENV_ID = "00000000-0000-0000-0000-00000000dada"


@pytest.fixture(scope="module")
def dbs(pg):
    a = pg.create_db("ta")
    b = pg.create_db("tb")
    pg.sql(a, """
        CREATE TABLE customers (id serial PRIMARY KEY, name varchar(40) NOT NULL,
                                email text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers(id),
                             total numeric(10,2), paid boolean NOT NULL DEFAULT false,
                             meta jsonb);
        CREATE SCHEMA sales;
        CREATE TABLE sales.regions (code char(2) PRIMARY KEY, label text);
        CREATE TABLE sales.targets (region char(2) REFERENCES sales.regions(code),
                                    cust int REFERENCES public.customers(id),
                                    amount float8);
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
        CREATE TABLE "MixedCase" (x int);
        INSERT INTO customers (name, email) SELECT 'c' || g, NULL FROM generate_series(1, 12) g;
        INSERT INTO orders VALUES (1, 1, 150.00, true, '{"rush": true}'), (2, 2, 9.99, false, NULL);
        INSERT INTO sales.regions VALUES ('eu', 'Europe'), ('us', 'America');
    """)
    pg.sql(b, "CREATE TABLE planets (name text PRIMARY KEY, moons int);"
              "INSERT INTO planets VALUES ('earth', 1), ('mars', 2)")
    return {"a": a, "b": b}


@pytest.fixture
def daemon(daemon_factory, registry_env, dbs, pg):
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    ids = {}
    for key, default in (("a", True), ("b", False)):
        r = d.post("/api/v1/databases", {"name": key, "database_url": pg.url(dbs[key]),
                                         "database_type": "postgresql",
                                         "is_default": default})
        assert r.status_code == 201, r.text
        ids[key] = r.json()["connection_id"]
    return d, ids


def run(d, name, arguments=None, target=None):
    body = {"name": name}
    if arguments is not None:
        body["arguments"] = arguments
    if target is not None:
        body["target_database"] = target
    return d.post("/api/v1/tools/execute", body)


def ok(r):
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["success"] is True and j["error"] is None, j
    return j["result"]


NULLABLE_STR = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def schema(props, required):
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


ENGINES = ("PostgreSQL", "MySQL/MariaDB", "ClickHouse")


def described(tools):
    """The tool list without the parameters' descriptions (datachatd's own,
    which DataChat's schemas do not have), and those descriptions."""
    texts = {}
    for t in tools:
        for name, p in t["parameters_schema"]["properties"].items():
            if "description" in p:
                texts[(t["name"], name)] = p.pop("description")
    return tools, texts


def test_tool_list_is_datachats(daemon):
    d, _ = daemon
    r = d.get("/api/v1/tools")
    assert r.status_code == 200
    tools, texts = described(r.json())
    # what the SQL-running and catalog tools take names the three engines
    for key in [("run_sql", "query"), ("list_tables", "schema"),
                ("list_columns", "schema"), ("get_table_sample", "schema")]:
        assert all(e in texts[key] for e in ENGINES), (key, texts[key])
    assert "read-only" in texts[("run_sql", "query")]
    assert set(texts) == {("context_answer", "query"), ("run_sql", "query"),
                          ("list_tables", "schema"), ("list_columns", "table"),
                          ("list_columns", "schema"),
                          ("get_table_sample", "table"),
                          ("get_table_sample", "schema")}
    # apart from them, DataChat's list, field for field
    assert tools == [
        {"name": "context_answer", "description": "Answer using DataPoints only (no SQL).",
         "category": "knowledge", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"query": {"type": "string"}}, ["query"])},
        {"name": "run_sql", "description": "Generate and execute SQL for the user's query.",
         "category": "database", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"query": {"type": "string"}}, ["query"])},
        {"name": "list_tables", "description": "List tables available in the target database.",
         "category": "database", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"schema": NULLABLE_STR}, [])},
        {"name": "list_columns", "description": "List columns for a given table.",
         "category": "database", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"table": {"type": "string"},
                                      "schema": NULLABLE_STR}, ["table"])},
        {"name": "get_table_sample", "description": "Fetch a small sample of rows from a table.",
         "category": "database", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"table": {"type": "string"}, "schema": NULLABLE_STR,
                                      "limit": {"type": "integer", "default": 5}},
                                     ["table"])},
        {"name": "profile_and_generate_datapoints",
         "description": "Profile the database and generate pending DataPoints.",
         "category": "profiling", "requires_approval": True, "enabled": True,
         "parameters_schema": schema({
             "connection_id": NULLABLE_STR,
             "depth": {"type": "string", "default": "metrics_basic"},
             "batch_size": {"type": "integer", "default": 10},
             "max_tables": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
             "sample_size": {"type": "integer", "default": 100},
             "max_columns_per_table": {"type": "integer", "default": 100},
             "query_timeout_seconds": {"type": "integer", "default": 5},
             "per_table_timeout_seconds": {"type": "integer", "default": 20},
             "total_timeout_seconds": {"type": "integer", "default": 180}}, [])},
        {"name": "datapoint_quality_report",
         "description": "Report weak or duplicate DataPoints in managed storage.",
         "category": "knowledge", "requires_approval": False, "enabled": True,
         "parameters_schema": schema({"limit": {"type": "integer", "default": 20}}, [])},
    ]
    assert d.post("/api/v1/tools", {}).status_code == 405
    assert d.get("/api/v1/tools/execute").status_code == 405


def test_list_tables_per_target(daemon):
    d, ids = daemon
    res = ok(run(d, "list_tables"))            # default: A, schema public
    tables = [(t["schema"], t["table"]) for t in res["tables"]]
    assert tables == [("public", "MixedCase"), ("public", "big_orders"),
                      ("public", "customers"), ("public", "orders")]
    by = {t["table"]: t for t in res["tables"]}
    assert by["customers"]["table_type"] == "BASE TABLE"
    assert by["big_orders"]["table_type"] == "VIEW"
    res = ok(run(d, "list_tables", {}, ids["b"]))
    assert [(t["schema"], t["table"]) for t in res["tables"]] == [("public", "planets")]
    res = ok(run(d, "list_tables", {"schema": "sales"}, ids["a"]))
    assert [t["table"] for t in res["tables"]] == ["regions", "targets"]
    res = ok(run(d, "list_tables", {"schema": None}, ids["a"]))
    assert len(res["tables"]) == 4
    res = ok(run(d, "list_tables", {"schema": "nope"}))
    assert res["tables"] == []


def test_list_columns(daemon):
    d, ids = daemon
    res = ok(run(d, "list_columns", {"table": "orders"}))
    assert res["table"] == "public.orders"
    assert [(c["name"], c["nullable"]) for c in res["columns"]] == [
        ("id", False), ("customer_id", True), ("total", True), ("paid", False),
        ("meta", True)]
    res = ok(run(d, "list_columns", {"table": "sales.regions"}))
    assert res["table"] == "sales.regions"
    assert [c["name"] for c in res["columns"]] == ["code", "label"]
    res = ok(run(d, "list_columns", {"table": ' "targets" ', "schema": "sales"}))
    assert [c["name"] for c in res["columns"]] == ["region", "cust", "amount"]
    res = ok(run(d, "list_columns", {"table": "planets"}, ids["b"]))
    assert res["table"] == "public.planets"
    # DataChat: the public schema unless named, names compared exactly
    for args, table in (({"table": "planets"}, "planets"),
                        ({"table": "regions"}, "regions"),
                        ({"table": "Orders"}, "Orders")):
        r = run(d, "list_columns", args, ids["a"])
        assert r.status_code == 500, r.text
        assert r.json() == {"detail": "Table not found: %s" % table}


def test_get_table_sample(daemon):
    d, ids = daemon
    res = ok(run(d, "get_table_sample", {"table": "customers"}))
    assert res["columns"] == ["id", "name", "email"]
    assert res["row_count"] == 5 and res["limit"] == 5 and len(res["rows"]) == 5
    assert res["rows"][0] == {"id": 1, "name": "c1", "email": None}
    res = ok(run(d, "get_table_sample", {"table": "orders", "limit": 1}))
    # jsonb is asyncpg's str to DataChat: a string here too
    assert len(res["rows"]) == 1 and res["rows"][0]["meta"] == '{"rush": true}'
    # the limit is clamped into 1..100, as DataChat does
    res = ok(run(d, "get_table_sample", {"table": "customers", "limit": 500}))
    assert res["limit"] == 100 and res["row_count"] == 12
    res = ok(run(d, "get_table_sample", {"table": "customers", "limit": 0}))
    assert res["limit"] == 1 and res["row_count"] == 1
    res = ok(run(d, "get_table_sample", {"table": "regions", "schema": "sales"}))
    assert res["rows"] == [{"code": "eu", "label": "Europe"},
                           {"code": "us", "label": "America"}]
    res = ok(run(d, "get_table_sample", {"table": "planets", "limit": 2}, ids["b"]))
    assert [row["name"] for row in res["rows"]] == ["earth", "mars"]
    # names go unquoted, as DataChat writes them: MixedCase folds
    r = run(d, "get_table_sample", {"table": "MixedCase"})
    assert r.status_code == 500
    assert r.json() == {"detail": 'Query execution failed: relation "mixedcase" '
                                  'does not exist'}


def test_datachat_tools_without_datapoints(daemon):
    d, ids = daemon
    res = ok(run(d, "context_answer", {"query": "what is revenue?"}, ids["b"]))
    assert res == {"answer": "No DataPoints are loaded: datachatd answers from the "
                             "live schema. The database has 1 table: planets.",
                   "confidence": 0.0, "needs_sql": True, "evidence": [],
                   "retrieved_datapoints": [], "answer_source": "context"}
    res = ok(run(d, "run_sql", {"query": "SELECT name FROM planets ORDER BY name"},
                 ids["b"]))
    assert res["answer"] == "Executed SQL query successfully. Returned 2 row(s)."
    assert res["sql"] == "SELECT name FROM planets ORDER BY name"
    assert res["data"]["rows"] == [{"name": "earth"}, {"name": "mars"}]
    assert res["data"]["columns"] == ["name"] and res["data"]["row_count"] == 2
    assert res["data"]["was_truncated"] is False and res["answer_source"] == "sql"
    r = run(d, "run_sql", {"query": "DELETE FROM planets"}, ids["b"])
    assert r.status_code == 500 and r.json()["detail"].startswith(
        "SQL Editor accepts read-only SQL only (SELECT/WITH/SHOW/DESCRIBE/EXPLAIN).")
    res = ok(run(d, "datapoint_quality_report", {"limit": 5}))
    assert res == {"total_datapoints": 0, "schema_datapoints": 0,
                   "business_datapoints": 0, "weak_schema": [], "weak_business": [],
                   "duplicate_metrics": [], "duplicate_ids": []}
    r = run(d, "profile_and_generate_datapoints")
    assert r.status_code == 403 and r.json() == {
        "detail": "Tool 'profile_and_generate_datapoints' requires approval before "
                  "execution."}
    r = d.post("/api/v1/tools/execute", {"name": "profile_and_generate_datapoints",
                                         "approved": True})
    assert r.status_code == 501 and "live schema mode" in r.json()["detail"]


def test_tool_errors(daemon):
    d, ids = daemon
    r = run(d, "drop_everything")
    assert r.status_code == 500 and r.json() == {"detail": "Unknown tool: drop_everything"}
    cases = [
        ({"name": "list_tables", "arguments": {"bogus": 1}}, 500,
         "list_tables() got an unexpected keyword argument 'bogus'"),
        ({"name": "list_columns"}, 500,
         "list_columns() missing 1 required positional argument: 'table'"),
        ({"name": "list_columns", "arguments": {"table": None}}, 500,
         "list_columns() argument 'table': Input should be a valid string"),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": "x"}},
         500, "get_table_sample() argument 'limit': Input should be a valid integer, "
              "unable to parse string as an integer"),
        ({"name": "get_table_sample", "arguments": {"table": "orders; DROP TABLE x"}},
         500, "Invalid identifier: orders; DROP TABLE x"),
        ({"name": "get_table_sample", "arguments": {"table": "a.b.c"}}, 500,
         "Invalid identifier: b.c"),
        ({"name": "get_table_sample", "arguments": {"table": ""}}, 500,
         "Invalid identifier: "),
        ({"name": "list_columns", "arguments": {"table": "orders", "schema": "x y"}}, 500,
         "Invalid identifier: x y"),
        ({"name": "list_tables", "arguments": {"schema": "pg_catalog'--"}}, 500,
         "Invalid identifier: pg_catalog'--"),
        ({"name": "list_tables", "target_database": "zzz"}, 400, "Invalid connection ID."),
        ({"name": "list_tables", "target_database": ENV_ID}, 404,
         "'Database connection not found: %s'" % ENV_ID),
    ]
    for body, status, detail in cases:
        r = d.post("/api/v1/tools/execute", body)
        assert r.status_code == status, (body, r.text)
        assert r.json() == {"detail": detail}, (body, r.text)
    unknown = str(uuid.uuid4())
    r = run(d, "drop_everything", target=unknown)    # the target is looked up first
    assert r.status_code == 404
    for body, typ in (({"name": 5}, "string_type"), ({}, "missing"),
                      ({"name": "list_tables", "arguments": []}, "dict_type"),
                      ({"name": "list_tables", "arguments": None}, "dict_type"),
                      ({"name": "list_tables", "approved": "maybe"}, "bool_parsing")):
        r = d.post("/api/v1/tools/execute", body)
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == typ, r.text
    r = d.post("/api/v1/tools/execute", data="[]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_schema_snapshot(daemon):
    d, ids = daemon
    r = d.get("/api/v1/databases/%s/schema" % ids["a"])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["connection_id"] == ids["a"] and j["database_type"] == "postgresql"
    assert j["fetched_at"].endswith("Z")
    names = [(t["schema_name"], t["table_name"]) for t in j["tables"]]
    # DataChat's connector reads schema public only
    assert names == [("public", "MixedCase"), ("public", "big_orders"),
                     ("public", "customers"), ("public", "orders")]
    by = {(t["schema_name"], t["table_name"]): t for t in j["tables"]}
    orders = by[("public", "orders")]
    assert orders["row_count"] == 2 and orders["table_type"] == "BASE TABLE"
    cols = {c["name"]: c for c in orders["columns"]}
    assert list(cols) == ["id", "customer_id", "total", "paid", "meta"]
    assert cols["id"] == {"name": "id", "data_type": "integer", "is_nullable": False,
                          "is_primary_key": True, "is_foreign_key": False,
                          "foreign_table": None, "foreign_column": None}
    assert cols["customer_id"]["is_foreign_key"] is True
    assert cols["customer_id"]["foreign_table"] == "customers"
    assert cols["customer_id"]["foreign_column"] == "id"
    assert cols["total"]["data_type"] == "numeric(10,2)"
    assert by[("public", "big_orders")]["table_type"] == "VIEW"
    assert [c["name"] for c in by[("public", "big_orders")]["columns"]] == list(cols)

    r = d.get("/api/v1/databases/%s/schema" % ids["b"])
    assert [t["table_name"] for t in r.json()["tables"]] == ["planets"]
    # errors: DataChat looks the id up in its list, so anything else is 404
    r = d.get("/api/v1/databases/not-a-uuid/schema")
    assert r.status_code == 404
    assert r.json() == {"detail": "Connection not found: not-a-uuid"}
    unknown = str(uuid.uuid4())
    r = d.get("/api/v1/databases/%s/schema" % unknown)
    assert r.status_code == 404
    assert r.json() == {"detail": "Connection not found: %s" % unknown}
    assert d.get("/api/v1/databases/%s/schema" % ENV_ID).status_code == 404
    assert d.get("/api/v1/databases/%s/schema" % ids["a"].upper()).status_code == 404
    assert d.post("/api/v1/databases/%s/schema" % ids["a"], {}).status_code == 405


def test_schema_cache_follows_the_entry(daemon_factory, registry_env, pg):
    one = pg.create_db("tone")
    two = pg.create_db("ttwo")
    pg.sql(one, "CREATE TABLE first_t (a int)")
    pg.sql(two, "CREATE TABLE second_t (b int)")
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "c", "database_url": pg.url(one),
                                     "database_type": "postgresql"})
    cid = r.json()["connection_id"]
    path = "/api/v1/databases/%s/schema" % cid
    first = d.get(path).json()
    assert [t["table_name"] for t in first["tables"]] == ["first_t"]
    # cached per worker: a new table is not seen at once
    pg.sql(one, "CREATE TABLE later_t (c int)")
    again = d.get(path).json()
    assert again["fetched_at"] == first["fetched_at"]
    assert [t["table_name"] for t in again["tables"]] == ["first_t"]
    # ... the live tools see it ...
    r = run(d, "list_tables", {}, cid)
    assert [t["table"] for t in ok(r)["tables"]] == ["first_t", "later_t"]
    # ... and a changed entry drops the snapshot
    r = d.patch("/api/v1/databases/%s" % cid, {"database_url": pg.url(two)})
    assert r.status_code == 200, r.text
    assert [t["table_name"] for t in d.get(path).json()["tables"]] == ["second_t"]
    # so does a deleted one
    assert d.delete("/api/v1/databases/%s" % cid).status_code == 204
    assert d.get(path).status_code == 404


def test_environment_target_tools_and_schema(daemon_factory, dbs, pg):
    d = daemon_factory(env={"DATABASE_URL": pg.url(dbs["b"])}).start()
    res = ok(run(d, "list_tables"))
    assert [t["table"] for t in res["tables"]] == ["planets"]
    r = d.get("/api/v1/databases/%s/schema" % ENV_ID)
    assert r.status_code == 200
    assert [t["table_name"] for t in r.json()["tables"]] == ["planets"]
