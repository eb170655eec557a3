"""The connection registry: DataChat's REST API for /api/v1/databases, the
system database table and its Fernet tokens, the shared-memory cache and
its coherence across workers, and what happens when the system database
goes away.  Real daemons (4 workers), real PostgreSQL."""
import datetime
import json
import os
import re
import signal
import threading
import time
import uuid

import psycopg2
import pytest
import requests
from cryptography.fernet import Fernet

from conftest import PG_PASSWORD, PgCluster, clean_env, wait_for

ENV_ID = "00000000-0000-0000-0000-00000000dada"


@pytest.fixture
def reg(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=4, env=clean_env(registry_env))
    d.start(wait_ready=True)
    d.sysdb = registry_env["_sysdb"]
    d.key = registry_env["DATABASE_CREDENTIALS_KEY"]
    d.pg = pg
    return d


def new_conn(d, **over):
    body = {"name": "analytics", "database_url": d.pg.url("postgres"),
            "database_type": "postgresql", "tags": ["prod", "sales"],
            "description": "the analytics warehouse"}
    body.update(over)
    return d.post("/api/v1/databases", body)


def fresh_get(d, path):
    # a new TCP connection each time, so any worker may answer
    return requests.get(d.url(path), timeout=10, headers={"Connection": "close"})


def test_create_get_list(reg):
    r = new_conn(reg, is_default=True)
    assert r.status_code == 201, r.text
    c = r.json()
    uuid.UUID(c["connection_id"])
    assert c["name"] == "analytics"
    assert c["database_type"] == "postgresql"
    assert c["is_active"] is True and c["is_default"] is True
    assert c["tags"] == ["prod", "sales"]
    assert c["description"] == "the analytics warehouse"
    assert c["datapoint_count"] == 0 and c["last_profiled"] is None
    datetime.datetime.fromisoformat(c["created_at"])
    # a SecretStr, and created_at as pydantic writes a UTC datetime
    assert c["database_url"] == "**********"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z",
                        c["created_at"]), c["created_at"]
    assert PG_PASSWORD not in r.text

    r2 = new_conn(reg, name="second", tags=[])
    assert r2.status_code == 201
    lst = fresh_get(reg, "/api/v1/databases")
    assert lst.status_code == 200
    ids = [x["connection_id"] for x in lst.json()]
    assert ids == [r2.json()["connection_id"], c["connection_id"]], "newest first"
    assert PG_PASSWORD not in lst.text

    one = fresh_get(reg, "/api/v1/databases/" + c["connection_id"])
    assert one.status_code == 200
    # DataChat's fields as created, then datachatd's addition: nothing
    # connected to the target yet, so what its role may do is unknown
    got = one.json()
    assert got.pop("role_privileges") is None
    assert got == c
    # stored as DataChat stores it: a Fernet token of the URL
    rows = reg.pg.sql(reg.sysdb, "SELECT database_url_encrypted, tags, is_default "
                      "FROM database_connections WHERE connection_id = %s",
                      (c["connection_id"],))
    token, tags, dflt = rows[0]
    assert Fernet(reg.key.encode()).decrypt(token.encode()).decode() == reg.pg.url("postgres")
    assert tags == ["prod", "sales"] and dflt is True


