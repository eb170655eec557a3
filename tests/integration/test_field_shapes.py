"""Field-exact responses: a ChatResponse carries every field of DataChat's
model in its order, with DataChat's metrics keys, answer texts,
visualization hints (backend/api/visualization.py) and the session
fields echoed; a connection is DataChat's DatabaseConnection."""
import re

import pytest

from conftest import clean_env

CHAT_FIELDS = ["answer", "clarifying_questions", "sql", "data", "visualization_hint",
               "visualization_metadata", "sources", "answer_source",
               "answer_confidence", "evidence", "validation_errors",
               "validation_warnings", "tool_approval_required",
               "tool_approval_message", "tool_approval_calls", "metrics",
               "conversation_id", "session_summary", "session_state", "sub_answers",
               "decision_trace", "workflow_artifacts"]
METRICS = ["total_latency_ms", "agent_timings", "llm_calls", "retry_count",
           "sql_formatter_fallback_calls", "sql_formatter_fallback_successes",
           "query_compiler_llm_calls", "query_compiler_llm_refinements",
           "query_compiler_latency_ms"]
NOTICE = ("\n\nLive schema mode: DataPoints are not loaded yet. Answers are "
          "generated from database metadata and query results only.")


@pytest.fixture
def shaped(daemon_factory, registry_env, pg):
    db = pg.create_db("shape")
    pg.sql(db, "CREATE TABLE sales (region text, month date, revenue int, "
               "cost float8, price numeric(10,2), code text);"
               "INSERT INTO sales VALUES ('north', '2026-01-01', 10, 1.5, 4.50, '12'),"
               "('south', '2026-02-01', 20, 2.5, 5.00, 'x')")
    d = daemon_factory(workers=2, env=clean_env(registry_env)).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "shape", "database_url": pg.url(db),
                                     "database_type": "postgresql", "is_default": True})
    assert r.status_code == 201
    d.cid = r.json()["connection_id"]
    return d


# One value of each type, and the exact JSON DataChat answers for it
# (asyncpg's value through pydantic 2.12 and FastAPI 0.128; arrays are
# asyncpg's lists, nested per dimension, the bounds dropped).  The
# database's session settings are odd on purpose: another time zone (the
# offset is taken off), DateStyle SQL and IntervalStyle iso_8601 (the
# driver sets its own for its sessions).
VALUES_SQL = (
    "SELECT 450.00::numeric(10,2) AS n, 10000::numeric AS n_int,"
    " 0.0000001::numeric AS n_small, 'NaN'::numeric AS n_nan,"
    " 1.5::float8 AS f8, 450::float8 AS f8_whole, 1.1::float4 AS f4,"
    " 'NaN'::float8 AS f_nan, '-Infinity'::float8 AS f_ninf,"
    " '2026-11-29 20:47:39.19446+00'::timestamptz AS tz,"
    " '2026-11-29 20:47:39+00'::timestamptz AS tz_whole,"
    " '2026-11-29 20:47:39.19446'::timestamp AS ts, '2026-11-29'::date AS d,"
    " '20:47:39'::time AS t, '12:00:00+05:30'::timetz AS ttz,"
    " '1 year 2 mons 3 days 04:05:06.789'::interval AS iv,"
    " '-1 days +02:00:00'::interval AS iv_neg,"
    " '\\x636166c3a9'::bytea AS b, '\\xff'::bytea AS b_bin,"
    " '{\"a\": 1}'::jsonb AS jb, '{\"a\":1}'::json AS js,"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,"
    " 'infinity'::date AS d_inf, '-infinity'::timestamptz AS tz_ninf,"
    " '0044-03-15 BC'::date AS d_bc, ARRAY[1,2] AS arr,"
    " ARRAY['a b', NULL, 'q\"x', 'NULL']::text[] AS arr_t,"
    " ARRAY[450.00, 10000]::numeric[] AS arr_n, '{{1,2},{3,4}}'::int[] AS arr_2d,"
    " '[0:1]={5,6}'::int[] AS arr_lb,"
    " ARRAY['2026-11-29 20:47:39+00']::timestamptz[] AS arr_tz,"
    " ARRAY[true, false] AS arr_b, ARRAY[1.1]::float4[] AS arr_f4,"
    " '{}'::int[] AS arr_e, ARRAY['1 day']::interval[] AS arr_iv,"
    " ARRAY['2026-11-29']::date[] AS arr_d, 7::int8 AS i,"
    " true AS bo, NULL::text AS nul")
