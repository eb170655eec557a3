"""MySQL/MariaDB targets (issue 15) against the real daemon and a real
MariaDB server (conftest.MyServer): the registry's live check, direct SQL
and its value types, every catalog phrasing, the three tools, /schema, an
LLM question whose prompt names the dialect, the read-only attack list
with the data checked unchanged, the statement timeout, the row cap, a
client that leaves mid-query (the statement is gone from the server's
processlist), a target restart, and an unreachable target.
"""
import threading
import time

import pytest
import requests

from conftest import MyServer, clean_env, free_port, wait_for

KEY = "sk-test-not-a-real-key-0123456789"


@pytest.fixture(scope="module")
def shop(mysql):
    """Databases A and B with different tables and data."""
    a = mysql.create_db("ma")
    b = mysql.create_db("mb")
    mysql.admin("""
        CREATE TABLE customers (id int PRIMARY KEY, name varchar(40) NOT NULL,
                                region varchar(10));
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int,
                             revenue decimal(10,2), placed date,
                             meta json,
                             FOREIGN KEY (customer_id) REFERENCES customers(id));
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE revenue > 500;
        CREATE TABLE kinds (i bigint, f double, d decimal(12,2), b tinyint(1),
                            t varchar(20), dt date, ts datetime(3),
                            tm time, bin varbinary(8), u char(36));
        INSERT INTO customers SELECT seq, CONCAT('cust', seq),
            IF(seq % 2 = 0, 'north', 'south') FROM seq_1_to_40;
        INSERT INTO orders SELECT seq, 1 + seq % 40, seq * 7.25,
            '2024-02-29', NULL FROM seq_1_to_120;
        UPDATE orders SET meta = '{"rush": true, "n": [1, null]}' WHERE id = 1;
        INSERT INTO kinds VALUES (-7, 1.5, 450.00, 1, 'it''s', '2024-02-29',
            '2024-02-29 12:34:56.789', '01:02:03', X'0102ff', UUID());
        INSERT INTO kinds VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL);
        ANALYZE TABLE customers, orders, kinds""", a)
    mysql.admin("""
        CREATE TABLE sensors (id int PRIMARY KEY, location varchar(20));
        INSERT INTO sensors SELECT seq, CONCAT('room', seq) FROM seq_1_to_9;
        CREATE TABLE only_in_b (y int);
        ANALYZE TABLE sensors""", b)
    return {"a": a, "b": b}


def register(d, mysql, db, name=None, expect=201, **kw):
    r = d.post("/api/v1/databases", {"name": name or db,
                                     "database_type": "mysql",
                                     "database_url": mysql.url(db, **kw)})
    assert r.status_code == expect, r.text
    return r.json()["connection_id"] if expect == 201 else r


def llm_env(mock):
    return {"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": "5",
            "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
            "LLM_OPENAI_BASE_URL": mock.url + "/v1"}


@pytest.fixture
def myd(daemon_factory, registry_env, shop, mysql, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env,
                       conf={"statement_timeout": "1500",
                             "max_rows": "50"}).start(wait_ready=True)
    ids = {"a": register(d, mysql, shop["a"]),
           "b": register(d, mysql, shop["b"])}
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


def test_registry_live_check(daemon_factory, registry_env, mysql, shop):
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    cid = register(d, mysql, shop["a"], name="shop")
    j = d.get("/api/v1/databases/" + cid).json()
    assert j["database_type"] == "mysql"
    assert j["database_url"] == "**********"
    # DataChat's scheme spellings
    register(d, mysql, shop["b"], name="pymysql", scheme="mysql+pymysql")
    # the live check refuses what cannot connect, and says why
    r = register(d, mysql, shop["a"], name="bad", expect=400, password="nope")
    assert "Failed to connect" in r.json()["detail"]
    assert "Access denied" in r.json()["detail"]
    assert "nope" not in r.text and "s3cret" not in r.text
    r = d.post("/api/v1/databases", {
        "name": "down", "database_type": "mysql",
        "database_url": "mysql://dc:pw@127.0.0.1:%d/x" % free_port()})
    assert r.status_code == 400 and "Failed to connect" in r.json()["detail"]
    r = d.post("/api/v1/databases", {
        "name": "param", "database_type": "mysql",
        "database_url": mysql.url(shop["a"]) + "?unix_socket=/tmp/x"})
    assert r.status_code == 400 and "unix_socket" in r.json()["detail"]
    r = d.post("/api/v1/databases", {
        "name": "mismatch", "database_type": "postgresql",
        "database_url": mysql.url(shop["a"])})
    assert r.status_code == 400 and "does not match" in r.json()["detail"]
    assert "s3cret" not in r.text
    # a URL change is checked again
    r = d.patch("/api/v1/databases/" + cid,
                {"database_url": mysql.url(shop["a"], password="nope")})
    assert r.status_code == 400 and "Failed to connect" in r.json()["detail"]
    r = d.patch("/api/v1/databases/" + cid, {"database_url": mysql.url(shop["b"])})
    assert r.status_code == 200, r.text
    assert ok_rows(sql(d, "SELECT count(*) AS n FROM sensors", cid))["data"] == \
        {"n": [9]}
    assert d.delete("/api/v1/databases/" + cid).status_code == 204
    assert d.get("/api/v1/databases/" + cid).status_code == 404


