"""Fault injection against the inspection service over real HTTP on 127.0.0.1 (issue #13): broken model folders,
oversize pixel batches, a full queue, rejected and endless bodies, slow-loris sockets, API keys, offline docs.
Every case must be a clean JSON 4xx/503 or a one-line CLI error, and the service must answer normally afterwards.
Every loop here is bounded in count and in time."""
import json, os, re, select, socket, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np, httpx, pytest
from api_support import (Server, tiny_patchcore_folder, poison_score, serve_cmd, app_cmd, png_bytes, large_png, rss_mb)
from defect_twin.core import sample_path
from defect_twin.tracking import free_port

DETECT, BATCH = "/api/v1/detect", "/api/v1/detect/batch"
GOOD = (sample_path()/"test"/"good"/"000.png").read_bytes()
TIGHT = dict(workers=2, header_timeout_s=2.0, body_timeout_s=3.0, keep_alive_s=2.0, max_request_mb=8.0, max_file_mb=4.0,
             max_pixels=20_000_000, max_request_pixels=24_000_000, max_inflight_pixels=30_000_000, large_pixels=1_000_000,
             max_queue=4, queue_timeout_s=1.0)

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_patchcore_folder(tmp_path_factory.mktemp("faults")/"model").path

@pytest.fixture(scope="module")
def server(model_dir):
    with Server(model_dir, **TIGHT) as s: yield s

def still_serves(s):
    "The service answers a good image with a verdict, and its process is alive."
    r = httpx.post(s.url + DETECT, files={"file": ("good.png", GOOD, "image/png")}, timeout=30, headers=s.headers)
    assert r.status_code == 200 and r.json()["label"] in ("good", "defect"), r.text
    assert s.alive()

def json_error(r, *statuses):
    "Assert `r` is one of `statuses` with a JSON body that has a non-empty `detail`; return the detail."
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert r.json()["detail"], r.text
    return r.json()["detail"]

def chunk(t, d):
    import struct, zlib
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

def real_black_png(w, h) -> bytes:
    "A valid all-black RGB PNG of w x h pixels (compresses to ~0.3 % of its pixel bytes)."
    import struct, zlib
    z, row = zlib.compressobj(9), b"\0" * (1 + 3 * w)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", data) + chunk(b"IEND", b"")

def run_serve(cmd, timeout=90, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})

# ---- broken model folders: never "good" --------------------------------------------------------------------

@pytest.fixture(scope="module")
def nan_threshold_dir(model_dir, tmp_path_factory):
    import shutil
    d = tmp_path_factory.mktemp("nan_thr")/"model"; shutil.copytree(model_dir, d)
    (d/"threshold.json").write_text('{"value": NaN, "rule": "broken training run", "score": "image anomaly score"}')
    from defect_twin.core import ModelFolder
    ModelFolder(d).seal("threshold.json", by="test: a broken training run")   # as written by a faulty trainer, not by hand
    return d

def test_nan_threshold_serve_exits_nonzero(nan_threshold_dir):
    out = run_serve(serve_cmd(nan_threshold_dir, free_port()))
    assert out.returncode != 0, out
    last = out.stderr.strip().splitlines()[-1]
    assert "cannot serve" in last and "nan" in last.lower(), out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]

