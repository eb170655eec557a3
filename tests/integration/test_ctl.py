"""datachatctl against a running daemon: every command's output and exit
status, registry administration through the REST path, key rotation,
and /metrics."""
import json
import os
import re
import signal
import stat
import subprocess

import pytest
import requests
from cryptography.fernet import Fernet, MultiFernet

from conftest import DATACHATCTL, PG_PASSWORD, clean_env, wait_for


@pytest.fixture
def d(pg, daemon_factory, registry_env):
    dm = daemon_factory(workers=2, env=clean_env(registry_env))
    dm.start(wait_ready=True)
    dm.pg = pg
    dm.sysdb = registry_env["_sysdb"]
    dm.key = registry_env["DATABASE_CREDENTIALS_KEY"]
    return dm


def test_socket_mode_and_status(d):
    st = os.stat(d.ctl_sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    r = d.ctl("status", check=True)
    assert "version: " in r.stdout and "workers_alive: 2" in r.stdout
    assert "registry.state: fresh" in r.stdout
    js = json.loads(d.ctl("--json", "status", check=True).stdout)
    assert js["pid"] == d.proc.pid
    assert js["workers_configured"] == 2 and js["system_database"] == "connected"
    assert js["registry"]["generation"] >= 1


def test_ctl_reads_socket_from_config(d):
    r = d.ctl("-c", d.conf_path, "status", sock=False)
    assert r.returncode == 0, r.stderr


def test_workers_and_targets(d):
    for _ in range(5):
        d.get("/api/v1/health")
    r = d.ctl("workers", check=True)
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["slot", "pid", "state"]
    assert len(lines) == 3
    js = json.loads(d.ctl("--json", "workers", check=True).stdout)
    assert sorted(w["pid"] for w in js) == d.workers()
    assert sum(w["requests"] for w in js) >= 5
    d.post("/api/v1/databases", {"name": "t1", "database_type": "postgresql",
                                 "database_url": d.pg.url("postgres")})
    js = json.loads(d.ctl("--json", "targets", check=True).stdout)
    assert [t["name"] for t in js] == ["t1"]
    assert PG_PASSWORD not in d.ctl("targets").stdout


def test_add_with_url_on_stdin_then_rest_sees_it(d):
    url = d.pg.url("postgres")
    r = d.ctl("add", "--name", "from-ctl", "--type", "postgresql", "--url", "-",
              "--tag", "a", "--tag", "b", "--description", "via stdin",
              "--default", stdin=url + "\n")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[-1]
    g = d.get("/api/v1/databases/" + cid)
    assert g.status_code == 200
    e = g.json()
    assert e["name"] == "from-ctl" and e["tags"] == ["a", "b"]
    assert e["is_default"] is True and e["description"] == "via stdin"
    lst = d.ctl("list", check=True).stdout
    assert cid in lst and PG_PASSWORD not in lst
    assert d.ctl("rename", cid, "renamed", check=True)
    assert d.get("/api/v1/databases/" + cid).json()["name"] == "renamed"
    other = d.ctl("add", "--name", "o", "--type", "postgresql", "--url", url,
                  check=True).stdout.split()[-1]
    d.ctl("set-default", other, check=True)
    assert d.get("/api/v1/databases/" + other).json()["is_default"] is True
    d.ctl("remove", other, check=True)
    assert d.get("/api/v1/databases/" + other).status_code == 404
    # the REST validation applies: bad type, bad id, unknown id
    r = d.ctl("add", "--name", "x", "--type", "oracle", "--url", url)
    assert r.returncode == 1 and "oracle" in r.stderr
    r = d.ctl("remove", "not-a-uuid")
    assert r.returncode == 1 and "Invalid connection ID." in r.stderr
    r = d.ctl("remove", "6c0a3c2e-2c49-4b7e-9d2c-000000000000")
    assert r.returncode == 1 and "not found" in r.stderr
    r = d.ctl("add", "--name", "x", "--type", "postgresql",
              "--url", d.pg.url("postgres", password="nope-pw-1"))
    assert r.returncode == 1 and "nope-pw-1" not in r.stderr + r.stdout


def test_usage_and_errors(d, tmp_path):
    r = d.ctl("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = d.ctl("add", "--name", "x")
    assert r.returncode == 2
    r = d.ctl("stop", "sideways")
    assert r.returncode == 1 and "usage" in r.stderr
    r = d.ctl("invalidate", "xyz")
    assert r.returncode == 1
    r = subprocess.run([DATACHATCTL, "-s", str(tmp_path / "nope.sock"), "status"],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "no control socket" in r.stderr
    # a socket file nobody listens on: that is "not running"
    import socket as so
    dead = str(tmp_path / "dead.sock")
    s = so.socket(so.AF_UNIX)
    s.bind(dead)
    s.close()
    r = subprocess.run([DATACHATCTL, "-s", dead, "status"],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "not running" in r.stderr, r.stderr
    r = subprocess.run([DATACHATCTL, "-s", dead, "remove"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "usage: remove ID" in r.stderr
    r = subprocess.run([DATACHATCTL], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([DATACHATCTL, "genkey"], capture_output=True, text=True)
    assert r.returncode == 0
    Fernet(r.stdout.strip().encode())  # a valid key


def raw_ctl(d, request):
    """One request on the control socket, as any client could send it."""
    import socket as so
    s = so.socket(so.AF_UNIX)
    s.settimeout(10)
    s.connect(d.ctl_sock)
    s.sendall(request + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


def test_master_checks_requests_against_the_command_table(d):
    a = raw_ctl(d, b'{"cmd": "invalidate", "args": []}')
    assert a == {"ok": False, "error": "usage: invalidate ID|all"}
    a = raw_ctl(d, b'{"cmd": "status", "args": ["extra"]}')
    assert a == {"ok": False, "error": "usage: status"}
    a = raw_ctl(d, b'{"cmd": "stop", "args": [1]}')
    assert not a["ok"] and "must be a string" in a["error"]
    # registry and local commands are datachatctl's, not the master's
    for cmd in (b"list", b"genkey", b"frobnicate"):
        a = raw_ctl(d, b'{"cmd": "%s"}' % cmd)
        assert not a["ok"] and "unknown command" in a["error"], a
    a = raw_ctl(d, b'{"cmd": "workers"}')
    assert a["ok"] and len(a["data"]) == 2
    assert d.proc.poll() is None


def test_reload_wait_and_resync(d):
    old = d.workers()
    r = d.ctl("reload", "--wait", check=True)
    assert "generation" in r.stdout
    new = d.workers()
    assert len(new) == 2 and not set(new) & set(old)
    js = json.loads(d.ctl("--json", "workers", check=True).stdout)
    gen = json.loads(d.ctl("--json", "status", check=True).stdout)["registry"]["generation"]
    assert all(w["generation"] == gen and w["state"] == "running" for w in js)
    r = d.ctl("resync", check=True)
    assert "generation" in r.stdout
    d.ctl("log-reopen", check=True)
    d.write_conf("bad line here\n")
    r = d.ctl("reload")
    assert r.returncode == 1 and "problems" in r.stderr
    assert d.workers() == new


def test_stop_via_ctl(d):
    d.ctl("stop", "fast", check=True)
    assert d.wait_exit(20) == 0
    assert not os.path.exists(d.ctl_sock)


def test_second_master_refused_on_live_socket(d, daemon_factory):
    d2 = daemon_factory(workers=1)
    d2.settings["control_socket"] = d.ctl_sock
    d2.write_conf()
    from conftest import DATACHATD
    r = subprocess.run([DATACHATD, "-f", "-c", d2.conf_path], env=d2.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "in use" in r.stderr
    assert d.ctl("status").returncode == 0


def test_stale_socket_is_replaced(pg, daemon_factory, registry_env):
    dm = daemon_factory(workers=1, env=clean_env(registry_env))
    # a socket file nobody listens on, as a crash leaves it
    import socket as so
    s = so.socket(so.AF_UNIX)
    s.bind(dm.ctl_sock)
    s.close()
    dm.start(wait_ready=True)
    assert dm.ctl("status").returncode == 0


def test_rotate_key_then_restart_with_only_new_key(pg, daemon_factory, registry_env):
    old = registry_env["DATABASE_CREDENTIALS_KEY"]
    env = clean_env(registry_env)
    dm = daemon_factory(workers=2, env=env).start(wait_ready=True)
    ids = []
    for i in range(3):
        r = dm.post("/api/v1/databases", {"name": "r%d" % i, "database_type": "postgresql",
                                          "database_url": pg.url("postgres")})
        ids.append(r.json()["connection_id"])
    dm.stop()
    new = Fernet.generate_key().decode()
    env2 = dict(env, DATABASE_CREDENTIALS_KEY=new + "," + old)
    dm2 = daemon_factory(workers=2, env=env2).start(wait_ready=True)
    r = dm2.ctl("rotate-key", check=True)
    assert "rotated: 3" in r.stdout
    dm2.stop()
    dm3 = daemon_factory(workers=2, env=dict(env, DATABASE_CREDENTIALS_KEY=new))
    dm3.start(wait_ready=True)
    assert dm3.get("/api/v1/ready").json()["registry"]["undecryptable_rows"] == 0
    for cid in ids:
        assert dm3.get("/api/v1/databases/" + cid).status_code == 200
    rows = pg.sql(registry_env["_sysdb"], "SELECT database_url_encrypted FROM "
                  "database_connections")
    for (tok,) in rows:
        assert Fernet(new.encode()).decrypt(tok.encode()).decode() == pg.url("postgres")
        with pytest.raises(Exception):
            Fernet(old.encode()).decrypt(tok.encode())
    assert new not in dm2.log() and old not in dm2.log()


def parse_prometheus(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or re.match(r"# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$', line)
        assert m, "not prometheus text: %r" % line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def test_metrics_parse_and_move(d):
    r = d.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    before = parse_prometheus(r.text)
    key = 'datachatd_http_requests_total{method="GET",route="/api/v1/health",status="2xx"}'
    for _ in range(7):
        d.get("/api/v1/health")
    d.get("/api/v1/nothing")
    after = parse_prometheus(d.get("/metrics").text)
    assert after[key] - before.get(key, 0) == 7
    assert after['datachatd_http_requests_total{method="any",route="unmatched",status="4xx"}'] >= 1
    assert after["datachatd_http_request_duration_seconds_count"] > \
        before["datachatd_http_request_duration_seconds_count"]
    assert after['datachatd_http_request_duration_seconds_bucket{le="+Inf"}'] == \
        after["datachatd_http_request_duration_seconds_count"]
    assert after["datachatd_workers"] == 2
    assert after["datachatd_registry_stale"] == 0
    assert after["datachatd_system_database_up"] == 1
    assert after["datachatd_registry_resyncs_total"] >= 1
    gen = after["datachatd_registry_generation"]
    d.post("/api/v1/databases", {"name": "m", "database_type": "postgresql",
                                 "database_url": d.pg.url("postgres")})
    later = parse_prometheus(d.get("/api/v1/metrics").text)
    assert later["datachatd_registry_generation"] > gen
    assert later["datachatd_registry_entries"] == 1


def test_targets_and_metrics_count_connections_and_queries(d):
    cid = d.post("/api/v1/databases", {"name": "q", "database_type": "postgresql",
                                       "database_url": d.pg.url("postgres")}).json()["connection_id"]
    for i in range(6):
        r = d.post("/api/v1/chat", {"message": "SELECT %d" % i, "execution_mode": "direct_sql",
                                    "target_database": cid})
        assert r.status_code == 200
    r = d.post("/api/v1/chat", {"message": "SELECT nope", "execution_mode": "direct_sql",
                                "target_database": cid})
    assert r.status_code == 400 and "Query execution failed" in r.json()["detail"]
    seen = {}

    def agree():
        """the daemon's count and the server's agree (the other worker
        may still be connecting to warm the target up)"""
        js = json.loads(d.ctl("--json", "targets", check=True).stdout)
        seen["t"] = [x for x in js if x["connection_id"] == cid][0]
        seen["live"] = d.pg.sql(
            "postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
            "application_name = 'datachatd' AND datname = 'postgres'")[0][0]
        return seen["t"]["open_connections"] == seen["live"]
    wait_for(agree, timeout=10, what="open connections counted alike")
    t, live = seen["t"], seen["live"]
    assert 1 <= t["open_connections"] <= 2 * 4
    m = parse_prometheus(d.get("/metrics").text)
    # the six, and the function policy's catalog read on each worker (the
    # guard reads pg_proc once per worker, at first use or when a peer
    # started using the target)
    assert 6 <= m['datachatd_queries_total{target="%s",outcome="ok"}' % cid] <= 6 + 2
    assert m['datachatd_queries_total{target="%s",outcome="error"}' % cid] == 1
    assert m['datachatd_target_connections_open{target="%s"}' % cid] == live
    # invalidate closes them (pg_stat_activity agrees)
    d.ctl("invalidate", cid, check=True)
    wait_for(lambda: d.pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                              "application_name = 'datachatd' AND datname = 'postgres'")[0][0] == 0,
             what="connections closed by invalidate")
    d.ctl("invalidate", "all", check=True)
