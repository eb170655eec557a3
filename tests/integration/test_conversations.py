"""/api/v1/conversations: the web UI's saved chats, in DataChat's
ui_conversations table of the system database (same columns, same
50-message trim, same only-newer-wins upsert), checked over HTTP and in
the table itself."""
import json
import re

import pytest
import requests

from conftest import clean_env

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


@pytest.fixture
def convd(daemon_factory, registry_env, pg):
    d = daemon_factory(workers=2, env=clean_env(registry_env))
    d.start(wait_ready=True)
    d.pg = pg
    d.sysdb = registry_env["_sysdb"]
    return d


def rows(d):
    return d.pg.sql(d.sysdb, "SELECT frontend_session_id, title, target_database_id, "
                    "conversation_id, session_summary, session_state, messages, "
                    "created_at <= updated_at FROM ui_conversations "
                    "ORDER BY frontend_session_id")


def test_table_is_datachats(convd):
    cols = convd.pg.sql(convd.sysdb, "SELECT column_name, data_type, is_nullable "
                        "FROM information_schema.columns WHERE table_name = "
                        "'ui_conversations' ORDER BY ordinal_position")
    assert cols == [
        ("frontend_session_id", "text", "NO"), ("title", "text", "NO"),
        ("target_database_id", "text", "YES"), ("conversation_id", "text", "YES"),
        ("session_summary", "text", "YES"), ("session_state", "jsonb", "NO"),
        ("messages", "jsonb", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
        ("updated_at", "timestamp with time zone", "NO")]


def test_upsert_list_delete(convd):
    d = convd
    assert d.get("/api/v1/conversations").json() == []
    msgs = [{"role": "user", "content": "m%d" % i, "id": i} for i in range(60)]
    body = {"title": "Sales", "target_database_id": "db-1",
            "conversation_id": "conv_abc", "session_summary": None,
            "session_state": {"last_goal": "x", "n": 1.5},
            "messages": msgs, "updated_at": "2026-01-02T03:04:05.250Z"}
    r = d.put("/api/v1/conversations/sess-1", body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert TS.fullmatch(j.pop("created_at"))
    assert j == {"frontend_session_id": "sess-1", "title": "Sales",
                 "target_database_id": "db-1", "conversation_id": "conv_abc",
                 "session_summary": None,
                 "session_state": {"n": 1.5, "last_goal": "x"},
                 "messages": msgs[10:], "updated_at": "2026-01-02T03:04:05.250000Z"}
    (row,) = rows(d)
    assert row[:5] == ("sess-1", "Sales", "db-1", "conv_abc", None)
    assert row[5] == {"last_goal": "x", "n": 1.5} and row[6] == msgs[10:]

    # an older snapshot does not replace a newer one; the stored row comes back
    older = dict(body, title="Old", updated_at="2025-01-01T00:00:00Z")
    r = d.put("/api/v1/conversations/sess-1", older)
    assert r.status_code == 200 and r.json()["title"] == "Sales"
    newer = dict(body, title="New", messages=[], updated_at="2026-02-01T00:00:00+01:00")
    r = d.put("/api/v1/conversations/sess-1", newer)
    assert r.json()["title"] == "New" and r.json()["messages"] == []
    assert r.json()["updated_at"] == "2026-01-31T23:00:00Z"

    # no updated_at: now; the list is newest first and limited
    r = d.put("/api/v1/conversations/sess%202", {"title": "Two"})
    assert r.status_code == 200
    j = r.json()
    assert j["frontend_session_id"] == "sess 2" and j["session_state"] == {}
    assert j["messages"] == [] and j["created_at"] == j["updated_at"]
    lst = d.get("/api/v1/conversations").json()
    assert [c["frontend_session_id"] for c in lst] == ["sess 2", "sess-1"]
    assert [c["frontend_session_id"] for c in
            d.get("/api/v1/conversations?limit=1").json()] == ["sess 2"]
    assert len(d.get("/api/v1/conversations?limit=0").json()) == 1
    assert len(d.get("/api/v1/conversations?limit=5000").json()) == 2

    r = d.delete("/api/v1/conversations/sess-1")
    assert r.status_code == 200 and r.json() == {"ok": True, "deleted": True}
    r = d.delete("/api/v1/conversations/sess-1")
    assert r.json() == {"ok": True, "deleted": False}
    assert [x[0] for x in rows(d)] == ["sess 2"]


def test_validation(convd):
    d = convd
    r = d.get("/api/v1/conversations?limit=abc")
    assert r.status_code == 422 and r.json() == {"detail": [
        {"type": "int_parsing", "loc": ["query", "limit"],
         "msg": "Input should be a valid integer, unable to parse string as an integer",
         "input": "abc"}]}
    r = d.put("/api/v1/conversations/s", {"title": "", "session_state": None,
                                          "messages": [1]})
    assert r.status_code == 422
    assert [(e["type"], e["loc"]) for e in r.json()["detail"]] == [
        ("string_too_short", ["body", "title"]),
        ("dict_type", ["body", "session_state"]),
        ("dict_type", ["body", "messages", 0])]
    r = d.put("/api/v1/conversations/s", {"title": "t", "updated_at": "yesterday"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "datetime_from_date_parsing"
    assert rows(d) == []


def test_without_system_database(daemon_factory):
    d = daemon_factory(workers=1).start()
    assert d.get("/api/v1/conversations").json() == []
    r = d.put("/api/v1/conversations/x", {"title": "T", "messages": [{"a": 1}] * 55})
    assert r.status_code == 200
    j = r.json()
    assert j["frontend_session_id"] == "x" and len(j["messages"]) == 50
    assert j["created_at"] == j["updated_at"] and TS.fullmatch(j["created_at"])
    assert d.delete("/api/v1/conversations/x").json() == {"ok": True, "deleted": False}
