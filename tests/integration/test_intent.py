"""Chat that behaves like DataChat's (issue 18): the intent gate answers
exits, help, greetings, out-of-scope requests and non-actionable input
without an LLM and without the target (with none configured, too);
catalog questions on schema.table names in any schema, answered by the
statement datachatd writes in DataChat's form; a clarification that asks
for a table and is resolved by the reply, over REST and /ws/chat; a table
created a moment ago found by the next question on every worker;
DataChat's decision_trace stage names and answer_source vocabulary.

Every LLM call is checked against the test LLM server's request log
(tests/integration/llm_mock.py)."""
import time

import pytest
import requests

from conftest import clean_env, wait_for
from wsclient import converse

KEY = "sk-test-not-a-real-key-0123456789"

# DataChat's answer_source values (backend/models/api.py)
SOURCES = {"context", "sql", "error", "clarification", "approval", "multi",
           "system"}
SEEN_SOURCES = set()

EXIT = "Got it. Ending the session. If you need more, just start a new chat."

# (message, intent_gate decision, answer_source, words of the answer)
GATE = [
    ("let's talk later", "exit", "system", EXIT),
    ("Ok I'm done for now", "exit", "system", EXIT),
    ("never mind, i'll ask later", "exit", "system", EXIT),
    ("bye", "exit", "system", EXIT),
    ("thanks, goodbye!", "exit", "system", EXIT),
    ("help", "setup_help", "system", "To connect a database"),
    ("what can you do?", "setup_help", "system", "To connect a database"),
    ("How do I connect a database?", "setup_help", "system",
     "/api/v1/databases"),
    ("show datapoints", "datapoint_help", "system", "live schema mode"),
    ("list pending data points", "datapoint_help", "system", "no DataPoints"),
    ("hi", "small_talk", "system", "Hi! I can help you explore"),
    ("Good morning! How are you?", "small_talk", "system", "Try: list tables"),
    ("hello there", "small_talk", "system", "connected data"),
    ("Tell me a joke", "out_of_scope", "system", "connected data"),
    ("what's the weather tomorrow?", "out_of_scope", "system",
     "questions about your connected data"),
    ("write a poem about spring", "out_of_scope", "system", "Try:"),
    ("ok", "clarify", "clarification", "need a bit more detail"),
    ("thanks", "clarify", "clarification", "your data"),
    ("sure!", "clarify", "clarification", "need a bit more detail"),
    ("continue", "clarify", "clarification", "need a bit more detail"),
]


@pytest.fixture(scope="module")
def shop(pg):
    db = pg.create_db("intent")
    pg.sql(db, """CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers(id),
                             revenue numeric(10,2));
        INSERT INTO customers SELECT g, 'cust' || g, 'north' FROM generate_series(1, 40) g;
        INSERT INTO orders SELECT g, 1 + g % 40, g FROM generate_series(1, 120) g;
        CREATE SCHEMA sales;
        CREATE TABLE sales.invoices (id int PRIMARY KEY, total numeric);
        INSERT INTO sales.invoices SELECT g, g FROM generate_series(1, 7) g;
        CREATE TABLE sales.reps (id int, name text);
        CREATE SCHEMA crm;
        CREATE TABLE crm.reps (id int, email text);
        INSERT INTO crm.reps VALUES (1, 'a@b');""")
    return db


def llm_env(mock):
    return {"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": "5",
            "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
            "LLM_OPENAI_BASE_URL": mock.url + "/v1"}


def register(d, pg, db, default=True):
    r = d.post("/api/v1/databases", {"name": db, "database_type": "postgresql",
                                     "database_url": pg.url(db),
                                     "is_default": default})
    assert r.status_code == 201, r.text
    return r.json()["connection_id"]


def ask(d, message, **extra):
    body = {"message": message}
    body.update(extra)
    r = requests.post(d.url("/api/v1/chat"), json=body, timeout=60,
                      headers={"Connection": "close"})
    if r.status_code == 200:
        j = r.json()
        SEEN_SOURCES.add(j["answer_source"])
        assert j["answer_source"] in SOURCES, j
    return r


# DataChat's reasons for its first two decisions
GATE_REASONS = {"exit": "rule_or_llm_classification",
                "setup_help": "rule_or_llm_classification",
                "datapoint_help": "rule_or_llm_classification",
                "small_talk": "rule_or_llm_classification",
                "out_of_scope": "rule_or_llm_classification",
                "clarify": "rule_based_non_actionable",
                "data_query": "rule_or_llm_classification",
                "data_query_fast_path": "deterministic_sql_query"}
