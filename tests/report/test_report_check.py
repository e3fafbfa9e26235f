"""The report's Check section on a checked manifest: counts, leak and duplicate pairs side by
side (the other manifest's side of --against leaks included), galleries worst first."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import curate.reporting as R
from curate.manifests import schema as S
from curate.manifests.io import write_manifest
from curate.pipelines.check import check
from tests.pipelines._check_data import build, fashion, pixel_vectors, png
from tests.report.test_report import _page_data

pytest.importorskip("faiss")
pytest.importorskip("imagehash")


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    d = tmp_path_factory.mktemp("rc")
    planted = build(d / "m", n_train=40, n_test=10)
    imgs = np.concatenate([fashion(2, offset=5000), fashion(1, offset=2)])
    vec = pixel_vectors(list(imgs))
    field = S.embedding_field("embedding", vec.shape[1], "float32", model="pixels-7x7")
    table = pa.table(
        {
            "id": ["ev-0", "ev-1", "ev-2"],
            "image": pa.array([png(a) for a in imgs], pa.binary()),
            "label": pa.array([0, 1, 2], pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), vec.shape[1]),
        },
        schema=pa.schema(
            [("id", pa.string()), ("image", pa.binary()), ("label", pa.int64()), field]
        ),
    )
    ev = write_manifest(table, d / "eval")
    m = check(planted.path, d / "c", against=str(ev), near_dup_threshold=0.9995, progress="off")
    return planted, m


def test_check_section_shows_counts_pairs_and_galleries(checked, tmp_path):
    planted, m = checked
    data = _page_data(R.report([m.path], tmp_path / "r.html").read_text())
    (page,) = data["manifests"]
    sec = page["sections"]["check"]
    counts = {c["issue"]: c["n"] for c in sec["counts"]}
    assert counts == {k: v for k, v in m.run_info["counts"].items() if k in counts}
    pairs = {(p["a"]["id"], p["of"]) for p in sec["leaks"]["pairs"]}
    assert {(t, c) for t, c in planted.exact_leaks.items()} <= pairs
    exact = {(p["a"]["id"], p["b"]["id"]) for p in sec["pairs"]["exact_dup"]}
    assert ("train-dup-0", "train-0007") in exact
    dark = [r["id"] for r in sec["worst"]["dark"]["rows"]]
    assert dark[0] == "train-blank" and "train-dark" in dark  # worst (lowest score) first
    # both sides of every pair have a thumbnail; the other manifest's side comes from it
    for p in sec["leaks"]["pairs"]:
        assert p["a"]["id"] in page["thumbs"]
        if p["source"].startswith("against:"):
            assert sec["leaks"]["other"][p["of"]]["thumb"].startswith("data:image/jpeg")
        else:
            assert p["b"]["id"] in page["thumbs"]
    assert any(p["source"].startswith("against:") for p in sec["leaks"]["pairs"])


def test_no_check_section_for_other_manifests(checked, tmp_path):
    planted, _ = checked
    data = _page_data(R.report([planted.path], tmp_path / "r.html").read_text())
    assert "check" not in data["manifests"][0]["sections"]
