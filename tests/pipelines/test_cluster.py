"""Spherical k-means clustering of manifests: columns, determinism, backends and bad input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import write_manifest
from curate.pipelines._kmeans import SphericalKMeans, assign_faiss, assign_torch
from curate.pipelines.cluster import centroids_path, cluster
from tests.pipelines._prune_data import blobs, embedding_table, unit, write_embeddings

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


def _pure(truth, found) -> bool:
    """Every found cluster lies inside one planted cluster (k-means may split, never merge)."""
    from sklearn.metrics import homogeneity_score

    return homogeneity_score(truth, found) == pytest.approx(1.0)


def test_cluster_adds_columns_and_saves_centroids(tmp_path):
    x, truth = blobs(5, 60, 16, spread=0.1)
    m = cluster(write_embeddings(tmp_path / "in", x), tmp_path / "out", k=10)
    t = m.read()
    assert t.num_rows == 300
    assert t.schema.field("cluster").type == pa.int32()
    assert t.schema.field("centroid_sim").type == pa.float32()
    assert _pure(truth, t["cluster"].to_numpy())
    centroids = np.load(centroids_path(m.path))
    assert centroids.shape == (10, 16)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    # centroid_sim is the cosine to the row's own centroid
    sims = (x @ centroids.T)[np.arange(300), t["cluster"].to_numpy()]
    np.testing.assert_allclose(t["centroid_sim"].to_numpy(), sims, atol=1e-4)
    assert m.run_info["counts"]["clustered"] == 300
    assert m.schema.field("embedding").metadata == embedding_table(x).schema.field(1).metadata


def test_cluster_is_deterministic_for_a_seed(tmp_path):
    x, _ = blobs(8, 50, 16, spread=0.4)
    src = write_embeddings(tmp_path / "in", x)
    a = cluster(src, tmp_path / "a", k=8, seed=3).read()
    b = cluster(src, tmp_path / "b", k=8, seed=3).read()
    assert a["cluster"].equals(b["cluster"]) and a["centroid_sim"].equals(b["centroid_sim"])
    np.testing.assert_array_equal(
        np.load(centroids_path(tmp_path / "a")), np.load(centroids_path(tmp_path / "b"))
    )


def test_invalid_vectors_are_marked_and_excluded(tmp_path):
    x, _ = blobs(3, 20, 8)
    x[4] = np.nan
    x[5] = 0.0
    m = cluster(write_embeddings(tmp_path / "in", x, null_rows=(6,)), tmp_path / "o", k=3)
    t = m.read()
    assert t.num_rows == 60  # nothing dropped
    assert t["cluster"].null_count == 3
    errors = t["error"].to_pylist()
    assert "non_finite" in errors[4] and "zero_vector" in errors[5] and "null" in errors[6]
    assert all(e is None for i, e in enumerate(errors) if i not in (4, 5, 6))
    assert m.run_info["counts"]["invalid"] == 3


def test_k_larger_than_valid_rows_is_an_error(tmp_path):
    x, _ = blobs(2, 5, 8)
    with pytest.raises(InputError, match=r"k=50 .* 10 rows .*--k 10"):
        cluster(write_embeddings(tmp_path / "in", x), tmp_path / "o", k=50)


def test_missing_embedding_column_says_run_embed(tmp_path):
    src = write_manifest(pa.table({"id": ["a", "b"]}), tmp_path / "in")
    with pytest.raises(ManifestError, match=r"curate embed.*--embedding-column"):
        cluster(src, tmp_path / "o", k=1)


def test_embeddings_from_two_models_are_refused(tmp_path):
    x, _ = blobs(2, 10, 8)
    d = tmp_path / "mixed"
    d.mkdir()
    import pyarrow.parquet as pq

    pq.write_table(embedding_table(x[:10], model="clip-a"), d / "part-00000.parquet")
    t = embedding_table(x[10:], model="effnet").set_column(
        0, "id", pa.array([f"b{i}" for i in range(10)])
    )
    pq.write_table(t, d / "part-00001.parquet")
    with pytest.raises(ManifestError, match=r"different models.*clip-a.*effnet|effnet.*clip-a"):
        cluster(d, tmp_path / "o", k=2)


def test_float16_and_variable_length_list_columns(tmp_path):
    x, truth = blobs(4, 25, 12, spread=0.05)
    m16 = cluster(write_embeddings(tmp_path / "a", x, dtype="float16"), tmp_path / "o1", k=8)
    assert _pure(truth, m16.read()["cluster"].to_numpy())
    lists = pa.table({"id": [str(i) for i in range(100)], "vec": pa.array(x.tolist())})
    mv = cluster(
        write_manifest(lists, tmp_path / "b"), tmp_path / "o2", k=8, embedding_column="vec"
    )
    assert _pure(truth, mv.read()["cluster"].to_numpy())


def test_all_identical_vectors_cluster_without_error(tmp_path):
    x = np.tile(unit(np.ones((1, 8))), (40, 1))
    t = cluster(write_embeddings(tmp_path / "in", x), tmp_path / "o", k=2).read()
    assert t["cluster"].null_count == 0
    np.testing.assert_allclose(t["centroid_sim"].to_numpy(), 1.0, atol=1e-5)


def test_digits_clusters_follow_the_digit_classes(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data - d.data.mean(axis=0)
    src = write_embeddings(tmp_path / "in", unit(x), extra={"label": d.target})
    t = cluster(src, tmp_path / "o", k=10, seed=0).read()
    assert _ari(d.target, t["cluster"].to_numpy()) > 0.4


def test_clusters_from_held_vectors_match_the_two_pass_read(tmp_path):
    """Prune spills the float16 vectors for SemDeDup and assigns rows as it reads them; the
    clusters it gets are those ``curate cluster`` gets, bad rows marked alike."""
    from sklearn.datasets import load_digits

    from curate.pipelines.prune import prune

    d = load_digits()
    x = (d.data - d.data.mean(axis=0)).astype(np.float32)
    x[[3, 50]] = 0.0  # zero vectors: invalid in both paths
    src = write_embeddings(tmp_path / "in", x, dtype="float16")
    held = prune(src, tmp_path / "p", method="semdedup", eps=0.01, k=10, seed=0).read()
    read = cluster(src, tmp_path / "c", k=10, seed=0).read()
    np.testing.assert_array_equal(held["cluster"].to_numpy(False), read["cluster"].to_numpy(False))
    np.testing.assert_allclose(
        held["centroid_sim"].to_numpy(False), read["centroid_sim"].to_numpy(False), atol=2e-3
    )
    assert held["error"].to_pylist() == [
        e.replace("cluster:", "prune:") if e else e for e in read["error"].to_pylist()
    ]
    assert held["cluster"][3].as_py() is None and held["cluster"][50].as_py() is None


@needs_torch
def test_torch_assignment_equals_faiss_for_the_same_centroids():
    x, _ = blobs(20, 100, 32, spread=0.3, seed=1)
    km = SphericalKMeans(20, backend="faiss", seed=0).fit(x)
    lab_f, sim_f = assign_faiss(x, km.centroids_)
    lab_t, sim_t = assign_torch(x, km.centroids_, device="cpu")
    np.testing.assert_array_equal(lab_f, lab_t)
    np.testing.assert_allclose(sim_f, sim_t, atol=1e-5)


@needs_torch
def test_torch_backend_trains_and_is_deterministic():
    x, truth = blobs(6, 50, 16, spread=0.1)
    a = SphericalKMeans(12, backend="torch", seed=5).fit(x)
    b = SphericalKMeans(12, backend="torch", seed=5).fit(x)
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
    assert _pure(truth, a.predict(x))


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_cuda_torch_assignment_equals_faiss():
    x, _ = blobs(50, 200, 64, spread=0.3, seed=2)
    km = SphericalKMeans(50, backend="faiss", seed=0).fit(x)
    lab_f, _ = assign_faiss(x, km.centroids_)
    lab_t, _ = assign_torch(x, km.centroids_, device="cuda")
    np.testing.assert_array_equal(lab_f, lab_t)


def test_from_centroids_reassigns_like_the_fitted_model():
    x, _ = blobs(5, 40, 8, spread=0.2)
    km = SphericalKMeans(5, backend="faiss").fit(x)
    again = SphericalKMeans.from_centroids(km.centroids_, backend="faiss")
    np.testing.assert_array_equal(km.predict(x), again.predict(x))


def test_schema_constants_used_for_output(tmp_path):
    x, _ = blobs(2, 10, 8)
    t = cluster(write_embeddings(tmp_path / "in", x), tmp_path / "o.parquet", k=2).read()
    assert S.ID in t.column_names and (tmp_path / "o.centroids.npy").exists()
