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
        self._send(200, wrap("delayed reply" if text is None else text, model))


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
              close=False, count=1):
        """Queue count answers; see the module docstring."""
        if text == "close" and status is None:
            text, close = None, True
        item = {"text": text, "status": status, "body": body,
                "delay": delay, "close": close}
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
