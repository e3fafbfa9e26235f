"""The report and the server in a real headless Chromium: what a person would see, checked."""

from __future__ import annotations

import base64
import json

import duckdb
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.report.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def _load(browser, url: str) -> None:
    browser.get_log("browser"), browser.get_log("performance")  # drop earlier pages' entries
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )


def _console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _requested_urls(browser) -> list[str]:
    """Every URL the page asked for (Chrome's network log), plus the resource timing list."""
    urls = []
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    urls += browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return urls


def _broken_images(browser) -> tuple[int, int]:
    return browser.execute_script(
        "const im = [...document.images]; return [im.length, "
        "im.filter(i => !(i.complete && i.naturalWidth > 0)).length];"
    )


def _visible(browser) -> int:
    return int(browser.find_element(By.ID, "visible-count").get_attribute("data-visible"))


def _screenshot(browser, name: str):
    """A full-page PNG in the test-artifacts folder; returns its path."""
    height = browser.execute_script("return document.body.scrollHeight")
    metrics = {"width": 1400, "height": min(height, 16000), "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _worst_ids(manifest, n: int) -> list[str]:
    q = (f"SELECT id FROM read_parquet('{manifest}/*.parquet') WHERE NOT isnan(label_quality) "
         "ORDER BY label_quality, id LIMIT ?")  # fmt: skip
    return [r[0] for r in duckdb.connect().execute(q, [n]).fetchall()]


def _painted_pixels(browser, canvas_id: str) -> int:
    """Non-white pixels of a canvas (WebGL or 2D), read back through a 2D canvas."""
    return browser.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const t = document.createElement('canvas'); t.width = c.width; t.height = c.height;"
        "const x = t.getContext('2d'); x.drawImage(c, 0, 0);"
        "const d = x.getImageData(0, 0, t.width, t.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i] < 240 || d[i+1] < 240 || d[i+2] < 240) n++;"
        "return n;",
        canvas_id,
    )


def test_demo_report_renders_offline(browser, demo_report, demo_dir):
    _load(browser, demo_report.as_uri())
    assert _console_errors(browser) == []
    urls = _requested_urls(browser)
    assert urls and all(u.startswith(("file://", "data:")) for u in urls), urls[:5]
    n_img, broken = _broken_images(browser)
    assert n_img > 300 and broken == 0
    # the gallery shows the manifest's worst-ranked rows, in order
    ids = browser.execute_script(
        "return [...document.querySelectorAll('#label_issues-worst .card')].map(e => e.dataset.id)"
    )
    assert ids == _worst_ids(demo_dir / "label-issues", len(ids)) and len(ids) == 240
    # the embedding maps drew every sampled point
    for name in ("label_issues", "pruned"):
        canvas = browser.find_element(By.ID, f"{name}-map-canvas")
        assert canvas.get_attribute("data-points") == "400"
        assert canvas.get_attribute("data-renderer") in ("webgl", "2d")
        assert _painted_pixels(browser, f"{name}-map-canvas") > 2000
    path = _screenshot(browser, "report.png")
    assert path.stat().st_size > 50_000


def test_filters_change_the_visible_galleries(browser, demo_report):
    _load(browser, demo_report.as_uri())
    total = _visible(browser)
    flagged = browser.execute_script(
        "return document.querySelectorAll('.card[data-flagged=\"1\"]').length"
    )
    browser.find_element(By.ID, "filter-flagged").click()
    assert _visible(browser) == flagged < total
    browser.find_element(By.ID, "filter-flagged").click()
    assert _visible(browser) == total
    browser.execute_script(
        "const s = document.getElementById('filter-reason'); s.value = 'semdedup:dup_of';"
        "s.dispatchEvent(new Event('change'));"
    )
    dups = browser.execute_script(
        "return document.querySelectorAll('.card[data-reason=\"semdedup:dup_of\"]').length"
    )
    assert 0 < _visible(browser) == dups < total
    assert _console_errors(browser) == []


def test_map_hover_shows_id_and_thumbnail(browser, demo_report):
    _load(browser, demo_report.as_uri())
    canvas = browser.find_element(By.ID, "label_issues-map-canvas")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    # the first point's position on the canvas, from the page's own data
    x, y = browser.execute_script(
        "const m = JSON.parse(document.getElementById('curate-data').textContent).manifests[0];"
        "const b = atob(m.sections.map.xy), u = new Uint8Array(b.length);"
        "for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);"
        "const xy = new Float32Array(u.buffer), c = arguments[0];"
        "return [12 + xy[0] * (c.clientWidth - 24), 12 + (1 - xy[1]) * (c.clientHeight - 24)];",
        canvas,
    )
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(x - canvas.size["width"] / 2), int(y - canvas.size["height"] / 2)
    ).perform()
    tip = browser.find_element(By.ID, "tip")
    WebDriverWait(browser, 5).until(lambda d: tip.is_displayed())
    assert tip.find_elements(By.TAG_NAME, "img") and "label:" in tip.text


