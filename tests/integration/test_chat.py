"""Natural-language chat: catalog questions answered without an LLM, SQL
written by an LLM (a recording OpenAI/Anthropic-compatible mock on
127.0.0.1) for the chosen target, the correction round, refusals, provider
failures, and a slow LLM call that blocks nothing else."""
import threading
import time
import uuid

import pytest
import requests

from conftest import clean_env, wait_for

KEY = "sk-test-not-a-real-key-0123456789"


@pytest.fixture(scope="module")
def shop(pg):
    """Targets A and B with different tables and data."""
    a = pg.create_db("ca")
    b = pg.create_db("cb")
    pg.sql(a, """CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers(id),
                             revenue numeric(10,2));
        INSERT INTO customers SELECT g, 'cust' || g, CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END
            FROM generate_series(1, 40) g;
        INSERT INTO orders SELECT g, 1 + g % 40, (g * 7.25)::numeric(10,2) FROM generate_series(1, 120) g;
        CREATE TABLE only_in_a (x int);""")
    pg.sql(b, """CREATE TABLE sensors (id int PRIMARY KEY, location text);
        INSERT INTO sensors SELECT g, 'room' || g FROM generate_series(1, 9) g;
        CREATE TABLE readings (sensor_id int, value float8);
        CREATE TABLE only_in_b (y int);""")
    return {"a": a, "b": b}


def register(d, pg, db, default=False):
    r = d.post("/api/v1/databases", {"name": db, "database_type": "postgresql",
                                     "database_url": pg.url(db), "is_default": default})
    assert r.status_code == 201, r.text
    return r.json()["connection_id"]


def llm_env(mock, provider="openai", timeout="5"):
    env = {"LLM_DEFAULT_PROVIDER": provider, "LLM_TIMEOUT": timeout}
    if provider == "openai":
        env.update(LLM_OPENAI_API_KEY=KEY, LLM_OPENAI_MODEL="gpt-test",
                   LLM_OPENAI_BASE_URL=mock.url + "/v1")
    elif provider == "anthropic":
        env.update(LLM_ANTHROPIC_API_KEY=KEY, LLM_ANTHROPIC_MODEL="claude-test",
                   LLM_ANTHROPIC_BASE_URL=mock.url)
    else:
        env.update(LLM_LOCAL_BASE_URL=mock.url, LLM_LOCAL_MODEL="llama-test")
    return env


