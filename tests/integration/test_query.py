"""Query routing (issue 4) against the real daemon and real PostgreSQL:
persistent per-target connections, read-only execution, direct SQL
through POST /api/v1/chat, target resolution and its error codes, target
restarts, connection reuse, and slow-target isolation.

Two target databases hold different data (same table names, different
rows), so every answer shows which database it came from.
"""
import concurrent.futures
import os
import threading
import time
import uuid

import psycopg2
import pytest

from conftest import PgCluster, clean_env, free_port, wait_for

ENV_ID = "00000000-0000-0000-0000-00000000dada"
WRITER_PW = "Wr1ter-pw"


@pytest.fixture(scope="module")
def targets(pg):
    """Databases A and B (different data) and a role that could write A."""
    a = pg.create_db("qa")
    b = pg.create_db("qb")
    writer = "writer_%s" % uuid.uuid4().hex[:8]
    pg.sql(a, "CREATE TABLE items (id int PRIMARY KEY, tag text NOT NULL);"
              "INSERT INTO items SELECT g, 'a' || g FROM generate_series(1, 3) g;"
              "CREATE TABLE only_in_a (x int)")
    pg.sql(b, "CREATE TABLE items (id int PRIMARY KEY, tag text NOT NULL);"
              "INSERT INTO items SELECT g, 'b' || g FROM generate_series(1, 7) g;"
              "CREATE TABLE only_in_b (y int)")
    # a role with every privilege on A's ledger: it owns it
    pg.sql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'" % (writer, WRITER_PW))
    pg.sql(a, """
        GRANT ALL ON SCHEMA public TO {w};
        CREATE TABLE ledger (id serial PRIMARY KEY, who text, amount numeric(10,2));
        INSERT INTO ledger (who, amount) VALUES ('ann', 10.50), ('bob', 20.25), ('cy', 0);
        ALTER TABLE ledger OWNER TO {w};
        GRANT ALL ON items, only_in_a TO {w};
        CREATE FUNCTION sneaky_delete() RETURNS bigint LANGUAGE sql
            AS 'WITH d AS (DELETE FROM ledger RETURNING 1) SELECT count(*) FROM d';
        ALTER FUNCTION sneaky_delete() OWNER TO {w};
        CREATE FUNCTION sneaky_rw() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM set_config('transaction_read_only', 'off', true);
            UPDATE ledger SET amount = 0;
            RETURN 1;
        END $$;
        ALTER FUNCTION sneaky_rw() OWNER TO {w};
        CREATE FUNCTION sneaky_stable() RETURNS int LANGUAGE plpgsql STABLE AS $$
        BEGIN
            PERFORM set_config('transaction_read_only', 'off', true);
            RETURN dblink_like_write();
        END $$;
        CREATE FUNCTION dblink_like_write() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE ledger SET amount = 0;
            RETURN 1;
        END $$;
        CREATE FUNCTION sneaky_stable_arg(int) RETURNS int LANGUAGE plpgsql
            STABLE AS 'BEGIN RETURN dblink_like_write(); END';
        ALTER FUNCTION sneaky_stable() OWNER TO {w};
        ALTER FUNCTION sneaky_stable_arg(int) OWNER TO {w};
        ALTER FUNCTION dblink_like_write() OWNER TO {w};
    """.format(w=writer))
    yield {"a": a, "b": b, "writer": writer,
           "writer_url": pg.url(a, user=writer, password=WRITER_PW)}


def register(d, name, url, default=False):
    r = d.post("/api/v1/databases", {"name": name, "database_url": url,
                                     "database_type": "postgresql",
                                     "is_default": default})
    assert r.status_code == 201, r.text
    return r.json()["connection_id"]


def sql(d, query, target=None, session=None, **kw):
    body = {"message": query, "execution_mode": "direct_sql", "sql": query}
    if target is not None:
        body["target_database"] = target
    if session is not None:
        kw.setdefault("timeout", 30)
        return session.post(d.url("/api/v1/chat"), json=body, **kw)
    return d.post("/api/v1/chat", body, **kw)


def ok_rows(r):
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["answer_source"] == "sql", j
    return j["data"]


def backends(pg, db):
    return pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                  "application_name = 'datachatd' AND datname = %s",
                  (db,))[0][0]


def sleeping(cluster, db=None):
    """Pids of datachatd's backends inside pg_sleep() (matched by wait
    event, whatever the statement's text)."""
    q = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'datachatd'"
         " AND wait_event = 'PgSleep'")
    if db is None:
        return [p for (p,) in cluster.sql("postgres", q)]
    return [p for (p,) in cluster.sql("postgres", q + " AND datname = %s", (db,))]


@pytest.fixture
def two(daemon_factory, registry_env, targets, pg):
    """A daemon (2 workers) with A and B registered, neither default."""
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    ids = {"a": register(d, "A", pg.url(targets["a"])),
           "b": register(d, "B", pg.url(targets["b"]))}
    return d, ids


# --- routing ---

def test_chat_response_shape_and_types(two):
    d, ids = two
    r = sql(d, "SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8,"
               " 26::oid AS o, 1.5::float4 AS f4, 0.1::float8 AS f8,"
               " 12345678901234567890.123456789::numeric AS n,"
               " 'NaN'::numeric AS nan, 'Infinity'::float8 AS inf, true AS t,"
               " false AS f, NULL::int AS nul, '{\"k\": [1, null]}'::jsonb AS jb,"
               " '[1,2]'::json AS js, 'txt' AS s, '2024-01-02'::date AS dt,"
               " '5'::jsonb AS j5, 'null'::jsonb AS jnull,"
               " 1 AS dup, 2 AS dup", ids["a"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    j = r.json()
    for key in ("answer", "sql", "data", "answer_source", "validation_errors",
                "metrics", "decision_trace", "conversation_id"):
        assert key in j, key
    assert j["answer_source"] == "sql"
    assert j["validation_errors"] == []
    assert j["metrics"]["llm_calls"] == 0 and j["metrics"]["retry_count"] == 0
    assert isinstance(j["metrics"]["total_latency_ms"], (int, float))
    assert j["conversation_id"].startswith("conv_")
    assert [t["stage"] for t in j["decision_trace"]][:2] == ["routing",
                                                             "execution_mode"]
    assert j["answer"] == (
        "Executed SQL query successfully. Returned 1 row(s).\n\nLive schema mode: "
        "DataPoints are not loaded yet. Answers are generated from database "
        "metadata and query results only.")
    data = j["data"]
    assert data["i2"] == [1] and data["i4"] == [2]
    assert data["i8"] == [9007199254740993] and data["o"] == [26]
    assert data["f4"] == [1.5] and data["f8"] == [0.1]
    # DataChat's Decimal: its digits as a string; float infinities null
    assert data["n"] == ["12345678901234567890.123456789"]
    assert data["nan"] == ["NaN"] and data["inf"] == [None]
    assert data["t"] == [True] and data["f"] == [False] and data["nul"] == [None]
    # asyncpg hands json and jsonb over as str: DataChat answers strings
    assert data["jb"] == ['{"k": [1, null]}'] and data["js"] == ["[1,2]"]
    assert data["j5"] == ["5"] and data["jnull"] == ["null"]
    assert data["s"] == ["txt"] and data["dt"] == ["2024-01-02"]
    assert data["dup"] == [1] and data["dup_2"] == [2]
    # a client's conversation id is kept
    r = d.post("/api/v1/chat", {"message": "SELECT 1", "execution_mode": "direct_sql",
                                "target_database": ids["a"],
                                "conversation_id": "conv_mine"})
    assert r.json()["conversation_id"] == "conv_mine"


def test_interleaved_requests_reach_their_own_target(two, targets):
    d, ids = two
    q = "SELECT current_database() AS db, count(*) AS n, min(tag) AS tag FROM items"

    def one(i):
        which = "a" if i % 2 == 0 else "b"
        r = sql(d, q, ids[which], timeout=20)
        return which, r

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(60), timeout=60))
    for which, r in results:
        data = ok_rows(r)
        assert data["db"] == [targets[which]]
        assert data["n"] == [3 if which == "a" else 7]
        assert data["tag"] == ["a1" if which == "a" else "b1"]
        assert r.json()["target_database"] == ids[which]


