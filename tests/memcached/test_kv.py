"""examples/kv end to end against real stores it starts itself: memcached
(always) and Redis (when kv was built with it and redis-server exists).

PUT/GET/DELETE with keys of any bytes (percent-encoded), 404, 400 for keys
no store can take, 405, 503 with a reason within two seconds while the
store is down, and recovery without restarting kv when it comes back.
Servers are started on free loopback ports in temporary directories and
stopped by PID; waits poll with deadlines.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

DEADLINE = 10.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_accepting(port, proc):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)  # another process's readiness, polled with a deadline
    raise RuntimeError("server on %d did not start" % port)


class Store:
    """A real memcached or redis-server on a free port, restartable."""

    def __init__(self, kind):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="hp-kv-")
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        if self.kind == "redis":
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.dir]
        else:
            cmd = ["memcached", "-p", str(self.port), "-l", "127.0.0.1", "-U", "0",
                   "-u", "root"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.dir)
        wait_accepting(self.port, self.proc)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Kv:
    def __init__(self, flag, addr):
        self.proc = subprocess.Popen(
            [os.environ["HP_KV"], flag, addr, "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[^ ]*:(\d+)/", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("kv did not start: %r %r" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def request(self, method, key, body=None, raw_path=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        path = raw_path if raw_path is not None else "/kv/" + urllib.parse.quote(key, safe="")
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=DEADLINE)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
        return rc


class KvCases:
    kind = None
    flag = None

    def setUp(self):
        if shutil.which(self.binary) is None:
            print("\n*** SKIPPED: %s not found; install it to run these tests ***" % self.binary,
                  file=sys.stderr)
            self.skipTest(self.binary + " missing")
        self.store = Store(self.kind)
        self.kv = Kv(self.flag, "127.0.0.1:%d" % self.store.port)

    def tearDown(self):
        rc = self.kv.stop()
        self.store.close()
        self.assertEqual(rc, 0)

    def test_put_get_delete(self):
        for key in ["plain", "with space", "slash/inside", "\u00e9t\u00e9", "%"]:
            k = key.encode()
            value = b"value of " + k + b"\x00\r\n\xff"
            self.assertIn(self.kv.request("PUT", key, body=value)[0], (200, 201, 204))
            self.assertEqual(self.kv.request("GET", key), (200, value))
            self.assertIn(self.kv.request("DELETE", key)[0], (200, 204))
            self.assertEqual(self.kv.request("GET", key)[0], 404)
        # binary key bytes, percent-encoded by hand
        status, _ = self.kv.request("PUT", None, body=b"bin", raw_path="/kv/%00%01%ff%20")
        self.assertIn(status, (200, 201, 204))
        self.assertEqual(self.kv.request("GET", None, raw_path="/kv/%00%01%ff%20"), (200, b"bin"))
        # an empty value is a value
        self.assertIn(self.kv.request("PUT", "empty", body=b"")[0], (200, 201, 204))
        self.assertEqual(self.kv.request("GET", "empty"), (200, b""))

    def test_bad_requests(self):
        self.assertEqual(self.kv.request("GET", None, raw_path="/kv/")[0], 400)
        self.assertEqual(self.kv.request("GET", None, raw_path="/kv/%zz")[0], 400)
        self.assertEqual(self.kv.request("POST", "k", body=b"x")[0], 405)
        self.assertEqual(self.kv.request("GET", None, raw_path="/other")[0], 404)

    def test_store_down_and_back(self):
        self.assertIn(self.kv.request("PUT", "k", body=b"1")[0], (200, 201, 204))
        self.store.kill()
        t = time.monotonic()
        status, body = self.kv.request("GET", "k")
        self.assertEqual(status, 503)
        self.assertTrue(body.startswith(b"store"), body)
        self.assertLess(time.monotonic() - t, 2.0)
        # still 503, quickly, while it stays down
        t = time.monotonic()
        self.assertEqual(self.kv.request("PUT", "k", body=b"2")[0], 503)
        self.assertLess(time.monotonic() - t, 2.0)
        self.store.start()
        end = time.monotonic() + DEADLINE
        while True:
            status, _ = self.kv.request("PUT", "k", body=b"3")
            if status != 503 or time.monotonic() > end:
                break
            time.sleep(0.05)  # the client reconnects on its own schedule
        self.assertIn(status, (200, 201, 204))
        self.assertEqual(self.kv.request("GET", "k"), (200, b"3"))


class Memcached(KvCases, unittest.TestCase):
    kind = "memcached"
    flag = "--memcached"
    binary = "memcached"

    def test_key_limits(self):
        self.assertIn(self.kv.request("PUT", "k" * 250, body=b"x")[0], (200, 201, 204))
        self.assertEqual(self.kv.request("PUT", "k" * 251, body=b"x")[0], 400)
        self.assertIn(self.kv.request("PUT", " " * 186, body=b"x")[0], (200, 201, 204))
        self.assertEqual(self.kv.request("PUT", " " * 187, body=b"x")[0], 400)


class Redis(KvCases, unittest.TestCase):
    kind = "redis"
    flag = "--redis"
    binary = "redis-server"

    def setUp(self):
        if os.environ.get("HP_KV_REDIS") != "1":
            self.skipTest("kv built without Redis support (hiredis missing)")
        super().setUp()


if __name__ == "__main__":
    unittest.main()
