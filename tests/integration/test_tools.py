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


def test_tool_list_has_typed_parameters(daemon):
    d, _ = daemon
    r = d.get("/api/v1/tools")
    assert r.status_code == 200
    tools = {t["name"]: t for t in r.json()}
    assert set(tools) == {"list_tables", "list_columns", "get_table_sample"}
    for t in tools.values():
        ps = t["parameters_schema"]
        assert ps["type"] == "object" and ps["additionalProperties"] is False
        assert t["category"] == "database" and t["enabled"] is True
        assert t["requires_approval"] is False and t["description"]
    assert tools["list_tables"]["parameters_schema"]["required"] == []
    assert tools["list_columns"]["parameters_schema"]["required"] == ["table"]
    sample = tools["get_table_sample"]["parameters_schema"]
    assert sample["required"] == ["table"]
    assert sample["properties"]["table"]["type"] == "string"
    limit = sample["properties"]["limit"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer", 1, 100, 5)
    assert {"type": "null"} in sample["properties"]["schema"]["anyOf"]
    assert d.post("/api/v1/tools", {}).status_code == 405
    assert d.get("/api/v1/tools/execute").status_code == 405


def test_list_tables_per_target(daemon):
    d, ids = daemon
    res = ok(run(d, "list_tables"))            # default: A
    tables = [(t["schema"], t["table"]) for t in res["tables"]]
    assert tables == sorted(tables)
    assert ("public", "customers") in tables and ("sales", "regions") in tables
    assert ("public", "planets") not in tables
    assert not any(s in ("pg_catalog", "information_schema") for s, _ in tables)
    by = {(t["schema"], t["table"]): t for t in res["tables"]}
    assert by[("public", "customers")]["row_count"] == 12
    assert by[("public", "customers")]["table_type"] == "BASE TABLE"
    assert by[("public", "big_orders")]["table_type"] == "VIEW"
    assert by[("public", "big_orders")]["row_count"] is None
    assert ("public", "MixedCase") in by

    res = ok(run(d, "list_tables", {}, ids["b"]))
    assert [(t["schema"], t["table"], t["row_count"]) for t in res["tables"]] == [
        ("public", "planets", 2)]
    res = ok(run(d, "list_tables", {"schema": "sales"}, ids["a"]))
    assert [t["table"] for t in res["tables"]] == ["regions", "targets"]
    res = ok(run(d, "list_tables", {"schema": None}, ids["a"]))
    assert len(res["tables"]) == 6
    res = ok(run(d, "list_tables", {"schema": "nope"}))
    assert res["tables"] == []


def test_list_columns(daemon):
    d, ids = daemon
    res = ok(run(d, "list_columns", {"table": "orders"}))
    assert res["table"] == "public.orders"
    assert res["columns"] == [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "customer_id", "type": "integer", "nullable": True},
        {"name": "total", "type": "numeric(10,2)", "nullable": True},
        {"name": "paid", "type": "boolean", "nullable": False},
        {"name": "meta", "type": "jsonb", "nullable": True},
    ]
    res = ok(run(d, "list_columns", {"table": "sales.regions"}))
    assert res["table"] == "sales.regions"
    assert [c["name"] for c in res["columns"]] == ["code", "label"]
    res = ok(run(d, "list_columns", {"table": "targets", "schema": "sales"}))
    assert [c["type"] for c in res["columns"]] == ["character(2)", "integer",
                                                   "double precision"]
    res = ok(run(d, "list_columns", {"table": "planets"}, ids["b"]))
    assert res["table"] == "public.planets"
    r = run(d, "list_columns", {"table": "planets"}, ids["a"])
    assert r.status_code == 404 and "Table not found" in r.json()["detail"]


