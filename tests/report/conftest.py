"""Small real manifests for the report tests, and a real headless Chromium driven by Selenium."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names
from tests.pipelines._label_data import write_digits

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Where the browser tests leave their screenshots (CI keeps this folder as an artifact).
ARTIFACTS = Path(
    os.environ.get("CURATE_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The demo's two report inputs, built by the real pipeline on 400 sklearn digits.

    ``label-issues``: cleanlab on cross-validated predictions from pixel embeddings;
    ``pruned``: SemDeDup (eps 0.02) then DBP keeping 40% in 8 clusters.
    """
    from threadpoolctl import threadpool_limits

    from curate.pipelines.label_issues import label_issues
    from curate.pipelines.prune import prune

    out = tmp_path_factory.mktemp("demo-out")
    with threadpool_limits(1):
        write_digits(out / "digits.parquet", n=400, flips=24, embedding=True)
        label_issues(out / "digits.parquet", out / "label-issues", features="embedding")
        prune(out / "label-issues", out / "pruned", keep=0.4, method="dbp", k=8, dedup_eps=0.02)
    return out


@pytest.fixture(scope="session")
def demo_report(demo_dir) -> Path:
    """The demo's report stage run on :func:`demo_dir` (exactly what ``curate demo`` does)."""
    from curate.demo import _report

    return _report(demo_dir, lambda _m: None)


def _png(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def bad_manifest(tmp_path_factory) -> Path:
    """Rows with a URL only, with corrupt image bytes (and an error), and an unknown column."""
    rng = np.random.default_rng(0)
    n = 6
    images = [_png(rng), None, b"\x89PNG not really", None, _png(rng), b"junk"]
    table = pa.table(
        {
            "id": [f"b{i}" for i in range(n)],
            "image": pa.array(images, pa.binary()),
            "url": [
                None,
                "https://example.com/1.jpg",
                None,
                "https://example.com/3.jpg",
                None,
                None,
            ],
            "label": pa.array([0, 1, 0, 1, 0, 1], pa.int64()),
            "error": [None, None, "decode: cannot identify image file", None, None, None],
            "weird": pa.array([{"a": i, "b": [i]} for i in range(n)]),
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, ["cat", "dog"]).metadata)
    path = tmp_path_factory.mktemp("bad") / "bad.parquet"
    write_manifest(table, path)
    return path


def _chrome_options():
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--enable-unsafe-swiftshader", "--window-size=1400,1000"):  # fmt: skip
        opts.add_argument(arg)
    # Every host resolves to nothing, so no request can leave the machine; only the loopback
    # address that the `curate serve` test listens on is excluded.
    opts.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return opts


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's chromium + chromium-driver); skips locally when
    missing, fails in CI (``CI=true``) where .ci/run installs them."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install 'curate-ml[dev]')")
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        _missing("chromium / chromedriver missing (apt-get install chromium chromium-driver)")
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=_chrome_options()
    )
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _missing(why: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run in CI: {why}")
    pytest.skip(why)
