// bench/tfb/node/server.js - the TechEmpower (TFB) test types on Node.js's
// http module and the npm "pg" package: the Node peer of examples/tfb.
//
//   node server.js [--host ADDR] [--port N] [--dsn "host=... port=... dbname=..."] [--pool N]
//
// One process, one event loop (the benchmark gives every implementation one
// worker). "pg" is installed by bench/tfb/run.sh into bench/tfb/.deps
// (NODE_PATH), never committed. The rules followed are TFB's ("Framework
// Tests Overview"); tests/tfb/check.py checks them over HTTP.
'use strict';

const http = require('http');
const { Pool } = require('pg');

const args = { host: '127.0.0.1', port: 8080, dsn: '', pool: 8 };
for (let i = 2; i < process.argv.length; i += 2) {
    const key = process.argv[i].replace(/^--/, '');
    if (!(key in args) || i + 1 >= process.argv.length) {
        console.error(`usage: node server.js [--host ADDR] [--port N] [--dsn DSN] [--pool N]`);
        process.exit(2);
    }
    args[key] = process.argv[i + 1];
}

// A libpq keyword/value connection string ("host=h port=p dbname=d ...") as a pg config.
function parseDsn(dsn) {
    const names = { host: 'host', port: 'port', dbname: 'database', user: 'user', password: 'password' };
    const config = {};
    for (const m of dsn.matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g)) {
        let value = m[2];
        if (value.startsWith("'"))
            value = value.slice(1, -1).replace(/\\(.)/g, '$1');
        if (names[m[1]])
            config[names[m[1]]] = value;
    }
    return config;
}

const pool = new Pool({ ...parseDsn(args.dsn), max: Number(args.pool) });

const SERVER = 'Node';
const WORLD = { name: 'world', text: 'SELECT id, randomnumber FROM world WHERE id = $1' };
const FORTUNES = { name: 'fortunes', text: 'SELECT id, message FROM fortune' };
const MAX_ROWS = 500;
const CACHE_SIZE = 10000;

function randomId() {
    return 1 + Math.floor(Math.random() * 10000);
}

// The queries/count parameter: missing, empty, not a number or < 1 -> 1; > 500 -> 500.
function rowCount(value) {
    if (value === null || !/^-?[0-9]+$/.test(value))
        return 1;
    const n = Number(value);
    return n < 1 ? 1 : n > MAX_ROWS ? MAX_ROWS : n;
}

async function readWorld(id) {
    const { rows } = await pool.query({ ...WORLD, values: [id] });
    return { id: rows[0].id, randomNumber: rows[0].randomnumber };
}

function readWorlds(n) {
    const reads = [];
    for (let i = 0; i < n; i++)
        reads.push(readWorld(randomId()));
    return Promise.all(reads); // one statement per row, each on its own
}

// One bulk UPDATE per request, ids in order (the same lock order in every
// request); a row drawn twice gets one new value, so the answer matches the table.
async function updateWorlds(worlds) {
    const latest = new Map();
    for (const w of worlds) {
        w.randomNumber = randomId();
        latest.set(w.id, w.randomNumber);
    }
    for (const w of worlds)
        w.randomNumber = latest.get(w.id);
    const ids = [...latest.keys()].sort((a, b) => a - b);
    const values = [];
    const rows = [];
    ids.forEach((id, i) => {
        rows.push(`($${2 * i + 1}::int, $${2 * i + 2}::int)`);
        values.push(id, latest.get(id));
    });
    await pool.query({
        name: `update${ids.length}`,
        text: 'UPDATE world SET randomnumber = v.r FROM (VALUES ' + rows.join(', ') +
            ') AS v (id, r) WHERE world.id = v.id',
        values,
    });
    return worlds;
}

// An LRU cache with eviction: a Map keeps insertion order, a hit moves the
// entry to the end, the oldest entry goes when the cache is full.
class Lru {
    constructor(capacity) {
        this.capacity = capacity;
        this.map = new Map();
    }
    get(key) {
        const value = this.map.get(key);
        if (value !== undefined) {
            this.map.delete(key);
            this.map.set(key, value);
        }
        return value;
    }
    set(key, value) {
        this.map.delete(key);
        if (this.map.size >= this.capacity)
            this.map.delete(this.map.keys().next().value);
        this.map.set(key, value);
    }
}

const cache = new Lru(CACHE_SIZE);

async function cachedWorld(id) {
    let world = cache.get(id);
    if (world === undefined) { // read-through
        world = await readWorld(id);
        cache.set(id, world);
    }
    return world;
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(s) {
    return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

async function fortunesPage() {
    const { rows } = await pool.query(FORTUNES);
    rows.push({ id: 0, message: 'Additional fortune added at request time.' });
    // Code-unit order, which is byte order for text without astral characters.
    rows.sort((a, b) => (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
    let html = '<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>' +
        '<tr><th>id</th><th>message</th></tr>';
    for (const f of rows)
        html += `<tr><td>${f.id}</td><td>${escapeHtml(f.message)}</td></tr>`;
    return html + '</table></body></html>';
}

function send(res, type, body) {
    res.writeHead(200, {
        'Content-Type': type,
        'Content-Length': Buffer.byteLength(body),
        Server: SERVER,
    });
    res.end(body);
}

function json(res, value) {
    send(res, 'application/json', JSON.stringify(value));
}

function fail(res, err) {
    console.error(err);
    if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain', Server: SERVER });
        res.end('Internal Server Error');
    }
}

async function route(req, res) {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    switch (path) {
    case '/json':
        return json(res, { message: 'Hello, World!' });
    case '/plaintext':
        return send(res, 'text/plain', 'Hello, World!');
    case '/db':
        return json(res, await readWorld(randomId()));
    case '/queries':
        return json(res, await readWorlds(rowCount(params.get('queries'))));
    case '/updates':
        return json(res, await updateWorlds(await readWorlds(rowCount(params.get('queries')))));
    case '/cached-queries': {
        const n = rowCount(params.get('count'));
        const worlds = [];
        for (let i = 0; i < n; i++)
            worlds.push(cachedWorld(randomId()));
        return json(res, await Promise.all(worlds));
    }
    case '/fortunes':
        return send(res, 'text/html; charset=utf-8', await fortunesPage());
    default:
        res.writeHead(404, { 'Content-Type': 'text/plain', Server: SERVER });
        return res.end('Not Found');
    }
}

const server = http.createServer((req, res) => {
    route(req, res).catch((err) => fail(res, err));
});
server.keepAliveTimeout = 75000;
server.listen(Number(args.port), args.host, () => {
    const { address, port } = server.address();
    console.log(`node-tfb: listening on http://${address}:${port}/`);
});

function stop() {
    server.close();
    server.closeAllConnections();
    pool.end().finally(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
