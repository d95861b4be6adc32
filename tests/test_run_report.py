"""`defect-twin run` writes the run's `index.html`: headless Chromium renders it with the decision headline, at least
4 figures and no broken links (issue #21, the run report). The run is the default spec cut to its train stage at 128 px
on the bundled sample: the smallest run that evaluates a model and draws its figures (about 40 s on 2 CPU cores)."""
import html, json, os, subprocess, sys, time, urllib.parse
from html.parser import HTMLParser
import numpy as np, pytest
from PIL import Image
from conftest import ROOT, dump_dom, screenshot

class Refs(HTMLParser):
    "Every `href` and `src` of a page, and its `<img>` sources."
    def __init__(self):
        super().__init__(); self.refs, self.imgs = [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("href", "src"):
            if a.get(k): self.refs.append(a[k])
        if tag == "img": self.imgs.append(a.get("src"))

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    "A finished `defect-twin run` (the CLI, in a fresh process) and its output."
    d = tmp_path_factory.mktemp("runs")
    spec = d/"report.yaml"
    spec.write_text(f"name: report\nstages: [train]\nimage_size: 128\ntracking_uri: sqlite:///{d/'mlflow.db'}\n")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DEFECT_TWIN_RUNS": str(d/"elsewhere")}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "defect_twin.cli", "run", str(spec), "--root", str(d/"runs")], cwd=d, env=env,
                       capture_output=True, text=True, timeout=600)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    (run_dir,) = (d/"runs").iterdir()
    print(f"defect-twin run (train stage, 128 px, sample): {secs:.0f} s")
    return run_dir, p.stdout + p.stderr

def test_run_writes_index_and_says_where(run):
    run_dir, out = run
    rec = json.loads((run_dir/"run.json").read_text())
    assert rec["status"] == "ok" and rec["report"] == "index.html" and (run_dir/"index.html").is_file()
    assert str(run_dir/"index.html") in out, out[-1500:]                     # the path is printed
    for k in ("catch_rate_served", "frr_served", "catch_rate_at_frr_0.01", "catch_rate_at_frr_0.02"):
        assert 0 <= rec["metrics"][k] <= 1, (k, rec["metrics"])                # runs --compare shows them

def test_report_renders_headline_figures_and_links(run, chromium, tmp_path):
    from defect_twin.runs import run_evaluation, report_headline
    run_dir, _ = run
    page = run_dir/"index.html"
    ev = run_evaluation(run_dir)
    assert ev.get("decision"), "the run's evaluation has no decision line"
    dom = dump_dom(chromium, page.as_uri())
    assert html.escape(report_headline(ev)) in dom and html.escape(ev["decision"]) in dom
    assert report_headline(ev).startswith("Catches ") and "of good parts" in report_headline(ev)
    loaded = int(dom.split('data-figures-loaded="')[1].split('"')[0])        # counted by the page once every image loaded
    broken = int(dom.split('data-figures-broken="')[1].split('"')[0])
    assert loaded >= 4 and broken == 0, (loaded, broken)
    refs = Refs(); refs.feed(dom)
    assert len(refs.imgs) >= 4 and refs.imgs[0] == "figures/catch_curve.png", refs.imgs
    bad = [r for r in refs.refs if "://" in r or r.startswith("/") or not (run_dir/urllib.parse.unquote(r.split("#")[0])).is_file()]
    assert not bad, f"broken or absolute links: {bad}"
    assert any(r.endswith(".ipynb") for r in refs.refs) and any(r.endswith("_patchcore.html") for r in refs.refs)   # the notebooks
    png = screenshot(chromium, page.as_uri(), tmp_path/"report.png", size="1280,2000")
    im = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert im.std() > 10, "the report rendered blank"