VALUES_JSON = (
    '{"n":["450.00"],"n_int":["1E+4"],"n_small":["1E-7"],"n_nan":["NaN"],'
    '"f8":[1.5],"f8_whole":[450.0],"f4":[1.100000023841858],"f_nan":[null],'
    '"f_ninf":[null],"tz":["2026-11-29T20:47:39.194460Z"],'
    '"tz_whole":["2026-11-29T20:47:39Z"],"ts":["2026-11-29T20:47:39.194460"],'
    '"d":["2026-11-29"],"t":["20:47:39"],"ttz":["12:00:00+05:30"],'
    '"iv":["P1Y63DT4H5M6.789S"],"iv_neg":["-PT22H"],"b":["caf\u00e9"],'
    '"b_bin":["\\\\xff"],"jb":["{\\"a\\": 1}"],"js":["{\\"a\\":1}"],'
    '"u":["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],"d_inf":["9999-12-31"],'
    '"tz_ninf":["0001-01-01T00:00:00"],"d_bc":["0044-03-15 BC"],'
    '"arr":[[1,2]],"arr_t":[["a b",null,"q\\"x","NULL"]],'
    '"arr_n":[["450.00","1E+4"]],"arr_2d":[[[1,2],[3,4]]],"arr_lb":[[5,6]],'
    '"arr_tz":[["2026-11-29T20:47:39Z"]],"arr_b":[[true,false]],'
    '"arr_f4":[[1.100000023841858]],"arr_e":[[]],"arr_iv":[["P1D"]],'
    '"arr_d":[["2026-11-29"]],"i":[7],"bo":[true],"nul":[null]}')


