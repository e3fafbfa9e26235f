"""embed, prune and label-issues give the same manifest under --engine ray as locally, on the
demo set (real Fashion-MNIST images, real EfficientNet-Lite0 weights) and on generated data."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from curate.demo import DEMO_DATA
from curate.manifests.io import Manifest, write_manifest
from tests.conftest import embedded_table
from tests.engines._ray import ray, ray_local  # noqa: F401 (the module's Ray session)

pytestmark = pytest.mark.ray

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory):
    """The first 240 demo images (10 classes) as a manifest in 3 files."""
    import pyarrow.parquet as pq

    table = pq.read_table(DEMO_DATA).slice(0, 240)
    out = tmp_path_factory.mktemp("demo") / "m"
    return write_manifest(table, out, rows_per_shard=80)


@pytest.fixture(scope="module")
def embedded_both(demo_rows, tmp_path_factory):
    from curate.pipelines.embed import embed

    d = tmp_path_factory.mktemp("emb")
    opts = {
        "model": "efficientnet_lite0",
        "image_size": 32,
        "progress": False,
        "shard_rows": 100,
        "workers": 0,
    }
    local = embed(demo_rows, d / "local", **opts)
    on_ray = embed(demo_rows, d / "ray", engine="ray", **opts)
    return local, on_ray


def _data(m: Manifest) -> pa.Table:
    return m.read().replace_schema_metadata(None)


def test_embed_on_ray_equals_local(embedded_both):
    local, on_ray = embedded_both
    a, b = local.read(), on_ray.read()
    assert a.column("id").equals(b.column("id"))
    assert a.schema.equals(b.schema, check_metadata=True)
    import numpy as np

    va = np.array(a.column("embedding").to_pylist(), np.float32)
    vb = np.array(b.column("embedding").to_pylist(), np.float32)
    assert np.abs(va - vb).max() < 1e-3  # same model, same pixels; batch sizes may differ
    assert on_ray.run_info["engine"] == "ray"
    assert on_ray.run_info["counts"]["embedded"] == local.run_info["counts"]["embedded"] == 240


@pytest.mark.parametrize("method", ["dbp", "semdedup"])
def test_prune_on_ray_same_decisions_on_the_demo_set(embedded_both, tmp_path, method):
    from curate.pipelines.prune import prune

    src = embedded_both[0]
    opts = {"method": method, "keep": 0.5, "k": 8, "progress": "off"}
    local = prune(src, tmp_path / "local", **opts)
    on_ray = prune(src, tmp_path / "ray", engine="ray", **opts)
    assert _data(on_ray).equals(_data(local))
    assert on_ray.run_info["counts"]["kept"] == local.run_info["counts"]["kept"] == 120


@pytest.mark.parametrize("method", ["dbp", "semdedup"])
def test_prune_on_ray_same_decisions_on_generated_data(tmp_path, method):
    from curate.pipelines.prune import prune

    src = write_manifest(embedded_table(n=3000, dim=16), tmp_path / "in", rows_per_shard=1000)
    opts = {"method": method, "keep": 0.3, "progress": "off", "kept_out": None}
    local = prune(src, tmp_path / "local", **opts)
    on_ray = prune(src, tmp_path / "ray", engine="ray", **opts)
    assert _data(on_ray).equals(_data(local))
    assert (tmp_path / "ray" / "centroids.npy").exists()


def test_cluster_on_ray_same_clusters_and_centroids(tmp_path):
    import numpy as np

    from curate.pipelines.cluster import cluster

    table = embedded_table(n=2000, dim=16)
    src = write_manifest(table, tmp_path / "in", rows_per_shard=700)
    local = cluster(src, tmp_path / "local", k=8, progress="off")
    on_ray = cluster(src, tmp_path / "ray", k=8, engine="ray", progress="off")
    assert _data(on_ray).equals(_data(local))
    assert on_ray.run_info["engine"] == "ray"
    assert on_ray.run_info["counts"]["clustered"] == local.run_info["counts"]["clustered"]
    np.testing.assert_array_equal(
        np.load(tmp_path / "ray" / "centroids.npy"), np.load(tmp_path / "local" / "centroids.npy")
    )


def test_label_issues_on_ray_same_flags(embedded_both, tmp_path):
    from curate.pipelines.label_issues import label_issues

    src = embedded_both[0]
    opts = {"predictor": "logreg", "folds": 3}
    label_issues(src, tmp_path / "local", **opts)
    label_issues(src, tmp_path / "ray", engine="ray", **opts)
    assert _data(Manifest(tmp_path / "ray")).equals(_data(Manifest(tmp_path / "local")))


def test_cli_prune_engine_ray_writes_the_local_manifest(tmp_path):
    from typer.testing import CliRunner

    from curate.cli.app import app

    src = write_manifest(embedded_table(n=800, dim=8), tmp_path / "in")
    runner = CliRunner()
    for engine in ("local", "ray"):
        args = [
            "prune",
            str(src),
            "-o",
            str(tmp_path / engine),
            "--keep",
            "0.4",
            "--method",
            "dbp",
            "--engine",
            engine,
        ]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    assert _data(Manifest(tmp_path / "ray")).equals(_data(Manifest(tmp_path / "local")))
    assert Manifest(tmp_path / "ray").run_info["engine"] == "ray"


def test_check_on_ray_equals_local(tmp_path):
    """Both passes of curate check (pixels per batch, links in the fit) on Ray."""
    pytest.importorskip("imagehash")
    from curate.pipelines.check import check
    from tests.pipelines._check_data import build

    planted = build(tmp_path / "m", n_train=40, n_test=10)
    opts = {"near_dup_threshold": 0.9995, "progress": "off"}
    local = check(planted.path, tmp_path / "local", **opts)
    on_ray = check(planted.path, tmp_path / "ray", engine="ray", **opts)
    assert _data(on_ray).equals(_data(local))
    assert on_ray.run_info["engine"] == "ray"
    assert on_ray.run_info["counts"]["leak"] == local.run_info["counts"]["leak"] >= 6


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_notebook_chain_with_import_curate_alone(demo_rows, tmp_path, engine):
    """ingest -> embed -> prune -> label_issues -> report, each a ``curate.<verb>`` call
    returning a Manifest, under either engine."""
    import pyarrow.parquet as pq

    import curate

    src = tmp_path / "demo.parquet"
    pq.write_table(Manifest(demo_rows).read(), src)
    m = curate.ingest(src, tmp_path / "ingested")
    run = {"engine": engine, "progress": "off"}
    m = curate.embed(m, model="efficientnet_lite0", image_size=32, workers=0, **run)
    m = curate.prune(m, keep=0.5, method="dbp", **run)
    m = curate.label_issues(m, folds=2, features="embedding", **run)
    assert (
        isinstance(m, curate.Manifest)
        and m.path == tmp_path / "ingested-embedded-pruned-label-issues"
    )
    assert m.column("keep").to_pylist().count(True) == 120
    assert m.column("label_quality").null_count == 0
    page = curate.report([m], tmp_path / "report.html")
    assert re.search(r'"label_issues":\s*\{', page.read_text())  # the section's data
