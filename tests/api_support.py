"""Support for the HTTP tests of the inspection service: a small real model folder and a uvicorn server in a subprocess."""
import os, sys, time, signal, subprocess, tempfile, pathlib
import numpy as np
import httpx
from defect_twin.tracking import free_port


def tiny_patchcore_folder(d, size=64):
    "A real small PatchCore model folder (conv embedding, memory bank from the sample's good images), exported to ONNX."
    import torch
    from torch import nn
    from defect_twin.core import ModelFolder, sample_path
    from defect_twin.data import read_image
    from defect_twin.transforms import PreprocessSpec
    from defect_twin.export import export_onnx, PatchCoreGraph
    torch.manual_seed(0)
    embed = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), nn.ReLU()).eval()
    spec = PreprocessSpec(size=[size, size])
    good = [read_image(p) for p in sorted((sample_path()/"train"/"good").glob("*.png"))]
    with torch.no_grad(): f = embed(torch.from_numpy(spec.apply_batch(good)))
    bank = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    # nudged off exact background matches: sqrt near 0 is where torch and ONNX Runtime differ most (parity check)
    bank = bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:400]] + 0.05
    graph = PatchCoreGraph(embed, bank, (size, size), num_neighbors=3, sigma=2.0).eval()
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

class Server:
    "`defect_twin.api.serve(model_dir, ...)` in a subprocess on 127.0.0.1; waits for /ready; always stopped on exit."
    def __init__(self, model_dir, port=None, ready_timeout=120, **config):
        self.model_dir, self.port, self.config, self.ready_timeout = str(model_dir), port or free_port(), config, ready_timeout
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        code = f"from defect_twin.api import serve; serve({self.model_dir!r}, port={self.port}{', ' + args if args else ''})"
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None: break
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200: return self
            except httpx.TransportError: pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the service did not become ready on {self.url}; its log:\n{self.output()[-3000:]}")

    def output(self) -> str:
        "What the server printed so far."
        return pathlib.Path(self.log.name).read_text()

    def alive(self) -> bool: return self.proc.poll() is None

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        self.log.close()