def test_data_values_as_datachat(daemon_factory, registry_env, pg):
    db = pg.create_db("values")
    pg.sql(db, "ALTER DATABASE %s SET TimeZone = 'Asia/Kolkata';"
               "ALTER DATABASE %s SET DateStyle = 'SQL, DMY';"
               "ALTER DATABASE %s SET IntervalStyle = 'iso_8601'" % (db, db, db))
    d = daemon_factory(workers=1, env=clean_env(registry_env)).start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "values", "database_url": pg.url(db),
                                     "database_type": "postgresql", "is_default": True})
    assert r.status_code == 201, r.text
    r = direct(d, VALUES_SQL)
    assert r.status_code == 200, r.text
    # the bytes themselves: the key order and every digit count
    m = re.search(r'"data":(\{.*?\}),"visualization_hint"', r.text)
    assert m, r.text
    assert m.group(1) == VALUES_JSON
    assert r.json()["visualization_hint"] == "scatter"   # f8 and i are numbers
    # the tools write rows the same way
    r = d.post("/api/v1/tools/execute", {"name": "run_sql", "arguments": {
        "query": "SELECT '2026-11-29 20:47:39+00'::timestamptz AS tz, 450.00 AS n"}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["data"]["rows"] == [{"tz": "2026-11-29T20:47:39Z",
                                                   "n": "450.00"}]


def direct(d, text, **kw):
    body = dict({"message": text, "execution_mode": "direct_sql"}, **kw)
    return d.post("/api/v1/chat", body)


def test_chat_response_fields(shaped):
    d = shaped
    r = direct(d, "  SELECT region, revenue FROM sales ORDER BY region ; ",
               session_summary="Intent summary: x", session_state={"last_goal": "y"},
               conversation_id="conv_given")
    assert r.status_code == 200, r.text
    j = r.json()
    assert list(j)[:len(CHAT_FIELDS)] == CHAT_FIELDS
    # datachatd's own fields come after DataChat's
    assert list(j)[len(CHAT_FIELDS):] == ["row_count", "truncated", "target_database"]
    assert j["answer"] == "Executed SQL query successfully. Returned 2 row(s)." + NOTICE
    assert j["sql"] == "SELECT region, revenue FROM sales ORDER BY region ;"
    assert j["data"] == {"region": ["north", "south"], "revenue": [10, 20]}
    assert j["visualization_hint"] == "bar_chart"
    assert j["visualization_metadata"] == {
        "requested": "direct_sql", "deterministic": "bar_chart", "final": "bar_chart",
        "resolution_reason": "direct_sql_result_shape"}
    assert j["answer_source"] == "sql" and j["answer_confidence"] == 1.0
    for empty in ("clarifying_questions", "sources", "evidence", "validation_errors",
                  "validation_warnings", "tool_approval_calls", "sub_answers"):
        assert j[empty] == [], empty
    assert j["tool_approval_required"] is False and j["tool_approval_message"] is None
    assert list(j["metrics"]) == METRICS
    assert list(j["metrics"]["agent_timings"]) == ["direct_sql_execution"]
    assert j["metrics"]["llm_calls"] == 0 and j["metrics"]["query_compiler_latency_ms"] == 0.0
    assert j["conversation_id"] == "conv_given"
    assert j["session_summary"] == "Intent summary: x"
    assert j["session_state"] == {"last_goal": "y"}
    assert j["workflow_artifacts"] is None
    em = [t for t in j["decision_trace"] if t["stage"] == "execution_mode"][0]
    assert em["decision"] == "direct_sql"
    assert em["reason"] == "user_selected_sql_editor_mode"
    # none sent: null, and conv_ plus 12 hex digits
    j = direct(d, "SELECT 1 AS one").json()
    assert j["session_summary"] is None and j["session_state"] is None
    assert re.fullmatch(r"conv_[0-9a-f]{12}", j["conversation_id"])


@pytest.mark.parametrize("sql,hint", [
    ("SELECT 1 AS n WHERE false", "none"),          # no rows
    ("SELECT 42 AS answer", "table"),               # one column
    ("SELECT month, revenue FROM sales", "line_chart"),
    ("SELECT revenue, cost FROM sales", "scatter"),
    ("SELECT region, price FROM sales", "table"),   # numeric is Decimal: not a number
    ("SELECT region, code FROM sales", "bar_chart"),  # text '12' reads as a number
    ("SELECT g AS x, 'r' || g AS label FROM generate_series(1, 41) g", "table"),
])
def test_direct_sql_visualization(shaped, sql, hint):
    j = direct(shaped, sql).json()
    assert j["visualization_hint"] == hint, j
    assert j["visualization_metadata"]["final"] == hint


def test_empty_result_and_sql_from_message(shaped):
    d = shaped
    j = direct(d, "SELECT region FROM sales WHERE false").json()
    assert j["data"] == {} and j["answer"].startswith("Executed SQL query "
                                                      "successfully. Returned 0 row(s).")
    # sql wins over message when given
    j = direct(d, "ignored words", sql="SELECT 7 AS x").json()
    assert j["data"] == {"x": [7]} and j["sql"] == "SELECT 7 AS x"


def test_chat_request_validation(shaped):
    d = shaped
    r = d.post("/api/v1/chat", {"message": "x", "execution_mode": "sql",
                                "workflow_mode": "bad", "conversation_history": "no",
                                "session_state": [1]})
    assert r.status_code == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [
        ("literal_error", ["body", "execution_mode"]),
        ("list_type", ["body", "conversation_history"]),
        ("dict_type", ["body", "session_state"]),
        ("literal_error", ["body", "workflow_mode"])]
    r = d.post("/api/v1/chat", {"message": "SELECT 1", "execution_mode": "direct_sql",
                                "conversation_history": [{"role": "user"}, 5]})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {"type": "missing", "loc": ["body", "conversation_history", 0, "content"],
         "msg": "Field required", "input": {"role": "user"}},
        {"type": "model_attributes_type", "loc": ["body", "conversation_history", 1],
         "msg": "Input should be a valid dictionary or object to extract fields from",
         "input": 5}]
    # the UI's nulls and a valid history are fine; "" is no target
    r = d.post("/api/v1/chat", {"message": "SELECT 1 AS x", "execution_mode": "direct_sql",
                                "target_database": "", "workflow_mode": None,
                                "conversation_id": None, "session_summary": None,
                                "session_state": None, "synthesize_simple_sql": None,
                                "conversation_history": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text


def test_database_connection_shape(shaped):
    d = shaped
    j = d.get("/api/v1/databases/" + d.cid).json()
    # DataChat's fields in DataChat's order, then datachatd's addition
    assert list(j) == ["connection_id", "name", "database_url", "database_type",
                       "is_active", "is_default", "tags", "description", "created_at",
                       "last_profiled", "datapoint_count", "role_privileges"]
    assert j["database_url"] == "**********"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", j["created_at"])
    # DataChat's UUID parsing: no dashes, braces and upper case are the same id
    for form in (d.cid.replace("-", ""), "{%s}" % d.cid, d.cid.upper()):
        assert d.get("/api/v1/databases/" + form).json()["connection_id"] == d.cid
    r = d.get("/api/v1/databases/nope")
    assert r.status_code == 400 and r.json() == {"detail": "Invalid connection ID."}


def test_environment_entry_texts(daemon_factory, registry_env, pg):
    env = clean_env(registry_env)
    env["DATABASE_URL"] = pg.url("postgres")
    d = daemon_factory(workers=1, env=env).start(wait_ready=True)
    env_id = "00000000-0000-0000-0000-00000000dada"
    (e,) = d.get("/api/v1/databases").json()
    assert e["connection_id"] == env_id and e["name"] == "Environment Database"
    assert e["description"] == "Loaded from DATABASE_URL" and e["tags"] == ["env"]
    assert e["database_url"] == "**********" and e["is_default"] is True
    for method, path, body, detail in [
        ("PATCH", "", {"name": "x"}, "Environment Database is derived from "
         "DATABASE_URL and cannot be edited here."),
        ("PUT", "/default", {}, "Environment Database is derived from DATABASE_URL "
         "and cannot be set as an explicit registry default."),
        ("DELETE", "", None, "Environment Database is derived from DATABASE_URL "
         "and cannot be deleted here."),
    ]:
        import requests
        r = requests.request(method, d.url("/api/v1/databases/" + env_id + path),
                             json=body, timeout=10)
        assert r.status_code == 400 and r.json() == {"detail": detail}, r.text