@pytest.fixture
def shopd(daemon_factory, registry_env, shop, pg, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    ids = {"a": register(d, pg, shop["a"]), "b": register(d, pg, shop["b"])}
    return d, ids


def ask(d, message, target=None, **extra):
    body = {"message": message}
    if target is not None:
        body["target_database"] = target
    body.update(extra)
    return d.post("/api/v1/chat", body, timeout=60)


def prompt_of(rec):
    msgs = rec["body"]["messages"]
    return "\n".join(m["content"] for m in msgs)


def test_catalog_questions_need_no_llm(daemon_factory, registry_env, shop, pg):
    # no provider configured at all: catalog questions still work
    d = daemon_factory(workers=2, env=clean_env(registry_env)).start(wait_ready=True)
    ids = {"a": register(d, pg, shop["a"]), "b": register(d, pg, shop["b"])}
    for phrase in ("list tables", "Show tables", "What tables are available?",
                   "which tables exist", "table list"):
        ra = ask(d, phrase, ids["a"]).json()
        rb = ask(d, phrase, ids["b"]).json()
        # DataChat's answer: its catalog statement, shown and run
        assert ra["answer_source"] == "sql", ra
        assert "FROM information_schema.tables" in ra["sql"]
        assert ra["data"]["table_name"] == ["customers", "only_in_a", "orders"]
        assert rb["data"]["table_name"] == ["only_in_b", "readings", "sensors"]
        assert ra["answer"].startswith("Found 3 table(s): public.customers, "
                                       "public.only_in_a, public.orders.")
        assert ra["metrics"]["llm_calls"] == 0 and rb["metrics"]["llm_calls"] == 0
    for phrase in ("show columns in customers", "describe table customers",
                   "What columns does the customers table have?", "fields in customers",
                   "table schema for public.customers"):
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert "FROM information_schema.columns" in r["sql"]
        assert r["data"]["column_name"] == ["id", "name", "region"], phrase
        assert r["data"]["data_type"] == ["integer", "text", "text"]
        assert r["answer"].startswith("The `customers` table has 3 "
                                      "column(s): id, name, region.")
        assert r["metrics"]["llm_calls"] == 0
    for phrase, want_a, want_b in (("how many rows are in sensors", None, 9),
                                   ("How many records in customers?", 40, None),
                                   ("row count of orders", 120, None),
                                   ("number of rows in sensors", None, 9)):
        for key, want in (("a", want_a), ("b", want_b)):
            if want is None:
                continue
            r = ask(d, phrase, ids[key]).json()
            assert r["answer_source"] == "sql", (phrase, r)
            assert r["data"]["row_count"] == [want], phrase
            assert "has %d row(s)" % want in r["answer"]
            assert r["metrics"]["llm_calls"] == 0
    for phrase, n in (("show me the first 3 rows from customers", 3),
                      ("preview customers", 3), ("sample rows from customers", 3),
                      ("top 2 rows of customers", 2), ("limit 4 rows from customers", 4)):
        r = ask(d, phrase, ids["a"]).json()
        assert r["answer_source"] == "sql", (phrase, r)
        assert len(r["data"]["id"]) == n, phrase
        assert r["metrics"]["llm_calls"] == 0
    # the same question on B reads B's data
    r = ask(d, "preview sensors", ids["b"]).json()
    assert r["data"]["location"][0] == "room1"


def test_unknown_table_gets_a_clarifying_question(shopd, llm):
    d, ids = shopd
    r = ask(d, "how many rows in custmers", ids["a"])
    assert r.status_code == 200
    j = r.json()
    assert j["answer_source"] == "clarification"
    assert any("customers" in q for q in j["clarifying_questions"]), j
    assert llm.requests == []


def test_llm_sql_runs_on_the_chosen_target(shopd, llm):
    d, ids = shopd
    llm.queue("```sql\nSELECT name, sum(o.revenue) AS revenue FROM customers c "
              "JOIN orders o ON o.customer_id = c.id GROUP BY name "
              "ORDER BY revenue DESC LIMIT 10;\n```")
    r = ask(d, "Top 10 customers by revenue", ids["a"])
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["answer_source"] == "sql"
    assert len(j["data"]["name"]) == 10
    assert j["sql"].startswith("SELECT name")
    assert j["answer"].startswith("10 rows: name, revenue. Top: cust")
    assert j["metrics"]["llm_calls"] == 1 and j["metrics"]["retry_count"] == 0
    stages = [s["stage"] for s in j["decision_trace"]]
    assert stages[:4] == ["intent_gate", "continue_after_intent_gate",
                          "routing", "execution_mode"]
    assert "llm" in stages and "execute" in stages and "sql_guard" in stages
    assert any(s["stage"] == "context" and s["decision"] == "live_schema"
               for s in j["decision_trace"])
    # the trace says which tables went in with their columns, and why
    prompt = [s for s in j["decision_trace"] if s["stage"] == "prompt"][0]
    tables = prompt["details"]["tables"]
    assert [t["table"] for t in tables] == ["public.customers", "public.orders"]
    assert [t["tier"] for t in tables] == ["match", "match"], tables
    assert "revenue" in tables[1]["why"], tables
    assert prompt["details"]["names_only"] == 1     # only_in_a, by name
    rec = llm.requests[-1]
    assert rec["path"] == "/v1/chat/completions"
    assert rec["headers"]["authorization"] == "Bearer " + KEY
    assert rec["body"]["model"] == "gpt-test"
    p = prompt_of(rec)
    assert "PostgreSQL" in p
    assert "public.customers" in p and "public.orders" in p and "only_in_a" in p
    assert "only_in_b" not in p and "sensors" not in p
    assert "Top 10 customers by revenue" in p
    assert p.index("public.customers") < p.index("only_in_a"), "ranked by the question"
    assert KEY not in d.log()

    # the same kind of question on B: B's schema in the prompt, B's data
    llm.queue("SELECT count(*) AS n FROM sensors")
    j = ask(d, "How many sensors do we have?", ids["b"]).json()
    assert j["data"]["n"] == [9]
    p = prompt_of(llm.requests[-1])
    assert "sensors" in p and "customers" not in p


def test_ranking_keys_shape_the_prompt(daemon_factory, registry_env, shop,
                                       pg, llm):
    """rank_max_tables and prompt_names_tokens are read from the
    configuration: one table with its columns, no names after it."""
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=1, env=env,
                       conf={"rank_max_tables": "1",
                             "prompt_names_tokens": "0"}).start(
                                 wait_ready=True)
    a = register(d, pg, shop["a"])
    llm.queue("SELECT sum(revenue) AS total FROM orders")
    j = ask(d, "total revenue of all orders", a).json()
    assert j["answer_source"] == "sql", j
    prompt = [s for s in j["decision_trace"] if s["stage"] == "prompt"][0]
    assert [t["table"] for t in prompt["details"]["tables"]] == \
        ["public.orders"]
    assert prompt["details"]["names_only"] == 0
    p = prompt_of(llm.requests[-1])
    assert "public.orders" in p and "public.customers" not in p
    assert "(2 more tables not shown)" in p