def test_default_and_environment_fallbacks(daemon_factory, registry_env,
                                           targets, pg):
    env_db = pg.create_db("qenv")
    pg.sql(env_db, "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('env')")
    q = "SELECT current_database() AS db"

    # no default, no DATABASE_URL: DataChat's system_not_initialized
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    a = register(d, "A", pg.url(targets["a"]))
    r = sql(d, q)
    assert r.status_code == 400
    j = r.json()
    assert j["error"] == "system_not_initialized" and "detail" not in j
    assert j["message"] == ("DataChat requires a target database connection. "
                            "Run 'datachat setup' or 'datachat demo' to get started.")
    assert [s["step"] for s in j["setup_steps"]] == ["datapoints"]
    # the registry default wins once there is one
    assert d.put("/api/v1/databases/%s/default" % a, {"is_default": True}).status_code == 204
    assert ok_rows(sql(d, q))["db"] == [targets["a"]]
    d.stop()

    # DATABASE_URL is the fallback when the registry has no default
    env = clean_env(registry_env)
    env["SYSTEM_DATABASE_URL"] = pg.url(pg.create_db("sys"))
    env["DATABASE_URL"] = pg.url(env_db)
    d = daemon_factory(env=env).start(wait_ready=True)
    r = sql(d, q)
    assert ok_rows(r)["db"] == [env_db]
    assert r.json()["target_database"] == ENV_ID
    assert ok_rows(sql(d, "SELECT v FROM marker", ENV_ID))["v"] == ["env"]
    b = register(d, "B", pg.url(targets["b"]))
    assert ok_rows(sql(d, q))["db"] == [env_db]          # B is not default
    assert ok_rows(sql(d, q, b))["db"] == [targets["b"]]  # unless asked for
    assert d.put("/api/v1/databases/%s/default" % b, {"is_default": True}).status_code == 204
    assert ok_rows(sql(d, q))["db"] == [targets["b"]]
    assert ok_rows(sql(d, q, ENV_ID))["db"] == [env_db]  # still addressable
    d.stop()

    # DATABASE_URL is the fallback even when a registry row has its URL
    # (the list shows that row only, as DataChat's does)
    env = clean_env(registry_env)
    env["SYSTEM_DATABASE_URL"] = pg.url(pg.create_db("sys"))
    env["DATABASE_URL"] = pg.url(env_db)
    d = daemon_factory(env=env).start(wait_ready=True)
    same = register(d, "Same", pg.url(env_db))
    assert [c["connection_id"] for c in d.get("/api/v1/databases").json()] == [same]
    r = sql(d, q)
    assert ok_rows(r)["db"] == [env_db]
    assert r.json()["target_database"] == ENV_ID
    d.stop()

    # no registry at all: DATABASE_URL alone
    d = daemon_factory(env={"DATABASE_URL": pg.url(env_db)}).start()
    assert ok_rows(sql(d, q))["db"] == [env_db]
    unknown = str(uuid.uuid4())
    r = sql(d, q, unknown)
    assert r.status_code == 404
    assert r.json() == {"detail": "'Database connection not found: %s'" % unknown}
    r = sql(d, q, "db-123")
    assert r.status_code == 404
    assert r.json() == {"detail": "'Database connection not found: db-123'"}
    # "" is no target at all
    assert ok_rows(sql(d, q, ""))["db"] == [env_db]


