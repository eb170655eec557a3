"""Access control: API tokens (hashes in the system database, shared by
every instance on it), roles on every route of the route table, 401 and
403, the failed-attempt limit, the secure default for non-loopback
listeners, datachatctl's token commands and the audit log.  Real
daemons, real PostgreSQL."""
import glob
import http.client
import os
import signal
import socket
import re
import subprocess
import time

import pytest
import requests

from conftest import DATACHATD, ROOT, clean_env, free_port, wait_for

# What the issue says each role may do, route by route.  Every route of
# the route tables (src/api/*.c) must be listed here, so a new route
# cannot arrive without its role being checked against the daemon.
EXPECTED_ROLE = {
    ("GET", "/"): "none",
    ("GET", "/api/v1/health"): "none",
    ("GET", "/api/v1/ready"): "none",
    ("GET", "/health"): "none",
    ("GET", "/metrics"): "read",          # metrics_auth = required
    ("GET", "/api/v1/metrics"): "read",
    ("GET", "/api/v1/databases"): "read",
    ("POST", "/api/v1/databases"): "admin",
    ("GET", "/api/v1/databases/{id}"): "read",
    ("PATCH", "/api/v1/databases/{id}"): "admin",
    ("DELETE", "/api/v1/databases/{id}"): "admin",
    ("PUT", "/api/v1/databases/{id}/default"): "admin",
    ("GET", "/api/v1/databases/{id}/schema"): "read",
    ("POST", "/api/v1/chat"): "query",
    ("GET", "/api/v1/tools"): "read",
    ("POST", "/api/v1/tools/execute"): "query",
    ("GET", "/api/v1/system/status"): "read",
    ("POST", "/api/v1/system/initialize"): "admin",
    ("POST", "/api/v1/system/reset"): "admin",
    ("POST", "/api/v1/system/entry-event"): "query",
    ("GET", "/api/v1/conversations"): "query",
    ("PUT", "/api/v1/conversations/{id}"): "query",
    ("DELETE", "/api/v1/conversations/{id}"): "query",
    ("POST", "/api/v1/feedback"): "query",
    ("GET", "/api/v1/feedback/summary"): "read",
    # DataPoints: reading them is read, making or changing them admin
    ("GET", "/api/v1/datapoints/pending"): "read",
    ("POST", "/api/v1/datapoints/pending/bulk-approve"): "admin",
    ("POST", "/api/v1/datapoints/pending/{id}/approve"): "admin",
    ("POST", "/api/v1/datapoints/pending/{id}/reject"): "admin",
    ("POST", "/api/v1/datapoints/generate"): "admin",
    ("GET", "/api/v1/datapoints/generate/jobs/{id}"): "read",
    ("GET", "/api/v1/datapoints/generate/profiles/{id}"): "read",
    ("GET", "/api/v1/datapoints"): "read",
    ("POST", "/api/v1/datapoints"): "admin",
    ("GET", "/api/v1/datapoints/{id}"): "read",
    ("PUT", "/api/v1/datapoints/{id}"): "admin",
    ("DELETE", "/api/v1/datapoints/{id}"): "admin",
    ("POST", "/api/v1/sync"): "admin",
    ("GET", "/api/v1/sync/status"): "read",
    ("POST", "/api/v1/databases/{id}/profile"): "admin",
    ("GET", "/api/v1/profiling/jobs/{id}"): "read",
    ("GET", "/api/v1/profiling/jobs/connection/{id}/latest"): "read",
    ("GET", "/api/v1/profiling/profiles/{id}/tables"): "read",
    ("GET", "/ws/chat"): "query",
    ("GET", "/api/v1/ws/chat"): "query",
}
RANK = {"none": 0, "read": 1, "query": 2, "admin": 3}
ROLE_NAMES = {"DC_ROLE_NONE": "none", "DC_ROLE_READ": "read",
              "DC_ROLE_QUERY": "query", "DC_ROLE_ADMIN": "admin",
              "DC_ROLE_METRICS": "read"}


