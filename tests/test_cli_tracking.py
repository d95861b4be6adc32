"""`defect-twin train` is tracked (issue #14): an MLflow run with the settings as params, the data set as an input and
the model folder's metrics; `--register NAME` exports the model and registers a pyfunc that scores images as the engine
does; a tracking store that cannot be written costs a warning, never the trained model."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

from defect_twin.core import sample_path

CLI = str(Path(sys.executable).parent/"defect-twin")

def run(*args, cwd, timeout=600):
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)

def test_train_register_and_load(tmp_path):
    import mlflow, mlflow.pyfunc
    from defect_twin.inference import Engine
    from defect_twin.tracking import using_tracking_uri
    store = f"sqlite:///{tmp_path/'mlflow.db'}"
    r = run("train", "patchcore", "--data", "sample", "--out", tmp_path/"m", "--image-size", "128",
            "--register", "cli_patchcore", "--tracking-uri", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "registered as models:/cli_patchcore/1" in r.stderr
    meta = json.loads((tmp_path/"m"/"model.json").read_text())
    run_ = mlflow.MlflowClient(store).get_run(meta["run_id"])              # model.json names its run
    assert run_.data.params["image_size"] == "128" and run_.data.params["threshold"]
    assert "image_auroc" in run_.data.metrics and "eval.aupro_fpr_limit" in run_.data.params
    assert run_.data.tags["defect_twin.command"] == "train"
    assert run_.inputs.dataset_inputs[0].dataset.name == "bottle_sample"
    img = sorted((sample_path()/"test"/"broken_large").glob("*.png"))[0]
    want = Engine(tmp_path/"m").predict_paths([img])[0]
    with using_tracking_uri(store): m = mlflow.pyfunc.load_model("models:/cli_patchcore/1")
    out = m.predict([str(img)])
    assert abs(out.score[0] - want.score) < 1e-4 and out.verdict[0] == want.verdict

def test_unwritable_store_keeps_the_model(tmp_path):
    (tmp_path/"blocked").write_text("a file where the store's folder should be")
    store = f"sqlite:///{tmp_path/'blocked'/'mlflow.db'}"
    r = run("train", "padim", "--data", "sample", "--out", tmp_path/"m", "--image-size", "128", "--n-features", "40",
            "--tracking-uri", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tracking it failed" in r.stderr and (tmp_path/"m"/"model.json").exists()
    r = run("train", "padim", "--data", "sample", "--out", tmp_path/"m2", "--image-size", "128", "--n-features", "40",
            "--tracking-uri", store, "--register", "x", cwd=tmp_path)
    assert r.returncode == 2 and "not registered as x" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert (tmp_path/"m2"/"model.json").exists()                          # the trained model is kept
