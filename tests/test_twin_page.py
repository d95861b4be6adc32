"""The `/line` page in headless Chromium (driven by Playwright, using the system Chromium): station tiles, and an
alarm raised by posted events appears on the page within 5 s."""
import time
import httpx
import pytest
from twin_support import write_line, part, normal_scores, TwinServer


def test_line_page_shows_tiles_and_a_new_alarm_within_5_s(chromium, tmp_path):
    from playwright.sync_api import sync_playwright
    from conftest import CHROMIUM_FLAGS
    line, db = write_line(tmp_path), f"sqlite:///{tmp_path/'line.db'}"
    with TwinServer(line, db, api_key="s3cret") as srv:
        h = srv.headers
        sc = normal_scores(120)
        assert httpx.post(srv.url + "/api/v1/events", json=dict(events=[part(i, sc[i]) for i in range(120)]), headers=h).json()["alarms"] == []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[f for f in CHROMIUM_FLAGS if f != "--headless"], headless=True)
            try:
                page = browser.new_page()
                page.goto(srv.url + "/line?key=s3cret", timeout=30000)
                page.wait_for_selector(".tile[data-station='cam']", timeout=15000)
                assert page.locator(".tile").count() == 2
                assert "RUNNING" in page.locator(".tile[data-station='cam'] .state").inner_text().upper()
                page.wait_for_function("document.getElementById('conn').textContent === 'live'", timeout=15000)
                assert page.locator("tr.alarm").count() == 0
                # raise an alarm: passed scores jump up 5 sigma
                r = httpx.post(srv.url + "/api/v1/events", json=dict(events=[part(i, 15.0) for i in range(120, 160)]), headers=h)
                raised = time.monotonic()
                assert r.status_code == 200 and r.json()["alarms"], r.text
                page.wait_for_selector("tr.alarm.open", timeout=5000)
                seen = time.monotonic() - raised
                assert seen < 5.0
                assert page.locator(".tile[data-station='cam'].alarm").count() == 1
                assert "camera" in page.locator("tr.alarm.open").first.inner_text()
            finally:
                browser.close()
        print(f"alarm on the page {seen:.2f} s after it was raised")
