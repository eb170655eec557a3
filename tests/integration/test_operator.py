"""The daemon as an operator sees it: -t and -T, datachatctl config,
the access log (text and JSON), process titles, workers changed by a
reload, reload warnings, and the log file after a privilege drop."""
import json
import os
import pwd
import re
import signal
import subprocess
import tempfile

import pytest

from conftest import (DATACHATD, PG_PASSWORD, clean_env, fernet_key,
                      wait_for)


def run(args, env=None, conf=None, tmp_path=None):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
    e.update(env or {})
    cmd = [DATACHATD] + args
    if conf is not None:
        path = tmp_path / "op.conf"
        path.write_text(conf)
        cmd += ["-c", str(path)]
    return subprocess.run(cmd, env=e, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def shared_dir():
    """A directory anyone may write to, as /run/datachatd is the user's."""
    d = tempfile.mkdtemp(prefix="dco-")
    os.chmod(d, 0o777)
    yield d
    subprocess.run(["rm", "-rf", d])


def test_t_checks_user_and_directories(tmp_path):
    r = run(["-t"], conf="user = no-such-user-here\n", tmp_path=tmp_path)
    assert r.returncode == 1 and "no such user" in r.stderr, r.stderr
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    r = run(["-t"], tmp_path=tmp_path, conf=(
        "user = nobody\npidfile = %s/d.pid\n"
        "control_socket = /nonexistent-dir/ctl.sock\nlog = %s/d.log\n"
        % (private, private)))
    assert r.returncode == 1
    assert "pidfile: directory %s is not writable by user nobody" % private \
        in r.stderr, r.stderr
    assert "control_socket: directory /nonexistent-dir does not exist" \
        in r.stderr
    assert "log: directory %s is not writable" % private in r.stderr
    # the daemon refuses the same configuration at start
    r = run(["-f"], tmp_path=tmp_path, conf=(
        "user = nobody\npidfile = %s/d.pid\n" % private))
    assert r.returncode == 1 and "not writable by user nobody" in r.stderr


def test_t_reports_system_database_keys_and_llm(pg, tmp_path, registry_env,
                                                 daemon_factory):
    env = clean_env(registry_env)
    # nothing configured: it says what it did and did not check
    r = run(["-t"], conf="listen = 127.0.0.1:8123\n", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "syntax and values OK" in r.stdout
    assert "system database: not configured" in r.stdout
    assert "LLM: none configured" in r.stdout
    assert "not checked: that target databases accept connections" in r.stdout
    # a reachable system database with a row that decrypts
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    cid = d.post("/api/v1/databases", {
        "name": "t", "database_type": "postgresql",
        "database_url": pg.url("postgres")}).json()["connection_id"]
    assert cid
    d.stop()
    r = run(["-t"], env=env, conf="listen = 127.0.0.1:8123\n",
            tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "connected (PostgreSQL 15." in r.stdout, r.stdout
    assert "1 stored connection(s), all decrypt" in r.stdout
    assert PG_PASSWORD not in r.stdout + r.stderr
    # another key: a warning, and still exit 0 (the daemon would start)
    r = run(["-t"], env=dict(env, DATABASE_CREDENTIALS_KEY=fernet_key()),
            conf="listen = 127.0.0.1:8123\n", tmp_path=tmp_path)
    assert r.returncode == 0
    assert "1 of 1 stored connection(s) do not decrypt" in r.stderr, r.stderr
    # an unreachable system database, an LLM without its key
    r = run(["-t"], env={"SYSTEM_DATABASE_URL":
                         "postgresql://u:hidden-pw@127.0.0.1:1/x",
                         "LLM_DEFAULT_PROVIDER": "openai"},
            conf="listen = 127.0.0.1:8123\n", tmp_path=tmp_path)
    assert r.returncode == 0
    assert "cannot connect" in r.stderr and "hidden-pw" not in r.stderr
    assert "no API key" in r.stderr
    assert "2 warning(s)" in r.stdout


def test_T_prints_effective_config_masked(tmp_path):
    key = fernet_key()
    r = run(["-T"], env={"DATABASE_CREDENTIALS_KEY": key,
                         "SYSTEM_DATABASE_URL":
                         "postgresql://u:hidden-pw@127.0.0.1:1/sys",
                         "LLM_OPENAI_API_KEY": "sk-hidden-key"},
            conf='listen = 127.0.0.1:8123\nlisten = "/tmp/x.sock mode=0600"\n'
                 'workers = 3\nmax_rows = 7\n', tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for secret in (key, "hidden-pw", "sk-hidden-key"):
        assert secret not in out
    assert "listen = 127.0.0.1:8123\n" in out
    assert 'listen = "/tmp/x.sock mode=0600"\n' in out
    assert "workers = 3\n" in out and "max_rows = 7\n" in out
    assert "system_database_url = postgresql://u:***@127.0.0.1:1/sys\n" in out
    assert "credentials_key = ********\n" in out
    assert "# from the environment: DATABASE_CREDENTIALS_KEY\n" in out
    # every key of the table, once (listen once per socket)
    keys = re.findall(r"^([a-z_]+) = ", out, re.M)
    dump = subprocess.run([DATACHATD, "--dump-config"], capture_output=True,
                          text=True).stdout
    table = re.findall(r"^#([a-z_]+) = ", dump, re.M)
    assert sorted(set(keys)) == sorted(table)


def test_ctl_config_shows_the_running_configuration(daemon_factory,
                                                    registry_env):
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_rows": "42"}).start(wait_ready=True)
    r = d.ctl("config", check=True)
    assert "max_rows = 42\n" in r.stdout
    assert "listen = 127.0.0.1:%d\n" % d.port in r.stdout
    assert PG_PASSWORD not in r.stdout
    assert registry_env["DATABASE_CREDENTIALS_KEY"] not in r.stdout
    js = json.loads(d.ctl("--json", "config", check=True).stdout)
    assert js["source"] == d.conf_path
    assert js["keys"]["listen"] == ["127.0.0.1:%d" % d.port]
    assert js["keys"]["max_rows"] == "42"
    assert js["keys"]["credentials_key"] == "********"
    # it is the running one: a changed file shows after a reload only
    d.settings["max_rows"] = "43"
    d.write_conf()
    assert "max_rows = 42\n" in d.ctl("config", check=True).stdout
    d.ctl("reload", "--wait", check=True)
    assert "max_rows = 43\n" in d.ctl("config", check=True).stdout


def test_access_log_text_and_json(daemon_factory, tmp_path):
    d = daemon_factory(workers=1).start()
    r = d.get("/api/v1/health", headers={"User-Agent": 'probe/1.0 "x"'})
    size = len(r.content)
    wait_for(lambda: "GET /api/v1/health 200" in d.log(), what="access line")
    line = [l for l in d.log().splitlines() if "GET /api/v1/health" in l][-1]
    m = re.search(r"INFO: (\S+) 127\.0\.0\.1 GET /api/v1/health 200 (\d+) "
                  r"\d+ms \"probe/1\.0 'x'\"$", line)
    assert m, line
    assert m.group(1) == r.headers["X-Request-Id"] and int(m.group(2)) == size
    d.stop()

    logfile = tmp_path / "json.log"
    d = daemon_factory(workers=1, conf={"log_format": "json",
                                        "log": str(logfile)}).start()
    r = d.get("/api/v1/nothing", headers={"User-Agent": "probe \"2\" \\ \x7f"})
    assert r.status_code == 404
    d.stop()
    lines = [json.loads(l) for l in logfile.read_text().splitlines()]
    assert all({"time", "pid", "process", "level"} <= set(o) for o in lines)
    acc = [o for o in lines if o.get("type") == "access"]
    assert acc, lines
    a = acc[-1]
    assert a["path"] == "/api/v1/nothing" and a["status"] == 404
    assert a["client"] == "127.0.0.1" and a["method"] == "GET"
    assert a["bytes"] == len(r.content)
    assert a["user_agent"] == "probe \"2\" \\ \x7f"
    assert a["request_id"] == r.headers["X-Request-Id"]
    assert a["process"] == "worker 0" and a["level"] == "info"
    assert any(o["process"] == "master" and "msg" in o for o in lines)


def test_titles_workers_reload_and_restart_warning(daemon_factory):
    d = daemon_factory(workers=2).start()
    wait_for(lambda: len(d.workers()) == 2, what="2 workers")

    def title(pid):
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().rstrip(b"\0").decode()

    assert title(d.proc.pid) == "datachatd: master -c " + d.conf_path
    # a worker names itself first thing after fork
    wait_for(lambda: sorted(title(p) for p in d.workers()) == [
        "datachatd: worker 0 -c " + d.conf_path,
        "datachatd: worker 1 -c " + d.conf_path], what="worker titles")
    with open("/proc/%d/comm" % d.proc.pid) as f:
        assert f.read().strip() == "datachatd"
    # workers is reloadable; listen is not, and reload says so
    d.settings["workers"] = "3"
    d.settings["listen"] = "127.0.0.1:%d" % (d.port + 1 if d.port < 65535
                                             else d.port - 1)
    d.write_conf()
    r = d.ctl("reload", "--wait")
    assert r.returncode == 0, r.stderr
    assert "warning: listen changed, but only a restart applies it" in r.stderr
    assert len(d.workers()) == 3
    assert d.get("/api/v1/health").status_code == 200   # old address kept
    r = d.ctl("--json", "reload")
    assert json.loads(r.stdout)["restart_needed"] == ["listen"]


def test_log_reopen_after_privilege_drop(daemon_factory, shared_dir):
    """The log file works as user nobody: handed over at start, reopened
    after rotation; a reopen that fails is said in the old file."""
    nobody = pwd.getpwnam("nobody")
    logdir = os.path.join(shared_dir, "log")
    os.mkdir(logdir)
    os.chown(logdir, nobody.pw_uid, nobody.pw_gid)
    logfile = os.path.join(logdir, "d.log")
    d = daemon_factory(workers=1, conf={
        "user": "nobody", "log": logfile,
        "pidfile": os.path.join(shared_dir, "d.pid"),
        "control_socket": os.path.join(shared_dir, "ctl.sock")})
    d.pidfile = os.path.join(shared_dir, "d.pid")
    d.ctl_sock = os.path.join(shared_dir, "ctl.sock")
    d.start()
    assert os.stat(logfile).st_uid == nobody.pw_uid
    os.rename(logfile, logfile + ".1")
    d.ctl("log-reopen", check=True)
    d.get("/api/v1/health")
    wait_for(lambda: os.path.exists(logfile) and
             "GET /api/v1/health" in open(logfile).read(),
             what="the reopened log")
    assert os.stat(logfile).st_uid == nobody.pw_uid
    # now the directory refuses a new file: the failure is logged
    os.rename(logfile, logfile + ".2")
    os.chmod(logdir, 0o555)
    try:
        d.send(signal.SIGUSR1)
        wait_for(lambda: "cannot reopen log file %s: Permission denied"
                 % logfile in open(logfile + ".2").read(),
                 what="the reopen failure in the old file")
        d.get("/api/v1/health")
        wait_for(lambda: open(logfile + ".2").read().count(
                 "GET /api/v1/health") == 2, what="still logging")
    finally:
        os.chmod(logdir, 0o755)
    assert d.stop() == 0
    assert not os.path.exists(d.pidfile)
