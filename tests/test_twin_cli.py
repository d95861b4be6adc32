"""The line twin from the command line: `twin simulate` on a small stream, and `serve --line` over 127.0.0.1."""
import json, os, pathlib, signal, subprocess, sys, time
import httpx, pytest
from api_support import tiny_patchcore_folder, png_bytes
from defect_twin.core import sample_path
from defect_twin.images import read_image
from defect_twin.tracking import free_port

CMD = str(pathlib.Path(sys.executable).parent/"defect-twin")
LINE = """name: small_line
stations:
  - {id: fill, takt_s: 0.9, buffer: 3}
  - {id: cam, model: ../no/such/model, takt_s: 1.0, buffer: 3}
  - {id: pack, takt_s: 0.95, buffer: 3}
spc: {baseline_parts: 40, baseline_scores: 30, subgroup: 10}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_patchcore_folder(tmp_path_factory.mktemp("tiny")).path


def test_twin_simulate_small_stream(tiny, tmp_path, capsys):
    line = tmp_path/"line.yaml"; line.write_text(LINE)
    out = tmp_path/"sim"
    env = {**os.environ, "DEFECT_TWIN_CACHE": str(tmp_path/"cache")}            # the score cache stays in the test's folder
    r = subprocess.run([CMD, "twin", "simulate", str(line), "--data", "sample", "--model", str(tiny), "--out", str(out),
                        "--scale", "0.02", "--only", "stable", "brightness", "--threads", "1"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| scenario |" in r.stdout and "brightness -20 %" in r.stdout, r.stdout
    rows = {x["scenario"]: x for x in json.loads((out/"results.json").read_text())["rows"]}
    assert set(rows) == {"stable", "brightness -20 %"}
    assert rows["stable"]["parts"] == 40 + 100 and rows["brightness -20 %"]["change_at"] == 46
    assert (out/"table.md").is_file() and (out/"stable.png").is_file()
    # the line file's own `model:` does not exist: without --model the command says so in one line (in-process: fast)
    from defect_twin.cli import main
    assert main(["twin", "simulate", str(line), "--data", "sample", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "model folder" in err and "does not exist" in err and "--model" in err, err
    assert main(["twin", "simulate", str(line), "--data", "sample", "--model", str(tiny), "--only", "smoke"]) == 2
    assert "unknown scenario(s) ['smoke']" in capsys.readouterr().err


def test_serve_line_detect_feeds_the_twin(tiny, tmp_path):
    line = tmp_path/"line.yaml"; line.write_text(LINE)
    port, db = free_port(), f"sqlite:///{tmp_path/'twin.db'}"
    log = open(tmp_path/"serve.log", "w+")
    proc = subprocess.Popen([CMD, "serve", str(tiny), "--port", str(port), "--workers", "1", "--line", str(line), "--twin-db", db],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, (tmp_path/"serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200: break
            except httpx.TransportError: pass
            time.sleep(0.2)
        img = png_bytes(read_image(sorted((sample_path()/"test"/"good").glob("*.png"))[0]))
        r = httpx.post(url + "/api/v1/detect", params=dict(station="cam", part="bottle-1"), files={"file": ("a.png", img, "image/png")}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["twin"]["events"] == ["cam:bottle-1"] and r.json()["twin"]["accepted"] == 1
        cam = next(s for s in httpx.get(url + "/api/v1/line", timeout=10).json()["stations"] if s["id"] == "cam")
        assert (cam["parts"], cam["last_part"], cam["state"]) == (1, "bottle-1", "running")
        assert httpx.get(url + "/line", timeout=10).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(15)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)
        log.close()
    # a line file that cannot be used ends the command with one line
    (tmp_path/"bad.yaml").write_text("name: x\nstations: []\n")
    r = subprocess.run([CMD, "serve", str(tiny), "--port", str(free_port()), "--line", str(tmp_path/"bad.yaml"), "--twin-db", db],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "`stations` is empty" in r.stderr.strip().splitlines()[-1], r.stderr[-2000:]
