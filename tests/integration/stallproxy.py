"""A TCP proxy on 127.0.0.1 in front of a PostgreSQL port that can stall
one connection (test_stall.py).  It runs in a process of its own, with
one thread and non-blocking sockets, so the test's client threads never
make it wait for the interpreter.

    python3 stallproxy.py TARGET_PORT DEPTH HOLD_SECONDS

It prints "port N" once it listens.  Each "arm" line on stdin arms it:
the next time it sees a connection carry DEPTH or more tagged queries
(stall-<n>-tag in the client's bytes) that the server has not answered
yet (the tag not yet in the server's bytes), it stops reading that
connection's server side for HOLD_SECONDS, so the server's replies wait
in the socket while every other connection flows, and prints
"held LINK MONOTONIC TAG,TAG,..." (the tags in flight, oldest first),
then "released LINK MONOTONIC" when it lets them through.
"""
import re
import selectors
import socket
import sys
import time

TAG = re.compile(rb"stall-(\d+)-tag")


class Side:
    def __init__(self, sock, link, upstream):
        self.sock = sock
        self.link = link
        self.upstream = upstream    # the client's side: bytes to the server
        self.out = b""              # bytes waiting to be written to it
        self.tail = b""             # for tags split across reads
        self.peer = None


class Link:
    def __init__(self, n):
        self.n = n
        self.sent = []
        self.answered = set()
        self.hold_until = None
        self.server = None          # its server side


def main():
    target_port, depth, hold = int(sys.argv[1]), int(sys.argv[2]), \
        float(sys.argv[3])
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    print("port %d" % lsock.getsockname()[1], flush=True)
    links = []
    armed = False
    held = None

    def events(side):
        ev = 0
        if side.out:
            ev |= selectors.EVENT_WRITE
        # a held server side is not read: its bytes wait in the socket
        if not (not side.upstream and side.link.hold_until is not None):
            ev |= selectors.EVENT_READ
        return ev

    def rearm(side):
        """Watch side for what it needs now (nothing: not at all)."""
        ev = events(side)
        try:
            sel.get_key(side.sock)
            known = True
        except (KeyError, ValueError):
            known = False
        if not ev:
            if known:
                sel.unregister(side.sock)
        elif known:
            sel.modify(side.sock, ev, side)
        else:
            sel.register(side.sock, ev, side)

    def close(side):
        for x in (side, side.peer):
            try:
                sel.unregister(x.sock)
            except (KeyError, ValueError):
                pass
            x.sock.close()

    while True:
        timeout = None
        if held is not None and held.hold_until is not None:
            timeout = max(0.0, held.hold_until - time.monotonic())
        for key, mask in sel.select(timeout):
            if key.data == "listen":
                cs, _ = lsock.accept()
                ss = socket.create_connection(("127.0.0.1", target_port))
                link = Link(len(links))
                links.append(link)
                a, b = Side(cs, link, True), Side(ss, link, False)
                a.peer, b.peer = b, a
                link.server = b
                for s in (a, b):
                    s.sock.setsockopt(socket.IPPROTO_TCP,
                                      socket.TCP_NODELAY, 1)
                    s.sock.setblocking(False)
                    sel.register(s.sock, selectors.EVENT_READ, s)
                continue
            if key.data == "stdin":
                line = sys.stdin.readline()
                if not line:
                    return
                if line.strip() == "arm":
                    armed = True
                continue
            side = key.data
            if side.sock.fileno() < 0:
                continue
            if mask & selectors.EVENT_WRITE and side.out:
                try:
                    n = side.sock.send(side.out)
                except OSError:
                    close(side)
                    continue
                side.out = side.out[n:]
                rearm(side)
            # a server side held since this batch of events was
            # collected is not read either
            if not mask & selectors.EVENT_READ or \
                    not events(side) & selectors.EVENT_READ:
                continue
            try:
                data = side.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                close(side)
                continue
            buf = side.tail + data
            tags = [int(m.group(1)) for m in TAG.finditer(buf)
                    if m.end() > len(side.tail)]
            side.tail = buf[-32:]
            link = side.link
            if side.upstream:
                link.sent.extend(tags)
                inflight = [t for t in link.sent if t not in link.answered]
                # decided before these queries reach the server, so every
                # reply to them is held
                if armed and len(inflight) >= depth:
                    armed = False
                    link.hold_until = time.monotonic() + hold
                    held = link
                    rearm(side.peer)
                    print("held %d %.6f %s" % (
                        link.n, time.monotonic(),
                        ",".join(str(t) for t in inflight)), flush=True)
            else:
                link.answered.update(tags)
            side.peer.out += data
            rearm(side.peer)
        if held is not None and held.hold_until is not None and \
                time.monotonic() >= held.hold_until:
            held.hold_until = None
            print("released %d %.6f" % (held.n, time.monotonic()),
                  flush=True)
            if held.server.sock.fileno() >= 0:
                rearm(held.server)
            held = None


if __name__ == "__main__":
    main()
