"""The inspection service's page (`/`, `defect_twin/assets/service.*`) in headless Chromium, driven by Playwright with
the page's real Content-Security-Policy in force (no `bypass_csp`: the test waits with selectors, never with JS
strings), against `serve` in a subprocess with a small real PatchCore model and an API key.

It scores two files in one request, re-labels a verdict with the what-if threshold without any request, downloads the
answers (JSON) and the overlay (PNG), keeps the last 20 results, scores a dropped set and a folder, shows the service's
413 for the request pixel budget, and logs no console error and no CSP violation."""
import base64, json, pathlib
import numpy as np, cv2, httpx, pytest
from conftest import CHROMIUM_FLAGS
from api_support import Server, tiny_patchcore_folder, png_bytes
from defect_twin.core import sample_path
from defect_twin.inference import Engine

SAMPLE = sample_path()/"test"
KEY = "s3cret"
BATCH = "/api/v1/detect/batch"
pw = pytest.importorskip("playwright.sync_api", reason="pip install playwright (uses the system Chromium, no download)")

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory): return tiny_patchcore_folder(tmp_path_factory.mktemp("page")/"model").path

@pytest.fixture(scope="module")
def engine(model_dir): return Engine(model_dir, threads=1)

@pytest.fixture(scope="module")
def server(model_dir):
    # two 256x256 sample images fit the request pixel budget (131,072 px); one 400x400 image does not (160,000 px);
    # two files per request, so the page must split larger selections into several requests
    with Server(model_dir, workers=1, max_files=2, max_request_pixels=150_000, api_key_env="DT_PAGE_KEY",
                env={"DT_PAGE_KEY": KEY}, headers={"X-API-Key": KEY}) as s: yield s

@pytest.fixture()
def browser(chromium):
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[a for a in CHROMIUM_FLAGS if a != "--headless"])
        try: yield b
        finally: b.close()

class Watched:
    "A page with the CSP in force whose requests, console errors, page errors and CSP violations are recorded."
    def __init__(self, browser, url):
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        self.requests, self.errors, self.violations = [], [], []
        self.ctx.expose_function("__cspViolation", lambda v: self.violations.append(v))
        self.ctx.add_init_script("document.addEventListener('securitypolicyviolation', "
                                 "e => window.__cspViolation(e.violatedDirective + ' ' + e.blockedURI))")
        self.page = pg = self.ctx.new_page()
        pg.on("request", lambda r: self.requests.append(r))
        self.failed = []                                               # (status, path) of answers >= 400
        pg.on("response", lambda r: self.failed.append((r.status, r.url.split("127.0.0.1")[-1].split(":", 1)[-1])) if r.status >= 400 else None)
        pg.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: self.errors.append(str(e)))
        pg.goto(url + "/", wait_until="load")
        assert pg.locator("#model").inner_text() in ("API key needed", "loading model...")
        pg.fill("#key", KEY); pg.press("#key", "Tab")                    # `change`: the page fetches the model with the key
        pg.wait_for_selector("#model:has-text('tiny_bottle')", timeout=15000)

    def batches(self): return [r for r in self.requests if r.method == "POST" and BATCH in r.url]

    def verdicts(self) -> list:
        "(file name, verdict) of the history list, top (newest) first."
        li = self.page.locator("#history li")
        return [(li.nth(i).locator(".n").inner_text(), li.nth(i).get_attribute("data-verdict")) for i in range(li.count())]

    def download(self, button) -> pathlib.Path:
        with self.page.expect_download(timeout=10000) as d: self.page.click(button)
        return pathlib.Path(d.value.path())

def scored_pair(engine):
    "A good and a defect image of the sample, with the engine's scores (the test needs their verdicts to differ)."
    good, cands = SAMPLE/"good"/"000.png", sorted((SAMPLE/"broken_large").glob("*.png"))
    bad, pb = max(zip(cands, engine.predict_paths(cands)), key=lambda t: t[1].score)
    pg = engine.predict_paths([good])[0]
    assert (pg.label, pb.label) == ("good", "defect"), (pg, pb)
    return (good, pg), (bad, pb)

