"""The LLM client (src/llm.c) against a fake provider (llm_mock.py).

tests/llm_client_test (built in $DC_BUILDDIR) runs the client the way a
worker does: one event base, the config loaded from the environment,
calls started together, one JSON line per result.  These tests check what
goes over the wire for each provider, how every kind of failure is
reported, that a slow call does not hold up the others, and that the API
key never shows up in anything the program prints or logs.
"""
import json
import os
import subprocess

import pytest

from conftest import BUILD, free_port

PROG = os.path.join(BUILD, "tests", "llm_client_test")
OPENAI_KEY = "sk-test-OPENAI-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-test-ANTHROPIC-fedcba9876543210SECRET"
SYS = "You write PostgreSQL. Answer with SQL only."
USER = 'How many "orders" per city?\n\\ Combien ? \u00e9\u65e5\u672c'


class Run:
    def __init__(self, results, summary, stderr, chunks):
        self.results = results
        self.summary = summary
        self.stderr = stderr
        self.chunks = chunks

    @property
    def one(self):
        assert len(self.results) == 1, self.results
        return self.results[0]


def run(url, provider="openai", n=1, args=(), env=None, timeout=90):
    assert os.path.exists(PROG), "%s is not built (DC_BUILDDIR=%s)" % (
        PROG, BUILD)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("LLM_", "DATABASE_", "SYSTEM_DATABASE"))
         and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    e.update({
        "LLM_DEFAULT_PROVIDER": provider,
        "LLM_OPENAI_API_KEY": OPENAI_KEY,
        "LLM_ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "LLM_OPENAI_MODEL": "gpt-test",
        "LLM_ANTHROPIC_MODEL": "claude-test",
        "LLM_LOCAL_MODEL": "llama-test",
        "LLM_TEMPERATURE": "0.3",
        "LLM_MAX_TOKENS": "123",
        "LLM_TIMEOUT": "10",
    })
    e.update(env or {})
    cmd = [PROG, "-v", "-n", str(n), "-s", SYS, "-u", USER] + list(args) + \
        [url]
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", errors="replace")
    err = p.stderr.decode("utf-8", errors="replace")
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key not in out, "API key in the program's output"
        assert key not in err, "API key in the program's log"
        assert key[-20:] not in out + err, "part of an API key printed"
    assert "Sanitizer" not in err, err
    assert "runtime error" not in err, err
    assert p.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        p.returncode, out, err)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    results = sorted((x for x in lines if "status" in x),
                     key=lambda x: x["i"])
    chunks = [x for x in lines if "chunk" in x]
    return Run(results, lines[-1], err, chunks)


def ok(r, text):
    assert r["status"] == "ok", r
    assert r["text"] == text
    assert r["error"] is None
    assert r["http_status"] == 200


def failed(r, status, *needles):
    assert r["status"] == status, r
    assert r["text"] is None
    for n in needles:
        assert n in r["error"], (n, r["error"])
    assert len(r["error"]) < 400, r["error"]


# --- what goes over the wire ---------------------------------------------

def test_openai_reply(llm):
    answer = "SELECT city, count(*) FROM orders GROUP BY 1; -- \u00e9\u2713"
    llm.queue(answer)
    res = run(llm.url).one
    ok(res, answer)
    assert 0 <= res["latency_ms"] < 5000
    req, = llm.requests
    assert req["method"] == "POST"
    assert req["path"] == "/chat/completions"
    h = req["headers"]
    assert h["authorization"] == "Bearer " + OPENAI_KEY
    assert h["content-type"] == "application/json"
    assert h["user-agent"].startswith("datachatd/")
    assert "x-api-key" not in h
    assert req["body"] == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": SYS},
                     {"role": "user", "content": USER}],
        "temperature": 0.3,
        "max_tokens": 123,
    }


def test_openai_base_url_with_v1_and_slash(llm):
    llm.queue("one")
    llm.queue("two")
    ok(run(llm.url + "/v1").one, "one")
    ok(run(llm.url + "/v1/").one, "two")
    assert [r["path"] for r in llm.requests] == ["/v1/chat/completions"] * 2


def test_local_reply(llm):
    llm.queue("SELECT 1")
    llm.queue("SELECT 2")
    ok(run(llm.url, provider="local").one, "SELECT 1")
    # a base that already names /v1 (vLLM style) gets no second one
    ok(run(llm.url + "/v1", provider="local").one, "SELECT 2")
    # a host name goes through curl's asynchronous resolver
    llm.queue("SELECT 3")
    ok(run("http://localhost:%d" % llm.port, provider="local").one,
       "SELECT 3")
    assert [r["path"] for r in llm.requests] == ["/v1/chat/completions"] * 3
    req = llm.requests[0]
    # no key of its own: the OpenAI key must not travel to it
    assert "authorization" not in req["headers"]
    assert "x-api-key" not in req["headers"]
    assert req["body"]["model"] == "llama-test"
    assert req["body"]["messages"] == [{"role": "system", "content": SYS},
                                       {"role": "user", "content": USER}]
    assert req["body"]["temperature"] == 0.3
    assert req["body"]["max_tokens"] == 123


