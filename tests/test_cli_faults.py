"""Fault injection through the command line (issue #13): every broken model folder or input is one line on stderr and
exit 2, never a traceback, never a verdict; a failed export leaves the previous graph; a graph that no longer matches
its folder is refused."""
import hashlib, json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

from defect_twin.core import sample_path, ModelFolder

CLI = str(Path(sys.executable).parent/"defect-twin")
SAMPLE = sample_path()

def run(*args, timeout=300):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)

def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    err = [l for l in r.stderr.strip().splitlines() if "error:" in l]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    for n in needles: assert n in err[0], (n, err[0])
    return err[0]

def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()

def sealed(d, name):
    "Seal a file written below as a faulty writer might (the manifest would refuse a hand edit first): the deeper checks must still hold."
    ModelFolder(d).seal(name, by="test: a faulty writer")

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    "A real PatchCore folder trained on the bundled sample and exported (about 40 s)."
    d = tmp_path_factory.mktemp("cli")/"m"
    r = run("train", "patchcore", "--data", "sample", "--out", d, "--coreset-ratio", "0.1")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run("export", d)
    assert r.returncode == 0, r.stderr[-2000:]
    return d

@pytest.fixture
def copy(model, tmp_path):
    def make(name="c"):
        d = tmp_path/name; shutil.copytree(model, d); return d
    return make

def test_threshold_not_a_number(copy):
    "A NaN threshold stops evaluate, export and predict at load; null and a list as well (more cases: `00_core`)."
    d = copy()
    img = sorted((SAMPLE/"test"/"good").glob("*.png"))[0]
    (d/"threshold.json").write_text('{"value": NaN, "rule": "hand-edited"}'); sealed(d, "threshold.json")
    for cmd in (("evaluate", d, "--data", "sample", "--out", d/"ev"), ("export", d), ("predict", d, img, "--out", d/"p")):
        one_line_error(run(*cmd), "threshold.json", "finite number")
    for value in ("null", "[1, 2]"):
        (d/"threshold.json").write_text('{"value": %s}' % value); sealed(d, "threshold.json")
        one_line_error(run("export", d), "threshold.json", "finite number")

@pytest.mark.parametrize("spec", ['{"size": null}', "size: ["])
def test_bad_preprocess_json(copy, spec):
    d = copy()
    (d/"preprocess.json").write_text(spec)
    one_line_error(run("evaluate", d, "--data", "sample", "--out", d/"ev"), "preprocess.json")

def test_unknown_kind(copy):
    d = copy()
    meta = json.loads((d/"model.json").read_text()); meta["kind"] = "foo"
    (d/"model.json").write_text(json.dumps(meta)); sealed(d, "model.json")
    one_line_error(run("evaluate", d, "--data", "sample", "--out", d/"ev"), "unknown model kind 'foo'")

def test_corrupt_weights(copy):
    d = copy()
    (d/"backbone.pt").write_bytes(b"\x00corrupt"); sealed(d, "backbone.pt")
    one_line_error(run("evaluate", d, "--data", "sample", "--out", d/"ev"), "backbone.pt", "state dict")
    d2 = copy("c2")
    (d2/"memory_bank.npy").write_bytes(b"12345"); sealed(d2, "memory_bank.npy")
    one_line_error(run("export", d2), "memory_bank.npy", "not a readable .npy")

def test_failed_export_keeps_the_previous_graph(copy):
    d = copy()
    before = sha(d/"model.onnx")
    bank = np.load(d/"memory_bank.npy"); np.save(d/"memory_bank.npy", np.full_like(bank, 3e38))   # distances overflow
    sealed(d, "memory_bank.npy")
    one_line_error(run("export", d), "parity failed", "left as it was")
    assert sha(d/"model.onnx") == before
    assert not (d/".model.onnx.tmp").exists()

def test_graph_that_no_longer_matches_its_folder(copy):
    d = copy()
    bank = np.load(d/"memory_bank.npy"); np.save(d/"memory_bank.npy", bank[::-1].copy())   # a refit after export
    r = run("serve", d, "--port", "0")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "memory_bank.npy" in r.stderr, r.stderr[-1000:]
    img = sorted((SAMPLE/"test"/"good").glob("*.png"))[0]
    one_line_error(run("predict", d, img, "--out", d/"p", "--runtime", "onnx"), "memory_bank.npy")

@pytest.mark.parametrize("name,edit", [("threshold.json", lambda t: {**t, "value": 1e9}), ("model.json", lambda m: {**m, "version": "9"}),
                                       ("preprocess.json", lambda s: {**s, "interpolation": "cubic"})])
def test_hand_edits_are_refused(copy, name, edit):
    "A sealed file edited by hand after export: evaluate, predict and export refuse in one line naming the file and the command; serve exits 1."
    d = copy()
    f = d/name; f.write_text(json.dumps(edit(json.loads(f.read_text()))))
    img = sorted((SAMPLE/"test"/"good").glob("*.png"))[0]
    for args in (("evaluate", d, "--data", "sample", "--out", d/"ev"), ("predict", d, img, "--out", d/"p"), ("export", d)):
        one_line_error(run(*args), f"{name} was edited by hand", "defect-twin")
    r = run("serve", d, "--port", "0")
    assert r.returncode == 1 and f"{name} was edited by hand" in r.stderr.strip().splitlines()[-1], r.stderr[-2000:]

def test_official_threshold_change_is_served_without_warning(copy):
    d = copy()
    r = run("threshold", d, "--rule", "max")
    assert r.returncode == 0, r.stderr[-2000:]
    value = json.loads((d/"threshold.json").read_text())["value"]
    img = sorted((SAMPLE/"test"/"good").glob("*.png"))[0]
    r = run("predict", d, img, "--out", d/"p", "--runtime", "onnx", "--no-progress")
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr[-2000:]
    assert float((d/"p"/"predictions.csv").read_text().splitlines()[1].split(",")[3]) == value

def test_bad_data_and_inputs(tmp_path, model):
    junk = tmp_path/"junk"; (junk/"good").mkdir(parents=True); (junk/"good"/"a.png").write_bytes(b"nope")
    one_line_error(run("data", "stats", junk), "no usable image")
    one_line_error(run("predict", model, tmp_path/"missing", "--out", tmp_path/"p"), "input not found")
    fifo = tmp_path/"f.png"; os.mkfifo(fifo)
    r = run("predict", model, fifo, "--out", tmp_path/"pf", "--no-progress")
    assert r.returncode == 0, r.stderr[-1000:]
    row = (tmp_path/"pf"/"predictions.csv").read_text().splitlines()[1]
    assert "not a regular file" in row and ",error," in row

def test_debug_shows_the_traceback(tmp_path):
    r = run("--debug", "data", "stats", tmp_path/"nowhere")
    assert r.returncode != 0 and "Traceback" in r.stderr
