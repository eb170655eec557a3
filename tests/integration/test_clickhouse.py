"""ClickHouse targets (issue 15) against the real daemon and a real
ClickHouse server (conftest.ChServer): the registry's live check, direct
SQL and its value types, every catalog phrasing, the three tools,
/schema, an LLM question whose prompt names the dialect, the read-only
attack list with the data checked unchanged, the statement timeout, the
row cap, a user whose profile is already readonly=1, a client that leaves
mid-query (the query is gone from system.processes), a target restart,
and an unreachable target.
"""
import os
import re
import threading
import time

import requests

from conftest import ChServer, clean_env, free_port, wait_for

import pytest

KEY = "sk-test-not-a-real-key-0123456789"


@pytest.fixture(scope="module")
def shop(clickhouse):
    """Databases A and B with different tables and data."""
    a = clickhouse.create_db("ca")
    b = clickhouse.create_db("cb")
    clickhouse.admin("""
        CREATE TABLE customers (id UInt32, name String,
            region Nullable(String)) ENGINE = MergeTree ORDER BY id;
        CREATE TABLE orders (id UInt32, customer_id UInt32,
            revenue Decimal(10, 2), placed Date)
            ENGINE = MergeTree ORDER BY id;
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE revenue > 500;
        CREATE TABLE kinds (k UInt8, i Nullable(Int64), f Nullable(Float64),
            d Nullable(Decimal(12, 2)), t Nullable(String),
            dt Nullable(Date), ts Nullable(DateTime), u Nullable(UUID),
            e Enum8('a' = 1, 'b' = 2), arr Array(UInt8), fs FixedString(4))
            ENGINE = MergeTree ORDER BY k;
        INSERT INTO customers SELECT number + 1,
            concat('cust', toString(number + 1)),
            if(number % 2 = 1, 'north', 'south') FROM system.numbers LIMIT 40;
        INSERT INTO orders SELECT number + 1, 1 + (number + 1) % 40,
            toDecimal64((number + 1) * 7.25, 2), toDate('2024-02-29')
            FROM system.numbers LIMIT 120;
        INSERT INTO kinds VALUES (1, -7, 1.5, 450.00, 'it''s\\ttab',
            '2024-02-29', '2024-02-29 12:34:56',
            '61f0c404-5cb3-11e7-907b-a6006ad3dba0', 'a', [1, 2], 'ab'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'b', [], 'abcd')""",
                     a)
    clickhouse.admin("""
        CREATE TABLE sensors (id UInt32, location String)
            ENGINE = MergeTree ORDER BY id;
        INSERT INTO sensors SELECT number + 1,
            concat('room', toString(number + 1)) FROM system.numbers LIMIT 9;
        CREATE TABLE only_in_b (y Int32) ENGINE = Memory""", b)
    return {"a": a, "b": b}


def register(d, ch, db, name=None, expect=201, **kw):
    r = d.post("/api/v1/databases", {"name": name or db,
                                     "database_type": "clickhouse",
                                     "database_url": ch.url(db, **kw)})
    assert r.status_code == expect, r.text
    return r.json()["connection_id"] if expect == 201 else r


def llm_env(mock):
    return {"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": "5",
            "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
            "LLM_OPENAI_BASE_URL": mock.url + "/v1"}


@pytest.fixture
def chd(daemon_factory, registry_env, shop, clickhouse, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env,
                       conf={"statement_timeout": "1500",
                             "max_rows": "50"}).start(wait_ready=True)
    ids = {"a": register(d, clickhouse, shop["a"]),
           "b": register(d, clickhouse, shop["b"])}
    return d, ids


def sql(d, query, target, **kw):
    return d.post("/api/v1/chat", {"message": query,
                                   "execution_mode": "direct_sql",
                                   "sql": query, "target_database": target},
                  **kw)


def refused(r):
    """The guard's refusal, in DataChat's words."""
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(
        "SQL Editor accepts read-only SQL only "
        "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN)."), r.text
    return r.json()["detail"]


def ok_rows(r):
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["answer_source"] == "sql", j
    return j


def ask(d, message, target):
    return d.post("/api/v1/chat", {"message": message,
                                   "target_database": target}, timeout=60)


def tool(d, name, target, **arguments):
    return d.post("/api/v1/tools/execute", {"name": name, "arguments": arguments,
                                            "target_database": target})


