"""`defect-twin run` from any install (issue #14): the stage notebooks ship inside the package as generated copies of
`nbs/tutorials/`, identical to them cell for cell, and a run executes from those copies when there is no checkout."""
import json, shutil, subprocess, sys, tomllib, zipfile
from pathlib import Path
import pytest

from defect_twin import runs
from defect_twin.runs import sync_pipelines, pipeline_notebooks, pipeline_dir, run_pipeline, RunSpec, STAGES
from defect_twin.core import KINDS, PKG_DIR

ROOT = Path(__file__).resolve().parent.parent

def test_shipped_copies_match_the_tutorials():
    stale = sync_pipelines(check=True)
    assert stale == [], (f"defect_twin/pipelines/ differs from nbs/tutorials/ in {stale}: regenerate with "
                         "`python -c 'from defect_twin.runs import sync_pipelines; sync_pipelines()'`")
    assert sorted(p.name for p in (PKG_DIR/"pipelines").glob("*.ipynb")) == pipeline_notebooks()

def test_every_model_kind_has_a_train_notebook():
    assert set(STAGES["train"]) == set(KINDS)
    for nb in pipeline_notebooks(): assert (ROOT/"nbs"/"tutorials"/nb).is_file(), nb

def test_package_data_ships_the_pipelines():
    pd = tomllib.loads((ROOT/"pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "pipelines/*.ipynb" in pd["defect_twin"]

def test_wheel_contains_the_pipelines(tmp_path):
    src = tmp_path/"src"       # build from a copy: a build in the checkout would leave build/ behind for others
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "_out", "papermill_runs", "_docs*",
                                                             "_site", "mlruns", "*.db", "build", "*.egg-info", ".mypy_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path/"dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    whl, = (tmp_path/"dist").glob("defect_twin-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for nb in pipeline_notebooks(): assert f"defect_twin/pipelines/{nb}" in names, nb
    assert "defect_twin/assets/classifier.yaml" in names and "defect_twin/assets/swin.yaml" in names

def test_installed_layout_runs_from_the_package_copies(tmp_path, monkeypatch):
    "Without `nbs/tutorials` beside the package, `pipeline_dir` is the shipped copies, and a stage runs from them."
    site = tmp_path/"site"/"defect_twin"
    shutil.copytree(PKG_DIR/"pipelines", site/"pipelines")
    shutil.copytree(PKG_DIR/"assets", site/"assets")     # package data an install carries too (the run report's stylesheet)
    monkeypatch.setattr(runs, "PKG_DIR", site)
    assert pipeline_dir() == site/"pipelines"
    r = run_pipeline(RunSpec(name="installed", stages=["exploration"]), root=tmp_path/"runs", tracking_root=tmp_path)
    rec = json.loads((r/"run.json").read_text())
    assert rec["status"] == "ok" and list(rec["stages"]) == ["exploration"], rec
    assert (r/"01_exploration.ipynb").exists() and (r/"sample_grid.png").stat().st_size > 10_000
    shutil.rmtree(site/"pipelines")
    with pytest.raises(FileNotFoundError, match="Pipeline notebooks not found"): pipeline_dir()
