"""Fixtures for the integration suite: throwaway PostgreSQL clusters, a
throwaway MariaDB server, a throwaway ClickHouse server, and real
datachatd daemons.

A cluster is initdb'ed as the postgres user in a temporary directory, on a
free loopback port with its unix socket in that directory, and removed at
the end even when a test fails.  The MariaDB server (session-scoped, only
started by the tests that ask for it) is installed with
mariadb-install-db and run by mariadbd as the mysql user the same way;
the ClickHouse server (session-scoped too) runs as the clickhouse user
from a config written into its temporary directory, every port (HTTP,
native TCP, interserver) a free loopback one.  A daemon is the real binary from
$DC_BUILDDIR, started in the foreground with a config file written for the
test; at teardown it is stopped and the test fails if any of its processes
is left behind.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg2
import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("DC_BUILDDIR", os.path.join(ROOT, "build", "plain"))
DATACHATD = os.path.join(BUILD, "datachatd")
DATACHATCTL = os.path.join(BUILD, "datachatctl")
PGBIN = "/usr/lib/postgresql/15/bin"
PG_PASSWORD = "s3cret-Pg-pw"
MARIADBD = "/usr/sbin/mariadbd"
MY_PASSWORD = "s3cret-My-pw"
MY_USER = "dc"
CLICKHOUSE = "/usr/sbin/clickhouse-server"
CH_PASSWORD = "s3cret-Ch-pw"
CH_USER = "dc"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fernet_key():
    from cryptography.fernet import Fernet
    return Fernet.generate_key().decode()


def wait_for(pred, timeout=10.0, step=0.05, what="condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # keep polling through connection errors
            last = e
        time.sleep(step)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class PgCluster:
    """A private PostgreSQL 15 cluster owned by the postgres user."""

    def __init__(self):
        pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="dc-pg-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PG_PASSWORD + "\n")
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run([PGBIN + "/initdb", "-D", self.data, "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256",
                   "--pwfile", pwfile, "-E", "UTF8", "--no-sync"])
        self.start()

    def _run(self, cmd):
        subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.dir)

    def start(self):
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=300 -c synchronous_commit=off"
                % (self.port, self.dir))
        self._run([PGBIN + "/pg_ctl", "-D", self.data, "-o", opts, "-l",
                   os.path.join(self.dir, "log"), "-w", "-t", "30", "start"])

    def stop(self, mode="fast"):
        self._run([PGBIN + "/pg_ctl", "-D", self.data, "-m", mode, "-w",
                   "stop"])

    def destroy(self):
        try:
            self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db, user="postgres", password=PG_PASSWORD, scheme="postgresql"):
        return "%s://%s:%s@127.0.0.1:%d/%s" % (scheme, user, password,
                                               self.port, db)

    def connect(self, db="postgres"):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=db,
                             user="postgres", password=PG_PASSWORD)
        c.autocommit = True
        return c

    def sql(self, db, query, params=None):
        c = self.connect(db)
        try:
            with c.cursor() as cur:
                cur.execute(query, params)
                if cur.description is not None:
                    return cur.fetchall()
                return None
        finally:
            c.close()

    def create_db(self, prefix="db"):
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:10])
        self.sql("postgres", "CREATE DATABASE %s" % name)
        return name


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster()
    yield cluster
    cluster.destroy()


class MyServer:
    """A private MariaDB server owned by the mysql user: root over its
    unix socket for the tests' own setup, MY_USER with a password over
    TCP on 127.0.0.1 for datachatd."""

    def __init__(self):
        pw = pwd.getpwnam("mysql")
        self.dir = tempfile.mkdtemp(prefix="dc-my-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_port()
        self.proc = None
        subprocess.run(["runuser", "-u", "mysql", "--", "mariadb-install-db",
                        "--no-defaults", "--datadir=" + self.data,
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       cwd=self.dir)
        self.start()
        self.admin("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s';"
                   "GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1'"
                   % (MY_USER, MY_PASSWORD, MY_USER))

    def start(self):
        self.proc = subprocess.Popen(
            ["runuser", "-u", "mysql", "--", MARIADBD, "--no-defaults",
             "--datadir=" + self.data, "--socket=" + self.sock,
             "--pid-file=" + os.path.join(self.dir, "pid"),
             "--skip-networking=0", "--bind-address=127.0.0.1",
             "--port=%d" % self.port, "--skip-name-resolve",
             "--log-error=" + os.path.join(self.dir, "err.log"),
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--max-connections=300", "--performance-schema=0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.dir)
        wait_for(lambda: self._ping(), timeout=60, what="mariadbd up")

    def _ping(self):
        if self.proc.poll() is not None:
            raise RuntimeError("mariadbd exited: see %s/err.log" % self.dir)
        c = self.connect()
        c.close()
        return True

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db, user=MY_USER, password=MY_PASSWORD, scheme="mysql",
            host="127.0.0.1"):
        return "%s://%s:%s@%s:%d/%s" % (scheme, user, password, host,
                                        self.port, db)

    def connect(self, db=None):
        import pymysql
        return pymysql.connect(unix_socket=self.sock, user="root",
                               database=db, autocommit=True,
                               connect_timeout=5)

    def admin(self, statements, db=None):
        """Run ;-separated statements as root; the last one's rows."""
        c = self.connect(db)
        try:
            rows = None
            with c.cursor() as cur:
                for st in [x for x in statements.split(";") if x.strip()]:
                    cur.execute(st)
                    rows = cur.fetchall()
            return rows
        finally:
            c.close()

    def sql(self, db, query, params=None):
        c = self.connect(db)
        try:
            with c.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        finally:
            c.close()

    def create_db(self, prefix="db"):
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:10])
        self.admin("CREATE DATABASE %s" % name)
        return name

    def running(self, marker):
        """Ids of the server threads whose statement contains marker."""
        rows = self.sql(None, "SELECT ID, INFO FROM "
                        "information_schema.PROCESSLIST WHERE INFO LIKE %s "
                        "AND INFO NOT LIKE %s",
                        ("%" + marker + "%", "%PROCESSLIST%"))
        return [r[0] for r in rows]