def test_direct_sql_and_types(myd, mysql, shop):
    d, ids = myd
    j = ok_rows(sql(d, "SELECT * FROM kinds ORDER BY i IS NULL", ids["a"]))
    data = j["data"]
    assert data["i"] == [-7, None]
    assert data["f"] == [1.5, None]
    assert data["d"] == ["450.00", None]           # Decimal's str()
    assert data["b"] == [1, None]
    assert data["t"] == ["it's", None]
    assert data["dt"] == ["2024-02-29", None]
    assert data["ts"] == ["2024-02-29T12:34:56.789000", None]
    assert data["tm"] == ["PT1H2M3S", None]          # TIME is a timedelta
    assert data["bin"] == ["\\x0102ff", None]      # not UTF-8: the hex text
    assert len(data["u"][0]) == 36
    # JSON is the connector's str (MariaDB keeps it as LONGTEXT with a
    # json format)
    j = ok_rows(sql(d, "SELECT meta FROM orders WHERE id = 1", ids["a"]))
    assert j["data"]["meta"] == ['{"rush": true, "n": [1, null]}']
    # no rows: the connector names the columns (DataChat's data too)
    assert ok_rows(sql(d, "SELECT id, name FROM customers WHERE 1 = 0", ids["a"]))["data"] == {"id": [], "name": []}
    # the same question reaches each target's own data
    assert ok_rows(sql(d, "SELECT count(*) AS n FROM customers", ids["a"]))[
        "data"] == {"n": [40]}
    assert ok_rows(sql(d, "select `location` from `sensors` order by id "
                          "limit 1", ids["b"]))["data"] == {"location": ["room1"]}
    # duplicate names, MySQL comments, DESCRIBE and SHOW
    assert ok_rows(sql(d, "SELECT 1 AS a, 2 AS a # both", ids["a"]))[
        "data"] == {"a": [1], "a_2": [2]}
    j = ok_rows(sql(d, "DESCRIBE customers", ids["a"]))
    assert j["data"]["Field"] == ["id", "name", "region"]
    j = ok_rows(sql(d, "SHOW TABLES", ids["b"]))
    assert sorted(list(j["data"].values())[0]) == ["only_in_b", "sensors"]
    # the database refuses: DataChat's 400 with the database's words
    r = sql(d, "SELECT nope FROM customers", ids["a"])
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "Query execution failed: Unknown column 'nope' in "), r.text
    assert "s3cret" not in r.text and "mysql://" not in r.text


def test_bit_and_dates_python_cannot_build(myd, mysql):
    """mysql-connector reads BIT as an int and a date it cannot build
    (zero dates, a zero month) as None: so does DataChat's data."""
    d, _ = myd
    db = mysql.create_db("modd")
    mysql.admin("""SET SESSION sql_mode = '';
        CREATE TABLE odd (bt bit(10), b1 bit(1), z date, zt datetime,
                          zm date, ok date);
        INSERT INTO odd VALUES (b'1000000001', b'1', '0000-00-00',
            '0000-00-00 00:00:00', '2024-00-10', '2024-02-29')""", db)
    j = ok_rows(sql(d, "SELECT * FROM odd", register(d, mysql, db)))
    assert j["data"] == {"bt": [513], "b1": [1], "z": [None], "zt": [None],
                         "zm": [None], "ok": ["2024-02-29"]}


