#!/usr/bin/env python3
"""tests/tfb/check.py - checks a TechEmpower (TFB) implementation over HTTP.

    check.py BASE_URL [--dsn DSN] [--psql PATH] [--verbose]

BASE_URL is http://HOST:PORT (the test types live at /json, /plaintext, /db,
/queries?queries=N, /fortunes, /updates?queries=N, /cached-queries?count=N).
With --dsn (a libpq connection string to the implementation's hello_world
database) rows are read back with psql: /db answers match the table and
/updates really changed the rows. Without it those checks are skipped, loudly.

What is checked (TFB's "Framework Tests Overview" and general rules):
- every response: status 200, exact Content-Type (application/json,
  text/plain, text/html; charset=utf-8), a Server header, a Date header in
  IMF-fixdate form close to the local clock and changing every second;
- json/plaintext bodies exactly; db/queries/updates/cached-queries shapes
  (objects with exactly "id" and "randomNumber", integers in 1..10000;
  queries types always answer an array);
- the queries/count parameter: missing, empty, non-numeric, 0, -1 -> 1;
  501 and larger -> 500; 1, 20 and 500 as given;
- fortunes byte-exact against the expected page (the 12 rows, the added one,
  sorted by message in byte order, escaped as & < > " ' -> &amp; &lt; &gt;
  &quot; &#39;, the Japanese row intact, valid UTF-8);
- updates: the answered values are the table's afterwards, nearly every row
  drawn got a new value, rows not drawn kept theirs;
- 512 concurrent connections, one request each over a mix of the types, no
  error; 16 pipelined plaintext requests in one write, 16 answers in order.

Python 3 standard library only (plus the psql client for --dsn). Exit status
0 when every check passed, 1 otherwise, 2 on bad usage.
"""
import argparse
import asyncio
import email.utils
import http.client
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse

FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]
ADDED = (0, "Additional fortune added at request time.")


def escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def expected_fortunes_page():
    """TFB's fortunes template, without the optional whitespace:
    <!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>
    <tr><th>id</th><th>message</th></tr>{{#fortunes}}<tr><td>{{id}}</td>
    <td>{{message}}</td></tr>{{/fortunes}}</table></body></html>"""
    rows = sorted(FORTUNES + [ADDED], key=lambda r: r[1].encode())
    page = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            "<tr><th>id</th><th>message</th></tr>")
    page += "".join(f"<tr><td>{i}</td><td>{escape(m)}</td></tr>" for i, m in rows)
    page += "</table></body></html>"
    return page.encode("utf-8")


JSON = "application/json"
TEXT = "text/plain"
HTML = "text/html; charset=utf-8"
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT")