def test_create_validation_errors(reg):
    good = {"name": "n", "database_url": reg.pg.url("postgres"),
            "database_type": "postgresql"}
    masked = dict(good, database_url="**********")

    def err(typ, field, msg, inp, ctx=None):
        e = {"type": typ, "loc": ["body", field], "msg": msg, "input": inp}
        if ctx is not None:
            e["ctx"] = ctx
        return e

    without = lambda k: {x: v for x, v in good.items() if x != k}
    m_without = lambda k: {x: v for x, v in masked.items() if x != k}
    cases = [
        (without("name"), [err("missing", "name", "Field required",
                               m_without("name"))]),
        (without("database_url"), [err("missing", "database_url",
                                       "Field required", without("database_url"))]),
        (dict(good, name=""), [err("string_too_short", "name",
                                   "String should have at least 1 character", "",
                                   {"min_length": 1})]),
        (dict(good, name=5), [err("string_type", "name",
                                  "Input should be a valid string", 5)]),
        (dict(good, database_url=["x"]), [err("string_type", "database_url",
                                              "Input should be a valid string", ["x"])]),
        (dict(good, tags="prod"), [err("list_type", "tags",
                                       "Input should be a valid list", "prod")]),
        (dict(good, tags=None), [err("list_type", "tags",
                                     "Input should be a valid list", None)]),
        (dict(good, is_default="maybe"), [err(
            "bool_parsing", "is_default",
            "Input should be a valid boolean, unable to interpret input", "maybe")]),
        (dict(good, is_default=None), [err("bool_type", "is_default",
                                           "Input should be a valid boolean", None)]),
        (dict(good, description=7), [err("string_type", "description",
                                         "Input should be a valid string", 7)]),
        (dict(good, database_type="oracle"), [err(
            "literal_error", "database_type",
            "Input should be 'postgresql', 'clickhouse' or 'mysql'", "oracle",
            {"expected": "'postgresql', 'clickhouse' or 'mysql'"})]),
    ]
    for body, detail in cases:
        r = reg.post("/api/v1/databases", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json() == {"detail": detail}, (body, r.text)
        assert PG_PASSWORD not in r.text
    # every error at once, in the model's field order
    r = reg.post("/api/v1/databases", {"tags": [1, "a", 2], "is_default": []})
    assert r.status_code == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [
        ("missing", ["body", "name"]), ("missing", ["body", "database_url"]),
        ("missing", ["body", "database_type"]),
        ("string_type", ["body", "tags", 0]), ("string_type", ["body", "tags", 2]),
        ("bool_type", ["body", "is_default"])]
    # DataChat's ValueErrors, the URL's password masked
    for body, detail in [
        (dict(good, database_type="mysql"),
         "Database type does not match URL scheme: received 'mysql', inferred "
         "'postgresql' from 'postgresql://postgres:***@127.0.0.1:%d/postgres'."
         % reg.pg.port),
        (dict(good, database_url="ftp://x/y"), "Unsupported database URL scheme: ftp"),
        (dict(good, database_url=""), "Unsupported database URL scheme: "),
        (dict(good, database_url="postgresql:///db"),
         "Invalid database URL: host is required."),
        (dict(good, database_url="clickhouse:///db",
              database_type="clickhouse"),
         "Invalid database URL: host is required."),
    ]:
        r = reg.post("/api/v1/databases", body)
        assert r.status_code == 400 and r.json() == {"detail": detail}, r.text
    assert fresh_get(reg, "/api/v1/databases").json() == []


def test_create_lax_like_pydantic(reg):
    # whitespace satisfies min_length, "false"/0 are booleans, unknown
    # keys are ignored, application/*+json and no Content-Type are JSON
    r = new_conn(reg, name="  ", is_default="false", bogus=1)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "  " and r.json()["is_default"] is False
    body = json.dumps({"name": "b", "database_url": reg.pg.url("postgres"),
                       "database_type": "postgresql", "is_default": 1})
    r = requests.post(reg.url("/api/v1/databases"), data=body, timeout=30,
                      headers={"Content-Type": "application/vnd.api+json"})
    assert r.status_code == 201 and r.json()["is_default"] is True, r.text
    r = requests.post(reg.url("/api/v1/databases"), data=body, timeout=30,
                      headers={"Content-Type": ""})
    assert r.status_code == 201, r.text


def test_create_refused_connection_masks_password(reg):
    bad_pw = "wrong-Pass-123"
    r = new_conn(reg, database_url=reg.pg.url("postgres", password=bad_pw))
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Failed to connect to database:")
    assert "password authentication failed" in r.json()["detail"]
    assert bad_pw not in r.text
    r = new_conn(reg, database_url="postgresql://u:pw9876@127.0.0.1:1/db")
    assert r.status_code == 400 and "pw9876" not in r.text
    r = new_conn(reg, database_url=reg.pg.url("no_such_db_here"))
    assert r.status_code == 400 and "no_such_db_here" in r.text
    # driver suffixes are DataChat URLs too
    r = new_conn(reg, database_url=reg.pg.url("postgres", scheme="postgresql+asyncpg"))
    assert r.status_code == 201, r.text
    r = new_conn(reg, database_url=reg.pg.url("postgres", scheme="postgres"))
    assert r.status_code == 201, r.text
    assert bad_pw not in reg.log() and PG_PASSWORD not in reg.log()


def test_get_errors(reg):
    assert fresh_get(reg, "/api/v1/databases/not-a-uuid").status_code == 400
    r = fresh_get(reg, "/api/v1/databases/" + str(uuid.uuid4()))
    assert r.status_code == 404 and r.json()["detail"]


def test_patch(reg):
    c = new_conn(reg).json()
    cid = c["connection_id"]
    r = reg.patch("/api/v1/databases/" + cid, {"name": "renamed", "description": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and r.json()["description"] is None
    assert fresh_get(reg, "/api/v1/databases/" + cid).json()["name"] == "renamed"
    # nothing to update, DataChat's words; no body at all is 422
    r = reg.patch("/api/v1/databases/" + cid, {})
    assert r.status_code == 400 and r.json() == {
        "detail": "At least one field must be provided for update."}
    r = reg.patch("/api/v1/databases/" + cid, {"name": None, "tags": ["x"]})
    assert r.status_code == 400 and r.json() == {
        "detail": "At least one non-empty field must be provided for update."}
    r = reg.patch("/api/v1/databases/" + cid, {"name": None, "description": "d"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    r = requests.patch(reg.url("/api/v1/databases/" + cid), timeout=10,
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json() == {"detail": [
        {"type": "missing", "loc": ["body"], "msg": "Field required",
         "input": None}]}
    # url change is re-validated
    r = reg.patch("/api/v1/databases/" + cid,
                  {"database_url": reg.pg.url("postgres", password="nope")})
    assert r.status_code == 400 and "Failed to connect" in r.json()["detail"]
    other = reg.pg.create_db("t")
    r = reg.patch("/api/v1/databases/" + cid, {"database_url": reg.pg.url(other)})
    assert r.status_code == 200
    assert r.json()["database_url"] == "**********"
    assert reg.pg.sql(reg.sysdb, "SELECT count(*) FROM database_connections")[0][0] == 1
    r = reg.patch("/api/v1/databases/" + cid, {"database_type": "mysql"})
    assert r.status_code == 400
    r = reg.patch("/api/v1/databases/" + cid, {"name": 3})
    assert r.status_code == 422
    unknown = str(uuid.uuid4())
    r = reg.patch("/api/v1/databases/" + unknown, {"name": "x"})
    assert r.status_code == 404
    assert r.json() == {"detail": "'Connection not found: %s'" % unknown}
    r = reg.patch("/api/v1/databases/xyz", {"name": "x"})
    assert r.status_code == 400 and r.json() == {"detail": "Invalid connection ID."}
    r = reg.patch("/api/v1/databases/" + ENV_ID, {"name": "x"})
    assert r.status_code == 400 and r.json() == {"detail": "Environment Database is "
                                                 "derived from DATABASE_URL and cannot "
                                                 "be edited here."}


def test_default_exactly_one(reg):
    a = new_conn(reg, name="a", is_default=True).json()
    b = new_conn(reg, name="b").json()
    r = reg.put("/api/v1/databases/%s/default" % b["connection_id"], {"is_default": True})
    assert r.status_code == 204, r.text
    rows = reg.pg.sql(reg.sysdb, "SELECT connection_id::text FROM database_connections "
                      "WHERE is_default")
    assert rows == [(b["connection_id"],)]
    for _ in range(8):
        lst = fresh_get(reg, "/api/v1/databases").json()
        assert [x["name"] for x in lst if x["is_default"]] == ["b"]
    path = "/api/v1/databases/%s/default" % a["connection_id"]
    r = reg.put(path, {"is_default": False})
    assert r.status_code == 400 and r.json() == {
        "detail": "is_default must be true to set default connection"}
    r = reg.put(path, {"is_default": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "bool_parsing"
    # {} means is_default: true, and "true" is a boolean
    assert reg.put(path, {}).status_code == 204
    assert reg.put(path, {"is_default": "true"}).status_code == 204
    r = requests.put(reg.url(path), timeout=10)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]
    assert reg.put("/api/v1/databases/%s/default" % uuid.uuid4(),
                   {"is_default": True}).status_code == 404
    assert reg.put("/api/v1/databases/%s/default" % ENV_ID,
                   {"is_default": True}).status_code == 400
    # unknown id did not clear the default
    assert reg.pg.sql(reg.sysdb, "SELECT count(*) FROM database_connections "
                      "WHERE is_default")[0][0] == 1


def test_delete(reg):
    c = new_conn(reg).json()
    path = "/api/v1/databases/" + c["connection_id"]
    assert reg.delete(path).status_code == 204
    assert reg.delete(path).status_code == 404
    for _ in range(8):
        assert fresh_get(reg, path).status_code == 404
    assert reg.delete("/api/v1/databases/" + ENV_ID).status_code == 400
    assert reg.delete("/api/v1/databases/nope").status_code == 400


def test_environment_entry(pg, daemon_factory, registry_env):
    env = clean_env(registry_env)
    env["DATABASE_URL"] = pg.url("postgres")
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    d.pg = pg
    lst = d.get("/api/v1/databases").json()
    assert len(lst) == 1
    e = lst[0]
    assert e["connection_id"] == ENV_ID and e["name"] == "Environment Database"
    assert e["tags"] == ["env"] and e["is_default"] is True
    assert PG_PASSWORD not in d.get("/api/v1/databases").text
    assert d.get("/api/v1/databases/" + ENV_ID).status_code == 200
    # a registry default takes over
    other = pg.create_db("t")
    c = new_conn(d, database_url=pg.url(other), is_default=True).json()
    e = [x for x in d.get("/api/v1/databases").json() if x["connection_id"] == ENV_ID][0]
    assert e["is_default"] is False
    # a registry entry with the same URL hides the environment entry
    new_conn(d, name="same", database_url=pg.url("postgres"))
    ids = [x["connection_id"] for x in d.get("/api/v1/databases").json()]
    assert ENV_ID not in ids and c["connection_id"] in ids


def datachat_insert(pg, sysdb, key, name, url, is_default=False, tags=()):
    """What DataChat's DatabaseConnectionManager does on add_connection."""
    cid = uuid.uuid4()
    token = Fernet(key.encode()).encrypt(url.encode()).decode()
    c = pg.connect(sysdb)
    try:
        with c.cursor() as cur:
            cur.execute(
                "INSERT INTO database_connections (connection_id, name, "
                "database_url_encrypted, database_type, is_active, is_default, "
                "tags, description, created_at, datapoint_count) VALUES "
                "(%s, %s, %s, %s, TRUE, %s, %s, %s, %s, 0)",
                (str(cid), name, token, "postgresql", is_default, list(tags),
                 "added by DataChat", datetime.datetime.now(datetime.timezone.utc)))
    finally:
        c.close()
    return str(cid)


def test_datachat_rows_interop(reg):
    cid = datachat_insert(reg.pg, reg.sysdb, reg.key, "from-datachat",
                          reg.pg.url("postgres"), tags=["dc"])
    got = wait_for(lambda: fresh_get(reg, "/api/v1/databases/" + cid).status_code == 200,
                   timeout=2, what="DataChat row visible")
    assert got
    e = fresh_get(reg, "/api/v1/databases/" + cid).json()
    assert e["name"] == "from-datachat" and e["tags"] == ["dc"]
    assert e["description"] == "added by DataChat"
    # and it is usable: it can be made the default through the API
    assert reg.put("/api/v1/databases/%s/default" % cid,
                   {"is_default": True}).status_code == 204


def test_existing_datachat_table_is_adopted(pg, daemon_factory):
    sysdb = pg.create_db("sys")
    key = Fernet.generate_key().decode()
    pg.sql(sysdb, """CREATE TABLE database_connections (
        connection_id UUID PRIMARY KEY, name TEXT NOT NULL,
        database_url_encrypted TEXT NOT NULL, database_type TEXT NOT NULL,
        is_active BOOLEAN NOT NULL DEFAULT TRUE,
        is_default BOOLEAN NOT NULL DEFAULT FALSE,
        tags TEXT[] NOT NULL DEFAULT '{}', description TEXT,
        created_at TIMESTAMPTZ NOT NULL, last_profiled TIMESTAMPTZ,
        datapoint_count INTEGER NOT NULL DEFAULT 0)""")
    pg.sql(sysdb, "CREATE UNIQUE INDEX database_connections_default_idx "
           "ON database_connections (is_default) WHERE is_default")
    cid = datachat_insert(pg, sysdb, key, "legacy", pg.url("postgres"), is_default=True)
    pg.sql(sysdb, "UPDATE database_connections SET last_profiled = now(), "
           "datapoint_count = 12 WHERE connection_id = %s", (cid,))
    d = daemon_factory(workers=2, env={"SYSTEM_DATABASE_URL": pg.url(sysdb),
                                       "DATABASE_CREDENTIALS_KEY": key})
    d.start(wait_ready=True)
    e = d.get("/api/v1/databases/" + cid).json()
    assert e["name"] == "legacy" and e["is_default"] is True
    assert e["datapoint_count"] == 12 and e["last_profiled"] is not None
    cols = pg.sql(sysdb, "SELECT column_name FROM information_schema.columns "
                  "WHERE table_name = 'database_connections' ORDER BY ordinal_position")
    assert [c[0] for c in cols] == [
        "connection_id", "name", "database_url_encrypted", "database_type",
        "is_active", "is_default", "tags", "description", "created_at",
        "last_profiled", "datapoint_count"]


def test_undecryptable_row_is_skipped_and_reported(reg):
    other_key = Fernet.generate_key().decode()
    bad = datachat_insert(reg.pg, reg.sysdb, other_key, "alien", reg.pg.url("postgres"))
    good = new_conn(reg).json()["connection_id"]
    reg.send(signal.SIGHUP)  # full resync
    wait_for(lambda: fresh_get(reg, "/api/v1/ready").json()["registry"]
             ["undecryptable_rows"] == 1, what="bad row reported")
    assert fresh_get(reg, "/api/v1/databases/" + bad).status_code == 404
    assert fresh_get(reg, "/api/v1/databases/" + good).status_code == 200
    assert bad in reg.log() and "does not decrypt" in reg.log()
    token = reg.pg.sql(reg.sysdb, "SELECT database_url_encrypted FROM "
                       "database_connections WHERE connection_id = %s", (bad,))[0][0]
    assert token not in reg.log()
    assert reg.proc.poll() is None


def test_fifty_posts_then_gets_never_miss(reg):
    misses = 0
    for i in range(50):
        r = requests.post(reg.url("/api/v1/databases"), timeout=30,
                          headers={"Connection": "close"},
                          json={"name": "c%d" % i, "database_url": reg.pg.url("postgres"),
                                "database_type": "postgresql"})
        assert r.status_code == 201, r.text
        g = fresh_get(reg, "/api/v1/databases/" + r.json()["connection_id"])
        if g.status_code != 200:
            misses += 1
    assert misses == 0
    assert len(fresh_get(reg, "/api/v1/databases").json()) == 50


def test_external_update_and_delete_seen_by_every_worker(reg):
    cid = new_conn(reg, name="before").json()["connection_id"]
    reg.pg.sql(reg.sysdb, "UPDATE database_connections SET name = 'after' "
               "WHERE connection_id = %s", (cid,))
    t0 = time.monotonic()
    # every worker must agree within a second: poll with fresh connections
    wait_for(lambda: all(fresh_get(reg, "/api/v1/databases/" + cid).json()["name"]
                         == "after" for _ in range(12)), timeout=1.0,
             what="rename visible everywhere")
    reg.pg.sql(reg.sysdb, "DELETE FROM database_connections WHERE connection_id = %s",
               (cid,))
    wait_for(lambda: all(fresh_get(reg, "/api/v1/databases/" + cid).status_code == 404
                         for _ in range(12)), timeout=1.0,
             what="delete visible everywhere")
    assert time.monotonic() - t0 < 3


def test_registry_capacity(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"registry_capacity": "2"}).start(wait_ready=True)
    d.pg = pg
    assert new_conn(d, name="1").status_code == 201
    assert new_conn(d, name="2").status_code == 201
    r = new_conn(d, name="3")
    assert r.status_code == 507 and "registry_capacity" in r.json()["detail"]


def test_system_database_down_and_back(daemon_factory, tmp_path):
    cluster = PgCluster()
    try:
        cluster.sql("postgres", "CREATE DATABASE sys")
        key = Fernet.generate_key().decode()
        d = daemon_factory(workers=2, env={"SYSTEM_DATABASE_URL": cluster.url("sys"),
                                           "DATABASE_CREDENTIALS_KEY": key})
        d.start(wait_ready=True)
        d.pg = cluster
        cid = new_conn(d).json()["connection_id"]
        cluster.stop()
        wait_for(lambda: d.get("/api/v1/ready").status_code == 503, timeout=10,
                 what="ready reports stale")
        assert "stale" in d.get("/api/v1/ready").json()["detail"]
        for _ in range(6):
            r = fresh_get(d, "/api/v1/databases")
            assert r.status_code == 200 and r.json()[0]["connection_id"] == cid
        r = d.post("/api/v1/databases", {"name": "x", "database_type": "postgresql",
                                         "database_url": "postgresql://u:p@127.0.0.1:1/x"})
        # the target check fails first or the system database does: never 2xx
        assert r.status_code in (400, 503)
        r = d.delete("/api/v1/databases/" + cid)
        assert r.status_code == 503 and "system database" in r.json()["detail"]
        cluster.start()
        wait_for(lambda: d.get("/api/v1/ready").status_code == 200, timeout=20,
                 what="ready again after restart")
        wait_for(lambda: new_conn(d, name="after").status_code == 201, timeout=10,
                 what="writes work again")
        assert d.proc.poll() is None
    finally:
        cluster.destroy()


def test_never_loaded_registry(daemon_factory):
    # a system database that is not there at all: reads refuse, ready 503
    d = daemon_factory(workers=2, env={
        "SYSTEM_DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/none",
        "DATABASE_CREDENTIALS_KEY": Fernet.generate_key().decode()})
    d.start()
    r = d.get("/api/v1/ready")
    assert r.status_code == 503 and "not loaded" in r.json()["detail"]
    assert d.get("/api/v1/databases").status_code == 503
    assert "pw@" not in d.log()


def test_no_secret_in_logs(reg):
    new_conn(reg)
    new_conn(reg, database_url=reg.pg.url("postgres", password="Leak-Me-99"))
    log = reg.log()
    assert PG_PASSWORD not in log and "Leak-Me-99" not in log
    assert reg.key not in log


def test_two_instances_share_one_system_database(pg, daemon_factory, registry_env):
    """Scale-out (DESIGN 8): two datachatd on one system database stay
    coherent through NOTIFY, with no protocol of their own."""
    env = clean_env(registry_env)
    a = daemon_factory(workers=2, env=env).start(wait_ready=True)
    b = daemon_factory(workers=2, env=env).start(wait_ready=True)
    a.pg = b.pg = pg
    cid = new_conn(a, name="via-a").json()["connection_id"]
    wait_for(lambda: fresh_get(b, "/api/v1/databases/" + cid).status_code == 200,
             timeout=1.0, what="instance b sees a's write")
    r = b.patch("/api/v1/databases/" + cid, {"name": "via-b"})
    assert r.status_code == 200
    wait_for(lambda: fresh_get(a, "/api/v1/databases/" + cid).json()["name"] == "via-b",
             timeout=1.0, what="instance a sees b's write")
    assert b.delete("/api/v1/databases/" + cid).status_code == 204
    wait_for(lambda: fresh_get(a, "/api/v1/databases/" + cid).status_code == 404,
             timeout=1.0, what="instance a sees b's delete")


def test_external_writes_during_api_writes_are_not_delayed(reg):
    """A NOTIFY that reaches the master while it re-reads a row for an API
    write lands in libpq's queue; it must be applied at once, not at the
    next traffic or the periodic resync."""
    ext = new_conn(reg, name="ext-0").json()["connection_id"]
    stop = threading.Event()

    def api_writes():
        i = 0
        while not stop.is_set() and i < 200:
            new_conn(reg, name="api-%d" % i)
            i += 1

    t = threading.Thread(target=api_writes)
    t.start()
    try:
        for i in range(1, 21):
            reg.pg.sql(reg.sysdb, "UPDATE database_connections SET name = %s "
                       "WHERE connection_id = %s", ("ext-%d" % i, ext))
            wait_for(lambda: all(fresh_get(reg, "/api/v1/databases/" + ext).json()["name"]
                                 == "ext-%d" % i for _ in range(4)),
                     timeout=1.0, what="external rename %d visible" % i)
    finally:
        stop.set()
        t.join(60)