CATALOG_TABLES = ("list tables", "Show tables", "What tables are available?",
                  "which tables exist", "table list")
CATALOG_COLUMNS = ("show columns in customers", "describe table customers",
                   "What columns does the customers table have?",
                   "fields in customers")


def test_catalog_phrasings(myd):
    d, ids = myd
    for phrase in CATALOG_TABLES:
        ra = ask(d, phrase, ids["a"]).json()
        rb = ask(d, phrase, ids["b"]).json()
        # DataChat's catalog statement for MySQL, within the URL's database
        assert ra["answer_source"] == "sql", ra
        assert "FROM information_schema.tables" in ra["sql"]
        assert ra["data"]["table_name"] == ["big_orders", "customers",
                                            "kinds", "orders"]
        assert ".big_orders, " in ra["answer"] and ra["answer"].startswith(
            "Found 4 table(s): ")
        assert rb["data"]["table_name"] == ["only_in_b", "sensors"]
        assert ra["metrics"]["llm_calls"] == 0
    for phrase in CATALOG_COLUMNS:
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert r["data"]["column_name"] == ["id", "name", "region"], phrase
        assert r["data"]["data_type"] == ["int", "varchar", "varchar"]
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
        assert r["sql"].startswith("SELECT COUNT(*) AS row_count FROM ")
    for phrase, n in (("show me the first 3 rows from customers", 3),
                      ("preview customers", 3), ("sample rows from customers", 3),
                      ("top 2 rows of customers", 2)):
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert len(r["data"]["id"]) == n, phrase
    r = ask(d, "preview custmers", ids["a"]).json()
    assert r["answer_source"] == "clarification"
    assert "Did you mean customers?" in r["clarifying_questions"]


def test_tools_and_schema(myd, shop):
    d, ids = myd
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
        "id", "customer_id", "revenue", "placed", "meta"]
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
    assert r.json()["detail"].startswith("Query execution failed: Table ")
    j = tool(d, "run_sql", ids["a"], query="SELECT `id` FROM `customers` "
             "ORDER BY id LIMIT 2").json()
    assert j["success"] and j["result"]["data"]["rows"] == [{"id": 1}, {"id": 2}]
    r = tool(d, "run_sql", ids["a"], query="SELECT 1 INTO @x")
    assert r.status_code == 500 and "INTO" in r.json()["detail"]
    r = d.get("/api/v1/databases/%s/schema" % ids["a"])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["database_type"] == "mysql"
    tables = {t["table_name"]: t for t in j["tables"]}
    cols = {c["name"]: c for c in tables["orders"]["columns"]}
    assert cols["id"]["is_primary_key"] and not cols["id"]["is_nullable"]
    assert cols["customer_id"]["is_foreign_key"]
    assert cols["customer_id"]["foreign_table"] == "customers"
    assert cols["customer_id"]["foreign_column"] == "id"
    assert cols["revenue"]["data_type"] == "decimal(10,2)"


def test_llm_question_names_the_dialect(myd, llm):
    d, ids = myd
    llm.queue("```sql\nSELECT `region`, count(*) AS n FROM `customers` "
              "GROUP BY `region` ORDER BY `region`\n```")
    r = ask(d, "how many customers per region", ids["a"])
    j = r.json()
    assert r.status_code == 200 and j["answer_source"] == "sql", j
    assert j["data"] == {"region": ["north", "south"], "n": [20, 20]}
    system = llm.requests[-1]["body"]["messages"][0]["content"]
    assert "MySQL database" in system and "backticks" in system
    assert "PostgreSQL" not in system
    user = llm.requests[-1]["body"]["messages"][-1]["content"]
    assert "customers" in user and "orders" in user
    # a failing statement goes back once, with MySQL's error
    llm.queue("SELECT nme FROM customers")
    llm.queue("SELECT name FROM customers ORDER BY id LIMIT 1")
    j = ask(d, "first customer name", ids["a"]).json()
    assert j["data"] == {"name": ["cust1"]}, j
    assert "Unknown column" in llm.requests[-1]["body"]["messages"][-1]["content"]


