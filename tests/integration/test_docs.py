"""The documentation and the init script against the code: the man pages
lint clean and name every config key, datachatctl command and datachatd
option the code has, and etc/init.d/datachatd starts, reloads and stops
the real daemon."""
import os
import re
import shutil
import signal
import subprocess

import pytest
import requests

from conftest import DATACHATD, ROOT, free_port, procs_with, wait_for

MAN = os.path.join(ROOT, "man")
PAGES = ["datachatd.8", "datachatd.conf.5", "datachatctl.8"]
BUILD = os.environ.get("DC_BUILDDIR", os.path.join(ROOT, "build", "plain"))
# made by configure from etc/init.d/datachatd.in
INIT = os.path.join(BUILD, "etc", "init.d", "datachatd")


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def config_keys():
    """(key, reload, env) for every key datachatd --dump-config prints."""
    r = subprocess.run([DATACHATD, "--dump-config"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    keys, comment = [], ""
    for line in r.stdout.splitlines():
        m = re.match(r"#([a-z_][a-z0-9_]*) = ", line)
        if m:
            reload = re.search(r"reload: (yes|no)", comment)
            env = re.search(r"environment: ([A-Z_0-9]+)", comment)
            keys.append((m.group(1), reload and reload.group(1),
                         env and env.group(1)))
        comment = line
    assert len(keys) > 10, r.stdout
    return keys


def items(page, section=None):
    """The heads of a page's .It items (an .It Xo head runs to .Xc), in
    the given .Sh section or everywhere, each with the lines of its body."""
    lines = read("man", page).splitlines()
    out, cur_sec, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(".Sh "):
            cur_sec = line[4:].strip()
        if line.startswith(".It") and (section is None or cur_sec == section):
            head = line[3:].strip()
            if head == "Xo":
                head = ""
                i += 1
                while i < len(lines) and lines[i] != ".Xc":
                    head += " " + lines[i].lstrip(".")
                    i += 1
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].startswith((".It", ".El")):
                body.append(lines[j])
                j += 1
            out.append((head.strip(), body))
        i += 1
    return out


def first_word_after(macro, head):
    m = re.search(r"(?:^|\s)%s\s+(\S+)" % macro, head)
    return m.group(1) if m else None


# --- (a) mandoc -T lint ---

@pytest.mark.parametrize("page", PAGES)
def test_man_page_lints_clean(page):
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc is not installed")
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                        os.path.join(MAN, page)], capture_output=True,
                       text=True, timeout=30)
    assert r.stdout == "" and r.stderr == "", r.stdout + r.stderr


# --- (b) every config key in datachatd.conf(5) and etc/datachatd.conf ---

def test_every_config_key_is_documented():
    documented = {}
    for head, body in items("datachatd.conf.5", "DESCRIPTION"):
        k = first_word_after("Ic", head)
        if head.startswith("Ic ") and k:
            documented[k] = "\n".join(body)
    sample = read("etc", "datachatd.conf")
    missing, wrong = [], []
    for key, reload, env in config_keys():
        if not re.search(r"^#%s = " % key, sample, re.M):
            missing.append("etc/datachatd.conf: " + key)
        if key not in documented:
            missing.append("datachatd.conf.5: .It Ic " + key)
            continue
        body = documented[key]
        if reload and "Reload: %s." % reload not in body:
            wrong.append("%s: should say Reload: %s." % (key, reload))
        if env and not re.search(r"^\.Ev %s\b" % env, body, re.M):
            wrong.append("%s: should name .Ev %s" % (key, env))
    keys = {k for k, _, _ in config_keys()}
    stale = sorted(set(documented) - keys)
    assert not missing, "undocumented keys: %r" % missing
    assert not wrong, wrong
    assert not stale, "datachatd.conf.5 documents keys the code lacks: %r" \
        % stale


