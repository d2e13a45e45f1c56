"""examples/static with real clients over loopback TCP: curl (--range, -z,
--compressed, HEAD, a 32 MiB download), Python's http.client for
keep-alive, conditionals and multipart ranges, 1,000 concurrent
downloads, traversal attempts sent raw, --listing, and headless Chromium
loading a page with images and seeking in a video: a WAV, and a WebM made
by ffmpeg at test time, read in ranges (skipped loudly when chromium or
ffmpeg is missing)."""
import concurrent.futures
import gzip
import hashlib
import math
import struct
import wave
import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from httptest import DEADLINE, Reader, Server, binary

H = b"Host: example.com\r\n"


def make_tree(root):
    os.makedirs(os.path.join(root, "img"))
    os.makedirs(os.path.join(root, "dir.html"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!DOCTYPE html><html><body><h1>static</h1>"
                "<img id=a src='img/a.png'><img id=b src='img/b.gif'>"
                "<video id=v src='v.webm' preload=auto></video></body></html>")
    # A 1x1 PNG and GIF, valid enough for a browser to decode.
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                        "0000000d4944415478da63f8cfc0f01f0005000201a0f5a2c10000000049454e44ae426082")
    gif = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
    with open(os.path.join(root, "img", "a.png"), "wb") as f:
        f.write(png)
    with open(os.path.join(root, "img", "b.gif"), "wb") as f:
        f.write(gif)
    data = os.urandom(1 << 20)
    with open(os.path.join(root, "1m.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(root, "32m.bin"), "wb") as f:
        for i in range(32):
            f.write(hashlib.sha256(b"%d" % i).digest() * 32768)
    text = b"hello static world\n" * 500
    with open(os.path.join(root, "t.txt"), "wb") as f:
        f.write(text)
    with open(os.path.join(root, "t.txt.gz"), "wb") as f:
        f.write(gzip.compress(text))
    with open(os.path.join(root, ".secret"), "w") as f:
        f.write("no")
    with open(os.path.join(root, "a&b<c>.txt"), "w") as f:
        f.write("x")
    os.symlink("/etc", os.path.join(root, "etc"))
    return data


class Static(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = cls.tmp.name
        cls.data = make_tree(cls.root)
        cls.logs = tempfile.TemporaryDirectory()
        cls.access_log = os.path.join(cls.logs.name, "access.log")
        cls.server = Server("static", "--root", cls.root, "--access-log", cls.access_log)
        cls.url = "http://127.0.0.1:%d" % cls.server.port

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0
        cls.tmp.cleanup()
        cls.logs.cleanup()

    def curl(self, *args):
        out = subprocess.run(["curl", "-sS", "--max-time", str(DEADLINE), *args],
                             capture_output=True, timeout=DEADLINE * 2)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_range_conditional_and_compressed(self):
        self.assertEqual(self.curl("--range", "100-199", self.url + "/1m.bin"), self.data[100:200])
        self.assertEqual(self.curl("--range", "-10", self.url + "/1m.bin"), self.data[-10:])
        code = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-z", "Fri, 01 Jan 2100 00:00:00 GMT",
                         self.url + "/1m.bin")
        self.assertEqual(code, b"304")
        code = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-z", "Thu, 01 Jan 1970 00:00:00 GMT",
                         self.url + "/1m.bin")
        self.assertEqual(code, b"200")
        body = self.curl("--compressed", "-D", "-", self.url + "/t.txt")
        head, _, body = body.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nContent-Encoding: gzip", head)
        self.assertIn(b"\r\nVary: Accept-Encoding", head)
        self.assertEqual(body, b"hello static world\n" * 500)
        head = self.curl("-I", self.url + "/1m.bin")
        self.assertIn(b"Content-Length: 1048576\r\n", head)
        self.assertIn(b"Accept-Ranges: bytes\r\n", head)
        big = self.curl(self.url + "/32m.bin")
        with open(os.path.join(self.root, "32m.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(big).digest(), hashlib.sha256(f.read()).digest())

    def test_keepalive_conditionals_and_multipart(self):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=DEADLINE)
        c.request("GET", "/1m.bin")
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, self.data))
        etag = r.getheader("ETag")
        self.assertRegex(etag, r'^"[^"]+"$')
        c.request("GET", "/1m.bin", headers={"If-None-Match": etag})
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (304, b""))
        c.request("GET", "/1m.bin", headers={"Range": "bytes=0-9,20-29", "If-Range": etag})
        r = c.getresponse()
        self.assertEqual(r.status, 206)
        ctype = r.getheader("Content-Type")
        self.assertTrue(ctype.startswith("multipart/byteranges; boundary="))
        body = r.read()
        b = ctype.split("=", 1)[1].encode()
        self.assertEqual(body.count(b"--" + b), 3)
        self.assertIn(b"Content-Range: bytes 0-9/1048576\r\n\r\n" + self.data[0:10], body)
        self.assertIn(b"Content-Range: bytes 20-29/1048576\r\n\r\n" + self.data[20:30], body)
        c.close()

    def test_traversal_attempts_are_refused(self):
        cases = [(b"/../etc/passwd", 400), (b"/%2e%2e/%2e%2e/etc/passwd", 400), (b"/img%2f..%2f..%2fx", 404),
                 (b"/etc/passwd", 403), (b"/.secret", 403), (b"/img/..%5c..%5cx", 400),
                 (b"/t.txt%00.png", 400), (b"//t.txt", 200), (b"/dir.html", 301), (b"/img/", 403)]
        for target, status in cases:
            s = self.server.connect()
            s.sendall(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
            r = Reader(s).response()
            self.assertEqual(r.status, status, target)
            self.assertNotIn(b"root:", r.body)
            s.close()

    def test_1000_concurrent_downloads(self):
        n = 1000

        def download(i):
            s = socket.create_connection(("127.0.0.1", self.server.port), timeout=60)
            s.sendall(b"GET /1m.bin HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
            chunks = []
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                chunks.append(b)
            s.close()
            raw = b"".join(chunks)
            head, _, body = raw.partition(b"\r\n\r\n")
            return head.split(b" ")[1], hashlib.sha256(body).digest()

        want = hashlib.sha256(self.data).digest()
        socks = []
        # Open all first, so that they really are concurrent.
        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as ex:
            results = list(ex.map(download, range(n)))
        for st, digest in results:
            self.assertEqual(st, b"200")
            self.assertEqual(digest, want)
        del socks

    def test_listing(self):
        with Server("static", "--root", self.root, "--listing") as srv:
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            r = Reader(s).response()
            self.assertEqual(r.status, 200)  # index.html
            s.sendall(b"GET /img/ HTTP/1.1\r\n" + H + b"\r\n")
            r = Reader(s).response()
            self.assertEqual(r.status, 200)
            self.assertIn(b'<a href="a.png">a.png</a>', r.body)
            os.makedirs(os.path.join(self.root, "l"), exist_ok=True)
            with open(os.path.join(self.root, "l", "a&b<c>.txt"), "w") as f:
                f.write("x")
            s.sendall(b"GET /l/ HTTP/1.1\r\n" + H + b"\r\n")
            r = Reader(s).response()
            self.assertIn(b"a&amp;b&lt;c&gt;.txt", r.body)
            self.assertNotIn(b"<c>", r.body)

    @unittest.skipUnless(os.geteuid() != 0 or shutil.which("runuser"), "SKIP: root without runuser")
    def test_unreadable_file_is_403(self):
        # Permissions do not apply to root: run the server as nobody then.
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            for name, mode in (("ok.txt", 0o644), ("locked.txt", 0o000)):
                with open(os.path.join(d, name), "w") as f:
                    f.write("x")
                os.chmod(os.path.join(d, name), mode)
            cmd = [binary("static"), "--host", "127.0.0.1", "--port", "0", "--root", d]
            if os.geteuid() == 0:
                cmd = ["runuser", "-u", "nobody", "--"] + cmd
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                m = re.search(r"http://[^ ]*:(\d+)/", proc.stdout.readline())
                self.assertTrue(m, proc.stderr.read() if proc.poll() is not None else "no startup line")
                c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=DEADLINE)
                for path, status in (("/ok.txt", 200), ("/locked.txt", 403), ("/none", 404)):
                    c.request("GET", path)
                    r = c.getresponse()
                    r.read()
                    self.assertEqual(r.status, status, path)
                c.close()
            finally:
                proc.terminate()
                rc = proc.wait(timeout=DEADLINE)
                if os.geteuid() != 0:  # runuser itself dies of the SIGTERM it passes on
                    self.assertEqual(rc, 0)
                proc.stdout.close()
                proc.stderr.close()

    def chromium_dom(self, path):
        """The page's DOM once headless Chromium has played its media. Chromium's virtual
        time does not wait for the media pipeline: on a loaded machine the page can be dumped
        before its media events came (its output still "pending"). Only that outcome is tried
        again, at most twice; any other (an error, a wrong position) goes to the caller."""
        for _ in range(3):
            with tempfile.TemporaryDirectory() as profile:
                out = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                      "--user-data-dir=" + profile, "--virtual-time-budget=15000",
                                      "--dump-dom", self.url + path],
                                     capture_output=True, text=True, timeout=120)
            if '<pre id="out">pending</pre>' not in out.stdout:
                break
        return out

    @unittest.skipUnless(shutil.which("chromium"), "SKIP: chromium not installed")
    def test_chromium_loads_images_and_seeks_a_video(self):
        # Chromium fetches media with Range requests; a seek past what it has
        # buffered asks for a later range. 30 s of 8 kHz WAV is 480 KB.
        w = wave.open(os.path.join(self.root, "v.wav"), "wb")
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(8000 * 30)))
        w.close()
        with open(os.path.join(self.root, "page.html"), "w") as f:
            f.write("""<!DOCTYPE html><html><body><img id=a src='img/a.png'><img id=b src='img/b.gif'>
<video id=v src='v.wav' preload=auto></video><pre id=out>pending</pre><script>
var v = document.getElementById('v'), out = document.getElementById('out');
v.addEventListener('loadedmetadata', function () { v.currentTime = 25; });
v.addEventListener('seeked', function () {
  var a = document.getElementById('a'), b = document.getElementById('b');
  out.textContent = 'seeked ' + Math.round(v.currentTime) + ' of ' + Math.round(v.duration) +
    ' images ' + a.naturalWidth + 'x' + a.naturalHeight + ' ' + b.naturalWidth + 'x' + b.naturalHeight;
});
v.addEventListener('error', function () { out.textContent = 'video error ' + v.error.code; });
</script></body></html>""")
        out = self.chromium_dom("/page.html")
        self.assertIn('<pre id="out">seeked 25 of 30 images 1x1 1x1</pre>', out.stdout, out.stderr[-2000:])


    @unittest.skipUnless(shutil.which("chromium"), "SKIP: chromium not installed")
    @unittest.skipUnless(shutil.which("ffmpeg"), "SKIP: ffmpeg not installed (tests/install-deps.sh)")
    def test_chromium_seeks_a_webm_video(self):
        # A real video (VP8 in WebM, made here by ffmpeg: 30 s, a key frame a
        # second, a few hundred KB, so its bytes go with sendfile), played by
        # Chromium, which reads it with Range requests and seeks near its end.
        video = os.path.join(self.root, "clip.webm")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "testsrc=duration=30:size=160x120:rate=10", "-c:v", "libvpx",
                        "-b:v", "100k", "-g", "10", video], check=True, timeout=120)
        self.assertGreater(os.path.getsize(video), 64 * 1024)
        with open(os.path.join(self.root, "video.html"), "w") as f:
            f.write("""<!DOCTYPE html><html><body>
<video id=v src='clip.webm' preload=auto muted></video><pre id=out>pending</pre><script>
var v = document.getElementById('v'), out = document.getElementById('out'), seeks = 0;
v.addEventListener('loadedmetadata', function () { v.currentTime = 27; });
v.addEventListener('seeked', function () {
  if (++seeks == 1) { v.currentTime = 3; return; }
  out.textContent = 'seeked ' + Math.round(v.currentTime) + ' of ' + Math.round(v.duration) +
    ' size ' + v.videoWidth + 'x' + v.videoHeight;
});
v.addEventListener('error', function () { out.textContent = 'video error ' + v.error.code; });
</script></body></html>""")
        out = self.chromium_dom("/video.html")
        self.assertIn('<pre id="out">seeked 3 of 30 size 160x120</pre>', out.stdout, out.stderr[-2000:])
        # It did read the video in ranges (206), at least once past the start.
        deadline = time.monotonic() + DEADLINE
        while True:
            with open(self.access_log) as f:
                lines = [l for l in f if "/clip.webm" in l]
            if any('" 206 ' in l for l in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # the log line is written after the response, by the server process
        self.assertTrue(any('" 206 ' in l for l in lines), "".join(lines))


if __name__ == "__main__":
    unittest.main()