class Checker:
    def __init__(self, base, dsn, psql, verbose):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit("check.py: BASE_URL must be http://HOST:PORT")
        self.host = u.hostname
        self.port = u.port or 80
        self.dsn = dsn
        self.psql = psql
        self.verbose = verbose
        self.failures = 0
        self.passed = 0
        self.conn = None
        self.timeout = 10

    # ---- reporting ------------------------------------------------------
    def ok(self, name):
        self.passed += 1
        if self.verbose:
            print(f"ok    {name}")

    def fail(self, name, why):
        self.failures += 1
        print(f"FAIL  {name}: {why}")

    def check(self, name, cond, why=""):
        if cond:
            self.ok(name)
        else:
            self.fail(name, why or "condition false")
        return cond

    def skip(self, name, why):
        print(f"SKIP  {name}: {why}")

    # ---- HTTP -------------------------------------------------------------
    def get(self, path):
        """One GET on a persistent connection: (status, headers dict lower-case, body)."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path, headers={"Host": f"{self.host}:{self.port}"})
                r = self.conn.getresponse()
                body = r.read()
                headers = {}
                for k, v in r.getheaders():
                    headers.setdefault(k.lower(), []).append(v)
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, headers, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def check_headers(self, name, status, headers, ctype):
        good = True
        if status != 200:
            self.fail(name, f"status {status}, expected 200")
            return False
        ct = headers.get("content-type", [])
        if ct != [ctype]:
            self.fail(name, f"Content-Type {ct!r}, expected exactly [{ctype!r}]")
            good = False
        server = headers.get("server", [])
        if len(server) != 1 or not server[0].strip():
            self.fail(name, f"Server header {server!r}, expected one non-empty value")
            good = False
        date = headers.get("date", [])
        if len(date) != 1 or not IMF_FIXDATE.fullmatch(date[0]):
            self.fail(name, f"Date header {date!r}, expected one IMF-fixdate")
            good = False
        else:
            skew = abs(email.utils.parsedate_to_datetime(date[0]).timestamp() - time.time())
            if skew > 3:
                self.fail(name, f"Date {date[0]!r} is {skew:.0f} s away from the local clock")
                good = False
        if "content-length" not in headers and "chunked" not in \
                ",".join(headers.get("transfer-encoding", [])).lower():
            self.fail(name, "neither Content-Length nor chunked framing")
            good = False
        if good:
            self.ok(name + " headers")
        return good

    def get_json(self, name, path):
        status, headers, body = self.get(path)
        if not self.check_headers(name, status, headers, JSON):
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError as e:
            self.fail(name, f"body is not JSON ({e}): {body[:80]!r}")
            return None

    def world_ok(self, name, w):
        if not isinstance(w, dict) or set(w) != {"id", "randomNumber"}:
            self.fail(name, f"expected an object with exactly id and randomNumber, got {w!r}")
            return False
        for k in ("id", "randomNumber"):
            v = w[k]
            if type(v) is not int or not 1 <= v <= 10000:
                self.fail(name, f"{k} = {v!r}: expected an integer in 1..10000")
                return False
        return True

    def worlds_ok(self, name, ws, n):
        if not isinstance(ws, list):
            self.fail(name, f"expected a JSON array, got {type(ws).__name__}")
            return False
        if len(ws) != n:
            self.fail(name, f"{len(ws)} objects, expected {n}")
            return False
        return all(self.world_ok(name, w) for w in ws)

    # ---- psql -------------------------------------------------------------
    def table(self):
        """The World table as {id: randomNumber}, read with psql."""
        out = subprocess.run(
            [self.psql, "-X", "-q", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1", self.dsn,
             "-c", "SELECT id, randomnumber FROM world"],
            check=True, capture_output=True, text=True, timeout=60).stdout
        rows = {}
        for line in out.splitlines():
            i, r = line.split(",")
            rows[int(i)] = int(r)
        return rows

    # ---- the checks ---------------------------------------------------------
    def test_json(self):
        for _ in range(2):  # twice on one connection: keep-alive works
            status, headers, body = self.get("/json")
            if self.check_headers("json", status, headers, JSON):
                try:
                    value = json.loads(body)
                except ValueError:
                    value = None
                self.check("json body", value == {"message": "Hello, World!"},
                           f"body {body[:80]!r}, expected {{\"message\":\"Hello, World!\"}}")

    def test_plaintext(self):
        status, headers, body = self.get("/plaintext")
        if self.check_headers("plaintext", status, headers, TEXT):
            self.check("plaintext body", body == b"Hello, World!", f"body {body[:80]!r}")

    def test_db(self, before):
        seen = set()
        for _ in range(20):
            w = self.get_json("db", "/db")
            if w is None or not self.world_ok("db", w):
                return
            seen.add(w["id"])
            if before is not None and before[w["id"]] != w["randomNumber"]:
                self.fail("db matches the table",
                          f"id {w['id']}: answered {w['randomNumber']}, table has {before[w['id']]}")
                return
        self.ok("db shape")
        self.check("db ids random", len(seen) >= 10, f"only {len(seen)} ids in 20 requests")
        if before is not None:
            self.ok("db matches the table")

    CLAMPS = [(None, 1), ("", 1), ("foo", 1), ("0", 1), ("-1", 1), ("1", 1), ("2", 2),
              ("20", 20), ("500", 500), ("501", 500), ("99999999999999999999", 500)]

    def test_clamping(self, kind, param):
        for value, n in self.CLAMPS:
            path = f"/{kind}" if value is None else f"/{kind}?{param}={value}"
            name = f"{kind} {param}={'(missing)' if value is None else repr(value)}"
            ws = self.get_json(name, path)
            if ws is not None and self.worlds_ok(name, ws, n):
                self.ok(name)
            if kind == "queries" and value == "500" and ws and len(ws) == 500:
                ids = {w["id"] for w in ws}
                self.check("queries ids random", len(ids) > 400,
                           f"{len(ids)} distinct ids among 500")

    def test_queries_match(self, before):
        ws = self.get_json("queries matches the table", "/queries?queries=20")
        if ws is None or not self.worlds_ok("queries matches the table", ws, 20):
            return
        bad = [w for w in ws if before[w["id"]] != w["randomNumber"]]
        self.check("queries matches the table", not bad,
                   f"answers differ from the table: {bad[:3]}")

    def test_cached(self):
        self.test_clamping("cached-queries", "count")
        ws = self.get_json("cached-queries repeat", "/cached-queries?count=500")
        if ws is not None and self.worlds_ok("cached-queries repeat", ws, 500):
            self.check("cached-queries ids random", len({w["id"] for w in ws}) > 400,
                       "fewer than 400 distinct ids among 500")

    def test_updates(self, before):
        self.test_clamping("updates", "queries")
        if before is None:
            self.skip("updates changed the rows", "no --dsn: cannot read the table back")
            return
        before = self.table()  # the clamping runs above updated rows too
        answered = {}
        for _ in range(5):
            ws = self.get_json("updates read back", "/updates?queries=20")
            if ws is None or not self.worlds_ok("updates read back", ws, 20):
                return
            for w in ws:
                answered[w["id"]] = w["randomNumber"]
        after = self.table()
        wrong = [(i, r, after[i]) for i, r in answered.items() if after[i] != r]
        self.check("updates: answers are the table's new values", not wrong,
                   f"(id, answered, table) {wrong[:3]} of {len(wrong)}")
        changed = sum(1 for i in answered if after[i] != before[i])
        # A new random value equals the old one with probability 1/10000.
        self.check("updates: drawn rows changed", changed >= len(answered) - 2,
                   f"only {changed} of {len(answered)} drawn rows changed")
        others = [i for i in before if i not in answered and before[i] != after[i]]
        self.check("updates: other rows untouched", not others,
                   f"{len(others)} rows that were not drawn changed, e.g. id {others[:3]}")

    def test_fortunes(self):
        status, headers, body = self.get("/fortunes")
        if not self.check_headers("fortunes", status, headers, HTML):
            return
        try:
            body.decode("utf-8")
            self.ok("fortunes valid UTF-8")
        except UnicodeDecodeError as e:
            self.fail("fortunes valid UTF-8", str(e))
        expected = expected_fortunes_page()
        if body == expected:
            self.ok("fortunes byte-exact")
        else:
            at = next((i for i in range(min(len(body), len(expected)))
                       if body[i] != expected[i]), min(len(body), len(expected)))
            self.fail("fortunes byte-exact",
                      f"{len(body)} bytes vs {len(expected)} expected, first difference at "
                      f"byte {at}: got {body[max(0, at - 30):at + 40]!r}, expected "
                      f"{expected[max(0, at - 30):at + 40]!r}")

    def test_date_changes(self):
        """The Date header follows the clock: over 2.5 s at least two distinct
        values, never going backwards, each within 2 s of the local clock."""
        dates = []
        end = time.time() + 2.5
        while time.time() < end:
            _, headers, _ = self.get("/plaintext")
            d = headers.get("date", [""])[0]
            try:
                t = email.utils.parsedate_to_datetime(d).timestamp()
            except (TypeError, ValueError):
                self.fail("Date changes per second", f"bad Date {d!r}")
                return
            if abs(t - time.time()) > 2.5:
                self.fail("Date changes per second", f"Date {d!r} is off the local clock")
                return
            dates.append(t)
            time.sleep(0.1)  # pacing the sampling of a clock, not synchronisation
        self.check("Date changes per second",
                   len(set(dates)) >= 2 and dates == sorted(dates),
                   f"Date values over 2.5 s: {sorted(set(dates))}")

    def test_pipelined(self):
        req = (f"GET /plaintext HTTP/1.1\r\nHost: {self.host}\r\n\r\n").encode()
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(req * 16)  # 16 requests in one write
            reader = s.makefile("rb")
            for k in range(16):
                try:
                    status, headers, body = read_response(reader)
                except (ValueError, OSError) as e:
                    self.fail("pipelined plaintext", f"response {k + 1} of 16: {e}")
                    return
                if status != 200 or body != b"Hello, World!" or \
                        headers.get("content-type") != [TEXT] or "date" not in headers \
                        or "server" not in headers:
                    self.fail("pipelined plaintext",
                              f"response {k + 1}: status {status}, body {body[:40]!r}, "
                              f"headers {headers}")
                    return
        self.ok("pipelined plaintext (16 in one write)")

    def test_concurrent(self, n=512):
        paths = ["/db", "/queries?queries=5", "/fortunes", "/json", "/plaintext",
                 "/cached-queries?count=5", "/updates?queries=2"]
        expected = {"/db": JSON, "/fortunes": HTML, "/json": JSON, "/plaintext": TEXT}

        async def one(k):
            path = paths[k % len(paths)]
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 30)
            except (OSError, asyncio.TimeoutError) as e:
                return f"connection {k}: connect: {e!r}"
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
                await writer.drain()
                status, headers, body = await asyncio.wait_for(read_response_async(reader), 60)
            except (OSError, ValueError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError) as e:
                return f"{path}: {e!r}"
            finally:
                writer.close()
            ctype = expected.get(path, JSON)
            if status != 200 or headers.get("content-type") != [ctype] or not body:
                return f"{path}: status {status}, Content-Type {headers.get('content-type')}"
            return None

        async def run():
            return await asyncio.gather(*(one(k) for k in range(n)))

        errors = [e for e in asyncio.run(run()) if e]
        self.check(f"{n} concurrent requests", not errors,
                   f"{len(errors)} failed, e.g. {errors[:3]}")

    def run(self):
        before = None
        if self.dsn:
            try:
                before = self.table()
                self.check("psql reads World", len(before) == 10000,
                           f"{len(before)} rows in World, expected 10000")
            except (OSError, subprocess.SubprocessError) as e:
                self.fail("psql reads World", str(e))
                before = None
        else:
            self.skip("db/queries match the table", "no --dsn")
        tests = [("json", self.test_json), ("plaintext", self.test_plaintext),
                 ("db", lambda: self.test_db(before)),
                 ("queries", lambda: self.test_clamping("queries", "queries")),
                 ("queries vs table", lambda: before and self.test_queries_match(before)),
                 ("fortunes", self.test_fortunes), ("cached-queries", self.test_cached),
                 ("updates", lambda: self.test_updates(before)),
                 ("Date", self.test_date_changes), ("pipelining", self.test_pipelined),
                 ("concurrency", self.test_concurrent)]
        for name, test in tests:
            try:
                test()
            except Exception as e:  # a hung or broken server fails the check, others go on
                self.fail(name, f"{type(e).__name__}: {e}")
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
        print(f"{self.passed} checks passed, {self.failures} failed")
        return 0 if self.failures == 0 else 1


def parse_head(lines):
    status_line = lines[0].decode("latin-1")
    m = re.fullmatch(r"HTTP/1\.[01] (\d{3}) ?.*", status_line)
    if not m:
        raise ValueError(f"bad status line {status_line!r}")
    headers = {}
    for line in lines[1:]:
        k, sep, v = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"bad header line {line!r}")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return int(m.group(1)), headers


def read_response(f):
    """One response from a blocking binary file: (status, headers, body)."""
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            raise ValueError("connection closed before the response")
        line = line.rstrip(b"\r\n")
        if not line:
            break
        lines.append(line)
    status, headers = parse_head(lines)
    if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            chunk = f.read(size + 2)[:size]
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            body += chunk
        return status, headers, body
    n = int(headers.get("content-length", ["0"])[0])
    body = f.read(n)
    if len(body) != n:
        raise ValueError("connection closed inside the body")
    return status, headers, body


async def read_response_async(r):
    lines = []
    while True:
        line = (await r.readline()).rstrip(b"\r\n")
        if not line:
            if not lines:
                raise ValueError("connection closed before the response")
            break
        lines.append(line)
    status, headers = parse_head(lines)
    if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        body = b""
        while True:
            size = int((await r.readline()).split(b";")[0], 16)
            if size == 0:
                while (await r.readline()) not in (b"\r\n", b""):
                    pass
                break
            body += (await r.readexactly(size + 2))[:size]
        return status, headers, body
    n = int(headers.get("content-length", ["0"])[0])
    return status, headers, await r.readexactly(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("--dsn", help="libpq connection string of the implementation's database")
    ap.add_argument("--psql", default="psql", help="psql client (default: psql on PATH)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print passing checks too")
    ap.add_argument("--print-fortunes", action="store_true",
                    help="print the expected fortunes page and exit")
    args = ap.parse_args()
    if args.print_fortunes:
        sys.stdout.buffer.write(expected_fortunes_page())
        return 0
    return Checker(args.base_url.rstrip("/"), args.dsn, args.psql, args.verbose).run()


if __name__ == "__main__":
    sys.exit(main())
