"""The Debian package as a sysadmin meets it: scripts/package builds it
from a clean clone (dpkg-buildpackage, lintian without errors); this test
installs it into this machine with dpkg -i, starts it with its init
script, talks to it with curl and datachatctl, reloads it, rotates its
log with logrotate, stops it, checks that nothing is left running and no
pid file or socket remains, and purges it.  The machine is a throwaway
CI machine; the test refuses to touch a datachatd package it did not
install."""
import fcntl
import glob
import os
import pwd
import re
import shutil
import subprocess

import pytest
import requests

from conftest import ROOT, free_port, wait_for

DEB_DIR = os.path.join(ROOT, "build", "deb")
CONF = "/etc/datachatd/datachatd.conf"
PIDFILE = "/run/datachatd/datachatd.pid"
SOCK = "/run/datachatd/datachatd.sock"
LOG = "/var/log/datachatd/datachatd.log"

pytestmark = pytest.mark.skipif(
    os.environ.get("DC_VARIANT") == "sanitize",
    reason="the package is built once, without sanitizers; the plain "
           "run installs it")


def sh(*cmd, check=True, timeout=120, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r


def installed():
    r = sh("dpkg-query", "-W", "-f=${Status}", "datachatd", check=False)
    return "install ok installed" in r.stdout


def daemon_pids():
    """Processes of the packaged daemon (run by the datachat user)."""
    try:
        uid = pwd.getpwnam("datachat").pw_uid
    except KeyError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
            st = os.stat("/proc/" + d)
        except OSError:
            continue
        if comm == "datachatd" and st.st_uid == uid:
            out.append(int(d))
    return out


@pytest.fixture(scope="module")
def deb():
    debs = glob.glob(os.path.join(DEB_DIR, "datachatd_*.deb"))
    if not debs:
        r = sh(os.path.join(ROOT, "scripts", "package"), timeout=1800)
        debs = glob.glob(os.path.join(DEB_DIR, "datachatd_*.deb"))
        assert debs, r.stdout + r.stderr
    return sorted(debs)[-1]


@pytest.fixture
def package(deb):
    # several checkouts may run this suite on one machine: one at a time
    lock = open("/var/lock/datachatd-package-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    assert not installed(), "a datachatd package is installed already; " \
        "this test installs and purges its own"
    try:
        yield sh("dpkg", "-i", deb, timeout=300)
    finally:
        for pid in daemon_pids():
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        sh("dpkg", "--purge", "datachatd", check=False, timeout=300)
        lock.close()


def test_lintian_reports_no_error(deb):
    report = os.path.join(DEB_DIR, "lintian.txt")
    assert os.path.exists(report), "scripts/package writes lintian.txt"
    text = open(report).read()
    assert not re.search(r"^E: ", text, re.M), text


def test_install_start_talk_reload_rotate_stop_purge(package):
    # what dpkg put where, with which owners and modes
    for f in ("/usr/sbin/datachatd", "/usr/sbin/datachatctl",
              "/etc/init.d/datachatd", "/lib/systemd/system/datachatd.service",
              "/etc/logrotate.d/datachatd", "/usr/lib/tmpfiles.d/datachatd.conf",
              "/usr/lib/sysusers.d/datachatd.conf",
              "/usr/share/man/man8/datachatd.8.gz",
              "/usr/share/man/man5/datachatd.conf.5.gz",
              "/usr/share/man/man8/datachatctl.8.gz",
              "/usr/share/doc/datachatd/copyright"):
        assert os.path.exists(f), f
    user = pwd.getpwnam("datachat")
    st = os.stat(CONF)
    assert oct(st.st_mode & 0o777) == "0o640" and st.st_uid == 0
    assert st.st_gid == user.pw_gid
    assert os.stat("/etc/default/datachatd").st_mode & 0o777 == 0o600
    conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}", "datachatd").stdout
    assert CONF in conffiles and "/etc/default/datachatd" in conffiles
    assert not daemon_pids(), "the package must not start an unconfigured " \
        "daemon"
    # the shipped configuration checks clean as it is
    r = sh("/usr/sbin/datachatd", "-t", "-c", CONF)
    assert "syntax and values OK" in r.stdout

    # a free port instead of 8000 on this shared machine
    port = free_port()
    text = open(CONF).read()
    with open(CONF, "w") as f:
        f.write(text.replace("listen = 127.0.0.1:8000",
                             "listen = 127.0.0.1:%d" % port))
    r = sh("/etc/init.d/datachatd", "start")
    pids = daemon_pids()
    assert pids and os.path.exists(PIDFILE), r.stdout + r.stderr
    master = int(open(PIDFILE).read())
    assert master in pids
    with open("/proc/%d/cmdline" % master, "rb") as f:
        assert f.read().startswith(b"datachatd: master -c " + CONF.encode())

    base = "http://127.0.0.1:%d" % port
    r = sh("curl", "-fsS", "-A", "package-test", base + "/api/v1/health")
    assert '"status":"healthy"' in r.stdout
    # datachatctl finds the socket of the shipped configuration by itself
    r = sh("/usr/sbin/datachatctl", "status")
    assert "pid: %d" % master in r.stdout, r.stdout
    assert os.stat(SOCK).st_uid == user.pw_uid
    r = sh("/usr/sbin/datachatctl", "reload", "--wait")
    assert "reloaded" in r.stdout
    assert sh("/etc/init.d/datachatd", "reload").returncode == 0
    assert sh("/etc/init.d/datachatd", "status").returncode == 0
    assert requests.get(base + "/api/v1/health", timeout=10).status_code == 200

    # rotation: logrotate moves the file, datachatctl log-reopen follows
    wait_for(lambda: "package-test" in open(LOG).read(), what="access line")
    r = sh("logrotate", "-f", "/etc/logrotate.d/datachatd")
    assert os.path.exists(LOG + ".1"), r.stdout + r.stderr
    requests.get(base + "/api/v1/health", headers={"User-Agent": "after-rotate"},
                 timeout=10)
    wait_for(lambda: os.path.exists(LOG) and "after-rotate" in open(LOG).read(),
             what="the new log file in use")
    assert os.stat(LOG).st_uid == user.pw_uid
    assert "after-rotate" not in open(LOG + ".1").read()

    r = sh("/etc/init.d/datachatd", "stop", timeout=120)
    wait_for(lambda: not daemon_pids(), timeout=20, what="no daemon left")
    assert not os.path.exists(PIDFILE) and not os.path.exists(SOCK)
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/api/v1/health", timeout=5)
    assert sh("/etc/init.d/datachatd", "status", check=False).returncode == 3

    # the unit, checked by systemd's own tools
    if shutil.which("systemd-analyze"):
        r = sh("systemd-analyze", "verify",
               "/lib/systemd/system/datachatd.service", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        r = sh("systemd-analyze", "security", "--offline=yes",
               "/lib/systemd/system/datachatd.service", check=False)
        m = re.search(r"Overall exposure level for datachatd\.service: "
                      r"([0-9.]+)", r.stdout)
        assert m and float(m.group(1)) < 3.0, r.stdout

    sh("dpkg", "--purge", "datachatd", timeout=300)
    assert not installed()
    assert not os.path.exists(CONF) and not os.path.exists("/var/log/datachatd")
    assert not os.path.exists("/usr/sbin/datachatd")