def test_default_target_when_omitted(shopd, llm):
    d, ids = shopd
    assert d.put("/api/v1/databases/%s/default" % ids["b"],
                 {"is_default": True}).status_code == 204
    llm.queue("SELECT count(*) AS n FROM sensors")
    j = ask(d, "count the sensors").json()
    assert j["data"]["n"] == [9] and j["target_database"] == ids["b"]


@pytest.mark.parametrize("reply", [
    '{"sql": "SELECT count(*) AS n FROM orders", "explanation": "counts"}',
    "Here is the query:\n```\nSELECT count(*) AS n FROM orders\n```\nDone.",
    "SELECT count(*) AS n FROM orders;",
])
def test_reply_formats(shopd, llm, reply):
    d, ids = shopd
    llm.queue(reply)
    j = ask(d, "how much order volume", ids["a"]).json()
    assert j["answer_source"] == "sql", j
    assert j["data"]["n"] == [120]


def test_correction_round_trip(shopd, llm):
    d, ids = shopd
    llm.queue("SELECT nme FROM customers LIMIT 1")
    llm.queue("SELECT name FROM customers ORDER BY id LIMIT 1")
    j = ask(d, "first customer name", ids["a"]).json()
    assert j["answer_source"] == "sql", j
    assert j["data"]["name"] == ["cust1"]
    assert j["metrics"]["llm_calls"] == 2 and j["metrics"]["retry_count"] == 1
    second = prompt_of(llm.requests[-1])
    assert 'column "nme" does not exist' in second
    assert "SELECT nme FROM customers" in second
    assert any(s["stage"] == "correct" for s in j["decision_trace"])


def test_second_failure_is_an_error_answer(shopd, llm):
    d, ids = shopd
    llm.queue("SELECT nme FROM customers")
    llm.queue("SELECT nmee FROM customers")
    r = ask(d, "names", ids["a"])
    assert r.status_code == 200
    j = r.json()
    assert j["answer_source"] == "error"
    assert 'column "nmee" does not exist' in j["answer"]
    assert j["validation_errors"][0]["error_type"] == "database"
    assert j["metrics"]["llm_calls"] == 2


