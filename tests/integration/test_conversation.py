"""Conversation memory: follow-up questions read against the turns before
them, session_summary and session_state on every answer (REST and
WebSocket), and the server's own memory of a conversation_id, shared by
every worker and by a second datachatd on the same system database,
bounded in turns and in age."""
import json
import time

import psycopg2
import pytest

from conftest import Daemon, fernet_key, wait_for
from llm_mock import LlmMock
from wsclient import converse

KEY = "sk-test-not-a-real-key-0123456789"
SQL1 = ("SELECT c.name, sum(o.revenue) AS revenue FROM customers c JOIN "
        "orders o ON o.customer_id = c.id GROUP BY 1 ORDER BY 2 DESC LIMIT 10")
SQL2 = ("SELECT c.region, sum(o.revenue) AS revenue FROM customers c JOIN "
        "orders o ON o.customer_id = c.id GROUP BY 1 ORDER BY 1")


@pytest.fixture(scope="module")
def llm_mod():
    mock = LlmMock()
    yield mock
    mock.stop()


@pytest.fixture
def llm(llm_mod):
    llm_mod.reset()
    return llm_mod


@pytest.fixture(scope="module")
def shop(pg):
    a = pg.create_db("cva")
    b = pg.create_db("cvb")
    pg.sql(a, """CREATE TABLE customers (id int PRIMARY KEY, name text,
                                         region text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int,
                             revenue numeric(10,2), placed date);
        INSERT INTO customers SELECT g, 'cust' || g,
            CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END
            FROM generate_series(1, 40) g;
        INSERT INTO orders SELECT g, 1 + g % 40, g * 7.25,
            DATE '2024-06-01' + g * 3 FROM generate_series(1, 120) g;""")
    pg.sql(b, """CREATE TABLE customers (id int PRIMARY KEY, name text);
        INSERT INTO customers SELECT g, 'bcust' || g
            FROM generate_series(1, 5) g;""")
    return {"a": a, "b": b}


def start(tmp, llm, env, workers=2, conf=None):
    e = {"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": "10",
         "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
         "LLM_OPENAI_BASE_URL": llm.url + "/v1"}
    e.update(env)
    return Daemon(tmp, workers=workers, env=e, conf=conf).start(
        wait_ready=True)


@pytest.fixture(scope="module")
def sysenv(pg):
    return {"SYSTEM_DATABASE_URL": pg.url(pg.create_db("cvsys")),
            "DATABASE_CREDENTIALS_KEY": fernet_key()}


@pytest.fixture(scope="module")
def cvd(tmp_path_factory, pg, shop, llm_mod, sysenv):
    d = start(tmp_path_factory.mktemp("cv"), llm_mod, sysenv,
              conf={"resync_interval": "1"})
    ids = {}
    for k in ("a", "b"):
        r = d.post("/api/v1/databases", {
            "name": k, "database_type": "postgresql",
            "database_url": pg.url(shop[k]), "is_default": k == "a"})
        assert r.status_code == 201, r.text
        ids[k] = r.json()["connection_id"]
    yield d, ids
    d.stop()


