"""/ws/chat: DataChat's streaming chat over a WebSocket on the REST port.

The handshake and its refusals, the event sequences of catalog, direct SQL
and LLM answers (with the LLM's text streamed as it is written), every
error code and close code, frames that break RFC 6455, a client that
leaves mid-query (its backend is cancelled), timeouts and pings,
shutdowns, and a thousand open sockets on one worker while REST answers.
"""
import json
import os
import resource
import signal
import socket
import threading
import time
import uuid

import pytest
import requests
import websocket

from conftest import clean_env, free_port, wait_for
from llm_mock import LlmMock
from wsclient import RawWs, accept_of, converse, read_all, ws_url

KEY = "sk-test-not-a-real-key-0123456789"
UI_ORIGIN = "http://ui.example:3000"

# what every complete event carries: DataChat's ChatResponse fields
RESPONSE_FIELDS = {
    "answer", "clarifying_questions", "sql", "data", "visualization_hint",
    "visualization_metadata", "sources", "answer_source",
    "answer_confidence", "evidence", "validation_errors",
    "validation_warnings", "tool_approval_required", "tool_approval_message",
    "tool_approval_calls", "metrics", "conversation_id", "session_summary",
    "session_state", "sub_answers", "decision_trace", "workflow_artifacts"}


@pytest.fixture(scope="module")
def llm_mod():
    mock = LlmMock()
    yield mock
    mock.stop()


def llm_env(mock, timeout="10"):
    return {"LLM_DEFAULT_PROVIDER": "openai", "LLM_TIMEOUT": timeout,
            "LLM_OPENAI_API_KEY": KEY, "LLM_OPENAI_MODEL": "gpt-test",
            "LLM_OPENAI_BASE_URL": mock.url + "/v1"}


@pytest.fixture(scope="module")
def shop(pg):
    a = pg.create_db("wsa")
    b = pg.create_db("wsb")
    pg.sql(a, """CREATE TABLE customers (id int PRIMARY KEY, name text,
                                         region text);
        INSERT INTO customers SELECT g, 'cust' || g,
            CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END
            FROM generate_series(1, 40) g;""")
    pg.sql(b, """CREATE TABLE sensors (id int PRIMARY KEY, location text);
        INSERT INTO sensors SELECT g, 'room' || g FROM generate_series(1, 9) g;""")
    return {"a": a, "b": b}


def start_daemon(tmp, pg, shop, llm, workers=2, conf=None, env=None):
    from conftest import Daemon, fernet_key
    e = {"SYSTEM_DATABASE_URL": pg.url(pg.create_db("wssys")),
         "DATABASE_CREDENTIALS_KEY": fernet_key()}
    e.update(llm_env(llm))
    e.update(env or {})
    c = {"cors_origins": UI_ORIGIN}
    c.update(conf or {})
    d = Daemon(tmp, workers=workers, env=e, conf=c).start(wait_ready=True)
    ids = {}
    for k in ("a", "b"):
        r = d.post("/api/v1/databases", {
            "name": k, "database_type": "postgresql",
            "database_url": pg.url(shop[k]), "is_default": k == "a"})
        assert r.status_code == 201, r.text
        ids[k] = r.json()["connection_id"]
    return d, ids


@pytest.fixture(scope="module")
def wsd(tmp_path_factory, pg, shop, llm_mod):
    d, ids = start_daemon(tmp_path_factory.mktemp("ws"), pg, shop, llm_mod)
    yield d, ids
    assert d.stop() == 0
    log = d.log()
    assert "Sanitizer" not in log and "runtime error" not in log, log[-3000:]


@pytest.fixture
def llm(llm_mod):
    llm_mod.reset()
    return llm_mod


@pytest.fixture
def own(tmp_path, pg, shop, llm_mod):
    """A daemon of the test's own, with special settings; stopped after."""
    made = []

    def make(**kw):
        d, ids = start_daemon(tmp_path, pg, shop, llm_mod, **kw)
        made.append(d)
        return d, ids
    yield make
    for d in made:
        d.stop(signal.SIGINT)


# --- the handshake --------------------------------------------------------

def test_handshake(wsd):
    d, _ = wsd
    c = RawWs(d.port)
    assert c.status == 101
    assert c.headers["upgrade"].lower() == "websocket"
    assert c.headers["connection"].lower() == "upgrade"
    assert c.headers["sec-websocket-accept"] == accept_of(c.key)
    assert "sec-websocket-extensions" not in c.headers
    c.close()
    # header tokens are lists, compared without case
    c = RawWs(d.port, headers={"Connection": "keep-alive, UPGRADE",
                               "Upgrade": "WebSocket"})
    assert c.status == 101
    c.close()


