"""Registry benchmark driver; run it through scripts/bench-registry."""
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests
from cryptography.fernet import Fernet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("DC_BUILDDIR", os.path.join(ROOT, "build", "plain"))
from conftest import Daemon, PgCluster, free_port, wait_for  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNS = os.environ.get("BENCH_CONNECTIONS", "50")


def wrk(url, token=None, duration=None):
    hdr = ["-H", "Authorization: Bearer " + token] if token else []
    out = subprocess.run(["wrk", "-t2", "-c" + CONNS, "-d" + (duration or
                                                            DURATION),
                          "--latency"] + hdr + [url], capture_output=True,
                         text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def ms(wrk_time):
    """wrk's "812.00us", "1.23ms" or "1.02s" in ms."""
    m = re.match(r"([\d.]+)(us|ms|s)$", wrk_time)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def set_auth(d, on):
    """auth = required or unset, by SIGHUP; back once every worker says so."""
    import signal
    if on:
        d.settings["auth"] = "required"
    else:
        d.settings.pop("auth", None)
    d.write_conf()
    d.send(signal.SIGHUP)
    want = 401 if on else 200
    wait_for(lambda: all(requests.get(d.url("/api/v1/databases"), headers={
        "Connection": "close"}).status_code == want for _ in range(8)),
        timeout=30, what="auth %s on every worker" % ("on" if on else "off"))
    time.sleep(1)


def auth_compare(d, tmp, env, pairs, seconds):
    """The registry GET on auth off and on instances side by side
    (bench_auth.py): the token check's cost and the verdict."""
    import bench_auth
    d_on = Daemon(tmp, workers=2, env=env, conf={
        "log_level": "warning", "auth": "required"})
    d_off2 = Daemon(tmp, workers=2, env=env, conf={"log_level": "warning"})
    try:
        d_on.start(wait_ready=True)
        d_off2.start(wait_ready=True)
        r = d_on.ctl("token", "add", "bench", "--role", "read")
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        path = "/api/v1/databases"
        want = len(d.get(path).json())
        for inst, tok in ((d_on, token), (d_off2, None)):
            hdr = {"Authorization": "Bearer " + tok} if tok else {}
            wait_for(lambda: len(inst.get(path, headers=hdr).json()) == want,
                     what="the same registry on every instance")

        def runner(inst, tok):
            def run(secs):
                rps, p99, bad = wrk(inst.url(path), tok,
                                    "%ds" % (secs or seconds))
                if bad:
                    raise RuntimeError("%d non-2xx answers" % bad)
                return rps, ms(p99)
            return run
        print("== GET %s, wrk -t2 -c%s, %d pairs of %d s rounds"
              % (path, CONNS, pairs, seconds))
        return bench_auth.compare(
            "GET /api/v1/databases", runner(d, None), runner(d_on, token),
            lambda: bench_auth.metrics(d_on.url("/metrics"), token),
            d_on.workers, pairs, seconds, run_off2=runner(d_off2, None))
    finally:
        d_on.stop()
        d_off2.stop()


def auth_bench():
    """tests/auth_bench: the check's steps timed alone."""
    tool = os.path.join(os.environ["DC_BUILDDIR"], "tests", "auth_bench")
    print("== the token check's steps alone (tests/auth_bench, best of 5)")
    out = subprocess.run([tool], capture_output=True, text=True, check=True)
    print(out.stdout, end="")


def main():
    auth = "off"
    if len(sys.argv) == 3 and sys.argv[1] == "--auth" and \
            sys.argv[2] in ("off", "on", "both"):
        auth = sys.argv[2]
    elif len(sys.argv) != 1:
        sys.exit("usage: scripts/bench-registry [--auth off|on|both]")
    pairs = int(os.environ.get("BENCH_AUTH_PAIRS", "12"))
    seconds = int(os.environ.get("BENCH_AUTH_SECONDS", "3"))
    tmp = tempfile.mkdtemp(prefix="dc-bench-")
    os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user
    cluster = PgCluster()
    nginx = None
    d = None
    try:
        cluster.sql("postgres", "CREATE DATABASE sys")
        key = Fernet.generate_key().decode()
        env = {"SYSTEM_DATABASE_URL": cluster.url("sys"),
               "DATABASE_CREDENTIALS_KEY": key}
        d = Daemon(tmp, workers=2, env=env, conf={"log_level": "warning"})
        d.start(wait_ready=True)
        for i in range(10):
            r = d.post("/api/v1/databases", {
                "name": "warehouse-%d" % i, "database_type": "postgresql",
                "database_url": cluster.url("postgres"), "tags": ["bench"],
                "description": "benchmark entry %d" % i})
            assert r.status_code == 201, r.text
        body = d.get("/api/v1/databases").content

        # nginx, 2 workers, the same bytes from a file
        root = os.path.join(tmp, "www", "api", "v1")
        os.makedirs(root)
        with open(os.path.join(root, "databases"), "wb") as f:
            f.write(body)
        nport = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes 2;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path %(tmp)s/cb; proxy_temp_path %(tmp)s/px;
  fastcgi_temp_path %(tmp)s/fc; uwsgi_temp_path %(tmp)s/uw; scgi_temp_path %(tmp)s/sc;
  server { listen 127.0.0.1:%(port)d; root %(tmp)s/www; }
}
""" % {"tmp": tmp, "port": nport})
        nginx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
        wait_for(lambda: requests.get("http://127.0.0.1:%d/api/v1/databases"
                                      % nport).content == body,
                 what="nginx serving the file")

        print("== GET /api/v1/databases, 10 entries (%d bytes), wrk -t2 -c%s -d%s"
              % (len(body), CONNS, DURATION))
        token = None
        if auth == "on":
            r = d.ctl("token", "add", "bench-on", "--role", "read")
            assert r.returncode == 0, r.stderr
            token = r.stdout.strip()
            set_auth(d, True)
        dc_rps, dc_p99, dc_bad = wrk(d.url("/api/v1/databases"), token)
        ng_rps, ng_p99, ng_bad = wrk("http://127.0.0.1:%d/api/v1/databases" % nport)
        print("datachatd (2 workers): %10.0f req/s  p99 %s  non-2xx %d"
              % (dc_rps, dc_p99, dc_bad))
        print("nginx     (2 workers): %10.0f req/s  p99 %s  non-2xx %d"
              % (ng_rps, ng_p99, ng_bad))
        print("ratio datachatd/nginx: %.2f (target >= 0.60)%s"
              % (dc_rps / ng_rps, " (auth on)" if auth == "on" else ""))
        verdict = None
        if auth == "both":
            auth_bench()
            verdict = auth_compare(d, tmp, env, pairs, seconds)
        if auth == "on":
            set_auth(d, False)      # the propagation runs read without one

        print("== propagation: external INSERT -> visible on every worker (20 runs)")
        times = []
        conn = cluster.connect("sys")
        for i in range(20):
            cid = str(uuid.uuid4())
            token = Fernet(key.encode()).encrypt(cluster.url("postgres").encode()).decode()
            seen = set()
            with conn.cursor() as cur:
                t0 = time.monotonic()
                cur.execute(
                    "INSERT INTO database_connections (connection_id, name, "
                    "database_url_encrypted, database_type, is_active, is_default, "
                    "tags, description, created_at, datapoint_count) VALUES "
                    "(%s, %s, %s, 'postgresql', TRUE, FALSE, '{}', NULL, %s, 0)",
                    (cid, "ext-%d" % i, token,
                     datetime.datetime.now(datetime.timezone.utc)))
            deadline = t0 + 2.0
            while len(seen) < 2 and time.monotonic() < deadline:
                r = requests.get(d.url("/api/v1/databases/" + cid),
                                 headers={"Connection": "close"})
                if r.status_code == 200:
                    seen.add(r.headers["X-Datachatd-Worker"])
            t = (time.monotonic() - t0) * 1000
            if len(seen) < 2:
                print("run %d: not visible on every worker within 2 s" % i)
                t = 2000.0
            times.append(t)
        conn.close()
        print("propagation ms: median %.1f  max %.1f (target max < 50)"
              % (statistics.median(times), max(times)))
        for pid in d.workers():
            with open("/proc/%d/status" % pid) as f:
                rss = re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)
            print("worker pid %d RSS %.1f MiB" % (pid, int(rss) / 1024))
        if verdict:
            print(verdict)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        if d is not None:
            d.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
