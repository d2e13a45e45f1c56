"""Real clients against the bundled servers: curl, Python's http.client and
raw sockets for pipelining, chunked uploads, HEAD, 100-continue and
keep-alive rules."""
import http.client
import json
import shutil
import subprocess
import unittest

from httptest import DEADLINE, Reader, Server, exchange

H = b"Host: example.com\r\n"


class Hello(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("hello")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_gets_hello_world_twice_on_one_connection(self):
        url = "http://127.0.0.1:%d/" % self.server.port
        out = subprocess.run(["curl", "-sS", "--max-time", str(DEADLINE), "-w", "|%{num_connects}|%{http_code}|%{content_type}\n",
                              url, url], capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "Hello, World!|1|200|text/plain\nHello, World!|0|200|text/plain\n")

    def test_http_client_keeps_the_connection_alive(self):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)
        for _ in range(3):
            c.request("GET", "/anything?x=1")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"Hello, World!"))
            self.assertEqual(r.getheader("Content-Type"), "text/plain")
            self.assertEqual(r.getheader("Content-Length"), "13")
            self.assertIsNone(r.getheader("Connection"))
        c.close()

    def test_100_pipelined_requests_in_one_write_get_100_responses_in_order(self):
        raw = b"".join(b"GET /%d HTTP/1.1\r\n%s\r\n" % (i, H) for i in range(99))
        raw += b"GET /last HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
        rs, rd = exchange(self.server, raw, count=100)
        self.assertEqual([r.status for r in rs], [200] * 100)
        self.assertTrue(all(r.body == b"Hello, World!" for r in rs))
        self.assertEqual(rs[-1].header("Connection"), "close")
        self.assertTrue(rd.at_eof())

    def test_head_gets_the_headers_of_get_and_no_body(self):
        s = self.server.connect()
        s.sendall(b"HEAD / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n")
        rd = Reader(s)
        head = rd.response(head=True)
        get = rd.response()
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("Content-Length"), "13")
        self.assertEqual(get.body, b"Hello, World!")  # proves HEAD sent no body bytes
        s.close()

    def test_http10_closes_unless_keep_alive_is_asked(self):
        (r,), rd = exchange(self.server, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.at_eof())
        rs, rd = exchange(self.server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2, count=2)
        self.assertEqual([r.header("Connection") for r in rs], ["keep-alive", "keep-alive"])
        rd.sock.close()

    def test_connection_close_is_honoured(self):
        (r,), rd = exchange(self.server, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(rd.at_eof())

    def test_date_header_is_an_imf_fixdate(self):
        (r,), rd = exchange(self.server, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        self.assertRegex(r.header("Date"), r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
        rd.sock.close()


class Echo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("echo")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def echo(self, raw):
        (r,), rd = exchange(self.server, raw)
        rd.sock.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        return json.loads(r.body)

    def test_echo_describes_the_request_exactly(self):
        j = self.echo(b"PATCH /p?q=1 HTTP/1.1\r\nHost: h\r\nX-CaSe:  v a l \r\nContent-Length: 4\r\n\r\nab\"c")
        self.assertEqual(j, {"method": "PATCH", "target": "/p?q=1", "version": "HTTP/1.1",
                             "headers": [["Host", "h"], ["X-CaSe", "v a l"], ["Content-Length", "4"]],
                             "body": "ab\"c"})

    def test_echo_escapes_control_and_high_bytes(self):
        body = bytes(range(256))
        j = self.echo(b"POST / HTTP/1.1\r\nHost: h\r\nX: caf\xe9\r\nContent-Length: 256\r\n\r\n" + body)
        self.assertEqual(j["body"], body.decode("latin-1"))
        self.assertEqual(j["headers"][1], ["X", "caf\u00e9"])

    def test_chunked_upload_is_reassembled(self):
        raw = (b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
        self.assertEqual(self.echo(raw)["body"], "hello world")

    def test_chunked_upload_from_http_client(self):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)
        c.request("PUT", "/x", body=iter([b"ab", b"", b"cd" * 1000]), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        self.assertEqual(json.loads(r.read())["body"], "ab" + "cd" * 1000)
        c.close()

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_post_with_expect_100_continue(self):
        data = "x" * 5000  # large enough that curl sends Expect: 100-continue
        out = subprocess.run(["curl", "-sS", "--max-time", str(DEADLINE), "-H", "Expect: 100-continue",
                              "--data-binary", data, "http://127.0.0.1:%d/c" % self.server.port],
                             capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["body"], data)

    def test_100_continue_comes_before_the_final_response(self):
        s = self.server.connect()
        s.sendall(b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        rd = Reader(s)
        interim = rd.response()
        self.assertEqual(interim.status, 100)
        s.sendall(b"abc")
        self.assertEqual(json.loads(rd.response().body)["body"], "abc")
        s.close()

    def test_too_large_body_with_expect_gets_413_and_no_100(self):
        (r,), rd = exchange(self.server, b"POST / HTTP/1.1\r\n" + H +
                            b"Expect: 100-continue\r\nContent-Length: 9999999\r\n\r\n")
        self.assertEqual(r.status, 413)
        self.assertTrue(rd.at_eof())

    def test_options_asterisk_and_absolute_form(self):
        self.assertEqual(self.echo(b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n")["target"], "*")
        self.assertEqual(self.echo(b"GET http://example.com/a?b HTTP/1.1\r\n" + H + b"\r\n")["target"],
                         "http://example.com/a?b")

    def test_head_on_echo_has_length_and_no_body(self):
        s = self.server.connect()
        s.sendall(b"HEAD / HTTP/1.1\r\n" + H + b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n")
        rd = Reader(s)
        head = rd.response(head=True)
        self.assertGreater(int(head.header("Content-Length")), 0)
        self.assertEqual(json.loads(rd.response().body)["method"], "GET")
        s.close()

    def test_pipelined_bodies_stay_in_order(self):
        raw = b"".join(b"POST /%d HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (i, H, len(b"%d" % i), b"%d" % i)
                       for i in range(50))
        rs, rd = exchange(self.server, raw, count=50)
        self.assertEqual([json.loads(r.body)["body"] for r in rs], [str(i) for i in range(50)])
        rd.sock.close()


if __name__ == "__main__":
    unittest.main()
