"""The session backstop of PostgreSQL targets (issue 11, item 3): nothing
a statement leaves in its database session reaches the next job on that
pooled connection, on a superuser target and as an ordinary role.

The guard refuses what the catalog says acts outside the transaction (a
DBA's VOLATILE function, advisory locks, setseed, even in attribute
notation).  What it admits but cannot see into, a statement that calls a
DBA's function (which may lie about its volatility), is unusual: its
connection takes no job after it and is closed when it ends
(src/pool/sqlcheck.c, pool.c).  Ordinary statements keep their session
and pay nothing.  One worker with one target connection, so every job
runs on the same session unless the backstop closed it.
"""
import concurrent.futures
import uuid

import pytest
import requests

from conftest import PG_PASSWORD, clean_env, wait_for

READER_PW = "R3ader-pw"

# A DBA's functions, all callable by PUBLIC (functions are by default).
FUNCTIONS = """
CREATE TABLE items (id int PRIMARY KEY, tag text);
INSERT INTO items SELECT g, 't' || g FROM generate_series(1, 5) g;
CREATE FUNCTION lock_it() RETURNS bool STABLE LANGUAGE sql
    AS 'SELECT pg_advisory_lock(4242) IS NULL';
CREATE FUNCTION seed_it() RETURNS int STABLE LANGUAGE plpgsql
    AS $$BEGIN PERFORM setseed(0.5); RETURN 1; END$$;
CREATE FUNCTION prep_it() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN EXECUTE 'PREPARE leftover AS SELECT 1'; RETURN 1; END$$;
CREATE FUNCTION dealloc_it() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN EXECUTE 'DEALLOCATE ALL'; RETURN 1; END$$;
CREATE FUNCTION swap_rollback() RETURNS int LANGUAGE plpgsql AS $$
DECLARE n text;
BEGIN
    SELECT name INTO n FROM pg_prepared_statements
        WHERE name LIKE 'dc_rollback%';
    EXECUTE format('DEALLOCATE %I', n);
    EXECUTE format('PREPARE %I AS SELECT 1', n);
    RETURN 1;
END$$;
CREATE FUNCTION listen_it() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN EXECUTE 'LISTEN leftover'; RETURN 1; END$$;
CREATE FUNCTION temp_it() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN EXECUTE 'CREATE TEMP TABLE leftover (x int)'; RETURN 1; END$$;
CREATE FUNCTION loosen() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('statement_timeout', '0', false);
    PERFORM set_config('search_path', 'pg_temp', false);
    RETURN 'x';
END$$;
"""

# plpgsql's own settings appear once a function in it ran: loading a
# procedural language is no state a job leaves for the next one
SETTINGS = ("SELECT string_agg(name || '=' || setting, chr(10) ORDER BY "
            "name) AS h FROM pg_settings WHERE name NOT LIKE 'plpgsql.%'")

REFUSED = ("SQL Editor accepts read-only SQL only "
           "(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN). ")


@pytest.fixture(scope="module")
def db(pg):
    name = pg.create_db("backstop")
    reader = "reader_%s" % uuid.uuid4().hex[:8]
    pg.sql(name, FUNCTIONS)
    pg.sql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'"
           % (reader, READER_PW))
    pg.sql(name, "GRANT SELECT ON items TO %s" % reader)
    return {"name": name, "reader": reader}


