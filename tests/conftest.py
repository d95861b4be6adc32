"""Shared pytest fixtures: a headless Chromium for page checks."""
import os, shutil, subprocess, tempfile, pathlib, pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

@pytest.fixture(scope="session")
def chromium():
    "Path of a Chromium binary; CI (CI=true) requires one, elsewhere the test is skipped with the install command."
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI"): pytest.fail("Chromium is required in CI: apt-get install -y chromium")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    return exe

def screenshot(chromium, url, out, size="1280,900", budget_ms=15000):
    "Load `url` in headless Chromium and write a PNG screenshot to `out`; return the PNG path."
    with tempfile.TemporaryDirectory() as prof:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", f"--window-size={size}",
                        f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=120)
    return pathlib.Path(out)

def dump_dom(chromium, url, budget_ms=15000) -> str:
    "The page's DOM after scripts ran, as Chromium serialises it."
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", f"--virtual-time-budget={budget_ms}",
                            "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    return r.stdout