def route_table():
    """(method, pattern, role) of every route, read from src/api/*.c."""
    routes = []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "api", "*.c"))):
        text = open(path).read()
        for m in re.finditer(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*'
                             r'(DC_ROLE_\w+)\s*\}', text):
            routes.append((m.group(1), m.group(2), ROLE_NAMES[m.group(3)]))
    return routes


def add_token(d, name, role, expires=None):
    args = ["token", "add", name, "--role", role]
    if expires:
        args += ["--expires", expires]
    r = d.ctl(*args)
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert re.fullmatch(r"dcat_[A-Za-z0-9_-]{44}", tok), tok
    return tok


class Handshake:
    """The head of a WebSocket handshake's answer (the socket is dropped)."""

    def __init__(self, status, headers, body):
        self.status_code, self.headers, self.text = status, headers, body

    def json(self):
        import json
        return json.loads(self.text)


def handshake(d, path, headers):
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path, d.port)
        req += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        s.sendall(req.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        hdrs = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
        status = int(lines[0].split()[1])
        n = int(hdrs.get("Content-Length", "0")) if status != 101 else 0
        while len(rest) < n:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        return Handshake(status, hdrs, rest.decode(errors="replace"))


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


@pytest.fixture
def authd(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"auth": "required"})
    d.start(wait_ready=True)
    d.sysdb = registry_env["_sysdb"]
    d.pg = pg
    return d


def test_every_route_has_the_role_the_issue_gives_it():
    table = route_table()
    assert len(table) >= 14
    for method, pattern, role in table:
        assert (method, pattern) in EXPECTED_ROLE, \
            "route %s %s has no expected role in this test" % (method, pattern)
        assert role == EXPECTED_ROLE[(method, pattern)], (method, pattern, role)


def test_every_role_against_every_route(authd):
    toks = {role: add_token(authd, "t-" + role, role)
            for role in ("read", "query", "admin")}
    # a real connection to point {id} at
    r = authd.post("/api/v1/databases", {
        "name": "target", "database_url": authd.pg.url("postgres"),
        "database_type": "postgresql"}, headers=bearer(toks["admin"]))
    assert r.status_code == 201, r.text
    cid = r.json()["connection_id"]
    bodies = {
        ("POST", "/api/v1/databases"): {"name": "x", "database_type": "postgresql",
                                        "database_url": "postgresql://u@127.0.0.1:1/x"},
        ("PATCH", "/api/v1/databases/{id}"): {"description": "d"},
        ("PUT", "/api/v1/databases/{id}/default"): {"is_default": True},
        ("POST", "/api/v1/chat"): {"execution_mode": "direct_sql", "sql": "SELECT 1",
                                   "target_database": cid},
        ("POST", "/api/v1/tools/execute"): {"name": "list_tables",
                                            "arguments": {}, "target_database": cid},
        ("POST", "/api/v1/system/initialize"): {},
        ("POST", "/api/v1/system/reset"): {},
    }
    checked = 0
    # the DELETE last: it removes the target the others point at
    for method, pattern, role in sorted(route_table(), key=lambda x: x[0] == "DELETE"):
        path = pattern.replace("{id}", cid)
        body = bodies.get((method, pattern))
        ws = pattern.endswith("/ws/chat")
        extra = {"Upgrade": "websocket", "Connection": "Upgrade",
                 "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} if ws else {}

        def call(tok):
            h = dict(extra)
            if tok:
                h.update(bearer(tok))
            if ws:
                return handshake(authd, path, h)
            return requests.request(method, authd.url(path), json=body,
                                    headers=h, timeout=30)

        anon = call(None)
        if role == "none":
            assert anon.status_code not in (401, 403), (method, path, anon.text)
        else:
            assert anon.status_code == 401, (method, path, anon.status_code)
            assert anon.headers["WWW-Authenticate"].startswith("Bearer")
            assert anon.json()["detail"]
        for have in ("read", "query", "admin"):
            r = call(toks[have])
            if RANK[have] >= RANK[role]:
                assert r.status_code not in (401, 403), \
                    (method, path, have, r.status_code, r.text)
            else:
                assert r.status_code == 403, (method, path, have, r.status_code)
                assert "error=\"insufficient_scope\"" in r.headers["WWW-Authenticate"]
                assert role in r.json()["detail"]
        checked += 1
    assert checked == len(route_table())


def test_revoked_and_expired_tokens(authd):
    tok = add_token(authd, "short", "read", expires="2s")
    assert authd.get("/api/v1/databases", headers=bearer(tok)).status_code == 200
    time.sleep(2.2)
    r = authd.get("/api/v1/databases", headers=bearer(tok))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]

    tok = add_token(authd, "revoked", "read")
    assert authd.get("/api/v1/databases", headers=bearer(tok)).status_code == 200
    assert authd.ctl("token", "revoke", "revoked").returncode == 0
    # every worker refuses it at once: the master published before answering
    for _ in range(8):
        r = requests.get(authd.url("/api/v1/databases"), timeout=10,
                         headers=dict(bearer(tok), Connection="close"))
        assert r.status_code == 401
    assert authd.ctl("token", "revoke", "revoked").returncode == 1

    lst = authd.ctl("--json", "token", "list")
    assert lst.returncode == 0
    assert '"short"' in lst.stdout and '"revoked"' not in lst.stdout
    assert tok not in lst.stdout
    # the system database holds hashes only
    rows = authd.pg.sql(authd.sysdb, "SELECT encode(token_sha256, 'hex') FROM "
                        "datachatd_api_tokens")
    assert rows and all(len(r[0]) == 64 for r in rows)


