"""A fake LLM provider for the tests: one threaded HTTP/1.1 server on
127.0.0.1 that speaks both the OpenAI chat-completions protocol
(POST /v1/chat/completions and POST /chat/completions) and Anthropic's
(POST /v1/messages).

Every request is recorded in `requests` (path, lower-cased headers,
parsed JSON body, client address) before it is answered.  Answers come
from a queue the test fills, first in first out, one per request in the
order the requests arrive:

    mock.queue("SELECT 1")                  text, wrapped in the protocol
                                            the request used
    mock.queue(status=500, body={...})      raw status and body (a dict or
                                            list is sent as JSON, str/bytes
                                            as they are)
    mock.queue(delay=3, text="late")        wait, then answer (text, raw,
                                            or "delayed reply" when neither)
    mock.queue("close")                     drop the connection unanswered
    mock.queue("x", count=20)               the same answer 20 times

A request that asks to stream ("stream": true in its body) is answered
with server-sent events in its protocol's format (OpenAI's chunks and
[DONE]; Anthropic's message_start ... message_stop), one event per HTTP
chunk of a chunked reply, flushed as it is written:

    mock.queue("a b c")                     split after each space
    mock.queue(chunks=["SEL", "ECT 1"])     these pieces, in order
    mock.queue("a b", chunk_delay=0.5)      sleep between the pieces
    mock.queue("a b c", cut_after=2)        drop the connection after two
    mock.queue(stream_error="Overloaded")   an error event, no text
    mock.queue("x", no_stream=True)         answer JSON even so, as some
                                            local servers do
    mock.queue(sse_body="data: {oops\n\n")    this text as the event stream

The time each piece was written is recorded in the request's "sent"
list, so a test can tell how early a client passed it on.

With the queue empty the answer is 500 {"error": {"message": "no reply
queued"}}.  Connections are kept alive, so a test can tell whether a
client reuses them (`client` of each recorded request).
"""
import collections
import http.server
import json
import socket
import threading
import time

EMPTY_QUEUE = {"error": {"message": "no reply queued"}}
OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
ANTHROPIC_PATHS = ("/v1/messages",)


def openai_reply(text, model):
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0,
                     "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                  "total_tokens": 2},
    }


def split_text(text):
    """Pieces of text: each word with the space after it."""
    parts, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            parts.append(cur)
            cur = ""
    if cur:
        parts.append(cur)
    return parts or [""]


def openai_events(pieces, model, error=None):
    base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    if error is not None:
        yield None, {"error": {"message": error, "type": "server_error"}}
        return
    yield None, dict(base, choices=[{"index": 0, "delta": {
        "role": "assistant", "content": ""}, "finish_reason": None}])
    for p in pieces:
        yield None, dict(base, choices=[{"index": 0, "delta": {
            "content": p}, "finish_reason": None}])
    yield None, dict(base, choices=[{"index": 0, "delta": {},
                                     "finish_reason": "stop"}])
    yield None, "[DONE]"


def anthropic_events(pieces, model, error=None):
    if error is not None:
        yield "error", {"type": "error", "error": {
            "type": "overloaded_error", "message": error}}
        return
    yield "message_start", {"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant",
        "content": [], "model": model, "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 1,
                                         "output_tokens": 1}}}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text",
                                                    "text": ""}}
    yield "ping", {"type": "ping"}
    for p in pieces:
        yield "content_block_delta", {"type": "content_block_delta",
                                      "index": 0, "delta": {
                                          "type": "text_delta", "text": p}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 1}}
    yield "message_stop", {"type": "message_stop"}


def anthropic_reply(text, model):
    return {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-mock/1"

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass

    def _send(self, status, body):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        mock = self.server.mock
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "raw": raw.decode(errors="replace"),
            "client": self.client_address,
            "time": time.monotonic(),
            "stream": isinstance(body, dict) and body.get("stream") is True,
            "sent": [],
        }
        reply = mock._take(rec)
        try:
            self._reply(mock, rec, reply)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def _reply(self, mock, rec, reply):
        path = self.path.split("?")[0]
        if path in ANTHROPIC_PATHS:
            wrap = anthropic_reply
        elif path in OPENAI_PATHS:
            wrap = openai_reply
        else:
            self._send(404, {"error": {"message": "no such path: " + path}})
            return
        if reply is None:
            self._send(500, EMPTY_QUEUE)
            return
        if reply.get("delay"):
            if mock._stopping.wait(reply["delay"]):
                self.close_connection = True
                return
        if reply.get("close"):
            # no answer at all: the client sees the connection drop
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if reply.get("status") is not None:
            self._send(reply["status"], reply.get("body"))
            return
        model = (rec["body"] or {}).get("model", "mock") \
            if isinstance(rec["body"], dict) else "mock"
        text = reply.get("text")
        if rec["stream"] and not reply.get("no_stream"):
            self._stream(mock, rec, reply, path in ANTHROPIC_PATHS, model)
            return
        self._send(200, wrap("delayed reply" if text is None else text, model))

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _stream(self, mock, rec, reply, anthropic, model):
        if reply.get("sse_body") is not None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(reply["sse_body"].encode())
            self._chunk(b"")
            return
        pieces = reply.get("chunks")
        if pieces is None:
            text = reply.get("text")
            pieces = split_text("streamed reply" if text is None else text)
        events = (anthropic_events if anthropic else openai_events)(
            pieces, model, reply.get("stream_error"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        delay = reply.get("chunk_delay") or 0
        cut = reply.get("cut_after")
        texts = 0
        for name, data in events:
            is_text = name == "content_block_delta" or (
                not anthropic and isinstance(data, dict) and
                data.get("choices") and
                data["choices"][0]["delta"].get("content"))
            if is_text:
                if cut is not None and texts >= cut:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if texts > 0 and delay and mock._stopping.wait(delay):
                    self.close_connection = True
                    return
                texts += 1
            out = b""
            if name is not None:
                out += b"event: " + name.encode() + b"\n"
            payload = data if isinstance(data, str) else json.dumps(data)
            out += b"data: " + payload.encode() + b"\n\n"
            self._chunk(out)
            if is_text:
                rec["sent"].append(time.monotonic())
        self._chunk(b"")


class _Server(http.server.ThreadingHTTPServer):
    # the default backlog (5) drops SYNs when many calls connect at once,
    # and the client's retry a second later would look like blocking
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class LlmMock:
    def __init__(self):
        self.requests = []
        self._replies = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.mock = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def queue(self, text=None, status=None, body=None, delay=None,
              close=False, count=1, chunks=None, chunk_delay=None,
              cut_after=None, stream_error=None, no_stream=False,
              sse_body=None):
        """Queue count answers; see the module docstring."""
        if text == "close" and status is None:
            text, close = None, True
        item = {"text": text, "status": status, "body": body,
                "delay": delay, "close": close, "chunks": chunks,
                "chunk_delay": chunk_delay, "cut_after": cut_after,
                "stream_error": stream_error, "no_stream": no_stream,
                "sse_body": sse_body}
        with self._lock:
            for _ in range(count):
                self._replies.append(dict(item))

    def pending(self):
        with self._lock:
            return len(self._replies)

    def reset(self):
        with self._lock:
            self._replies.clear()
            del self.requests[:]

    def _take(self, rec):
        with self._lock:
            self.requests.append(rec)
            return self._replies.popleft() if self._replies else None

    def stop(self):
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


if __name__ == "__main__":
    m = LlmMock()
    print(m.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        m.stop()
