"""Bounded load test of the inspection service, on 127.0.0.1 only: the engine's own throughput next to the service's
throughput over HTTP with locust (fixed users, fixed duration), with and without micro-batching.

    .venv/bin/python scripts/loadtest.py [--model-dir DIR] [--users 8] [--duration 20] [--workers 2] [--out loadtest.json]

Without --model-dir a real PatchCore (tf_efficientnet_lite0 at 256 px, memory bank from the bundled sample's good
training images) is fitted and exported to ONNX in a temporary folder. Images: the bundled sample's test images, or
the real MVTec bottle test set with --images mvtec. The machine is shared in development, so the engine is measured
before and after the HTTP runs and the ratio uses their mean. Bars (printed, and the exit code with --check): HTTP
throughput >= 80% of the engine's, p95 < 200 ms, zero errors.
"""
import argparse, csv, json, os, subprocess, sys, tempfile, time, pathlib
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"tests"))

def build_model(d:pathlib.Path) -> pathlib.Path:
    "Fit a PatchCore on the sample's good training images, save it and export it to ONNX."
    from defect_twin.core import sample_path
    from defect_twin.patchcore import PatchCore
    from defect_twin.export import export_onnx, ParityError
    from defect_twin.patchcore import PatchCoreScorer
    pc = PatchCore("tf_efficientnet_lite0", image_size=256).fit(sorted((sample_path()/"train"/"good").glob("*.png")))
    pc.save(d)
    try:
        try: export_onnx(d)
        except TypeError:   # an export that cannot yet rebuild the graph from the folder: hand it the module
            export_onnx(d, module=PatchCoreScorer(pc.embedder, pc.bank.cpu(), num_neighbors=pc.num_neighbors,
                                                 sigma=pc.sigma).eval())
    except ParityError as e:
        if not (d/"model.onnx").exists(): raise
        print(f"WARNING: {str(e)[:300]}\n  (the graph is kept: this script measures speed, not accuracy)")
    return d

def image_dir(which:str) -> pathlib.Path:
    "Folder of the PNGs to send."
    from defect_twin.core import sample_path, mvtec_path
    return mvtec_path("bottle")/"test" if which == "mvtec" else sample_path()/"test"

def engine_throughput(model_dir, images:list, workers:int, seconds:float) -> dict:
    "Images/s of `Engine.predict_bytes` one image per call from `workers` threads (the service's work, no HTTP)."
    from defect_twin.inference import Engine
    eng = Engine(model_dir, threads=1)
    eng.predict_bytes(images[:2])
    lat, t0 = [], time.perf_counter()
    def loop(i):
        n, k = 0, i
        while time.perf_counter() - t0 < seconds:
            t = time.perf_counter(); eng.predict_bytes([images[k % len(images)]]); lat.append(time.perf_counter() - t)
            n += 1; k += workers
        return n
    with ThreadPoolExecutor(workers) as ex: n = sum(ex.map(loop, range(workers)))
    el = time.perf_counter() - t0
    lat.sort()
    return dict(images=n, seconds=round(el, 2), rps=round(n / el, 2), p50_ms=round(lat[len(lat)//2]*1e3, 1),
                p95_ms=round(lat[int(len(lat)*0.95)]*1e3, 1))

def locust_run(url:str, images:pathlib.Path, users:int, duration:int, prefix:pathlib.Path) -> dict:
    "Run locust headless against `url`; RPS, percentiles and errors from its CSV."
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT/"scripts"/"locustfile.py"), "--headless", "-u", str(users),
           "-r", str(users), "-t", f"{duration}s", "--host", url, "--csv", str(prefix), "--only-summary",
           "--stop-timeout", "10", "--loglevel", "WARNING"]
    subprocess.run(cmd, env={**os.environ, "DT_LOAD_IMAGES": str(images)}, check=False, timeout=duration + 120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = list(csv.DictReader(open(f"{prefix}_stats.csv")))
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    fails = list(csv.DictReader(open(f"{prefix}_failures.csv"))) if pathlib.Path(f"{prefix}_failures.csv").exists() else []
    return dict(requests=int(agg["Request Count"]), errors=int(agg["Failure Count"]), rps=round(float(agg["Requests/s"]), 2),
                p50_ms=float(agg["50%"]), p95_ms=float(agg["95%"]), p99_ms=float(agg["99%"]),
                mean_ms=round(float(agg["Average Response Time"]), 1), failures=[f["Error"][:200] for f in fails][:5])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir"); ap.add_argument("--images", default="sample", choices=["sample", "mvtec"])
    ap.add_argument("--users", type=int, default=8); ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2); ap.add_argument("--engine-seconds", type=float, default=10)
    ap.add_argument("--modes", default="plain,micro_batch"); ap.add_argument("--out", default="loadtest.json")
    ap.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    a = ap.parse_args(argv)
    from api_support import Server
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="defect_twin_load_"))
    model_dir = pathlib.Path(a.model_dir) if a.model_dir else build_model(tmp/"model")
    imgs_dir = image_dir(a.images)
    images = [p.read_bytes() for p in sorted(imgs_dir.rglob("*.png"))]
    out = dict(machine=dict(cpus=os.cpu_count(), load_avg_start=os.getloadavg()), model_dir=str(model_dir),
               images=dict(folder=str(imgs_dir), n=len(images)), users=a.users, duration_s=a.duration, workers=a.workers)
    out["engine_before"] = engine_throughput(model_dir, images, a.workers, a.engine_seconds)
    print("engine:", out["engine_before"], flush=True)
    out["http"] = {}
    for mode in a.modes.split(","):
        with Server(model_dir, workers=a.workers, micro_batch=mode == "micro_batch", threads=1) as s:
            res = locust_run(s.url, imgs_dir, a.users, a.duration, tmp/f"locust_{mode}")
            res["server_traceback"] = "Traceback" in s.output()
        out["http"][mode] = res
        print(f"http {mode}:", res, flush=True)
    out["engine_after"] = engine_throughput(model_dir, images, a.workers, a.engine_seconds)
    print("engine:", out["engine_after"], flush=True)
    eng = (out["engine_before"]["rps"] + out["engine_after"]["rps"]) / 2
    out["machine"]["load_avg_end"] = os.getloadavg()
    ok = True
    for mode, r in out["http"].items():
        r["ratio_to_engine"] = round(r["rps"] / eng, 3)
        bars = dict(ratio=r["ratio_to_engine"] >= 0.8, p95=r["p95_ms"] < 200, errors=r["errors"] == 0 and not r["server_traceback"])
        r["bars_met"] = bars; ok &= all(bars.values())
        print(f"{mode}: {r['rps']} req/s = {r['ratio_to_engine']:.0%} of the engine's {eng:.1f} img/s; p50 {r['p50_ms']} ms, "
              f"p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms; errors {r['errors']}  bars: {bars}")
    pathlib.Path(a.out).write_text(json.dumps(out, indent=2))
    print("wrote", a.out)
    return 0 if ok or not a.check else 1

if __name__ == "__main__": sys.exit(main())
