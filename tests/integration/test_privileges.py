"""What a PostgreSQL target's role may do beyond reading (issue 11, item
4): found when a worker connects, logged once (by the first worker that
finds it), shown in datachatctl targets, /metrics and the connection's JSON, and
acted on by privileged_targets = allow | warn | refuse.
"""
import json
import uuid

import pytest

from conftest import PG_PASSWORD, clean_env, wait_for

ALL = ["superuser", "createrole", "pg_read_server_files",
       "pg_write_server_files", "pg_execute_server_program",
       "pg_signal_backend"]
PW = "Pr1v-pw"


@pytest.fixture(scope="module")
def roles(pg):
    db = pg.create_db("privs")
    pg.sql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    tag = uuid.uuid4().hex[:8]
    names = {"reader": "reader_" + tag, "signaller": "signaller_" + tag}
    for n in names.values():
        pg.sql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'" % (n, PW))
        pg.sql(db, "GRANT SELECT ON t TO %s" % n)
    pg.sql("postgres", "GRANT pg_signal_backend TO %s" % names["signaller"])
    urls = {"superuser": pg.url(db)}
    for k, n in names.items():
        urls[k] = pg.url(db, user=n, password=PW)
    return urls


def register(d, name, url):
    r = d.post("/api/v1/databases", {"name": name, "database_url": url,
                                     "database_type": "postgresql"})
    assert r.status_code == 201, r.text
    return r.json()["connection_id"]


def query(d, cid):
    q = "SELECT x FROM t"
    return d.post("/api/v1/chat", {"message": q, "sql": q,
                                   "execution_mode": "direct_sql",
                                   "target_database": cid})


def metric_lines(d, cid):
    return sorted(l for l in d.get("/metrics").text.splitlines()
                  if l.startswith("datachatd_target_privileged{target=\"%s\""
                                  % cid))


def ctl_privileges(d, cid):
    js = json.loads(d.ctl("--json", "targets", check=True).stdout)
    return [t["privileges"] for t in js if t["connection_id"] == cid][0]


def test_privileges_are_shown_and_logged_once(daemon_factory, registry_env,
                                              roles):
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(
        wait_ready=True)
    ids = {k: register(d, k, u) for k, u in roles.items()}
    # not connected yet: unknown
    assert d.get("/api/v1/databases/" + ids["superuser"]).json()[
        "role_privileges"] is None
    assert ctl_privileges(d, ids["superuser"]) is None
    for cid in ids.values():
        assert query(d, cid).status_code == 200    # warn: they still run
    j = d.get("/api/v1/databases/" + ids["superuser"]).json()
    assert j["role_privileges"] == ALL
    assert d.get("/api/v1/databases/" + ids["reader"]).json()[
        "role_privileges"] == []
    assert d.get("/api/v1/databases/" + ids["signaller"]).json()[
        "role_privileges"] == ["pg_signal_backend"]
    assert ctl_privileges(d, ids["superuser"]) == ", ".join(ALL)
    assert ctl_privileges(d, ids["reader"]) == "none"
    assert ctl_privileges(d, ids["signaller"]) == "pg_signal_backend"
    table = d.ctl("targets", check=True).stdout
    assert "privileges" in table.splitlines()[0] and PG_PASSWORD not in table
    assert metric_lines(d, ids["superuser"]) == sorted(
        'datachatd_target_privileged{target="%s",privilege="%s"} 1'
        % (ids["superuser"], p) for p in ALL)
    assert metric_lines(d, ids["reader"]) == [
        'datachatd_target_privileged{target="%s",privilege="none"} 0'
        % ids["reader"]]
    # a new connection looks again, but the log says it once
    d.ctl("invalidate", ids["superuser"], check=True)
    assert query(d, ids["superuser"]).status_code == 200
    lines = [l for l in d.log().splitlines()
             if "its role can do more than read" in l]
    assert len([l for l in lines if ids["superuser"] in l]) == 1, lines
    assert len([l for l in lines if ids["signaller"] in l]) == 1, lines
    assert not [l for l in lines if ids["reader"] in l], lines
    assert "privileged_targets = warn" in lines[0]
    assert PG_PASSWORD not in d.log() and PW not in d.log()


def test_refuse_answers_403_and_spares_read_only_roles(daemon_factory,
                                                       registry_env, roles):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"privileged_targets": "refuse"}).start(
                           wait_ready=True)
    ids = {k: register(d, k, u) for k, u in roles.items()}
    for k in ("superuser", "signaller"):
        for _ in range(2):
            r = query(d, ids[k])
            assert r.status_code == 403, r.text
            detail = r.json()["detail"]
            assert "privileged_targets = refuse" in detail, detail
            assert "pg_signal_backend" in detail, detail
            assert PG_PASSWORD not in r.text and PW not in r.text
    assert query(d, ids["reader"]).status_code == 200
    # what was refused is still shown
    assert d.get("/api/v1/databases/" + ids["superuser"]).json()[
        "role_privileges"] == ALL


def test_allow_runs_and_logs_at_info(daemon_factory, registry_env, roles):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"privileged_targets": "allow"}).start(
                           wait_ready=True)
    cid = register(d, "su", roles["superuser"])
    assert query(d, cid).status_code == 200
    lines = [l for l in d.log().splitlines()
             if "its role can do more than read" in l]
    assert len(lines) == 1 and "privileged_targets" not in lines[0], lines


def test_logged_once_whatever_the_workers(daemon_factory, registry_env,
                                          roles):
    d = daemon_factory(workers=2, env=clean_env(registry_env)).start(
        wait_ready=True)
    cid = register(d, "su", roles["superuser"])

    def both_connected():
        assert query(d, cid).status_code == 200
        ws = json.loads(d.ctl("--json", "workers", check=True).stdout)
        return len(ws) == 2 and all(w["target_connections"] > 0 for w in ws)

    # one request at a time on a new client connection each: the kernel
    # hands them to either worker, and each worker connects on its own
    wait_for(both_connected, timeout=20, step=0.01,
             what="both workers connected to the target")
    lines = [l for l in d.log().splitlines()
             if "its role can do more than read" in l and cid in l]
    assert len(lines) == 1, lines
    assert d.get("/api/v1/databases/" + cid).json()["role_privileges"] == ALL