def test_two_files_at_once_what_if_threshold_downloads(server, browser, engine, tmp_path):
    (good, pgood), (bad, pbad) = scored_pair(engine)
    w = Watched(browser, server.url); pg = w.page
    pg.set_input_files("#file", [str(good), str(bad)])
    pg.wait_for_selector("#history li:nth-child(2)", timeout=15000)
    pg.wait_for_selector("#overlay[src^='data:image/png']", state="attached", timeout=15000)
    # one request carried both files
    assert len(w.batches()) == 1, [r.url for r in w.batches()]
    answer = w.batches()[0].response().json()
    assert answer["count"] == 2 and [a["filename"] for a in answer["results"]] == ["000.png", bad.name], answer["count"]
    assert w.verdicts() == [("000.png", "good"), (bad.name, "defect")]
    assert pg.inner_text("#verdict") == "GOOD" and pg.inner_text("#fname") == "000.png"
    assert "2 of 2 file(s) scored: 1 good, 0 review, 1 defect" in pg.inner_text("#summary")
    assert f"{pgood.score:.4g}"[:4] in pg.inner_text("#numbers")
    assert "render.heatmap_overlay" in pg.inner_text("#hfig figcaption") and "turbo" in pg.inner_text("#hfig figcaption")

    # the what-if threshold: below the good image's score, the good one turns defect; no request is sent
    n = len(w.requests)
    what_if = pgood.score * 0.9
    pg.fill("#thr-num", f"{what_if:.6g}")
    pg.wait_for_selector("#verdict.defect", timeout=5000)
    assert w.verdicts() == [("000.png", "defect"), (bad.name, "defect")]
    assert "served verdict GOOD" in pg.inner_text("#served")
    note = pg.inner_text("#thr-note")
    assert "no request" in note and f"{engine.threshold:.4g}" in note, note
    assert "2 defect" in pg.inner_text("#summary") and "what-if" in pg.inner_text("#summary")
    doc = json.loads(w.download("#dl-json").read_text())             # the answers, with the what-if verdicts
    assert doc["what_if_threshold"] == pytest.approx(what_if, rel=1e-5)
    assert doc["served_threshold"] == pytest.approx(engine.threshold)
    assert [(r["filename"], r["label"], r["what_if_verdict"]) for r in doc["results"]] == \
           [("000.png", "good", "defect"), (bad.name, "defect", "defect")]
    assert [r["score"] for r in doc["results"]] == pytest.approx([pgood.score, pbad.score], abs=1e-5)
    assert all("heatmap_png" not in r for r in doc["results"])
    # the slider itself, by keyboard: its top end is above every score, so everything is good
    pg.focus("#thr"); pg.keyboard.press("End")
    pg.wait_for_selector("#history li[data-verdict='defect']", state="detached", timeout=5000)
    assert [v for _, v in w.verdicts()] == ["good", "good"]
    pg.click("#thr-reset")
    pg.wait_for_selector("#history li:nth-child(2)[data-verdict='defect']", timeout=5000)
    assert w.verdicts() == [("000.png", "good"), (bad.name, "defect")] and pg.inner_text("#served") == ""
    pg.wait_for_timeout(300)
    assert len(w.requests) == n, [r.url for r in w.requests[n:]]     # all of it in the browser

    # opacity, the other result, its overlay PNG (the service's own overlay, byte for byte)
    pg.focus("#opacity"); pg.keyboard.press("Home")
    assert "opacity: 0" in pg.get_attribute("#overlay", "style") and pg.inner_text("#opacity-val") == "0 %"
    pg.click("#history li:nth-child(2)")
    pg.wait_for_selector(f"#fname:has-text('{bad.name}')", timeout=5000)
    assert pg.inner_text("#verdict") == "DEFECT"
    got = w.download("#dl-png").read_bytes()
    r = httpx.post(server.url + "/api/v1/detect", params={"heatmap": "true"}, headers={"X-API-Key": KEY},
                   files={"file": (bad.name, bad.read_bytes(), "image/png")}, timeout=30)
    assert got == base64.b64decode(r.json()["heatmap_png"])
    assert cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_COLOR).shape == (256, 256, 3)
    doc = json.loads(w.download("#dl-json").read_text())
    assert doc["what_if_threshold"] is None and [r["what_if_verdict"] for r in doc["results"]] == ["good", "defect"]

    # the CSP blocked nothing the page needs, and the listener does catch what it blocks; the only refused request is
    # the model description asked for before the key was typed (the browser logs it as a console error)
    assert [(s, p.split("/", 1)[1]) for s, p in w.failed] == [(401, "api/v1/model")], w.failed
    assert len(w.errors) == 1 and "401" in w.errors[0] and not w.violations, (w.errors, w.violations)
    pg.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1'; document.body.append(s); }")
    pg.wait_for_timeout(300)
    assert w.violations and "script-src" in w.violations[0], w.violations
    pg.screenshot(path=str(tmp_path/"service_page.png"), full_page=True)
    w.ctx.close()