def test_anthropic_reply(llm):
    llm.queue("SELECT 42")
    res = run(llm.url, provider="anthropic").one
    ok(res, "SELECT 42")
    req, = llm.requests
    assert req["path"] == "/v1/messages"
    h = req["headers"]
    assert h["x-api-key"] == ANTHROPIC_KEY
    assert h["anthropic-version"] == "2023-06-01"
    assert "authorization" not in h
    assert req["body"] == {
        "model": "claude-test",
        "system": SYS,
        "messages": [{"role": "user", "content": USER}],
        "max_tokens": 123,
        "temperature": 0.3,
    }


def test_anthropic_text_blocks_concatenated(llm):
    llm.queue(status=200, body={
        "type": "message", "role": "assistant", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "SELECT "},
                    {"type": "tool_use", "id": "t", "name": "x", "input": {}},
                    {"type": "text", "text": "1"}]})
    ok(run(llm.url, provider="anthropic").one, "SELECT 1")


def test_summary_names_provider_and_model(llm):
    llm.queue("x")
    s = run(llm.url, provider="anthropic").summary
    assert s["provider"] == "anthropic"
    assert s["model"] == "claude-test"
    assert s["configured"] is True
    assert s["llm_calls"] == 1


# --- failures ---------------------------------------------------------------

def test_http_500_with_error_body(llm):
    llm.queue(status=500, body={"error": {"message": "model overloaded " +
                                          "x" * 600, "type": "server_error"}})
    res = run(llm.url).one
    failed(res, "unavailable", "openai returned HTTP 500", "model overloaded")
    assert res["http_status"] == 500
    assert res["error"].endswith("...")


def test_http_error_never_echoes_the_key(llm):
    llm.queue(status=401, body={"error": {
        "message": "Incorrect API key provided: %s. Find your key at "
                   "https://platform.openai.com." % OPENAI_KEY}})
    llm.queue(status=401, body={"type": "error", "error": {
        "type": "authentication_error",
        "message": "invalid x-api-key " + ANTHROPIC_KEY}})
    res = run(llm.url).one
    failed(res, "unavailable", "HTTP 401", "Incorrect API key provided: ***")
    res = run(llm.url, provider="anthropic").one
    failed(res, "unavailable", "anthropic returned HTTP 401",
           "invalid x-api-key ***")


