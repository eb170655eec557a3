"""DataChat's DataPoint, profiling and sync routes: datachatd keeps no
DataPoints, so reads answer truthfully in DataChat's shapes (the web UI's
Database Management page opens with no error) and the actions that would
make DataPoints are a clear 501; malformed requests are FastAPI's 422."""
import uuid

import pytest
import requests

from conftest import clean_env

LIVE = ("datachatd runs in live schema mode and keeps no DataPoints: answers "
        "come from the target database's live schema")


@pytest.fixture
def dpd(daemon_factory, registry_env, pg):
    d = daemon_factory(workers=1, env=clean_env(registry_env))
    d.start(wait_ready=True)
    r = d.post("/api/v1/databases", {"name": "a", "database_url": pg.url("postgres"),
                                     "database_type": "postgresql"})
    assert r.status_code == 201
    d.cid = r.json()["connection_id"]
    return d


def test_reads_the_ui_makes(dpd):
    d = dpd
    some = str(uuid.uuid4())
    for path, want in [
        ("/api/v1/datapoints", {"datapoints": []}),
        ("/api/v1/datapoints/pending", {"pending": []}),
        ("/api/v1/datapoints/pending?status_filter=%20ALL%20", {"pending": []}),
        ("/api/v1/datapoints/pending?connection_id=" + d.cid, {"pending": []}),
        ("/api/v1/sync/status", {"status": "idle", "job_id": None, "sync_type": None,
                                 "started_at": None, "finished_at": None,
                                 "total_datapoints": 0, "processed_datapoints": 0,
                                 "error": None}),
        ("/api/v1/profiling/jobs/connection/%s/latest" % d.cid, None),
        ("/api/v1/datapoints/generate/profiles/%s" % some, None),
    ]:
        r = d.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.json() == want, path
    r = d.post("/api/v1/datapoints/pending/bulk-approve")
    assert r.status_code == 200 and r.json() == {"pending": []}


def test_not_found_texts(dpd):
    d = dpd
    some = str(uuid.uuid4())
    for method, path, detail in [
        ("GET", "/api/v1/datapoints/table_x_001", "Datapoint not found"),
        ("DELETE", "/api/v1/datapoints/table_x_001", "Datapoint not found"),
        ("GET", "/api/v1/profiling/jobs/" + some, "'Profiling job not found: %s'" % some),
        ("GET", "/api/v1/datapoints/generate/jobs/" + some,
         "'Generation job %s not found'" % some),
        ("GET", "/api/v1/profiling/profiles/%s/tables" % some,
         "'Profile not found: %s'" % some),
        ("POST", "/api/v1/datapoints/pending/%s/approve" % some,
         "Pending DataPoint not found: %s" % some),
        ("POST", "/api/v1/datapoints/pending/%s/reject" % some,
         "'Pending DataPoint not found: %s'" % some),
    ]:
        r = requests.request(method, d.url(path), timeout=10)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"detail": detail}, path
    r = d.get("/api/v1/datapoints/pending?status_filter=maybe")
    assert r.status_code == 400 and r.json() == {
        "detail": "Invalid status_filter. Use pending, approved, rejected, or all."}


def test_actions_that_would_make_datapoints_are_501(dpd):
    d = dpd
    for path, body, why in [
        ("/api/v1/databases/%s/profile" % d.cid, {"sample_size": 100},
         "databases are not profiled."),
        ("/api/v1/datapoints/generate", {"profile_id": str(uuid.uuid4())},
         "DataPoints are not generated."),
        ("/api/v1/datapoints", {"datapoint_id": "x", "type": "Schema"},
         "DataPoints cannot be created here."),
        ("/api/v1/sync", None, "there is nothing to sync."),
    ]:
        r = d.post(path, body)
        assert r.status_code == 501, (path, r.text)
        assert r.json() == {"detail": LIVE + "; " + why}


def test_validation_first(dpd):
    d = dpd
    r = d.get("/api/v1/profiling/jobs/nope")
    assert r.status_code == 422
    msg = ("invalid character: expected an optional prefix of `urn:uuid:` "
           "followed by [0-9a-fA-F-], found `n` at 1")
    assert r.json() == {"detail": [
        {"type": "uuid_parsing", "loc": ["path", "job_id"],
         "msg": "Input should be a valid UUID, " + msg, "input": "nope",
         "ctx": {"error": msg}}]}
    for bad, err in [("123", "invalid length: expected length 32 for simple format, found 3"),
                     ("1-2-3", "invalid group count: expected 5, found 3"),
                     ("12345678-1234-1234-1234-1234567890abc",
                      "invalid group length in group 4: expected 12, found 13")]:
        r = d.get("/api/v1/profiling/jobs/connection/%s/latest" % bad)
        assert r.status_code == 422
        assert r.json()["detail"][0]["ctx"] == {"error": err}
        assert r.json()["detail"][0]["loc"] == ["path", "connection_id"]
    r = d.post("/api/v1/databases/%s/profile" % d.cid, {"sample_size": 0})
    assert r.status_code == 422 and r.json()["detail"] == [
        {"type": "greater_than", "loc": ["body", "sample_size"],
         "msg": "Input should be greater than 0", "input": 0, "ctx": {"gt": 0}}]
    r = d.post("/api/v1/datapoints/generate", {"batch_size": 99})
    assert [e["type"] for e in r.json()["detail"]] == ["missing", "less_than_equal"]
    r = d.post("/api/v1/sync", {"scope": "everything"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "literal_error"
    r = d.post("/api/v1/datapoints", [1])
    assert r.status_code == 422 and r.json() == {"detail": [
        {"type": "dict_type", "loc": ["body"], "msg": "Input should be a valid "
         "dictionary", "input": [1]}]}
    r = d.get("/api/v1/datapoints/pending?connection_id=x")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query",
                                                                     "connection_id"]


def test_without_system_database(daemon_factory):
    d = daemon_factory(workers=1).start()
    assert d.get("/api/v1/datapoints").json() == {"datapoints": []}
    assert d.get("/api/v1/sync/status").json()["status"] == "idle"
    r = d.get("/api/v1/datapoints/pending")
    assert r.status_code == 503 and r.json() == {"detail": "Profiling store unavailable"}
