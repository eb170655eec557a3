"""/api/v1/feedback: stored in DataChat's ui_feedback table of the
system database, counted by /feedback/summary; logs only without one."""
import re
import uuid

import pytest

from conftest import clean_env

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")


@pytest.fixture
def fbd(daemon_factory, registry_env, pg):
    d = daemon_factory(workers=2, env=clean_env(registry_env))
    d.start(wait_ready=True)
    d.pg = pg
    d.sysdb = registry_env["_sysdb"]
    return d


def test_submit_and_summary(fbd):
    d = fbd
    body = {"category": "answer_feedback", "sentiment": "up",
            "conversation_id": "conv_1", "message_id": "m1",
            "target_database_id": "db-1", "answer_source": "sql",
            "answer_confidence": 0.75, "query": "how many?", "answer": "3",
            "sql": "SELECT 3", "sources": [{"datapoint_id": "x"}],
            "metadata": {"ui": "web"}}
    r = d.post("/api/v1/feedback", body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert list(j) == ["ok", "feedback_id", "saved_to", "created_at"]
    assert j["ok"] is True and j["saved_to"] == "system_database"
    uuid.UUID(j["feedback_id"])
    assert ISO.fullmatch(j["created_at"])
    (row,) = d.pg.sql(d.sysdb, "SELECT feedback_id::text, category, sentiment, message, "
                      "context, conversation_id, message_id, target_database_id, "
                      "answer_source, answer_confidence FROM ui_feedback")
    assert row == (j["feedback_id"], "answer_feedback", "up", None,
                   {"query": "how many?", "answer": "3", "sql": "SELECT 3",
                    "sources": [{"datapoint_id": "x"}], "metadata": {"ui": "web"}},
                   "conv_1", "m1", "db-1", "sql", 0.75)
    assert d.post("/api/v1/feedback", {"category": "answer_feedback",
                                       "sentiment": "down"}).status_code == 200
    assert d.post("/api/v1/feedback", {"category": "answer_feedback",
                                       "sentiment": "up"}).status_code == 200
    r = d.post("/api/v1/feedback", {"category": "issue_report",
                                    "message": "the chart is wrong"})
    assert r.status_code == 200
    # an old row falls outside the window
    d.pg.sql(d.sysdb, "INSERT INTO ui_feedback (feedback_id, category, context, "
             "created_at) VALUES (gen_random_uuid(), 'issue_report', '{}', "
             "now() - interval '40 days')")
    (ctx,) = d.pg.sql(d.sysdb, "SELECT context FROM ui_feedback WHERE category = "
                      "'issue_report' AND message IS NOT NULL")[0]
    assert ctx == {"query": None, "answer": None, "sql": None, "sources": [],
                   "metadata": {}}
    r = d.get("/api/v1/feedback/summary")
    assert r.status_code == 200
    assert r.json() == {"window_days": 30, "totals": [
        {"category": "answer_feedback", "sentiment": "down", "count": 1},
        {"category": "answer_feedback", "sentiment": "up", "count": 2},
        {"category": "issue_report", "sentiment": None, "count": 1}]}
    r = d.get("/api/v1/feedback/summary?days=0")
    assert r.json()["window_days"] == 1
    assert d.get("/api/v1/feedback/summary?days=60").json()["totals"][-1] == {
        "category": "issue_report", "sentiment": None, "count": 2}


def test_validation(fbd):
    d = fbd
    r = d.post("/api/v1/feedback", {"category": "praise", "sentiment": "meh",
                                    "answer_confidence": "high", "sources": {}})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {"type": "literal_error", "loc": ["body", "category"],
         "msg": "Input should be 'answer_feedback', 'issue_report' or "
                "'improvement_suggestion'", "input": "praise",
         "ctx": {"expected": "'answer_feedback', 'issue_report' or "
                             "'improvement_suggestion'"}},
        {"type": "literal_error", "loc": ["body", "sentiment"],
         "msg": "Input should be 'up' or 'down'", "input": "meh",
         "ctx": {"expected": "'up' or 'down'"}},
        {"type": "float_parsing", "loc": ["body", "answer_confidence"],
         "msg": "Input should be a valid number, unable to parse string as a number",
         "input": "high"},
        {"type": "list_type", "loc": ["body", "sources"],
         "msg": "Input should be a valid list", "input": {}}]
    r = d.get("/api/v1/feedback/summary?days=x")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "days"]
    assert d.pg.sql(d.sysdb, "SELECT count(*) FROM ui_feedback") == [(0,)]


def test_logs_only_without_system_database(daemon_factory):
    d = daemon_factory(workers=1).start()
    r = d.post("/api/v1/feedback", {"category": "improvement_suggestion",
                                    "message": "private words"})
    assert r.status_code == 200
    assert r.json()["saved_to"] == "logs_only"
    assert "private words" not in d.log()
    assert d.get("/api/v1/feedback/summary?days=7").json() == {"window_days": 7,
                                                              "totals": []}