def test_anthropic_error_shape(llm):
    llm.queue(status=529, body={"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})
    res = run(llm.url, provider="anthropic").one
    failed(res, "unavailable", "anthropic returned HTTP 529: Overloaded")
    assert res["http_status"] == 529


def test_http_error_without_json(llm):
    llm.queue(status=502, body="<html>Bad Gateway</html>")
    llm.queue(status=503, body={"unexpected": True})
    failed(run(llm.url).one, "unavailable", "HTTP 502",
           "the reply is not JSON")
    failed(run(llm.url).one, "unavailable", "HTTP 503",
           "no error message in the reply")


def test_empty_queue_answer_is_an_error(llm):
    failed(run(llm.url).one, "unavailable", "HTTP 500", "no reply queued")


def test_garbage_body(llm):
    llm.queue(status=200, body="this is { not json")
    llm.queue(status=200, body='{"choices": [] } trailing')
    llm.queue(status=200, body='"a string"')
    for _ in range(3):
        res = run(llm.url).one
        failed(res, "unavailable", "not a JSON object", "HTTP 200")
        assert res["http_status"] == 200


def test_deeply_nested_body_is_refused(llm):
    llm.queue(status=200, body="[" * 5000 + "]" * 5000)
    failed(run(llm.url).one, "unavailable", "not a JSON object")


def test_empty_choices_and_content(llm):
    llm.queue(status=200, body={"choices": []})
    llm.queue(status=200, body={"id": "x"})
    llm.queue(status=200, body={"choices": [{"message": {
        "role": "assistant", "content": ""}, "finish_reason": "length"}]})
    llm.queue(status=200, body={"choices": [{
        "message": {"role": "assistant", "content": None},
        "finish_reason": "tool_calls"}]})
    llm.queue(status=200, body={"choices": [{"finish_reason": "stop"}]})
    failed(run(llm.url).one, "unavailable", "openai reply has no choices")
    failed(run(llm.url).one, "unavailable", "openai reply has no choices")
    failed(run(llm.url).one, "unavailable", "empty message",
           "finish_reason: length")
    failed(run(llm.url).one, "unavailable", "empty message",
           "finish_reason: tool_calls")
    failed(run(llm.url).one, "unavailable", "no message")


def test_openai_refusal_and_content_parts(llm):
    llm.queue(status=200, body={"choices": [{"message": {
        "role": "assistant", "content": None,
        "refusal": "I cannot help with that."}, "finish_reason": "stop"}]})
    llm.queue(status=200, body={"choices": [{"message": {
        "role": "assistant", "content": [{"type": "text", "text": "SELECT"},
                                         {"type": "text", "text": " 7"}]}}]})
    failed(run(llm.url).one, "unavailable",
           "openai refused: I cannot help with that.")
    ok(run(llm.url).one, "SELECT 7")


def test_anthropic_empty_content(llm):
    llm.queue(status=200, body={"content": [], "stop_reason": "max_tokens"})
    llm.queue(status=200, body={"type": "message"})
    failed(run(llm.url, provider="anthropic").one, "unavailable",
           "anthropic reply has no text content", "stop_reason: max_tokens")
    failed(run(llm.url, provider="anthropic").one, "unavailable",
           "anthropic reply has no content")


def test_oversized_reply(llm):
    llm.queue(status=200, body="x" * (5 * 1024 * 1024))
    failed(run(llm.url).one, "unavailable", "larger than 4 MB")


def test_connection_refused():
    url = "http://127.0.0.1:%d" % free_port()
    res = run(url).one
    failed(res, "unavailable", "cannot reach openai at " + url)
    assert res["http_status"] == 0
    res = run(url, provider="anthropic").one
    failed(res, "unavailable", "cannot reach anthropic at " + url)


def test_timeout(llm):
    llm.queue(delay=3, text="too late")
    res = run(llm.url, env={"LLM_TIMEOUT": "1"}).one
    failed(res, "timeout", "did not answer within 1 s (llm_timeout)")
    assert res["http_status"] == 0
    assert 900 <= res["latency_ms"] < 2500, res


def test_dropped_connection(llm):
    llm.queue("close")
    res = run(llm.url).one
    failed(res, "unavailable", "closed the connection without a reply")
    assert res["http_status"] == 0


def test_not_configured():
    res = run("-", provider="")
    failed(res.one, "not_configured", "LLM_DEFAULT_PROVIDER")
    assert res.summary["configured"] is False
    assert "llm_provider" in res.summary["why"]
    assert res.summary["llm_calls"] == 0
    res = run("-", env={"LLM_OPENAI_API_KEY": ""})
    failed(res.one, "not_configured", "LLM_OPENAI_API_KEY")
    res = run("-", provider="anthropic", env={"LLM_ANTHROPIC_API_KEY": ""})
    failed(res.one, "not_configured", "LLM_ANTHROPIC_API_KEY")


def test_key_from_key_file(llm, tmp_path):
    key = "sk-from-FILE-0123456789SECRET"
    kf = tmp_path / "llm.key"
    kf.write_text(key + "\n")
    kf.chmod(0o600)
    conf = tmp_path / "datachatd.conf"
    conf.write_text('llm_key_file = "%s"\n' % kf)
    conf.chmod(0o600)
    llm.queue("ok")
    res = run(llm.url, args=["-C", str(conf)],
              env={"LLM_OPENAI_API_KEY": ""})
    ok(res.one, "ok")
    assert llm.requests[0]["headers"]["authorization"] == "Bearer " + key
    assert key not in json.dumps(res.results) + res.stderr


# --- the event loop is never blocked ----------------------------------------

def test_slow_call_does_not_block_the_others(llm):
    llm.queue(delay=3, text="slow")
    llm.queue("fast", count=20)
    res = run(llm.url, n=21)
    assert len(res.results) == 21
    assert all(r["status"] == "ok" for r in res.results), res.results
    slow = [r for r in res.results if r["text"] == "slow"]
    fast = [r for r in res.results if r["text"] == "fast"]
    assert len(slow) == 1 and len(fast) == 20
    lat = sorted(r["latency_ms"] for r in fast)
    print("fast latencies (ms):", lat, "slow:", slow[0]["latency_ms"])
    assert slow[0]["latency_ms"] >= 2900
    assert lat[-1] < 1000, lat
    # and they were answered while the slow one was still out
    assert max(r["since_start_ms"] for r in fast) < \
        slow[0]["since_start_ms"] - 1500
    assert len(llm.requests) == 21


def test_calls_reuse_the_connection(llm):
    llm.queue("a")
    llm.queue("b")
    llm.queue("c")
    # -S: each call is started from the previous one's callback
    res = run(llm.url, n=3, args=["-S"])
    assert [r["text"] for r in res.results] == ["a", "b", "c"]
    clients = {tuple(r["client"]) for r in llm.requests}
    assert len(clients) == 1, clients


# --- cancel and teardown ----------------------------------------------------

def test_cancel_before_sending(llm):
    llm.queue("x", count=3)
    res = run(llm.url, n=3, args=["-c", "2"])
    assert res.summary["cancelled"] == 2
    assert [r["i"] for r in res.results] == [2]
    ok(res.results[0], "x")
    assert len(llm.requests) == 1


def test_cancel_in_flight(llm):
    llm.queue(delay=1.5, count=2)
    res = run(llm.url, n=2, args=["-c", "1", "-d", "300"])
    assert res.summary["cancelled"] == 1
    assert [r["i"] for r in res.results] == [1]
    ok(res.results[0], "delayed reply")
    assert len(llm.requests) == 2


def test_free_with_calls_in_flight(llm):
    llm.queue(delay=2, count=3)
    res = run(llm.url, n=3, args=["-f", "300"])
    assert res.results == []
    assert res.summary["freed"] is True
    assert len(llm.requests) == 3


# --- streamed calls (dc_llm_stream) ---------------------------------------

def texts(run_, i=0):
    return [c["chunk"] for c in run_.chunks if c["i"] == i]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "local"])