def test_token_add_refuses_bad_input(authd):
    assert authd.ctl("token", "add", "a b", "--role", "read").returncode == 1
    assert authd.ctl("token", "add", "x", "--role", "root").returncode == 1
    r = authd.ctl("token", "add", "x")
    assert r.returncode == 1 and "--role" in r.stderr
    r = authd.ctl("token", "add", "x", "--role", "read", "--expires", "yesterday-ish")
    assert r.returncode == 1 and "expiry" in r.stderr
    r = authd.ctl("token", "add", "x", "--role", "read", "--expires", "2001-01-01")
    assert r.returncode == 1 and "past" in r.stderr
    add_token(authd, "x", "read")
    r = authd.ctl("token", "add", "x", "--role", "read")
    assert r.returncode == 1 and "exists" in r.stderr


def test_tokens_shared_by_two_instances(pg, daemon_factory, registry_env):
    a = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"auth": "required"}).start(wait_ready=True)
    b = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"auth": "required"}).start(wait_ready=True)
    tok = add_token(a, "shared", "admin")
    wait_for(lambda: b.get("/api/v1/databases", headers=bearer(tok)).status_code == 200,
             timeout=5, what="instance b accepts a's token")
    assert b.ctl("token", "revoke", "shared").returncode == 0
    wait_for(lambda: a.get("/api/v1/databases", headers=bearer(tok)).status_code == 401,
             timeout=5, what="instance a refuses the token b revoked")