def test_every_environment_variable_is_documented():
    page8 = read("man", "datachatd.8")
    defaults = read("etc", "default", "datachatd.in")
    for _, _, env in config_keys():
        if env is None:
            continue
        assert re.search(r"\b%s\b" % env, page8), "datachatd.8: " + env
        assert re.search(r"^#?%s=" % env, defaults, re.M), \
            "etc/default/datachatd: " + env


# --- (c) every datachatctl command in datachatctl(8) ---

def ctl_commands():
    """The commands of datachatctl -h, which prints dc_ctl_commands[]."""
    from conftest import DATACHATCTL
    r = subprocess.run([DATACHATCTL, "-h"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    cmds, in_section = [], False
    for line in r.stdout.splitlines():
        if re.match(r"^[a-z]+ commands.*:$", line):
            in_section = True
        elif not line.strip():
            in_section = False
        elif in_section:
            m = re.match(r"^  ([a-z][a-z-]*)(?: |$)", line)
            if m:
                cmds.append(m.group(1))
    assert len(cmds) > 5, r.stdout
    return cmds


def test_every_datachatctl_command_is_documented():
    documented = set()
    for head, _ in items("datachatctl.8", "COMMANDS"):
        c = first_word_after("Cm", head)
        if head.startswith("Cm") and c:
            documented.add(c)
    cmds = ctl_commands()
    missing = [c for c in cmds if c not in documented]
    stale = sorted(documented - set(cmds))
    assert not missing, "datachatctl.8 lacks .It Cm for %r" % missing
    assert not stale, "datachatctl.8 documents commands the code lacks: " \
        "%r" % stale


# --- (d) every datachatd option in datachatd(8) ---

def test_every_datachatd_option_is_documented():
    r = subprocess.run([DATACHATD, "-h"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    opts = set(re.findall(r"^\s+(--?[A-Za-z][\w-]*)", r.stdout, re.M))
    usage = re.search(r"usage: datachatd \[-(\w+)\]", r.stdout)
    assert usage, r.stdout
    opts |= {"-" + c for c in usage.group(1)}
    assert {"-c", "-f", "-t", "--dump-config"} <= opts, opts
    documented = set()
    for head, _ in items("datachatd.8", "OPTIONS"):
        for flag in re.findall(r"(?:^|\s)Fl\s+(\S+)", head):
            documented.add("-" + flag.replace("\\-", "-"))
    missing = sorted(opts - documented)
    assert not missing, "datachatd.8 OPTIONS lacks %r" % missing
    synopsis = read("man", "datachatd.8").split(".Sh SYNOPSIS")[1]
    synopsis = synopsis.split(".Sh ")[0]
    in_synopsis = set()
    for flag in re.findall(r"(?:^|\s)Fl\s+(\S+)", synopsis):
        if flag.startswith("\\-"):
            in_synopsis.add("-" + flag.replace("\\-", "-"))
        else:
            in_synopsis |= {"-" + c for c in flag}   # -fhtVv
    missing = sorted(opts - in_synopsis)
    assert not missing, "datachatd.8 SYNOPSIS lacks %r" % missing


# --- (e) the init script drives the real daemon ---

class InitScript:
    """etc/init.d/datachatd pointed at a config, pidfile and log in tmp."""

    def __init__(self, tmp_path, defaults="/dev/null"):
        self.dir = tmp_path
        self.port = free_port()
        self.conf = str(tmp_path / ("datachatd-init-%d.conf" % self.port))
        self.pidfile = str(tmp_path / "run" / "datachatd.pid")
        self.log = str(tmp_path / "datachatd.log")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LLM_", "DATABASE_",
                                         "SYSTEM_DATABASE", "DAEMON"))}
        self.env.update(DAEMON=DATACHATD, CONFIG=self.conf,
                        PIDFILE=self.pidfile, DEFAULTS_FILE=defaults)
        self.write_conf()

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write('listen = "127.0.0.1:%d"\nworkers = 2\n'
                    'pidfile = "%s"\nlog = "%s"\nshutdown_timeout = 10\n%s'
                    % (self.port, self.pidfile, self.log, extra))

    def run(self, action):
        return subprocess.run(["sh", INIT, action], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=90)

    def health(self):
        return requests.get("http://127.0.0.1:%d/api/v1/health" % self.port,
                            timeout=5).status_code

    def master(self):
        with open(self.pidfile) as f:
            return int(f.read())

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def leftovers(self):
        return procs_with(self.conf)

    def cleanup(self):
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def init_script(tmp_path):
    made = []

    def make(**kw):
        s = InitScript(tmp_path, **kw)
        made.append(s)
        return s

    yield make
    left = []
    for s in made:
        if s.leftovers():
            left.append(s.leftovers())
            s.cleanup()
    assert not left, "datachatd processes left behind: %r" % left


def test_init_script_start_status_reload_stop(init_script):
    s = init_script()
    r = s.run("start")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # start returns once the pid file names the detached master
    assert os.path.exists(s.pidfile), out
    wait_for(lambda: s.health() == 200, timeout=20, what="health")
    master = s.master()
    assert master in s.leftovers()

    r = s.run("status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(master) in r.stdout

    # a second start is a no-op, not a second daemon
    r = s.run("start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert s.master() == master

    r = s.run("reload")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: "reloading configuration" in s.log_text(),
             what="reload in the log")
    assert s.master() == master
    assert s.health() == 200

    # a broken file is refused before any signal is sent
    s.write_conf("this line is broken\n")
    before = s.log_text().count("reloading configuration")
    r = s.run("reload")
    assert r.returncode != 0
    assert ":6:" in r.stderr, r.stderr
    assert s.log_text().count("reloading configuration") == before
    assert s.health() == 200
    s.write_conf()

    r = s.run("restart")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: s.health() == 200, timeout=20, what="health")
    assert s.master() != master

    r = s.run("stop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "smart shutdown requested" in s.log_text()
    assert not os.path.exists(s.pidfile)
    wait_for(lambda: not s.leftovers(), timeout=10,
             what="no datachatd process left")
    with pytest.raises(requests.ConnectionError):
        s.health()

    r = s.run("status")
    assert r.returncode == 3, r.stdout + r.stderr

    # stopping a stopped daemon succeeds; reloading it does not
    assert s.run("stop").returncode == 0
    assert s.run("reload").returncode != 0


def test_init_script_refuses_broken_config(init_script):
    s = init_script()
    s.write_conf("workers = lots\n")
    r = s.run("start")
    assert r.returncode != 0
    assert "workers" in r.stderr, r.stderr
    assert not s.leftovers()
    assert not os.path.exists(s.pidfile)
    assert s.run("status").returncode == 3


def test_init_script_exports_defaults_file(init_script, tmp_path):
    defaults = tmp_path / "defaults"
    # a bad value proves the variable reaches datachatd
    defaults.write_text("LLM_TIMEOUT=forever\n")
    s = init_script(defaults=str(defaults))
    r = s.run("start")
    assert r.returncode != 0
    assert "LLM_TIMEOUT" in r.stderr, r.stderr
    assert not s.leftovers()

    defaults.write_text("# comment\n"
                        "DATABASE_URL=postgresql://u:pw@127.0.0.1:1/x\n"
                        "DAEMON_OPTS=-v\n")
    r = s.run("start")
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        # the title names the master and its config; -v shows in the log
        with open("/proc/%d/cmdline" % s.master(), "rb") as f:
            assert f.read().rstrip(b"\0") == b"datachatd: master -c " + \
                s.conf.encode()
        r = requests.get("http://127.0.0.1:%d/api/v1/databases" % s.port,
                         timeout=5)
        ids = [c["connection_id"] for c in r.json()]
        assert "00000000-0000-0000-0000-00000000dada" in ids
    finally:
        assert s.run("stop").returncode == 0
    wait_for(lambda: not s.leftovers(), timeout=10,
             what="no datachatd process left")
    assert " DEBUG: " in s.log_text()     # DAEMON_OPTS=-v


def test_make_install_places_everything_and_keeps_operator_files(tmp_path):
    """make install DESTDIR=...: every file where configure said, the
    secrets private, the operator's files kept, and the init script, the
    unit, the shipped configuration and datachatctl agreeing on paths."""
    dest = str(tmp_path / "dest")

    def install():
        r = subprocess.run(["make", "-s", "-C", BUILD, "install",
                            "DESTDIR=" + dest],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr

    def makevar(name):
        r = subprocess.run(["make", "-s", "-C", BUILD, "--no-print-directory",
                            "-f", "Makefile", "-f", "-", "print"],
                           input="print:\n\t@echo $(%s)\n" % name,
                           capture_output=True, text=True, timeout=60)
        return r.stdout.strip()

    install()
    sbindir, sysconfdir = makevar("sbindir"), makevar("sysconfdir")
    runstatedir, localstatedir = makevar("runstatedir"), makevar("localstatedir")
    unitdir, mandir = makevar("systemdunitdir"), makevar("mandir")

    def path(p):
        return dest + p

    for want in (sbindir + "/datachatd", sbindir + "/datachatctl",
                 sysconfdir + "/datachatd/datachatd.conf",
                 sysconfdir + "/default/datachatd",
                 sysconfdir + "/init.d/datachatd",
                 sysconfdir + "/logrotate.d/datachatd",
                 unitdir + "/datachatd.service",
                 makevar("tmpfilesdir") + "/datachatd.conf",
                 makevar("sysusersdir") + "/datachatd.conf",
                 makevar("docdir") + "/datachatd.conf.sample",
                 mandir + "/man8/datachatd.8", mandir + "/man8/datachatctl.8",
                 mandir + "/man5/datachatd.conf.5"):
        assert os.path.isfile(path(want)), want
    assert os.access(path(sysconfdir + "/init.d/datachatd"), os.X_OK)
    assert os.stat(path(sysconfdir + "/default/datachatd")).st_mode & 0o077 == 0
    conf = path(sysconfdir + "/datachatd/datachatd.conf")
    assert os.stat(conf).st_mode & 0o027 == 0
    text = open(conf).read()
    rundir = runstatedir + "/datachatd"
    assert "\npidfile = %s/datachatd.pid\n" % rundir in text
    assert "\ncontrol_socket = %s/datachatd.sock\n" % rundir in text
    assert "\nuser = datachat\n" in text
    assert "\nlog = %s/log/datachatd/datachatd.log\n" % localstatedir in text
    unit = open(path(unitdir + "/datachatd.service")).read()
    assert "PIDFile=%s/datachatd.pid\n" % rundir in unit
    assert "ExecStart=%s/datachatd -c %s/datachatd/datachatd.conf" % (
        sbindir, sysconfdir) in unit
    init = open(path(sysconfdir + "/init.d/datachatd")).read()
    assert "DAEMON=${DAEMON:-%s/datachatd}" % sbindir in init
    assert "PIDFILE=${PIDFILE:-%s/datachatd.pid}" % rundir in init
    assert "CONFIG=${CONFIG:-%s/datachatd/datachatd.conf}" % sysconfdir in init
    assert not re.search(r"@[a-z]+@", unit + init + text), "unsubstituted"
    h = subprocess.run([path(sbindir + "/datachatctl"), "-h"],
                       capture_output=True, text=True).stdout
    assert rundir + "/datachatd.sock" in h and \
        sysconfdir + "/datachatd/datachatd.conf" in h
    # the operator's changes survive a second make install
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:9999\n")
    install()
    with open(conf) as f:
        assert f.read() == "listen = 127.0.0.1:9999\n", \
            "make install overwrote the config"
    # uninstall removes what is unchanged, keeps what the operator changed
    r = subprocess.run(["make", "-s", "-C", BUILD, "uninstall",
                        "DESTDIR=" + dest], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "kept %s: it was changed" % conf in r.stdout
    assert os.path.exists(conf)
    assert not os.path.exists(path(sysconfdir + "/default/datachatd"))
    assert not os.path.exists(path(sbindir + "/datachatd"))
