"""Where a target query's time goes, and what happens when one target
connection stalls (issue 17): per-query timing in /metrics and the debug
log, against the real daemon and a real PostgreSQL.
"""
import re

from conftest import clean_env
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
    before = phase_metrics(d)
    assert set(before) == {"queue", "behind", "first_result", "total"}
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
    lines = re.findall(r"query timing: queued ([\d.]+) ms, behind others "
                       r"([\d.]+) ms, first result ([\d.]+) ms, total "
                       r"([\d.]+) ms", d.log())
    assert len(lines) >= 7
    slow = [tuple(map(float, x)) for x in lines if float(x[3]) >= 200]
    assert len(slow) == 1, lines
    q, behind, first, tot = slow[0]
    assert q <= first <= tot and behind <= first
