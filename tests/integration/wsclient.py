"""WebSocket clients for the tests of /ws/chat.

converse() asks one question the way DataChat's web UI does, with
Debian's python3-websocket, and collects the events and the close code.
RawWs speaks RFC 6455 over a plain socket, byte by byte, so a test can
send what no well-behaved client library would: unmasked frames,
reserved bits, oversized messages, broken UTF-8, or nothing at all.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import time

import websocket

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_url(d, path="/ws/chat"):
    return "ws://127.0.0.1:%d%s" % (d.port, path)


class Conversation:
    def __init__(self, events, times, code, reason):
        self.events = events
        self.times = times          # time.monotonic() of each event
        self.code = code            # the server's close code
        self.reason = reason

    @property
    def names(self):
        return [e["event"] for e in self.events]

    @property
    def last(self):
        return self.events[-1]

    def of(self, name):
        return [e for e in self.events if e["event"] == name]

    @property
    def agents(self):
        return [(e["event"], e["agent"]) for e in self.events
                if e["event"] in ("agent_start", "agent_complete")]


def converse(d, request, origin=None, timeout=60, header=None):
    """Send request (a dict, or text/bytes as they are) on a new socket;
    read until the server closes."""
    ws = websocket.create_connection(
        ws_url(d), timeout=timeout, suppress_origin=origin is None,
        origin=origin, header=header or [])
    try:
        if isinstance(request, bytes):
            ws.send_binary(request)
        else:
            ws.send(request if isinstance(request, str) else
                    json.dumps(request))
        return read_all(ws)
    finally:
        ws.close()


def read_all(ws):
    events, times = [], []
    while True:
        op, data = ws.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 \
                else None
            return Conversation(events, times, code,
                                data[2:].decode(errors="replace"))
        if op == websocket.ABNF.OPCODE_TEXT:
            events.append(json.loads(data))
            times.append(time.monotonic())


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()
                            ).decode()


class RawWs:
    """A WebSocket client at the byte level."""

    def __init__(self, port, headers=None, path="/ws/chat", handshake=True,
                 timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.status = None
        self.headers = {}
        self.body = b""
        if handshake:
            self.handshake(headers, path)

    def handshake(self, headers=None, path="/ws/chat", key=None):
        h = {"Host": "127.0.0.1", "Upgrade": "websocket",
             "Connection": "Upgrade", "Sec-WebSocket-Key": key or self.key,
             "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path
        req += "".join("%s: %s\r\n" % (k, v) for k, v in h.items()
                       if v is not None)
        self.sock.sendall((req + "\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (ln.split(":", 1) for ln in lines[1:])}
        n = int(self.headers.get("content-length", 0))
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        self.body, self.buf = self.buf[:n], self.buf[n:]
        return self.status

    @staticmethod
    def frame(opcode, payload, fin=True, mask=True, rsv=0, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(c ^ key[i % 4] for i, c in
                                  enumerate(payload))

    def send(self, opcode, payload, **kw):
        self.sock.sendall(self.frame(opcode, payload, **kw))

    def text(self, s):
        self.send(1, s.encode() if isinstance(s, str) else s)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def read_frame(self):
        """(opcode, payload) of the next frame from the server."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "a server frame must not be masked"
        n, off = b1 & 0x7f, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0f, payload

    def until_close(self, answer=True):
        """Events until the server's close frame: (events, code, reason).
        The close is answered, as RFC 6455 asks, unless answer is False."""
        events = []
        while True:
            op, p = self.read_frame()
            if op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                if answer:
                    try:
                        self.send(8, p[:2])
                    except OSError:
                        pass
                return events, code, p[2:].decode(errors="replace")
            if op == 1:
                events.append(json.loads(p))

    def eof(self, timeout=10):
        """True when the server closes the TCP connection in time."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
