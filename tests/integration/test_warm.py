"""A new worker's first seconds and how clients fall over the workers
(issue 17's cold-start tail), against the real daemon and a real
PostgreSQL: after a reload the new workers connect to the targets the
old ones used and read their policy catalogs before they accept, so
the first requests wait for neither; a burst of clients is spread over
the workers.  No timing is asserted: what is counted is what happened.
"""
import os
import re
import signal
import socket

from conftest import clean_env, wait_for
from test_query import backends, ok_rows, register, sql


def target_counts(d, target):
    """(connections open, connections opened, queries ok) on target,
    summed over the live workers, from /metrics."""
    text = d.get("/metrics").text

    def one(name, extra=""):
        m = re.search(r'^%s\{target="%s"%s\} (\d+)$' % (name, target, extra),
                      text, re.M)
        return int(m.group(1)) if m else 0
    opened = re.search(r"^datachatd_target_connections_opened_total (\d+)$",
                       text, re.M)
    return (one("datachatd_target_connections_open"),
            int(opened.group(1)) if opened else 0,
            one("datachatd_queries_total", ',outcome="ok"'))


def per_worker(d, name):
    """{pid: value} of a per-worker counter in /metrics."""
    text = d.get("/metrics").text
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(
        r'^datachatd_worker_%s_total\{worker="\d+",pid="(\d+)"\} (\d+)$'
        % name, text, re.M)}


def test_reload_warms_up_the_targets_in_use(daemon_factory, registry_env,
                                            pg):
    db = pg.create_db("warm")
    # a warm-up slower than this (a loaded machine) would be cut short
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"warm_timeout": "20000"}).start(wait_ready=True)
    t = register(d, "warm", pg.url(db))
    # both workers use the target (each request on a new connection)
    served = set()
    for i in range(200):
        r = sql(d, "SELECT %d AS i" % i, t)
        assert ok_rows(r)["i"] == [i]
        served.add(r.headers["X-Datachatd-Worker"])
        if len(served) == 2:
            break
    assert len(served) == 2, served
    old = d.workers()
    d.send(signal.SIGHUP)
    wait_for(lambda: len(d.workers()) == 2 and
             not set(d.workers()) & set(old), timeout=30,
             what="the old workers replaced")
    # before any query: each new worker holds a connection to the target
    # and has read its policy catalog (one query each), counted by the
    # new workers alone (the old ones' counters left with them)
    open_, opened, queries = target_counts(d, t)
    assert open_ >= 2 and opened == open_, (open_, opened)
    assert queries == 2, queries
    assert backends(pg, db) >= 2
    # so the first queries open nothing and read no catalog
    for i in range(10):
        assert ok_rows(sql(d, "SELECT %d AS i" % i, t))["i"] == [i]
    open2, opened2, queries2 = target_counts(d, t)
    assert opened2 == opened and queries2 == queries + 10, \
        (opened, opened2, queries, queries2)


def test_peers_warm_up_a_target_one_of_them_uses(daemon_factory,
                                                registry_env, pg):
    """In a daemon that just started, the first query on a target lands
    on one worker; the other connects to the target and reads its
    catalog too, before any client of its own asks."""
    db = pg.create_db("peer")
    d = daemon_factory(workers=2, env=clean_env(registry_env)).start(
        wait_ready=True)
    t = register(d, "peer", pg.url(db))
    assert target_counts(d, t) == (0, 0, 0)
    assert ok_rows(sql(d, "SELECT 1 AS i", t))["i"] == [1]
    # the query and both workers' catalog reads; a connection each
    wait_for(lambda: target_counts(d, t) == (2, 2, 3), timeout=20,
             what="the other worker warmed up")
    assert backends(pg, db) == 2


def test_no_warm_up_when_turned_off(daemon_factory, registry_env, pg):
    """warm_targets = 0: a new worker connects on its first query."""
    db = pg.create_db("cold")
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"warm_targets": "0"}).start(wait_ready=True)
    t = register(d, "cold", pg.url(db))
    assert ok_rows(sql(d, "SELECT 1 AS i", t))["i"] == [1]
    old = d.workers()
    d.send(signal.SIGHUP)
    wait_for(lambda: len(d.workers()) == 1 and d.workers() != old,
             timeout=30, what="the old worker replaced")
    assert target_counts(d, t) == (0, 0, 0)
    assert ok_rows(sql(d, "SELECT 2 AS i", t))["i"] == [2]
    assert target_counts(d, t)[1:] == (1, 2)    # its catalog, then it


def test_a_burst_of_clients_is_spread(daemon_factory):
    """16 clients connect at once while the workers are stopped (so the
    connections wait in the kernel's queue together, as a load
    generator's do) and keep their connections: each worker takes a
    share, not whichever runs first all of them."""
    d = daemon_factory(workers=2).start()
    workers = d.workers()
    before = per_worker(d, "connections_accepted")
    socks = []
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n"
                      b"\r\n")
            socks.append(s)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    by = {}
    try:
        for s in socks:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, head
                head += chunk
            m = re.search(rb"\r\nX-Datachatd-Worker: (\d+)\r\n", head)
            assert m, head
            by[m.group(1)] = by.get(m.group(1), 0) + 1
        after = per_worker(d, "connections_accepted")
    finally:
        for s in socks:
            s.close()
    assert sum(by.values()) == 16 and len(by) == 2, by
    assert min(by.values()) >= 5, by
    # the counters agree (plus the /metrics requests' own connections)
    got = sorted(after[p] - before.get(p, 0) for p in workers)
    assert sum(got) in (17, 18) and got[0] >= 5, (before, after)
