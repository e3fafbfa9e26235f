"""The partitioned prune plan gives the in-memory answer, whatever the chunks, items, threads,
engine or memory, and a killed prune resumes to the same manifest."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import curate.pipelines.prune.plan as plan_mod
from curate.manifests.io import Manifest
from curate.pipelines.cluster import centroids_path
from curate.pipelines.prune import prune
from curate.pipelines.prune.dbp import inter_cluster_distance
from curate.pipelines.prune.quotas import dbp_floors, integer_quotas, softmax
from tests.pipelines._prune_data import embedding_table, unit


def pool(n: int = 3000, d: int = 24, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors of varying spread with 5% planted near-duplicates."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(12, d)))
    lab = rng.choice(12, n, p=rng.dirichlet(np.full(12, 2.0)))
    x = unit(centres[lab] + rng.uniform(0.1, 0.5, 12)[lab, None] * rng.normal(size=(n, d)))
    dup = np.flatnonzero(rng.random(n) < 0.05)
    x[dup] = unit(x[rng.integers(0, n, len(dup))] + 0.003 * rng.normal(size=(len(dup), d)))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    x = pool()
    x[7] = np.nan
    path = tmp_path_factory.mktemp("pool") / "in.parquet"
    scores = np.random.default_rng(3).random(len(x))
    t = embedding_table(x, dtype="float16", null_rows=(9,), extra={"clip_score": scores})
    pq.write_table(t, path, row_group_size=500)
    return path


# -- an in-memory reference, written plainly -------------------------------------------------
def _read(src, out):
    t = pq.read_table(src)
    m = Manifest(out)
    o = m.read([c for c in ("id", "cluster", "centroid_sim") if c in m.schema.names])
    if "cluster" not in o.column_names:  # random, clip-score: no clusters
        o = o.append_column("cluster", pa.nulls(len(o), pa.int32()))
        o = o.append_column("centroid_sim", pa.nulls(len(o), pa.float32()))
    x = np.array([v if v is not None else [np.nan] * 24 for v in t["embedding"].to_pylist()])
    valid = np.isfinite(x).all(axis=1) & (np.abs(np.nan_to_num(x)).sum(axis=1) > 0)
    xu = np.zeros(x.shape, np.float32)
    xu[valid] = unit(x[valid])
    cl = np.nan_to_num(o["cluster"].to_numpy(zero_copy_only=False), nan=-1).astype(int)
    return t, o, xu, valid, cl


def _dedup(x, cl, sim, valid, threshold):
    """dup_of row per row (-1 if not a duplicate): one representative per group per cluster."""
    dup_of = np.full(len(x), -1)
    for c in np.unique(cl[valid]):
        m = np.flatnonzero(valid & (cl == c))
        s = x[m] @ x[m].T
        i, j = np.nonzero(np.triu(s > threshold, 1))
        _, comp = connected_components(coo_matrix((np.ones(len(i)), (i, j)), (len(m),) * 2))
        for g in np.unique(comp):
            members = m[comp == g]
            rep = members[np.lexsort((members, sim[members]))[0]]
            dup_of[members[members != rep]] = rep
    return dup_of


def _by_quota(rows, cl, key, quotas):
    keep = np.zeros(len(cl), bool)
    for c in np.unique(cl[rows]):
        m = rows[cl[rows] == c]
        keep[m[np.lexsort((m, key[m]))][: quotas[c]]] = True
    return keep


def reference(src, out, method, *, keep=0.3, eps=None, dedup_eps=None, seed=0):
    t, o, x, valid, cl = _read(src, out)
    ids = t["id"].to_pylist()
    sim = o["centroid_sim"].to_numpy(zero_copy_only=False).astype(np.float32)
    target = int(np.floor(keep * valid.sum() + 0.5))
    reason = np.full(len(x), None, dtype=object)
    if method == "clip-score":  # every score is finite: all rows count, embeddings or not
        s = t["clip_score"].to_numpy()
        target = int(np.floor(keep * len(s) + 0.5))
        order = np.lexsort((np.arange(len(s)), -s))
        kept = np.zeros(len(s), bool)
        kept[order[:target]] = True
        reason[~kept] = "clip_score:below_cutoff"
        return kept, reason
    if method == "random":
        rows = np.flatnonzero(valid)
        kept = np.zeros(len(x), bool)
        kept[rows[np.sort(np.random.default_rng(seed).choice(len(rows), target, False))]] = True
        reason[~kept] = "random:not_sampled"
        return _invalid(kept, reason, t, valid)
    threshold = 1 - (eps or dedup_eps or 0) if (eps or dedup_eps) else None
    dup_of = _dedup(x, cl, sim, valid, threshold) if threshold else np.full(len(x), -1)
    live = np.flatnonzero(valid & (dup_of < 0))
    k = int(cl.max()) + 1
    if method == "semdedup":
        kept = np.zeros(len(x), bool)
        kept[live] = True
    else:
        sizes = np.bincount(cl[live], minlength=k)
        if method == "prototypes":
            quotas = integer_quotas(sizes, sizes, target)
        else:
            cents = np.load(centroids_path(out))
            dist = np.bincount(cl[live], weights=1.0 - sim[live].astype(float), minlength=k)
            cx = dist / np.maximum(sizes, 1) * inter_cluster_distance(cents, 20)
            w = np.where(sizes > 0, softmax(cx, 0.5), 0.0)  # the default temperature
            quotas = integer_quotas(w, sizes, target, dbp_floors(sizes, target, 0.5))
        kept = _by_quota(live, cl, sim, quotas)
    reason[valid & ~kept] = f"{method}:over_quota"
    for r in np.flatnonzero(dup_of >= 0):
        reason[r] = f"semdedup:dup_of={ids[dup_of[r]]}"
    return _invalid(kept, reason, t, valid)


def _invalid(kept, reason, t, valid):
    reason[7] = "invalid_embedding:non_finite"
    reason[9] = "invalid_embedding:null"
    return kept, reason


CASES = [
    ("dbp", {}),
    ("dbp", {"dedup_eps": 0.01}),
    ("prototypes", {}),
    ("semdedup", {"eps": 0.01}),
    ("random", {}),
    ("clip-score", {}),
]


@pytest.mark.parametrize(("method", "extra"), CASES)
def test_decisions_equal_the_in_memory_reference(src, tmp_path, method, extra):
    opts = {"keep": None if "eps" in extra else 0.3, **extra}
    m = prune(
        src,
        tmp_path / "o",
        method=method,
        k=12,
        progress="off",
        **{k: v for k, v in opts.items() if v is not None},
    )
    kept, reason = reference(src, tmp_path / "o", method, **{"keep": 0.3, **extra})
    got = m.read(["keep", "prune_reason"])
    assert got["keep"].to_pylist() == kept.tolist()
    assert got["prune_reason"].to_pylist() == reason.tolist()


@pytest.mark.parametrize(
    "opts",
    [{"method": "dbp", "keep": 0.3, "dedup_eps": 0.01}, {"method": "semdedup", "keep": 0.8}],
)
def test_same_decisions_whatever_the_chunks_items_and_memory(src, tmp_path, monkeypatch, opts):
    """Many small spill runs and per-cluster items, the projection filter on every cluster,
    and clusters too large for the memory allowed (read in blocks): one answer."""
    import curate.pipelines.prune.scan as scan_mod
    import curate.pipelines.prune.similarity as sim_mod

    cols = ["id", "keep", "prune_reason", "cluster", "centroid_sim"]
    base = prune(src, tmp_path / "a", k=12, progress="off", **opts).read(cols)
    monkeypatch.setattr(plan_mod, "CHUNK_ROWS", 700)
    monkeypatch.setattr(scan_mod, "CHUNK_ROWS", 700)
    monkeypatch.setattr(plan_mod, "ITEM_ROWS", 200)
    monkeypatch.setattr(plan_mod, "JOIN_RUNS", 2)
    monkeypatch.setattr(sim_mod, "FILTER_MIN_ROWS", 16)
    small = prune(src, tmp_path / "b", k=12, progress="off", **opts).read(cols)
    assert small.equals(base)
    blocked = prune(src, tmp_path / "c", k=12, progress="off", group_memory=1 << 16, **opts)
    assert blocked.read(cols).equals(base)


def test_memory_per_cluster_is_the_configured_bound(src, tmp_path, monkeypatch):
    """A cluster larger than group_memory is compared block by block from the spill."""
    import curate.pipelines.prune.similarity as sim_mod

    calls = []
    real = sim_mod.blocked_duplicate_groups

    def spy(rows, n, threshold, *, block_rows):
        calls.append((n, block_rows))
        return real(rows, n, threshold, block_rows=block_rows)

    monkeypatch.setattr(sim_mod, "blocked_duplicate_groups", spy)
    prune(
        src, tmp_path / "o", method="semdedup", eps=0.01, k=2, group_memory=1 << 16, progress="off"
    )
    assert calls and all(n > block for n, block in calls)


def test_scratch_is_removed_on_success_and_kept_after_a_failure(src, tmp_path, monkeypatch):
    import curate.pipelines.prune.finalize as fin

    out = tmp_path / "o"
    scratch = tmp_path / ".o.prune-scratch"

    def boom(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(fin, "write_ipc", boom)
    with pytest.raises(RuntimeError):
        prune(src, out, keep=0.3, k=12, progress="off")
    assert (scratch / "plan.json").exists() and any((scratch / "spill").iterdir())
    monkeypatch.undo()
    m = prune(src, out, keep=0.3, k=12, progress="off")
    assert not scratch.exists() and m.run_info["counts"]["kept"] == round(0.3 * 2998)


def test_laion_parquet_without_an_id_column_is_pruned_as_it_is(tmp_path):
    x = pool(600, 16)
    t = pa.table(
        {
            "url": [f"http://x/{i}.jpg" for i in range(600)],
            "TEXT": [f"caption {i}" for i in range(600)],
            "SAMPLE_ID": np.arange(600, dtype=np.int64) * 7,
            "embedding": pa.array(x.tolist(), pa.list_(pa.float32())),
        }
    )
    pq.write_table(t, tmp_path / "laion.parquet")
    m = prune(tmp_path / "laion.parquet", keep=0.27, method="semdedup", progress="off")
    assert m.path == tmp_path / "laion-pruned.parquet"
    out = m.read()
    assert out.column_names[:4] == ["id", "url", "TEXT", "SAMPLE_ID"]
    assert out["id"].to_pylist() == [str(i * 7) for i in range(600)]
    assert sum(out["keep"].to_pylist()) == round(0.27 * 600)
    dups = [r for r in out["prune_reason"].to_pylist() if r and "dup_of" in r]
    assert all(r.split("=")[1] in set(out["id"].to_pylist()) for r in dups)
    pq.write_table(t.drop_columns(["SAMPLE_ID"]), tmp_path / "noid.parquet")
    m = prune(tmp_path / "noid.parquet", keep=0.5, progress="off")
    assert m.read(["id"])["id"].to_pylist()[:3] == ["0", "1", "2"]  # row numbers, as ingest


def _cli(args, *, kill=None):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tests.pipelines._kill_prune", *(kill or ("none", "0")), "--"]
    return subprocess.run([*cmd, "prune", *args], capture_output=True, text=True)


def _kill_then_resume(src, tmp_path, phase, after):
    args = [str(src), "--keep", "0.3", "--dedup-eps", "0.01", "--k", "12"]
    whole = _cli([*args, "-o", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / f"killed-{phase}"
    killed = _cli([*args, "-o", str(out)], kill=(phase, str(after)))
    assert killed.returncode == -9, killed.stderr  # kill -9, mid-phase
    with pytest.raises(Exception, match="incomplete|not a manifest|no such|does not exist"):
        Manifest(out).read()  # never reads as complete
    again = _cli([*args, "-o", str(out)])  # the same command again
    assert again.returncode == 0, again.stderr
    a, b = Manifest(out).read(), Manifest(tmp_path / "whole").read()
    assert a.drop_columns(["embedding"]).equals(b.drop_columns(["embedding"]))
    assert a["embedding"].to_pylist().__repr__() == b["embedding"].to_pylist().__repr__()
    assert not (tmp_path / f".killed-{phase}.prune-scratch").exists()
    return again


def test_a_prune_killed_mid_phase_resumes_to_the_same_manifest(src, tmp_path):
    _kill_then_resume(src, tmp_path, "per-cluster", 3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("phase", "after"), [("sample", 1), ("scan", 2), ("finalize", 2), ("write", 1)]
)
def test_kill_9_in_every_phase_then_the_same_command(src, tmp_path, phase, after):
    _kill_then_resume(src, tmp_path, phase, after)


def test_a_rerun_with_other_options_names_the_difference(src, tmp_path):
    args = [str(src), "--keep", "0.3", "--k", "12", "-o", str(tmp_path / "o")]
    assert _cli(args, kill=("per-cluster", "1")).returncode == -9
    other = _cli([*args[:-2], "--temperature", "0.2", "-o", str(tmp_path / "o")])
    assert other.returncode == 2
    assert "temperature: 0.5 -> 0.2" in other.stderr and "--overwrite" in other.stderr
    assert "Traceback" not in other.stderr


# -- bad input ---------------------------------------------------------------------------------
def test_a_scratch_without_room_fails_before_the_spill(src, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import curate.pipelines.prune.space as space
    from curate.errors import InputError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(space.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(
        InputError, match=r"needs about .* scratch space .* 0\.0 MB free.*--scratch"
    ):
        prune(src, tmp_path / "o", method="semdedup", eps=0.01, k=12, progress="off")
    assert not (tmp_path / "o").exists()  # nothing that reads as an output
    assert not list((tmp_path / ".o.prune-scratch" / "spill").glob("run-*"))
    assert shutil.disk_usage is not None


def test_a_disk_that_fills_up_mid_spill_is_a_clear_error(src, tmp_path, monkeypatch):
    import errno

    import curate.engines.spill as spill
    from curate.errors import InputError

    real = spill.SpillWriter.add_rows

    def full(self, name, values, order):
        if name == "vec":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, name, values, order)

    monkeypatch.setattr(spill.SpillWriter, "add_rows", full)
    with pytest.raises(InputError, match="scratch disk filled up.*rerun the same command"):
        prune(src, tmp_path / "o", method="semdedup", eps=0.01, k=12, progress="off")
    scratch = tmp_path / ".o.prune-scratch" / "spill"
    assert not list(scratch.glob("run-*")) and not list(scratch.glob(".*.tmp"))


def test_a_scratch_that_is_not_writable_names_the_path(src, tmp_path):
    from curate.errors import InputError

    (tmp_path / "file").write_text("not a directory")
    bad = tmp_path / "file" / "scratch"
    with pytest.raises(InputError, match=r"file/scratch: the prune scratch .* not writable"):
        prune(src, tmp_path / "o", keep=0.3, k=12, scratch=bad, progress="off")


def test_shards_from_two_models_or_dimensions_are_refused(tmp_path):
    from curate.errors import ManifestError

    d = tmp_path / "mixed"
    d.mkdir()
    x = pool(200, 16)
    pq.write_table(embedding_table(x[:100], model="clip-a"), d / "part-00000.parquet")
    t = embedding_table(x[100:], model="effnet")
    pq.write_table(
        t.set_column(0, "id", pa.array([f"b{i}" for i in range(100)])), d / "part-00001.parquet"
    )
    with pytest.raises(ManifestError, match=r"different models"):
        prune(d, tmp_path / "o", keep=0.5, k=2, progress="off")
    other = embedding_table(pool(100, 8))
    pq.write_table(
        other.set_column(0, "id", pa.array([f"c{i}" for i in range(100)])), d / "part-00001.parquet"
    )
    with pytest.raises(ManifestError, match=r"dimension|different"):
        prune(d, tmp_path / "o2", keep=0.5, k=2, progress="off")
