"""Read-only for real, through the daemon (issue 11): every statement for a
PostgreSQL target, whoever wrote it (a client's direct SQL over REST and
/ws/chat, the LLM's, the run_sql and get_table_sample tools), is parsed
by PostgreSQL's grammar and judged against the target's own catalog
before it runs.  The attacks of the issue and many more are refused with
DataChat's 4xx shape, on a superuser target and on an ordinary role's,
and afterwards the data, pg_locks, pg_stat_activity, settings and
sequences are as they were.  Ordinary reads still work, and reuse their
session; a statement that calls a DBA's function gets a session of its
own.

The statements come from test_guard.py, which judges the same lists with
the policy alone (pgpolicy_tool)."""
import json
import uuid

import pytest

from conftest import clean_env, wait_for
from test_guard import (DBA_OBJECTS, EXTENSIONS, HARMLESS, ISSUE_EXAMPLES,
                        MORE_ATTEMPTS)
from wsclient import converse

REFUSED = ("SQL Editor accepts read-only SQL only "
           "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN). ")
ROLE_PW = "Rd-only-pw1"


@pytest.fixture(scope="module")
def victim(pg):
    """A database with the contrib modules, a DBA's objects, a sequence and
    a role that may read it (not a superuser)."""
    db = pg.create_db("ro")
    role = "reader_%s" % uuid.uuid4().hex[:8]
    pg.sql(db, "".join("CREATE EXTENSION %s;" % e for e in EXTENSIONS))
    pg.sql(db, DBA_OBJECTS)
    pg.sql(db, """INSERT INTO items VALUES (1, 'apple', 2.5), (2, 'pear', 4);
        CREATE SEQUENCE s; SELECT nextval('s');
        CREATE ROLE {r} LOGIN PASSWORD '{pw}';
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r};
        GRANT USAGE ON SEQUENCE s TO {r};""".format(r=role, pw=ROLE_PW))
    return {"db": db, "role": role,
            "super": pg.url(db), "plain": pg.url(db, user=role, password=ROLE_PW)}


@pytest.fixture(scope="module")
def rod(tmp_path_factory, pg, victim):
    """One daemon (one worker, so sessions can be compared) with the victim
    database registered twice: as the superuser and as the ordinary role."""
    from conftest import Daemon, fernet_key
    sysdb = pg.create_db("sys")
    env = {"SYSTEM_DATABASE_URL": pg.url(sysdb),
           "DATABASE_CREDENTIALS_KEY": fernet_key()}
    d = Daemon(tmp_path_factory.mktemp("ro"), workers=1, env=clean_env(env))
    d.start(wait_ready=True)
    ids = {}
    for name in ("super", "plain"):
        r = d.post("/api/v1/databases", {"name": "ro_" + name,
                                         "database_type": "postgresql",
                                         "database_url": victim[name]})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["connection_id"]
    yield d, ids
    d.stop()


def direct(d, target, sql):
    return d.post("/api/v1/chat", {"message": sql, "execution_mode": "direct_sql",
                                   "sql": sql, "target_database": target},
                  timeout=60)


def state(pg, db):
    """What an attack could change: data, locks, sessions, sequence."""
    return {
        "items": pg.sql(db, "SELECT * FROM items ORDER BY id"),
        "advisory": pg.sql("postgres", "SELECT count(*) FROM pg_locks "
                                       "WHERE locktype = 'advisory'"),
        # sessions other than the daemon's own pooled ones
        "sessions": pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                       "WHERE datname = %s AND "
                                       "application_name <> 'datachatd'", (db,)),
        "seq": pg.sql(db, "SELECT last_value FROM s"),
        "tables": pg.sql(db, "SELECT count(*) FROM pg_class "
                             "WHERE relnamespace = 'public'::regnamespace"),
    }


@pytest.mark.parametrize("who", ["super", "plain"])
def test_attacks_are_refused_over_rest(rod, pg, victim, who):
    d, ids = rod
    before = state(pg, victim["db"])
    leaked = []
    for stmt in ISSUE_EXAMPLES + MORE_ATTEMPTS:
        r = direct(d, ids[who], stmt)
        if r.status_code != 400 or not r.json()["detail"].startswith(REFUSED):
            leaked.append((stmt, r.status_code, r.text[:200]))
    assert leaked == []
    assert state(pg, victim["db"]) == before
    # the pooled session's next job sees nothing left behind
    r = direct(d, ids[who], "SELECT current_setting('statement_timeout') AS t, "
                            "(SELECT count(*) FROM pg_locks WHERE "
                            "locktype = 'advisory') AS locks, "
                            "(SELECT count(*) FROM pg_prepared_statements "
                            "WHERE from_sql) AS prepared")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["locks"] == [0] and r.json()["data"]["prepared"] == [0]
    assert r.json()["data"]["t"] != ["0"]


def test_refusal_names_the_node_and_the_reason(rod):
    d, ids = rod
    r = direct(d, ids["super"], "SELECT (1).pg_advisory_lock")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith(REFUSED + "field selection .pg_advisory_lock")
    assert "advisory lock" in detail
    r = direct(d, ids["plain"], "SELECT mark_seen()")
    assert r.status_code == 400 and "FuncCall mark_seen" in r.json()["detail"]
    assert "VOLATILE" in r.json()["detail"]
    r = direct(d, ids["super"], "SELECT * FROM on_locking")
    assert r.status_code == 400 and "pg_try_advisory_lock" in r.json()["detail"]


