"""Shared helpers for the HTTP integration tests (loopback only).

A Server starts one of the bundled binaries (hello or echo) on port 0,
reads the port it prints, and stops it by PID. Raw-socket helpers read
responses with deadlines; nothing here sleeps to synchronise.
"""
import os
import re
import signal
import socket
import subprocess
import time

DEADLINE = 10.0  # seconds any single wait may take


def binary(name):
    """Path of a bundled server, from HP_<NAME> in the environment."""
    path = os.environ.get("HP_" + name.upper())
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("set HP_%s to the %s binary" % (name.upper(), name))
    return path


class Server:
    """A running bundled server; use as a context manager."""

    def __init__(self, name, *args):
        self.name = name
        self.proc = subprocess.Popen(
            [binary(name), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # bounded: the server prints or exits
        m = re.search(r"http://[^ ]*:(\d+)/", line)
        if not m:
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError("%s did not start: %r %r" % (name, line, err))
        self.port = int(m.group(1))
        self.socks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=signal.SIGTERM, timeout=DEADLINE):
        """Signal the server (sig None: don't) and wait for it; returns its exit status."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit after %s" % (self.name, sig))
        finally:
            for s in self.socks:
                s.close()
            self.proc.stdout.close()
            self.proc.stderr.close()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socks.append(s)
        return s


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Reader:
    """Reads HTTP/1.1 responses off a socket, with a deadline per call."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            if self.eof:
                raise EOFError("connection closed mid-response")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            if self.eof:
                raise EOFError("connection closed mid-body")
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head=False, timeout=DEADLINE):
        """Read one response (skipping 1xx unless they are asked for via interim)."""
        deadline = time.monotonic() + timeout
        status_line = self._line(deadline).decode("latin-1")
        m = re.match(r"HTTP/1\.1 (\d{3}) (.*)$", status_line)
        assert m, "bad status line %r" % status_line
        status = int(m.group(1))
        headers = []
        while True:
            line = self._line(deadline)
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers.append((k, v.strip()))
        r = Response(status, m.group(2), headers, b"")
        if head or status < 200 or status in (204, 304):
            return r
        if r.header("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):
                        pass
                    break
                body += self._exact(size, deadline)
                assert self._exact(2, deadline) == b"\r\n"
            r.body = body
        elif r.header("Content-Length") is not None:
            r.body = self._exact(int(r.header("Content-Length")), deadline)
        else:
            while not self.eof:
                self._fill(deadline)
            r.body, self.buf = self.buf, b""
        return r

    def at_eof(self, timeout=DEADLINE):
        """True once the server has closed (all buffered bytes consumed)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        return self.buf == b""


def exchange(server, raw, count=1, head=False):
    """Send raw bytes on a new connection; return (responses, reader)."""
    s = server.connect()
    s.sendall(raw)
    rd = Reader(s)
    return [rd.response(head=head) for _ in range(count)], rd
