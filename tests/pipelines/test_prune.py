"""Pruning guarantees on generated data: duplicates, DBP quotas, exact keep, no row lost."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError
from curate.manifests.catalog import sql
from curate.pipelines.cluster import cluster
from curate.pipelines.prune import METHODS, prune
from curate.pipelines.prune.quotas import integer_quotas, qp_quotas
from tests.pipelines._prune_data import blobs, unit, write_embeddings


def planted_duplicates(seed: int = 0, dim: int = 32):
    """200 spread-out vectors plus 30 groups of 2-5 near-copies (cosine > 0.999) of some."""
    rng = np.random.default_rng(seed)
    base = unit(rng.normal(size=(200, dim)))
    rows, group = [base], list(range(200))
    for g in range(30):
        size = 1 + g % 4  # 1-4 extra copies: groups of 2-5
        rows.append(unit(base[g] + 0.005 * rng.normal(size=(size, dim))))
        group += [g] * size
    return np.concatenate(rows).astype(np.float32), np.array(group)


def _table(m):
    return m.read(columns=["id", "keep", "prune_reason"]).to_pandas()


def test_semdedup_keeps_exactly_one_per_planted_group(tmp_path):
    x, group = planted_duplicates()
    src = write_embeddings(tmp_path / "in", x)
    t = _table(prune(src, tmp_path / "o", method="semdedup", eps=0.01, k=4))
    sizes = np.bincount(group)
    for g in np.flatnonzero(sizes > 1):
        assert t["keep"][group == g].sum() == 1  # one representative, not zero
    assert t["keep"][sizes[group] == 1].all()  # nothing else is a duplicate
    removed = t[~t["keep"]]
    assert len(removed) == int((sizes - 1).sum())
    idx = {r: i for i, r in enumerate(t["id"])}
    for reason, rid in zip(removed["prune_reason"], removed["id"], strict=True):
        target = reason.removeprefix("semdedup:dup_of=")
        assert group[idx[target]] == group[idx[rid]] and t["keep"][idx[target]]


def test_semdedup_keep_chooses_eps_and_is_exact(tmp_path):
    x, group = planted_duplicates()
    src = write_embeddings(tmp_path / "in", x)
    n_groups = len(np.unique(group))
    m = prune(src, tmp_path / "o", method="semdedup", keep=n_groups / len(x), k=4)
    t = _table(m)
    assert t["keep"].sum() == n_groups
    assert m.run_info["explain"]["eps"] < 0.05  # a duplicate threshold, not a blunt cut
    assert all(t["keep"][group == g].sum() == 1 for g in range(30))


def test_dbp_keeps_more_of_diffuse_clusters_than_tight_ones(tmp_path):
    tight, _ = blobs(5, 200, 32, spread=0.03, seed=1)
    diffuse, _ = blobs(5, 200, 32, spread=0.6, seed=2)
    x = np.concatenate([tight, diffuse])
    src = write_embeddings(tmp_path / "in", x)
    t = _table(prune(src, tmp_path / "o", method="dbp", keep=0.3, k=10))
    rate_tight, rate_diffuse = t["keep"][:1000].mean(), t["keep"][1000:].mean()
    assert rate_diffuse > rate_tight
    assert t["keep"].sum() == 600


CASES = [
    ("dbp", {}),
    ("dbp", {"dedup_eps": 0.01}),
    ("dbp", {"keep_easy": True}),
    ("semdedup", {}),
    ("prototypes", {}),
    ("prototypes", {"keep_easy": True}),
    ("random", {}),
    ("clip-score", {}),
]


@pytest.mark.parametrize("keep", [0.1, 0.27, 0.5, 1.0])
@pytest.mark.parametrize(("method", "extra"), CASES)
def test_keep_is_exact_and_no_row_is_lost(tmp_path, method, extra, keep):
    x, _ = planted_duplicates()
    x[7] = np.nan
    n = len(x)
    scores = np.random.default_rng(0).random(n)
    src = write_embeddings(tmp_path / "in", x, null_rows=(9,), extra={"clip_score": scores})
    if "dedup_eps" in extra and keep == 1.0:  # dedup removes rows: 100% cannot be kept
        with pytest.raises(InputError, match="leaves 200 rows"):
            prune(src, tmp_path / "o", keep=keep, method=method, k=6, **extra)
        return
    m = prune(
        src, tmp_path / "o", keep=keep, method=method, k=6, kept_out=tmp_path / "kept", **extra
    )
    t = _table(m)
    n_valid = n if method == "clip-score" else n - 2
    assert len(t) == n and set(t["id"]) == {f"r{i:05d}" for i in range(n)}
    assert t["keep"].sum() == math.floor(keep * n_valid + 0.5)
    assert t["prune_reason"].isna().tolist() == t["keep"].tolist()
    kept = _table(type(m)(tmp_path / "kept"))
    assert kept["id"].tolist() == t["id"][t["keep"]].tolist()
    if method != "clip-score":
        assert t["prune_reason"][7] == "invalid_embedding:non_finite"
        assert t["prune_reason"][9] == "invalid_embedding:null"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_same_seed_same_selection(tmp_path, method):
    x, _ = blobs(6, 60, 16, spread=0.3)
    extra = {"clip_score": np.random.default_rng(1).random(len(x))}
    src = write_embeddings(tmp_path / "in", x, extra=extra)
    a = _table(prune(src, tmp_path / "a", keep=0.4, method=method, seed=7))
    b = _table(prune(src, tmp_path / "b", keep=0.4, method=method, seed=7))
    assert a.equals(b)


@pytest.mark.parametrize("keep", [0, -0.2, 1.5, float("nan")])
def test_keep_outside_unit_interval_is_refused(tmp_path, keep):
    x, _ = blobs(2, 10, 8)
    with pytest.raises(InputError, match=r"keep must be a fraction in \(0, 1\].*got"):
        prune(write_embeddings(tmp_path / "in", x), tmp_path / "o", keep=keep)


def test_unknown_method_lists_the_valid_ones(tmp_path):
    x, _ = blobs(2, 10, 8)
    with pytest.raises(ValueError, match="dbp, semdedup|semdedup, prototypes, dbp"):
        prune(write_embeddings(tmp_path / "in", x), tmp_path / "o", keep=0.5, method="nope")


def test_missing_embedding_column_says_run_embed(tmp_path):
    from curate.manifests.io import write_manifest

    src = write_manifest(pa.table({"id": ["a", "b"]}), tmp_path / "in")
    with pytest.raises(ManifestError, match="curate embed"):
        prune(src, tmp_path / "o", keep=0.5)


def test_clip_score_needs_the_column(tmp_path):
    x, _ = blobs(2, 10, 8)
    with pytest.raises(ManifestError, match="clip_score.*curate embed"):
        prune(write_embeddings(tmp_path / "in", x), tmp_path / "o", keep=0.5, method="clip-score")


def test_clip_score_keeps_the_top_scores(tmp_path):
    x, _ = blobs(2, 10, 8)
    scores = np.arange(20, dtype=float)
    src = write_embeddings(tmp_path / "in", x, extra={"clip_score": scores})
    t = _table(prune(src, tmp_path / "o", keep=0.25, method="clip-score"))
    assert t["keep"].tolist() == [False] * 15 + [True] * 5
    assert t["prune_reason"][0] == "clip_score:below_cutoff"


def test_prototypes_keep_the_hardest_or_easiest(tmp_path):
    x, _ = blobs(3, 40, 16, spread=0.3)
    src = cluster(write_embeddings(tmp_path / "in", x), tmp_path / "c", k=3)
    full = src.read(columns=["cluster", "centroid_sim"]).to_pandas()
    hard = _table(prune(src, tmp_path / "h", keep=0.25, method="prototypes"))
    easy = _table(prune(src, tmp_path / "e", keep=0.25, method="prototypes", keep_easy=True))
    for c in range(3):
        inc = full["cluster"] == c
        sims = full["centroid_sim"][inc]
        assert sims[hard["keep"][inc]].max() <= sims[~hard["keep"][inc]].min()
        assert sims[easy["keep"][inc]].min() >= sims[~easy["keep"][inc]].max()


def test_existing_clusters_are_reused(tmp_path):
    x, _ = blobs(4, 30, 8, spread=0.3)
    clustered = cluster(write_embeddings(tmp_path / "in", x), tmp_path / "c", k=4, seed=1)
    out = prune(clustered, tmp_path / "o", keep=0.5, method="dbp").read()
    assert out["cluster"].equals(clustered.read()["cluster"])
    assert out.column_names.count("cluster") == 1


def test_single_member_clusters_and_identical_vectors(tmp_path):
    rng = np.random.default_rng(0)
    same = np.tile(unit(rng.normal(size=(1, 16))), (50, 1))
    lonely = unit(rng.normal(size=(3, 16)))  # far apart: clusters of size 1
    x = np.concatenate([same, lonely])
    given = {
        "cluster": pa.array([0] * 50 + [1, 2, 3], pa.int32()),
        "centroid_sim": pa.array(np.ones(53), pa.float32()),
    }
    src = write_embeddings(tmp_path / "in", x, extra=given)
    t = _table(prune(src, tmp_path / "s", method="semdedup", eps=0.01))
    assert t["keep"].sum() == 4  # one of the 50 copies + the three loners
    for method in ("dbp", "prototypes"):
        m = prune(src, tmp_path / method, keep=0.5, method=method)
        assert m.run_info["explain"]["per_cluster"]["size"] == [50, 1, 1, 1]
        assert _table(m)["keep"].sum() == 27  # round(0.5 * 53), half up
    # k-means itself: duplicate seeds leave an empty cluster; quotas still add up
    m = prune(src, tmp_path / "k", keep=0.5, method="dbp", k=4)
    assert 0 in m.run_info["explain"]["per_cluster"]["size"]
    assert _table(m)["keep"].sum() == 27


def test_removed_duplicates_are_browsable_with_sql(tmp_path):
    x, _ = planted_duplicates()
    m = prune(
        write_embeddings(tmp_path / "in", x), tmp_path / "o", method="semdedup", eps=0.01, k=4
    )
    pairs = sql(
        "SELECT d.id AS removed, k.id AS kept, "
        "array_cosine_similarity(d.embedding, k.embedding) AS cos "
        "FROM p d JOIN p k ON k.id = split_part(d.prune_reason, '=', 2) "
        "WHERE d.prune_reason LIKE 'semdedup:dup_of=%'",
        p=m.path,
    )
    assert pairs.num_rows == int((~m.read()["keep"].to_numpy()).sum())
    assert min(pairs["cos"].to_pylist()) > 0.99


def test_dedup_that_leaves_too_few_rows_is_an_error(tmp_path):
    x = np.tile(unit(np.ones((1, 8))), (20, 1))
    with pytest.raises(InputError, match="dedup-eps"):
        prune(write_embeddings(tmp_path / "in", x), tmp_path / "o", keep=0.5, dedup_eps=0.1, k=1)


def test_integer_quotas_are_exact_and_capped():
    w = np.array([10.0, 1.0, 1.0, 1.0])
    caps = np.array([5, 100, 100, 3])
    q = integer_quotas(w, caps, 50)
    assert q.sum() == 50 and (q <= caps).all() and q[0] == 5
    np.testing.assert_allclose(qp_quotas(w / w.sum(), caps, 50).sum(), 50)
    rng = np.random.default_rng(0)
    for _ in range(50):
        caps = rng.integers(0, 30, 12)
        total = int(rng.integers(0, caps.sum() + 1))
        q = integer_quotas(rng.random(12), caps, total)
        assert q.sum() == total and (q <= caps).all() and (q >= 0).all()


def test_digits_cluster_then_prune(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = unit(d.data - d.data.mean(axis=0))
    src = write_embeddings(tmp_path / "in", x, extra={"label": d.target})
    clustered = cluster(src, tmp_path / "c", k=20)
    m = prune(clustered, tmp_path / "o", keep=0.27, method="dbp", kept_out=tmp_path / "k")
    kept = type(m)(tmp_path / "k").read()
    assert kept.num_rows == round(0.27 * 1797)
    assert len(set(kept["label"].to_pylist())) == 10  # every digit survives
    per = m.run_info["explain"]["per_cluster"]
    assert sum(per["quota"]) == kept.num_rows and len(per["complexity"]) == 20


def test_demo_prune_stage_on_an_embedded_manifest(tmp_path):
    from curate.demo import stages

    fn = dict(stages())["pruned"]
    x, _ = blobs(10, 100, 32, spread=0.4)  # stands in for efficientnet_lite0 features
    write_embeddings(tmp_path / "embedded", x, dtype="float16")
    lines = []
    out = fn(tmp_path, lines.append)
    t = _table(type_manifest(out))
    assert len(t) == 1000 and t["keep"].sum() == 500
    assert "kept 500 of 1000" in lines[-1]


def type_manifest(path):
    from curate.manifests.io import Manifest

    return Manifest(path)


def test_embed_cluster_prune_on_fashion_mnist_images(tmp_path):
    """The whole path on real images: efficientnet_lite0 embeddings -> clusters -> DBP."""
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    import pyarrow.parquet as pq

    from curate.demo import DEMO_DATA
    from curate.manifests.io import write_manifest
    from curate.pipelines.embed import embed

    src = write_manifest(pq.read_table(DEMO_DATA).slice(0, 96), tmp_path / "raw")
    embedded = embed(
        src,
        tmp_path / "emb",
        model="efficientnet_lite0",
        image_size=64,
        device="cpu",
        progress=False,
        workers=0,
    )
    clustered = cluster(embedded, tmp_path / "c", k=4)
    m = prune(clustered, tmp_path / "p", keep=0.5, method="dbp", kept_out=tmp_path / "k")
    t = m.read(columns=["id", "label", "keep", "cluster"])
    assert t.num_rows == 96 and sum(t["keep"].to_pylist()) == 48
    assert m.schema.field("embedding").metadata[b"curate.model"] == b"efficientnet_lite0"
    # clusters of real features carry label information: purer than chance
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(t["label"].to_numpy(), t["cluster"].to_numpy()) > 0.05


def test_duplicate_groups_do_not_depend_on_the_block_size():
    from curate.pipelines.prune.similarity import duplicate_groups

    x, group = planted_duplicates(seed=3)
    whole = duplicate_groups(x, 0.99, block_elems=1 << 30)
    tiny = duplicate_groups(x, 0.99, block_elems=len(x) * 3)  # 3 rows per block

    def same(a, b):  # the same partition of the rows, whatever the label values
        return ((a[:, None] == a[None, :]) == (b[:, None] == b[None, :])).all()

    assert same(whole, tiny) and same(whole, group)


def _same_partition(a, b) -> bool:
    return bool(((a[:, None] == a[None, :]) == (b[:, None] == b[None, :])).all())


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_duplicate_groups_equal_numpy_ones():
    """The GPU SemDeDup path, run by torch on the CPU: same groups as numpy, float16 input
    included, whatever the block size."""
    from curate.pipelines.prune.similarity import duplicate_groups

    x, group = planted_duplicates(seed=5)
    ref = duplicate_groups(x, 0.99)
    for arr in (x, x.astype(np.float16)):
        for block in (1 << 30, len(x) * 7):
            got = duplicate_groups(arr, 0.99, block_elems=block, device="cpu")
            assert _same_partition(got, ref) and _same_partition(got, group)


@pytest.mark.gpu
def test_cuda_duplicate_groups_equal_numpy_ones():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from curate.pipelines.prune.similarity import duplicate_groups

    x, group = planted_duplicates(seed=5)
    got = duplicate_groups(x.astype(np.float16), 0.99, device="cuda")
    assert _same_partition(got, duplicate_groups(x, 0.99)) and _same_partition(got, group)


def test_all_rows_invalid_is_an_error_not_an_empty_keep(tmp_path):
    x = np.zeros((5, 8), np.float32)
    with pytest.raises(InputError, match="no row is usable"):
        prune(write_embeddings(tmp_path / "in", x), tmp_path / "o", keep=0.5, method="random")


def test_parallel_passes_give_the_sequential_result(tmp_path, monkeypatch):
    """Reading and writing in parallel row ranges (as on a 1M-row manifest) changes nothing
    but the shard count: same rows, order, decisions, clusters and kept subset."""
    import pyarrow.parquet as pq

    from curate.manifests import parallel as P
    from tests.pipelines._prune_data import embedding_table

    x, _ = planted_duplicates()
    x[7] = np.nan
    src = tmp_path / "in.parquet"  # row groups of 40 rows: 230 rows can split 3 ways
    pq.write_table(embedding_table(x, null_rows=(9,)), src, row_group_size=40)
    opts = {"keep": 0.5, "method": "dbp", "k": 6, "dedup_eps": 0.01}
    cols = ["id", "keep", "prune_reason", "cluster", "centroid_sim"]
    monkeypatch.setattr(P, "default_workers", lambda: 1)
    seq = prune(src, tmp_path / "seq", kept_out=tmp_path / "seq_kept", **opts)
    monkeypatch.setattr(P, "default_workers", lambda: 3)
    monkeypatch.setattr(P, "MIN_RANGE_ROWS", 40)
    par = prune(src, tmp_path / "par", kept_out=tmp_path / "par_kept", **opts)
    assert len(par.files) == 3 and len(seq.files) == 1
    assert par.read(cols).equals(seq.read(cols))
    assert (
        type(par)(tmp_path / "par_kept")
        .read(cols)
        .equals(type(par)(tmp_path / "seq_kept").read(cols))
    )
    clustered = cluster(src, tmp_path / "c_par", k=6)  # parallel read and write too
    assert len(clustered.files) == 3
    assert clustered.read(["cluster"])["cluster"].equals(seq.read(["cluster"])["cluster"])
