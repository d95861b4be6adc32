"""`/docs` (Swagger UI) and `/redoc` render in headless Chromium with no network: every request the page makes that
is not to the service on 127.0.0.1 is aborted and recorded, and there must be none. Playwright drives the system
Chromium (no browser download)."""
import pytest
from conftest import CHROMIUM_FLAGS
from api_support import Server, tiny_patchcore_folder

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tiny_patchcore_folder(tmp_path_factory.mktemp("docs")/"model").path, workers=1) as s: yield s

@pytest.mark.parametrize("page,ready", [
    ("/docs", ".opblock"),                            # Swagger UI: one block per operation
    ("/redoc", "text=Inspect one image"),             # ReDoc rendered the schema's operations
])
def test_docs_render_offline(server, chromium, tmp_path, page, ready):
    pw = pytest.importorskip("playwright.sync_api", reason="pip install playwright (uses the system Chromium, no download)")
    outside, local = [], []
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[a for a in CHROMIUM_FLAGS if a != "--headless"])
        try:
            ctx = b.new_context(viewport={"width": 1200, "height": 900})
            def route(r):
                if r.request.url.startswith(server.url): local.append(r.request.url); r.continue_()
                else: outside.append(r.request.url); r.abort()
            ctx.route("**/*", route)
            pg = ctx.new_page()
            pg.goto(server.url + page, wait_until="load", timeout=30000)
            pg.wait_for_selector(ready, timeout=30000)      # selectors, not JS strings: the page's CSP forbids eval
            text, blocks = pg.inner_text("body"), pg.locator(".opblock").count()
            pg.screenshot(path=str(tmp_path/"docs.png"))
        finally: b.close()
    assert not outside, f"{page} tried to load from outside the service: {outside}"
    assert any("/docs-assets/" in u for u in local) and any(u.endswith("/openapi.json") for u in local), local
    assert "/api/v1/detect" in text, text[:500]
    if page == "/docs": assert blocks >= 5, blocks
