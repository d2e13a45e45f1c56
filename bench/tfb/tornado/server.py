#!/usr/bin/python3
"""bench/tfb/tornado/server.py - the TechEmpower (TFB) test types on Tornado
with asyncpg (Debian's python3-tornado and python3-asyncpg): the Tornado peer
of examples/tfb.

    server.py [--host ADDR] [--port N] [--dsn "host=... port=... dbname=..."] [--pool N]

One process, one asyncio loop (the benchmark gives every implementation one
worker). The rules followed are TFB's ("Framework Tests Overview");
tests/tfb/check.py checks them over HTTP.
"""
import argparse
import asyncio
import collections
import json
import random
import re
import shlex
import signal

import asyncpg
import tornado.httpserver
import tornado.template
import tornado.web

MAX_ROWS = 500
CACHE_SIZE = 10000
WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE = "UPDATE world SET randomnumber = $1 WHERE id = $2"
FORTUNES = "SELECT id, message FROM fortune"
ADDED = "Additional fortune added at request time."

# tornado.template escapes {{ }} with xhtml_escape: & < > " ' as
# &amp; &lt; &gt; &quot; &#39;.
PAGE = tornado.template.Template(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for f in fortunes %}<tr><td>{{ f[0] }}</td><td>{{ f[1] }}</td></tr>{% end %}"
    "</table></body></html>",
    compress_whitespace=False,
)


def row_count(value):
    """The queries/count parameter: missing, empty, not a number or < 1 -> 1; > 500 -> 500."""
    if value is None or not re.fullmatch(r"-?[0-9]+", value):
        return 1
    return max(1, min(MAX_ROWS, int(value)))


def random_id():
    return random.randint(1, 10000)


class Lru:
    """An LRU cache with eviction on an OrderedDict: a hit moves to the end,
    the oldest entry goes when the cache is full."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = collections.OrderedDict()

    def get(self, key):
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def set(self, key, value):
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)


class Base(tornado.web.RequestHandler):
    def set_default_headers(self):
        self.set_header("Server", "Tornado")

    def compute_etag(self):
        return None  # no ETag: TFB responses are not conditional

    @property
    def pool(self):
        return self.application.settings["pool"]

    def send_json(self, value):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value).encode())

    def count(self, name):
        return row_count(self.get_query_argument(name, None))


async def read_worlds(conn, n):
    worlds = []
    for _ in range(n):  # one statement per row, none of them in a transaction
        row = await conn.fetchrow(WORLD, random_id())
        worlds.append({"id": row[0], "randomNumber": row[1]})
    return worlds


class Json(Base):
    def get(self):
        self.send_json({"message": "Hello, World!"})


class Plaintext(Base):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.finish(b"Hello, World!")


class Db(Base):
    async def get(self):
        async with self.pool.acquire() as conn:
            worlds = await read_worlds(conn, 1)
        self.send_json(worlds[0])


class Queries(Base):
    async def get(self):
        async with self.pool.acquire() as conn:
            worlds = await read_worlds(conn, self.count("queries"))
        self.send_json(worlds)


class Updates(Base):
    async def get(self):
        async with self.pool.acquire() as conn:
            worlds = await read_worlds(conn, self.count("queries"))
            latest = {}
            for w in worlds:
                latest[w["id"]] = w["randomNumber"] = random_id()
            for w in worlds:  # a row drawn twice gets one new value
                w["randomNumber"] = latest[w["id"]]
            # One UPDATE per row (pipelined by executemany), ids in order.
            await conn.executemany(UPDATE, [(latest[i], i) for i in sorted(latest)])
        self.send_json(worlds)


class CachedQueries(Base):
    async def get(self):
        cache = self.application.settings["cache"]
        worlds = []
        for _ in range(self.count("count")):
            i = random_id()
            w = cache.get(i)
            if w is None:  # read-through
                row = await self.pool.fetchrow(WORLD, i)
                w = {"id": row[0], "randomNumber": row[1]}
                cache.set(i, w)
            worlds.append(w)
        self.send_json(worlds)


class Fortunes(Base):
    async def get(self):
        rows = [tuple(r) for r in await self.pool.fetch(FORTUNES)]
        rows.append((0, ADDED))
        rows.sort(key=lambda r: r[1])  # code point order = UTF-8 byte order
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(PAGE.generate(fortunes=rows))


def parse_dsn(dsn):
    """A libpq keyword/value connection string as asyncpg.connect() arguments."""
    names = {"host": "host", "port": "port", "dbname": "database", "user": "user",
             "password": "password"}
    out = {}
    for word in shlex.split(dsn):
        key, _, value = word.partition("=")
        if key in names:
            out[names[key]] = int(value) if key == "port" else value
    return out


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--dsn", default="")
    ap.add_argument("--pool", type=int, default=8)
    args = ap.parse_args()

    pool = await asyncpg.create_pool(min_size=args.pool, max_size=args.pool,
                                     **parse_dsn(args.dsn))
    app = tornado.web.Application(
        [(r"/json", Json), (r"/plaintext", Plaintext), (r"/db", Db), (r"/queries", Queries),
         (r"/updates", Updates), (r"/cached-queries", CachedQueries), (r"/fortunes", Fortunes)],
        pool=pool, cache=Lru(CACHE_SIZE), compress_response=False)
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(args.port, args.host, backlog=4096)
    server.add_sockets(sockets)
    host, port = sockets[0].getsockname()[:2]
    print(f"tornado-tfb: listening on http://{host}:{port}/", flush=True)

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    server.stop()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
