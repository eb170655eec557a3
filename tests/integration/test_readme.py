"""The README runs as written: scripts/quickstart starts (embedded
cluster, demo target) and the README's shell blocks marked
<!-- readme-test --> run in order, in one bash, from a directory that
looks like the repository (var/, build/plain/), against that daemon.  A
`# → ` line after a command is what the command prints: JSON is compared
by structure (every key shown must be there with the value shown; extra
keys are allowed, so a response that grows does not break it), other
text line by line; `…` stands for anything.  Catches README drift."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import BUILD, ROOT, free_port, wait_for

README = os.path.join(ROOT, "README.md")
MARK = "<!-- readme-test -->"


def runnable_blocks():
    text = open(README).read()
    blocks = []
    for m in re.finditer(re.escape(MARK) + r"\n```sh\n(.*?)```", text, re.S):
        blocks.append(m.group(1))
    return blocks


def steps(block):
    """(command, [expected lines]) in order; continuation lines joined."""
    out, cmd, expect = [], None, []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# → ") or line == "# →":
            assert cmd is not None, "output before any command: " + line
            expect.append(line[4:])
        elif line.strip() == "" or line.startswith("#"):
            pass
        else:
            if cmd is not None:
                out.append((cmd, expect))
            cmd, expect = line, []
            # backslash continuations and an open single-quoted -d '{...
            while cmd.endswith("\\") or cmd.count("'") % 2 == 1:
                i += 1
                cmd += "\n" + lines[i]
        i += 1
    if cmd is not None:
        out.append((cmd, expect))
    return out


def pattern(s):
    return "^" + ".*".join(re.escape(p) for p in s.split("…")) + "$"


def to_json(s):
    """Parse an expected JSON line: a bare … is any value, ',…}' more keys."""
    s = re.sub(r",\s*…\s*([}\]])", r"\1", s)
    out, in_str, i = [], False, 0
    while i < len(s):
        c = s[i]
        if c == '"' and (i == 0 or s[i - 1] != "\\"):
            in_str = not in_str
        if c == "…" and not in_str:
            out.append('"…"')
        else:
            out.append(c)
        i += 1
    return json.loads("".join(out))


def matches(expected, actual, where="$"):
    if isinstance(expected, str) and "…" in expected:
        assert re.match(pattern(expected), json.dumps(actual)
                        if not isinstance(actual, str) else actual, re.S), \
            "%s: %r does not match %r" % (where, actual, expected)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), "%s: %r is not an object" % (
            where, actual)
        for k, v in expected.items():
            assert k in actual, "%s: no key %r in %r" % (where, k, actual)
            matches(v, actual[k], where + "." + k)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            "%s: %r is not %r" % (where, actual, expected)
        for n, (e, a) in enumerate(zip(expected, actual)):
            matches(e, a, "%s[%d]" % (where, n))
    else:
        assert expected == actual, "%s: %r != %r" % (where, actual, expected)


def check_output(cmd, expect, got):
    lines = got.rstrip("\n").split("\n") if got.strip() else []
    assert len(lines) == len(expect), \
        "%s\nprinted %d line(s), the README shows %d:\n%s" % (
            cmd, len(lines), len(expect), got)
    for e, a in zip(expect, lines):
        if e.startswith(("{", "[")):
            try:
                actual = json.loads(a)
            except ValueError:
                raise AssertionError("%s\nnot JSON: %r" % (cmd, a))
            matches(to_json(e), actual, cmd.splitlines()[0])
        else:
            assert re.match(pattern(e), a), "%s\n%r does not match %r" % (
                cmd, a, e)


class Shell:
    """One bash for the whole README, as a reader's terminal."""

    def __init__(self, cwd, env):
        self.p = subprocess.Popen(["bash", "--noprofile", "--norc"],
                                  cwd=cwd, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.n = 0

    def run(self, cmd, timeout=60):
        self.n += 1
        mark = "__README_STEP_%d__" % self.n
        self.p.stdin.write(cmd + "\necho; echo %s $?\n" % mark)
        self.p.stdin.flush()
        buf = []
        while True:
            line = self.p.stdout.readline()
            assert line, "bash ended during: " + cmd
            if line.startswith(mark):
                rc = int(line.split()[1])
                break
            buf.append(line)
        text = "".join(buf)
        assert text.endswith("\n")
        return rc, text[:-1]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


@pytest.fixture
def quickstart():
    """scripts/quickstart in the foreground of its own session, its state
    in a scratch directory, on a free port."""
    state = tempfile.mkdtemp(prefix="dc-readme-")
    os.chmod(state, 0o755)
    var = os.path.join(state, "var")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))}
    env.update(QUICKSTART_VAR=var, DATACHATD_LISTEN="127.0.0.1:%d" % port,
               QUICKSTART_BUILD=os.path.basename(BUILD.rstrip("/")))
    log = open(os.path.join(state, "quickstart.log"), "w")
    qs = subprocess.Popen([os.path.join(ROOT, "scripts", "quickstart")],
                          env=env, stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(os.path.join(var, "demo.id")) or
                 qs.poll() is not None, timeout=240, step=0.5,
                 what="the quickstart to register its demo")
        assert qs.poll() is None, open(log.name).read()
        # a directory that looks like the repository to the README
        work = os.path.join(state, "repo")
        os.makedirs(os.path.join(work, "build"))
        os.symlink(var, os.path.join(work, "var"))
        os.symlink(BUILD, os.path.join(work, "build", "plain"))
        yield work, env, port
    finally:
        os.killpg(qs.pid, signal.SIGINT)
        try:
            qs.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(qs.pid, signal.SIGKILL)
            qs.wait()
        log.close()
        subprocess.run([os.path.join(ROOT, "scripts", "quickstart"), "stop"],
                       env=env, capture_output=True, timeout=120)
        loc = os.path.join(var, "pg.location")
        if os.path.exists(loc):
            shutil.rmtree(open(loc).read().strip(), ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def test_readme_blocks_parse():
    blocks = runnable_blocks()
    assert blocks, "no %s block in README.md" % MARK
    n = sum(len(steps(b)) for b in blocks)
    assert n >= 15, n
    for b in blocks:
        for cmd, expect in steps(b):
            for e in expect:
                if e.startswith(("{", "[")):
                    to_json(e)      # every shown JSON output parses


def test_readme_runs_as_written(quickstart):
    work, env, port = quickstart
    sh = Shell(work, env)
    try:
        for block in runnable_blocks():
            for cmd, expect in steps(block):
                rc, out = sh.run(cmd)
                assert rc == 0, "%s\nexited %d:\n%s" % (cmd, rc, out)
                if expect:
                    check_output(cmd, expect, out)
    finally:
        sh.close()
