"""The router through a real server: bench/router/route-echo serving the
route tables of tests/http/routes, driven by Python's http.client, curl and
raw sockets (for paths a client library would clean up itself)."""
import http.client
import json
import os
import shutil
import subprocess
import unittest

from httptest import DEADLINE, Server, exchange

ROUTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "routes")
H = b"Host: example.com\r\n"


def table(name):
    """[(method, path as written)] of a route file."""
    out = []
    with open(os.path.join(ROUTES, name)) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                m, p = line.split()
                out.append((m, p))
    return out


def placeholders(path):
    """The params a route's own text gives back: {"owner": ":owner", "ref": "*ref"}."""
    return {seg[1:]: seg for seg in path.split("/") if seg[:1] in (":", "*")}


def start(*files, extra=()):
    args = []
    for f in files:
        args += ["--routes", os.path.join(ROUTES, f)]
    return Server("route_echo", *args, *extra)


class Tables(unittest.TestCase):
    """Every route of every table, requested with its own text, answers as itself."""

    def check(self, *files):
        routes = [r for f in files for r in table(f)]
        with start(*files) as srv:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=DEADLINE)
            for method, path in routes:
                c.request(method, path)
                r = c.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, (method, path, body))
                self.assertEqual(r.getheader("Content-Type"), "application/json")
                got = json.loads(body)
                self.assertEqual(got, {"route": path, "method": method,
                                       "params": placeholders(path)}, (method, path))
            c.close()
            self.assertEqual(srv.stop(), 0)

    def test_github(self):
        self.check("github.txt")

    def test_gplus_parse_static(self):
        self.check("gplus.txt")
        self.check("parse.txt")
        self.check("static.txt")

    def test_github_extra_alone_and_with_github(self):
        self.check("github-extra.txt")
        self.check("github.txt", "github-extra.txt")


class Routing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start("github.txt", "github-extra.txt")

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    def get(self, path, method="GET", body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=DEADLINE)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def raw(self, line, method=b"GET"):
        (r,), _ = exchange(self.srv, method + b" " + line + b" HTTP/1.1\r\n" + H + b"\r\n")
        return r

    def route(self, path, method="GET"):
        r, data = self.get(path, method)
        self.assertEqual(r.status, 200, (path, data))
        return json.loads(data)

    def test_real_values_and_precedence(self):
        j = self.route("/repos/julienschmidt/httprouter/stargazers")
        self.assertEqual(j["route"], "/repos/:owner/:repo/stargazers")
        self.assertEqual(j["params"], {"owner": "julienschmidt", "repo": "httprouter"})
        self.assertEqual(self.route("/gists/public")["route"], "/gists/public")
        self.assertEqual(self.route("/gists/123")["params"], {"id": "123"})
        self.assertEqual(self.route("/gists/public", "PATCH")["route"], "/gists/:id")
        # git/ is a static branch; "git/master" is not in it: back to :archive_format
        j = self.route("/repos/o/r/git/master")
        self.assertEqual(j["route"], "/repos/:owner/:repo/:archive_format/:ref")
        self.assertEqual(j["params"]["archive_format"], "git")
        j = self.route("/repos/o/r/git/refs/heads/feature/x")
        self.assertEqual(j["route"], "/repos/:owner/:repo/git/refs/*ref")
        self.assertEqual(j["params"]["ref"], "heads/feature/x")
        self.assertEqual(self.route("/repos/o/r/contents/")["params"]["path"], "")

    def test_parameters_are_percent_decoded_after_matching(self):
        j = self.route("/users/caf%C3%A9/gists")
        self.assertEqual(j["params"], {"user": "caf\u00e9"})
        j = self.route("/users/a%2Fb/gists")  # %2F stays inside the parameter
        self.assertEqual((j["route"], j["params"]), ("/users/:user/gists", {"user": "a/b"}))
        j = self.route("/users/%22q%22%5C%0A/gists")  # JSON escaping of the value
        self.assertEqual(j["params"], {"user": '"q"\\\n'})
        j = self.route("/users/%FF/gists")  # not UTF-8: U+FFFD in the JSON
        self.assertEqual(j["params"], {"user": "\ufffd"})
        j = self.route("/repos/o/r/contents/dir%20a/b%2Bc")
        self.assertEqual(j["params"]["path"], "dir a/b+c")

    def test_malformed_escapes_are_400(self):
        for p in (b"/users/%zz/gists", b"/users/%4/gists", b"/users/x%/gists", b"/nothing/%g1",
                  b"/users/%00/gists", b"/repos/o/r/contents/a%2"):
            r = self.raw(p)
            self.assertEqual(r.status, 400, p)

    def test_405_lists_allow_and_head_falls_back_to_get(self):
        r, _ = self.get("/gists/public", "PUT")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.getheader("Allow"), "GET, HEAD, DELETE, OPTIONS, PATCH")
        r, _ = self.get("/authorizations", "DELETE")
        self.assertEqual((r.status, r.getheader("Allow")), (405, "GET, HEAD, POST, OPTIONS"))
        r, data = self.get("/gists/public", "HEAD")
        self.assertEqual((r.status, data), (200, b""))
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertGreater(int(r.getheader("Content-Length")), 0)

    def test_options_answers_with_allow(self):
        r, data = self.get("/user/keys/1", "OPTIONS")
        self.assertEqual((r.status, data), (204, b""))
        self.assertEqual(r.getheader("Allow"), "GET, HEAD, DELETE, OPTIONS, PATCH")
        r = self.raw(b"*", b"OPTIONS")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH")
        r, _ = self.get("/nothing/here", "OPTIONS")
        self.assertEqual(r.status, 404)

    def test_unmatched_is_404(self):
        for p in ("/nope", "/gists/1/2/3", "/users/", "/repos/a"):
            r, data = self.get(p)
            self.assertEqual((r.status, data), (404, b"Not Found\n"), p)

    def test_dot_segments_and_double_slashes_redirect_to_the_clean_path(self):
        cases = [(b"/a/../gists/public", "/gists/public"),
                 (b"/gists/./public", "/gists/public"),
                 (b"//gists//public?x=1", "/gists/public?x=1"),
                 (b"/gists/%2e%2e/gists/public", "/gists/public"),
                 (b"/../../../etc/passwd", "/etc/passwd"),
                 (b"/users/..", "/"),
                 (b"//evil.example/x", "/evil.example/x")]
        for raw, loc in cases:
            r = self.raw(raw)
            self.assertEqual((r.status, r.header("Location")), (301, loc), raw)
        r = self.raw(b"/a/../gists", b"POST")
        self.assertEqual((r.status, r.header("Location")), (308, "/gists"))
        # a catch-all value that only climbs once decoded: refused
        r = self.raw(b"/repos/o/r/contents/x/a%2F..%2F..%2Fetc")
        self.assertEqual(r.status, 400)
        # (one segment only: a single parameter of another route, where %2F is just a byte)
        j = self.route("/repos/o/r/contents/a%2F..%2Fetc")
        self.assertEqual(j["params"]["ref"], "a/../etc")

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_follows_the_clean_redirect(self):
        url = "http://127.0.0.1:%d/x/../users/me/keys" % self.srv.port
        out = subprocess.run(["curl", "-sS", "-L", "--path-as-is", "--max-time", str(DEADLINE),
                              "-w", "|%{http_code}|%{num_redirects}", url],
                             capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 0, out.stderr)
        body, code, redirects = out.stdout.rsplit("|", 2)
        self.assertEqual((code, redirects), ("200", "1"))
        self.assertEqual(json.loads(body)["params"], {"user": "me"})

    def test_hostile_paths_fail_cleanly(self):
        r = self.raw(b"/a" * 4000)  # 4,000 segments, within the target limit
        self.assertEqual(r.status, 404)
        r = self.raw(b"/" * 8000)
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/")
        r = self.raw(b"/users/" + b"x" * 8000 + b"/gists")
        self.assertEqual(r.status, 200)
        r = self.raw(b"/" + b"%" * 8000)
        self.assertEqual(r.status, 400)
        r = self.raw(b"/users/" + b"x" * 9000)  # over max_target: the server's 414
        self.assertEqual(r.status, 414)
        # and the server still answers
        self.assertEqual(self.route("/gists/1")["params"], {"id": "1"})