@pytest.mark.parametrize("headers,status,needle", [
    ({"Upgrade": None, "Connection": None}, 426, "WebSocket endpoint"),
    ({"Connection": "keep-alive"}, 426, "WebSocket endpoint"),
    ({"Sec-WebSocket-Version": "8"}, 426, "must be 13"),
    ({"Sec-WebSocket-Version": None}, 426, "must be 13"),
    ({"Sec-WebSocket-Key": "short"}, 400, "Sec-WebSocket-Key"),
    ({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key"),
    ({"Origin": "http://evil.example"}, 403, "not allowed"),
])
def test_handshake_refused(wsd, headers, status, needle):
    d, _ = wsd
    c = RawWs(d.port, headers=headers)
    assert c.status == status
    assert needle in json.loads(c.body)["detail"]
    if status == 426:
        assert c.headers["sec-websocket-version"] == "13"
    c.close()


def test_origin_checked_against_cors_origins(wsd):
    d, _ = wsd
    cv = converse(d, {"message": "list tables"}, origin=UI_ORIGIN)
    assert cv.code == 1000 and cv.last["event"] == "complete"
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        converse(d, {"message": "list tables"}, origin="http://localhost:3000")
    assert e.value.status_code == 403


# --- event sequences ------------------------------------------------------

def test_catalog_question_streams(wsd):
    d, ids = wsd
    cv = converse(d, {"message": "list tables", "target_database": ids["b"]})
    assert cv.code == 1000
    # DataChat's catalog statement: validated and run like any SQL
    assert cv.agents == [("agent_start", "QueryAnalyzerAgent"),
                         ("agent_complete", "QueryAnalyzerAgent"),
                         ("agent_start", "ContextAgent"),
                         ("agent_complete", "ContextAgent"),
                         ("agent_start", "ValidatorAgent"),
                         ("agent_complete", "ValidatorAgent"),
                         ("agent_start", "ExecutorAgent"),
                         ("agent_complete", "ExecutorAgent")], cv.agents
    assert "thinking" in cv.names
    assert cv.names[-2:] == ["answer_chunk", "complete"]
    done = cv.last
    assert RESPONSE_FIELDS <= set(done), RESPONSE_FIELDS - set(done)
    assert done["answer_source"] == "sql"
    assert done["data"]["table_name"] == ["sensors"]
    assert done["answer"].startswith(cv.of("answer_chunk")[0]["chunk"])
    for e in cv.of("agent_start") + cv.of("agent_complete"):
        assert e["timestamp"].endswith("+00:00") and e["message"]
    for e in cv.of("agent_complete"):
        assert isinstance(e["data"], dict) and e["duration_ms"] >= 0
    # the same answer as REST, field for field (but the timings)
    rest = d.post("/api/v1/chat", {"message": "list tables",
                                   "target_database": ids["b"]}).json()
    for k in RESPONSE_FIELDS - {"metrics", "conversation_id",
                                "decision_trace", "session_state"}:
        assert rest[k] == done[k], k
    rest["session_state"].pop("updated_at")
    done["session_state"].pop("updated_at")
    assert rest["session_state"] == done["session_state"]
    assert done["conversation_id"].startswith("conv_")


def test_direct_sql_streams(wsd):
    d, ids = wsd
    cv = converse(d, {"message": "SELECT id FROM customers ORDER BY id "
                                 "LIMIT 3",
                      "execution_mode": "direct_sql",
                      "sql": "SELECT id FROM customers ORDER BY id LIMIT 3",
                      "conversation_id": "conv_fixed",
                      "target_database": ids["a"]})
    assert cv.code == 1000, cv.events
    assert cv.agents == [("agent_start", "ValidatorAgent"),
                         ("agent_complete", "ValidatorAgent"),
                         ("agent_start", "ExecutorAgent"),
                         ("agent_complete", "ExecutorAgent")]
    assert cv.of("agent_complete")[1]["data"]["rows_returned"] == 3
    assert cv.last["data"] == {"id": [1, 2, 3]}
    assert cv.last["conversation_id"] == "conv_fixed"
    assert cv.last["sql"].startswith("SELECT id")


# DataChat's complete event goes through jsonable_encoder and json.dumps,
# its REST answer through pydantic: the same values read differently.
VALUES_SQL = (
    "SELECT 450.00::numeric(10,2) AS n, 10000::numeric AS n_int,"
    " 0.0000001::numeric AS n_small, -0.00::numeric AS n_zero,"
    " '2026-11-29 20:47:39.19446+00'::timestamptz AS tz,"
    " '12:00:00+00'::timetz AS ttz, '1 day 02:00:00'::interval AS iv,"
    " '-00:00:01.5'::interval AS iv_neg, ARRAY[450.00, 10000]::numeric[] AS arr,"
    " '2026-11-29'::date AS d, 1.5::float8 AS f8, 'NaN'::float8 AS f_nan,"
    " 'x'::text AS t")
VALUES_WS = (
    '{"n":[450.0],"n_int":[10000],"n_small":[1e-07],"n_zero":[0.0],'
    '"tz":["2026-11-29T20:47:39.194460+00:00"],"ttz":["12:00:00+00:00"],'
    '"iv":[93600.0],"iv_neg":[-1.5],"arr":[[450.0,10000]],'
    '"d":["2026-11-29"],"f8":[1.5],"f_nan":[null],"t":["x"]}')
VALUES_REST = (
    '{"n":["450.00"],"n_int":["1E+4"],"n_small":["1E-7"],"n_zero":["0.00"],'
    '"tz":["2026-11-29T20:47:39.194460Z"],"ttz":["12:00:00Z"],'
    '"iv":["P1DT2H"],"iv_neg":["-PT1.5S"],"arr":[["450.00","1E+4"]],'
    '"d":["2026-11-29"],"f8":[1.5],"f_nan":[null],"t":["x"]}')


def test_complete_values_as_jsonable_encoder(wsd):
    d, ids = wsd
    body = {"message": VALUES_SQL, "execution_mode": "direct_sql",
            "target_database": ids["a"]}
    cv = converse(d, body)
    assert cv.code == 1000, cv.events
    # json.dumps of what came is what DataChat's json.dumps writes
    assert json.dumps(cv.last["data"], separators=(",", ":"),
                      ensure_ascii=False) == VALUES_WS
    r = d.post("/api/v1/chat", body)
    assert r.status_code == 200, r.text
    assert json.dumps(r.json()["data"], separators=(",", ":"),
                      ensure_ascii=False) == VALUES_REST
    # the hint is the rows', whatever the writing
    rest = r.json()
    for k in ("visualization_hint", "visualization_metadata", "answer",
              "answer_source", "sql"):
        assert cv.last[k] == rest[k], k
    # no rows: asyncpg names no columns
    body["message"] = "SELECT id FROM customers WHERE false"
    assert converse(d, body).last["data"] == {}
    assert d.post("/api/v1/chat", body).json()["data"] == {}


def test_llm_answer_streams_as_written(wsd, llm):
    """synthesize_simple_sql: the LLM writes the answer, slowly; each
    piece reaches the client as it is written, long before complete."""
    d, ids = wsd
    llm.queue("SELECT count(*) AS n FROM customers")
    words = "There are forty customers in the table right now ."
    llm.queue(words, chunk_delay=0.3)
    cv = converse(d, {"message": "how big is the customer base",
                      "target_database": ids["a"],
                      "synthesize_simple_sql": True})
    assert cv.code == 1000, cv.events
    assert [a for _, a in cv.agents] == [
        "QueryAnalyzerAgent", "QueryAnalyzerAgent", "ContextAgent",
        "ContextAgent", "SQLAgent", "SQLAgent", "ValidatorAgent",
        "ValidatorAgent", "ExecutorAgent", "ExecutorAgent",
        "ResponseSynthesisAgent", "ResponseSynthesisAgent"]
    chunks = cv.of("answer_chunk")
    assert "".join(c["chunk"] for c in chunks) == words
    assert cv.last["answer"].startswith(words)
    assert len(chunks) >= 5
    i0 = cv.events.index(chunks[0])
    t_first, t_done = cv.times[i0], cv.times[-1]
    assert t_done - t_first >= 2.0, "chunks were held back"
    # each piece arrived soon after the provider wrote it
    sent = llm.requests[1]["sent"]
    assert llm.requests[1]["stream"] is True
    assert llm.requests[0]["stream"] is False     # the SQL is not streamed
    assert cv.times[i0] - sent[0] < 0.25
    assert cv.last["metrics"]["llm_calls"] == 2


def test_llm_sql_answer(wsd, llm):
    d, ids = wsd
    llm.queue("SELECT region, count(*) AS n FROM customers GROUP BY 1 "
              "ORDER BY 1")
    cv = converse(d, {"message": "customers per region",
                      "target_database": ids["a"]})
    assert cv.code == 1000
    assert cv.last["data"] == {"region": ["north", "south"], "n": [20, 20]}
    assert ("agent_complete", "SQLAgent") in cv.agents
    assert cv.of("agent_complete")[2]["data"]["sql_generated"] is True


def test_correction_is_announced(wsd, llm):
    d, ids = wsd
    llm.queue("SELECT nme FROM customers LIMIT 1")
    llm.queue("SELECT name FROM customers ORDER BY id LIMIT 1")
    cv = converse(d, {"message": "first customer", "target_database": ids["a"]})
    assert cv.last["data"] == {"name": ["cust1"]}
    assert [a for e, a in cv.agents if e == "agent_start"].count("SQLAgent") == 2
    assert cv.last["metrics"]["retry_count"] == 1


# --- errors: DataChat's codes, then the close code -------------------------

def error_of(cv):
    assert cv.names[-1] == "error", cv.events
    return cv.last["error"], cv.code


def test_error_codes(wsd, llm):
    d, ids = wsd
    cases = [
        ({"target_database": ids["a"]}, "validation_error", 1008,
         "Missing required field: message"),
        ({"message": 42}, "validation_error", 1008,
         "message: Input should be a valid string"),
        ({"message": "x", "execution_mode": "sideways"},
         "validation_error", 1008, "execution_mode"),
        ({"message": "x", "conversation_history": "not a list"},
         "validation_error", 1008, "conversation_history: Input should be "
         "a valid list"),
        ({"message": "x", "conversation_history": [{"role": "user"}]},
         "validation_error", 1008, "conversation_history.0.content: Field "
         "required"),
        ({"message": "x", "session_state": [1]}, "validation_error", 1008,
         "session_state: Input should be a valid dictionary"),
        ({"message": "x", "execution_mode": "direct_sql", "sql": "  ",
          "target_database": ids["a"]}, "validation_error", 1008,
         "SQL mode requires a non-empty SQL query."),
        ({"message": "list tables", "target_database": str(uuid.uuid4())},
         "invalid_target_database", 1008, "not found"),
        ({"message": "list tables", "target_database": "nope"},
         "invalid_target_database", 1008, "Invalid connection ID."),
        ({"message": "x", "execution_mode": "direct_sql",
          "sql": "DELETE FROM customers", "target_database": ids["a"]},
         "validation_error", 1008, "SQL Editor accepts read-only SQL only"),
        ({"message": "x", "execution_mode": "direct_sql",
          "sql": "SELECT nope FROM customers", "target_database": ids["a"]},
         "query_error", 1008, "Query execution failed: "),
    ]
    for req, code, close, needle in cases:
        cv = converse(d, req)
        assert error_of(cv) == (code, close), (req, cv.events)
        assert needle in cv.last["message"], (req, cv.last)
        assert cv.names == ["error"] or "agent_start" in cv.names
    assert json.loads(json.dumps(cv.last)).keys() >= {"event", "error",
                                                      "message"}
    # not JSON at all: 1003
    cv = converse(d, "{this is not json")
    assert error_of(cv) == ("invalid_json", 1003)
    assert cv.last["message"] == "Invalid JSON format"
    # JSON, but not an object
    cv = converse(d, "[1, 2]")
    assert error_of(cv) == ("validation_error", 1008)
    # binary frames: 1003
    cv = converse(d, b'{"message": "list tables"}')
    assert error_of(cv) == ("invalid_json", 1003)
    assert llm.requests == []


def test_errors_without_setup(tmp_path, pg, shop, llm_mod):
    """No target at all: system_not_initialized; no LLM configured for a
    question that needs one: service_unavailable and 1011."""
    from conftest import Daemon
    d = Daemon(tmp_path, workers=1, env={}).start()
    try:
        cv = converse(d, {"message": "list tables"})
        assert error_of(cv) == ("system_not_initialized", 1008)
        assert cv.last["message"].startswith("DataChat requires a target "
                                             "database connection.")
        assert [s["step"] for s in cv.last["setup_steps"]]
    finally:
        d.stop()
    db = pg.create_db("wsnollm")
    d = Daemon(tmp_path, workers=1, env={"DATABASE_URL": pg.url(db)}).start()
    try:
        cv = converse(d, {"message": "which customers buy most"})
        assert error_of(cv) == ("service_unavailable", 1011)
        assert "llm_provider" in cv.last["message"]
        # catalog questions need no LLM
        assert converse(d, {"message": "list tables"}).code == 1000
    finally:
        d.stop()


def paired(agents):
    """1 when every agent_complete follows its own agent_start, as
    DataChat's pipeline sends them."""
    open_ = []
    for ev, agent in agents:
        if ev == "agent_start":
            open_.append(agent)
        elif not open_ or open_.pop() != agent:
            return False
    return not open_


def test_unreadable_catalog_ends_the_validator_only(tmp_path):
    """The target's catalog cannot be read (nothing listens where its URL
    points), so the statement cannot be checked: the ValidatorAgent ends,
    failed, nothing is executed (no ExecutorAgent event), and every
    agent_complete follows its agent_start."""
    from conftest import Daemon
    url = "postgresql://nobody:Unre4d-pw@127.0.0.1:%d/none" % free_port()
    d = Daemon(tmp_path, workers=1, env={"DATABASE_URL": url}).start()
    try:
        for _ in range(2):      # the second one finds no catalog either
            cv = converse(d, {"message": "SELECT 1 AS one",
                              "execution_mode": "direct_sql",
                              "sql": "SELECT 1 AS one"})
            assert cv.agents == [("agent_start", "ValidatorAgent"),
                                 ("agent_complete", "ValidatorAgent")], \
                cv.events
            assert paired(cv.agents)
            assert cv.of("agent_complete")[0]["data"] == {
                "validation_passed": False, "issues_found": 0}
            # direct SQL: the target's failure as DataChat's connector's
            assert error_of(cv) == ("query_error", 1008), cv.last
            assert cv.last["message"].startswith(
                "target database unavailable: "), cv.last
            assert "Unre4d-pw" not in json.dumps(cv.events)
    finally:
        d.stop()


def test_llm_provider_failure(wsd, llm):
    d, ids = wsd
    llm.queue(status=500, body={"error": {"message": "model overloaded"}})
    cv = converse(d, {"message": "anything", "target_database": ids["a"]})
    assert error_of(cv) == ("service_unavailable", 1011)
    assert "model overloaded" in cv.last["message"]
    assert KEY not in json.dumps(cv.events)


def test_request_timeout(own, pg):
    d, ids = own(workers=1, conf={"request_timeout": "1"})
    t0 = time.monotonic()
    cv = converse(d, {"message": "x", "execution_mode": "direct_sql",
                      "sql": "SELECT pg_sleep(20)",
                      "target_database": ids["a"]})
    assert error_of(cv) == ("timeout", 1011)
    assert "request_timeout" in cv.last["message"]
    assert time.monotonic() - t0 < 5
    wait_for(lambda: not pg.sql("postgres", "SELECT 1 FROM pg_stat_activity "
                                "WHERE query LIKE 'SELECT pg_sleep(20)%' "
                                "AND pid <> pg_backend_pid()"),
             timeout=10, what="the query cancelled")


# --- the client goes away --------------------------------------------------

def test_client_leaving_cancels_the_query(wsd, pg):
    d, ids = wsd
    marker = "ws_gone_%s" % uuid.uuid4().hex[:8]
    sql = "SELECT pg_sleep(60), '%s'" % marker
    ws = websocket.create_connection(ws_url(d), timeout=10,
                                     suppress_origin=True)
    ws.send(json.dumps({"message": sql, "execution_mode": "direct_sql",
                        "sql": sql, "target_database": ids["a"]}))

    def running():
        return pg.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                      "WHERE query LIKE %s AND state = 'active' "
                      "AND pid <> pg_backend_pid()",
                      ("%" + marker + "%",))[0][0]
    wait_for(lambda: running() == 1, timeout=10, what="the query running")
    ws.sock.close()             # no close frame: the socket just goes
    wait_for(lambda: running() == 0, timeout=10,
             what="the backend cancelled after the client left")
    # the same with a polite close frame
    ws = websocket.create_connection(ws_url(d), timeout=10,
                                     suppress_origin=True)
    ws.send(json.dumps({"message": sql, "execution_mode": "direct_sql",
                        "sql": sql, "target_database": ids["a"]}))
    wait_for(lambda: running() == 1, timeout=10, what="the query running")
    ws.close()
    wait_for(lambda: running() == 0, timeout=10,
             what="the backend cancelled after the close frame")
    assert "the client left" in d.log()


def test_client_leaving_cancels_the_llm_call(wsd, llm):
    d, ids = wsd
    llm.queue(delay=5, text="SELECT 1")
    ws = websocket.create_connection(ws_url(d), timeout=10,
                                     suppress_origin=True)
    ws.send(json.dumps({"message": "something slow",
                        "target_database": ids["a"]}))
    wait_for(lambda: len(llm.requests) == 1, what="the LLM call")
    ws.close()
    wait_for(lambda: "the question is cancelled" in d.log(), timeout=5,
             what="the run cancelled")
    # the worker keeps answering at once
    t0 = time.monotonic()
    assert converse(d, {"message": "list tables"}).code == 1000
    assert time.monotonic() - t0 < 2


# --- RFC 6455 at the frame level ------------------------------------------

def test_ping_pong_and_fragments(wsd):
    d, _ = wsd
    c = RawWs(d.port)
    c.send(9, b"are you there")
    assert c.read_frame() == (10, b"are you there")
    # a question in three fragments, a ping between them
    body = json.dumps({"message": "list tables"}).encode()
    c.send(1, body[:5], fin=False)
    c.send(9, b"x")
    assert c.read_frame() == (10, b"x")
    c.send(0, body[5:10], fin=False)
    c.send(0, body[10:])
    events, code, _ = c.until_close()
    assert code == 1000 and events[-1]["event"] == "complete"
    c.close()


@pytest.mark.parametrize("case,code", [
    ("unmasked", 1002), ("rsv", 1002), ("opcode", 1002),
    ("bad_continuation", 1002), ("long_ping", 1002), ("utf8", 1007),
    ("oversize", 1009), ("oversize_fragments", 1009)])
def test_bad_frames(own, case, code):
    d, _ = own(workers=1, conf={"max_body_size": "4096"})
    c = RawWs(d.port)
    if case == "unmasked":
        c.send(1, b'{"message": "list tables"}', mask=False)
    elif case == "rsv":
        c.send(1, b'{"message": "list tables"}', rsv=4)
    elif case == "opcode":
        c.send(3, b"what is this")
    elif case == "bad_continuation":
        c.send(0, b"no start")
    elif case == "long_ping":
        c.send(9, b"p" * 200)
    elif case == "utf8":
        c.send(1, b'{"message": "\xff\xfe"}')
    elif case == "oversize":
        # the header alone says too much: nothing is read past it
        c.sock.sendall(RawWs.frame(1, b"", length=1 << 40)[:14] + b"abcd")
    else:
        for _ in range(3):
            c.send(1 if _ == 0 else 0, b"x" * 2000, fin=False)
    events, got, _ = c.until_close()
    assert got == code, (case, events)
    assert events == []
    assert c.eof(), "the server keeps the connection open"
    c.close()
    # the worker is fine
    assert converse(d, {"message": "list tables"}).code == 1000


def test_message_size_limit_is_max_body_size(own):
    d, _ = own(workers=1, conf={"max_body_size": "4096"})
    pad = "x" * 3000
    cv = converse(d, {"message": "list tables", "session_summary": pad})
    assert cv.code == 1000 and cv.last["event"] == "complete"
    c = RawWs(d.port)
    c.text(json.dumps({"message": "list tables", "session_summary":
                       pad * 2}))
    events, code, _ = c.until_close()
    assert code == 1009 and events == []
    c.close()


def test_idle_timeout_and_pings(own):
    d, _ = own(workers=1, conf={"ws_idle_timeout": "1",
                                "ws_ping_interval": "1"})
    # an idle session is closed with 1001
    c = RawWs(d.port)
    t0 = time.monotonic()
    events, code, reason = [], None, ""
    while code is None:
        op, p = c.read_frame()
        if op == 9:
            c.send(10, p)       # answer the pings
        elif op == 8:
            code, reason = int.from_bytes(p[:2], "big"), p[2:].decode()
    assert code == 1001 and "idle" in reason
    assert 0.8 < time.monotonic() - t0 < 4
    c.close()


def test_silent_peer_is_dropped(own, llm):
    d, ids = own(workers=1, conf={"ws_ping_interval": "1",
                                  "ws_idle_timeout": "60",
                                  "request_timeout": "60"})
    llm.queue(delay=30, text="SELECT 1")
    c = RawWs(d.port)
    c.text(json.dumps({"message": "slow question", "target_database":
                       ids["a"]}))
    wait_for(lambda: len(llm.requests) == 1, what="the LLM call")
    # we read nothing and answer no ping: gone after two intervals
    t0 = time.monotonic()
    wait_for(lambda: "the question is cancelled" in d.log(), timeout=6,
             what="the silent client dropped")
    assert time.monotonic() - t0 < 4
    events, code, _ = [], None, None
    while True:
        op, p = c.read_frame()
        if op == 8:
            code = int.from_bytes(p[:2], "big")
            break
    assert code == 1011
    c.close()


def test_second_message_is_ignored(wsd, llm):
    d, ids = wsd
    ws = websocket.create_connection(ws_url(d), timeout=10,
                                     suppress_origin=True)
    ws.send(json.dumps({"message": "list tables"}))
    ws.send(json.dumps({"message": "something for the LLM"}))
    cv = read_all(ws)
    ws.close()
    assert cv.code == 1000 and len(cv.of("complete")) == 1
    assert llm.requests == []


# --- shutdowns -------------------------------------------------------------

def test_smart_shutdown_lets_streams_finish(own, pg):
    d, ids = own(workers=1)
    idle = RawWs(d.port)
    busy = RawWs(d.port)
    busy.text(json.dumps({"message": "x", "execution_mode": "direct_sql",
                          "sql": "SELECT pg_sleep(1.5) AS slept",
                          "target_database": ids["a"]}))
    time.sleep(0.3)
    d.send(signal.SIGTERM)
    events, code, reason = idle.until_close()
    assert code == 1001 and events == []
    events, code, _ = busy.until_close()
    assert code == 1000 and events[-1]["event"] == "complete"
    assert events[-1]["data"] == {"slept": [""]}
    assert d.wait_exit(15) == 0


def test_fast_shutdown_closes_with_1001(own, pg):
    d, ids = own(workers=1)
    busy = RawWs(d.port)
    busy.text(json.dumps({"message": "x", "execution_mode": "direct_sql",
                          "sql": "SELECT pg_sleep(30)",
                          "target_database": ids["a"]}))
    time.sleep(0.5)
    t0 = time.monotonic()
    d.send(signal.SIGINT)
    events, code, _ = busy.until_close()
    assert code == 1001
    assert all(e["event"] != "complete" for e in events)
    assert d.wait_exit(15) == 0
    assert time.monotonic() - t0 < 5


# --- many sockets ----------------------------------------------------------

def test_a_thousand_sockets_on_one_worker(own):
    """1,000 WebSockets open on one worker (each past its handshake, with
    a question on every tenth), while REST keeps answering quickly."""
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4 * n + 512)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    d, ids = own(workers=1, conf={"ws_idle_timeout": "120"})
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        c = RawWs(d.port, handshake=False)
        c.sock.sendall(("GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: "
                        "websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: "
                        "13\r\n\r\n" % c.key).encode())
        socks.append(c)
    for c in socks:
        while b"\r\n\r\n" not in c.buf:
            c.buf += c.sock.recv(4096)
        assert c.buf.startswith(b"HTTP/1.1 101"), c.buf[:80]
        c.buf = c.buf.split(b"\r\n\r\n", 1)[1]
    opened = time.monotonic() - t0
    # REST on the same worker, while all of them are open
    s = requests.Session()
    t1 = time.monotonic()
    for i in range(20):
        r = s.post(d.url("/api/v1/chat"), timeout=10, json={
            "execution_mode": "direct_sql", "message": "x",
            "sql": "SELECT %d AS i" % i, "target_database": ids["a"]})
        assert r.status_code == 200 and r.json()["data"] == {"i": [i]}
    rest = time.monotonic() - t1
    assert rest < 3, "REST slowed down: %.2fs for 20 requests" % rest
    # every tenth socket asks; all of them get their answer
    asking = socks[::10]
    for c in asking:
        c.text(json.dumps({"message": "list tables"}))
    for c in asking:
        events, code, _ = c.until_close()
        assert code == 1000 and events[-1]["event"] == "complete"
    # the others are still open and answer a ping
    for c in socks[1:50:7]:
        c.send(9, b"still")
        assert c.read_frame() == (10, b"still")
    for c in socks:
        c.close()
    assert opened < 30
