"""The `/line` page in headless Chromium (driven by Playwright, using the system Chromium): station tiles, an
alarm raised by posted events appears on the page within 5 s, and a line that starts bad is judged from its first
part, with the alarm marked on charts that have axes, limits and the threshold."""
import json, os, pathlib, subprocess, sys, time
import httpx
import pytest
from twin_support import write_line, write_startup_line, part, normal_scores, TwinServer
from api_support import tiny_patchcore_folder

CMD = str(pathlib.Path(sys.executable).parent/"defect-twin")


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


def test_dashboard_judges_from_the_first_part(chromium, tmp_path):
    "`twin simulate`: 2 % expected rejects, 30 % defects from the first part: an alarm within 20 parts, shown on the dashboard's charts."
    from playwright.sync_api import sync_playwright
    from conftest import CHROMIUM_FLAGS
    line = write_startup_line(tmp_path, tiny_patchcore_folder(tmp_path/"tiny").path)
    env = {**os.environ, "DEFECT_TWIN_CACHE": str(tmp_path/"cache")}
    r = subprocess.run([CMD, "twin", "simulate", str(line), "--data", "sample", "--out", str(tmp_path/"sim"), "--only", "startup", "--threads", "1"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads((tmp_path/"sim"/"results.json").read_text())["rows"][0]
    assert row["scenario"] == "startup at 30 % defects" and row["change_at"] == 0
    assert row["delay_parts"] is not None and row["delay_parts"] <= 20, row          # judged from the first part
    with TwinServer(line, f"sqlite:///{row['db']}") as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[f for f in CHROMIUM_FLAGS if f != "--headless"], headless=True)
        try:
            page = browser.new_page(viewport=dict(width=1280, height=1400))
            page.goto(srv.url + "/line", timeout=30000)
            page.wait_for_selector("tr.alarm.open", timeout=15000)
            page.wait_for_selector(".chart svg.chart-svg .alarm-mark", timeout=15000)
            cam = page.locator(".tile[data-station='cam']")
            assert cam.locator(".alarm-line").inner_text().startswith("ALARM") and "expected 2.0 %" in cam.inner_text()
            assert "no events received yet" not in page.locator(".tile[data-station='fill']").inner_text()
            assert "end of run" in page.locator(".tile[data-station='fill'] .state").inner_text().lower()     # an idle station says why
            rate = page.locator(".chart", has_text="Defect share")
            assert "expected defect rate 2.0 %" in rate.locator(".note").inner_text()
            for chart in (rate, page.locator(".chart", has_text="Anomaly score of each part")):
                assert chart.locator("g.axis-x text.tick:not(.time)").count() >= 3 and chart.locator("g.axis-y text.tick").count() >= 3
                assert chart.locator("g.axis-x text.time").first.text_content().count(":") == 2           # the time of the parts
                assert chart.locator("path.limit").count() >= 1
            assert rate.locator("path.limit.centre").get_attribute("data-label") == "expected 2.0 %"
            assert rate.locator("path.limit.ucl").count() == 1 and rate.locator("text.limit-label", has_text="UCL").count() == 1
            marks = [int(x) for x in rate.locator(".alarm-mark").evaluate_all("els => els.map(e => e.dataset.x)")]
            assert marks and marks[0] < 20, marks                                                      # the alarm, where it was raised
            score = page.locator(".chart", has_text="Anomaly score of each part")
            assert score.locator("path.limit.threshold").get_attribute("data-label").startswith("threshold ")
            assert score.locator("g.series.dots circle").count() == 200
            page.screenshot(path=str(tmp_path/"line.png"), full_page=True)
            assert (tmp_path/"line.png").stat().st_size > 20000
        finally:
            browser.close()
    print(f"alarm after {row['delay_parts']} parts ({row['first_alarm']}); screenshot {tmp_path/'line.png'}")
