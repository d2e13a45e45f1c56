"""Byte-exact malformed requests over raw sockets: each gets the right 4xx/5xx,
a well-formed error response (Content-Length, Connection: close, a one-line
reason), and then the connection is closed. The server survives them all."""
import unittest

from httptest import Reader, Server, exchange

H = b"Host: example.com\r\n"

CASES = [
    # (name, raw request, expected status)
    ("cl and te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("differing content-lengths", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("content-length not digits", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3a\r\n\r\nabc", 400),
    ("content-length negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("content-length overflow", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("final coding not chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n", 400),
    ("unsupported coding", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    ("space before colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n 2\r\n\r\n", 400),
    ("bare cr", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r2\r\n\r\n", 400),
    ("nul in value", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\x002\r\n\r\n", 400),
    ("control char in name", b"GET / HTTP/1.1\r\n" + H + b"X\x07A: 1\r\n\r\n", 400),
    ("bad method char", b"GE\"T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("missing host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("duplicate host", b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    ("invalid host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("http/2.0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http/1.2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    ("garbage version", b"GET / FOO\r\n" + H + b"\r\n", 400),
    ("target too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("header too large", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
    ("too many headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    ("body too large", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000000\r\n\r\n", 413),
    ("chunked body too large", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
    ("bad chunk size", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ("chunk without crlf", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
]


class Malformed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("echo")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def check_error(self, raw, status):
        (r,), rd = exchange(self.server, raw)
        self.assertEqual(r.status, status)
        self.assertEqual(r.header("Connection"), "close")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertTrue(r.body.startswith(b"%d " % status), r.body)
        self.assertTrue(r.body.endswith(b"\n") and r.body.count(b"\n") == 1, r.body)
        self.assertIsNotNone(r.header("Date"))
        self.assertTrue(rd.at_eof(), "connection left open after an error")
        rd.sock.close()

    def test_malformed_requests_get_their_status_and_close(self):
        for name, raw, status in CASES:
            with self.subTest(name=name):
                self.check_error(raw, status)

    def test_malformed_requests_sent_byte_by_byte_get_the_same_status(self):
        for name, raw, status in CASES:
            if len(raw) > 400:
                continue
            with self.subTest(name=name):
                s = self.server.connect()
                for i in range(len(raw)):
                    try:
                        s.send(raw[i:i + 1])
                    except (BrokenPipeError, ConnectionResetError):
                        break  # answered early: the rest is not needed
                r = Reader(s).response()
                self.assertEqual(r.status, status)
                s.close()

    def test_error_after_a_good_pipelined_request_answers_both_in_order(self):
        raw = b"GET /ok HTTP/1.1\r\n" + H + b"\r\n" + b"GET / HTTP/1.1\r\n\r\n"
        (ok, bad), rd = exchange(self.server, raw, count=2)
        self.assertEqual(ok.status, 200)
        self.assertEqual(bad.status, 400)
        self.assertTrue(rd.at_eof())
        rd.sock.close()

    def test_leading_empty_line_is_ignored(self):
        (r,), rd = exchange(self.server, b"\r\nGET /x HTTP/1.1\r\n" + H + b"\r\n")
        self.assertEqual(r.status, 200)
        rd.sock.close()

    def test_server_still_answers_after_all_the_bad_input(self):
        (r,), _ = exchange(self.server, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        self.assertEqual(r.status, 200)
        _.sock.close()


class MalformedWithHtmlPages(unittest.TestCase):
    """The same requests to a server whose error-page hook answers HTML
    (--error-pages html): the page replaces the body, the framing stays."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server("echo", "--error-pages", "html")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def test_malformed_requests_get_the_html_page_framed_by_its_length(self):
        for name, raw, status in CASES:
            with self.subTest(name=name):
                (r,), rd = exchange(self.server, raw)
                self.assertEqual(r.status, status)
                self.assertEqual(r.header("Connection"), "close")
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                self.assertEqual(int(r.header("Content-Length")), len(r.body))
                self.assertTrue(r.body.startswith(b"<!doctype html>\n<title>%d " % status), r.body)
                self.assertTrue(r.body.endswith(b"</p>\n"), r.body)
                self.assertTrue(rd.at_eof(), "connection left open after an error")
                rd.sock.close()

    def test_head_gets_the_page_length_but_no_body(self):
        (r,), rd = exchange(self.server, b"HEAD / HTTP/1.1\r\n\r\n", head=True)  # no Host: 400
        self.assertEqual(r.status, 400)
        self.assertGreater(int(r.header("Content-Length")), 0)
        self.assertEqual(r.body, b"")
        self.assertTrue(rd.at_eof())
        rd.sock.close()


if __name__ == "__main__":
    unittest.main()