def test_registry_live_check(daemon_factory, registry_env, clickhouse, shop):
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    cid = register(d, clickhouse, shop["a"], name="shop")
    j = d.get("/api/v1/databases/" + cid).json()
    assert j["database_type"] == "clickhouse"
    assert j["database_url"] == "**********"
    # DataChat's scheme spellings
    register(d, clickhouse, shop["b"], name="http", scheme="clickhouse+http")
    # the live check refuses what cannot connect, and says why
    r = register(d, clickhouse, shop["a"], name="bad", expect=400,
                 password="nope")
    assert "Failed to connect" in r.json()["detail"]
    assert "Wrong password" in r.json()["detail"]
    assert "nope" not in r.text and "s3cret" not in r.text
    r = register(d, clickhouse, "no_such_db", name="nodb", expect=400)
    assert "no_such_db" in r.json()["detail"]
    r = d.post("/api/v1/databases", {
        "name": "down", "database_type": "clickhouse",
        "database_url": "clickhouse://dc:pw@127.0.0.1:%d/x" % free_port()})
    assert r.status_code == 400 and "Failed to connect" in r.json()["detail"]
    r = d.post("/api/v1/databases", {
        "name": "param", "database_type": "clickhouse",
        "database_url": clickhouse.url(shop["a"]) + "?session_id=x"})
    assert r.status_code == 400 and "session_id" in r.json()["detail"]
    r = d.post("/api/v1/databases", {
        "name": "mismatch", "database_type": "mysql",
        "database_url": clickhouse.url(shop["a"])})
    assert r.status_code == 400 and "does not match" in r.json()["detail"]
    assert "s3cret" not in r.text
    # a URL change is checked again
    r = d.patch("/api/v1/databases/" + cid,
                {"database_url": clickhouse.url(shop["a"], password="nope")})
    assert r.status_code == 400 and "Failed to connect" in r.json()["detail"]
    r = d.patch("/api/v1/databases/" + cid,
                {"database_url": clickhouse.url(shop["b"])})
    assert r.status_code == 200, r.text
    assert ok_rows(sql(d, "SELECT count() AS n FROM sensors", cid))[
        "data"] == {"n": [9]}
    assert d.delete("/api/v1/databases/" + cid).status_code == 204
    assert d.get("/api/v1/databases/" + cid).status_code == 404
    assert "s3cret" not in d.log()


def test_direct_sql_and_types(chd):
    d, ids = chd
    j = ok_rows(sql(d, "SELECT * FROM kinds ORDER BY k", ids["a"]))
    data = j["data"]
    assert data["i"] == [-7, None]
    assert data["f"] == [1.5, None]
    assert data["d"] == ["450.00", None]           # Decimal's str()
    assert data["t"] == ["it's\ttab", None]
    assert data["dt"] == ["2024-02-29", None]
    assert data["ts"] == ["2024-02-29T12:34:56", None]   # naive datetime
    assert data["u"] == ["61f0c404-5cb3-11e7-907b-a6006ad3dba0", None]
    assert data["e"] == ["a", "b"]
    assert data["arr"] == [[1, 2], []]              # clickhouse-connect's lists
    assert data["fs"] == ["ab", "abcd"]
    # Float32 widened to a double, arrays of any depth as lists
    j = ok_rows(sql(d, "SELECT toFloat32(1.1) AS f4, ['a''b', 'c\\td'] AS sa,"
                       " [[1, 2], [3]] AS nested, [1, NULL] AS na,"
                       " [toDate('2024-02-29')] AS da", ids["a"]))
    assert j["data"] == {"f4": [1.100000023841858], "sa": [["a'b", "c\td"]],
                         "nested": [[[1, 2], [3]]], "na": [[1, None]],
                         "da": [["2024-02-29"]]}
    j = ok_rows(sql(d, "SELECT 1 / 0 AS inf, 18446744073709551615 AS big, "
                       "toUInt8(1) = 1 AS yes", ids["a"]))
    assert j["data"] == {"inf": [None], "big": [18446744073709551615],
                         "yes": [1]}
    # no rows: the connector names the columns (DataChat's data too)
    assert ok_rows(sql(d, "SELECT id, name FROM customers WHERE 1 = 0", ids["a"]))["data"] == {"id": [], "name": []}
    # the same question reaches each target's own data
    assert ok_rows(sql(d, "SELECT count() AS n FROM customers", ids["a"]))[
        "data"] == {"n": [40]}
    assert ok_rows(sql(d, "select `location` from \"sensors\" order by id "
                          "limit 1 -- first", ids["b"]))["data"] == {
        "location": ["room1"]}
    j = ok_rows(sql(d, "DESCRIBE TABLE customers", ids["a"]))
    assert j["data"]["name"] == ["id", "name", "region"]
    j = ok_rows(sql(d, "SHOW TABLES", ids["b"]))
    assert sorted(j["data"]["name"]) == ["only_in_b", "sensors"]
    assert ok_rows(sql(d, "EXISTS TABLE sensors", ids["b"]))["data"] == {
        "result": [1]}
    # the database refuses: DataChat's 400 with the database's words
    r = sql(d, "SELECT nope FROM customers", ids["a"])
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "Query execution failed: Code: 47. DB::Exception: Unknown "
        "identifier: nope"), r.text
    assert "s3cret" not in r.text and "clickhouse://" not in r.text


