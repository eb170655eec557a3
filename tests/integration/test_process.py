"""The process model: config check, workers, respawn, signals, shutdown,
and the HTTP layer's error handling, against the real daemon."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import DATACHATD, child_pids, fernet_key, wait_for


def run_t(conf_text, tmp_path, env=None):
    path = tmp_path / "check.conf"
    path.write_text(conf_text)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
    e.update(env or {})
    return subprocess.run([DATACHATD, "-t", "-c", str(path)], env=e,
                          capture_output=True, text=True, timeout=30)


def test_config_check_good(tmp_path):
    r = run_t("# comment\nlisten = 127.0.0.1:8123\nworkers = 3\n"
              "log_level = debug\nmax_rows = 50\n", tmp_path,
              env={"DATABASE_CREDENTIALS_KEY": fernet_key()})
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_config_check_reports_every_problem_with_its_line(tmp_path):
    r = run_t("listen = 127.0.0.1:8123\n"          # 1 ok
              "bogus_key = 1\n"                    # 2 unknown key
              "workers = lots\n"                   # 3 bad value
              "max_rows = -5\n"                    # 4 out of range
              "just some words\n"                  # 5 no '='
              "log_level = loud\n", tmp_path)      # 6 bad level
    assert r.returncode == 1
    for line in (2, 3, 4, 5, 6):
        assert ":%d:" % line in r.stderr, r.stderr
    assert "bogus_key" in r.stderr


def test_config_check_bad_listen(tmp_path):
    for bad in ("127.0.0.1", "127.0.0.1:99999", "not an address:80",
                "[::1:80"):
        r = run_t('listen = "%s"\n' % bad, tmp_path)
        assert r.returncode == 1, bad
        assert ":1:" in r.stderr and "listen" in r.stderr, r.stderr


def test_config_check_unreadable_resolv_conf(tmp_path):
    r = run_t('resolv_conf = "%s"\n' % (tmp_path / "nope.conf"), tmp_path)
    assert r.returncode == 1
    assert "resolv_conf: cannot read" in r.stderr, r.stderr
    assert "No such file" in r.stderr, r.stderr
    good = tmp_path / "resolv.conf"
    good.write_text("nameserver 127.0.0.1\n")
    r = run_t('resolv_conf = "%s"\n' % good, tmp_path,
              env={"DATABASE_CREDENTIALS_KEY": fernet_key()})
    assert r.returncode == 0, r.stderr


def test_config_check_bad_key_never_printed(tmp_path):
    good = fernet_key()
    bad = "this-is-not-a-fernet-key-but-a-secret"
    r = run_t("listen = 127.0.0.1:8123\n", tmp_path,
              env={"DATABASE_CREDENTIALS_KEY": good + "," + bad})
    assert r.returncode == 1
    assert "DATABASE_CREDENTIALS_KEY" in r.stderr
    assert "2" in r.stderr
    assert bad not in r.stderr and bad not in r.stdout
    assert good not in r.stderr and good not in r.stdout


def test_config_check_unreadable_file(tmp_path):
    r = subprocess.run([DATACHATD, "-t", "-c", str(tmp_path / "missing.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "missing.conf" in r.stderr


def test_version_and_help():
    r = subprocess.run([DATACHATD, "-V"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("datachatd ")
    r = subprocess.run([DATACHATD, "-h"], capture_output=True, text=True)
    assert r.returncode == 0 and "-t" in r.stdout and "-c file" in r.stdout
    r = subprocess.run([DATACHATD, "-Z"], capture_output=True, text=True)
    assert r.returncode == 2


def test_dump_config_matches_sample():
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    r = subprocess.run([DATACHATD, "--dump-config"], capture_output=True,
                       text=True)
    assert r.returncode == 0
    with open(os.path.join(root, "etc", "datachatd.conf")) as f:
        assert f.read() == r.stdout, "etc/datachatd.conf drifted from the " \
            "config table: regenerate it with datachatd --dump-config"


def test_health_with_four_workers(daemon_factory):
    d = daemon_factory(workers=4).start()
    wait_for(lambda: len(d.workers()) == 4, what="4 workers")
    pids = set()
    for _ in range(80):
        r = requests.get(d.url("/api/v1/health"), timeout=5,
                         headers={"Connection": "close"})
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "healthy"
        assert r.headers["X-Request-Id"]
        pids.add(body["pid"])
    assert pids <= set(d.workers())
    assert len(pids) >= 2, "requests all went to one worker"
    assert d.proc.pid not in pids, "the master must not serve HTTP"
    # ready with no system database: registry disabled, still ready
    r = d.get("/api/v1/ready")
    assert r.status_code == 200
    assert r.json()["registry"]["state"] == "disabled"
    # every request is logged with its id, method, path, status
    assert "GET /api/v1/health 200" in d.log()


def test_killed_worker_is_respawned(daemon_factory):
    d = daemon_factory(workers=2).start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")
    before = d.workers()
    os.kill(before[0], signal.SIGKILL)
    # the port keeps answering while the master respawns
    for _ in range(20):
        assert d.get("/api/v1/health").status_code == 200
    wait_for(lambda: len(d.workers()) == 2 and d.workers() != before,
             what="respawned worker")
    assert before[1] in d.workers()
    assert "killed by signal 9" in d.log()
    assert d.get("/api/v1/health").status_code == 200


def test_sighup_good_config_is_applied(daemon_factory):
    d = daemon_factory(workers=2, conf={"max_body_size": "1048576"}).start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")
    body = '{"name": "%s"}' % ("x" * 3000)
    hdr = {"Content-Type": "application/json"}
    # under the limit: a validation error, not 413
    assert d.post("/api/v1/databases", data=body, headers=hdr).status_code == 422
    old = d.workers()
    d.settings["max_body_size"] = "2048"
    d.write_conf()
    d.send(signal.SIGHUP)
    wait_for(lambda: len(d.workers()) == 2 and not set(d.workers()) & set(old),
             what="new workers after reload")
    r = d.post("/api/v1/databases", data=body, headers=hdr)
    assert r.status_code == 413
    assert "max_body_size" in r.json()["detail"]


def test_sighup_broken_config_keeps_running(daemon_factory):
    d = daemon_factory(workers=2).start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")
    old = d.workers()
    d.write_conf("this line is broken\nmax_rows = many\n")
    d.send(signal.SIGHUP)
    wait_for(lambda: "keeping the running configuration" in d.log(),
             what="reload refusal in the log")
    assert d.workers() == old
    assert d.get("/api/v1/health").status_code == 200
    assert d.proc.poll() is None


class SilentServer:
    """Accepts TCP connections and never says a word (a hung database)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            while True:
                c, _ = self.sock.accept()
                self.conns.append(c)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_sigterm_lets_inflight_request_complete(daemon_factory, registry_env):
    from conftest import clean_env
    silent = SilentServer()
    try:
        d = daemon_factory(workers=2, env=clean_env(registry_env),
                           conf={"connect_timeout": "3"}).start(wait_ready=True)
        result = {}

        def slow():
            # the connection check waits connect_timeout on a silent server
            result["r"] = d.post("/api/v1/databases", {
                "name": "hung", "database_type": "postgresql",
                "database_url": "postgresql://u:pw@127.0.0.1:%d/x" % silent.port})

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(1.0)
        d.send(signal.SIGTERM)
        t.join(20)
        assert "r" in result, "in-flight request did not complete"
        assert result["r"].status_code == 400
        assert "Failed to connect" in result["r"].json()["detail"]
        assert d.wait_exit(20) == 0
        assert not os.path.exists(d.pidfile)
        # no new connections are accepted once the master is gone
        with pytest.raises(requests.ConnectionError):
            d.get("/api/v1/health", timeout=2)
    finally:
        silent.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_fast_and_immediate_shutdown(daemon_factory, sig):
    d = daemon_factory(workers=3).start()
    wait_for(lambda: len(d.workers()) == 3, what="3 workers")
    workers = d.workers()
    d.send(sig)
    d.wait_exit(15)
    wait_for(lambda: not any(os.path.exists("/proc/%d" % p) and
                             open("/proc/%d/stat" % p).read().split()[2] != "Z"
                             for p in workers), what="workers gone")


