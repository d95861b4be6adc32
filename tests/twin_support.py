"""Support for the twin's tests: a small line, inspection events, and the twin served by uvicorn in a subprocess."""
import os, sys, time, signal, subprocess, tempfile, pathlib
import httpx
from defect_twin.tracking import free_port

LINE = """name: test_line
stations:
  - {id: fill, takt_s: 0.5}
  - {id: cam, source: camera-1, takt_s: 0.5}
spc: {baseline_parts: 60, baseline_scores: 50, subgroup: 20, ks_window: 40, ks_every: 20}
"""

def write_line(d) -> pathlib.Path:
    p = pathlib.Path(d)/"line.yaml"; p.write_text(LINE); return p

def part(i, score=10.0, verdict=None, station="cam", prefix="p"):
    "An inspection event; scores near 10 are good, and a verdict follows the score unless given."
    v = verdict or ("defect" if score >= 20 else "good")
    return dict(id=f"{station}:{prefix}{i}", station=station, part=f"{prefix}{i}", ts=1.7e9 + i, verdict=v, score=float(score), threshold=20.0)

def normal_scores(n, seed=0, mu=10.0):
    import numpy as np
    return np.random.default_rng(seed).normal(mu, 1.0, n)

class TwinServer:
    "`twin.serve_twin(line, db, port=...)` in a subprocess on 127.0.0.1; waits for /api/v1/line; stopped (or killed) on exit."
    def __init__(self, line, db, port=None, api_key=None, ready_timeout=60):
        self.line, self.db, self.port, self.api_key, self.ready_timeout = str(line), db, port or free_port(), api_key, ready_timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def __enter__(self):
        code = (f"from defect_twin.twin import serve_twin; serve_twin({self.line!r}, {self.db!r}, port={self.port}, "
                f"api_key={self.api_key!r}, log_level='warning')")
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None: break
            try:
                if httpx.get(self.url + "/api/v1/line", headers=self.headers, timeout=1).status_code == 200: return self
            except httpx.TransportError: pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the twin did not come up on {self.url}:\n{pathlib.Path(self.log.name).read_text()[-3000:]}")

    def kill(self):
        "SIGKILL: no shutdown handlers, no flush: what a crash does."
        os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try: self.proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(10)
        self.log.close()
