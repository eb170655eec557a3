"""/api/v1/system: the status DataChat's web UI reads first, setup
(initialize), reset and the entry-event telemetry, in DataChat's shapes,
against a real system database."""
import re

import pytest

from conftest import PG_PASSWORD, clean_env, wait_for

STEP_DB = {"step": "database_connection", "title": "Connect a target database",
           "description": "Provide the database you want DataChat to query.",
           "action": "configure_database"}
STEP_SYS = {"step": "system_database", "title": "System database (optional)",
            "description": "Configure SYSTEM_DATABASE_URL to enable registry/"
                           "profiling and run the demo dataset.",
            "action": "configure_system_database"}
STEP_DP = {"step": "datapoints", "title": "Load DataPoints (Recommended)",
           "description": "Optional but recommended: add DataPoints describing "
                          "your schema and business logic for higher answer "
                          "quality (or run datachat demo for sample data).",
           "action": "load_datapoints"}


def status(has_db, has_sys):
    steps = ([] if has_db else [STEP_DB]) + ([] if has_sys else [STEP_SYS]) + [STEP_DP]
    return {"is_initialized": has_db, "has_databases": has_db,
            "has_system_database": has_sys, "has_datapoints": False,
            "setup_required": steps}


@pytest.fixture
def sysd(daemon_factory, registry_env, pg):
    d = daemon_factory(workers=2, env=clean_env(registry_env))
    d.start(wait_ready=True)
    d.pg = pg
    d.sysdb = registry_env["_sysdb"]
    return d


def test_status_without_anything(daemon_factory):
    d = daemon_factory(workers=1).start()
    r = d.get("/api/v1/system/status")
    assert r.status_code == 200 and r.json() == status(False, False)
    # a chat now is DataChat's system_not_initialized, with the same steps
    r = d.post("/api/v1/chat", {"message": "SELECT 1", "execution_mode": "direct_sql"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "system_not_initialized",
        "message": "DataChat requires a target database connection. Run "
                   "'datachat setup' or 'datachat demo' to get started.",
        "setup_steps": [STEP_DB, STEP_SYS, STEP_DP]}


def test_status_with_database_url_only(daemon_factory, pg):
    d = daemon_factory(workers=1, env={"DATABASE_URL": pg.url("postgres")}).start()
    assert d.get("/api/v1/system/status").json() == status(True, False)


def test_initialize_registers_like_datachat(sysd):
    d = sysd
    assert d.get("/api/v1/system/status").json() == status(False, True)
    url = d.pg.url("postgres")
    r = d.post("/api/v1/system/initialize", {"database_url": url})
    assert r.status_code == 200, r.text
    assert r.json() == dict({"message": "Initialization completed."}, **status(True, True))
    assert list(r.json())[0] == "message"
    (c,) = d.get("/api/v1/databases").json()
    assert c["name"] == "Primary Database" and c["tags"] == ["setup"]
    assert c["description"] == "Added during setup" and c["is_default"] is True
    # the same URL again adds nothing
    r = d.post("/api/v1/system/initialize", {"database_url": url, "auto_profile": True})
    assert r.status_code == 200
    assert r.json()["message"].startswith("Initialization completed, but "
                                          "auto-profiling is unavailable.")
    assert len(d.get("/api/v1/databases").json()) == 1
    # nothing given: just the status
    r = d.post("/api/v1/system/initialize", {})
    assert r.json()["message"] == "Initialization completed."
    # errors: DataChat's 400s, never the password
    r = d.post("/api/v1/system/initialize",
               {"database_url": d.pg.url("postgres", password="wrong-pw-1")})
    assert r.status_code == 400 and "wrong-pw-1" not in r.text
    assert r.json()["detail"].startswith("Failed to connect to database:")
    r = d.post("/api/v1/system/initialize", {"database_url": "ftp://x/y"})
    assert r.status_code == 400
    assert r.json() == {"detail": "Unsupported database URL scheme: ftp"}
    r = d.post("/api/v1/system/initialize",
               {"system_database_url": "postgresql://u:pw@elsewhere/db"})
    assert r.status_code == 400 and "SYSTEM_DATABASE_URL" in r.json()["detail"]
    assert "pw@" not in r.text
    r = d.post("/api/v1/system/initialize", {"auto_profile": "sometimes"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "bool_parsing"


def test_reset_truncates_datachats_tables(sysd):
    d = sysd
    a = d.post("/api/v1/databases", {"name": "a", "database_url": d.pg.url("postgres"),
                                     "database_type": "postgresql"})
    assert a.status_code == 201
    assert d.put("/api/v1/conversations/s1", {"title": "t"}).status_code == 200
    assert d.post("/api/v1/feedback", {"category": "issue_report"}).status_code == 200
    # a table DataChat has and datachatd does not create is truncated too
    d.pg.sql(d.sysdb, "CREATE TABLE profiling_jobs (job_id uuid PRIMARY KEY)")
    d.pg.sql(d.sysdb, "INSERT INTO profiling_jobs VALUES (gen_random_uuid())")
    assert d.get("/api/v1/system/status").json()["has_databases"] is True
    r = d.post("/api/v1/system/reset")
    assert r.status_code == 200, r.text
    assert r.json() == dict(status(False, True), message="System reset complete.")
    assert list(r.json())[-1] == "message"
    for t in ("database_connections", "ui_conversations", "ui_feedback",
              "profiling_jobs"):
        assert d.pg.sql(d.sysdb, "SELECT count(*) FROM %s" % t) == [(0,)], t
    # published at once: every worker lists nothing
    for _ in range(6):
        assert d.get("/api/v1/databases").json() == []
    assert d.get("/api/v1/conversations").json() == []


def test_entry_event(daemon_factory):
    d = daemon_factory(workers=1).start()
    r = d.post("/api/v1/system/entry-event",
               {"flow": "setup", "step": "connect", "status": "completed",
                "metadata": {"secret": "do-not-log-me"}})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert "entry_event flow=setup step=connect status=completed source=ui" in d.log()
    assert "do-not-log-me" not in d.log()
    r = d.post("/api/v1/system/entry-event", {"flow": "", "status": 3})
    assert r.status_code == 422
    assert r.json() == {"detail": [
        {"type": "string_too_short", "loc": ["body", "flow"],
         "msg": "String should have at least 1 character", "input": "",
         "ctx": {"min_length": 1}},
        {"type": "missing", "loc": ["body", "step"], "msg": "Field required",
         "input": {"flow": "", "status": 3}},
        {"type": "string_type", "loc": ["body", "status"],
         "msg": "Input should be a valid string", "input": 3}]}


def test_health_and_ready_shapes(sysd):
    d = sysd
    h = d.get("/api/v1/health").json()
    assert h["status"] == "healthy" and h["version"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", h["timestamp"])
    r = d.get("/api/v1/ready")
    assert r.status_code == 200
    j = r.json()
    assert j["status"] == "ready" and j["version"] == h["version"]
    assert j["checks"] == {"database": True, "vector_store": True, "pipeline": True}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", j["timestamp"])
    assert PG_PASSWORD not in r.text
