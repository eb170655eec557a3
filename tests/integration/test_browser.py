"""What a web page in a developer's browser can make the daemon do:
DNS rebinding (the Host check on loopback listeners) and cross-site
state-changing requests (the Origin check, whatever the Content-Type).
Real daemons over raw sockets, as a browser would send them."""
import json
import socket
import subprocess

import pytest


def raw(port, head, body=b"", host="127.0.0.1"):
    """Send one request (head without the final CRLF); status and body."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_b, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_b.split()[1])
        n = [int(l.split(b":")[1]) for l in head_b.split(b"\r\n")
             if l.lower().startswith(b"content-length:")]
        while n and len(rest) < n[0]:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest


def get(port, host_header, path="/api/v1/health", connect="127.0.0.1"):
    head = "GET %s HTTP/1.1\r\n" % path
    if host_header is not None:
        head += "Host: %s\r\n" % host_header
    return raw(port, head, host=connect)


def test_host_check_on_loopback_stops_dns_rebinding(daemon_factory):
    d = daemon_factory(workers=1, conf={"server_names": "dash.internal"}).start()
    p = d.port
    st, body = get(p, "evil.example:%d" % p)
    assert st == 403
    assert "Host evil.example" in json.loads(body)["detail"]
    assert "server_names" in json.loads(body)["detail"]
    for ok in ("localhost:%d" % p, "127.0.0.1:%d" % p, "127.0.0.1", "LocalHost",
               "dash.internal", "Dash.Internal:%d" % p):
        assert get(p, ok)[0] == 200, ok
    for bad in ("localhost.evil.example", "dash.internal.evil.example",
                "10.0.0.1:%d" % p, "[::2]:%d" % p, "127.1"):
        assert get(p, bad)[0] == 403, bad
    # HTTP/1.0 without Host: not a browser
    st, _ = raw(p, "GET /api/v1/health HTTP/1.0\r\n")
    assert st == 200
    # every route, not only the registry
    assert get(p, "evil.example", "/api/v1/databases")[0] == 403


def public_address():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout
    for a in out.split():
        if ":" not in a and not a.startswith("127."):
            return a
    return None


def test_host_is_not_checked_on_other_addresses(daemon_factory):
    addr = public_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    d = daemon_factory(workers=1, conf={"auth": "required"})
    d.settings["listen"] = "0.0.0.0:%d" % d.port
    d.write_conf()
    d.start()
    # the same listener: checked when reached over loopback ...
    assert get(d.port, "api.example.com")[0] == 403
    # ... not over another address (a public name is the operator's)
    assert get(d.port, "api.example.com", connect=addr)[0] == 200


BLOB = b'{"name":"x","database_url":"postgresql://u@127.0.0.1:1/x",' \
    b'"database_type":"postgresql"}'


def post(port, origin, ctype=None, path="/api/v1/databases", method="POST",
         body=BLOB, host=None):
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path,
                                              host or "127.0.0.1:%d" % port)
    if origin is not None:
        head += "Origin: %s\r\n" % origin
    if ctype is not None:
        head += "Content-Type: %s\r\n" % ctype
    return raw(port, head, body)


def test_cross_site_blob_post_is_refused(daemon_factory):
    d = daemon_factory(workers=1).start()
    p = d.port
    # fetch(url, {mode: "no-cors", method: "POST", body: new Blob([json])})
    for ctype in (None, "text/plain", "application/json",
                  "application/x-www-form-urlencoded"):
        st, body = post(p, "http://evil.example", ctype)
        assert st == 403, (ctype, st, body)
        assert "Origin http://evil.example" in json.loads(body)["detail"]
    for method in ("PUT", "PATCH", "DELETE"):
        st, _ = post(p, "http://evil.example", "application/json",
                     path="/api/v1/databases/00000000-0000-0000-0000-"
                     "00000000dada", method=method)
        assert st == 403, method
    st, _ = post(p, "null", None)
    assert st == 403
    # a WebSocket handshake from another site, too
    st, _ = raw(p, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Origin: http://evil.example\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n" % p)
    assert st == 403
    # reads are CORS's business: no Access-Control-Allow-Origin, no read
    st, _ = raw(p, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Origin: http://evil.example\r\n" % p)
    assert st == 200
    # allowed: a cors_origins origin, the page's own origin, no Origin
    for origin in ("http://localhost:3000", "http://127.0.0.1:%d" % p, None):
        st, body = post(p, origin, "application/json")
        assert st not in (401, 403), (origin, st, body)
    # the same origin only counts on a trusted Host
    st, _ = post(p, "http://evil.example:%d" % p, "application/json",
                 host="evil.example:%d" % p)
    assert st == 403


def test_cors_origins_star_allows_every_origin(daemon_factory):
    d = daemon_factory(workers=1, conf={"cors_origins": "*"}).start()
    st, body = post(d.port, "http://anywhere.example", "application/json")
    assert st not in (401, 403), body
