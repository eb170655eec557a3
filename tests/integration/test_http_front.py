"""The HTTP front under abuse: request heads RFC 9112 says to refuse
(smuggling), NUL and bad escapes, HEAD, half-closed clients, slow
clients (head and body deadlines), max_clients and running out of file
descriptors.  Real daemons over raw sockets."""
import json
import os
import re
import resource
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import wait_for


def connect(d, timeout=10):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    return s


def read_reply(s, timeout=10):
    """(status, headers dict with lower-case names, body, what follows)
    of one reply; interim 1xx replies are skipped, as a client must."""
    s.settimeout(timeout)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a reply: %r" % buf)
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 1"):
            break
        buf = rest
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        h[k.strip().lower()] = v.strip()
    n = int(h.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, h, rest[:n], rest[n:]


def closed_by_peer(s, timeout=10):
    """True when the daemon closes s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.fixture
def front(daemon_factory):
    return daemon_factory(workers=1).start()


# --- heads that must be refused ---

SMUGGLE = [
    ("two Content-Length, different",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400, "more than one"),
    ("two Content-Length, equal",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
     b"Content-Length: 2\r\n\r\n{}", 400, "more than one"),
    ("Content-Length not a number",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: +2\r\n\r\n{}",
     400, "not a number"),
    ("obs-fold",
     b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n  folded\r\n\r\n",
     400, "folding"),
    ("space before the colon",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length : 2\r\n\r\n{}",
     400, "whitespace in a header name"),
    ("Transfer-Encoding",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\n0\r\n\r\n", 411, "Content-Length"),
    # evhttp refuses this one itself (its own HTML 400): closed all the same
    ("Transfer-Encoding and Content-Length",
     b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, None),
    ("bare CR",      # evhttp refuses it too
     b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-B: a\rb\r\n\r\n", 400, None),
    ("NUL in a header",
     b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-C: a\x00b\r\n\r\n", 400, "NUL"),
    # found by fuzz_http: evhttp took a line of NULs for the end of the head
    ("a NUL line ends the head early",
     b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\x00\x00\r\n"
     b"Content-Length: 5\r\n\r\nhello", 400, "NUL"),
    # found by fuzz_http: evhttp answered "HTTP/0.1 200", or "HTTP/1.-1"
    ("HTTP/0.1",
     b"GET /api/v1/health HTTP/0.1\r\nHost: localhost\r\n\r\n", 505,
     "HTTP/1.0 and HTTP/1.1"),
    ("a version number that overflows",
     b"GET /api/v1/health HTTP/1.1777777777777777777\r\nHost: localhost\r\n\r\n",
     505, "HTTP/1.0 and HTTP/1.1"),
    ("HEAD with a body",
     b"HEAD /api/v1/health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
     400, "no body"),
]


@pytest.mark.parametrize("name,raw,status,why", SMUGGLE, ids=[s[0] for s in SMUGGLE])
def test_refused_heads_and_nothing_behind_them(front, name, raw, status, why):
    s = connect(front)
    # a request hidden behind the refused one must never be answered
    s.sendall(raw + b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    if raw.startswith(b"HEAD"):
        # a reply to HEAD has no body: read its head only
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d" % status), head
        assert b"Connection: close" in head
        assert rest == b"" and closed_by_peer(s)
        s.close()
        return
    s.settimeout(10)
    first = s.recv(16, socket.MSG_PEEK)
    assert first.startswith(b"HTTP/1.1 "), first
    st, h, body, rest = read_reply(s)
    assert st == status, (name, st, body)
    if why is not None:
        assert why in json.loads(body)["detail"], body
    assert h.get("connection") == "close"
    assert rest == b"" and closed_by_peer(s), "a second reply followed"
    s.close()
    assert front.get("/api/v1/health").status_code == 200


def test_bad_version_with_an_unknown_method_is_closed_unanswered(front):
    # evhttp answers an unknown method itself, in the request's version
    # ("HTTP/1.2 501"): the connection is closed before that goes out
    s = connect(front)
    s.sendall(b"HEAT /api/v1/health HTTP/1.2\r\nHost: localhost\r\n\r\n")
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data == b"" or data.startswith(b"HTTP/1.1 "), data[:100]
    s.close()
    assert front.get("/api/v1/health").status_code == 200


# found by fuzz_http: a request line with a bare CR or a NUL is read by
# evhttp otherwise than by our scan, and evhttp answered it itself in the
# version it found there ("HTTP/1.13 400 Bad Request", an HTML page)
BAD_REQUEST_LINES = [
    ("bare CR, version 1.13 and a line evhttp refuses",
     b"POST /api\rv1/chat HTTP/1.13\r\nHost: localhost\r\nno colon\r\n\r\n"),
    ("bare CR", b"GET /api/v1/he\ralth HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("NUL", b"GET /api/v1/health\x00x HTTP/1.1\r\nHost: localhost\r\n\r\n"),
]


@pytest.mark.parametrize("name,raw", BAD_REQUEST_LINES,
                         ids=[b[0] for b in BAD_REQUEST_LINES])
def test_malformed_request_line_is_refused_in_http11(front, name, raw):
    s = connect(front)
    s.sendall(raw + b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    # closed unanswered, or our own 400 (evhttp handed it to the routes
    # first), and nothing behind it read
    assert data == b"" or data.startswith(b"HTTP/1.1 400 "), data[:100]
    assert data.count(b"HTTP/1.") <= 1, data
    s.close()
    assert front.get("/api/v1/health").status_code == 200


def test_too_many_header_lines(front):
    s = connect(front)
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n" + \
        b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n"
    s.sendall(head)
    st, h, body, _ = read_reply(s)
    assert st == 431 and b"too many header lines" in body
    s.close()


def test_pipelined_requests_before_a_refused_one_are_answered(front):
    s = connect(front)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
              b"Content-Length: 9\r\n\r\n"
              b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, _, _, rest = read_reply(s)
    assert st == 200
    # the first reply may have carried the second along
    st2, _, body, _ = read_reply_from(s, rest)
    assert st2 == 400 and b"more than one Content-Length" in body
    assert closed_by_peer(s)
    s.close()


def read_reply_from(s, already):
    """Like read_reply, with bytes already read off s."""
    class Pre:
        def __init__(self):
            self.buf = already

        def settimeout(self, t):
            s.settimeout(t)

        def recv(self, n):
            if self.buf:
                b, self.buf = self.buf[:n], self.buf[n:]
                return b
            return s.recv(n)
    st, h, body, rest = read_reply(Pre())
    return st, h, body, rest


def test_nul_and_bad_escapes_in_the_path(front):
    for path in ("/api/v1/databases%00/zzz", "/api/v1/health%00",
                 "/api/v1/he%zzalth", "/api/v1/health%4", "/api/v1/health%0a",
                 "/api/v1/databases/%00"):
        s = connect(front)
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        st, _, body, _ = read_reply(s)
        s.close()
        assert st == 400, (path, st, body)
        assert "malformed request path" in json.loads(body)["detail"]
    # a good escape still works
    assert front.get("/api/v1/he%61lth").status_code == 200


def test_nul_in_an_id_is_400(front):
    # the path and the body: never routed as the id before the NUL
    r = front.get("/api/v1/databases/00000000-0000-0000-0000-00000000dada%00x")
    assert r.status_code == 400
    r = front.post("/api/v1/chat", {
        "message": "one", "execution_mode": "direct_sql", "sql": "SELECT 1",
        "target_database": "00000000-0000-0000-0000-00000000dada\u0000x"})
    assert r.status_code == 400, r.text
    assert "connection ID" in r.json()["detail"]


def test_head_is_headers_only_with_the_get_length(front):
    s = connect(front)
    s.sendall(b"HEAD /api/v1/tools HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.settimeout(5)
    data = b""
    while data.count(b"\r\n\r\n") < 2:
        data += s.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
         if l.lower().startswith(b"content-length:")]
    get = front.get("/api/v1/tools")
    assert n == [len(get.content)] and n[0] > 100
    # no body: what follows the head is the next reply, intact
    assert rest.startswith(b"HTTP/1.1 200"), rest[:200]
    s.close()
    # and HEAD of an error says its length too
    r = requests.head(front.url("/api/v1/nope"), timeout=10)
    assert r.status_code == 404 and int(r.headers["Content-Length"]) > 0
    assert r.content == b""


# --- slow clients ---

def test_slowloris_is_closed_at_the_header_deadline(daemon_factory):
    d = daemon_factory(workers=1, conf={"header_timeout": "2",
                                        "body_timeout": "2",
                                        "keepalive_timeout": "30"}).start()
    # one byte every half second: never a complete head
    s = connect(d)
    t0 = time.monotonic()
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
    closed = False
    for i in range(20):
        try:
            s.sendall(b"X")
        except OSError:
            closed = True
            break
        s.settimeout(0.5)
        try:
            if s.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            pass
    took = time.monotonic() - t0
    assert closed and 1.8 < took < 4, took
    s.close()
    # silent after connecting: the same deadline
    s = connect(d)
    t0 = time.monotonic()
    assert closed_by_peer(s, timeout=6)
    assert 1.8 < time.monotonic() - t0 < 4
    s.close()
    # a body that trickles: the body deadline
    s = connect(d)
    s.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.monotonic()
    assert closed_by_peer(s, timeout=6)
    assert 1.8 < time.monotonic() - t0 < 4
    s.close()
    # an idle keep-alive connection is another matter: keepalive_timeout
    s = connect(d)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_reply(s)[0] == 200
    assert not closed_by_peer(s, timeout=3.5), "closed as if a slow head"
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_reply(s)[0] == 200
    s.close()
    assert d.get("/api/v1/health").status_code == 200


def test_half_closed_client_gets_its_reply(daemon_factory, pg):
    d = daemon_factory(workers=1, env={"DATABASE_URL": pg.url("postgres")}).start()
    body = json.dumps({"message": "one", "execution_mode": "direct_sql",
                       "sql": "SELECT pg_sleep(1.5), 42 AS answer"}).encode()
    s = connect(d)
    s.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(15)
    first = s.recv(64)
    # the EOF is answered with an interim reply, which tells a closed
    # socket (a reset) from a half-closed one
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
    st, _, reply, _ = read_reply_from(s, first)
    assert st == 200, reply
    assert json.loads(reply)["data"]["answer"] == [42]
    s.close()
    assert " 499 " not in d.log()


# --- connections and descriptors ---

def test_max_clients_pauses_accepting(daemon_factory):
    d = daemon_factory(workers=1, conf={"max_clients": "4"}).start()
    held = [connect(d) for _ in range(4)]
    time.sleep(0.3)
    extra = connect(d)       # queued by the kernel, not accepted
    extra.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    extra.settimeout(1.0)
    with pytest.raises(socket.timeout):
        extra.recv(100)
    held[0].close()
    st, _, _, _ = read_reply(extra, timeout=5)
    assert st == 200
    for s in held[1:] + [extra]:
        s.close()


def worker_cpu_seconds(d):
    total = 0.0
    for pid in d.workers() + [d.proc.pid]:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@pytest.mark.parametrize("max_clients", ["1000", "0"])
def test_fd_exhaustion(daemon_factory, max_clients):
    """With ulimit -n 256 and a flood of idle connections: no spin, a
    bounded log, and health answers within a second once the flood ends.
    max_clients 1000 runs out of descriptors (EMFILE); the automatic
    value stops short of it."""
    d = daemon_factory(workers=2, conf={"max_clients": max_clients,
                                        "header_timeout": "60"})
    d.settings["log_level"] = "info"
    d.write_conf()
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, old[1]))
    try:
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    need = 1200
    if old[0] < need + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(old[1], need + 200), old[1]))
    flood = []
    try:
        log0 = os.path.getsize(d.log_path)
        for _ in range(700):
            try:
                flood.append(socket.create_connection(("127.0.0.1", d.port),
                                                      timeout=2))
            except OSError:
                break
        cpu0, t0 = worker_cpu_seconds(d), time.monotonic()
        time.sleep(3)
        cpu = (worker_cpu_seconds(d) - cpu0) / (time.monotonic() - t0)
        assert cpu < 0.2, "daemon busy at %.0f%% of a CPU" % (cpu * 100)
        grew = os.path.getsize(d.log_path) - log0
        assert grew < 20000, "log grew by %d bytes" % grew
        if max_clients == "1000":
            assert "pausing accept" in d.log()
    finally:
        for s in flood:
            s.close()
        if old[0] < need + 100:
            resource.setrlimit(resource.RLIMIT_NOFILE, old)
    t0 = time.monotonic()
    wait_for(lambda: requests.get(d.url("/api/v1/health"),
                                  timeout=1).status_code == 200,
             timeout=5, step=0.05, what="health after the flood")
    assert time.monotonic() - t0 < 1.0
    assert d.proc.poll() is None


def test_hup_storm_under_wrk_loses_nothing(daemon_factory):
    """100 SIGHUPs in 2 s under keep-alive load: the old workers answer
    what they accepted, and every reply while they drain says
    Connection: close, so wrk sees no socket error and no failure."""
    import signal
    d = daemon_factory(workers=2).start()
    wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d5s", "--timeout", "5s",
                            d.url("/api/v1/health")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    time.sleep(1)
    for _ in range(100):
        d.send(signal.SIGHUP)
        time.sleep(0.02)
    out = wrk.communicate(timeout=60)[0]
    assert wrk.returncode == 0, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    n = int(re.search(r"(\d+) requests in", out).group(1))
    assert n > 2000, out
    wait_for(lambda: len(d.workers()) == 2, timeout=20, what="2 workers again")
    assert d.get("/api/v1/health").status_code == 200