def test_routing_error_codes(two, daemon_factory, registry_env, pg, targets):
    d, ids = two
    r = sql(d, "SELECT 1", "not-a-uuid")
    assert r.status_code == 400 and r.json() == {"detail": "Invalid connection ID."}
    unknown = str(uuid.uuid4())
    r = sql(d, "SELECT 1", unknown)
    assert r.status_code == 404
    assert r.json() == {"detail": "'Database connection not found: %s'" % unknown}
    r = sql(d, "SELECT 1", 42)
    assert r.status_code == 422
    r = sql(d, "SELECT 1", ENV_ID)     # no DATABASE_URL here
    assert r.status_code == 404
    # deleted: 404 on every worker
    gone = register(d, "gone", pg.url(targets["a"]))
    assert ok_rows(sql(d, "SELECT 1 AS x", gone))["x"] == [1]
    assert d.delete("/api/v1/databases/%s" % gone).status_code == 204
    for _ in range(6):
        assert sql(d, "SELECT 1", gone).status_code == 404
    # bad requests
    r = d.post("/api/v1/chat", data="{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    # DataChat: message is required in direct_sql mode too; sql falls back to it
    r = d.post("/api/v1/chat", {"execution_mode": "direct_sql", "sql": "SELECT 1",
                                "target_database": ids["a"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "message"]
    r = d.post("/api/v1/chat", {"message": "  ", "execution_mode": "direct_sql",
                                "target_database": ids["a"]})
    assert r.status_code == 400
    assert r.json() == {"detail": "SQL mode requires a non-empty SQL query."}
    r = d.post("/api/v1/chat", {"message": "x", "execution_mode": "direct_sql", "sql": 5})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "string_type"
    r = d.post("/api/v1/chat", {"message": "x", "execution_mode": "direct_sql",
                                "sql": "SELECT 1\u0000; DELETE FROM items"})
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "SQL Editor accepts read-only SQL only (SELECT/WITH/SHOW/DESCRIBE/EXPLAIN).")
    r = d.post("/api/v1/chat", {})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "message"]
    r = d.get("/api/v1/chat")
    assert r.status_code == 405
    # a natural-language question without an LLM: 503, clearly
    r = d.post("/api/v1/chat", {"message": "how many items?", "target_database": ids["a"]})
    assert r.status_code == 503
    assert "no LLM configured" in r.json()["detail"]
    assert "LLM_DEFAULT_PROVIDER" in r.json()["detail"]
    assert "LLM_DEFAULT_PROVIDER" in r.json()["detail"]

    # a registry that was never loaded: 503, never a fallback
    env = clean_env(registry_env)
    env["SYSTEM_DATABASE_URL"] = "postgresql://postgres:x@127.0.0.1:%d/none" % free_port()
    env["DATABASE_URL"] = pg.url(targets["b"])
    d2 = daemon_factory(env=env).start()
    for target in (ids["a"], None):
        r = sql(d2, "SELECT 1", target)
        assert r.status_code == 503, r.text
        assert "not loaded" in r.json()["detail"]
    r = d2.post("/api/v1/tools/execute", {"name": "list_tables", "target_database": ids["a"]})
    assert r.status_code == 503


# --- read-only by construction ---

WRITE_ATTEMPTS = [
    "DELETE FROM ledger",
    "delete/**/from ledger",
    "UPDATE ledger SET amount = 0",
    "INSERT INTO ledger (who, amount) VALUES ('eve', 1)",
    "TRUNCATE ledger",
    "DROP TABLE ledger",
    "ALTER TABLE ledger ADD COLUMN pwned int",
    "CREATE TABLE pwned AS SELECT * FROM ledger",
    "SELECT * INTO pwned FROM ledger",
    "SELECT 1; DELETE FROM ledger",
    "SELECT 1 -- harmless\n; DELETE FROM ledger",
    "/* ; */ DELETE FROM ledger",
    "SELECT 'x'; DELETE FROM ledger; --'",
    "SELECT $$;$$; DELETE FROM ledger",
    "SELECT E'\\''; DELETE FROM ledger; --'",
    "SELECT 'a\\'; DELETE FROM ledger; --'",
    "WITH d AS (DELETE FROM ledger RETURNING *) SELECT * FROM d",
    "WITH x AS (SELECT 1) UPDATE ledger SET amount = 0",
    "with recursive r(n) as (select 1) insert into ledger (who) select 'r' from r",
    "EXPLAIN ANALYZE DELETE FROM ledger",
    "SELECT * FROM ledger FOR UPDATE",
    "BEGIN; DELETE FROM ledger; COMMIT",
    "COMMIT; DELETE FROM ledger",
    "SET transaction_read_only = off",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT nextval('ledger_id_seq')",
    "COPY ledger FROM STDIN",
    "PREPARE p AS DELETE FROM ledger",
    "CALL anything()",
    "DO $$BEGIN DELETE FROM ledger; END$$",
    "LOCK TABLE ledger",
    "VACUUM ledger",
    # a DBA's VOLATILE functions: refused for what the catalog says of them
    "SELECT sneaky_delete()",
    "SELECT sneaky_rw()",
    "SELECT * FROM (SELECT sneaky_delete()) s",
    # one that says it is STABLE is admitted: the read-only transaction
    # stops it (its session is then closed: it was unusual)
    "SELECT sneaky_stable()",
    "SELECT (1).sneaky_stable_arg",
]


def ledger_state(pg, db):
    return pg.sql(db, "SELECT count(*), md5(string_agg(id || ':' || who || ':' || "
                      "amount, ',' ORDER BY id)), (SELECT last_value FROM ledger_id_seq),"
                      " to_regclass('pwned') IS NULL,"
                      " (SELECT count(*) FROM information_schema.columns"
                      "  WHERE table_name = 'ledger') FROM ledger")[0]


def test_a_role_that_could_write_still_cannot(daemon_factory, registry_env,
                                              targets, pg):
    # the role really can write, when it connects by itself
    c = psycopg2.connect(host="127.0.0.1", port=pg.port, dbname=targets["a"],
                         user=targets["writer"], password=WRITER_PW)
    with c.cursor() as cur:
        cur.execute("UPDATE ledger SET amount = amount + 1")
        assert cur.rowcount == 3
    c.rollback()
    c.close()

    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    w = register(d, "writer", targets["writer_url"])
    before = ledger_state(pg, targets["a"])
    assert len(WRITE_ATTEMPTS) >= 15
    guarded = in_db = 0
    for attempt in WRITE_ATTEMPTS:
        r = sql(d, attempt, w)
        assert r.status_code == 400, (attempt, r.text)
        detail = r.json()["detail"]
        if detail.startswith("SQL Editor accepts read-only SQL only "
                             "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN)."):
            guarded += 1
            continue
        # what the guard let through, the read-only transaction stops
        assert detail.startswith("Query execution failed: "), (attempt, detail)
        assert "read-only" in detail or "read-write" in detail, (attempt, detail)
        in_db += 1
    assert guarded >= 15 and in_db >= 2
    # tool arguments cannot smuggle SQL either
    for table in ("ledger; DELETE FROM ledger", 'ledger"; DELETE FROM ledger; --',
                  "ledger where 1=1", "public.ledger.x"):
        r = d.post("/api/v1/tools/execute", {"name": "get_table_sample",
                                             "arguments": {"table": table},
                                             "target_database": w})
        assert r.status_code == 500, (table, r.text)
        assert r.json()["detail"].startswith("Invalid identifier: "), r.text
    assert ledger_state(pg, targets["a"]) == before
    # and reading still works with the same role
    assert ok_rows(sql(d, "SELECT who FROM ledger ORDER BY id", w))["who"] == [
        "ann", "bob", "cy"]


def test_quoted_text_containing_delete_still_runs(two):
    d, ids = two
    cases = [
        ("SELECT 'DELETE FROM items' AS s", "DELETE FROM items"),
        ("SELECT $$DROP TABLE items; DELETE FROM items$$ AS s",
         "DROP TABLE items; DELETE FROM items"),
        ("SELECT $t$it's; DELETE$t$ AS s", "it's; DELETE"),
        ("SELECT E'a\\'; DELETE FROM items' AS s", "a'; DELETE FROM items"),
        ("SELECT 'x' AS s -- ; DELETE FROM items", "x"),
        ("SELECT /* DELETE FROM items; */ 'y' AS s", "y"),
        ('SELECT 1 AS "delete" ', None),
        ("SELECT 'semi;colon' AS s;", "semi;colon"),
    ]
    for query, want in cases:
        data = ok_rows(sql(d, query, ids["a"]))
        if want is not None:
            assert data["s"] == [want], query
        else:
            assert data["delete"] == [1]
    assert ok_rows(sql(d, "SELECT count(*) AS n FROM items", ids["a"]))["n"] == [3]
    # EXPLAIN, SHOW, VALUES and TABLE are read-only too
    assert ok_rows(sql(d, "EXPLAIN SELECT * FROM items", ids["a"]))["QUERY PLAN"]
    assert ok_rows(sql(d, "SHOW transaction_read_only", ids["a"]))[
        "transaction_read_only"] == ["on"]
    assert ok_rows(sql(d, "VALUES (1, 'x')", ids["a"]))["column1"] == [1]
    assert len(ok_rows(sql(d, "TABLE items", ids["b"]))["id"]) == 7


def vm_hwm_kb(pid):
    """Peak resident memory of a process (kB), from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def test_result_byte_budget(daemon_factory, registry_env, targets, pg):
    """max_result_bytes: rows cut at the budget, a row larger than it
    refused, and the worker's peak memory bounded while a 200 MB value
    per row is on its way (issue 12: one such query pushed a worker to a
    1.96 GB peak)."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_result_bytes": "1048576"})
    d.start(wait_ready=True)
    register(d, "A", pg.url(targets["a"]), default=True)
    assert ok_rows(sql(d, "SELECT 1 AS x"))["x"] == [1]
    [worker] = d.workers()
    before = vm_hwm_kb(worker)
    # 3 x 200 MB: the first value alone is over the budget, so refused
    t0 = time.monotonic()
    r = sql(d, "SELECT repeat('x', 200000000) FROM generate_series(1,3)",
            timeout=120)
    assert r.status_code == 400, r.text[:300]
    assert r.json() == {"detail": "Query execution failed: a row of the "
                        "result is larger than max_result_bytes (1048576 "
                        "bytes); select fewer or shorter values (left(), "
                        "substring())"}
    took = time.monotonic() - t0
    grown = vm_hwm_kb(worker) - before
    # generous: one read of libpq's may take in the rest of a row before
    # the check sees it (datachatd.conf(5)), and the row's PGresult when
    # that read completed it, so up to two copies of one 200 MB value;
    # without the budget the worker's peak grew by 1.9 GB
    assert grown < 450 * 1024, (grown, took)
    # a huge value after rows that fit: refused too, not cut
    r = sql(d, "SELECT CASE WHEN g = 3 THEN repeat('x', 200000000) ELSE 'y' "
               "END AS v FROM generate_series(1, 5) g", timeout=120)
    assert r.status_code == 400 and "max_result_bytes" in r.text, r.text[:300]
    assert vm_hwm_kb(worker) - before < 450 * 1024
    # rows that fit one by one are cut at the budget: 10 x 100 kB fit 1 MiB
    r = sql(d, "SELECT g, repeat('x', 100000) AS v FROM "
               "generate_series(1, 100000) g")
    data = ok_rows(r)
    j = r.json()
    assert data["g"] == list(range(1, 11)) and len(data["v"][9]) == 100000
    assert j["truncated"] is True and j["row_count"] == 10
    assert ("Returned 10 row(s). The statement returned more data; only these "
            "rows are shown (max_result_bytes).") in j["answer"]
    assert j["validation_warnings"][0]["warning_type"] == "byte_limit"
    # exactly at the budget is not cut
    r = sql(d, "SELECT repeat('x', 1048576 - 7) AS v UNION ALL SELECT "
               "'1234567'")
    assert ok_rows(r)["v"][1] == "1234567" and r.json()["truncated"] is False
    # the worker is the same and serves on
    assert d.workers() == [worker]
    assert ok_rows(sql(d, "SELECT 3 AS x"))["x"] == [3]
    assert ok_rows(sql(d, "SELECT count(*) AS n FROM items"))["n"] == [3]


