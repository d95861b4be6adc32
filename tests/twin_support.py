"""Support for the twin's tests: a small line, inspection events, and the twin served by uvicorn in a subprocess."""
import pathlib
from defect_twin.tracking import free_port
from api_support import PyServer

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

class TwinServer(PyServer):
    "`twin.serve_twin(line, db, port=...)` in a subprocess on 127.0.0.1; waits for /api/v1/line; stopped (or killed) on exit."
    what = "the twin"
    def __init__(self, line, db, port=None, api_key=None, ready_timeout=60):
        self.line, self.db, self.api_key = str(line), db, api_key
        port = port or free_port()
        code = (f"from defect_twin.twin import serve_twin; serve_twin({self.line!r}, {self.db!r}, port={port}, "
                f"api_key={self.api_key!r}, log_level='warning')")
        super().__init__(code, port, "/api/v1/line", ready_timeout, headers={"X-API-Key": api_key} if api_key else {})

STARTUP_LINE = """name: startup_line
stations:
  - {{id: fill, takt_s: 0.9, buffer: 3}}
  - {{id: cam, name: Bottle camera, model: {model}, takt_s: 1.0, buffer: 3, expected_defect_rate: 0.02}}
  - {{id: pack, takt_s: 0.95, buffer: 3}}
"""

def write_startup_line(d, model) -> pathlib.Path:
    "A filler, a camera station (the model folder `model`) that states 2 % expected rejects, and a packer."
    p = pathlib.Path(d)/"startup_line.yaml"; p.write_text(STARTUP_LINE.format(model=model)); return p