def ask(d, message, **kw):
    body = {"message": message}
    body.update(kw)
    r = d.post("/api/v1/chat", body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def prompt_of(rec):
    return "\n".join(m["content"] for m in rec["body"]["messages"])


def stored(pg, sysenv, conv):
    db = sysenv["SYSTEM_DATABASE_URL"].rsplit("/", 1)[1]
    rows = pg.sql(db, "SELECT turns, session_summary, session_state, "
                  "updated_at FROM datachatd_conversations WHERE "
                  "conversation_id = %s", (conv,))
    return rows[0] if rows else None


def test_followup_sees_the_question_and_its_sql(cvd, llm, pg, sysenv):
    d, ids = cvd
    llm.queue(SQL1)
    j1 = ask(d, "Top 10 customers by revenue", target_database=ids["a"])
    conv = j1["conversation_id"]
    st = j1["session_state"]
    assert st["last_goal"] == "Top 10 customers by revenue"
    assert st["last_sql"] == SQL1
    assert st["table_hints"] == ["customers", "orders"]
    assert st["slots"]["table"] == "customers"
    assert st["clarification_count"] == 0 and st["resolved_query"] is None
    assert j1["session_summary"].startswith(
        "Intent summary: last_goal=Top 10 customers by revenue")
    turns, summary, state, _ = stored(pg, sysenv, conv)
    assert [t["question"] for t in turns] == ["Top 10 customers by revenue"]
    assert turns[0]["sql"] == SQL1 and turns[0]["row_count"] == 10

    # only the conversation id: the server remembers the rest
    llm.queue(SQL2)
    j2 = ask(d, "and by region?", target_database=ids["a"],
             conversation_id=conv)
    p = prompt_of(llm.requests[-1])
    assert "Top 10 customers by revenue" in p and SQL1 in p
    assert "Result: 10 rows; columns name, revenue" in p
    assert p.index(SQL1) < p.index("Question: and by region?")
    assert j2["data"]["region"] == ["north", "south"]
    assert j2["session_state"]["resolved_query"] == (
        "Top 10 customers by revenue (follow-up: and by region?)")
    assert j2["session_state"]["last_sql"] == SQL2
    assert j2["session_state"]["turn_count"] == 2
    mem = [s for s in j2["decision_trace"] if s["stage"] == "memory"]
    assert mem[0]["decision"] == "store"
    assert mem[0]["details"]["turns"] == 1
    assert mem[0]["details"]["follow_up"] is True

    # "only for 2025" and "show that as a chart" build on both
    llm.queue("SELECT c.region, sum(o.revenue) AS revenue FROM customers c "
              "JOIN orders o ON o.customer_id = c.id WHERE o.placed >= "
              "'2025-01-01' GROUP BY 1 ORDER BY 1")
    j3 = ask(d, "only for 2025", target_database=ids["a"],
             conversation_id=conv)
    p = prompt_of(llm.requests[-1])
    assert SQL1 in p and SQL2 in p and "and by region?" in p
    assert j3["session_state"]["resolved_query"].startswith("and by region?")
    llm.queue(SQL2)
    j4 = ask(d, "show that as a chart", target_database=ids["a"],
             conversation_id=conv)
    p = prompt_of(llm.requests[-1])
    assert "only for 2025" in p and "placed >= '2025-01-01'" in p
    assert j4["session_state"]["turn_count"] == 4
    assert len(stored(pg, sysenv, conv)[0]) == 4


def test_the_other_database(cvd, llm, pg, sysenv):
    """The same conversation asked about another target: the prompt has
    that target's schema and the earlier SQL, marked as run elsewhere, and
    the new SQL runs on the new target."""
    d, ids = cvd
    llm.queue("SELECT count(*) AS n FROM customers")
    j1 = ask(d, "how many customers do we have, counted", target_database=ids["a"])
    assert j1["data"] == {"n": [40]}
    llm.queue("SELECT count(*) AS n FROM customers")
    j2 = ask(d, "what about the other database?", target_database=ids["b"],
             conversation_id=j1["conversation_id"])
    assert j2["data"] == {"n": [5]}, j2
    p = prompt_of(llm.requests[-1])
    assert "how many customers do we have" in p
    assert "on another database (postgresql, connection %s)" % ids["a"] in p
    assert "orders" not in p.split("Conversation so far")[0]   # B's schema
    assert j2["session_state"]["target_database"] == ids["b"]


def test_memory_over_websocket_and_from_the_client(cvd, llm):
    """The UI's way: conversation_history and session_state sent back, over
    /ws/chat; the store is not needed for that (a new conversation id)."""
    d, ids = cvd
    llm.queue(SQL1)
    cv = converse(d, {"message": "Top 10 customers by revenue",
                      "target_database": ids["a"]})
    done = cv.last
    assert done["event"] == "complete"
    assert done["session_state"]["last_sql"] == SQL1
    llm.queue(SQL2)
    cv = converse(d, {
        "message": "and by region?", "target_database": ids["a"],
        "conversation_history": [
            {"role": "user", "content": "Top 10 customers by revenue"},
            {"role": "assistant", "content": done["answer"]}],
        "session_summary": done["session_summary"],
        "session_state": done["session_state"]})
    assert cv.last["event"] == "complete", cv.events
    p = prompt_of(llm.requests[-1])
    assert "Top 10 customers by revenue" in p and SQL1 in p
    assert done["answer"] in p
    mem = [s for s in cv.last["decision_trace"] if s["stage"] == "memory"]
    assert mem[0]["decision"] == "client"


def test_state_on_every_answer(cvd, llm):
    d, ids = cvd
    # direct SQL hands back the request's own, as DataChat's routes do
    given = {"client_key": "kept", "clarification_count": 1}
    j = ask(d, "x", execution_mode="direct_sql",
            sql="SELECT region FROM customers LIMIT 2",
            target_database=ids["a"], session_state=given,
            session_summary="Intent summary: mine")
    assert j["session_state"] == given
    assert j["session_summary"] == "Intent summary: mine"
    # catalog answers and clarifications carry the state that follows
    j = ask(d, "list tables", target_database=ids["a"])
    assert j["session_state"]["last_goal"] == "list tables"
    assert "FROM information_schema.tables" in j["session_state"]["last_sql"]
    assert "last_goal=list tables" in j["session_summary"]
    j = ask(d, "how many rows in custmers", target_database=ids["a"])
    assert j["answer_source"] == "clarification"
    assert j["session_state"]["clarification_count"] == 1
    assert j["session_state"]["last_clarifying_questions"]
    cv = converse(d, {"message": "list tables", "session_state":
                      {"turn_count": 4}})
    assert cv.last["session_state"]["turn_count"] == 5
    assert llm.requests == []


def test_continuity_on_another_worker(cvd, llm):
    d, ids = cvd
    import requests
    llm.queue(SQL1)
    r = requests.post(d.url("/api/v1/chat"), json={
        "message": "Top 10 customers by revenue",
        "target_database": ids["a"]}, timeout=30)
    first = r.headers["X-Datachatd-Worker"]
    conv = r.json()["conversation_id"]
    # new connections until the other worker answers
    for _ in range(50):
        llm.queue(SQL2)
        r = requests.post(d.url("/api/v1/chat"), json={
            "message": "and by region?", "conversation_id": conv,
            "target_database": ids["a"]}, timeout=30)
        assert r.status_code == 200
        if r.headers["X-Datachatd-Worker"] != first:
            break
    else:
        pytest.fail("the other worker never answered")
    p = prompt_of(llm.requests[-1])
    assert "Top 10 customers by revenue" in p and SQL1 in p


def test_continuity_on_a_second_instance(cvd, llm, tmp_path, sysenv):
    d, ids = cvd
    llm.queue(SQL1)
    j = ask(d, "Top 10 customers by revenue", target_database=ids["a"])
    d2 = start(tmp_path, llm, sysenv, workers=1)
    try:
        llm.queue(SQL2)
        cv = converse(d2, {"message": "and by region?",
                           "conversation_id": j["conversation_id"],
                           "target_database": ids["a"]})
        assert cv.last["event"] == "complete", cv.events
        p = prompt_of(llm.requests[-1])
        assert "Top 10 customers by revenue" in p and SQL1 in p
        assert cv.last["session_state"]["turn_count"] == 2
    finally:
        d2.stop()


def test_memory_is_bounded(tmp_path, pg, shop, llm, sysenv):
    d = start(tmp_path, llm, sysenv, workers=1,
              conf={"conversation_turns": "3", "resync_interval": "1"})
    try:
        r = d.post("/api/v1/databases", {
            "name": "bounded", "database_type": "postgresql",
            "database_url": pg.url(shop["a"])})
        t = r.json()["connection_id"]
        conv = "conv_bounded_test"
        for i in range(5):
            ask(d, "list tables", target_database=t, conversation_id=conv,
                session_summary="turn %d" % i)
        turns = stored(pg, sysenv, conv)[0]
        assert len(turns) == 3
        # the oldest went first
        assert stored(pg, sysenv, conv)[2]["turn_count"] == 5
        # older than conversation_ttl: forgotten by the next resync
        db = sysenv["SYSTEM_DATABASE_URL"].rsplit("/", 1)[1]
        pg.sql(db, "UPDATE datachatd_conversations SET updated_at = now() - "
               "interval '2 days' WHERE conversation_id = %s", (conv,))
        wait_for(lambda: stored(pg, sysenv, conv) is None, timeout=10,
                 what="the expired conversation deleted")
        llm.queue("SELECT 1 AS one")
        j = ask(d, "and by region?", target_database=t, conversation_id=conv)
        mem = [s for s in j["decision_trace"] if s["stage"] == "memory"]
        assert mem[0]["decision"] == "none"
        assert "list tables" not in prompt_of(llm.requests[-1])
    finally:
        d.stop()


def test_no_store_without_a_system_database(tmp_path, pg, shop, llm):
    d = start(tmp_path, llm, {"DATABASE_URL": pg.url(shop["a"])}, workers=1)
    try:
        llm.queue(SQL1)
        j1 = ask(d, "Top 10 customers by revenue")
        llm.queue(SQL2)
        # the id alone recalls nothing here, but the state does
        j2 = ask(d, "and by region?", conversation_id=j1["conversation_id"],
                 session_state=j1["session_state"])
        p = prompt_of(llm.requests[-1])
        assert "Top 10 customers by revenue" in p and SQL1 in p
        assert j2["session_state"]["turn_count"] == 2
    finally:
        d.stop()
