"""Target URLs and registry rows written by others (issue 11).

A registered URL may only use the parameters a remote target needs:
every refused parameter, encoded names, socket forms; the password never
reaches a response, a log line or datachatctl.  Rows written straight
into the system database (psql, DataChat) are served as they are or
refused with a reason in /ready and `datachatctl status`, never cut
short; a row of an engine datachatd does not serve is listed and
refused at query time.
"""
import datetime
import uuid

import pytest
from cryptography.fernet import Fernet

from conftest import PG_PASSWORD, clean_env, wait_for

SECRET = "Zq7-unique-pw-" + uuid.uuid4().hex[:8]


@pytest.fixture
def reg(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=2, env=clean_env(registry_env))
    d.start(wait_ready=True)
    d.sysdb = registry_env["_sysdb"]
    d.key = registry_env["DATABASE_CREDENTIALS_KEY"]
    d.pg = pg
    return d


def create(d, url, name="t"):
    return d.post("/api/v1/databases", {"name": name, "database_url": url,
                                         "database_type": "postgresql"})


def base(pg, password=SECRET):
    return "postgresql://postgres:%s@127.0.0.1:%d/postgres" % (password,
                                                              pg.port)


REFUSED_PARAMS = ["passfile=/root/.pgpass", "service=prod",
                  "servicefile=/etc/pg_service.conf", "sslkey=/etc/shadow",
                  "sslcert=/etc/passwd", "sslrootcert=/etc/shadow",
                  "sslcrl=/etc/x", "sslcrldir=/etc", "requirepeer=postgres",
                  "options=-c%20statement_timeout%3D0",
                  "application_name=x", "sslpassword=x",
                  "client_encoding=LATIN1", "gssencmode=require",
                  "channel_binding=require", "replication=database"]


@pytest.mark.parametrize("param", REFUSED_PARAMS)
def test_each_refused_parameter(reg, param):
    r = create(reg, base(reg.pg) + "?" + param)
    assert r.status_code == 400, r.text
    name = param.split("=")[0]
    # refused by the policy, or by libpq itself when it has no such
    # parameter (servicefile before PostgreSQL 16's libpq)
    assert ("parameter %s is not allowed" % name in r.json()["detail"] or
            'invalid URI query parameter: "%s"' % name in
            r.json()["detail"]), r.text
    assert SECRET not in r.text


@pytest.mark.parametrize("url", [
    "postgresql://postgres:%s@127.0.0.1:%d/postgres?pass%%66ile=/root/.pgpass",
    "postgresql://postgres:%s@127.0.0.1:%d/postgres?%%73slkey=/etc/shadow",
    "postgresql://postgres:%s@127.0.0.1:%d/postgres?opt%%69ons=-c%%20x%%3Dy",
    "postgres+asyncpg://postgres:%s@127.0.0.1:%d/postgres?req%%75irepeer=x",
])
def test_encoded_names_are_what_libpq_reads(reg, url):
    r = create(reg, url % (SECRET, reg.pg.port))
    assert r.status_code == 400, r.text
    assert "is not allowed" in r.json()["detail"]
    assert SECRET not in r.text


def test_socket_forms_are_refused(reg):
    pg = reg.pg
    for url in ["postgresql://postgres@/postgres?host=%s&port=%d" % (pg.dir,
                                                                    pg.port),
                "postgresql://postgres@%%2F%s/postgres" % pg.dir.lstrip("/")
                .replace("/", "%2F"),
                "postgresql:///postgres",
                "postgresql://postgres@/postgres?host=@abstract",
                "postgresql://postgres:%s@/postgres" % SECRET]:
        r = create(reg, url)
        assert r.status_code == 400, (url, r.text)
        # DataChat's own check refuses a URL without a host part first
        assert ("socket" in r.json()["detail"] or "no host" in
                r.json()["detail"] or "host is required" in
                r.json()["detail"]), r.text
        assert SECRET not in r.text


def test_sockets_when_the_operator_allows_them(pg, daemon_factory,
                                               registry_env):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"allow_socket_targets": "yes"})
    d.start(wait_ready=True)
    # the test cluster trusts its socket: exactly the risk the key admits
    # (the socket directory as the host part, which DataChat takes too)
    r = create(d, "postgresql://postgres@%s:%d/postgres" %
               (pg.dir.replace("/", "%2F"), pg.port))
    assert r.status_code == 201, r.text


def test_encoded_password_parameter_is_masked(reg):
    url = ("postgresql://postgres@127.0.0.1:%d/postgres?pass%%77ord=%s" %
           (reg.pg.port, PG_PASSWORD))
    r = create(reg, url, name="encoded")
    assert r.status_code == 201, r.text
    assert PG_PASSWORD not in r.text
    cid = r.json()["connection_id"]
    # DataChat's shape shows no URL at all ("**********"); whatever a
    # response, a log line or datachatctl shows, never the password
    for path in ["/api/v1/databases", "/api/v1/databases/" + cid]:
        got = reg.get(path)
        assert got.status_code == 200 and PG_PASSWORD not in got.text
    out = reg.ctl("list")
    assert PG_PASSWORD not in out.stdout + out.stderr
    out = reg.ctl("--json", "list")
    assert PG_PASSWORD not in out.stdout + out.stderr
    assert PG_PASSWORD not in reg.log()


