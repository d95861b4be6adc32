"""Soak: 16 clients for 60 s against a real `serve` on 127.0.0.1 with the default limits, mixing small good images,
batches of large images and bad inputs. Bars: no 500 (nor any status outside the documented ones), every error a JSON
body, the service's RSS under RSS_BOUND_MB throughout, and p95 of the small good requests under 1 s. Bounded: 60 s
of load (DURATION_S), at most 4000 requests per client, 30 s per request."""
import os, struct, threading, time, zlib
from concurrent.futures import ThreadPoolExecutor
import numpy as np, httpx, pytest
from api_support import Server, tiny_patchcore_folder, large_png, rss_mb
from defect_twin.core import sample_path

DURATION_S = float(os.environ.get("DEFECT_TWIN_SOAK_S", 60))
RSS_BOUND_MB = 1000          # the service process: ~0.25 GB idle; measured peak 0.42 GB (60 s, 16 clients, 2-core box)
P95_BOUND_S = 1.0
DETECT, BATCH = "/api/v1/detect", "/api/v1/detect/batch"
OK = {200, 413, 415, 422, 429, 503}

def _chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

def header_bomb(w, h):
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
           _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b"")

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_patchcore_folder(tmp_path_factory.mktemp("soak")/"model").path

def test_soak_16_clients(model_dir):
    small = [p.read_bytes() for p in sorted((sample_path()/"test").rglob("*.png"))[:12]]
    big = [large_png(1600, seed=i) for i in range(3)]                         # 2.56 MP each
    good = small[0]
    bad = [("trunc.png", good[: len(good) // 2]), ("notes.txt", b"just text " * 50), ("bomb.png", header_bomb(30000, 30000)),
           ("rand.png", np.random.default_rng(0).bytes(30_000)), ("empty.png", b"")]
    with Server(model_dir) as s:
        stop, lock = time.monotonic() + DURATION_S, threading.Lock()
        stats = dict(codes={}, small_lat=[], non_json=[], rss=[])
        def note(kind, r):
            with lock:
                stats["codes"][(kind, r.status_code)] = stats["codes"].get((kind, r.status_code), 0) + 1
                if r.status_code != 200 and not r.headers.get("content-type", "").startswith("application/json"):
                    stats["non_json"].append((kind, r.status_code, r.text[:100]))
        def small_client(i):
            with httpx.Client(base_url=s.url, timeout=30) as c:
                for j in range(4000):
                    if time.monotonic() > stop: break
                    t0 = time.perf_counter()
                    r = c.post(DETECT, files={"file": (f"{i}-{j}.png", small[(i + j) % len(small)], "image/png")})
                    dt = time.perf_counter() - t0
                    note("small", r)
                    if r.status_code == 200:
                        with lock: stats["small_lat"].append(dt)
        def big_client(i):
            with httpx.Client(base_url=s.url, timeout=30) as c:
                for j in range(4000):
                    if time.monotonic() > stop: break
                    n = 4 if j % 2 else 8                                      # 10 or 20 MP per request
                    note("big", c.post(BATCH, files=[("files", (f"b{k}.png", big[(i + k) % 3], "image/png")) for k in range(n)]))
        def bad_client(i):
            with httpx.Client(base_url=s.url, timeout=30) as c:
                for j in range(4000):
                    if time.monotonic() > stop: break
                    if j % 4 == 3:                                             # 16 x 40 MP claimed: over the request budget
                        r = c.post(BATCH, files=[("files", (f"{k}.png", header_bomb(6000, 6000), "image/png")) for k in range(16)])
                    else:
                        name, data = bad[(i + j) % len(bad)]
                        r = c.post(DETECT, files={"file": (name, data, "image/png")})
                    note("bad", r)
                    time.sleep(0.02)
        def sampler():
            while time.monotonic() < stop + 1:
                stats["rss"].append(rss_mb(s.proc.pid)); time.sleep(0.5)
        with ThreadPoolExecutor(17) as ex:
            futs = [ex.submit(small_client, i) for i in range(10)] + [ex.submit(big_client, i) for i in range(3)] + \
                   [ex.submit(bad_client, i) for i in range(3)] + [ex.submit(sampler)]
            for f in futs: f.result(timeout=DURATION_S + 120)
        r = httpx.post(s.url + DETECT, files={"file": ("after.png", good, "image/png")}, timeout=30)
        assert r.status_code == 200 and s.alive()
        out = s.output()
    codes, lat = stats["codes"], np.array(stats["small_lat"])
    p95, peak = float(np.percentile(lat, 95)), max(stats["rss"])
    total = sum(codes.values())
    print(f"\nsoak {DURATION_S:.0f} s, 16 clients: {total} requests, {total/DURATION_S:.0f} req/s; statuses {dict(sorted(codes.items()))}")
    print(f"small good requests: n={len(lat)}, p50 {np.median(lat)*1e3:.0f} ms, p95 {p95*1e3:.0f} ms, max {lat.max()*1e3:.0f} ms; "
          f"RSS {stats['rss'][0]:.0f} MB at start, peak {peak:.0f} MB (bound {RSS_BOUND_MB})")
    assert not [k for k in codes if k[1] >= 500 and k[1] != 503], codes
    assert not [k for k in codes if k[1] not in OK], codes
    assert not [k for k in codes if k[0] == "small" and k[1] != 200], codes             # small good images always served
    assert codes.get(("big", 200), 0) > 0 and codes.get(("bad", 413), 0) > 0, codes
    assert not stats["non_json"], stats["non_json"][:5]
    assert peak < RSS_BOUND_MB, peak
    assert p95 < P95_BOUND_S, p95
    assert "Traceback" not in out, out[-3000:]