def test_llm_that_writes_delete_is_refused(shopd, llm, pg, shop):
    d, ids = shopd
    llm.queue("DELETE FROM orders")
    llm.queue("```sql\nDELETE FROM orders WHERE id > 0;\n```")
    j = ask(d, "remove all orders", ids["a"]).json()
    assert j["answer_source"] == "error"
    assert j["validation_errors"][0]["error_type"] == "guard"
    assert "DeleteStmt" in j["validation_errors"][0]["message"]
    assert pg.sql(shop["a"], "SELECT count(*) FROM orders")[0][0] == 120
    # the refusal reason went back to the LLM
    assert "refused" in prompt_of(llm.requests[-1])


@pytest.mark.parametrize("case,status", [
    ("500", 502), ("garbage", 502), ("empty", 502), ("close", 502), ("slow", 504),
])
def test_provider_failures(daemon_factory, registry_env, shop, pg, llm, case, status):
    env = clean_env(registry_env)
    env.update(llm_env(llm, timeout="1"))
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    a = register(d, pg, shop["a"])
    if case == "500":
        llm.queue(status=500, body='{"error": {"message": "model overloaded"}}')
    elif case == "garbage":
        llm.queue(status=200, body="<html>not json</html>")
    elif case == "empty":
        llm.queue(status=200, body='{"choices": []}')
    elif case == "close":
        llm.queue("close")
    else:
        llm.queue(delay=3, text="SELECT 1")
    r = ask(d, "total revenue", a)
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith("LLM provider error")
    assert KEY not in r.text
    if case == "500":
        assert "model overloaded" in r.json()["detail"]
    assert d.get("/api/v1/health").status_code == 200


def test_provider_down(daemon_factory, registry_env, shop, pg):
    env = clean_env(registry_env)
    env.update({"LLM_DEFAULT_PROVIDER": "local", "LLM_LOCAL_BASE_URL": "http://127.0.0.1:1",
                "LLM_LOCAL_MODEL": "m", "LLM_TIMEOUT": "3"})
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    a = register(d, pg, shop["a"])
    r = ask(d, "total revenue", a)
    assert r.status_code == 502 and "LLM provider error" in r.json()["detail"]


def test_no_provider_configured(daemon_factory, registry_env, shop, pg):
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(wait_ready=True)
    a = register(d, pg, shop["a"])
    r = ask(d, "Top 10 customers by revenue", a)
    assert r.status_code == 503
    assert "LLM_DEFAULT_PROVIDER" in r.json()["detail"]
    # direct SQL still works
    r = d.post("/api/v1/chat", {"message": "SELECT 1 AS x", "execution_mode": "direct_sql",
                                "target_database": a})
    assert r.status_code == 200 and r.json()["data"]["x"] == [1]


def test_anthropic_provider(daemon_factory, registry_env, shop, pg, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm, provider="anthropic"))
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    a = register(d, pg, shop["a"])
    llm.queue("SELECT count(*) AS n FROM customers")
    j = ask(d, "customer total", a).json()
    assert j["data"]["n"] == [40]
    rec = llm.requests[-1]
    assert rec["path"] == "/v1/messages"
    assert rec["headers"]["x-api-key"] == KEY
    assert rec["body"]["model"] == "claude-test"
    assert "customers" in rec["body"]["messages"][0]["content"]
    assert "PostgreSQL" in rec["body"]["system"]


def test_synthesize_simple_sql_asks_for_the_answer(shopd, llm):
    d, ids = shopd
    llm.queue("SELECT count(*) AS n FROM customers")
    llm.queue("There are 40 customers.")
    j = ask(d, "how big is the customer base", ids["a"],
            synthesize_simple_sql=True).json()
    assert j["answer"] == ("There are 40 customers.\n\nLive schema mode: DataPoints "
                           "are not loaded yet. Answers are generated from "
                           "database metadata and query results only.")
    assert j["metrics"]["llm_calls"] == 2
    assert '"n": 40' in prompt_of(llm.requests[-1]) or '"n":40' in prompt_of(llm.requests[-1])