NEXT_REASONS = {"sql": "fast_path", "classifier": "default_classifier_path"}


def gate_of(j):
    """DataChat's first two decisions: intent_gate, then where it goes,
    each with DataChat's reason."""
    t = j["decision_trace"]
    assert t[0]["stage"] == "intent_gate", t
    assert t[1]["stage"] == "continue_after_intent_gate", t
    gate, after = t[0]["decision"], t[1]["decision"]
    assert t[0]["reason"] == GATE_REASONS[gate], t[0]
    assert t[1]["reason"] == NEXT_REASONS.get(after, "intent_gate=" + gate), \
        t[1]
    return gate, after


def check_gate_answers(d):
    for message, decision, source, words in GATE:
        r = ask(d, message)
        assert r.status_code == 200, (message, r.text)
        j = r.json()
        assert gate_of(j) == (decision, "end"), (message, j["decision_trace"])
        assert j["answer_source"] == source, (message, j)
        assert words in j["answer"], (message, j["answer"])
        assert j["sql"] is None and j["data"] is None, message
        assert j["metrics"]["llm_calls"] == 0
        if decision == "clarify":
            assert j["clarifying_questions"] == [
                "What would you like to do with your data?"]
            assert j["answer_confidence"] == 0.2
        else:
            assert j["clarifying_questions"] == []
            assert j["answer_confidence"] == 0.8


def test_gate_answers_without_llm_and_without_target(daemon_factory,
                                                     registry_env, llm):
    """No target anywhere: the gate still answers; a data question gets
    DataChat's system_not_initialized.  The LLM is configured, and never
    called."""
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    check_gate_answers(d)
    r = ask(d, "Top 10 customers by revenue")
    assert r.status_code == 400
    assert r.json()["error"] == "system_not_initialized"
    assert llm.requests == []


def test_gate_answers_without_touching_the_target(daemon_factory, registry_env,
                                                  shop, pg, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    register(d, pg, shop)

    def sessions():
        return pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                      "WHERE datname = %s AND application_name = 'datachatd'",
                      (shop,))[0][0]

    wait_for(lambda: sessions() == 0, timeout=10, what="the probe closed")
    check_gate_answers(d)
    assert sessions() == 0, "an intent-gate answer touched the target"
    assert llm.requests == []
    # mixed messages are data questions: these reach the target, not the LLM
    for message in ("thanks, now list tables", "hi! how many rows are in "
                    "orders?", "ok, show me the first 2 rows from customers"):
        j = ask(d, message).json()
        assert gate_of(j) == ("data_query_fast_path", "sql"), message
        assert j["answer_source"] == "sql", (message, j)
        assert j["metrics"]["llm_calls"] == 0
    assert llm.requests == []
    # a data question goes on to the LLM, past the gate
    llm.queue("SELECT count(*) AS n FROM orders")
    j = ask(d, "what is our order volume").json()
    assert gate_of(j) == ("data_query", "classifier")
    assert j["answer_source"] == "sql" and j["metrics"]["llm_calls"] == 1
    assert len(llm.requests) == 1


# (message, the SQL datachatd writes, what the answer says)
CATALOG = [
    ("How many rows are in information_schema.tables?",
     "SELECT COUNT(*) AS row_count FROM information_schema.tables",
     "Table `information_schema.tables` has "),
    ("Show me the first 2 rows from information_schema.tables",
     "SELECT * FROM information_schema.tables LIMIT 2",
     "Returned 2 row(s) from `information_schema.tables`."),
    ("how many rows are in public.orders",
     "SELECT COUNT(*) AS row_count FROM public.orders",
     "Table `public.orders` has 120 row(s)."),
    ("row count of orders", "SELECT COUNT(*) AS row_count FROM public.orders",
     "Table `public.orders` has 120 row(s)."),
    ("How many rows are in sales.invoices?",
     "SELECT COUNT(*) AS row_count FROM sales.invoices",
     "Table `sales.invoices` has 7 row(s)."),
    ("count rows in invoices", "SELECT COUNT(*) AS row_count FROM sales.invoices",
     "Table `sales.invoices` has 7 row(s)."),
    ("preview pg_catalog.pg_namespace",
     "SELECT * FROM pg_catalog.pg_namespace LIMIT 3",
     "Returned 3 row(s) from `pg_catalog.pg_namespace`."),
    ("show me 50 rows from customers", "SELECT * FROM public.customers LIMIT 10",
     "Returned 10 row(s) from `public.customers`."),
    ("describe table crm.reps",
     "SELECT table_schema, table_name, column_name, data_type FROM "
     "information_schema.columns WHERE table_name = 'reps' AND table_schema "
     "= 'crm' ORDER BY table_schema, table_name, ordinal_position",
     "The `reps` table has 2 column(s): id, email."),
    ("Which columns are in information_schema.schemata?",
     None, "The `schemata` table has "),
]