def test_harmless_statements_run(rod):
    d, ids = rod
    for stmt in HARMLESS:
        r = direct(d, ids["super"], stmt)
        assert r.status_code == 200, (stmt, r.text)
        assert r.json()["answer_source"] == "sql"
    # what differs only in constants shares a verdict: still answered
    for n in (3, 4, 5):
        r = direct(d, ids["plain"], "SELECT name FROM items WHERE id < %d "
                                    "AND name <> 'x%d' ORDER BY id;" % (n, n))
        assert r.status_code == 200 and r.json()["data"]["name"] == ["apple", "pear"]


def pid_of(d, target, sql):
    r = direct(d, target, sql)
    assert r.status_code == 200, r.text
    return r.json()["data"]["pid"][0]


def test_unusual_statements_get_a_session_of_their_own(rod, pg, victim):
    d, ids = rod
    t = ids["plain"]
    # ordinary reads reuse the worker's session (one worker)
    p1 = pid_of(d, t, "SELECT pg_backend_pid() AS pid")
    p2 = pid_of(d, t, "SELECT pg_backend_pid() AS pid FROM items LIMIT 1")
    assert p1 == p2
    # a DBA's STABLE function: allowed, but its session is not reused
    p3 = pid_of(d, t, "SELECT pg_backend_pid() AS pid, price_with_tax(price) "
                      "FROM items LIMIT 1")
    p4 = pid_of(d, t, "SELECT pg_backend_pid() AS pid")
    assert p4 != p3
    wait_for(lambda: pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                        "WHERE pid = %s", (p3,))[0][0] == 0,
             what="the unusual job's session closed")
    p5 = pid_of(d, t, "SELECT pg_backend_pid() AS pid FROM item_prices LIMIT 1")
    assert pid_of(d, t, "SELECT pg_backend_pid() AS pid") != p5


def test_a_function_made_after_the_catalog_was_read(rod, pg, victim):
    d, ids = rod
    assert direct(d, ids["super"], "SELECT 1").status_code == 200
    name = "late_%s" % uuid.uuid4().hex[:8]
    pg.sql(victim["db"], "CREATE FUNCTION %s() RETURNS int LANGUAGE sql "
                         "AS 'SELECT 1'" % name)
    r = direct(d, ids["super"], "SELECT %s()" % name)
    assert r.status_code == 400 and r.json()["detail"].startswith(REFUSED), r.text
    assert name in r.json()["detail"]


def test_tools_are_guarded(rod, pg, victim):
    d, ids = rod
    before = state(pg, victim["db"])
    for stmt in ("SELECT (1).pg_advisory_lock", "SELECT mark_seen()",
                 "SELECT * FROM ts_stat('SELECT 1')"):
        r = d.post("/api/v1/tools/execute", {"name": "run_sql", "arguments":
                                             {"query": stmt}, "target_database":
                                             ids["super"]})
        assert r.status_code == 500 and r.json()["detail"].startswith(REFUSED), r.text
    r = d.post("/api/v1/tools/execute", {"name": "run_sql", "arguments":
                                         {"query": "SELECT name FROM items ORDER "
                                                   "BY id"},
                                         "target_database": ids["plain"]})
    assert r.status_code == 200, r.text
    # a sampled "table" that is a view calling an advisory lock
    r = d.post("/api/v1/tools/execute", {"name": "get_table_sample", "arguments":
                                         {"table": "locking"},
                                         "target_database": ids["super"]})
    assert r.status_code == 500 and "pg_try_advisory_lock" in r.json()["detail"]
    r = d.post("/api/v1/tools/execute", {"name": "get_table_sample", "arguments":
                                         {"table": "items", "limit": 1},
                                         "target_database": ids["super"]})
    assert r.status_code == 200, r.text
    assert state(pg, victim["db"]) == before


def test_attacks_are_refused_over_the_websocket(rod, pg, victim):
    d, ids = rod
    before = state(pg, victim["db"])
    for stmt in ISSUE_EXAMPLES[:6]:
        cv = converse(d, {"message": stmt, "execution_mode": "direct_sql",
                          "sql": stmt, "target_database": ids["plain"]})
        assert cv.code == 1008, (stmt, cv.events)
        assert cv.names[-1] == "error", cv.events
        assert cv.last["error"] == "validation_error", cv.events
        assert REFUSED in json.dumps(cv.last), cv.last
    assert state(pg, victim["db"]) == before


def test_the_llm_sql_is_guarded(daemon_factory, registry_env, pg, victim, llm):
    from test_chat import llm_env
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "ro", "database_type": "postgresql",
                                     "database_url": victim["super"]})
    assert r.status_code == 201, r.text
    before = state(pg, victim["db"])
    llm.queue("```sql\nSELECT (pid).pg_terminate_backend FROM pg_stat_activity\n```")
    llm.queue("```sql\nSELECT * FROM ts_stat('SELECT to_tsvector("
              "pg_reload_conf()::text)')\n```")
    j = d.post("/api/v1/chat", {"message": "how many orders per region were placed last month",
                                "target_database": r.json()["connection_id"]},
               timeout=60).json()
    assert j["answer_source"] == "error", j
    assert j["validation_errors"][0]["error_type"] == "guard"
    assert "ts_stat" in j["validation_errors"][0]["message"]
    assert "pg_terminate_backend" in llm.requests[-1]["body"]["messages"][-1][
        "content"]
    assert state(pg, victim["db"]) == before