def test_nan_threshold_app_is_not_ready_and_gives_no_verdict(nan_threshold_dir):
    port = free_port(); url = f"http://127.0.0.1:{port}"
    p = subprocess.Popen(app_cmd(nan_threshold_dir, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, r = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(url + "/ready", timeout=2)
                if r.status_code == 503 and "loading" not in r.text: break
            except httpx.TransportError: pass
            time.sleep(0.2)
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        detail = json_error(r, 503)
        assert "nan" in detail.lower() and str(nan_threshold_dir) not in detail, detail
        r = httpx.post(url + DETECT, files={"file": ("good.png", GOOD, "image/png")}, timeout=30)
        json_error(r, 503)
        assert '"good"' not in r.text
    finally:
        p.terminate(); p.wait(15)

def test_graph_that_outputs_nan_is_refused_at_load(model_dir, tmp_path):
    d = poison_score(model_dir, tmp_path/"nan_graph", when="always")
    out = run_serve(serve_cmd(d, free_port()))
    assert out.returncode != 0, out
    last = out.stderr.strip().splitlines()[-1]
    assert "cannot serve" in last and "nan" in last.lower(), out.stderr[-2000:]

def test_graph_nan_on_some_images_gives_503_not_good(model_dir, tmp_path):
    d = poison_score(model_dir, tmp_path/"dark_nan", when="dark")
    black = png_bytes(np.zeros((64, 64, 3), np.uint8))
    with Server(d, workers=1) as s:
        for _ in range(3):
            r = httpx.post(s.url + DETECT, files={"file": ("black.png", black, "image/png")}, timeout=30)
            detail = json_error(r, 503)
            assert "nan" in detail.lower() and '"good"' not in r.text, detail
            r = httpx.post(s.url + BATCH, files=[("files", ("a.png", GOOD, "image/png")), ("files", ("black.png", black, "image/png"))], timeout=30)
            json_error(r, 503)
        still_serves(s)
        assert "Traceback" not in s.output()

# ---- pixels, queue and memory --------------------------------------------------------------------------------

def test_issue_batch_of_16_x_40_megapixels_is_413_before_decoding(model_dir):
    "The issue's case, with the default limits: 16 x 40 MP real PNGs (~2 MB of body) must not cost GBs."
    bomb = real_black_png(6320, 6320)                       # 39.9 MP each
    with Server(model_dir) as s:
        before = rss_mb(s.proc.pid)
        t0 = time.perf_counter()
        r = httpx.post(s.url + BATCH, files=[("files", (f"{i}.png", bomb, "image/png")) for i in range(16)], timeout=60)
        took = time.perf_counter() - t0
        detail = json_error(r, 413)
        assert "pixels per request" in detail, detail
        grew = rss_mb(s.proc.pid) - before
        print(f"16 x 40 MP batch ({16*len(bomb)/2**20:.1f} MB body): 413 in {took*1e3:.0f} ms, RSS grew {grew:.0f} MB")
        assert took < 10 and grew < 300, (took, grew)
        r = httpx.post(s.url + DETECT, files={"file": ("one.png", bomb, "image/png")}, timeout=60)    # one 40 MP image: served
        assert r.status_code == 200, r.text[:300]
        still_serves(s)

def test_oversize_pixels_per_image_and_per_request(server):
    big = real_black_png(5000, 5000)                        # 25 MP > max_pixels 20 MP
    r = httpx.post(server.url + DETECT, files={"file": ("big.png", big, "image/png")}, timeout=60)
    assert "pixels per image" in json_error(r, 413)
    mid = real_black_png(3000, 3000)                        # 9 MP each, 27 MP together > 24 MP per request
    r = httpx.post(server.url + BATCH, files=[("files", (f"{i}.png", mid, "image/png")) for i in range(3)], timeout=60)
    assert "pixels per request" in json_error(r, 413)
    still_serves(server)

def test_queue_full_is_429_json_and_nothing_is_lost(server):
    img = large_png(1500)                                   # 2.25 MP: over large_pixels, runs in the large lane
    files = [("files", (f"{i}.png", img, "image/png")) for i in range(4)]    # 9 MP per request
    def one(i):
        r = httpx.post(server.url + BATCH, files=files, timeout=60)
        return r.status_code, r.headers.get("retry-after"), r.headers.get("content-type", ""), r.text
    with ThreadPoolExecutor(16) as ex: res = list(ex.map(one, range(16)))
    codes = [c for c, *_ in res]
    print("16 concurrent 9 MP batches against max_queue=4:", {c: codes.count(c) for c in set(codes)})
    assert set(codes) <= {200, 429, 503}, codes
    assert codes.count(429) >= 1 and codes.count(200) >= 1, codes
    for c, ra, ct, text in res:
        assert ct.startswith("application/json"), (c, text[:200])
        if c in (429, 503): assert ra and json.loads(text)["detail"], (c, ra, text)
        else: assert json.loads(text)["count"] == 4
    info = httpx.get(server.url + "/api/v1/model", timeout=10).json()["service"]
    assert info["in_service"] == 0 and info["rejected_busy"]["429"] >= 1, info
    still_serves(server)

def test_small_requests_not_starved_by_large_ones(server):
    "Small requests run on their own pools while large batches occupy the large lane."
    img = large_png(1800)
    files = [("files", (f"{i}.png", img, "image/png")) for i in range(4)]   # 13 MP (6.8 MB) per request
    stop, small = time.monotonic() + 8, []
    def big_client(_):
        n = 0
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < stop and n < 20:
                assert c.post(server.url + BATCH, files=files).status_code in (200, 429, 503); n += 1
    with ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(big_client, i) for i in range(2)]
        time.sleep(1.0)
        with httpx.Client(timeout=30) as c:
            while time.monotonic() < stop - 1 and len(small) < 200:
                t0 = time.perf_counter()
                assert c.post(server.url + DETECT, files={"file": ("s.png", GOOD, "image/png")}).status_code == 200
                small.append(time.perf_counter() - t0)
        for f in futs: f.result()
    p95 = float(np.percentile(small, 95))
    print(f"small requests beside two clients sending 13 MP batches: n={len(small)}, p50 {np.median(small)*1e3:.0f} ms, p95 {p95*1e3:.0f} ms")
    assert len(small) >= 5 and p95 < 2.0, p95

# ---- bodies and connections ----------------------------------------------------------------------------------

def _read_response(sock, budget_s):
    "Bytes the server sent until it closed the socket or `budget_s` passed; and whether it closed."
    sock.settimeout(0.2); data, t0 = b"", time.monotonic()
    while time.monotonic() - t0 < budget_s:
        try: b = sock.recv(65536)
        except socket.timeout: continue
        except (ConnectionResetError, BrokenPipeError): return data, True
        if not b: return data, True
        data += b
    return data, False

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_413_closes_the_connection(server, framing):
    "An oversize upload gets a JSON 413 and the connection is closed: the server stops reading the body."
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    head = ("POST /api/v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n" +
            ("Content-Length: 1000000000\r\n" if framing == "content-length" else "Transfer-Encoding: chunked\r\n") + "\r\n")
    enc = (lambda b: b) if framing == "content-length" else (lambda b: b"%x\r\n" % len(b) + b + b"\r\n")
    s.sendall(head.encode() + enc(b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n"))
    piece = enc(b"\0" * 65536)
    sent, got, t0, closed = 0, b"", time.monotonic(), False
    s.settimeout(5)
    while time.monotonic() - t0 < 15 and sent < 200 * 2**20:          # at most 15 s and 200 MB
        try: s.sendall(piece); sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, socket.timeout): closed = True; break
        if not select.select([s], [], [], 0.002)[0]: continue        # nothing from the server yet
        try:
            b = s.recv(65536)
            if not b: closed = True; break
            got += b
        except ConnectionResetError: closed = True; break
    try:                                                              # what the server said before it closed
        more, c2 = _read_response(s, 5); got += more; closed = closed or c2
    except OSError: pass
    s.close()
    head_txt = got.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    print(f"{framing}: {sent/2**20:.1f} MB in {time.monotonic() - t0:.1f} s")
    print(f"{framing}: sent {sent/2**20:.1f} MB before the server closed; answer: {head_txt.splitlines()[:1]}")
    assert head_txt.startswith("http/1.1 413"), got[:300]
    assert "connection: close" in head_txt and "application/json" in head_txt, head_txt
    assert b'"detail"' in got
    assert closed, "the server kept the connection open after its 413"
    assert sent < 64 * 2**20, f"the server read {sent/2**20:.0f} MB after refusing the body"
    still_serves(server)

def test_slow_loris_sockets_are_dropped(server):
    "Sockets that trickle their headers are closed after header_timeout_s (2 s here); the service answers meanwhile."
    socks = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"POST /api/v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\n"); socks.append(s)
    t0, open_ = time.monotonic(), set(range(len(socks)))
    still_serves(server)                                            # not blocked by 100 slow sockets
    while open_ and time.monotonic() - t0 < 10:                     # bounded: 10 s
        for i in list(open_):
            try:
                socks[i].sendall(b"X")                              # one header byte at a time
                socks[i].setblocking(False)
                try:
                    if socks[i].recv(1024) == b"": open_.discard(i)
                except BlockingIOError: pass
                finally: socks[i].setblocking(True)
            except (BrokenPipeError, ConnectionResetError, OSError): open_.discard(i)
        time.sleep(0.3)
    took = time.monotonic() - t0
    for s in socks: s.close()
    print(f"100 slow-loris sockets: {100 - len(open_)} closed by the server within {took:.1f} s")
    assert not open_, f"{len(open_)} slow sockets still open after {took:.1f} s"
    still_serves(server)

def test_slow_body_gets_408_and_close(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST /api/v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 100000\r\n\r\n--b\r\n")
    t0, got, closed = time.monotonic(), b"", False
    s.settimeout(0.5)
    while time.monotonic() - t0 < 10:                               # one byte every 0.5 s, at most 10 s
        try: s.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError): closed = True; break
        try:
            b = s.recv(65536)
            if not b: closed = True; break
            got += b
        except socket.timeout: pass
        except ConnectionResetError: closed = True; break
    took = time.monotonic() - t0
    s.close()
    assert got.lower().startswith(b"http/1.1 408") and b"connection: close" in got.lower() and b'"detail"' in got, got[:300]
    assert closed and took < 3.0 + 3, took
    still_serves(server)

def test_idle_keep_alive_connection_is_closed(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    t0 = time.monotonic()
    data, closed = _read_response(s, 8)
    s.close()
    assert data.startswith(b"HTTP/1.1 200") and closed and time.monotonic() - t0 < 6, (data[:100], closed)

# ---- errors are JSON ------------------------------------------------------------------------------------------

def test_errors_are_json_and_hold_no_server_paths(server, model_dir):
    for r in (httpx.get(server.url + "/nope"), httpx.get(server.url + DETECT),
              httpx.post(server.url + DETECT, content=b"--b\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=b"}),
              httpx.post(server.url + DETECT, files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")})):
        json_error(r, 400, 404, 405, 422)
    m = httpx.get(server.url + "/api/v1/model").text
    assert str(model_dir) not in m and str(model_dir.parent) not in m, m

# ---- API key ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keyed(model_dir):
    key = "k-" + os.urandom(8).hex()
    with Server(model_dir, api_key_env="DT_TEST_KEY", env={"DT_TEST_KEY": key}, headers={"X-API-Key": key}, workers=1) as s:
        yield s, key

def test_api_key_required_except_health(keyed):
    s, key = keyed
    assert httpx.get(s.url + "/health").status_code == 200
    for method, path in (("GET", "/ready"), ("GET", "/api/v1/model"), ("POST", DETECT), ("POST", BATCH), ("GET", "/nope")):
        r = httpx.request(method, s.url + path, files={"file": ("a.png", GOOD, "image/png")} if method == "POST" else None)
        assert "API key" in json_error(r, 401) and r.headers["www-authenticate"] == "APIKey", (path, r.text)
        r = httpx.request(method, s.url + path, headers={"X-API-Key": key[:-1] + "x"},
                          files={"file": ("a.png", GOOD, "image/png")} if method == "POST" else None)
        json_error(r, 403)
    r = httpx.post(s.url + DETECT, files={"file": ("a.png", GOOD, "image/png")}, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["label"] == "good"
    assert key not in s.output()
    still_serves(s)

def test_api_key_env_unset_is_a_one_line_error(model_dir):
    env = {k: v for k, v in os.environ.items() if k != "DT_NO_SUCH_KEY"}
    out = subprocess.run(serve_cmd(model_dir, free_port(), api_key_env="DT_NO_SUCH_KEY"), capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0 and out.stderr.strip().splitlines()[-1].startswith("defect-twin serve: --api-key-env DT_NO_SUCH_KEY"), out.stderr

@pytest.mark.parametrize("host,key,warned", [("0.0.0.0", None, True), ("0.0.0.0", "k", False), ("127.0.0.1", None, False)])
def test_warning_when_exposed_without_key(model_dir, host, key, warned):
    "serve() warns before binding a non-loopback address without a key (uvicorn.run is replaced: nothing binds)."
    code = ("import uvicorn; uvicorn.run = lambda app, **kw: print('BIND', kw['host'], flush=True); "
            f"from defect_twin.api import serve; serve({str(model_dir)!r}, host={host!r}, port=1"
            + (", api_key_env='DT_K'" if key else "") + ")")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **({"DT_K": key} if key else {})})
    assert out.returncode == 0 and f"BIND {host}" in out.stdout, out
    assert ("without an API key" in out.stderr) == warned, out.stderr

# ---- offline docs -------------------------------------------------------------------------------------------------

def test_docs_pages_reference_only_local_assets(server):
    for page in ("/docs", "/redoc"):
        html = httpx.get(server.url + page).text
        urls = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)["\']', html)
        assert urls and not [u for u in urls if "//" in u], (page, urls)
        for u in urls:
            if u.startswith("/docs-assets/"):
                r = httpx.get(server.url + u)
                assert r.status_code == 200 and len(r.content) > 1000, (u, r.status_code)
