"""Where a target query's time goes, and what happens when one target
connection stalls (issue 17): per-query timing in /metrics and the debug
log, against the real daemon and a real PostgreSQL.
"""
import os
import re
import subprocess
import sys
import threading
import time

from conftest import clean_env, wait_for
from test_query import ok_rows, register, sql


def phase_metrics(d):
    """{phase: (count, sum in s, max in s)} from /metrics."""
    text = d.get("/metrics").text
    out = {}
    for m in re.finditer(r'^datachatd_query_phase_seconds_count\{phase="'
                         r'(\w+)"\} (\d+)$', text, re.M):
        out[m.group(1)] = [int(m.group(2)), None, None]
    for m in re.finditer(r'^datachatd_query_phase_seconds_sum\{phase="'
                         r'(\w+)"\} ([\d.]+)$', text, re.M):
        out[m.group(1)][1] = float(m.group(2))
    for m in re.finditer(r'^datachatd_query_phase_seconds_max\{phase="'
                         r'(\w+)"\} ([\d.]+)$', text, re.M):
        out[m.group(1)][2] = float(m.group(2))
    return out


def test_query_phases_in_metrics_and_debug_log(daemon_factory, registry_env,
                                               pg):
    """Each target query is timed once, whatever became of it: queued,
    behind others, first result, total, in /metrics and in the debug
    log; the phases nest (queue and first result within the total)."""
    db = pg.create_db("phase")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"log_level": "debug"}).start(wait_ready=True)
    t = register(d, "phase", pg.url(db))
    # the first statement reads the target's function policy catalog too
    assert ok_rows(sql(d, "SELECT 0 AS i", t))["i"] == [0]
    seen = []

    def settled():
        """what registering and the first statement started (schema and
        policy catalog reads) has finished"""
        seen.append(phase_metrics(d))
        time.sleep(0.3)
        return phase_metrics(d) == seen[-1]
    wait_for(settled, timeout=30, what="no query running")
    before = seen[-1]
    logged = len(d.log())
    assert set(before) == {"queue", "behind", "first_result", "total",
                           "check"}
    for i in range(5):
        assert ok_rows(sql(d, "SELECT %d AS i" % i, t))["i"] == [i]
    r = sql(d, "SELECT 1 / 0 AS boom", t)    # a failed one counts too
    assert r.status_code == 400, r.text
    assert ok_rows(sql(d, "SELECT pg_sleep(0.2) AS s", t))["s"] == [""]
    after = phase_metrics(d)
    for phase in after:
        assert after[phase][0] - before[phase][0] == 7, (phase, after)
    total = after["total"][1] - before["total"][1]
    assert total >= 0.2
    for phase in ("queue", "behind", "first_result"):
        assert after[phase][1] - before[phase][1] <= total + 1e-6, after
    assert after["total"][2] >= 0.2
    assert after["first_result"][2] <= after["total"][2]
    lines = [tuple(map(float, x)) for x in re.findall(
        r"query timing: queued ([\d.]+) ms, behind others ([\d.]+) ms, "
        r"first result ([\d.]+) ms, total ([\d.]+) ms", d.log()[logged:])]
    assert len(lines) == 7, lines
    assert max(x[3] for x in lines) >= 200     # pg_sleep(0.2)
    for q, behind, first, tot in lines:
        assert q <= first <= tot and behind <= first, lines


# --- a stalled target connection ---

class StallProxy:
    """stallproxy.py in a process of its own (so this one's client
    threads never delay it) in front of PostgreSQL at target_port: once
    armed, it holds the replies on the first connection that carries
    depth or more tagged queries in flight, for hold seconds."""

    def __init__(self, target_port, depth=3, hold=0.3):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__),
                                          "stallproxy.py"),
             str(target_port), str(depth), str(hold)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "port", line
        self.port = int(line[1])
        self.held = None        # (monotonic time, tags in flight)
        self.released = None    # monotonic time
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            w = line.split()
            if w[0] == "held":
                self.held = (float(w[2]), [int(x) for x in w[3].split(",")])
            elif w[0] == "released":
                self.released = float(w[2])

    def arm(self):
        self.proc.stdin.write("arm\n")
        self.proc.stdin.flush()

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def counter(d, name):
    for line in d.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def test_stalled_connection_moves_queries_behind_it(daemon_factory,
                                                   registry_env, pg):
    """A proxy holds one target connection's replies for 300 ms while
    queries are pipelined behind the one it runs: those queries are
    answered through other connections (another backend) while it is
    held, the one it runs is answered through it when it resumes, and
    every request gets its own answer exactly once."""
    import requests
    db = pg.create_db("stall")
    proxy = StallProxy(pg.port, depth=3, hold=0.3)
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"max_target_connections": "4",
                             "target_pipeline_depth": "8",
                             "target_stall_timeout": "100"}).start(
                                 wait_ready=True)
    try:
        url = pg.url(db).replace(":%d/" % pg.port, ":%d/" % proxy.port)
        t = register(d, "stall", url)
        warm = requests.Session()
        for i in range(20):     # quick queries: pipelining pays
            assert ok_rows(sql(d, "SELECT %d AS i" % i, t,
                               session=warm))["i"] == [i]
        ok_before = counter(d, 'datachatd_queries_total{outcome="ok"}')
        moved_before = counter(d, "datachatd_queries_moved_total")
        answers = {}            # tag -> (pid, monotonic time answered)
        errors = []
        seq = iter(range(1, 1000000))
        lock = threading.Lock()
        stop = threading.Event()

        def client():
            s = requests.Session()
            while not stop.is_set():
                with lock:
                    n = next(seq)
                r = sql(d, "SELECT 'stall-%d-tag' AS tag, pg_backend_pid() "
                        "AS pid" % n, t, session=s)
                when = time.monotonic()
                with lock:
                    if r.status_code != 200:
                        errors.append((n, r.status_code, r.text))
                        continue
                    data = r.json()["data"]
                    if n in answers:
                        errors.append((n, "answered twice"))
                    answers[n] = (data["pid"][0], when, data["tag"][0])

        threads = [threading.Thread(target=client) for _ in range(16)]
        for th in threads:
            th.start()
        try:
            # every connection open first: a query moved while the others
            # are still being opened would wait for them
            wait_for(lambda: counter(d, "datachatd_target_connections_open")
                     == 4, timeout=30, what="four target connections")
            proxy.arm()
            # until a pipelined group was held and has been let go
            wait_for(lambda: proxy.released is not None, timeout=120,
                     what="a connection with queries pipelined behind its "
                     "head, held by the proxy")
            time.sleep(0.3)
        finally:
            stop.set()
            for th in threads:
                th.join(60)
        inflight = proxy.held[1]
        assert not errors, errors[:5]
        sent = next(seq) - 1
        # none lost: every request answered with its own query's row
        assert sorted(answers) == list(range(1, sent + 1))
        assert all(v[2] == "stall-%d-tag" % k for k, v in answers.items())
        # none twice: the ghosts' answers were dropped, not counted
        ok = counter(d, 'datachatd_queries_total{outcome="ok"}') - ok_before
        assert ok == sent, (ok, sent)
        head, behind = inflight[0], inflight[1:]
        held_pid = answers[head][0]
        # the one it ran waited for the proxy; those behind it did not
        assert answers[head][1] >= proxy.released
        for tag in behind:
            assert answers[tag][0] != held_pid, (tag, inflight, answers[tag])
        moved = counter(d, "datachatd_queries_moved_total") - moved_before
        assert moved >= len(behind)
        assert counter(d, "datachatd_target_connections_stalled_total") >= 1
    finally:
        proxy.close()