def test_slow_llm_blocks_nothing(daemon_factory, registry_env, shop, pg, llm):
    """One worker: a 3-second LLM call while 20 other requests on the same
    worker complete at once."""
    env = clean_env(registry_env)
    env.update(llm_env(llm, timeout="10"))
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    a = register(d, pg, shop["a"])
    llm.queue(delay=3, text="SELECT 1 AS one")
    out = {}

    def slow():
        out["r"] = ask(d, "anything at all", a)

    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: len(llm.requests) == 1, what="LLM call in flight")
    t0 = time.monotonic()
    s = requests.Session()
    for i in range(20):
        r = s.post(d.url("/api/v1/chat"), timeout=10, json={
            "message": "SELECT %d AS i" % i, "execution_mode": "direct_sql",
            "target_database": a})
        assert r.status_code == 200
    fast = time.monotonic() - t0
    t.join(15)
    assert out["r"].status_code == 200 and out["r"].json()["data"]["one"] == [1]
    assert fast < 1.0, "requests waited behind the LLM call: %.2fs" % fast


def test_a_question_resolved_before_a_url_change_never_goes_back(
        daemon_factory, registry_env, pg, llm):
    """One worker: a question waits for the LLM while its target's URL is
    changed to another role, and a direct query moves the worker's pool to
    the new URL.  The question's SQL, written and checked for the old
    entry, runs on neither URL: the pool never goes back to the old one
    (no session of the old role opens after the change)."""
    db = pg.create_db("cgen")
    tag = uuid.uuid4().hex[:8]
    old, new, pw = "gen_old_" + tag, "gen_new_" + tag, "Gen-pw1"
    pg.sql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    for n in (old, new):
        pg.sql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'" % (n, pw))
        pg.sql(db, "GRANT SELECT ON t TO %s" % n)
    env = clean_env(registry_env)
    env.update(llm_env(llm, timeout="15"))
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "gen", "database_type": "postgresql",
                                     "database_url": pg.url(db, user=old, password=pw)})
    assert r.status_code == 201, r.text
    cid = r.json()["connection_id"]
    who = "SELECT current_user AS u FROM t"

    def direct():
        r = d.post("/api/v1/chat", {"message": who, "sql": who, "target_database": cid,
                                    "execution_mode": "direct_sql"})
        assert r.status_code == 200, r.text
        return r.json()["data"]["u"]

    assert direct() == [old]
    llm.queue(delay=4, text=who)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", ask(d, "anything at all", cid)))
    th.start()
    wait_for(lambda: len(llm.requests) == 1, what="LLM call in flight")
    r = d.patch("/api/v1/databases/%s" % cid,
                {"database_url": pg.url(db, user=new, password=pw)})
    assert r.status_code == 200, r.text
    assert direct() == [new]
    since = pg.sql("postgres", "SELECT now()")[0][0]
    assert th.is_alive(), "the LLM answered before the change was applied"
    th.join(30)
    r = out["r"]
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == ("Database connection changed while the "
                                  "query waited: run it again"), r.text
    opened = pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                    "usename = %s AND backend_start >= %s", (old, since))[0][0]
    assert opened == 0, "a session of the old role opened after the change"
    assert direct() == [new]
    assert len(llm.requests) == 1       # no correction round
    assert pw not in r.text


def test_bad_request_bodies(shopd, llm):
    d, ids = shopd
    assert d.post("/api/v1/chat", {}).status_code == 422
    assert d.post("/api/v1/chat", {"message": ""}).status_code == 422
    assert d.post("/api/v1/chat", {"message": 42}).status_code == 422
    assert d.post("/api/v1/chat", {"message": ["x"]}).status_code == 422
    r = d.post("/api/v1/chat", {"message": "list tables", "target_database": str(uuid.uuid4())})
    assert r.status_code == 404
    r = d.post("/api/v1/chat", {"message": "list tables", "target_database": "nope"})
    assert r.status_code == 400
    r = d.post("/api/v1/chat", {"message": "list tables", "target_database": 7})
    assert r.status_code == 422
    # pydantic is lax about booleans: "yes" is true; "perhaps" is not
    r = d.post("/api/v1/chat", {"message": "x", "synthesize_simple_sql": "perhaps"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "bool_parsing"
    assert llm.requests == []