def test_bad_rows_show_marked_placeholders(browser, bad_manifest, tmp_path):
    from curate.reporting import report

    page = report([bad_manifest], tmp_path / "bad.html")
    _load(browser, page.as_uri())
    assert _console_errors(browser) == []
    n_img, broken = _broken_images(browser)
    assert (n_img, broken) == (2, 0)
    marks = browser.execute_script(
        "return [...document.querySelectorAll('.ph.bad')].map(e => e.textContent)"
    )
    assert "url only (not fetched)" in marks
    assert any(m.startswith("decode:") for m in marks) and len(marks) == 4
    assert all(u.startswith(("file://", "data:")) for u in _requested_urls(browser))


def test_folder_form_loads_its_thumbnail_files(browser, demo_dir, tmp_path):
    from curate.reporting import report

    index = report([demo_dir / "label-issues"], tmp_path / "gallery")
    _load(browser, index.as_uri())
    n_img, broken = _broken_images(browser)
    assert n_img >= 400 and broken == 0
    srcs = browser.execute_script("return [...document.images].map(i => i.getAttribute('src'))")
    assert all(s.startswith("thumbs/") for s in srcs)
    assert _console_errors(browser) == []


def test_serve_pages_a_query_through_the_browser(browser, demo_dir):
    from curate.reporting.serve import serve_in_thread

    server, _ = serve_in_thread([demo_dir / "label-issues", demo_dir / "pruned"], port=0)
    try:
        port = server.server_address[1]
        _load(browser, f"http://127.0.0.1:{port}/")
        gallery = browser.find_element(By.ID, "query-gallery")
        WebDriverWait(browser, 20).until(lambda d: gallery.get_attribute("data-rows") == "60")
        browser.find_element(By.ID, "query-where").send_keys("is_label_issue")
        browser.find_element(By.ID, "query-order").send_keys("label_quality, id")
        browser.find_element(By.ID, "query-run").click()
        flagged = duckdb.connect().execute(
            f"SELECT id FROM read_parquet('{demo_dir}/label-issues/*.parquet') "
            "WHERE is_label_issue ORDER BY label_quality, id").fetchall()  # fmt: skip
        want = min(60, len(flagged))
        WebDriverWait(browser, 20).until(
            lambda d: gallery.get_attribute("data-total") == str(len(flagged))
        )
        ids = [e.get_attribute("data-id") for e in gallery.find_elements(By.CSS_SELECTOR, ".card")]
        assert ids == [r[0] for r in flagged[:want]]
        # the next page of all rows (ORDER BY id): rows 61..120
        browser.find_element(By.ID, "query-where").clear()
        browser.find_element(By.ID, "query-order").clear()
        browser.find_element(By.ID, "query-run").click()
        WebDriverWait(browser, 20).until(lambda d: gallery.get_attribute("data-total") == "400")
        browser.find_element(By.ID, "query-next").click()
        WebDriverWait(browser, 20).until(lambda d: gallery.get_attribute("data-page") == "1")
        ids = [e.get_attribute("data-id") for e in gallery.find_elements(By.CSS_SELECTOR, ".card")]
        assert ids == [f"d{i:04d}" for i in range(60, 120)]
        assert _broken_images(browser)[1] == 0 and _console_errors(browser) == []
        _screenshot(browser, "serve.png")
    finally:
        server.shutdown()
        server.server_close()


def test_check_section_shows_leak_pairs_side_by_side(browser, tmp_path):
    """A checked manifest's report: no console error, every pair has two images."""
    pytest.importorskip("faiss")
    pytest.importorskip("imagehash")
    import curate.reporting as R
    from curate.pipelines.check import check
    from tests.pipelines._check_data import build

    planted = build(tmp_path / "m", n_train=40, n_test=10)
    m = check(planted.path, tmp_path / "c", near_dup_threshold=0.9995, progress="off")
    _load(browser, R.report([m.path], tmp_path / "r.html").as_uri())
    assert _console_errors(browser) == []
    n_img, broken = _broken_images(browser)
    assert n_img > 40 and broken == 0
    pairs = browser.execute_script(
        "return [...document.querySelectorAll('#c-leaks .group')].map("
        "g => [...g.querySelectorAll('.card')].map(c => [c.dataset.id || c.textContent, "
        "!!c.querySelector('img')]))"
    )
    assert len(pairs) >= 6 and all(len(p) == 2 and p[0][1] and p[1][1] for p in pairs)
    assert ["test-0000", True] in [p[0] for p in pairs]
    _screenshot(browser, "report-check.png")