class TrailingSlash(unittest.TestCase):
    def test_redirects_only_when_enabled(self):
        with start("github.txt", extra=["--redirect-slash"]) as srv:
            (r, r2, r3, r4), _ = exchange(srv, b"GET /gists/public/ HTTP/1.1\r\n" + H + b"\r\n"
                                          b"POST /gists/?a=b HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"
                                          b"GET /user/ HTTP/1.1\r\n" + H + b"\r\n"
                                          b"GET /nope/ HTTP/1.1\r\n" + H + b"\r\n", count=4)
            self.assertEqual((r.status, r.header("Location")), (301, "/gists/public"))
            self.assertEqual((r2.status, r2.header("Location")), (308, "/gists?a=b"))
            self.assertEqual((r3.status, r3.header("Location")), (301, "/user"))
            self.assertEqual(r4.status, 404)
            self.assertEqual(srv.stop(), 0)
        with start("github.txt") as srv:
            (r,), _ = exchange(srv, b"GET /gists/public/ HTTP/1.1\r\n" + H + b"\r\n")
            self.assertEqual(r.status, 404)
            self.assertEqual(srv.stop(), 0)


class Startup(unittest.TestCase):
    def test_conflicting_routes_are_refused_naming_both(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "hp-router-conflict-%d.txt" % os.getpid())
        with open(path, "w") as f:
            f.write("GET /users/:id\nGET /users/:name\n")
        try:
            out = subprocess.run([os.environ["HP_ROUTE_ECHO"], "--routes", path, "--port", "0"],
                                 capture_output=True, text=True, timeout=DEADLINE)
        finally:
            os.unlink(path)
        self.assertEqual(out.returncode, 1)
        self.assertIn("/users/{name}", out.stderr)
        self.assertIn("/users/{id}", out.stderr)

    def test_workers_share_one_router(self):
        with start("github.txt", extra=["--workers", "2"]) as srv:
            conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=DEADLINE) for _ in range(4)]
            for i in range(20):
                c = conns[i % 4]
                c.request("GET", "/users/u%d/repos" % i)
                r = c.getresponse()
                self.assertEqual(json.loads(r.read())["params"], {"user": "u%d" % i})
            for c in conns:
                c.close()
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