CATALOG_TABLES = ("list tables", "Show tables", "What tables are available?",
                  "which tables exist", "table list")
CATALOG_COLUMNS = ("show columns in customers", "describe table customers",
                   "What columns does the customers table have?",
                   "fields in customers")


def test_catalog_phrasings(chd):
    d, ids = chd
    for phrase in CATALOG_TABLES:
        ra = ask(d, phrase, ids["a"]).json()
        rb = ask(d, phrase, ids["b"]).json()
        # DataChat's catalog statement for ClickHouse (system.tables)
        assert ra["answer_source"] == "sql", ra
        assert "FROM system.tables" in ra["sql"]
        assert ra["data"]["name"] == ["big_orders", "customers", "kinds",
                                      "orders"]
        assert ".big_orders, " in ra["answer"] and ra["answer"].startswith(
            "Found 4 table(s): ")
        assert rb["data"]["name"] == ["only_in_b", "sensors"]
        assert ra["metrics"]["llm_calls"] == 0
    for phrase in CATALOG_COLUMNS:
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert r["data"]["column_name"] == ["id", "name", "region"], phrase
        assert r["data"]["data_type"] == ["UInt32", "String",
                                          "Nullable(String)"]
        assert r["answer"].startswith("The `customers` table has 3 "
                                      "column(s): id, name, region.")
    for phrase, key, want in (("how many rows are in sensors", "b", 9),
                              ("How many records in customers?", "a", 40),
                              ("row count of orders", "a", 120),
                              ("number of rows in sensors", "b", 9)):
        r = ask(d, phrase, ids[key]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert r["data"]["row_count"] == [want], phrase
        assert "has %d row(s)" % want in r["answer"]
        assert r["sql"].startswith("SELECT count() AS row_count FROM ")
    for phrase, n in (("show me the first 3 rows from customers", 3),
                      ("preview customers", 3), ("sample rows from customers", 3),
                      ("top 2 rows of customers", 2)):
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert len(r["data"]["id"]) == n, phrase
    r = ask(d, "preview custmers", ids["a"]).json()
    assert r["answer_source"] == "clarification"
    assert "Did you mean customers?" in r["clarifying_questions"]


def test_tools_and_schema(chd, shop):
    d, ids = chd
    j = tool(d, "list_tables", ids["a"]).json()
    assert j["success"], j
    tables = {t["table"]: t for t in j["result"]["tables"]}
    assert sorted(tables) == ["big_orders", "customers", "kinds", "orders"]
    assert tables["orders"]["schema"] == shop["a"]
    assert tables["orders"]["row_count"] == 120
    j = tool(d, "list_columns", ids["a"], table="orders").json()
    assert j["success"], j
    assert j["result"]["table"] == "%s.orders" % shop["a"]
    assert [c["name"] for c in j["result"]["columns"]] == [
        "id", "customer_id", "revenue", "placed"]
    j = tool(d, "list_columns", ids["a"], table="%s.customers" % shop["a"]).json()
    assert j["success"] and len(j["result"]["columns"]) == 3
    r = tool(d, "list_columns", ids["a"], table="nope")
    assert r.status_code == 500 and r.json() == {"detail": "Table not found: nope"}
    j = tool(d, "get_table_sample", ids["b"], table="sensors", limit=3).json()
    assert j["success"], j
    assert j["result"]["columns"] == ["id", "location"]
    assert j["result"]["rows"][0] == {"id": 1, "location": "room1"}
    assert j["result"]["row_count"] == 3
    r = tool(d, "get_table_sample", ids["b"], table="nope")
    assert r.status_code == 500, r.text
    assert r.json()["detail"].startswith("Query execution failed: Code: 60")
    j = tool(d, "run_sql", ids["a"], query="SELECT `id` FROM `customers` "
             "ORDER BY id LIMIT 2").json()
    assert j["success"] and j["result"]["data"]["rows"] == [{"id": 1}, {"id": 2}]
    r = tool(d, "run_sql", ids["a"], query="SELECT 1 INTO OUTFILE '/tmp/x'")
    assert r.status_code == 500 and "INTO" in r.json()["detail"]
    r = d.get("/api/v1/databases/%s/schema" % ids["a"])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["database_type"] == "clickhouse"
    tables = {t["table_name"]: t for t in j["tables"]}
    assert sorted(tables) == ["big_orders", "customers", "kinds", "orders"]
    cols = {c["name"]: c for c in tables["orders"]["columns"]}
    assert cols["id"]["is_primary_key"] and not cols["id"]["is_nullable"]
    assert not cols["customer_id"]["is_foreign_key"]
    assert cols["revenue"]["data_type"] == "Decimal(10, 2)"


def test_llm_question_names_the_dialect(chd, llm):
    d, ids = chd
    llm.queue("```sql\nSELECT `region`, count() AS n FROM `customers` "
              "GROUP BY `region` ORDER BY `region`\n```")
    r = ask(d, "how many customers per region", ids["a"])
    j = r.json()
    assert r.status_code == 200 and j["answer_source"] == "sql", j
    assert j["data"] == {"region": ["north", "south"], "n": [20, 20]}
    system = llm.requests[-1]["body"]["messages"][0]["content"]
    assert "ClickHouse database" in system and "toStartOfMonth" in system
    assert "PostgreSQL" not in system and "MySQL" not in system
    user = llm.requests[-1]["body"]["messages"][-1]["content"]
    assert "customers" in user and "orders" in user
    # a failing statement goes back once, with ClickHouse's error
    llm.queue("SELECT nme FROM customers")
    llm.queue("SELECT name FROM customers ORDER BY id LIMIT 1")
    j = ask(d, "first customer name", ids["a"]).json()
    assert j["data"] == {"name": ["cust1"]}, j
    assert "Unknown identifier" in \
        llm.requests[-1]["body"]["messages"][-1]["content"]


ATTACKS = [
    "INSERT INTO customers VALUES (999, 'x', 'x')",
    "INSERT INTO customers SELECT id + 1000, name, region FROM customers",
    "ALTER TABLE customers DELETE WHERE 1",
    "ALTER TABLE customers UPDATE name = 'evil' WHERE 1",
    "ALTER TABLE orders DROP PARTITION tuple()",
    "DROP TABLE orders",
    "TRUNCATE TABLE orders",
    "CREATE TABLE evil (x Int8) ENGINE = Memory",
    "RENAME TABLE orders TO orders2",
    "DETACH TABLE orders",
    "OPTIMIZE TABLE orders FINAL",
    "SYSTEM STOP MERGES",
    "SYSTEM SHUTDOWN",
    "KILL QUERY WHERE 1",
    "SET readonly = 0",
    "USE system",
    "SELECT 1; DROP TABLE orders",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT 1 FORMAT JSON",
    "SELECT * FROM customers INTO OUTFILE '/tmp/dc-evil.txt'",
    "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
    "SELECT * FROM file('/etc/passwd', TSV, 'a String')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')",
    "SELECT * FROM mysql('127.0.0.1:3306', 'd', 't', 'u', 'p')",
    "SELECT * FROM customers WHERE id IN (SELECT dummy FROM "
    "cluster('test', system.one))",
    "SELECT \"url\"('http://127.0.0.1:1/', CSV, 'a String')",
    "SELECT 1 # ' \n, url('http://127.0.0.1:1/')",
    "SELECT 1 /* /* */ ; DROP TABLE orders */",
    "SELECT $$ ' $$, 1",
    "WITH c AS (SELECT 1) INSERT INTO customers SELECT * FROM c",
]


def test_read_only_attacks(chd, clickhouse, shop):
    d, ids = chd

    def state():
        return (clickhouse.sql("SELECT count(), sum(id), groupArray(name) "
                               "FROM (SELECT * FROM customers ORDER BY id)",
                               shop["a"]),
                clickhouse.sql("SELECT count() FROM orders", shop["a"]),
                clickhouse.sql("SHOW TABLES", shop["a"]))
    before = state()
    for attack in ATTACKS:
        refused(sql(d, attack, ids["a"]))
    # what the guard lets through still cannot write or reach out: the
    # server runs it with readonly=1, which refuses even numbers()
    r = sql(d, "SELECT * FROM numbers(3)", ids["a"])
    assert r.status_code == 400, r.text
    assert "readonly" in r.json()["detail"], r.text
    assert state() == before
    assert not os.path.exists("/tmp/dc-evil.txt")
    # the settings each statement ran with, and the connection still works
    j = ok_rows(sql(d, "SELECT name, value FROM system.settings WHERE name "
                       "IN ('readonly', 'max_execution_time', "
                       "'max_result_rows', 'result_overflow_mode') "
                       "ORDER BY name", ids["a"]))
    assert dict(zip(j["data"]["name"], j["data"]["value"])) == {
        "readonly": "1", "max_execution_time": "2", "max_result_rows": "51",
        "result_overflow_mode": "break"}


def test_timeout_and_row_cap(chd, clickhouse):
    d, ids = chd
    t0 = time.monotonic()
    r = sql(d, "SELECT count() AS dc_slow FROM system.numbers "
               "WHERE sleep(0) = 0", ids["a"])
    assert time.monotonic() - t0 < 4
    # DataChat's connector words for a statement that ran out of time
    assert r.status_code == 400 and r.json() == {
        "detail": "Query timeout (2s)"}, r.text
    wait_for(lambda: not clickhouse.running("dc_slow"), timeout=3,
             what="timed-out query gone")
    # the cap: 50 rows shown, truncated said; a huge result stops early
    j = ok_rows(sql(d, "SELECT id FROM orders ORDER BY id", ids["a"]))
    assert j["row_count"] == 50 and j["truncated"] is True
    assert j["data"]["id"] == list(range(1, 51))
    t0 = time.monotonic()
    j = ok_rows(sql(d, "SELECT number AS dc_capped FROM system.numbers",
                    ids["a"]))
    assert j["truncated"] is True and j["row_count"] == 50
    assert time.monotonic() - t0 < 1.4
    wait_for(lambda: not clickhouse.running("dc_capped"), timeout=3,
             what="capped query stopped")
    # exactly the cap is not truncated
    j = ok_rows(sql(d, "SELECT number FROM system.numbers LIMIT 50",
                    ids["a"]))
    assert j["row_count"] == 50 and j["truncated"] is False
    assert ok_rows(sql(d, "SELECT 1 AS x", ids["a"]))["data"] == {"x": [1]}


def phase_sums(d):
    """{phase: sum of its seconds} from /metrics (test_stall.py's
    phases)."""
    text = d.get("/metrics").text
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^datachatd_query_phase_seconds_sum\{phase="(\w+)"\} '
        r'([\d.]+)$', text, re.M)}


