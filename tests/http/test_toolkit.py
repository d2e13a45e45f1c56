"""The request/response toolkit (form.h, multipart.h, cookie.h, json.h)
against real clients: curl -F and --data-urlencode, Python's http.client,
and headless Chromium posting forms and keeping cookies. The server is
tests/http/toolkit_server.c (HP_TOOLKIT), which answers JSON describing
what it parsed. Missing clients skip loudly; nothing sleeps.
"""
import html
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

from httptest import DEADLINE, Server, exchange

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CURL = shutil.which("curl")


def fnv(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class Toolkit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("toolkit")
        cls.base = "http://127.0.0.1:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        self.assertEqual(r.getheader("Content-Type"), "application/json", data)
        return r, json.loads(data)

    def curl(self, *args):
        out = subprocess.run([CURL, "-sS", "--max-time", str(DEADLINE), *args],
                             capture_output=True, timeout=DEADLINE * 2)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    # ---- forms ---------------------------------------------------------

    @unittest.skipUnless(CURL, "SKIPPED LOUDLY: curl not installed")
    def test_curl_data_urlencode_round_trips_every_character(self):
        values = ["plain", "a b+c&d=e%f", "caf\u00e9 \u20ac \U0001F600", "=lead", "", "\t\r\n"]
        args = []
        for i, v in enumerate(values):
            args += ["--data-urlencode", "k%d=%s" % (i, v)]
        j = json.loads(self.curl(*args, self.base + "/form?x=1&y=%20+%2B"))
        self.assertEqual(j["query"], [["x", "1"], ["y", "  +"]])
        self.assertEqual(j["form"], [["k%d" % i, v] for i, v in enumerate(values)])

    def test_http_client_form_with_repeated_and_empty_pairs(self):
        body = urllib.parse.urlencode([("a", "1"), ("a", "2"), ("empty", ""), ("sp ace", "x y")])
        r, j = self.request("POST", "/form", body + "&&novalue",
                            {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200)
        self.assertEqual(j["form"], [["a", "1"], ["a", "2"], ["empty", ""], ["sp ace", "x y"],
                                     ["novalue", ""]])

    def test_malformed_percent_escape_is_400(self):
        for path, body in (("/form?q=%zz", ""), ("/form", "a=%4")):
            r, j = self.request("POST", path, body,
                                {"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(r.status, 400)
            self.assertEqual(j["error"], "EBADMSG")

    # ---- multipart -----------------------------------------------------

    @unittest.skipUnless(CURL, "SKIPPED LOUDLY: curl not installed")
    def test_curl_form_upload_with_binary_files(self):
        rnd = random.Random(4)
        small = bytes(range(256)) * 3 + b"\r\n--" + b"\r\n--------------------------" * 3
        big = bytes(rnd.getrandbits(8) for _ in range(3 << 20))
        with tempfile.TemporaryDirectory() as d:
            for name, data in (("small.bin", small), ("big.bin", big), ("empty.txt", b"")):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            out = self.curl("-F", "text=h\u00e9llo world",
                            "-F", "small=@%s;type=application/x-thing" % os.path.join(d, "small.bin"),
                            "-F", "big=@%s" % os.path.join(d, "big.bin"),
                            "-F", "empty=@%s;filename=re named.txt" % os.path.join(d, "empty.txt"),
                            self.base + "/multipart")
        parts = json.loads(out)["parts"]
        self.assertEqual([p["name"] for p in parts], ["text", "small", "big", "empty"])
        self.assertEqual(parts[0]["filename"], None)
        self.assertEqual(parts[0]["data"], "h\u00e9llo world".encode().decode("latin-1"))
        self.assertEqual(parts[1]["filename"], "small.bin")
        self.assertEqual(parts[1]["content_type"], "application/x-thing")
        self.assertEqual(parts[1]["data"].encode("latin-1"), small)
        self.assertEqual(parts[2]["size"], len(big))
        self.assertEqual(parts[2]["fnv"], fnv(big))
        self.assertNotIn("data", parts[2])
        self.assertEqual(parts[3]["filename"], "re named.txt")
        self.assertEqual(parts[3]["size"], 0)

    def multipart_body(self, boundary, fields):
        out = b""
        for name, filename, data in fields:
            cd = 'form-data; name="%s"' % name
            if filename is not None:
                cd += '; filename="%s"' % filename
            out += b"--" + boundary + b"\r\nContent-Disposition: " + cd.encode() + b"\r\n\r\n"
            out += data + b"\r\n"
        return out + b"--" + boundary + b"--\r\n"

    def test_http_client_chunked_upload_in_tiny_pieces(self):
        boundary = b"py-boundary-1234"
        data = bytes(random.Random(8).getrandbits(8) for _ in range(20000))
        body = self.multipart_body(boundary, [("f", "x.bin", data), ("g", None, b"\r\n--py")])
        pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
        c = self.conn()
        c.request("POST", "/multipart", body=iter(pieces), encode_chunked=True,
                  headers={"Content-Type": 'multipart/form-data; boundary="%s"' % boundary.decode(),
                           "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        parts = json.loads(r.read())["parts"]
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(parts[0]["data"].encode("latin-1"), data)
        self.assertEqual(parts[1]["data"], "\r\n--py")

    def test_malformed_multipart_is_400_with_a_reason(self):
        cases = [
            (b"--b\r\n\r\nx\r\n--b--", "part without content-disposition"),
            (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz", "body ends before the closing boundary"),
            (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--bX", "boundary followed by something else than crlf"),
        ]
        for body, reason in cases:
            r, j = self.request("POST", "/multipart", body,
                                {"Content-Type": "multipart/form-data; boundary=b"})
            self.assertEqual((r.status, j["error"], j["reason"]), (400, "EBADMSG", reason))
        r, j = self.request("POST", "/multipart", b"x", {"Content-Type": "text/plain"})
        self.assertEqual((r.status, j["error"]), (400, "EINVAL"))

    def test_client_leaving_mid_upload_frees_the_parser(self):
        # The server's on_abort frees the upload and finishes the request;
        # a leak or a request never finished fails tearDownClass (ASan's
        # exit status, or a shutdown that never completes).
        body = self.multipart_body(b"z", [("f", "x", b"y" * 5000)])
        for cut in (0, 10, 60, 3000):
            s = self.server.connect()
            s.sendall(b"POST /multipart HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=z\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:cut]))
            s.close()
        r, j = self.request("GET", "/cookies")
        self.assertEqual(r.status, 200)

    def test_multipart_split_at_every_byte_over_the_socket(self):
        body = self.multipart_body(b"q", [("a", None, b"1\r\n-"), ("b", "f", b"\r\n--x-\r\n-q")])
        for cut in range(1, len(body)):
            raw = (b"POST /multipart HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=q\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                   % (cut, body[:cut], len(body) - cut, body[cut:]))
            (r,), rd = exchange(self.server, raw)
            rd.sock.close()
            self.assertEqual(r.status, 200, (cut, r.body))
            parts = json.loads(r.body)["parts"]
            self.assertEqual([(p["name"], p["filename"], p["data"]) for p in parts],
                             [("a", None, "1\r\n-"), ("b", "f", "\r\n--x-\r\n-q")])

    # ---- cookies -------------------------------------------------------

    @unittest.skipUnless(CURL, "SKIPPED LOUDLY: curl not installed")
    def test_curl_cookie_jar_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            jar = os.path.join(d, "jar")
            self.curl("-c", jar, self.base + "/set-cookie?name=sid&value=s%3Dv.1&path=/&http_only=1")
            self.curl("-b", jar, "-c", jar, self.base + "/set-cookie?name=q&value=%22quoted%22&max_age=60")
            j = json.loads(self.curl("-b", jar, self.base + "/cookies"))
        self.assertEqual(sorted(j["cookies"]), [["q", "quoted"], ["sid", "s=v.1"]])

    def test_set_cookie_header_and_refusals(self):
        c = self.conn()
        c.request("GET", "/set-cookie?name=a&value=b&path=/p&domain=example.com&max_age=5"
                         "&expires=784111777&secure=1&http_only=1&same_site=strict")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.getheader("Set-Cookie"),
                         "a=b; Path=/p; Domain=example.com; Max-Age=5; "
                         "Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; SameSite=Strict")
        c.close()
        for q in ("name=a&value=x%3By", "name=a&value=x%0d%0aSet-Cookie:%20evil=1", "name=a%20b&value=1",
                  "name=a&value=1&same_site=none", "name=a&path=/%3B"):
            r, j = self.request("GET", "/set-cookie?" + q)
            self.assertEqual((r.status, j["error"]), (400, "EINVAL"), q)
            self.assertIsNone(r.getheader("Set-Cookie"))

    def test_cookie_header_parsing_of_several_fields(self):
        r, j = self.request("GET", "/cookies", headers={"Cookie": 'a=1; b="two"; junk; =x; c=3'})
        self.assertEqual(j["cookies"], [["a", "1"], ["b", "two"], ["c", "3"]])

    # ---- JSON ----------------------------------------------------------

    def test_json_strings_parse_back_in_python(self):
        rnd = random.Random(2)
        samples = [bytes(range(256)), "\u2028</script>\U0001F600".encode(), b"\xed\xa0\x80\xc3"]
        samples += [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(200))) for _ in range(50)]
        for data in samples:
            r, j = self.request("POST", "/json?mode=latin1", data)
            self.assertEqual(j["s"].encode("latin-1"), data)
            r, j = self.request("POST", "/json", data)
            self.assertEqual(j["s"], data.decode("utf-8", "replace"))
            c = self.conn()
            c.request("POST", "/json?mode=html", data)
            raw = c.getresponse().read()
            c.close()
            self.assertNotIn(b"</", raw)
            self.assertNotIn("\u2028".encode(), raw)
            self.assertEqual(json.loads(raw)["s"], data.decode("utf-8", "replace"))
            r, j = self.request("POST", "/json?mode=strict", data)
            try:
                text = data.decode("utf-8")
                self.assertEqual((r.status, j["s"]), (200, text))
            except UnicodeDecodeError:
                self.assertEqual((r.status, j["error"]), (400, "EILSEQ"))

    # ---- Chromium ------------------------------------------------------

    def chromium(self, url):
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--user-data-dir=" + d, "--virtual-time-budget=20000", "--dump-dom", url],
                capture_output=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        return out.stdout.decode()

    @unittest.skipUnless(CHROMIUM, "SKIPPED LOUDLY: chromium not installed")
    def test_chromium_multipart_form_and_cookie_round_trip(self):
        dom = self.chromium(self.base + "/page/toolkit")
        m = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
        self.assertTrue(m, dom[-2000:])
        text = html.unescape(m.group(1))
        self.assertFalse(text.startswith("ERROR") or text == "pending", text)
        out = json.loads(text)
        parts = out["multipart"]["parts"]
        self.assertEqual(parts[0]["name"], "greeting")
        self.assertEqual(parts[0]["data"].encode("latin-1").decode(),
                         'h\u00e9llo w\u00f6rld & "quotes"\r\nline 2')
        self.assertEqual(parts[1]["name"], "upload")
        # Chromium escapes '"' in filenames as %22 (HTML's multipart/form-data encoding).
        self.assertEqual(parts[1]["filename"], "b\u00efn %22q%22.dat")
        self.assertEqual(parts[1]["content_type"], "application/octet-stream")
        self.assertEqual(parts[1]["data"].encode("latin-1"), bytes(range(256)))
        self.assertEqual(out["form"]["query"], [["q", "1 2"], ["r", "+"]])
        self.assertEqual(out["form"]["form"], [["a b", "c&d=e"], ["uni", "\u20ac \U0001F600"], ["empty", ""]])
        self.assertEqual(out["set1"], {"ok": True})
        # HttpOnly keeps sid from script; the browser sends both back.
        self.assertEqual(out["document_cookie"], 'theme="dark"')
        self.assertEqual(sorted(out["cookies"]["cookies"]), [["sid", "abc123"], ["theme", "dark"]])
        # Max-Age=0 deleted theme.
        self.assertEqual(out["after"]["cookies"], [["sid", "abc123"]])

    @unittest.skipUnless(CHROMIUM, "SKIPPED LOUDLY: chromium not installed")
    def test_chromium_submits_a_real_html_form(self):
        dom = self.chromium(self.base + "/page/submit")
        m = re.search(r"<pre[^>]*>(.*?)</pre>", dom, re.S)
        self.assertTrue(m, dom[-2000:])
        text = html.unescape(m.group(1))
        out = json.loads(text)
        self.assertEqual(out["query"], [["via", "form"]])
        self.assertEqual(out["form"], [["user", "J\u00fcrgen + Ann"], ["msg", "a&b=c\r\nd"], ["c", "on"],
                                       ["x y", "%41"]])


if __name__ == "__main__":
    unittest.main()