def test_row_cap_and_statement_timeout(daemon_factory, registry_env, targets, pg):
    d = daemon_factory(env=clean_env(registry_env),
                       conf={"max_rows": "50", "statement_timeout": "500"})
    d.start(wait_ready=True)
    a = register(d, "A", pg.url(targets["a"]), default=True)
    r = sql(d, "SELECT g FROM generate_series(1, 100000) g")
    data = ok_rows(r)
    assert data["g"] == list(range(1, 51))
    j = r.json()
    assert j["truncated"] is True and j["row_count"] == 50
    assert j["answer"].startswith("Executed SQL query successfully. Returned 50 "
                                  "row(s). The statement returned more rows; only "
                                  "these are shown (max_rows).")
    assert j["validation_warnings"][0]["warning_type"] == "row_limit"
    r = sql(d, "SELECT g FROM generate_series(1, 50) g")
    assert len(ok_rows(r)["g"]) == 50 and r.json()["truncated"] is False
    # the cap holds inside CTEs and unions too
    r = sql(d, "WITH x AS (SELECT g FROM generate_series(1, 80) g) "
               "SELECT g FROM x UNION ALL SELECT 0")
    assert len(ok_rows(r)["g"]) == 50 and r.json()["truncated"] is True
    # an endless statement is answered at the cap, not by its timeout
    r = sql(d, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
               "FROM r) SELECT n FROM r")
    assert ok_rows(r)["n"] == list(range(1, 51))
    assert r.json()["truncated"] is True
    # and the target answers on as before
    assert ok_rows(sql(d, "SELECT 3 AS x"))["x"] == [3]

    t0 = time.monotonic()
    r = sql(d, "SELECT pg_sleep(5)", a)
    elapsed = time.monotonic() - t0
    # DataChat's connector words for a statement that ran out of time
    assert r.status_code == 400 and r.json() == {"detail": "Query timeout (1s)"}
    assert elapsed < 3, elapsed
    # the connection is fine afterwards
    assert ok_rows(sql(d, "SELECT 2 AS x"))["x"] == [2]
    # a database error answers with the database's message, never the URL
    r = sql(d, "SELECT * FROM no_such_table")
    assert r.status_code == 400 and r.json() == {
        "detail": 'Query execution failed: relation "no_such_table" does not exist'}
    assert "s3cret" not in r.text and "127.0.0.1" not in r.text
    assert "postgresql://" not in r.text


