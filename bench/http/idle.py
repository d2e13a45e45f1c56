#!/usr/bin/env python3
"""idle.py - hold many keep-alive connections open against one HTTP server.

Opens --conns connections (non-blocking, one process, selectors), sends one
"GET /" on each and checks that the answer is "200" with the body
"Hello, World!". With --rounds R > 1, once every connection has its answer it
sends the next request on every connection again, R times in all, so all of
them are served while all are open. With --barrier FILE it waits after round 1
until FILE exists (run.sh uses that to line up two client processes). At most --window connections are
connecting or waiting for an answer at once, which keeps the server's accept
backlog from overflowing.

When done it prints one JSON line ({"ok": ..., "failed": ..., ...}) and, with
--hold S, keeps the connections idle for up to S seconds, or until it gets
SIGTERM/SIGINT. bench/http/run.sh reads the server's RSS
in that window. The soft open-file limit is raised to the hard limit.
"""
import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

BODY = b"Hello, World!"


class Conn:
    __slots__ = ("sock", "buf", "done", "connected")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.done = 0  # rounds answered
        self.connected = False


def parse_response(buf):
    """Return (complete, ok) for the bytes received so far."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False, False
    head = buf[:end].decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(buf) < end + 4 + length:
        return False, False
    body = buf[end + 4:end + 4 + length]
    status = head[0].split(" ")
    return True, len(status) > 1 and status[1] == "200" and body == BODY and \
        len(buf) == end + 4 + length


def run(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = ("GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (args.host, args.port)).encode()
    sel = selectors.DefaultSelector()
    conns, failed = [], 0
    deadline = time.monotonic() + args.timeout
    started = time.monotonic()

    def fail(c):
        nonlocal failed
        failed += 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.done = -1

    pending = 0  # connections busy in the current round
    for rnd in range(1, args.rounds + 1):
        todo = iter(range(args.conns)) if rnd == 1 else iter(list(range(len(conns))))
        more = True
        while (more or pending) and time.monotonic() < deadline:
            while more and pending < args.window:
                i = next(todo, None)
                if i is None:
                    more = False
                    break
                if rnd == 1:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    c = Conn(s)
                    conns.append(c)
                    err = s.connect_ex((args.host, args.port))
                    if err not in (0, errno.EINPROGRESS):
                        fail(c)
                        continue
                    sel.register(s, selectors.EVENT_WRITE, c)
                else:
                    c = conns[i]
                    if c.done < 0:
                        continue
                    try:
                        c.sock.send(request)
                    except OSError:
                        fail(c)
                        continue
                    sel.register(c.sock, selectors.EVENT_READ, c)
                pending += 1
            for key, _ in sel.select(timeout=0.5):
                c = key.data
                if not c.connected:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c)
                        pending -= 1
                        continue
                    c.connected = True
                    try:
                        c.sock.send(request)
                    except OSError:
                        fail(c)
                        pending -= 1
                        continue
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    fail(c)
                    pending -= 1
                    continue
                c.buf += data
                complete, ok = parse_response(c.buf)
                if not complete:
                    continue
                pending -= 1
                if not ok:
                    fail(c)
                    continue
                c.buf = b""
                c.done += 1
                sel.unregister(c.sock)
        if pending:
            break
        if rnd == 1 and args.barrier:
            ok = sum(1 for c in conns if c.done == 1)
            print(json.dumps({"round": 1, "ok": ok}), flush=True)
            while not os.path.exists(args.barrier) and time.monotonic() < deadline:
                time.sleep(0.02)
    ok = sum(1 for c in conns if c.done == args.rounds)
    result = {"conns": args.conns, "rounds": args.rounds, "ok": ok,
              "failed": args.conns - ok, "seconds": round(time.monotonic() - started, 3)}
    print(json.dumps(result), flush=True)
    return conns, sel, ok == args.conns


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--barrier", metavar="FILE",
                   help="after round 1, print a line and wait until FILE exists")
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    p.add_argument("--hold", type=float, default=0.0,
                   help="then keep the connections open this long (or until SIGTERM)")
    args = p.parse_args()
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    conns, sel, all_ok = run(args)
    end = time.monotonic() + args.hold
    while not stop and time.monotonic() < end:
        time.sleep(0.05)
    for c in conns:
        c.sock.close()
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
