"""CORS as DataChat's CORSMiddleware answers it (Starlette 0.50 with
allow_origins from CORS_ORIGINS, allow_credentials, every method and
header), on every route, errors included; and the routing envelope that
comes with it: DataChat's 404/405 texts, the trailing-slash 307 and the
banner on GET /."""
import requests

from conftest import wait_for

UI = "http://localhost:3000"
METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"


def cors(r):
    return {k: v for k, v in r.headers.items()
            if k.lower().startswith("access-control-") or k.lower() == "vary"}


def preflight(d, path, origin, method="POST", headers="content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(d.url(path), headers=h, timeout=5)


def test_default_origins_preflight_and_simple(daemon_factory):
    d = daemon_factory(workers=1).start()
    for origin in (UI, "http://localhost:3001"):
        r = preflight(d, "/api/v1/databases", origin)
        assert r.status_code == 200 and r.text == "OK"
        assert cors(r) == {
            "Vary": "Origin",
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Max-Age": "600",
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Headers": "content-type",
        }
    # no headers asked for: none mirrored
    r = preflight(d, "/api/v1/chat", UI, headers=None)
    assert r.status_code == 200
    assert "Access-Control-Allow-Headers" not in r.headers
    # every path is preflighted, even one no route serves
    r = preflight(d, "/api/v1/no/such/route", UI, method="DELETE",
                  headers="x-custom, authorization")
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Headers"] == "x-custom, authorization"

    # actual requests: the origin echoed, on success and on errors alike
    want = {"Access-Control-Allow-Origin": UI,
            "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    for method, path, status in (("GET", "/api/v1/health", 200),
                                 ("GET", "/api/v1/nope", 404),
                                 ("DELETE", "/api/v1/health", 405),
                                 ("POST", "/api/v1/databases", 503)):
        r = requests.request(method, d.url(path), headers={"Origin": UI},
                             json={"name": "x", "database_url": "postgresql://h/d",
                                   "database_type": "postgresql"}, timeout=5)
        assert r.status_code == status, (path, r.text)
        assert cors(r) == want, (path, r.headers)

    # without Origin: no CORS header at all
    r = d.get("/api/v1/health")
    assert cors(r) == {}


def test_other_origins_get_nothing(daemon_factory):
    d = daemon_factory(workers=1).start()
    for origin in ("http://evil.example", "http://localhost:3000/",
                   "http://LOCALHOST:3000", "null"):
        r = preflight(d, "/api/v1/databases", origin)
        assert r.status_code == 400 and r.text == "Disallowed CORS origin"
        assert cors(r) == {"Vary": "Origin"}
        r = d.get("/api/v1/health", headers={"Origin": origin})
        assert r.status_code == 200 and cors(r) == {}
    r = preflight(d, "/api/v1/databases", UI, method="TRACE")
    assert r.status_code == 400 and r.text == "Disallowed CORS method"
    r = preflight(d, "/api/v1/databases", "http://evil.example", method="get")
    assert r.status_code == 400
    assert r.text == "Disallowed CORS origin, method"
    # OPTIONS that is not a preflight is routed like any method
    r = requests.options(d.url("/api/v1/health"), timeout=5)
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}


def test_cors_origins_from_env_and_config(daemon_factory, tmp_path):
    d = daemon_factory(workers=1, env={
        "CORS_ORIGINS": " https://ui.example:8443 ,http://127.0.0.1:9999,"})
    d.start()
    for origin in ("https://ui.example:8443", "http://127.0.0.1:9999"):
        assert preflight(d, "/api/v1/databases", origin).status_code == 200
        r = d.get("/api/v1/health", headers={"Origin": origin})
        assert r.headers["Access-Control-Allow-Origin"] == origin
    # the environment replaces the default list, as in DataChat
    assert preflight(d, "/api/v1/databases", UI).status_code == 400

    d2 = daemon_factory(workers=1, conf={"cors_origins": "http://a.test"})
    d2.start()
    assert preflight(d2, "/", "http://a.test").status_code == 200
    assert preflight(d2, "/", UI).status_code == 400

    # "*": any origin; "*" itself unless the request carries a cookie
    d3 = daemon_factory(workers=1, conf={"cors_origins": "*"}).start()
    r = d3.get("/api/v1/health", headers={"Origin": "http://x.test"})
    assert cors(r) == {"Access-Control-Allow-Origin": "*",
                       "Access-Control-Allow-Credentials": "true"}
    r = d3.get("/api/v1/health", headers={"Origin": "http://x.test",
                                          "Cookie": "a=b"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://x.test"
    r = preflight(d3, "/api/v1/chat", "http://x.test")
    assert r.headers["Access-Control-Allow-Origin"] == "http://x.test"


def test_bad_cors_origins_are_a_config_error(daemon_factory):
    import subprocess
    from conftest import DATACHATD
    for bad in ("localhost:3000", "http://localhost:3000/",
                "http://a.test/path", "ftp://a.test"):
        d = daemon_factory(workers=1, conf={"cors_origins": bad})
        r = subprocess.run([DATACHATD, "-t", "-c", d.conf_path], env=d.env,
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, bad
        assert "cors_origins" in r.stderr, r.stderr


def test_routing_envelope(daemon_factory):
    d = daemon_factory(workers=1).start()
    r = d.get("/api/v1/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = requests.put(d.url("/api/v1/tools"), timeout=5)
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}
    assert r.headers["Allow"] == "GET"
    r = requests.get(d.url("/api/v1/health/?x=1"), allow_redirects=False,
                     timeout=5)
    assert r.status_code == 307 and r.content == b""
    assert r.headers["Location"] == d.url("/api/v1/health?x=1")
    # the redirect is made whatever the method; the client follows it
    r = requests.get(d.url("/api/v1/health/"), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "healthy"
    r = requests.post(d.url("/api/v1/databases/"), allow_redirects=False,
                      timeout=5)
    assert r.status_code == 307
    assert r.headers["Location"].endswith("/api/v1/databases")
    # a slash after an unknown path is still 404
    assert d.get("/api/v1/nope/").status_code == 404
    r = d.get("/")
    assert r.status_code == 200 and r.json() == {
        "name": "DataChat API", "version": "0.1.0",
        "description": "Natural language interface for data warehouses",
        "docs": "/docs"}
