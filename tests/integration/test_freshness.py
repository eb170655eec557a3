"""Schema snapshots that stay right: a worker checks the target's catalog
version once schema_check_interval has passed and reads the catalog again
only when it moved, so every worker shows a new table within that bound;
an unchanged catalog is not read again (the version query is all it
costs); row counts come back after schema_max_age.  The function policy
lives in the same per-target entry as the snapshot: dropped with it, and
read again when the snapshot's check sees the catalog move."""
import re
import time

import requests

from conftest import clean_env, wait_for


def register(d, pg, db):
    r = d.post("/api/v1/databases", {"name": db, "database_type": "postgresql",
                                     "database_url": pg.url(db)})
    assert r.status_code == 201, r.text
    return r.json()["connection_id"]


def fresh_schema(d, cid):
    """GET the schema on a new connection (workers take turns)."""
    r = requests.get(d.url("/api/v1/databases/%s/schema" % cid), timeout=10,
                     headers={"Connection": "close"})
    assert r.status_code == 200, r.text
    return {t["table_name"] for t in r.json()["tables"]}


def test_new_table_on_every_worker_within_the_interval(daemon_factory,
                                                        registry_env, pg):
    db = pg.create_db("fresh")
    pg.sql(db, "CREATE TABLE t_before (x int)")
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"schema_check_interval": "300"}).start(
                           wait_ready=True)
    cid = register(d, pg, db)
    # every worker reads its snapshot
    for _ in range(8):
        assert fresh_schema(d, cid) == {"t_before"}
    pg.sql(db, "CREATE TABLE t_after (y int)")
    t0 = time.monotonic()
    # within the interval (and a little time to answer), on every worker
    wait_for(lambda: all("t_after" in fresh_schema(d, cid) for _ in range(8)),
             timeout=3, step=0.05, what="t_after on every worker")
    assert time.monotonic() - t0 < 2.5
    # dropped, renamed, a column added: the version moves for each
    pg.sql(db, "ALTER TABLE t_after RENAME TO t_renamed")
    wait_for(lambda: all(fresh_schema(d, cid) == {"t_before", "t_renamed"}
                         for _ in range(8)), timeout=3, step=0.05,
             what="the rename everywhere")
    pg.sql(db, "DROP TABLE t_before")
    wait_for(lambda: all(fresh_schema(d, cid) == {"t_renamed"}
                         for _ in range(8)), timeout=3, step=0.05,
             what="the drop everywhere")


def test_unchanged_catalog_is_not_read_again(daemon_factory, registry_env, pg):
    db = pg.create_db("steady")
    pg.sql(db, "CREATE TABLE a (x int); INSERT INTO a VALUES (1)")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "0",
                             "log_level": "debug"}).start(wait_ready=True)
    cid = register(d, pg, db)
    for _ in range(5):
        assert fresh_schema(d, cid) == {"a"}
    log = d.log()
    # read once; the four other requests cost a version query each
    assert log.count("schema of %s: no snapshot, reading the catalog"
                     % cid) == 1, log
    assert log.count("schema of %s: catalog version unchanged" % cid) == 4
    assert "catalog version moved" not in log
    # a new column is a new version: read again
    pg.sql(db, "ALTER TABLE a ADD COLUMN y int")
    r = requests.get(d.url("/api/v1/databases/%s/schema" % cid), timeout=10)
    cols = [c["name"] for c in r.json()["tables"][0]["columns"]]
    assert cols == ["x", "y"]
    assert d.log().count("schema of %s: catalog version moved" % cid) == 1
    # so is a comment, a grant, an index; data and ANALYZE are not
    for ddl, moves in (("INSERT INTO a VALUES (2, 2)", False),
                       ("ANALYZE a", False),
                       ("CREATE INDEX a_x ON a (x)", True),
                       ("GRANT SELECT ON a TO PUBLIC", True)):
        n = d.log().count("catalog version moved")
        pg.sql(db, ddl)
        fresh_schema(d, cid)
        assert d.log().count("catalog version moved") == n + moves, ddl


def test_row_counts_come_back_after_max_age(daemon_factory, registry_env, pg):
    db = pg.create_db("aging")
    pg.sql(db, "CREATE TABLE a (x int); INSERT INTO a VALUES (1)")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "0",
                             "schema_max_age": "1"}).start(wait_ready=True)
    cid = register(d, pg, db)

    def rows():
        r = requests.get(d.url("/api/v1/databases/%s/schema" % cid),
                         timeout=10)
        return r.json()["tables"][0]["row_count"]

    assert rows() == 1
    pg.sql(db, "INSERT INTO a SELECT generate_series(1, 9)")
    assert rows() == 1          # data does not move the catalog's version
    wait_for(lambda: rows() == 10, timeout=5, step=0.2,
             what="row counts read again after schema_max_age")


def direct(d, cid, sql):
    return d.post("/api/v1/chat", {"message": sql, "execution_mode": "direct_sql",
                                   "sql": sql, "target_database": cid})