def test_many_files_folder_drop_and_413(server, browser, engine, tmp_path):
    w = Watched(browser, server.url); pg = w.page
    paths = sorted(SAMPLE.rglob("*.png"))
    files = [{"name": f"{i:02d}_{p.name}", "mimeType": "image/png", "buffer": p.read_bytes()}
             for i, p in enumerate((paths * 2)[:22])]
    pg.set_input_files("#file", files)
    pg.wait_for_selector("#summary:has-text('22 of 22 file(s) scored')", timeout=60000)
    assert len(w.batches()) == 11                                     # the service takes 2 files per request
    h = w.verdicts()
    assert len(h) == 20 and h[0][0] == "00_" + paths[0].name and h[-1][0] == f"19_{paths[19 % len(paths)].name}", h
    labels = {p.name: x.label for p, x in zip(paths, engine.predict_paths(paths))}
    assert all(v == labels[n[3:]] for n, v in h), h

    # a folder: its images are scored, other files skipped
    d = tmp_path/"lot_17"; d.mkdir()
    for p in paths[:2]: (d/p.name).write_bytes(p.read_bytes())
    (d/"notes.txt").write_text("operator notes")
    pg.set_input_files("#folder", str(d))
    pg.wait_for_selector("#summary:has-text('2 of 2 file(s) scored')", timeout=30000)
    assert "1 non-image file(s) skipped" in pg.inner_text("#summary")
    assert [n for n, _ in w.verdicts()[:2]] == [f"lot_17/{p.name}" for p in paths[:2]]

    # two files dropped on the drop zone: one request
    n = len(w.batches())
    dt = pg.evaluate_handle("""files => { const dt = new DataTransfer();
        for (const [name, b64] of files) dt.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, {type: 'image/png'}));
        return dt; }""", [[f"drop_{p.name}", base64.b64encode(p.read_bytes()).decode()] for p in paths[-2:]])
    pg.dispatch_event("#drop", "drop", {"dataTransfer": dt})
    pg.wait_for_selector(f"#history li:first-child:has-text('drop_{paths[-2].name}')", timeout=30000)
    assert len(w.batches()) == n + 1

    # too many pixels for one request: the service's 413, said plainly, and the list is kept
    big = cv2.resize(cv2.imread(str(paths[0]))[..., ::-1], (400, 400))
    pg.set_input_files("#file", [{"name": "big.png", "mimeType": "image/png", "buffer": png_bytes(big)}])
    pg.wait_for_selector("#error:has-text('Error 413')", timeout=30000)
    err = pg.inner_text("#error")
    assert "160,000 pixels" in err and "150,000 pixels per request" in err and "fewer or smaller images" in err, err
    assert len(w.verdicts()) == 20
    # a broken file: the service's 422 with the file's name
    pg.set_input_files("#file", [{"name": "broken.png", "mimeType": "image/png", "buffer": paths[0].read_bytes()[:400]}])
    pg.wait_for_selector("#error:has-text('Error 422')", timeout=30000)
    assert "broken.png" in pg.inner_text("#error")
    assert [(s, p.split("/", 1)[1].split("?")[0]) for s, p in w.failed] == \
           [(401, "api/v1/model"), (413, "api/v1/detect/batch"), (422, "api/v1/detect/batch")], w.failed
    assert len(w.errors) == 3 and not w.violations, (w.errors, w.violations)  # the browser logs the refused fetches
    w.ctx.close()

def test_page_files_need_no_key_and_nothing_else_is_served(server):
    for path, kind in (("/", "text/html"), ("/static/service.js", "text/javascript"), ("/static/service.css", "text/css")):
        r = httpx.get(server.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), (path, r.status_code)
    csp = httpx.get(server.url + "/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp, csp
    assert httpx.get(server.url + "/static/api.py", timeout=10).status_code == 401
    assert httpx.get(server.url + "/static/line.js", headers={"X-API-Key": KEY}, timeout=10).status_code == 404

def test_review_band_and_what_if(model_dir, browser, engine, tmp_path):
    "A model with a review band: the served verdict 'review' is shown as such, and the what-if keeps the band's lower edge."
    import shutil
    (good, pgood), (bad, pbad) = scored_pair(engine)
    d = tmp_path/"banded"; shutil.copytree(model_dir, d)
    from defect_twin.core import ModelFolder
    t = json.loads((d/"threshold.json").read_text())
    t["review_low"] = pgood.score * 0.95                              # the good image lies in the band
    ModelFolder(d).write_threshold(t)                                 # the official way (a hand edit is refused)
    with Server(d, workers=1, api_key_env="DT_PAGE_KEY", env={"DT_PAGE_KEY": KEY}, headers={"X-API-Key": KEY}) as s:
        w = Watched(browser, s.url); pg = w.page
        pg.set_input_files("#file", [str(good), str(bad)])
        pg.wait_for_selector("#history li:nth-child(2)", timeout=15000)
        assert w.verdicts() == [("000.png", "review"), (bad.name, "defect")]
        assert pg.inner_text("#verdict") == "REVIEW" and "1 good" not in pg.inner_text("#summary")
        assert "0 good, 1 review, 1 defect" in pg.inner_text("#summary")
        n = len(w.requests)
        pg.fill("#thr-num", f"{pgood.score * 0.97:.6g}")               # above the band's edge, below the score: defect
        pg.wait_for_selector("#verdict.defect", timeout=5000)
        pg.fill("#thr-num", f"{pbad.score * 1.01:.6g}")                # above both scores: both in the band
        pg.wait_for_selector("#history li:nth-child(2)[data-verdict='review']", timeout=5000)
        assert [v for _, v in w.verdicts()] == ["review", "review"]
        pg.click("#thr-reset")
        pg.wait_for_selector("#history li:nth-child(2)[data-verdict='defect']", timeout=5000)
        assert w.verdicts() == [("000.png", "review"), (bad.name, "defect")] and len(w.requests) == n
        assert not w.violations and len(w.errors) == 1, (w.errors, w.violations)    # the 401 before the key
        w.ctx.close()