@pytest.fixture(params=["superuser", "ordinary"])
def one(request, daemon_factory, registry_env, pg, db):
    """A daemon with one worker and one connection to the target, as the
    superuser or as an ordinary role."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "1",
                             "statement_timeout": "5000"}).start(
                                 wait_ready=True)
    if request.param == "superuser":
        url = pg.url(db["name"])
    else:
        url = pg.url(db["name"], user=db["reader"], password=READER_PW)
    r = d.post("/api/v1/databases", {"name": "t", "database_url": url,
                                     "database_type": "postgresql",
                                     "is_default": True})
    assert r.status_code == 201, r.text
    return d


def run(d, query):
    return d.post("/api/v1/chat", {"message": query, "sql": query,
                                   "execution_mode": "direct_sql"})


def rows(d, query):
    r = run(d, query)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def first(d, query):
    data = rows(d, query)
    (col,) = data.keys()
    return data[col][0]


def advisory(pg, dbname):
    return pg.sql("postgres", "SELECT count(*) FROM pg_locks l JOIN "
                  "pg_database d ON d.oid = l.database WHERE d.datname = %s "
                  "AND l.locktype = 'advisory'", (dbname,))[0][0]


def backends(pg, dbname):
    return pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                  "datname = %s AND application_name = 'datachatd'",
                  (dbname,))[0][0]


def seeded_random(pg):
    """What random() gives right after setseed(0.5)."""
    c = pg.connect()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT setseed(0.5)")
            cur.execute("SELECT random()")
            return cur.fetchone()[0]
    finally:
        c.close()


def clean(d, pg, db, settings, named=2):
    """The next job sees nothing of what came before, and the server
    shows nothing left either (a closed session's backend may take a
    moment to go, and its locks with it)."""
    wait_for(lambda: advisory(pg, db["name"]) == 0, what="no advisory lock")
    wait_for(lambda: backends(pg, db["name"]) <= 1, what="at most one session")
    assert first(d, "SELECT count(*) AS n FROM pg_locks WHERE "
                    "locktype = 'advisory'") == 0
    assert first(d, "SELECT count(*) AS n FROM pg_prepared_statements "
                    "WHERE from_sql") == 0
    assert first(d, "SELECT count(*) AS n FROM pg_listening_channels()") == 0
    assert first(d, "SELECT pg_my_temp_schema()::int AS t") == 0
    assert first(d, "SELECT random() AS r") != seeded_random(pg)
    now = first(d, SETTINGS)
    assert now == settings, set(now.split("\n")) ^ set(settings.split("\n"))
    assert first(d, "SHOW statement_timeout") == "5s"
    assert first(d, "SHOW transaction_read_only") == "on"
    # ours (BEGIN and ROLLBACK) are still prepared
    assert first(d, "SELECT count(*) AS n FROM pg_prepared_statements "
                    "WHERE NOT from_sql") == named


def attack(d, query):
    """Run an attack: the guard may refuse it (400), the target may
    refuse it (400), the backstop may fail it (400), or it may run."""
    r = run(d, query)
    assert r.status_code in (200, 400), r.text
    return r


# The guard refuses these: advisory locks and setseed in any notation, a
# DBA's VOLATILE functions (dynamic PREPARE, DEALLOCATE, LISTEN, a temp
# table, set_config) because the catalog says what they are.
GUARDED = [
    "SELECT (1).pg_advisory_lock",
    "SELECT (4243::bigint).pg_try_advisory_lock",
    "SELECT (0.5::float8).setseed",
    "SELECT prep_it()",
    "SELECT dealloc_it()",
    "SELECT swap_rollback()",
    "SELECT listen_it()",
    "SELECT temp_it()",
    "SELECT loosen()",
    "SELECT prep_it(), lock_it(), seed_it()",
]

# A DBA's functions that say they are STABLE and are not: admitted, and
# their session is closed after them.
LYING = [
    "SELECT lock_it()",
    "SELECT seed_it()",
    "SELECT lock_it(), seed_it() FROM items",
    # fails after taking the lock
    "SELECT lock_it(), 1 / (g - 1) FROM generate_series(1, 1) g",
    "SELECT seed_it(), 1 / (g - 1) FROM generate_series(1, 1) g",
]


def test_what_acts_outside_the_transaction_is_refused(one, pg, db):
    d = one
    settings = first(d, SETTINGS)
    pid = first(d, "SELECT pg_backend_pid() AS p")
    for q in GUARDED:
        r = run(d, q)
        assert r.status_code == 400, (q, r.text)
        assert r.json()["detail"].startswith(REFUSED), (q, r.text)
        clean(d, pg, db, settings)
        # nothing ran: the same session serves the next job
        assert first(d, "SELECT pg_backend_pid() AS p") == pid, q


def test_a_lying_function_gets_a_session_of_its_own(one, pg, db):
    d = one
    settings = first(d, SETTINGS)
    for q in LYING:
        pid = first(d, "SELECT pg_backend_pid() AS p")
        r = attack(d, q)
        assert "s3cret" not in r.text and PG_PASSWORD not in r.text
        clean(d, pg, db, settings)
        assert first(d, "SELECT pg_backend_pid() AS p") != pid, q
        # and ordinary statements keep the new one
        pid = first(d, "SELECT pg_backend_pid() AS p")
        assert first(d, "SELECT pg_backend_pid() AS p") == pid, q


def test_jobs_pipelined_behind_an_attack_see_nothing(one, pg, db):
    """Attacks and ordinary queries in flight together on the one
    connection: every ordinary query sees no advisory lock, no prepared
    statement of SQL, and gets its own answer."""
    d = one
    s = requests.Session()

    def job(i):
        if i % 5 == 0:
            q = ["SELECT lock_it()", "SELECT (1).pg_advisory_lock",
                 "SELECT seed_it()"][(i // 5) % 3]
            return i, q, s.post(d.url("/api/v1/chat"), json={
                "message": q, "sql": q, "execution_mode": "direct_sql"},
                timeout=60)
        q = ("SELECT %d AS i, (SELECT count(*) FROM pg_locks WHERE "
             "locktype = 'advisory') AS locks, (SELECT count(*) FROM "
             "pg_prepared_statements WHERE from_sql) AS prepared" % i)
        return i, q, requests.post(d.url("/api/v1/chat"), json={
            "message": q, "sql": q, "execution_mode": "direct_sql"},
            timeout=60)

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        for i, q, r in ex.map(job, range(120), timeout=300):
            if i % 5 == 0:
                assert r.status_code in (200, 400), r.text
                continue
            assert r.status_code == 200, (q, r.text)
            assert r.json()["data"] == {"i": [i], "locks": [0],
                                        "prepared": [0]}, q
    assert advisory(pg, db["name"]) == 0
    assert backends(pg, db["name"]) <= 1