def test_stream_pieces_arrive_as_written(llm, provider):
    answer = "SELECT region, sum(revenue) FROM orders GROUP BY 1"
    llm.queue(answer, chunk_delay=0.25)
    res = run(llm.url, provider=provider, args=["-T"])
    ok(res.one, answer)
    assert texts(res) == ["SELECT ", "region, ", "sum(revenue) ", "FROM ",
                          "orders ", "GROUP ", "BY ", "1"]
    # the first piece is passed on long before the last was written
    first, last = res.chunks[0]["since_start_ms"], res.chunks[-1]["since_start_ms"]
    assert last - first >= 1500, res.chunks
    assert first < res.one["latency_ms"] - 1500
    req, = llm.requests
    assert req["body"]["stream"] is True
    assert req["headers"]["accept"] == "text/event-stream"
    assert len(req["sent"]) == 8


def test_stream_answered_in_one_body(llm):
    # a local server that ignores "stream": its JSON reply is one chunk
    llm.queue("SELECT 1", no_stream=True)
    res = run(llm.url, provider="local", args=["-T"])
    ok(res.one, "SELECT 1")
    assert texts(res) == ["SELECT 1"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stream_error_event(llm, provider):
    key = OPENAI_KEY if provider == "openai" else ANTHROPIC_KEY
    llm.queue(stream_error="Overloaded, key " + key + " is busy")
    res = run(llm.url, provider=provider, args=["-T"])
    failed(res.one, "unavailable", provider + " reported an error in its "
           "stream: Overloaded, key *** is busy")
    assert res.chunks == []


def test_stream_cut_midway(llm):
    llm.queue("a b c d", cut_after=2)
    res = run(llm.url, args=["-T"])
    failed(res.one, "unavailable", "broke before a complete reply")
    assert "".join(texts(res)) == "a b "


def test_stream_http_error_and_bad_events(llm):
    llm.queue(status=429, body={"error": {"message": "slow down"}})
    llm.queue(sse_body="data: {not json\n\n")
    llm.queue(sse_body=": only a comment\n\ndata: [DONE]\n\n")
    res = run(llm.url, n=3, args=["-T", "-S"])
    failed(res.results[0], "unavailable", "HTTP 429", "slow down")
    failed(res.results[1], "unavailable", "event stream that cannot be read")
    failed(res.results[2], "unavailable", "streamed no text")
    assert res.chunks == []


def test_stream_timeout_midway(llm):
    llm.queue("one two three four", chunk_delay=1.5)
    res = run(llm.url, args=["-T"], env={"LLM_TIMEOUT": "2"})
    failed(res.one, "timeout", "did not answer within 2 s")
    assert texts(res)[:2] == ["one ", "two "]


def test_stream_cancel_from_chunk(llm):
    llm.queue("a b c d e", chunk_delay=0.2, count=2)
    res = run(llm.url, n=2, args=["-T", "-x", "2"])
    assert res.summary["cancelled"] == 2 and res.summary["done"] == 0
    assert texts(res, 0) == ["a ", "b "]
    assert texts(res, 1) == ["a ", "b "]
