"""Several listen lines and unix socket listeners: the master opens every
one before fork, every worker serves all of them, a unix socket gets the
mode and owner asked for and is removed at exit, and datachatctl finds
the REST API on whichever listener there is."""
import grp
import json
import os
import pwd
import socket
import stat
import subprocess
import tempfile

import pytest

from conftest import DATACHATD, clean_env, free_port, wait_for


def unix_get(path, url, method="GET", body=None, timeout=10):
    """One HTTP/1.1 request over a unix socket: (status, headers, body)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    data = body.encode() if body is not None else b""
    req = ("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           "Content-Length: %d\r\n" % (method, url, len(data)))
    if body is not None:
        req += "Content-Type: application/json\r\n"
    s.sendall(req.encode() + b"\r\n" + data)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    head, _, payload = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(l.split(": ", 1) for l in lines[1:])
    return status, headers, payload


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="dcl-")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", d])


def test_tcp_and_unix_listeners_all_served(daemon_factory, sockdir):
    api = os.path.join(sockdir, "api.sock")
    port2 = free_port()
    d = daemon_factory(workers=2)
    d.write_conf('listen = "%s mode=0660 group=nogroup"\n'
                 'listen = "127.0.0.1:%d"\n' % (api, port2))
    d.start()
    st = os.stat(api)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == grp.getgrnam("nogroup").gr_gid
    pids = set()

    def both_workers_answer():
        status, h, body = unix_get(api, "/api/v1/health")
        assert status == 200, body
        pids.add(json.loads(body)["pid"])
        return len(pids) == 2

    # which worker accepts is the kernel's choice: ask until both did
    wait_for(both_workers_answer, timeout=20, step=0.01,
             what="both workers answering on the unix socket")
    assert pids == set(d.workers()), pids
    r = d.get("/api/v1/health")
    assert r.status_code == 200
    import requests
    assert requests.get("http://127.0.0.1:%d/api/v1/health" % port2,
                        timeout=5).status_code == 200
    js = json.loads(d.ctl("--json", "status", check=True).stdout)
    assert [(l["address"], l["kind"]) for l in js["listeners"]] == [
        ("127.0.0.1:%d" % d.port, "loopback"), (api, "unix"),
        ("127.0.0.1:%d" % port2, "loopback")]
    assert js["listen"] == "127.0.0.1:%d" % d.port
    # a reload keeps every listener
    d.ctl("reload", "--wait", check=True)
    assert unix_get(api, "/api/v1/health")[0] == 200
    assert d.stop() == 0
    assert not os.path.exists(api), "the unix listener was left behind"


def test_unix_only_with_owner_and_ctl_registry(daemon_factory, sockdir,
                                               registry_env, pg):
    api = os.path.join(sockdir, "only.sock")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"listen": "unix:%s owner=nobody mode=0600" % api})
    d.proc = subprocess.Popen([DATACHATD, "-f", "-c", d.conf_path],
                              env=d.env, stdout=open(d.log_path, "ab"),
                              stderr=subprocess.STDOUT,
                              start_new_session=True)
    wait_for(lambda: unix_get(api, "/api/v1/ready")[0] == 200, timeout=20,
             what="ready over the unix socket")
    st = os.stat(api)
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid
    assert stat.S_IMODE(st.st_mode) == 0o600
    # datachatctl's registry commands reach the API over the unix socket
    r = d.ctl("add", "--name", "u", "--type", "postgresql", "--url", "-",
              stdin=pg.url("postgres") + "\n")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[-1]
    assert cid in d.ctl("list", check=True).stdout
    status, _, body = unix_get(api, "/api/v1/databases/" + cid)
    assert status == 200 and json.loads(body)["name"] == "u"
    assert d.stop() == 0
    assert not os.path.exists(api)


def test_live_unix_listener_refuses_a_second_master(daemon_factory, sockdir):
    api = os.path.join(sockdir, "api.sock")
    d = daemon_factory(workers=1)
    d.write_conf('listen = "%s"\n' % api)
    d.start()
    d2 = daemon_factory(workers=1, conf={"listen": api})
    r = subprocess.run([DATACHATD, "-f", "-c", d2.conf_path], env=d2.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "in use" in r.stderr, r.stderr
    assert unix_get(api, "/api/v1/health")[0] == 200
    d.stop()
    # a stale socket file (a crash) is replaced
    s = socket.socket(socket.AF_UNIX)
    s.bind(api)
    s.close()
    d3 = daemon_factory(workers=1, conf={"listen": api})
    d3.proc = subprocess.Popen([DATACHATD, "-f", "-c", d3.conf_path],
                               env=d3.env, stdout=open(d3.log_path, "ab"),
                               stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_for(lambda: unix_get(api, "/api/v1/health")[0] == 200, timeout=20,
             what="health over the replaced socket")


def test_bad_listen_lines_are_reported(tmp_path):
    conf = tmp_path / "l.conf"
    conf.write_text('listen = 127.0.0.1:8001\n'
                    'listen = "/tmp/x.sock mode=0999"\n'
                    'listen = "127.0.0.1:8002 owner=root"\n'
                    'listen = relative.sock\n')
    r = subprocess.run([DATACHATD, "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"]})
    assert r.returncode == 1
    for line in (2, 3, 4):
        assert ":%d: listen" % line in r.stderr, r.stderr


def test_smart_shutdown_answers_accepted_unix_connection(daemon_factory,
                                                         sockdir):
    """As over TCP: a unix connection accepted before SIGTERM gets its
    reply even when its request comes after the signal."""
    import signal
    import time
    api = os.path.join(sockdir, "api.sock")
    d = daemon_factory(workers=1)
    d.write_conf('listen = "%s"\n' % api)
    d.start()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(api)
    # the worker accepts it: a request on another connection is served after
    assert unix_get(api, "/api/v1/health")[0] == 200
    d.send(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None, "left with a unix connection unserved"
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert d.wait_exit(timeout=10) == 0
    assert not os.path.exists(api)