def test_first_result_is_timed(daemon_factory, registry_env, clickhouse,
                               shop):
    """A ClickHouse query's first result is timed when its first bytes
    arrive, not when it is answered: a result of many chunks (200000
    rows, about 1.3 MB) is parsed as they come, so its first_result
    phase ends before its total.  Until the driver reported its bytes,
    both phases ended at the answer and their sums moved together."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_rows": "300000"}).start(wait_ready=True)
    t = register(d, clickhouse, shop["b"])
    assert ok_rows(sql(d, "SELECT 1 AS x", t))["data"] == {"x": [1]}
    before = phase_sums(d)
    j = ok_rows(sql(d, "SELECT number AS n FROM system.numbers "
                       "LIMIT 200000", t, timeout=60))
    assert j["row_count"] == 200000 and j["truncated"] is False
    after = phase_sums(d)
    first = after["first_result"] - before["first_result"]
    total = after["total"] - before["total"]
    assert 0 < first < total, (before, after)


def test_readonly_profile_user(chd, clickhouse, shop):
    """A user whose profile is readonly=1 may change no setting: its
    statements pass none, and the timeout and the cap are datachatd's."""
    d, ids = chd
    ro = register(d, clickhouse, shop["a"], name="ro", user="ro")
    j = ok_rows(sql(d, "SELECT name, value FROM system.settings WHERE name "
                       "IN ('readonly', 'max_execution_time') ORDER BY name",
                    ro))
    assert j["data"]["value"] == ["0", "1"]
    refused(sql(d, "INSERT INTO customers VALUES (999, 'x', 'x')", ro))
    t0 = time.monotonic()
    r = sql(d, "SELECT count() AS dc_ro_slow FROM system.numbers "
               "WHERE sleep(0) = 0", ro)
    assert r.status_code == 400 and r.json() == {
        "detail": "Query timeout (2s)"}, r.text
    assert time.monotonic() - t0 < 4
    wait_for(lambda: not clickhouse.running("dc_ro_slow"), timeout=3,
             what="timed-out query killed")
    j = ok_rows(sql(d, "SELECT number AS dc_ro_capped FROM system.numbers",
                    ro))
    assert j["truncated"] is True and j["row_count"] == 50
    wait_for(lambda: not clickhouse.running("dc_ro_capped"), timeout=3,
             what="capped query killed")