def test_catalog_questions_in_any_schema(daemon_factory, registry_env, shop,
                                         pg, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    register(d, pg, shop)
    j = ask(d, "list tables").json()
    assert gate_of(j) == ("data_query_fast_path", "sql")
    assert j["answer_source"] == "sql"
    assert "FROM information_schema.tables" in j["sql"]
    names = ["%s.%s" % st for st in zip(j["data"]["table_schema"],
                                        j["data"]["table_name"])]
    assert names == ["crm.reps", "public.customers", "public.orders",
                     "sales.invoices", "sales.reps"]
    assert j["answer"].startswith("Found 5 table(s): crm.reps, "
                                  "public.customers, public.orders")
    for message, sql, words in CATALOG:
        r = ask(d, message)
        assert r.status_code == 200, (message, r.text)
        j = r.json()
        assert gate_of(j) == ("data_query_fast_path", "sql"), message
        assert j["answer_source"] == "sql", (message, j)
        if sql is not None:
            assert j["sql"] == sql, message
        assert words in j["answer"], (message, j["answer"])
        assert j["metrics"]["llm_calls"] == 0
    # two schemas have reps: which one?
    j = ask(d, "show columns in reps").json()
    assert j["answer_source"] == "clarification"
    assert j["clarifying_questions"] == ["Which table should I use: crm.reps "
                                         "or sales.reps?"], j
    # a table nobody has: did you mean?
    j = ask(d, "how many rows in custmers").json()
    assert j["answer_source"] == "clarification"
    assert any("customers" in q for q in j["clarifying_questions"]), j
    assert llm.requests == []


def test_new_table_found_by_the_next_question_on_every_worker(
        daemon_factory, registry_env, pg):
    db = pg.create_db("newtab")
    pg.sql(db, "CREATE TABLE before_t (x int)")
    # a long check interval: only the miss may make a worker look again
    d = daemon_factory(workers=2, env=clean_env(registry_env),
                       conf={"schema_check_interval": "600000"}).start(
                           wait_ready=True)
    register(d, pg, db)
    workers = set()

    def warm():
        j = ask(d, "how many rows are in before_t").json()
        assert j["answer"].startswith("Table `public.before_t` has 0 row(s)."), j
        workers.add(worker_of(j))
        return len(workers) == 2

    wait_for(warm, timeout=20, step=0.01, what="both workers hold a snapshot")
    pg.sql(db, "CREATE TABLE after_t (y int); INSERT INTO after_t VALUES (1), (2)")
    workers.clear()

    def next_question():
        j = ask(d, "how many rows are in after_t").json()
        assert j["answer_source"] == "sql", j
        assert j["answer"].startswith("Table `public.after_t` has 2 row(s)."), j
        workers.add(worker_of(j))
        return len(workers) == 2

    wait_for(next_question, timeout=20, step=0.01,
             what="both workers answered about after_t")


def worker_of(j):
    for t in j["decision_trace"]:
        if t["stage"] == "schema":
            return t["details"]["worker"]
    raise AssertionError("no schema stage in %r" % j["decision_trace"])


def test_clarification_round_trip_rest(daemon_factory, registry_env, shop,
                                       pg, llm):
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    register(d, pg, shop)
    # a table-less catalog question asks for the table
    j1 = ask(d, "show columns").json()
    assert gate_of(j1) == ("data_query_fast_path", "sql")
    assert j1["answer_source"] == "clarification"
    assert j1["clarifying_questions"] == ["Which table should I list columns "
                                          "for?"]
    assert j1["answer"].startswith("I need a bit more detail to generate "
                                   "SQL:\n- Which table should I list "
                                   "columns for?")
    assert j1["session_state"]["last_clarifying_questions"] == \
        j1["clarifying_questions"]
    # the reply, with the session_state the answer carried
    j2 = ask(d, "customers", session_state=j1["session_state"],
             conversation_id=j1["conversation_id"]).json()
    assert j2["answer_source"] == "sql", j2
    assert j2["answer"].startswith("The `customers` table has 3 column(s): "
                                   "id, name, region.")
    # DataChat's record of the rewrite, then its gate on the new question
    t = j2["decision_trace"]
    assert t[0] == {"stage": "intent_gate.rewrite",
                    "decision": "rewrite_query",
                    "reason": "resolved_followup",
                    "details": {"from": "customers",
                                "to": "Show columns in customers",
                                "table_hint": "customers"}}, t
    assert gate_of({"decision_trace": t[1:]}) == ("data_query_fast_path",
                                                  "sql")
    # the same with the history alone, as a client without state sends it
    j3 = ask(d, "how many rows?").json()
    assert j3["clarifying_questions"] == ["Which table should I count rows "
                                          "for?"]
    j4 = ask(d, "the orders table", conversation_history=[
        {"role": "user", "content": "how many rows?"},
        {"role": "assistant", "content": j3["answer"]}]).json()
    assert j4["answer"].startswith("Table `public.orders` has 120 row(s)."), j4
    # a sample keeps its size: DataChat's "Show N rows from T"
    j5 = ask(d, "show me the first 4 rows").json()
    assert j5["clarifying_questions"] == ["Which table should I sample rows "
                                          "from?"]
    j6 = ask(d, "customers", session_state=j5["session_state"]).json()
    assert j6["sql"] == "SELECT * FROM public.customers LIMIT 4", j6
    # a reply that names no table is not merged
    j7 = ask(d, "thanks", session_state=j1["session_state"]).json()
    assert j7["answer_source"] == "clarification"
    assert gate_of(j7) == ("clarify", "end")
    assert llm.requests == []


def test_clarification_round_trip_ws(daemon_factory, registry_env, shop,
                                     pg, llm):
    """The same over /ws/chat: the complete event carries session_state,
    the next socket sends it back with the reply."""
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    register(d, pg, shop)
    cv = converse(d, {"message": "how many rows?"})
    j1 = cv.last
    assert j1["event"] == "complete", cv.events
    SEEN_SOURCES.add(j1["answer_source"])
    assert j1["answer_source"] == "clarification"
    assert j1["clarifying_questions"] == ["Which table should I count rows "
                                          "for?"]
    cv = converse(d, {"message": "orders", "session_state":
                      j1["session_state"],
                      "conversation_id": j1["conversation_id"]})
    j2 = cv.last
    assert j2["event"] == "complete", cv.events
    SEEN_SOURCES.add(j2["answer_source"])
    assert j2["answer_source"] == "sql"
    assert j2["sql"] == "SELECT COUNT(*) AS row_count FROM public.orders"
    assert j2["answer"].startswith("Table `public.orders` has 120 row(s).")
    # a goodbye over the socket: the gate's answer, no LLM, no target
    cv = converse(d, {"message": "bye"})
    assert cv.last["answer_source"] == "system"
    assert gate_of(cv.last) == ("exit", "end")
    assert llm.requests == []


def test_gate_over_ws_with_no_llm_configured(daemon_factory, registry_env,
                                             shop, pg):
    """No LLM configured at all: over /ws/chat every category of the gate
    still answers (one pipeline with REST), catalog questions too, and only
    a question for the LLM says that none is configured."""
    d = daemon_factory(workers=2, env=clean_env(registry_env)).start(
        wait_ready=True)
    register(d, pg, shop)
    for message, decision, source, words in GATE:
        cv = converse(d, {"message": message})
        j = cv.last
        assert j["event"] == "complete", (message, cv.events)
        SEEN_SOURCES.add(j["answer_source"])
        assert gate_of(j) == (decision, "end"), (message, j["decision_trace"])
        assert j["answer_source"] == source, (message, j)
        assert words in j["answer"], (message, j["answer"])
        assert j["sql"] is None and j["metrics"]["llm_calls"] == 0, message
    for message in ("thanks, now list tables", "how many rows are in "
                    "sales.invoices?"):
        j = converse(d, {"message": message}).last
        assert j["event"] == "complete", (message, j)
        assert gate_of(j) == ("data_query_fast_path", "sql"), message
        assert j["answer_source"] == "sql" and j["sql"], (message, j)
    # past the gate, a question for the LLM: DataChat's error, in-band
    cv = converse(d, {"message": "what is our order volume"})
    assert cv.names[-1] == "error", cv.events
    assert cv.last["error"] == "service_unavailable", cv.last
    assert "no LLM configured" in cv.last["message"], cv.last


def test_typos_cannot_hammer_the_target(daemon_factory, registry_env, shop,
                                        pg):
    """Questions naming tables nobody has: each gets its clarification,
    but the target is asked about new names only a few at a time (four at
    once, then one every 250 ms) and for a fresher snapshot at most once a
    second: the rest are answered from what the worker knows."""
    d = daemon_factory(workers=1, env=clean_env(registry_env),
                       conf={"schema_check_interval": "600000",
                             "log_level": "debug"}).start(wait_ready=True)
    cid = register(d, pg, shop)
    j = ask(d, "how many rows are in orders").json()
    assert j["answer"].startswith("Table `public.orders` has 120 row(s).")
    base = d.log()
    n = 24
    t0 = time.monotonic()
    for i in range(n):
        j = ask(d, "how many rows are in nosuch_%d" % i).json()
        assert j["answer_source"] == "clarification", j
    elapsed = time.monotonic() - t0
    log = d.log()[len(base):]
    looked = log.count("schema of %s: looking up" % cid)
    refused = log.count("not looked up (too many names at once)")
    rechecks = log.count("schema of %s: catalog version" % cid)
    print("typos: %d looked up, %d not, %d catalog checks in %.2fs"
          % (looked, refused, rechecks, elapsed))
    assert looked + refused == n, log[-3000:]
    assert 1 <= looked <= 4 + int(elapsed / 0.25) + 1, (looked, elapsed)
    assert rechecks <= int(elapsed) + 2, (rechecks, elapsed)
    if elapsed < 4:
        assert refused > 0, (looked, elapsed)
    # a name it did look up is remembered as missing no longer than the
    # catalog stays the same: created now, found by the next question
    pg.sql(shop, "CREATE TABLE nosuch_0 (x int)")
    try:
        wait_for(lambda: ask(d, "how many rows are in nosuch_0").json()[
            "answer"].startswith("Table `public.nosuch_0` has 0 row(s)."),
            timeout=10, step=0.3, what="nosuch_0 found")
    finally:
        pg.sql(shop, "DROP TABLE nosuch_0")


LIMIT = ("I still cannot answer confidently after several clarifications.\n"
         "2. Ask me to list available tables.\n"
         "3. Ask a fully specified question with table + metric.\n"
         "4. Type `exit` to end the session.")


def test_clarification_limit(daemon_factory, registry_env, shop, pg, llm):
    """DataChat asks at most three clarifying questions in a conversation:
    counted from session_state's clarification_count or from the
    assistant turns of conversation_history that ask one; the fourth is
    DataChat's way out (answer_source system), over REST and /ws/chat."""
    env = clean_env(registry_env)
    env.update(llm_env(llm))
    d = daemon_factory(workers=2, env=env).start(wait_ready=True)
    register(d, pg, shop)
    # three rounds that each end in a clarifying question, state carried
    state, asked = None, []
    for message in ("ok", "how many rows?", "show columns"):
        extra = {"session_state": state} if state is not None else {}
        j = ask(d, message, **extra).json()
        assert j["answer_source"] == "clarification", (message, j)
        asked.append(j)
        state = j["session_state"]
    assert state["clarification_count"] == 3
    # the fourth: no question, DataChat's options
    for message in ("sure", "show me the first 2 rows"):
        j = ask(d, message, session_state=state).json()
        assert j["answer_source"] == "system", (message, j)
        assert j["answer"] == LIMIT, j["answer"]
        assert j["answer_confidence"] == 0.5
        assert j["clarifying_questions"] == []
        limit = [s for s in j["decision_trace"] if s["stage"] ==
                 "clarification"]
        assert limit and limit[0]["decision"] == "limit", j["decision_trace"]
    # what it does answer, it still answers
    j = ask(d, "how many rows are in orders", session_state=state).json()
    assert j["answer_source"] == "sql", j
    # the same counted from the history a stateless client sends
    history = []
    for j in asked:
        history += [{"role": "user", "content": "x"},
                    {"role": "assistant", "content": j["answer"]}]
    j = ask(d, "thanks", conversation_history=history[:4]).json()
    assert j["answer_source"] == "clarification", j     # two before
    j = ask(d, "thanks", conversation_history=history).json()
    assert j["answer_source"] == "system" and j["answer"] == LIMIT, j
    # over /ws/chat: the same pipeline
    cv = converse(d, {"message": "how many rows?", "session_state": state})
    assert cv.last["event"] == "complete", cv.events
    SEEN_SOURCES.add(cv.last["answer_source"])
    assert cv.last["answer_source"] == "system", cv.last
    assert cv.last["answer"] == LIMIT
    assert llm.requests == []


def test_answer_sources_are_datachats():
    """Every answer_source any test of this module saw is DataChat's."""
    if not SEEN_SOURCES:
        pytest.skip("runs after the other tests of this module")
    assert SEEN_SOURCES <= SOURCES
    assert {"system", "clarification", "sql"} <= SEEN_SOURCES
