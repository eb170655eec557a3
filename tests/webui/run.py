#!/usr/bin/python3
"""tests/webui/run.py - the live part of scripts/webui-check.

Starts a throwaway PostgreSQL cluster, the recording LLM mock of the
integration suite (tests/integration/llm_mock.py) and a datachatd with a
registry that uses it (the suite's helpers, free loopback ports), serves the
web UI that scripts/webui-check built from DataChat's frontend on another
origin (next start, with the API address put in place of the placeholder
the build was made with), runs tests/webui/check.js in headless Chromium
and removes everything it started.

Usage: run.py APP_DIR DRIVER_DIR SHOTS_DIR   (called by scripts/webui-check)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from conftest import Daemon, PgCluster, fernet_key, wait_for  # noqa: E402
from llm_mock import LlmMock  # noqa: E402

# The chat page's LLM question: the SQL the mock writes, then the answer
# it streams, a piece every 0.4 s.
LLM_SQL = ("SELECT c.name, sum(o.revenue) AS revenue FROM customers c "
           "JOIN orders o ON o.customer_id = c.id GROUP BY 1 "
           "ORDER BY 2 DESC LIMIT 3")
LLM_ANSWER = ("The top three customers by revenue are cust1 (1740.00), "
              "cust40 (1718.25) and cust39 (1696.50).")

PLACEHOLDER_API = "http://datachatd-api.invalid:1"
PLACEHOLDER_WS = "ws://datachatd-api.invalid:1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage_app(app, run_dir, api, ws):
    """A copy of the built app's .next with the real API address in it;
    node_modules and the rest are linked, not copied."""
    for name in os.listdir(app):
        if name in (".next", ".built"):
            continue
        os.symlink(os.path.join(app, name), os.path.join(run_dir, name))
    shutil.copytree(os.path.join(app, ".next"), os.path.join(run_dir, ".next"),
                    ignore=shutil.ignore_patterns("cache"))
    n = 0
    for top, _, files in os.walk(os.path.join(run_dir, ".next")):
        for f in files:
            if not f.endswith((".js", ".html", ".json", ".rsc", ".body")):
                continue
            p = os.path.join(top, f)
            with open(p, "rb") as fh:
                data = fh.read()
            if PLACEHOLDER_API.encode() in data or PLACEHOLDER_WS.encode() in data:
                data = data.replace(PLACEHOLDER_API.encode(), api.encode())
                data = data.replace(PLACEHOLDER_WS.encode(), ws.encode())
                with open(p, "wb") as fh:
                    fh.write(data)
                n += 1
    if n == 0:
        raise SystemExit("webui: the build does not contain the API placeholder")


def main():
    app, driver, shots = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="dc-webui-")
    pg = d = ui = llm = None
    rc = 1
    try:
        pg = PgCluster()
        sysdb = pg.create_db("sys")
        t1 = pg.create_db("webui_a")
        t2 = pg.create_db("webui_b")
        # the database the chat page asks about (the check keeps t2)
        pg.sql(t2, """CREATE TABLE customers (id int PRIMARY KEY, name text,
                                              region text);
            CREATE TABLE orders (id int PRIMARY KEY, customer_id int,
                                 revenue numeric(10,2));
            INSERT INTO customers SELECT g, 'cust' || g, CASE WHEN g % 2 = 0
                THEN 'north' ELSE 'south' END FROM generate_series(1, 40) g;
            INSERT INTO orders SELECT g, 1 + g % 40, g * 7.25
                FROM generate_series(1, 120) g;""")
        llm = LlmMock()
        llm.queue(LLM_SQL)
        llm.queue(LLM_ANSWER, chunk_delay=0.4)
        fport = free_port()
        front = "http://127.0.0.1:%d" % fport
        d = Daemon(tmp, workers=2, env={
            "SYSTEM_DATABASE_URL": pg.url(sysdb),
            "DATABASE_CREDENTIALS_KEY": fernet_key(),
            "CORS_ORIGINS": front, "LLM_DEFAULT_PROVIDER": "openai",
            "LLM_OPENAI_API_KEY": "sk-webui-check", "LLM_OPENAI_MODEL":
            "gpt-webui", "LLM_OPENAI_BASE_URL": llm.url + "/v1"})
        d.start(wait_ready=True)
        api = d.base
        run_dir = os.path.join(tmp, "app")
        os.mkdir(run_dir)
        stage_app(app, run_dir, api, api.replace("http://", "ws://"))
        ui = subprocess.Popen(
            [os.path.join(app, "node_modules", ".bin", "next"), "start", "-p",
             str(fport), "-H", "127.0.0.1"], cwd=run_dir,
            env=dict(os.environ, NEXT_TELEMETRY_DISABLED="1"),
            stdout=open(os.path.join(tmp, "next.log"), "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        import urllib.request
        wait_for(lambda: urllib.request.urlopen(front + "/", timeout=5).status == 200,
                 timeout=60, what="the web UI")
        print("webui: datachatd on %s, DataChat's web UI on %s" % (api, front),
              flush=True)
        env = dict(os.environ, FRONT=front, TARGET_URL=pg.url(t1),
                   TARGET_URL2=pg.url(t2), SHOTS=shots,
                   PROFILE=os.path.join(tmp, "chromium-profile"),
                   NODE_PATH=os.path.join(driver, "node_modules"))
        rc = subprocess.run(["node", os.path.join(HERE, "check.js")], env=env,
                            timeout=600).returncode
        # the LLM question went to the mock: the SQL, then the answer
        # with "stream": true
        got = [(r["stream"], r["path"]) for r in llm.requests]
        print("webui: the LLM mock got %s" % got, flush=True)
        if rc == 0 and got != [(False, "/v1/chat/completions"),
                               (True, "/v1/chat/completions")]:
            print("webui: FAILED: not the two LLM calls expected", flush=True)
            rc = 1
        if rc != 0:
            print("webui: datachatd log tail:\n" + d.log()[-3000:], flush=True)
    finally:
        if ui is not None:
            try:
                os.killpg(ui.pid, 15)
                ui.wait(timeout=20)
            except Exception:
                pass
        if d is not None:
            d.stop()
            shutil.rmtree(d.sockdir, ignore_errors=True)
        if llm is not None:
            llm.stop()
        if pg is not None:
            pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