def test_kill9_master_leaves_no_orphans(daemon_factory):
    d = daemon_factory(workers=3).start()
    wait_for(lambda: len(d.workers()) == 3, what="3 workers")
    d.proc.kill()
    d.proc.wait()
    wait_for(lambda: not d.leftovers(), timeout=5, what="workers to exit")


def test_pidfile_written_and_second_instance_refused(daemon_factory):
    d = daemon_factory(workers=1).start()
    with open(d.pidfile) as f:
        assert int(f.read()) == d.proc.pid
    d2 = daemon_factory(workers=1)
    d2.settings["pidfile"] = d.pidfile
    d2.write_conf()
    r = subprocess.run([DATACHATD, "-f", "-c", d2.conf_path], env=d2.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "already running" in r.stderr
    with open(d.pidfile) as f:
        assert int(f.read()) == d.proc.pid


def test_usr1_reopens_log_file(daemon_factory, tmp_path):
    logfile = tmp_path / "file.log"
    d = daemon_factory(workers=1, conf={"log": str(logfile)}).start()
    assert d.get("/api/v1/health").status_code == 200
    wait_for(lambda: "GET /api/v1/health" in logfile.read_text(),
             what="log line in file")
    os.rename(str(logfile), str(tmp_path / "file.log.1"))
    d.send(signal.SIGUSR1)
    wait_for(lambda: logfile.exists(), what="log reopened")
    wait_for(lambda: d.get("/api/v1/ready").status_code == 200 and
             "GET /api/v1/ready" in logfile.read_text(), what="new log line")


def test_listen_port_in_use_fails_clearly(daemon_factory):
    d = daemon_factory(workers=1).start()
    d2 = daemon_factory(workers=1)
    d2.settings["listen"] = "127.0.0.1:%d" % d.port
    d2.write_conf()
    r = subprocess.run([DATACHATD, "-f", "-c", d2.conf_path], env=d2.env,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "cannot listen" in r.stderr


def test_http_errors_are_json_and_never_200(daemon_factory):
    d = daemon_factory(workers=2).start()
    r = d.get("/api/v1/nothing-here")
    assert r.status_code == 404 and "detail" in r.json()
    r = requests.delete(d.url("/api/v1/health"), timeout=5)
    assert r.status_code == 405 and "GET" in r.headers.get("Allow", "")
    assert "detail" in r.json()
    hdr = {"Content-Type": "application/json"}
    # FastAPI's json_invalid: Python's message and character position
    for bad, pos, msg in (("{", 1, "Expecting property name enclosed in double quotes"),
                          ("[1,2", 4, "Expecting ',' delimiter"),
                          ('{"a": }', 6, "Expecting value"),
                          ("nul", 0, "Expecting value"),
                          ('{"a": 1} trailing', 9, "Extra data"),
                          ("\x00\x01", 0, "Expecting value"),
                          ('{"\u00e9": 1,}', 7, "Illegal trailing comma before end of object")):
        r = d.post("/api/v1/databases", data=bad.encode(), headers=hdr)
        assert r.status_code == 422, bad
        assert r.json() == {"detail": [{"type": "json_invalid", "loc": ["body", pos],
                                        "msg": "JSON decode error", "input": {},
                                        "ctx": {"error": msg}}]}, (bad, r.text)
    r = d.post("/api/v1/databases", data=b"\xff\xfe", headers=hdr)
    assert r.status_code == 400
    assert r.json() == {"detail": "There was an error parsing the body"}
    r = d.post("/api/v1/databases", data="[1, 2]", headers=hdr)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "model_attributes_type"
    r = d.post("/api/v1/databases", data="", headers=hdr)
    assert r.status_code == 422 and r.json() == {"detail": [
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]}
    r = d.post("/api/v1/databases", data="x=1",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and r.json() == {"detail": [
        {"type": "model_attributes_type", "loc": ["body"],
         "msg": "Input should be a valid dictionary or object to extract fields from",
         "input": "**********"}]}
    deep = "[" * 200 + "]" * 200
    r = d.post("/api/v1/databases", data='{"a": %s}' % deep, headers=hdr)
    assert r.status_code == 400
    assert r.json() == {"detail": "There was an error parsing the body"}
    big = '{"name": "%s"}' % ("y" * (1024 * 1024 + 10))
    r = d.post("/api/v1/databases", data=big, headers=hdr)
    assert r.status_code == 413
    huge = "z" * (8 * 1024 * 1024)
    try:
        r = d.post("/api/v1/databases", data=huge, headers=hdr)
        assert r.status_code == 413
    except requests.ConnectionError:
        pass  # libevent may cut the upload short: also a refusal
    # the workers survived all of it
    assert d.get("/api/v1/health").status_code == 200
    assert len(d.workers()) == 2


def test_user_drops_privileges(daemon_factory):
    import pwd
    nobody = pwd.getpwnam("nobody")
    d = daemon_factory(workers=2, conf={"user": "nobody"})
    # the control socket is made, and the pid file removed, after the
    # drop: their directory must allow it (datachatd checks)
    os.chmod(d.sockdir, 0o777)
    d.pidfile = os.path.join(d.sockdir, "d.pid")
    d.settings["pidfile"] = d.pidfile
    d.write_conf()
    d.start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")
    for pid in [d.proc.pid] + d.workers():
        with open("/proc/%d/status" % pid) as f:
            uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        assert all(int(u) == nobody.pw_uid for u in uids), (pid, uids)
    assert os.stat(d.ctl_sock).st_uid == nobody.pw_uid
    assert os.stat(d.pidfile).st_uid == nobody.pw_uid
    assert "running as user nobody" in d.log()
    assert d.stop() == 0
    assert not os.path.exists(d.pidfile), "pid file left behind"
    assert not os.path.exists(d.ctl_sock)


def test_daemon_mode_reports_start_failure(daemon_factory, tmp_path):
    """Without -f the launcher exits only once the daemon runs (0) or
    failed (1), so init scripts and systemd see a failure after fork."""
    d = daemon_factory(workers=1).start()
    d2 = daemon_factory(workers=1)
    d2.settings["pidfile"] = d.pidfile          # names a live process
    d2.settings["log"] = str(tmp_path / "d2.log")
    d2.write_conf()
    r = subprocess.run([DATACHATD, "-c", d2.conf_path], env=d2.env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "already running" in (tmp_path / "d2.log").read_text()
    d3 = daemon_factory(workers=1)
    d3.settings["log"] = str(tmp_path / "d3.log")
    d3.write_conf()
    r = subprocess.run([DATACHATD, "-c", d3.conf_path], env=d3.env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    with open(d3.pidfile) as f:
        pid = int(f.read())
    assert d3.get("/api/v1/health").status_code == 200
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(d3.pidfile), what="daemon stopped")


def test_reload_under_load_loses_no_request(daemon_factory):
    """Every request sent across repeated SIGHUPs is answered.

    Each request opens a fresh connection, so some are accepted by a
    worker in the instant it is told to retire: that worker must still
    read and answer them rather than exit with them open.
    """
    d = daemon_factory(workers=2).start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")
    stop = threading.Event()
    errors, answered = [], [0]

    def client():
        while not stop.is_set():
            try:
                r = requests.get(d.url("/api/v1/health"), timeout=10)
                if r.status_code != 200:
                    errors.append(r.status_code)
                answered[0] += 1
            except requests.RequestException as e:
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(15):
            old = d.workers()
            d.send(signal.SIGHUP)
            wait_for(lambda: len(d.workers()) == 2 and
                     not set(d.workers()) & set(old),
                     timeout=30, what="new workers after reload")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert answered[0] > 100, answered
    assert errors == [], errors[:5]


def test_smart_shutdown_answers_accepted_connection(daemon_factory):
    """A connection accepted before SIGTERM gets its reply, even when its
    request arrives after the signal; an idle keep-alive one does not
    hold the shutdown up."""
    d = daemon_factory(workers=1).start()
    wait_for(lambda: len(d.workers()) == 1, what="1 worker")
    idle = requests.Session()
    assert idle.get(d.url("/api/v1/health"), timeout=10).status_code == 200
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    # the worker accepts it: a request on another connection is served after
    assert d.get("/api/v1/health").status_code == 200
    d.send(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None, "left with a connection unserved"
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert b"Connection: close" in reply, reply
    # the keep-alive session is idle: nothing else keeps the worker
    assert d.wait_exit(timeout=10) == 0
    idle.close()
