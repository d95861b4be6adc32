"""Support for the HTTP tests of the inspection service: a small real model folder and a uvicorn server in a subprocess."""
import os, sys, time, signal, subprocess, tempfile, pathlib
import numpy as np
import httpx
from defect_twin.tracking import free_port


def scorer(embed, bank, size):
    "The PatchCore scoring module over `embed` and `bank` (`patchcore.PatchCoreScorer`; `size` is the input side)."
    from defect_twin.patchcore import PatchCoreScorer
    return PatchCoreScorer(embed, bank, num_neighbors=3, sigma=2.0)

def tiny_patchcore_folder(d, size=64):
    "A real small PatchCore model folder (conv embedding, memory bank from the sample's good images), exported to ONNX."
    import torch
    from torch import nn
    from defect_twin.core import ModelFolder, sample_path
    from defect_twin.images import read_image
    from defect_twin.transforms import PreprocessSpec
    from defect_twin.export import export_onnx
    torch.manual_seed(0)
    embed = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), nn.ReLU()).eval()
    spec = PreprocessSpec(size=[size, size])
    good = [read_image(p) for p in sorted((sample_path()/"train"/"good").glob("*.png"))]
    with torch.no_grad(): f = embed(torch.from_numpy(spec.apply_batch(good)))
    bank = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    # nudged off exact background matches: sqrt near 0 is where torch and ONNX Runtime differ most (parity check)
    bank = bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:400]] + 0.05
    graph = scorer(embed, bank, size).eval()
    tests = [read_image(p) for p in sorted((sample_path()/"test"/"good").glob("*.png"))]
    with torch.no_grad(): s = graph(torch.from_numpy(spec.apply_batch(tests)))[0]
    mf = ModelFolder(d)
    mf.write_json(mf.META, dict(kind="patchcore", name="tiny_bottle", version="1", backbone="conv4x4", classes=["good", "defect"]))
    spec.save(mf.file(mf.SPEC))
    mf.write_json(mf.THRESHOLD, dict(value=float(s.max()) * 1.05, rule="1.05 x max score of the sample's good test images",
                                     score="image anomaly score"))
    mf.write_json(mf.METRICS, dict(note="tiny test model", n_good_test=len(tests)))
    defects = [read_image(p) for p in sorted((sample_path()/"test"/"broken_large").glob("*.png"))[:2]]
    export_onnx(d, module=graph, images=tests[:2] + defects)
    return mf

class PyServer:
    "A Python snippet that serves HTTP, run in a subprocess on 127.0.0.1 until `ready_path` answers 200; always stopped on exit."
    what = "the server"
    def __init__(self, code:str, port:int, ready_path:str, ready_timeout=120, env=None, headers=None):
        self.code, self.port, self.ready_path, self.ready_timeout = code, port, ready_path, ready_timeout
        self.url, self.env, self.headers = f"http://127.0.0.1:{port}", env, headers or {}

    def __enter__(self):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-c", self.code], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(self.env or {})})
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None: break
            try:
                if httpx.get(self.url + self.ready_path, timeout=1, headers=self.headers).status_code == 200: return self
            except httpx.TransportError: pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.what} did not become ready on {self.url}; its log:\n{self.output()[-3000:]}")

    def output(self) -> str:
        "What the server printed so far."
        return pathlib.Path(self.log.name).read_text()

    def alive(self) -> bool: return self.proc.poll() is None

    def kill(self):
        "SIGKILL: no shutdown handlers, no flush: what a crash does."
        os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        self.log.close()

class Server(PyServer):
    "`defect_twin.api.serve(model_dir, ...)` in a subprocess on 127.0.0.1; waits for /ready; always stopped on exit."
    what = "the service"
    def __init__(self, model_dir, port=None, ready_timeout=120, env=None, headers=None, **config):
        self.model_dir, self.config = str(model_dir), config
        port = port or free_port()
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        code = f"from defect_twin.api import serve; serve({self.model_dir!r}, port={port}{', ' + args if args else ''})"
        super().__init__(code, port, "/ready", ready_timeout, env, headers)


# ---- fault injection helpers ------------------------------------------------------------------------------

def poison_score(src, dst, when="always", cut=-1.0):
    """Copy model folder `src` to `dst` with its ONNX graph edited so that `score` is NaN: `when="always"`, or only for
    images whose normalised mean is below `cut` (`when="dark"`: black images; mid-grey and noise stay finite)."""
    import shutil, onnx
    from onnx import helper, TensorProto
    shutil.copytree(src, dst)
    path = pathlib.Path(dst)/"model.onnx"
    m = onnx.load(str(path))
    g = m.graph
    prod = next(n for n in g.node if "score" in n.output)
    prod.output[list(prod.output).index("score")] = "score_raw"
    const = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])
    if when == "always":
        g.initializer.append(const("nan_c", float("nan")))
        g.node.append(helper.make_node("Add", ["score_raw", "nan_c"], ["score"]))
    else:
        g.initializer.extend([const("cut_c", float(cut)), const("zero_c", 0.0),
                              helper.make_tensor("axes_c", TensorProto.INT64, [3], [1, 2, 3])])
        g.node.extend([helper.make_node("ReduceMean", ["input", "axes_c"], ["mean_c"], keepdims=0),
                       helper.make_node("Sub", ["mean_c", "cut_c"], ["d_c"]),
                       helper.make_node("Sqrt", ["d_c"], ["q_c"]),          # NaN where mean < cut
                       helper.make_node("Mul", ["q_c", "zero_c"], ["z_c"]),
                       helper.make_node("Add", ["score_raw", "z_c"], ["score"])])
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    from defect_twin.core import ModelFolder
    ModelFolder(dst).seal(path.name, by="test: a broken export")   # a faulty graph as export might write it, not a hand edit
    return pathlib.Path(dst)

def serve_cmd(model_dir, port, **kw) -> list:
    "The command line that runs `serve(model_dir, port=port, **kw)` in a fresh interpreter."
    args = "".join(f", {k}={v!r}" for k, v in kw.items())
    return [sys.executable, "-c", f"from defect_twin.api import serve; serve({str(model_dir)!r}, port={port}{args})"]

def app_cmd(model_dir, port) -> list:
    "uvicorn serving `create_app(model_dir)` (background loading: the process stays up even if the model is broken)."
    return [sys.executable, "-c", "import uvicorn; from defect_twin.api import create_app; "
            f"uvicorn.run(create_app({str(model_dir)!r}), host='127.0.0.1', port={port}, log_level='warning')"]

def png_bytes(img) -> bytes:
    "PNG bytes of a uint8 RGB (or grey) image."
    import cv2
    return cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img)[1].tobytes()

def large_png(side, seed=0) -> bytes:
    "A real `side x side` RGB PNG (a sample bottle scaled up, light noise): megapixels that compress to a few MB."
    import cv2
    from defect_twin.core import sample_path
    im = cv2.imread(str(sorted((sample_path()/"test"/"good").glob("*.png"))[seed % 3]))[..., ::-1]
    im = cv2.resize(im, (side, side), interpolation=cv2.INTER_LINEAR)
    return png_bytes(im)

def rss_mb(pid) -> float:
    "Resident memory of process `pid` and its children, in MB."
    import psutil
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20
