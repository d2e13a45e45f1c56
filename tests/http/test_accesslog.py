"""Access logs of the bundled hello server (--access-log, --access-log-format):
one line per request, fields escaped so a hostile request cannot forge a line,
valid JSON in the JSON format, and SIGHUP reopening the file (logrotate)."""
import json
import os
import re
import signal
import tempfile
import time
import unittest

from httptest import DEADLINE, Server, exchange

COMBINED = re.compile(
    r'^(?P<peer>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$')


def read_lines(path, count):
    """The first `count` lines of the log, once the server has written them
    (it writes on SIGTERM's shutdown at the latest)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            lines = []
        if len([x for x in lines if x]) >= count or time.monotonic() > deadline:
            return [x.decode("ascii") for x in lines if x]
        time.sleep(0.02)  # polling the file for a bounded time, not synchronising


class AccessLog(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "access.log")

    def tearDown(self):
        self.dir.cleanup()

    def test_combined_lines_escape_what_the_client_sent(self):
        hostile_agent = b'evil" "forged\\ \x80\xff'
        with Server("hello", "--access-log", self.path) as srv:
            exchange(srv, b"GET /a?q=%22x HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\n"
                          b"User-Agent: " + hostile_agent + b"\r\n\r\n")
            exchange(srv, b'GET /"quoted"\\back HTTP/1.1\r\nHost: h\r\n\r\n')
            exchange(srv, b"HEAD /h HTTP/1.0\r\n\r\n", head=True)
            exchange(srv, b"BAD\x01 / HTTP/1.1\r\n\r\n")
            self.assertEqual(srv.stop(), 0)
        lines = read_lines(self.path, 4)
        self.assertEqual(len(lines), 4, lines)
        m = [COMBINED.match(x) for x in lines]
        self.assertTrue(all(m), lines)
        self.assertEqual(m[0]["peer"], "127.0.0.1")
        self.assertEqual(m[0]["request"], "GET /a?q=%22x HTTP/1.1")
        self.assertEqual(m[0]["status"], "200")
        self.assertEqual(m[0]["bytes"], "13")
        self.assertEqual(m[0]["referer"], "http://r/")
        self.assertEqual(m[0]["agent"], 'evil\\x22 \\x22forged\\x5c \\x80\\xff')
        self.assertEqual(m[1]["request"], "GET /\\x22quoted\\x22\\x5cback HTTP/1.1")
        self.assertEqual(m[1]["referer"], "-")
        self.assertEqual(m[2]["request"], "HEAD /h HTTP/1.0")
        self.assertEqual(m[2]["bytes"], "-")  # no body for HEAD
        self.assertEqual(m[3]["request"], "-")  # no head was parsed
        self.assertEqual(m[3]["status"], "400")

    def test_json_lines_are_valid_json(self):
        with Server("hello", "--access-log", self.path, "--access-log-format", "json") as srv:
            exchange(srv, b"GET /j\\\"x HTTP/1.1\r\nHost: h\r\nUser-Agent: a\"b\x80\r\n\r\n")
            exchange(srv, b"GARBAGE\r\n\r\n")
            self.assertEqual(srv.stop(), 0)
        lines = read_lines(self.path, 2)
        docs = [json.loads(x) for x in lines]
        self.assertEqual(docs[0]["target"], '/j\\"x')
        self.assertEqual(docs[0]["user_agent"], 'a"b\x80')
        self.assertEqual(docs[0]["status"], 200)
        self.assertEqual(docs[0]["method"], "GET")
        self.assertGreaterEqual(docs[0]["duration_ms"], 0)
        self.assertIsNone(docs[1]["method"])
        self.assertEqual(docs[1]["status"], 400)

    def test_sighup_reopens_the_file(self):
        rotated = self.path + ".1"
        with Server("hello", "--access-log", self.path) as srv:
            exchange(srv, b"GET /before HTTP/1.1\r\nHost: h\r\n\r\n")
            os.rename(self.path, rotated)
            srv.proc.send_signal(signal.SIGHUP)  # flushes to the old file, opens a new one
            self.assertTrue(read_lines(rotated, 1))
            deadline = time.monotonic() + DEADLINE
            while not os.path.exists(self.path) and time.monotonic() < deadline:
                time.sleep(0.02)
            exchange(srv, b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertEqual(srv.stop(), 0)
        self.assertIn("/before", read_lines(rotated, 1)[0])
        self.assertIn("/after", read_lines(self.path, 1)[0])


if __name__ == "__main__":
    unittest.main()
