"""Timeouts (with short configured limits), the connection limit, 1,000
concurrent keep-alive clients, and graceful stop on SIGTERM/SIGINT."""
import resource
import selectors
import signal
import socket
import time
import unittest

from httptest import DEADLINE, Reader, Server, exchange

H = b"Host: example.com\r\n"
REQ = b"GET / HTTP/1.1\r\n" + H + b"\r\n"


def elapsed(fn):
    t = time.monotonic()
    v = fn()
    return v, time.monotonic() - t


class Timeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("echo", "--header-timeout", "300", "--body-timeout", "300",
                            "--keepalive-timeout", "300")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def test_slowloris_head_is_cut_off_with_408(self):
        s = self.server.connect()
        rd = Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\n")
        # Keep trickling header bytes: the header timeout is not refreshed by them.
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                s.sendall(b"X: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            s.settimeout(0.05)
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            rd.buf += data
            break
        s.settimeout(DEADLINE)
        r = rd.response()
        self.assertEqual(r.status, 408)
        self.assertEqual(r.header("Connection"), "close")

    def test_stalled_body_gets_408(self):
        s = self.server.connect()
        s.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nabc")
        (r, t) = elapsed(lambda: Reader(s).response())
        self.assertEqual(r.status, 408)
        self.assertLess(t, 5)

    def test_idle_keep_alive_connection_is_closed(self):
        (r,), rd = exchange(self.server, REQ)
        self.assertEqual(r.status, 200)
        ok, t = elapsed(rd.at_eof)
        self.assertTrue(ok)
        self.assertLess(t, 5)

    def test_silent_new_connection_is_closed(self):
        s = self.server.connect()
        ok, t = elapsed(Reader(s).at_eof)
        self.assertTrue(ok)
        self.assertLess(t, 5)

    def test_active_connection_is_not_cut_by_the_idle_timeout(self):
        s = self.server.connect()
        rd = Reader(s)
        for _ in range(8):  # 8 gaps of 100 ms: well over two idle timeouts in all
            s.sendall(REQ)
            self.assertEqual(rd.response().status, 200)
            s.settimeout(0.1)  # the pause doubles as a check that no EOF comes
            with self.assertRaises(socket.timeout):
                s.recv(1)


class Limits(unittest.TestCase):
    def test_connections_over_the_limit_are_refused_with_503(self):
        with Server("hello", "--max-connections", "2") as srv:
            a, b = srv.connect(), srv.connect()
            for s in (a, b):  # make sure both are accepted and served
                s.sendall(REQ)
                self.assertEqual(Reader(s).response().status, 200)
            c = srv.connect()
            r = Reader(c).response()
            self.assertEqual(r.status, 503)
            a.close()
            b.close()
            # A slot frees up once the server has seen the close: retry until then.
            deadline = time.monotonic() + DEADLINE
            while True:
                d = srv.connect()
                d.sendall(REQ)
                r = Reader(d).response()
                if r.status == 200 or time.monotonic() > deadline:
                    break
            self.assertEqual(r.status, 200)

    def test_1000_concurrent_keep_alive_clients(self):
        n = 1000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, max(soft, 2 * n + 100))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if want < n + 50:
            self.skipTest("open-file limit too low")
        with Server("hello", "--max-connections", str(n + 10)) as srv:
            socks = [srv.connect() for _ in range(n)]
            readers = {s: Reader(s) for s in socks}
            for rnd in range(2):  # two requests on every connection, all open at once
                for s in socks:
                    s.sendall(REQ)
                sel = selectors.DefaultSelector()
                for s in socks:
                    s.setblocking(False)
                    sel.register(s, selectors.EVENT_READ)
                pending = set(socks)
                deadline = time.monotonic() + 30
                while pending and time.monotonic() < deadline:
                    for key, _ in sel.select(timeout=1):
                        s = key.fileobj
                        rd = readers[s]
                        rd.buf += s.recv(65536)
                        if rd.buf.count(b"Hello, World!") >= 1 and rd.buf.endswith(b"Hello, World!"):
                            rd.buf = b""
                            pending.discard(s)
                            sel.unregister(s)
                sel.close()
                self.assertEqual(len(pending), 0, "round %d: %d clients unanswered" % (rnd, len(pending)))
                for s in socks:
                    s.setblocking(True)
            for s in socks:
                s.close()


class KeepAliveCap(unittest.TestCase):
    def test_connection_closes_after_1000_requests(self):
        with Server("hello") as srv:
            rs, rd = exchange(srv, REQ * 1001, count=1000)
            self.assertIsNone(rs[998].header("Connection"))
            self.assertEqual(rs[999].header("Connection"), "close")
            self.assertTrue(rd.at_eof(), "request 1001 was answered")


class Shutdown(unittest.TestCase):
    def stop_with_request_in_flight(self, sig):
        srv = Server("echo")
        s = srv.connect()
        rd = Reader(s)
        # A request whose body is still coming is in flight when the signal lands.
        s.sendall(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 6\r\n\r\nabc")
        idle = srv.connect()
        idle.sendall(REQ)
        self.assertEqual(Reader(idle).response().status, 200)
        srv.proc.send_signal(sig)
        self.assertTrue(Reader(idle).at_eof(), "idle connection not closed on stop")
        s.sendall(b"def")
        r = rd.response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection"), "close")
        self.assertEqual(srv.stop(sig=None), 0)  # it exits by itself

    def test_sigterm_finishes_in_flight_requests_then_exits_0(self):
        self.stop_with_request_in_flight(signal.SIGTERM)

    def test_sigint_finishes_in_flight_requests_then_exits_0(self):
        self.stop_with_request_in_flight(signal.SIGINT)

    def test_several_workers_share_the_port_and_stop_together(self):
        srv = Server("hello", "--workers", "3")
        for _ in range(6):
            (r,), rd = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
            self.assertEqual(r.body, b"Hello, World!")
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
