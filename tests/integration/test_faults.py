"""Registry faults: an instance with the wrong key, writes committed while
the master cannot publish them, a master that stops answering, and a
master whose memory (keys, system database password) must stay out of
reach.  Real daemons, real PostgreSQL."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests
from cryptography.fernet import Fernet

from conftest import DATACHATD, PgCluster, clean_env, free_port, wait_for


def create(d, url, **over):
    body = {"name": "c", "database_url": url, "database_type": "postgresql"}
    body.update(over)
    return d.post("/api/v1/databases", body)


def fresh_get(d, path):
    return requests.get(d.url(path), timeout=10, headers={"Connection": "close"})


def test_wrong_key_instance_says_so_and_leaves_the_default_alone(
        pg, daemon_factory, registry_env):
    env = clean_env(registry_env)
    a = daemon_factory(workers=2, env=env).start(wait_ready=True)
    url = pg.url("postgres")
    ids = [create(a, url, name="n%d" % i, is_default=(i == 0)).json()["connection_id"]
           for i in range(3)]
    wrong = Fernet.generate_key().decode()
    b = daemon_factory(workers=2, env=dict(env, DATABASE_CREDENTIALS_KEY=wrong))
    b.start()
    r = b.get("/api/v1/ready")
    assert r.status_code == 503
    assert r.json()["registry"]["undecryptable_rows"] == 3
    assert "3 stored connection(s) do not decrypt" in r.json()["detail"]
    assert "key" in r.json()["detail"]

    # b cannot see the default, so it must not move it
    r = create(b, url, name="from-b", is_default=True)
    assert r.status_code == 503 and "default" in r.json()["detail"]
    own = create(b, url, name="plain-from-b")
    assert own.status_code == 201, own.text
    r = b.put("/api/v1/databases/%s/default" % own.json()["connection_id"],
              {"is_default": True})
    assert r.status_code == 503 and "cannot decrypt 3" in r.json()["detail"]
    dflt = pg.sql(registry_env["_sysdb"], "SELECT connection_id::text FROM "
                    "database_connections WHERE is_default")
    assert dflt == [(ids[0],)], "the correctly keyed instance's default stands"

    # given the right key as well, it reads everything and may act
    b.stop()
    b2 = daemon_factory(workers=1, env=dict(
        env, DATABASE_CREDENTIALS_KEY=wrong + "," + env["DATABASE_CREDENTIALS_KEY"]))
    b2.start(wait_ready=True)
    r = b2.put("/api/v1/databases/%s/default" % ids[1], {"is_default": True})
    assert r.status_code == 204


def test_write_committed_while_master_reconnects_is_a_success(daemon_factory):
    cluster = PgCluster()
    try:
        cluster.sql("postgres", "CREATE DATABASE sys")
        d = daemon_factory(workers=2, env={
            "SYSTEM_DATABASE_URL": cluster.url("sys"),
            "DATABASE_CREDENTIALS_KEY": Fernet.generate_key().decode()})
        d.start(wait_ready=True)
        url = cluster.url("postgres")
        assert create(d, url, name="before").status_code == 201
        cluster.stop()
        wait_for(lambda: d.get("/api/v1/ready").status_code == 503, timeout=10,
                 what="the master noticed")
        time.sleep(2.5)    # its backoff has grown to the longest
        cluster.start()
        t0 = time.monotonic()
        codes, created = [], []
        while len(created) < 5 and time.monotonic() - t0 < 20:
            r = create(d, url, name="after%d" % len(created))
            codes.append(r.status_code)
            if r.status_code == 201:
                created.append(r.json()["connection_id"])
                assert r.json()["name"].startswith("after")
                assert "***" in r.json()["database_url"]
        # a committed write is never a 503: a client retrying it would
        # make a duplicate
        assert len(created) == 5, codes
        assert all(c in (201, 400) for c in codes), codes
        rows = cluster.sql("sys", "SELECT count(*) FROM database_connections "
                           "WHERE name LIKE 'after%'")
        assert rows == [(5,)]
        # and the master is back promptly, with every write published
        wait_for(lambda: d.get("/api/v1/ready").status_code == 200, timeout=3,
                 what="ready within moments of the database's return")
        listed = {c["connection_id"] for c in fresh_get(d, "/api/v1/databases").json()}
        assert set(created) <= listed
    finally:
        cluster.destroy()


def test_ready_turns_503_when_the_master_is_silent(daemon_factory):
    d = daemon_factory(workers=1).start(wait_ready=True)
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for(lambda: d.get("/api/v1/ready").status_code == 503, timeout=15,
                 what="ready 503 with a stopped master")
        assert 9 < time.monotonic() - t0 < 14
        r = d.get("/api/v1/ready")
        assert "master has not been heard from" in r.json()["detail"]
        assert d.get("/api/v1/health").status_code == 200
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    wait_for(lambda: d.get("/api/v1/ready").status_code == 200, timeout=5,
             what="ready again")


def as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                           "--clear-groups"] + list(cmd),
                          capture_output=True, text=True, timeout=30)


def test_master_and_workers_are_undumpable(pg, registry_env):
    """Started by an ordinary user, the daemon's memory and environment
    (the credentials key, the system database password) are not readable
    by that same user: the processes are not dumpable."""
    d = tempfile.mkdtemp(prefix="dc-nobody-")
    os.chmod(d, 0o777)
    port = free_port()
    conf = os.path.join(d, "d.conf")
    with open(conf, "w") as f:
        f.write('listen = "127.0.0.1:%d"\nworkers = 1\n' % port)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
    env.update(clean_env(registry_env))
    proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534",
                             "--clear-groups", DATACHATD, "-f", "-c", conf],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    control = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534",
                                "--clear-groups", "sleep", "60"])
    try:
        wait_for(lambda: requests.get("http://127.0.0.1:%d/api/v1/health" % port,
                                      timeout=5).status_code == 200,
                 timeout=20, what="daemon up")
        # the test can tell: nobody reads its own dumpable process
        ok = as_nobody("cat", "/proc/%d/environ" % control.pid)
        assert ok.returncode == 0
        assert os.stat("/proc/%d/environ" % control.pid).st_uid == 65534
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            workers = [int(x) for x in f.read().split()]
        assert workers
        for pid in [proc.pid] + workers:
            # /proc/PID of a process that is not dumpable belongs to root
            assert os.stat("/proc/%d/environ" % pid).st_uid == 0, pid
            r = as_nobody("cat", "/proc/%d/environ" % pid)
            assert r.returncode != 0 and "Permission denied" in r.stderr, pid
            r = as_nobody("head", "-c", "1", "/proc/%d/mem" % pid)
            assert r.returncode != 0, pid
            assert registry_env["DATABASE_CREDENTIALS_KEY"] not in r.stdout
    finally:
        control.kill()
        control.wait()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