@pytest.fixture(scope="session")
def mysql():
    server = MyServer()
    yield server
    server.destroy()


CH_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>{dir}/server.log</log>
    <errorlog>{dir}/err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <keep_alive_timeout>10</keep_alive_timeout>
  <mlock_executable>false</mlock_executable>
</yandex>
"""

CH_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>2000000000</max_memory_usage></default>
    <ro><readonly>1</readonly></ro>
  </profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
    <ro><password>{password}</password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>ro</profile><quota>default</quota></ro>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries>
    <errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows>
    <execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


class ChServer:
    """A private ClickHouse server owned by the clickhouse user: its
    default user (no password, loopback only) for the tests' own setup
    over HTTP, CH_USER with a password for datachatd, and "ro" (the same
    password) whose profile is readonly=1."""

    def __init__(self):
        pw = pwd.getpwnam("clickhouse")
        self.dir = tempfile.mkdtemp(prefix="dc-ch-")
        self.http_port = free_port()
        self.tcp_port = free_port()
        self.proc = None
        ports = {"http": self.http_port, "tcp": self.tcp_port,
                 "inter": free_port(), "dir": self.dir}
        for name, text in (("config.xml", CH_CONFIG.format(**ports)),
                           ("users.xml", CH_USERS.format(
                               user=CH_USER, password=CH_PASSWORD))):
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(text)
        for root, dirs, files in os.walk(self.dir):
            for n in [root] + [os.path.join(root, x) for x in files]:
                os.chown(n, pw.pw_uid, pw.pw_gid)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["runuser", "-u", "clickhouse", "--", CLICKHOUSE,
             "--config-file=" + os.path.join(self.dir, "config.xml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.dir, start_new_session=True)
        wait_for(lambda: self._ping(), timeout=60, what="clickhouse up")

    def _ping(self):
        if self.proc.poll() is not None:
            raise RuntimeError("clickhouse-server exited: see %s/err.log"
                               % self.dir)
        return self.sql("SELECT 1") == [["1"]]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db, user=CH_USER, password=CH_PASSWORD,
            scheme="clickhouse", host="127.0.0.1", port=None):
        return "%s://%s:%s@%s:%d/%s" % (scheme, user, password, host,
                                        port or self.http_port, db)

    def sql(self, query, db=None):
        """One statement as the default user; rows as lists of text."""
        params = {"database": db} if db else {}
        r = requests.post("http://127.0.0.1:%d/" % self.http_port,
                          params=params, data=query.encode(), timeout=30)
        if r.status_code != 200:
            raise RuntimeError("clickhouse: %s" % r.text.strip())
        return [line.split("\t") for line in r.text.splitlines()]

    def admin(self, statements, db=None):
        """Run ;-separated statements; the last one's rows."""
        rows = None
        for st in [x for x in statements.split(";") if x.strip()]:
            rows = self.sql(st, db)
        return rows

    def create_db(self, prefix="db"):
        name = "%s_%s" % (prefix, uuid.uuid4().hex[:10])
        self.sql("CREATE DATABASE %s" % name)
        return name

    def running(self, marker):
        """query_ids of the statements running that contain marker."""
        rows = self.sql("SELECT query_id FROM system.processes WHERE "
                        "query LIKE '%%%s%%' AND query NOT LIKE "
                        "'%%system.processes%%'" % marker)
        return [r[0] for r in rows]


