"""The parts of the prune plan: the spill, radix selection, the DBP quota QP, the k rule."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.engines.spill import Spill, write_run
from curate.pipelines.cluster import MAX_AUTO_K, SAMPLE_ROWS, auto_k, sample_rows
from curate.pipelines.prune.quotas import dbp_floors, integer_quotas, qp_quotas, softmax
from curate.pipelines.prune.select import at_or_below, smallest


def test_spill_reads_each_part_in_run_order(tmp_path):
    rng = np.random.default_rng(0)
    keys, rows, vecs, ids = [], [], [], []
    for run in range(3):
        n = 50 + run
        k = rng.integers(0, 5, n)
        r = np.arange(n) + 1000 * run
        v = rng.normal(size=(n, 4)).astype(np.float16)
        s = pa.array([f"id{i}" for i in r])
        write_run(
            tmp_path,
            run,
            keys=k,
            parts=5,
            columns={"row": r, "vec": v},
            strings={"id": s},
            row_order={"code": np.full(n, run, np.int8)},
            meta={"rows": n},
        )
        keys.append(k), rows.append(r), vecs.append(v), ids.append(s.to_pylist())
    spill = Spill(tmp_path, 5)
    allk, allr = np.concatenate(keys), np.concatenate(rows)
    allv, alli = np.concatenate(vecs), sum(ids, [])
    assert spill.sizes().tolist() == np.bincount(allk, minlength=5).tolist()
    for p in range(5):
        want = np.flatnonzero(allk == p)  # manifest order inside the part
        assert spill.read(p, "row").tolist() == allr[want].tolist()
        np.testing.assert_array_equal(spill.read(p, "vec"), allv[want])
        assert spill.read_strings(p, "id").to_pylist() == [alli[i] for i in want]
        assert spill.read(p, "row", 3, 9).tolist() == allr[want][3:9].tolist()  # a block
    assert spill.section(1, "code").tolist() == [1] * 51


def test_a_run_without_its_header_is_not_done(tmp_path):
    write_run(tmp_path, 0, keys=np.zeros(3, np.int64), parts=1, columns={"row": np.arange(3)})
    (tmp_path / "run-000000.json").unlink()  # killed between the data and the header
    assert not Spill(tmp_path, 1).done(0) and Spill(tmp_path, 1).runs() == []


def test_radix_selection_equals_lexsort():
    rng = np.random.default_rng(1)
    keys = np.round(rng.normal(size=5000), 2)  # many ties
    keys[:10] = -0.0
    keys[10:20] = 0.0
    rows = rng.permutation(5000)
    parts = np.array_split(np.arange(5000), 7)

    def stream():
        return ((keys[p], rows[p]) for p in parts)

    order = np.lexsort((rows, keys))
    for m in (1, 2, 37, 2500, 4999, 5000):
        cut = smallest(stream, m)
        i = order[m - 1]
        assert cut == (float(keys[i] + 0.0), int(rows[i]))
        assert at_or_below(keys, rows, cut).sum() == m
    assert smallest(stream, 0) is None
    with pytest.raises(ValueError):
        smallest(stream, 5001)


def test_radix_selection_refines_a_crowded_bucket(monkeypatch):
    import curate.pipelines.prune.select as sel

    monkeypatch.setattr(sel, "SORT_LIMIT", 16)  # force the 16-bit refinements
    keys = 1.0 + np.arange(2000) * 1e-12  # all in one top-16-bit bucket
    rows = np.arange(2000)[::-1].copy()
    cut = sel.smallest(lambda: iter([(keys, rows)]), 777)
    assert cut == (float(keys[776]), int(rows[776]))


def _osqp_quotas(p, sizes, total, floors):
    """The reference's QP (amro-kamal/effective_pruning, prune.py), solved by osqp."""
    osqp = pytest.importorskip("osqp")
    from scipy import sparse

    k = len(p)
    a = sparse.vstack([sparse.csc_matrix(np.ones((1, k))), sparse.eye(k)], format="csc")
    lo = np.r_[total, floors].astype(float)
    hi = np.r_[total, sizes].astype(float)
    prob = osqp.OSQP()
    prob.setup(
        sparse.eye(k, format="csc"),
        -p * total,
        a,
        lo,
        hi,
        verbose=False,
        eps_abs=1e-9,
        eps_rel=1e-9,
        max_iter=200000,
        polishing=True,
    )
    return prob.solve(raise_error=True).x


@pytest.mark.parametrize("seed", range(5))
def test_dbp_quotas_are_the_reference_qp_to_rounding(seed):
    rng = np.random.default_rng(seed)
    k = 40
    sizes = rng.integers(1, 400, k)
    sizes[:5] = rng.integers(1, 8, 5)  # small clusters: their caps bind
    total = int(0.3 * sizes.sum())
    p = softmax(rng.uniform(0.05, 0.4, k), 0.5)
    floors = dbp_floors(sizes, total, 0.5)
    ref = _osqp_quotas(p, sizes, total, floors)
    ours = qp_quotas(p, sizes, total, floors)
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    q = integer_quotas(p, sizes, total, floors)
    assert q.sum() == total and (q <= sizes).all() and (q >= floors).all()
    assert np.abs(q - ref).max() < 1.0 + 1e-3  # "to rounding"


def test_floors_follow_the_reference_and_zero_switches_them_off():
    sizes = np.array([0, 1, 2, 50, 500])
    assert dbp_floors(sizes, 100, 0.5).tolist() == [0, 0, 1, 10, 10]  # int(0.5*100/5)=10
    assert dbp_floors(sizes, 100, 0.0).tolist() == [0] * 5


def test_auto_k_keeps_the_kmeans_sample_bounded():
    assert auto_k(5_000) == 50 and auto_k(100_000) == 1000  # ~100 rows per cluster
    assert auto_k(1_000_000) == 1000 and auto_k(10_000_000) == 3162  # sqrt(n)
    assert auto_k(400_000_000) == MAX_AUTO_K
    for n in (10**4, 10**6, 10**7, 10**8, 4 * 10**8, 10**10):
        assert sample_rows(auto_k(n)) <= SAMPLE_ROWS
    assert sample_rows(1000) == 256_000  # FAISS's 256 points per centroid, as before
