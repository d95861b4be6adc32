"""Tracking against a misbehaving MLflow server (a real HTTP server on 127.0.0.1 that answers 403, 500, or hangs):
the run lands in the local store, the warning says which error it was, `run.json` is always written and the run is
listed by `defect-twin runs`. Every server and wait here is bounded in time."""
import json, logging, os, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest, yaml
from mlflow import MlflowClient
from defect_twin.tracking import start_run, log as tracking_log
from defect_twin.runs import run_pipeline, RunSpec, list_runs

class FakeMlflow:
    "An HTTP server on 127.0.0.1: `/health` answers `health` (200, 403, 500 or 'hang'), every API call answers `api`."
    def __init__(self, api, health=200, hang_s=8.0):
        self.api, self.health, self.hang_s, self.calls = api, health, hang_s, []
        outer = self
        class H(BaseHTTPRequestHandler):
            def _answer(self):
                outer.calls.append(self.path)
                mode = outer.health if self.path.rstrip("/") == "/health" else outer.api
                if mode == "hang": time.sleep(outer.hang_s); return
                body = {200: b"OK", 403: b'{"error_code": "PERMISSION_DENIED", "message": "token lacks write access"}',
                        500: b"Internal Server Error"}[mode]
                self.send_response(mode)
                self.send_header("Content-Type", "application/json" if mode == 403 else "text/plain")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            do_GET = do_POST = do_PATCH = do_DELETE = _answer
            def log_message(self, *a): pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.srv.server_address[1]}"
    def __enter__(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start(); return self
    def __exit__(self, *a): self.srv.shutdown(); self.srv.server_close()

class Warnings(logging.Handler):
    def __init__(self): super().__init__(); self.msgs = []
    def emit(self, r):
        if r.levelno >= logging.WARNING: self.msgs.append(r.getMessage())

@pytest.fixture
def warnings_():
    h = Warnings(); tracking_log.addHandler(h)
    yield h
    tracking_log.removeHandler(h)

@pytest.fixture(autouse=True)
def short_mlflow_timeouts(monkeypatch):
    # MLflow reads these on every request; the tracking module's defaults are 10 s and 1 retry
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

@pytest.mark.parametrize("api,health,says", [
    (403, 200, "answered HTTP 403"),                 # an auth proxy
    (500, 200, "answered HTTP 500"),                 # a broken server
    (500, 500, "answered HTTP 500"),                 # broken, /health too
    ("hang", 200, "is unreachable"),                 # accepts, never answers an API call
    ("hang", "hang", "is unreachable"),              # never answers at all
])
def test_any_tracking_error_falls_back_and_says_which(tmp_path, warnings_, api, health, says):
    with FakeMlflow(api, health) as fake:
        t0 = time.perf_counter()
        with start_run("faulty", {"epochs": 3}, tracking_uri=fake.uri, root=tmp_path) as t:
            t.log_metrics({"loss": 0.5}, step=0); t.log_metrics({"loss": 0.25}, step=1)
        took = time.perf_counter() - t0
    assert t.fell_back and t.uri.startswith("sqlite:///"), t
    assert len(warnings_.msgs) == 1 and says in warnings_.msgs[0] and fake.uri in warnings_.msgs[0], warnings_.msgs
    if api == 403: assert "PERMISSION_DENIED" in warnings_.msgs[0] and "unreachable" not in warnings_.msgs[0]
    if api == 500: assert "unreachable" not in warnings_.msgs[0]
    run = MlflowClient(t.uri).get_run(t.run_id)
    assert run.data.params == {"epochs": "3"} and run.info.status == "FINISHED"
    assert [m.value for m in MlflowClient(t.uri).get_metric_history(t.run_id, "loss")] == [0.5, 0.25]
    assert run.data.tags["defect_twin.fallback_reason"].startswith(says)
    print(f"{api}/{health}: fell back in {took:.1f} s: {warnings_.msgs[0][:140]}")
    assert took < 40, took

def test_run_pipeline_on_403_writes_run_json_and_is_listed(tmp_path, warnings_):
    with FakeMlflow(403) as fake:
        r = run_pipeline(RunSpec(name="x/../../../escape", stages=[], tracking_uri=fake.uri), root=tmp_path/"runs",
                         tracking_root=tmp_path)
    assert r.parent == tmp_path/"runs" and not (tmp_path/"escape").exists() and not list(tmp_path.parent.glob("*escape*"))
    rec = json.loads((r/"run.json").read_text())
    assert rec["status"] == "ok" and rec["tracking"]["fell_back"] is True, rec
    assert rec["tracking"]["fallback_reason"].startswith("answered HTTP 403"), rec["tracking"]
    assert MlflowClient(rec["tracking"]["uri"]).get_run(rec["tracking"]["run_id"]).data.params["name"] == "x/../../../escape"
    assert list(list_runs(tmp_path/"runs").run) == [r.name]

def test_cli_run_against_403_is_not_a_traceback(tmp_path):
    "`defect-twin run --tracking-uri` against a refusing server: exit 0, a warning line, run.json, listed by `runs`."
    spec = tmp_path/"spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "cli/../../y", "stages": []}))
    cli = [sys.executable, "-m", "defect_twin.cli"]
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with FakeMlflow(403) as fake:
        out = subprocess.run([*cli, "run", str(spec), "--root", str(tmp_path/"runs"), "--tracking-uri", fake.uri],
                             capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "RestException" not in out.stderr, out.stderr[-3000:]
    assert "answered HTTP 403" in out.stderr, out.stderr[-3000:]
    runs = [p for p in (tmp_path/"runs").iterdir()]
    assert len(runs) == 1 and (runs[0]/"run.json").exists() and runs[0].name.endswith("-cli_._._y"), runs
    ls = subprocess.run([*cli, "runs", "--root", str(tmp_path/"runs")], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert ls.returncode == 0 and runs[0].name in ls.stdout, ls