def test_errors_are_not_garbled(reg):
    # a one-letter password that also appears in every word of libpq's
    # message: the message comes back whole
    r = create(reg, "postgresql://postgres:o@127.0.0.1:1/postgres")
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "***" not in detail and "connect" in detail, detail


def insert_row(d, name, url, dbtype="postgresql", tags=(), description="x",
               token=None):
    cid = str(uuid.uuid4())
    token = token or Fernet(d.key.encode()).encrypt(url.encode()).decode()
    c = d.pg.connect(d.sysdb)
    try:
        with c.cursor() as cur:
            cur.execute(
                "INSERT INTO database_connections (connection_id, name, "
                "database_url_encrypted, database_type, is_active, "
                "is_default, tags, description, created_at, "
                "datapoint_count) VALUES (%s, %s, %s, %s, TRUE, FALSE, %s, "
                "%s, %s, 0)",
                (cid, name, token, dbtype, list(tags), description,
                 datetime.datetime.now(datetime.timezone.utc)))
    finally:
        c.close()
    return cid


def refused(d):
    return {r["connection_id"]: r for r in
            d.get("/api/v1/ready").json()["registry"]["refused_rows"]}


def test_rows_written_by_others(reg):
    pg = reg.pg
    good_long = insert_row(reg, "n" * 255, pg.url("postgres"),
                           tags=["t%d" % i for i in range(60)],
                           description="d" * 2047)
    long_name = insert_row(reg, "N" * 256, pg.url("postgres"))
    long_desc = insert_row(reg, "desc", pg.url("postgres"),
                           description="D" * 5000)
    many_tags = insert_row(reg, "tags", pg.url("postgres"),
                           tags=["tag-%04d" % i for i in range(200)])
    socket = insert_row(reg, "sock", "postgresql://postgres@/postgres?host="
                        + pg.dir)
    passfile = insert_row(reg, "pf", pg.url("postgres") +
                          "?passfile=/root/.pgpass")
    mismatch = insert_row(reg, "mm", pg.url("postgres"), dbtype="mysql")
    oracle = insert_row(reg, "ora", pg.url("postgres"), dbtype="oracle")
    bad_token = insert_row(reg, "tok", "", token="gAAAAAnot-a-token")
    mysql = insert_row(reg, "my", "mysql://u:%s@127.0.0.1:3306/db" % SECRET,
                       dbtype="mysql")

    def all_seen():
        ids = {c["connection_id"] for c in reg.get("/api/v1/databases").json()}
        return good_long in ids and mysql in ids and len(refused(reg)) == 8
    wait_for(all_seen, timeout=5, what="rows loaded or refused")

    # served as they are: nothing cut short, no tag dropped
    e = reg.get("/api/v1/databases/" + good_long).json()
    assert e["name"] == "n" * 255 and len(e["tags"]) == 60
    assert e["description"] == "d" * 2047
    rows = refused(reg)
    assert "name is 256 bytes" in rows[long_name]["reason"]
    assert "description is 5000 bytes" in rows[long_desc]["reason"]
    assert "tag list is" in rows[many_tags]["reason"]
    assert "socket" in rows[socket]["reason"]
    assert "parameter passfile is not allowed" in rows[passfile]["reason"]
    assert "database_type is mysql but its URL's scheme is postgresql" in \
        rows[mismatch]["reason"]
    assert "oracle" in rows[oracle]["reason"]
    assert "does not decrypt" in rows[bad_token]["reason"]
    assert rows[long_name]["name"] == "N" * 63
    for cid in rows:
        assert reg.get("/api/v1/databases/" + cid).status_code == 404
    # datachatctl status lists them too
    st = reg.ctl("status").stdout
    assert "registry.refused_rows[" in st and "socket" in st
    js = reg.ctl("--json", "status").stdout
    assert passfile in js
    assert SECRET not in st + js + reg.log()

    # a row of another engine is listed, and served by its driver: here
    # nothing listens on its port, which is a 503 that keeps the secret
    e = reg.get("/api/v1/databases/" + mysql).json()
    assert e["database_type"] == "mysql" and SECRET not in str(e)
    r = reg.post("/api/v1/chat", {"message": "SELECT 1",
                                  "execution_mode": "direct_sql",
                                  "sql": "SELECT 1", "target_database": mysql})
    assert r.status_code == 503, r.text
    assert SECRET not in r.text

    # fixed in the table: served again, and off the refused list
    c = pg.connect(reg.sysdb)
    with c.cursor() as cur:
        cur.execute("UPDATE database_connections SET name = 'short' "
                    "WHERE connection_id = %s", (long_name,))
    c.close()
    wait_for(lambda: reg.get("/api/v1/databases/" + long_name).status_code
             == 200, timeout=5, what="fixed row served")
    assert long_name not in refused(reg)