def test_get_table_sample(daemon):
    d, ids = daemon
    res = ok(run(d, "get_table_sample", {"table": "customers"}))
    assert res["columns"] == ["id", "name", "email"]
    assert res["row_count"] == 5 and res["limit"] == 5 and len(res["rows"]) == 5
    assert res["rows"][0] == {"id": 1, "name": "c1", "email": None}
    res = ok(run(d, "get_table_sample", {"table": "orders", "limit": 1}))
    assert res["rows"] == [{"id": 1, "customer_id": 1, "total": 150.00, "paid": True,
                            "meta": {"rush": True}}]
    res = ok(run(d, "get_table_sample", {"table": "customers", "limit": 100}))
    assert res["row_count"] == 12
    res = ok(run(d, "get_table_sample", {"table": "regions", "schema": "sales"}))
    assert res["rows"] == [{"code": "eu", "label": "Europe"},
                           {"code": "us", "label": "America"}]
    res = ok(run(d, "get_table_sample", {"table": "MixedCase"}))
    assert res["columns"] == ["x"] and res["rows"] == []
    res = ok(run(d, "get_table_sample", {"table": "planets", "limit": 2}, ids["b"]))
    assert [row["name"] for row in res["rows"]] == ["earth", "mars"]
    r = run(d, "get_table_sample", {"table": "planets"}, ids["a"])
    assert r.status_code == 404 and "Table not found" in r.json()["detail"]


def test_tool_errors(daemon):
    d, ids = daemon
    r = run(d, "drop_everything")
    assert r.status_code == 404 and "Unknown tool" in r.json()["detail"]
    cases = [
        ({"name": 5}, 422),
        ({}, 422),
        ({"name": "list_tables", "arguments": []}, 422),
        ({"name": "list_tables", "arguments": "x"}, 422),
        ({"name": "list_tables", "arguments": {"bogus": 1}}, 422),
        ({"name": "list_tables", "arguments": {"schema": 5}}, 422),
        ({"name": "list_columns"}, 422),
        ({"name": "list_columns", "arguments": {}}, 422),
        ({"name": "list_columns", "arguments": {"table": None}}, 422),
        ({"name": "list_columns", "arguments": {"table": 1}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": 0}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": 101}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": "5"}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": 2.5}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders", "limit": True}}, 422),
        ({"name": "get_table_sample", "arguments": {"table": "orders; DROP TABLE x"}}, 400),
        ({"name": "get_table_sample", "arguments": {"table": "a.b.c"}}, 400),
        ({"name": "get_table_sample", "arguments": {"table": ""}}, 400),
        ({"name": "list_columns", "arguments": {"table": "orders", "schema": "x y"}}, 400),
        ({"name": "list_tables", "arguments": {"schema": "pg_catalog'--"}}, 400),
        ({"name": "list_tables", "target_database": "zzz"}, 400),
        ({"name": "list_tables", "target_database": str(uuid.uuid4())}, 404),
        ({"name": "list_tables", "target_database": ENV_ID}, 404),
    ]
    for body, status in cases:
        r = d.post("/api/v1/tools/execute", body)
        assert r.status_code == status, (body, r.text)
        assert "detail" in r.json()
    r = d.post("/api/v1/tools/execute", data="[]", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_schema_snapshot(daemon):
    d, ids = daemon
    r = d.get("/api/v1/databases/%s/schema" % ids["a"])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["connection_id"] == ids["a"] and j["database_type"] == "postgresql"
    assert j["fetched_at"].endswith("+00:00")
    names = [(t["schema_name"], t["table_name"]) for t in j["tables"]]
    assert names == sorted(names)
    assert names == [("public", "MixedCase"), ("public", "big_orders"),
                     ("public", "customers"), ("public", "orders"),
                     ("sales", "regions"), ("sales", "targets")]
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
    tgt = {c["name"]: c for c in by[("sales", "targets")]["columns"]}
    assert (tgt["region"]["foreign_table"], tgt["region"]["foreign_column"]) == (
        "regions", "code")
    assert tgt["cust"]["foreign_table"] == "public.customers"
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
    assert run(d, "list_tables").json()["target_database"] == ENV_ID
    r = d.get("/api/v1/databases/%s/schema" % ENV_ID)
    assert r.status_code == 200
    assert [t["table_name"] for t in r.json()["tables"]] == ["planets"]
