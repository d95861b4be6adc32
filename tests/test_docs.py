"""The offline docs site (built by tools/build_docs.py, which `make test` runs first) loads in headless Chromium."""
import pathlib, numpy as np, pytest
from PIL import Image
from conftest import ROOT, screenshot, dump_dom

SITE = ROOT/"_site"

@pytest.fixture(scope="module")
def site():
    if not (SITE/"index.html").exists(): pytest.fail("No docs site: run `python tools/build_docs.py` first (make test does).")
    return SITE

def test_index_page_renders(site, chromium, tmp_path):
    png = screenshot(chromium, (site/"index.html").as_uri(), tmp_path/"index.png")
    im = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert im.shape[0] > 500 and im.std() > 10, "docs index page rendered blank"
    dom = dump_dom(chromium, (site/"index.html").as_uri())
    assert "defect_twin" in dom and "make test" in dom       # the README's content
    assert 'class="md-search' in dom                         # search box present
    assert "00_core.html" in dom and "13_runs.html" in dom    # navigation links the module pages

def test_every_module_has_a_page(site):
    nbs = [p.stem.split("_", 1)[1] for p in (ROOT/"nbs").glob("[0-9][0-9]_*.ipynb")]
    pages = {p.stem for p in site.rglob("*.html")}
    missing = [n for n in nbs if not any(n in p for p in pages)]
    assert not missing, f"modules without a docs page: {missing}"

def test_search_index_covers_api(site):
    idx = (site/"search"/"search_index.json").read_text()
    assert "seed_everything" in idx and "ModelFolder" in idx

def test_module_page_shows_figures_and_clean_api(site, chromium):
    "A module page (metrics) shows its executed figures (an ROC curve among them) and the API reference without markup debris."
    page = site/"07_metrics.html"
    dom = dump_dom(chromium, page.as_uri())
    imgs = [s for s in dom.split("<img")[1:]]
    assert any("07_metrics" in s.split(">")[0] for s in imgs), "no figure of the notebook on its page"
    assert "ROC" in dom and "plot_roc" in dom
    assert "source{target" not in dom and '{target="_blank"' not in dom     # nbdev's Quarto link attributes, rendered
    assert "NoneType" not in dom                                           # `ax=None`, not `ax:NoneType=None`
    assert 'target="_blank"' in dom                                        # the source links keep their attributes

def test_api_links_stay_on_the_site(site):
    "No API link goes to the public docs host: each goes to a page of this site, and a link on a symbol lands on an id that page has."
    import re
    bad, checked = [], 0
    for page in site.rglob("*.html"):
        if page.parent.name in ("search", "assets"): continue
        html = page.read_text(errors="replace")
        for href in re.findall(r'href="([^"]+)"', html):
            if "defect-twin.github.io" in href or href.startswith("/defect_twin/"): bad.append((page.name, href))
            if re.match(r"(\.\./)*[\w/]+\.html#[\w.]+$", href) and "#" in href:
                target, anchor = (page.parent/href.split("#")[0]).resolve(), href.split("#")[1]
                checked += 1
                if not target.exists() or f'id="{anchor}"' not in target.read_text(errors="replace"): bad.append((page.name, href))
    assert checked > 50, checked
    assert not bad, f"{len(bad)} links that leave the site or miss their anchor, e.g. {bad[:8]}"