ATTACKS = [
    "INSERT INTO customers VALUES (999, 'x', 'x')",
    "INSERT INTO customers SELECT id + 1000, name, region FROM customers",
    "REPLACE INTO customers VALUES (1, 'evil', 'x')",
    "UPDATE customers SET name = 'evil'",
    "DELETE FROM orders",
    "DROP TABLE orders",
    "TRUNCATE orders",
    "CREATE TABLE evil (x int)",
    "ALTER TABLE customers ADD evil int",
    "SELECT 1; DELETE FROM orders",
    "SELECT * FROM customers INTO OUTFILE '/tmp/dc-evil.txt'",
    "SELECT * FROM customers INTO DUMPFILE '/tmp/dc-evil.txt'",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE customers",
    "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE customers",
    "SET GLOBAL max_connections = 1",
    "SET SESSION TRANSACTION READ WRITE",
    "SELECT 1 /*! ; DELETE FROM orders */",
    "/*!50000 DELETE FROM orders */",
    "SELECT 1 /*M! ; DROP TABLE orders */",
    "SELECT LOAD_FILE('/etc/passwd')",
    "SELECT GET_LOCK('dc', 1)",
    "SELECT @x := 1",
    "SELECT * FROM customers FOR UPDATE",
    "SELECT * FROM customers LOCK IN SHARE MODE",
    "SELECT /*+ MAX_EXECUTION_TIME(0) */ 1",
    "CALL mysql.no_such_proc()",
    "START TRANSACTION READ WRITE",
    "COMMIT",
    "WITH c AS (SELECT 1) DELETE FROM orders",
    "EXPLAIN ANALYZE DELETE FROM orders",
    "GRANT ALL ON *.* TO 'dc'@'127.0.0.1'",
    "KILL 1",
]


def test_read_only_attacks(myd, mysql, shop):
    d, ids = myd

    def state():
        return (mysql.sql(shop["a"], "SELECT count(*), sum(id), "
                          "group_concat(name ORDER BY id) FROM customers"),
                mysql.sql(shop["a"], "SELECT count(*) FROM orders"),
                sorted(r[0] for r in mysql.sql(
                    shop["a"], "SELECT TABLE_NAME FROM information_schema."
                    "TABLES WHERE TABLE_SCHEMA = DATABASE()")))
    before = state()
    for attack in ATTACKS:
        refused(sql(d, attack, ids["a"]))
    # what the guard lets through still cannot write: the transaction is
    # read-only (a function that writes is refused by the server)
    mysql.sql(shop["a"], "CREATE FUNCTION IF NOT EXISTS sneaky() RETURNS "
              "int MODIFIES SQL DATA BEGIN DELETE FROM orders; RETURN 1; "
              "END")
    r = sql(d, "SELECT sneaky() AS x", ids["a"])
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("Query execution failed: ")
    assert "READ ONLY" in r.json()["detail"].upper()
    assert state() == before
    import os
    assert not os.path.exists("/tmp/dc-evil.txt")
    # the connection still works, and nothing of a job outlives it
    j = ok_rows(sql(d, "SELECT @x AS x, @@session.max_statement_time AS t, "
                       "@@session.autocommit AS ac, @@session.tx_read_only "
                       "AS ro", ids["a"]))
    assert j["data"] == {"x": [None], "t": [1.5], "ac": [1], "ro": [1]}


def test_timeout_and_row_cap(myd, mysql, shop):
    d, ids = myd
    t0 = time.monotonic()
    r = sql(d, "SELECT SLEEP(5) AS s FROM customers LIMIT 2", ids["a"])
    assert time.monotonic() - t0 < 4.5
    # DataChat's connector words for a statement that ran out of time
    assert r.status_code == 400 and r.json() == {
        "detail": "Query timeout (2s)"}, r.text
    # the cap: 50 rows shown, truncated said; a huge result stops early
    j = ok_rows(sql(d, "SELECT id FROM orders ORDER BY id", ids["a"]))
    assert j["row_count"] == 50 and j["truncated"] is True
    assert j["data"]["id"] == list(range(1, 51))
    t0 = time.monotonic()
    j = ok_rows(sql(d, "SELECT seq FROM seq_1_to_100000000", ids["a"]))
    assert j["truncated"] is True and j["row_count"] == 50
    assert time.monotonic() - t0 < 1.4
    wait_for(lambda: not mysql.running("seq_1_to_100000000"), timeout=5,
             what="capped statement stopped")
    # exactly the cap is not truncated
    j = ok_rows(sql(d, "SELECT seq FROM seq_1_to_50", ids["a"]))
    assert j["row_count"] == 50 and j["truncated"] is False
    assert ok_rows(sql(d, "SELECT 1 AS x", ids["a"]))["data"] == {"x": [1]}