def get_from(d, source, path, headers):
    """GET path from a chosen loopback source address (127.0.0.2 ...)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10,
                                   source_address=(source, 0))
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def test_failed_attempts_are_limited_per_address(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"auth": "required", "auth_failure_limit": "5"})
    d.start(wait_ready=True)
    good = add_token(d, "good", "read")
    bad = bearer("dcat_" + "A" * 44)
    codes = [get_from(d, "127.0.0.3", "/api/v1/databases", bad)[0]
             for _ in range(7)]
    assert codes == [401] * 5 + [429] * 2, codes
    st, h, body = get_from(d, "127.0.0.3", "/api/v1/databases", bearer(good))
    assert st == 429, "a limited address is refused, whatever its token"
    assert 0 < int(h["Retry-After"]) <= 60
    assert b"too many failed" in body
    # another address is not affected, and open routes stay open
    assert get_from(d, "127.0.0.4", "/api/v1/databases", bearer(good))[0] == 200
    assert get_from(d, "127.0.0.3", "/api/v1/health", {})[0] == 200
    # a missing token is not a guess: it does not count
    for _ in range(8):
        assert get_from(d, "127.0.0.5", "/api/v1/databases", {})[0] == 401


def test_websocket_handshake_token_sources(authd):
    tok = add_token(authd, "ws", "read")
    up = {"Upgrade": "websocket", "Connection": "Upgrade"}
    # the query parameter and the subprotocol count only for a handshake
    r = authd.get("/api/v1/databases?access_token=" + tok)
    assert r.status_code == 401
    r = authd.get("/api/v1/databases?access_token=" + tok, headers=up)
    assert r.status_code == 200
    r = authd.get("/api/v1/databases", headers=dict(
        up, **{"Sec-WebSocket-Protocol": "bearer, " + tok}))
    assert r.status_code == 200
    r = authd.get("/api/v1/databases", headers=dict(
        up, **{"Sec-WebSocket-Protocol": "bearer, dcat_" + "B" * 44}))
    assert r.status_code == 401
    assert tok not in authd.log()


def test_metrics_auth_off_opens_metrics_only(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"auth": "required", "metrics_auth": "off"})
    d.start(wait_ready=True)
    assert d.get("/metrics").status_code == 200
    assert d.get("/api/v1/databases").status_code == 401


def auth_counters(d):
    text = d.get("/metrics").text
    checks = re.search(r"^datachatd_auth_checks_total (\S+)$", text, re.M)
    secs = re.search(r"^datachatd_auth_check_seconds_sum (\S+)$", text, re.M)
    return float(checks.group(1)), float(secs.group(1))


def test_metrics_count_token_checks(pg, daemon_factory, registry_env):
    """/metrics counts each check of a token and the time it took (what
    scripts/bench-registry puts against the workers' CPU time); open
    routes and auth = off check nothing."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"auth": "required", "metrics_auth": "off"})
    d.start(wait_ready=True)
    tok = add_token(d, "counted", "read")
    c0, s0 = auth_counters(d)
    for _ in range(3):
        assert d.get("/api/v1/databases", headers=bearer(tok)).status_code == 200
    assert d.get("/api/v1/databases").status_code == 401
    assert d.get("/api/v1/health").status_code == 200
    c1, s1 = auth_counters(d)
    assert c1 - c0 == 4, (c0, c1)
    assert s1 > s0
    d.settings.pop("auth")
    d.write_conf()
    d.send(signal.SIGHUP)
    wait_for(lambda: d.get("/api/v1/databases").status_code == 200 and
             len(d.workers()) == 1, timeout=30,
             what="auth off after the reload, the old worker gone")
    c2, _ = auth_counters(d)
    for _ in range(3):
        assert d.get("/api/v1/databases").status_code == 200
    assert auth_counters(d)[0] == c2


def test_datachatctl_registry_commands_work_with_auth(authd):
    r = authd.ctl("add", "--name", "via-ctl", "--type", "postgresql", "--url", "-",
                  stdin=authd.pg.url("postgres") + "\n")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[-1]
    assert authd.ctl("list").returncode == 0
    assert authd.ctl("remove", cid).returncode == 0
    log = authd.log()
    assert re.search(r"audit: connection create id=%s .*by datachatctl from" % cid, log)
    assert re.search(r"audit: datachatctl token issued to control socket "
                     r"\(uid \d+, pid \d+\)", log)
    # datachatctl's token is its own, never written to the system database
    rows = authd.pg.sql(authd.sysdb, "SELECT name FROM datachatd_api_tokens")
    assert ("datachatctl",) not in rows


def test_audit_lines_name_the_token_and_the_address(authd):
    tok = add_token(authd, "auditor", "admin")
    r = authd.post("/api/v1/databases", {
        "name": "audited", "database_url": authd.pg.url("postgres"),
        "database_type": "postgresql"}, headers=bearer(tok))
    assert r.status_code == 201
    cid = r.json()["connection_id"]
    assert authd.put("/api/v1/databases/%s/default" % cid, {"is_default": True},
                     headers=bearer(tok)).status_code == 204
    assert authd.delete("/api/v1/databases/" + cid, headers=bearer(tok)).status_code == 204
    assert authd.ctl("token", "revoke", "auditor").returncode == 0
    log = authd.log()
    assert re.search(r"audit: token add name=auditor role=admin expires=never "
                     r"by control socket \(uid \d+, pid \d+\)", log)
    for what in ("create", "default", "delete"):
        assert re.search(r"audit: connection %s id=%s .*by auditor from 127\.0\.0\.1"
                         % (what, cid), log), what
    assert re.search(r"audit: token revoke name=auditor by control socket", log)
    assert tok not in log and authd.pg.url("postgres") not in log


def test_registry_quota_per_token(pg, daemon_factory, registry_env):
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"auth": "required", "registry_token_quota": "2"})
    d.start(wait_ready=True)
    one, two = add_token(d, "one", "admin"), add_token(d, "two", "admin")

    def create(tok, name):
        return d.post("/api/v1/databases", {
            "name": name, "database_url": pg.url("postgres"),
            "database_type": "postgresql"}, headers=bearer(tok))
    a = create(one, "a")
    assert a.status_code == 201
    assert create(one, "b").status_code == 201
    r = create(one, "c")
    assert r.status_code == 507
    assert "quota" in r.json()["detail"] and "registry_token_quota" in r.json()["detail"]
    # another token still has room, and deleting frees one's
    assert create(two, "d").status_code == 201
    assert d.delete("/api/v1/databases/" + a.json()["connection_id"],
                    headers=bearer(one)).status_code == 204
    assert create(one, "e").status_code == 201
    # the operator's datachatctl has no quota
    for i in range(3):
        r = d.ctl("add", "--name", "ctl%d" % i, "--type", "postgresql", "--url", "-",
                  stdin=pg.url("postgres") + "\n")
        assert r.returncode == 0, r.stderr