def test_settings_a_statement_changes_do_not_outlive_it(daemon_factory,
                                                      registry_env, targets,
                                                      pg):
    """set_config(..., false) inside a statement is undone with its
    transaction: the next statement on the same connection runs with the
    configured timeout, read-only."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "1",
                             "statement_timeout": "700"}).start(wait_ready=True)
    register(d, "A", pg.url(targets["a"]), default=True)
    # the guard refuses set_config() itself, and a DBA's VOLATILE function;
    # one that says it is STABLE can still call it
    pg.sql(targets["a"], """
        CREATE OR REPLACE FUNCTION loosen() RETURNS text LANGUAGE plpgsql
        STABLE AS $$
        BEGIN
            PERFORM set_config('statement_timeout', '0', false);
            PERFORM set_config('default_transaction_read_only', 'off', false);
            RETURN current_setting('statement_timeout');
        END $$""")
    pid = ok_rows(sql(d, "SELECT pg_backend_pid() AS p"))["p"]
    assert ok_rows(sql(d, "SELECT loosen() AS l")) == {"l": ["0"]}
    assert ok_rows(sql(d, "SHOW statement_timeout"))[
        "statement_timeout"] == ["700ms"]
    assert ok_rows(sql(d, "SHOW transaction_read_only"))[
        "transaction_read_only"] == ["on"]
    r = sql(d, "SELECT pg_sleep(3)")
    assert r.json() == {"detail": "Query timeout (1s)"}, r.text
    # a DBA's function made the statement unusual: its session was closed
    # after it, the ordinary statements since share the next one
    pid2 = ok_rows(sql(d, "SELECT pg_backend_pid() AS p"))["p"]
    assert pid2 != pid
    assert ok_rows(sql(d, "SELECT pg_backend_pid() AS p"))["p"] == pid2


# --- connections ---

def test_connections_are_reused(daemon_factory, registry_env, targets, pg):
    db = pg.create_db("qreuse")
    d = daemon_factory(env=clean_env(registry_env)).start(wait_ready=True)
    t = register(d, "reuse", pg.url(db))
    import requests
    s = requests.Session()
    for i in range(150):
        assert ok_rows(sql(d, "SELECT %d AS i" % i, t, session=s))["i"] == [i]
    # sequential requests: one connection per worker at most
    n = backends(pg, db)
    assert 1 <= n <= 2, n

    def one(i):
        return sql(d, "SELECT pg_sleep(0.01), %d AS i" % i, t, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        for r in ex.map(one, range(200), timeout=120):
            ok_rows(r)
    n = backends(pg, db)
    # bounded by workers x max_target_connections (2 x 4), not by requests
    assert 1 <= n <= 8, n
    rows = pg.sql("postgres", "SELECT DISTINCT application_name FROM pg_stat_activity "
                  "WHERE datname = %s", (db,))
    assert rows == [("datachatd",)]


def test_idle_connections_close(daemon_factory, registry_env, pg):
    db = pg.create_db("qidle")
    d = daemon_factory(env=clean_env(registry_env),
                       conf={"target_idle_timeout": "1"}).start(wait_ready=True)
    t = register(d, "idle", pg.url(db))
    ok_rows(sql(d, "SELECT 1 AS x", t))
    assert backends(pg, db) >= 1
    wait_for(lambda: backends(pg, db) == 0, timeout=10, what="idle close")
    # and a new request simply opens a new one
    assert ok_rows(sql(d, "SELECT 2 AS x", t))["x"] == [2]


def test_stale_entry_closes_its_connections(two, targets, pg):
    d, ids = two
    c = pg.create_db("qc")
    pg.sql(c, "CREATE TABLE items (id int, tag text); INSERT INTO items VALUES (1, 'c1')")
    q = "SELECT min(tag) AS tag FROM items"
    for _ in range(8):   # both workers hold a connection to A
        assert ok_rows(sql(d, q, ids["a"]))["tag"] == ["a1"]
    assert backends(pg, targets["a"]) >= 1
    # the URL changes: A's connections close, queries go to C
    r = d.patch("/api/v1/databases/%s" % ids["a"], {"database_url": pg.url(c)})
    assert r.status_code == 200, r.text
    for _ in range(8):
        assert ok_rows(sql(d, q, ids["a"]))["tag"] == ["c1"]
    wait_for(lambda: backends(pg, targets["a"]) == 0, timeout=10,
             what="connections to the old URL closed")
    # deleted: its connections close too
    assert backends(pg, c) >= 1
    assert d.delete("/api/v1/databases/%s" % ids["a"]).status_code == 204
    for _ in range(4):  # every worker sees the new generation on a request
        d.get("/api/v1/health")
    wait_for(lambda: backends(pg, c) == 0, timeout=10,
             what="connections to the deleted target closed")


def test_busy_stale_connection_closes_when_its_query_ends(two, targets, pg):
    d, ids = two
    db = pg.create_db("qbusy")
    t = register(d, "busy", pg.url(db))
    out = {}

    def slow():
        out["r"] = sql(d, "SELECT pg_sleep(1.5) AS s, 'old' AS v", t, timeout=20)

    th = threading.Thread(target=slow)
    th.start()
    # the statement itself, not the catalog read before it
    wait_for(lambda: len(sleeping(pg, db)) >= 1, timeout=5,
             what="slow query running")
    r = d.patch("/api/v1/databases/%s" % t, {"database_url": pg.url(targets["b"])})
    assert r.status_code == 200
    th.join(20)
    assert ok_rows(out["r"])["v"] == ["old"]     # the running query finished
    wait_for(lambda: backends(pg, db) == 0, timeout=10,
             what="busy stale connection closed after its query")
    assert ok_rows(sql(d, "SELECT current_database() AS db", t))["db"] == [targets["b"]]


def test_slow_target_does_not_delay_another(daemon_factory, registry_env,
                                            targets, pg):
    # one worker, so both targets are served by the same event loop
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(wait_ready=True)
    a = register(d, "A", pg.url(targets["a"]))
    b = register(d, "B", pg.url(targets["b"]))
    import requests
    s = requests.Session()
    ok_rows(sql(d, "SELECT 1 AS x", b, session=s))   # B's connection is open
    slow = {}

    def run_slow():
        t0 = time.monotonic()
        slow["r"] = sql(d, "SELECT pg_sleep(8) AS s, current_database() AS db", a,
                        timeout=40)
        slow["t"] = time.monotonic() - t0

    th = threading.Thread(target=run_slow)
    th.start()
    wait_for(lambda: len(sleeping(pg, targets["a"])) == 1,
             timeout=10, what="pg_sleep(8) running on A")
    for i in range(50):
        data = ok_rows(sql(d, "SELECT %d AS i, current_database() AS db" % i, b,
                           session=s))
        assert data["i"] == [i] and data["db"] == [targets["b"]]
    # ordering, not a stopwatch: all fifty were answered while A still slept
    assert th.is_alive() and len(sleeping(pg, targets["a"])) == 1, \
        "50 requests to B waited for the slow query on A"
    th.join(40)
    assert ok_rows(slow["r"])["db"] == [targets["a"]]
    assert slow["t"] >= 7.9


def test_connection_limit_queues(daemon_factory, registry_env, pg):
    db = pg.create_db("qlimit")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "1"}).start(wait_ready=True)
    t = register(d, "limit", pg.url(db))
    peak = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak.append(len(sleeping(pg, db)))
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        results = list(ex.map(lambda i: sql(d, "SELECT pg_sleep(0.3), %d AS i" % i, t,
                                            timeout=30), range(5), timeout=60))
    elapsed = time.monotonic() - t0
    done.set()
    w.join()
    assert sorted(ok_rows(r)["i"][0] for r in results) == [0, 1, 2, 3, 4]
    # one connection: the five queries queued behind each other
    assert elapsed >= 1.4, elapsed
    assert max(peak) == 1 and backends(pg, db) == 1


def test_connect_timeout(daemon_factory, registry_env, targets, pg):
    import socket
    d = daemon_factory(env=clean_env(registry_env),
                       conf={"connect_timeout": "1"}).start(wait_ready=True)
    a = register(d, "A", pg.url(targets["a"]))
    # a "server" that accepts TCP connections and never says a word
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        # the registry checks a URL before storing it, so reach the silent
        # server through a second daemon's DATABASE_URL
        env = clean_env(registry_env)
        env["SYSTEM_DATABASE_URL"] = pg.url(pg.create_db("sys"))
        env["DATABASE_URL"] = "postgresql://u:p@127.0.0.1:%d/x" % port
        d2 = daemon_factory(env=env, conf={"connect_timeout": "1"}).start(wait_ready=True)
        t0 = time.monotonic()
        r = sql(d2, "SELECT 1")
        elapsed = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert "timeout" in r.json()["detail"]
        assert 0.9 <= elapsed < 3, elapsed
    # the first daemon's targets are unaffected
    assert ok_rows(sql(d, "SELECT 1 AS x", a))["x"] == [1]


def test_request_timeout_cancels_the_statement(daemon_factory, registry_env,
                                               targets, pg):
    d = daemon_factory(env=clean_env(registry_env),
                       conf={"request_timeout": "3"}).start(wait_ready=True)
    b = register(d, "B", pg.url(targets["b"]))
    t0 = time.monotonic()
    r = sql(d, "SELECT pg_sleep(30)", b, timeout=60)
    assert r.status_code == 504, r.text
    # long before the statement would end (a bound loose enough for load)
    assert time.monotonic() - t0 < 15
    # the connection was dropped, so the server stops the statement
    wait_for(lambda: not sleeping(pg, targets["b"]), timeout=5,
             what="statement stopped")
    assert ok_rows(sql(d, "SELECT 1 AS x", b))["x"] == [1]


def test_target_restart_and_recovery(daemon_factory, registry_env, targets, pg):
    other = PgCluster()
    try:
        db = "postgres"
        d = daemon_factory(env=clean_env(registry_env),
                           conf={"connect_timeout": "2"}).start(wait_ready=True)
        t = register(d, "restarting", other.url(db))
        a = register(d, "A", pg.url(targets["a"]))
        for _ in range(4):
            assert ok_rows(sql(d, "SELECT 1 AS x", t))["x"] == [1]

        # a connection killed under a running query: retried once, transparently
        out = {}
        th = threading.Thread(target=lambda: out.setdefault(
            "r", sql(d, "SELECT pg_sleep(0.8) AS s, 7 AS x", t, timeout=20)))
        th.start()
        pids = wait_for(lambda: sleeping(other), timeout=5, what="query running")
        other.sql("postgres", "SELECT pg_terminate_backend(%s)", (pids[0],))
        th.join(20)
        j = out["r"].json()
        assert out["r"].status_code == 200 and j["data"]["x"] == [7], j
        ex = [t for t in j["decision_trace"] if t["stage"] == "execute"]
        assert ex[0]["details"]["reconnected"] is True, j

        # killed twice: the connection is reported lost (502), not retried forever
        out.clear()
        th = threading.Thread(target=lambda: out.setdefault(
            "r", sql(d, "SELECT pg_sleep(3) AS s", t, timeout=20)))
        th.start()
        killed = set()

        def kill_next():
            for pid in sleeping(other):
                if pid not in killed:
                    other.sql("postgres", "SELECT pg_terminate_backend(%s)", (pid,))
                    killed.add(pid)
            return len(killed) >= 2
        wait_for(kill_next, timeout=10, what="two backends killed")
        th.join(20)
        assert out["r"].status_code == 502, out["r"].text
        assert "connection lost" in out["r"].json()["detail"]

        # the server restarts: idle connections are dead, the next query works
        other.stop("fast")
        other.start()
        for _ in range(6):
            assert ok_rows(sql(d, "SELECT 2 AS x", t))["x"] == [2]

        # the server is down: fail fast with a clear detail; others unaffected
        other.stop("fast")
        for _ in range(4):
            t0 = time.monotonic()
            r = sql(d, "SELECT 3 AS x", t)
            assert time.monotonic() - t0 < 2.5
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "unavailable" in detail and "connect" in detail
            assert "s3cret" not in detail
        assert ok_rows(sql(d, "SELECT 4 AS x", a))["x"] == [4]
        r = d.post("/api/v1/tools/execute", {"name": "list_tables", "target_database": t})
        assert r.status_code == 503
        r = d.get("/api/v1/databases/%s/schema" % t)
        assert r.status_code == 503

        # it comes back: so do we, by ourselves
        other.start()
        wait_for(lambda: sql(d, "SELECT 5 AS x", t).status_code == 200, timeout=15,
                 what="recovery")
        for _ in range(4):
            assert ok_rows(sql(d, "SELECT 5 AS x", t))["x"] == [5]
    finally:
        other.destroy()


def test_client_gone_cancels_its_query(two, targets, pg):
    import requests
    d, ids = two
    db = targets["b"]
    out = {}

    def leave_early():
        try:
            sql(d, "SELECT pg_sleep(6) AS s", ids["b"], timeout=1.0)
        except requests.exceptions.ReadTimeout as e:
            out["timeout"] = e

    th = threading.Thread(target=leave_early)
    th.start()
    wait_for(lambda: len(sleeping(pg, db)) == 1, timeout=5, what="sleep running")
    th.join(10)
    assert "timeout" in out
    try:
        # the statement stops on the server (client_connection_check_interval)
        wait_for(lambda: not sleeping(pg, db), timeout=3,
                 what="cancelled statement gone")
    finally:
        wait_for(lambda: not sleeping(pg, db), timeout=10, what="sleep over")
    assert ok_rows(sql(d, "SELECT 1 AS x", ids["b"]))["x"] == [1]


# --- pipelining ---

def metric(d, name):
    for line in d.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def test_pipelined_queries_each_get_their_answer(daemon_factory, registry_env,
                                                pg):
    """Many quick queries on one connection, sent ahead of each other, some
    failing: every request gets its own rows or its own error, the
    statements behind a failed one run again, and the connection ends
    idle, not in a transaction."""
    db = pg.create_db("qpipe")
    # Jobs pipeline while they take under target_stall_timeout / 20 on
    # average: 1 s makes that 50 ms, which an ASan build on a loaded
    # machine also reaches (the default's 1 ms it does not).  With one
    # connection no job can move, so the bound changes nothing else.
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "1",
                             "target_pipeline_depth": "8",
                             "target_stall_timeout": "1000"}).start(
                                 wait_ready=True)
    t = register(d, "pipe", pg.url(db))
    import requests
    s = requests.Session()
    for i in range(20):         # the target is quick: pipelining pays
        assert ok_rows(sql(d, "SELECT %d AS i" % i, t, session=s))["i"] == [i]

    def one(i):
        if i % 5 == 0:
            q = "SELECT 1 / (%d - %d) AS i" % (i, i)
        elif i % 7 == 0:
            q = "SELECT g AS v FROM generate_series(1, %d) g" % (i % 50)
        else:
            q = "SELECT %d AS i, 'row %d' AS tag" % (i, i)
        return i, sql(d, q, t, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(24) as ex:
        results = list(ex.map(one, range(600), timeout=120))
    for i, r in results:
        j = r.json()
        if i % 5 == 0:
            assert r.status_code == 400, r.text
            assert j == {"detail": "Query execution failed: division by zero"}, j
            continue
        assert r.status_code == 200, r.text
        if i % 7 == 0:
            assert j["data"] == {"v": list(range(1, i % 50 + 1))}, j
        else:
            assert j["data"] == {"i": [i], "tag": ["row %d" % i]}, j
    assert metric(d, "datachatd_queries_pipelined_total") > 0
    assert metric(d, "datachatd_queries_requeued_total") > 0
    assert metric(d, 'datachatd_queries_total{outcome="error"}') == 120
    assert backends(pg, db) == 1
    wait_for(lambda: pg.sql("postgres", "SELECT state FROM pg_stat_activity "
                            "WHERE datname = %s", (db,)) == [("idle",)],
             timeout=5, what="the connection idle")
    assert ok_rows(sql(d, "SHOW transaction_read_only", t))[
        "transaction_read_only"] == ["on"]


def test_slow_queries_are_not_pipelined(daemon_factory, registry_env, pg):
    """Slow statements run side by side on connections of their own."""
    db = pg.create_db("qnopipe")
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(
        wait_ready=True)
    t = register(d, "nopipe", pg.url(db))
    ok_rows(sql(d, "SELECT pg_sleep(0.2) AS s", t))
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(
            lambda i: sql(d, "SELECT pg_sleep(0.5), %d AS i" % i, t,
                          timeout=30), range(4), timeout=60))
    elapsed = time.monotonic() - t0
    assert sorted(ok_rows(r)["i"][0] for r in results) == [0, 1, 2, 3]
    assert elapsed < 1.4, elapsed      # four at once, not one after another
    assert metric(d, "datachatd_queries_pipelined_total") == 0


@pytest.fixture
def bouncer(pg):
    """PgBouncer in transaction pooling mode in front of the cluster: the
    server session changes between transactions, so named statements and
    session settings do not survive."""
    import pwd
    import shutil
    import subprocess
    import tempfile
    from conftest import PG_PASSWORD
    pw = pwd.getpwnam("postgres")
    d = tempfile.mkdtemp(prefix="dc-bouncer-")
    os_ = __import__("os")
    os_.chown(d, pw.pw_uid, pw.pw_gid)
    port = free_port()
    conf = os_.path.join(d, "pgbouncer.ini")
    with open(conf, "w") as f:
        f.write("[databases]\n* = host=127.0.0.1 port=%d user=postgres "
                "password=%s\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
                "listen_port = %d\nunix_socket_dir =\nauth_type = any\n"
                "pool_mode = transaction\ndefault_pool_size = 3\n"
                "ignore_startup_parameters = options\n"
                "logfile = %s/pgbouncer.log\npidfile = %s/pgbouncer.pid\n"
                % (pg.port, PG_PASSWORD, port, d, d))
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--",
                             "/usr/sbin/pgbouncer", conf],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: __import__("socket").create_connection(
            ("127.0.0.1", port), timeout=1).close() is None, timeout=10,
            what="pgbouncer listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def test_behind_a_transaction_pooler(daemon_factory, registry_env, pg,
                                     bouncer):
    """Through PgBouncer in transaction mode: the prepared statements
    vanish, so the daemon sends every statement as text, with the
    timeout in each transaction, one job at a time per connection."""
    db = pg.create_db("qbouncer")
    pg.sql(db, "CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"statement_timeout": "500"}).start(
                           wait_ready=True)
    url = "postgresql://postgres:x@127.0.0.1:%d/%s" % (bouncer, db)
    t = register(d, "bounced", url)
    for i in range(10):
        assert ok_rows(sql(d, "SELECT sum(v) + %d AS s FROM t" % i,
                           t))["s"] == [3 + i]

    def one(i):
        q = ("SELECT 1 / (%d - %d) AS i" % (i, i) if i % 4 == 0 else
             "SELECT %d AS i" % i)
        return i, sql(d, q, t, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        for i, r in ex.map(one, range(120), timeout=120):
            j = r.json()
            if i % 4 == 0:
                assert "division by zero" in j["detail"], j
            else:
                assert j["data"] == {"i": [i]}, j
    r = sql(d, "SELECT pg_sleep(2)", t)
    assert r.json() == {"detail": "Query timeout (1s)"}, r.text
    assert ok_rows(sql(d, "SHOW transaction_read_only", t))[
        "transaction_read_only"] == ["on"]
    # our statements were not found on some server session: text from then on
    assert "does not keep prepared statements" in d.log()


def raw_chat(d, query, target):
    """A direct-SQL request as bytes, to send on a socket of our own."""
    import json as _json
    body = _json.dumps({"message": query, "execution_mode": "direct_sql",
                        "target_database": target}).encode()
    return (b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)) + body


def raw_reply(sock, timeout=30):
    """Status and JSON body of one HTTP reply read from sock."""
    import json as _json
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a reply"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = int([h.split(b":")[1] for h in head.split(b"\r\n")
             if h.lower().startswith(b"content-length:")][0])
    while len(rest) < n:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a reply"
        rest += chunk
    return int(head.split()[1]), _json.loads(rest[:n])


def test_replies_in_order_whole_and_in_parts(two, targets):
    """Replies are written as soon as they are ready: requests pipelined
    on one connection are all answered, in order; a reply larger than the
    socket takes at once reaches a client that reads late, whole, and the
    connection serves the next request."""
    import json as _json
    import socket
    d, ids = two
    t = ids["a"]
    get = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    bad = (b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
           b"application/json\r\nContent-Length: 5\r\n\r\n{bad}")
    so = socket.create_connection(("127.0.0.1", d.port))
    so.settimeout(30)
    buf = bytearray()

    def reply():
        """The next reply on so, keeping what follows it in buf."""
        while b"\r\n\r\n" not in buf:
            chunk = so.recv(1 << 20)
            assert chunk, "connection closed before a reply"
            buf.extend(chunk)
        end = buf.index(b"\r\n\r\n")
        head = bytes(buf[:end])
        n = int([h.split(b":")[1] for h in head.split(b"\r\n")
                 if h.lower().startswith(b"content-length:")][0])
        while len(buf) < end + 4 + n:
            chunk = so.recv(1 << 20)
            assert chunk, "connection closed inside a reply"
            buf.extend(chunk)
        body = bytes(buf[end + 4:end + 4 + n])
        del buf[:end + 4 + n]
        return int(head.split()[1]), _json.loads(body)

    so.sendall(raw_chat(d, "SELECT 1 AS x", t) + get + bad +
               raw_chat(d, "SELECT 2 AS x", t) + get)
    st, j = reply()
    assert st == 200 and j["data"] == {"x": [1]}, j
    assert reply()[0] == 200
    st, j = reply()
    assert st == 422 and j["detail"][0]["type"] == "json_invalid", j
    st, j = reply()
    assert st == 200 and j["data"] == {"x": [2]}, j
    assert reply()[0] == 200

    # 8 MB, and nobody reads for a while: written in parts
    so.sendall(raw_chat(d, "SELECT repeat('x', 8000000) AS big", t) +
               raw_chat(d, "SELECT 3 AS x", t))
    time.sleep(0.5)
    st, j = reply()
    assert st == 200 and j["data"]["big"] == ["x" * 8000000], st
    st, j = reply()
    assert st == 200 and j["data"] == {"x": [3]}, j
    so.close()


@pytest.mark.skipif(os.environ.get("DC_VARIANT") == "sanitize",
                    reason="jobs pipeline only under 1 ms each, which an "
                    "ASan build does not reach; the plain run covers it")
def test_cancelled_pipelined_queries(daemon_factory, registry_env, pg):
    """Clients that leave while their query waits behind another on the
    same connection, or while the query in front of theirs runs: the
    others still get their answers and the connection stays usable."""
    import socket
    import requests
    db = pg.create_db("qpcancel")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "1"}).start(
                           wait_ready=True)
    t = register(d, "pcancel", pg.url(db))
    s = requests.Session()

    def warm():
        for i in range(40):     # quick queries: pipelining pays again
            ok_rows(sql(d, "SELECT %d AS i" % i, t, session=s))

    def burst(queries):
        """All requests sent within a millisecond, the first first."""
        socks = [socket.create_connection(("127.0.0.1", d.port))
                 for _ in queries]
        reqs = [raw_chat(d, q, t) for q in queries]
        for so, rq in zip(socks, reqs):
            so.sendall(rq)
        return socks

    def slow_then_seven():
        """target_pipeline_depth 8: the one in front, seven behind it.
        A job goes behind a connection only within a few ms of its last
        progress, so on a loaded machine a burst can come too late and
        queue instead: then its answers are read and it is sent again."""
        for attempt in range(5):
            warm()
            before = metric(d, "datachatd_queries_pipelined_total")
            socks = burst(["SELECT pg_sleep(0.6), 'front' AS who"] +
                          ["SELECT %d AS i" % i for i in range(7)])
            time.sleep(0.15)
            if metric(d, "datachatd_queries_pipelined_total") >= before + 7:
                return socks
            for so in socks:
                assert raw_reply(so)[0] == 200
                so.close()
        raise AssertionError("no burst of 8 was pipelined in 5 tries")

    # A: the query in front runs 0.6 s; the clients behind it leave
    socks = slow_then_seven()
    for so in socks[1:]:
        so.close()
    st, j = raw_reply(socks[0])
    socks[0].close()
    assert st == 200 and j["data"]["who"] == ["front"], j
    # the seven left while waiting: their queries ran, their answers dropped
    wait_for(lambda: d.log().count(" 499 ") >= 7, timeout=5,
             what="seven requests ended as client gone")

    # B: the client of the query in front leaves; those behind it stay
    socks = slow_then_seven()
    socks[0].close()
    for i, so in enumerate(socks[1:]):
        st, j = raw_reply(so)
        so.close()
        assert st == 200 and j["data"] == {"i": [i]}, j
    assert metric(d, "datachatd_queries_requeued_total") >= 7

    # the connection (or its replacement) still serves, read-only
    assert ok_rows(sql(d, "SHOW transaction_read_only", t))[
        "transaction_read_only"] == ["on"]
    # the closed connection's backend ends with its pg_sleep
    wait_for(lambda: backends(pg, db) == 1, timeout=10, what="one backend")


# --- host names ---

class SlowDNS:
    """A DNS server on 127.0.0.1 that answers A queries for names ending in
    .test after `delay` seconds: 127.0.0.1 for slowdb.test, NXDOMAIN for
    the others; AAAA queries get no answer records."""

    def __init__(self, delay):
        import socket
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            threading.Thread(target=self.answer, args=(data, peer),
                             daemon=True).start()

    def answer(self, q, peer):
        import struct
        i, labels = 12, []
        while q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        time.sleep(self.delay)
        known = name == "slowdb.test"
        flags = 0x8180 if known else 0x8183
        answer = b""
        if known and qtype == 1:
            answer = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) +
                      bytes([127, 0, 0, 1]))
        head = q[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0,
                                   0, 0)
        try:
            self.sock.sendto(head + question + answer, peer)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_host_names_resolve_without_blocking(daemon_factory, registry_env,
                                            targets, pg, tmp_path):
    """A target named by host name is looked up on the worker's loop: while
    a slow DNS server takes 1.5 s to answer, the same worker keeps
    answering requests to another target; an unknown name is a clear
    error; localhost comes from /etc/hosts."""
    dns = SlowDNS(delay=1.5)
    try:
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.1:%d\n" % dns.port)
        d = daemon_factory(workers=1, env=clean_env(registry_env),
                           conf={"resolv_conf": str(conf),
                                 "connect_timeout": "10"}).start(
                                     wait_ready=True)
        b = register(d, "B", pg.url(targets["b"]))
        ok_rows(sql(d, "SELECT 1 AS x", b))
        url = "postgresql://postgres:%s@slowdb.test:%d/%s" % (
            __import__("conftest").PG_PASSWORD, pg.port, targets["a"])
        out = {}

        def add():
            t0 = time.monotonic()
            r = d.post("/api/v1/databases", {
                "name": "slow", "database_url": url,
                "database_type": "postgresql"}, timeout=30)
            out["r"], out["t"] = r, time.monotonic() - t0

        th = threading.Thread(target=add)
        th.start()
        time.sleep(0.3)          # the lookup is under way
        t0 = time.monotonic()
        for i in range(20):
            assert ok_rows(sql(d, "SELECT %d AS i" % i, b))["i"] == [i]
        twenty = time.monotonic() - t0
        th.join(timeout=30)
        assert out["r"].status_code == 201, out["r"].text
        assert out["t"] >= 1.4, out["t"]
        assert twenty < 1.0, "20 requests took %.2f s behind a DNS lookup" \
            % twenty
        assert ("slowdb.test", 1) in dns.queries
        slow = out["r"].json()["connection_id"]
        assert ok_rows(sql(d, "SELECT current_database() AS db", slow))[
            "db"] == [targets["a"]]

        r = d.post("/api/v1/databases", {
            "name": "nosuch", "database_type": "postgresql",
            "database_url": url.replace("slowdb.test", "nosuch.test")},
            timeout=30)
        assert r.status_code in (400, 422, 503), r.text
        assert "resolve" in r.json()["detail"], r.text
        assert __import__("conftest").PG_PASSWORD not in r.text

        local = register(d, "local", url.replace("slowdb.test", "localhost"))
        assert ok_rows(sql(d, "SELECT 7 AS x", local))["x"] == [7]

        # connect_timeout ends a lookup that takes longer: the lookup is
        # cancelled and the daemon goes on
        d2 = daemon_factory(workers=1, env=clean_env(registry_env),
                            conf={"resolv_conf": str(conf),
                                  "connect_timeout": "1"}).start(
                                      wait_ready=True)
        r = d2.post("/api/v1/databases", {
            "name": "slow", "database_url": url,
            "database_type": "postgresql"}, timeout=30)
        assert r.status_code in (400, 503), r.text
        assert "timeout after 1 s" in r.json()["detail"], r.text
        time.sleep(1)            # the cancelled lookup's answer comes
        assert d2.get("/api/v1/health").status_code == 200
    finally:
        dns.close()


def test_prepared_statement_names_are_per_connection(daemon_factory,
                                                     registry_env, pg):
    """The prepared BEGIN and ROLLBACK carry random names, different on
    every connection, so a pooler that hands server sessions around can
    never make a job run another client's statement of the same name."""
    import re
    db = pg.create_db("qnames")
    seen = []
    for _ in range(2):
        d = daemon_factory(workers=1, env=clean_env(registry_env),
                           conf={"max_target_connections": "1"}).start(
                               wait_ready=True)
        t = register(d, "names", pg.url(db))
        names = ok_rows(sql(d, "SELECT name FROM pg_prepared_statements "
                               "ORDER BY name", t))["name"]
        assert len(names) == 2, names
        m = [re.fullmatch(r"dc_(begin|rollback)_([0-9a-f]{16})", n)
             for n in names]
        assert all(m), names
        assert m[0].group(2) == m[1].group(2), names
        seen.append(m[0].group(2))
        d.stop()
    assert seen[0] != seen[1]