def test_result_byte_budget(daemon_factory, registry_env, mysql, shop):
    """max_result_bytes on MySQL: rows cut at the budget, a row larger
    than it refused by the connector from its packet header."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_result_bytes": "1048576"}).start(
                           wait_ready=True)
    a = register(d, mysql, shop["a"])
    r = sql(d, "SELECT seq, REPEAT('x', 100000) AS v FROM seq_1_to_100000", a)
    j = ok_rows(r)
    assert j["data"]["seq"] == list(range(1, 11)) and j["truncated"] is True
    assert "(max_result_bytes)" in j["answer"]
    # binary values count as their hex text
    j = ok_rows(sql(d, "SELECT seq, UNHEX(REPEAT('ab', 100000)) AS v FROM "
                       "seq_1_to_100", a))
    assert j["row_count"] == 5 and j["truncated"] is True
    for q in ("SELECT REPEAT('x', 4000000) AS v",
              "SELECT IF(seq = 3, REPEAT('x', 4000000), 'y') AS v FROM "
              "seq_1_to_5"):
        r = sql(d, q, a)
        assert r.status_code == 400, r.text[:300]
        assert "larger than max_result_bytes (1048576 bytes)" in r.text, r.text
    assert ok_rows(sql(d, "SELECT 1 AS x", a))["data"] == {"x": [1]}


def test_client_leaving_stops_the_statement(myd, mysql):
    d, ids = myd
    out = {}

    def leave_early():
        try:
            sql(d, "SELECT SLEEP(6) AS dc_leaving", ids["b"], timeout=0.5)
        except requests.exceptions.ReadTimeout as e:
            out["timeout"] = e

    th = threading.Thread(target=leave_early)
    th.start()
    wait_for(lambda: mysql.running("dc_leaving"), timeout=5,
             what="statement running")
    th.join(10)
    assert "timeout" in out
    # KILL QUERY from a second connection: gone long before SLEEP ends
    wait_for(lambda: not mysql.running("dc_leaving"), timeout=2,
             what="abandoned statement gone")
    assert ok_rows(sql(d, "SELECT 1 AS x", ids["b"]))["data"] == {"x": [1]}


def test_restart_and_unreachable(daemon_factory, registry_env):
    other = MyServer()
    try:
        db = other.create_db("r")
        other.admin("CREATE TABLE t (x int); INSERT INTO t VALUES (7)", db)
        d = daemon_factory(env=clean_env(registry_env),
                           conf={"connect_timeout": "2"}).start(wait_ready=True)
        t = register(d, other, db)
        workers = d.workers()
        for _ in range(4):
            assert ok_rows(sql(d, "SELECT x FROM t", t))["data"] == {"x": [7]}

        # a connection killed under a running statement: retried once
        out = {}
        th = threading.Thread(target=lambda: out.setdefault(
            "r", sql(d, "SELECT SLEEP(0.8) AS dc_killme, 7 AS x", t,
                     timeout=20)))
        th.start()
        ids = wait_for(lambda: other.running("dc_killme"), timeout=5,
                       what="statement running")
        other.admin("KILL CONNECTION %d" % ids[0])
        th.join(20)
        j = out["r"].json()
        assert out["r"].status_code == 200 and j["data"]["x"] == [7], j
        ex = [t for t in j["decision_trace"] if t["stage"] == "execute"]
        assert ex[0]["details"]["reconnected"] is True, j

        # the server restarts: idle connections are dead, the next query works
        other.stop()
        other.start()
        for _ in range(6):
            assert ok_rows(sql(d, "SELECT x FROM t", t))["data"] == {"x": [7]}

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
        wait_for(lambda: sql(d, "SELECT x FROM t", t).status_code == 200,
                 timeout=15, what="recovery")
        # idle connections that the server closed were noticed, not tripped on
        assert d.workers() == workers
    finally:
        other.destroy()