def write_conf(tmp_path, conf):
    port = free_port()
    path = os.path.join(str(tmp_path), "c-%d.conf" % port)
    with open(path, "w") as f:
        for k, v in conf.items():
            f.write('%s = "%s"\n' % (k, v.replace("PORT", str(port))))
    return path


def run_datachatd(tmp_path, conf, *opts):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
    return subprocess.run([DATACHATD] + list(opts) + ["-c", write_conf(tmp_path, conf)],
                          capture_output=True, text=True, env=env, timeout=30)


def test_non_loopback_listener_needs_auth(tmp_path, daemon_factory):
    t = run_datachatd(tmp_path, {"listen": "0.0.0.0:PORT"}, "-t")
    assert t.returncode == 1
    assert "is not a loopback address and auth is not set" in t.stderr
    assert "auth = required" in t.stderr and "auth = off" in t.stderr
    t = run_datachatd(tmp_path, {"listen": "0.0.0.0:PORT", "auth": "maybe"}, "-t")
    assert t.returncode == 1 and "required, off or empty" in t.stderr
    for ok in ({"listen": "0.0.0.0:PORT", "auth": "required"},
               {"listen": "127.0.0.2:PORT"}, {"listen": "[::1]:PORT"}):
        assert run_datachatd(tmp_path, ok, "-t").returncode == 0, ok

    # the daemon itself refuses to start, and says why
    p = run_datachatd(tmp_path, {"listen": "0.0.0.0:PORT"}, "-f")
    assert p.returncode == 1
    assert "not starting" in p.stderr and "not a loopback address" in p.stderr

    # an explicit auth = off starts, with a warning at every start and reload
    d = daemon_factory(workers=1, conf={"auth": "off"})
    d.settings["listen"] = "0.0.0.0:%d" % d.port
    d.write_conf()
    d.start()
    assert "auth = off on 0.0.0.0" in d.log()
    assert d.get("/api/v1/databases").status_code != 401
    d.send(signal.SIGHUP)
    wait_for(lambda: d.log().count("auth = off on 0.0.0.0") >= 2, timeout=10,
             what="the warning again after a reload")