@pytest.fixture(scope="session")
def clickhouse():
    server = ChServer()
    yield server
    server.destroy()


def child_pids(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def procs_with(marker):
    """Pids of processes whose command line contains marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


class Daemon:
    """One datachatd master (and its workers) started for a test."""

    def __init__(self, tmpdir, workers=2, env=None, conf=None):
        self.dir = str(tmpdir)
        self.port = free_port()
        self.conf_path = os.path.join(self.dir, "datachatd-%d.conf" % self.port)
        self.log_path = os.path.join(self.dir, "datachatd-%d.log" % self.port)
        self.pidfile = os.path.join(self.dir, "datachatd-%d.pid" % self.port)
        # unix socket paths are short: keep it out of pytest's long tmp path
        self.sockdir = tempfile.mkdtemp(prefix="dcs-")
        self.ctl_sock = os.path.join(self.sockdir, "ctl.sock")
        self.settings = {
            "control_socket": self.ctl_sock,
            "listen": "127.0.0.1:%d" % self.port,
            "workers": str(workers),
            "pidfile": self.pidfile,
            "log_level": "info",
            "shutdown_timeout": "20",
            "connect_timeout": "3",
            "resync_interval": "30",
        }
        if conf:
            self.settings.update(conf)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
        self.env.update(env or {})
        self.proc = None
        self.logf = None
        self.write_conf()

    def write_conf(self, extra_lines=""):
        with open(self.conf_path, "w") as f:
            f.write("# written by the test suite\n")
            for k, v in self.settings.items():
                f.write('%s = "%s"\n' % (k, v))
            f.write(extra_lines)

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.base + path

    def start(self, wait_ready=False):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([DATACHATD, "-f", "-c", self.conf_path],
                                     env=self.env, stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(lambda: self.get("/api/v1/health").status_code == 200,
                 timeout=20, what="datachatd health")
        if wait_ready:
            wait_for(lambda: self.get("/api/v1/ready").status_code == 200,
                     timeout=20, what="datachatd ready")
        return self

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return requests.get(self.url(path), **kw)

    def post(self, path, body=None, **kw):
        kw.setdefault("timeout", 30)
        if body is not None and "data" not in kw:
            kw["json"] = body
        return requests.post(self.url(path), **kw)

    def patch(self, path, body=None, **kw):
        kw.setdefault("timeout", 30)
        return requests.patch(self.url(path), json=body, **kw)

    def put(self, path, body=None, **kw):
        kw.setdefault("timeout", 30)
        return requests.put(self.url(path), json=body, **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.delete(self.url(path), **kw)

    def workers(self):
        return sorted(child_pids(self.proc.pid))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def send(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None
        return rc

    def leftovers(self):
        return procs_with(self.conf_path)

    def ctl(self, *args, stdin=None, check=False, sock=True):
        cmd = [DATACHATCTL] + (["-s", self.ctl_sock] if sock else []) + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                           timeout=90)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r


@pytest.fixture
def daemon_factory(tmp_path):
    made = []

    def make(**kw):
        d = Daemon(tmp_path, **kw)
        made.append(d)
        return d

    yield make
    left = []
    for d in made:
        d.stop()
        try:
            wait_for(lambda: not d.leftovers(), timeout=10,
                     what="no datachatd process left")
        except AssertionError:
            left.append(d.leftovers())
            for p in d.leftovers():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(d.sockdir, ignore_errors=True)
    assert not left, "datachatd processes left behind: %r" % left


@pytest.fixture
def registry_env(pg):
    """A fresh system database and key for one daemon (or two)."""
    sysdb = pg.create_db("sys")
    key = fernet_key()
    return {"SYSTEM_DATABASE_URL": pg.url(sysdb),
            "DATABASE_CREDENTIALS_KEY": key,
            "_sysdb": sysdb}


def clean_env(env):
    return {k: v for k, v in env.items() if not k.startswith("_")}


def jdump(o):
    return json.dumps(o, sort_keys=True)


@pytest.fixture
def llm():
    """A fake LLM provider (tests/integration/llm_mock.py) on a free
    loopback port: .url, .queue(...), .requests."""
    from llm_mock import LlmMock
    mock = LlmMock()
    yield mock
    mock.stop()