def test_client_leaving_stops_the_query(daemon_factory, registry_env,
                                        clickhouse, shop):
    d = daemon_factory(env=clean_env(registry_env),
                       conf={"statement_timeout": "30000"}
                       ).start(wait_ready=True)
    t = register(d, clickhouse, shop["b"])
    out = {}

    def leave_early():
        try:
            sql(d, "SELECT count() AS dc_leaving FROM system.numbers "
                   "WHERE sleep(0) = 0", t, timeout=0.5)
        except requests.exceptions.ReadTimeout as e:
            out["timeout"] = e

    th = threading.Thread(target=leave_early)
    th.start()
    wait_for(lambda: clickhouse.running("dc_leaving"), timeout=5,
             what="query running")
    th.join(10)
    assert "timeout" in out
    # KILL QUERY by its query_id: gone long before the 30 s timeout
    wait_for(lambda: not clickhouse.running("dc_leaving"), timeout=3,
             what="abandoned query gone")
    assert ok_rows(sql(d, "SELECT 1 AS x", t))["data"] == {"x": [1]}


def test_restart_and_unreachable(daemon_factory, registry_env):
    other = ChServer()
    try:
        db = other.create_db("r")
        other.admin("CREATE TABLE t (x Int32) ENGINE = Memory; "
                    "INSERT INTO t VALUES (7)", db)
        d = daemon_factory(env=clean_env(registry_env),
                           conf={"connect_timeout": "2"}).start(wait_ready=True)
        t = register(d, other, db)
        workers = d.workers()
        for _ in range(4):
            assert ok_rows(sql(d, "SELECT x FROM t", t))["data"] == {"x": [7]}

        # the server restarts: kept-alive connections are dead, the next
        # query works (a Memory table is empty after a restart)
        other.stop()
        other.start()
        for _ in range(6):
            assert ok_rows(sql(d, "SELECT count() AS n FROM t", t))[
                "data"] == {"n": [0]}

        # the server is down: fail fast with a clear detail
        other.stop()
        for _ in range(3):
            t0 = time.monotonic()
            r = sql(d, "SELECT x FROM t", t)
            assert time.monotonic() - t0 < 2.5
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "unavailable" in detail and "connect" in detail
            assert "s3cret" not in detail
        r = d.post("/api/v1/tools/execute", {"name": "list_tables",
                                             "target_database": t})
        assert r.status_code == 503
        assert d.get("/api/v1/databases/%s/schema" % t).status_code == 503

        # it comes back: so do we, by ourselves
        other.start()
        wait_for(lambda: sql(d, "SELECT 1 AS x", t).status_code == 200,
                 timeout=15, what="recovery")
        assert d.workers() == workers
        assert "s3cret" not in d.log()
    finally:
        other.destroy()