def test_policy_lives_and_goes_with_the_snapshot(daemon_factory, registry_env,
                                                 pg):
    """One catalog entry per target and worker: a direct statement reads the
    policy only, the schema route the snapshot only; datachatctl invalidate
    and a registry change drop both in one step; a version move seen by the
    schema check reads the policy again in the same round, so a function
    made VOLATILE is refused at once, not a minute later."""
    db = pg.create_db("entry")
    pg.sql(db, "CREATE TABLE a (x int); CREATE FUNCTION entry_fn() "
               "RETURNS int STABLE LANGUAGE sql AS 'SELECT 1'")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "0",
                             "log_level": "debug"}).start(wait_ready=True)
    cid = register(d, pg, db)

    def reads():
        """(snapshot reads, policy reads) so far."""
        log = d.log()
        return (len(re.findall(r"schema of %s: [^\n]*, reading the catalog"
                               % cid, log)),
                len(re.findall(r"policy of %s: [^\n]*, reading the function "
                               r"catalog" % cid, log)))

    def sessions():
        return pg.sql(db, "SELECT count(*) FROM pg_stat_activity WHERE "
                        "application_name = 'datachatd' AND datname = %s",
                        (db,))[0][0]

    assert direct(d, cid, "SELECT entry_fn()").status_code == 200
    assert reads() == (0, 1)        # no schema read for a statement
    assert fresh_schema(d, cid) == {"a"}
    assert direct(d, cid, "SELECT entry_fn() + 1").status_code == 200
    assert reads() == (1, 1)        # nor a policy read for the schema
    # invalidate drops the entry: both are read again.  The worker closes
    # the target's sessions in the same step, so once they are gone the
    # entry is too (an ordinary statement leaves one open to watch).
    assert direct(d, cid, "SELECT 1").status_code == 200
    assert sessions() >= 1
    d.ctl("invalidate", cid, check=True)
    wait_for(lambda: sessions() == 0, what="the target's sessions closed")
    assert direct(d, cid, "SELECT entry_fn()").status_code == 200
    assert fresh_schema(d, cid) == {"a"}
    assert reads() == (2, 2)
    # the function turns VOLATILE: the catalog's version moves, and the
    # schema check that sees it reads the policy too (its last read being
    # more than DC_POLICY_REREAD_MS old)
    pg.sql(db, "CREATE OR REPLACE FUNCTION entry_fn() RETURNS int VOLATILE "
               "LANGUAGE sql AS 'SELECT 2'")
    time.sleep(5.2)
    assert fresh_schema(d, cid) == {"a"}
    assert reads() == (3, 3)
    r = direct(d, cid, "SELECT entry_fn()")
    assert r.status_code == 400, r.text
    assert "FuncCall entry_fn" in r.json()["detail"], r.text
    assert reads() == (3, 3)
    # a registry change (a new URL) drops both at once, whichever asks
    r = d.patch("/api/v1/databases/" + cid,
                {"database_url": pg.url(db) + "?connect_timeout=10"})
    assert r.status_code == 200, r.text
    assert direct(d, cid, "SELECT 1").status_code == 200
    assert fresh_schema(d, cid) == {"a"}
    assert reads() == (4, 4)


def test_mysql_catalog_version(daemon_factory, registry_env, mysql):
    """MySQL keeps no transaction id on its catalog: its version is a
    checksum of information_schema, moved by a new table, a new column
    and a dropped table, not by data."""
    db = mysql.create_db("myfresh")
    mysql.admin("CREATE TABLE a (x int); INSERT INTO a VALUES (1)", db)
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "0",
                             "log_level": "debug"}).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": db, "database_type": "mysql",
                                     "database_url": mysql.url(db)})
    assert r.status_code == 201, r.text
    cid = r.json()["connection_id"]
    assert fresh_schema(d, cid) == {"a"}
    mysql.admin("INSERT INTO a VALUES (2)", db)
    assert fresh_schema(d, cid) == {"a"}
    assert d.log().count("schema of %s: catalog version unchanged" % cid) == 1
    for ddl, want in (("CREATE TABLE b (y int)", {"a", "b"}),
                      ("ALTER TABLE b ADD COLUMN z int", {"a", "b"}),
                      ("DROP TABLE a", {"b"})):
        n = d.log().count("catalog version moved")
        mysql.admin(ddl, db)
        assert fresh_schema(d, cid) == want, ddl
        assert d.log().count("catalog version moved") == n + 1, ddl
    r = requests.get(d.url("/api/v1/databases/%s/schema" % cid), timeout=10)
    assert [c["name"] for c in r.json()["tables"][0]["columns"]] == ["y", "z"]


def test_clickhouse_catalog_version(daemon_factory, registry_env, clickhouse):
    """ClickHouse: a checksum of system.tables and system.columns, moved
    by a new table, a new column and a dropped table, not by data."""
    db = clickhouse.create_db("chfresh")
    clickhouse.sql("CREATE TABLE a (x UInt32) ENGINE = Log", db)
    clickhouse.sql("INSERT INTO a VALUES (1)", db)
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "0",
                             "log_level": "debug"}).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": db, "database_type": "clickhouse",
                                     "database_url": clickhouse.url(db)})
    assert r.status_code == 201, r.text
    cid = r.json()["connection_id"]
    assert fresh_schema(d, cid) == {"a"}
    clickhouse.sql("INSERT INTO a VALUES (2)", db)
    assert fresh_schema(d, cid) == {"a"}
    assert d.log().count("schema of %s: catalog version unchanged" % cid) == 1
    for ddl, want in (("CREATE TABLE b (y UInt32) ENGINE = MergeTree "
                       "ORDER BY y",
                       {"a", "b"}),
                      ("ALTER TABLE b ADD COLUMN z UInt32", {"a", "b"}),
                      ("DROP TABLE a", {"b"})):
        n = d.log().count("catalog version moved")
        clickhouse.sql(ddl, db)
        assert fresh_schema(d, cid) == want, ddl
        assert d.log().count("catalog version moved") == n + 1, ddl
