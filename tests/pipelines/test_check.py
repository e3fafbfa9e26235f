"""curate check on planted issues: duplicates, leaks, unusable images, outliers; every row kept."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import curate
from curate.manifests.catalog import sql
from curate.manifests.io import write_manifest
from curate.pipelines.check import CHECK_ISSUES, check, issues_found, summarize
from curate.pipelines.check.knn import Neighbours
from tests.pipelines._check_data import build

pytest.importorskip("faiss")
pytest.importorskip("imagehash")

#: The test's 7 x 7 pixel vectors put distinct Fashion images up to ~0.999 apart.
TIGHT = {"near_dup_threshold": 0.9995, "progress": "off"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return build(tmp_path_factory.mktemp("check") / "m")


@pytest.fixture(scope="module")
def checked(planted, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "checked"
    return check(planted.path, out, **TIGHT).read().to_pandas().set_index("id")


def test_every_row_kept_in_order(planted, checked):
    assert list(checked.index) == planted.ids
    assert not (planted.path.parent / ".checked.pixels").exists()  # the first pass is removed


def test_exact_and_phash_duplicates_link_to_the_first_row(checked):
    row = checked.loc["train-dup-0"]  # a re-encoded copy of train-0007, later in the manifest
    assert row.is_exact_dup and row.exact_dup_of == "train-0007"
    assert row.phash_dup_of == "train-0007" and row.phash_distance == 0
    assert not checked.loc["train-0007"].is_exact_dup  # the first of the pair is not flagged
    assert pd_none(checked.loc["train-0007"].exact_dup_of)
    assert "exact_dup" in checked.loc["train-dup-0"][CHECK_ISSUES]


def pd_none(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def test_leaks_of_the_test_split_name_their_training_copy(planted, checked):
    for test_id, copy in planted.exact_leaks.items():
        row = checked.loc[test_id]
        assert row.is_leak and row.leak_of == copy and row.leak_by == "exact"
        assert row.leak_source == "split:train" and row.leak_sim == pytest.approx(1.0, abs=1e-3)
    for test_id, copy in planted.jpeg_leaks.items():
        row = checked.loc[test_id]
        assert row.is_leak and row.leak_of == copy and row.leak_by in ("phash", "embedding")
    train = checked[checked.split == "train"]
    assert train.is_leak.isna().all()  # only the test split is checked for leakage
    assert checked.loc["test-0010"].leak_sim < 1.0  # a score even where no leak is found


def test_unusable_images_flagged_with_scores(planted, checked):
    kinds = {v: k for k, v in planted.kinds.items()}
    assert checked.loc[kinds["dark"]].is_dark and checked.loc[kinds["dark"]].dark_score < 0.32
    assert checked.loc[kinds["light"]].is_light
    blank = checked.loc[kinds["blank"]]
    assert blank.is_dark and blank.is_low_information and blank.low_information_score == 0
    assert checked.loc[kinds["wide"]].is_odd_aspect_ratio
    assert checked.loc[kinds["big"]].is_odd_size and checked.loc[kinds["wide"]].is_odd_size
    assert not checked.loc["train-0001"].is_odd_size
    assert not checked.is_grayscale.fillna(False).any()  # a grayscale set: not an issue
    scores = checked[[c for c in checked.columns if c.endswith("_score")]].drop(
        columns="outlier_score"
    )
    v = scores.to_numpy(np.float64)
    v = v[~np.isnan(v)]
    assert len(v) and (v >= 0).all() and (v <= 1).all()


def test_undecodable_row_kept_with_its_error(planted, checked):
    row = checked.loc[planted.corrupt]
    assert row.error.startswith("check: corrupt:")
    assert pd_none(row.pixel_hash) and pd.isna(row.is_dark) and pd.isna(row.is_exact_dup)
    assert list(row[CHECK_ISSUES]) == ["undecodable"]


pd = pytest.importorskip("pandas")


def test_outlier_score_is_the_mean_cosine_distance_to_k_neighbours(planted, checked):
    from sklearn.neighbors import NearestNeighbors

    from curate.manifests.vectors import read_vectors

    x, ok = read_vectors(planted.path, "embedding")
    x = x[ok].astype(np.float64)
    ids = np.array(planted.ids)[ok]
    nn = NearestNeighbors(n_neighbors=11, metric="cosine").fit(x)  # as cleanlab's OOD does
    dist, _ = nn.kneighbors(x)
    want = dist[:, 1:].mean(axis=1)  # self first, then the 10 nearest
    got = checked.loc[ids].outlier_score.to_numpy()
    assert np.allclose(got, want, atol=2e-3)
    flagged = checked.is_outlier.fillna(False).astype(bool)
    assert flagged.sum() == int(np.ceil(0.01 * len(x)))  # above the 99th percentile
    assert checked.loc[flagged].outlier_score.min() > checked.loc[~flagged].outlier_score.max()


def test_counts_summary_and_fail_on(planted, tmp_path):
    m = check(planted.path, tmp_path / "c", **TIGHT)
    s = summarize(m)
    assert s["counts"]["leak"] >= 6 and s["counts"]["undecodable"] == 1
    assert s["worst"]["leak"][0]["of"].startswith("train-copy")
    assert issues_found(m, "leak,grayscale") == {"leak": s["counts"]["leak"]}
    assert issues_found(m, "grayscale") == {}
    with pytest.raises(ValueError, match="valid names"):
        issues_found(m, "leaks")


def test_sql_lists_the_leak_pairs(planted, tmp_path):
    m = curate.check(planted.path, tmp_path / "c", **TIGHT)
    pairs = sql(
        "SELECT t.id, t.leak_of, t.leak_by, t.leak_sim, r.split AS leak_split "
        "FROM c t JOIN c r ON r.id = t.leak_of WHERE t.is_leak ORDER BY t.leak_sim DESC",
        c=m,
    ).to_pylist()
    found = {p["id"]: p["leak_of"] for p in pairs}
    assert {**planted.exact_leaks, **planted.jpeg_leaks}.items() <= found.items()
    assert all(p["leak_split"] == "train" for p in pairs)


def test_against_another_manifest(planted, tmp_path):
    from tests.pipelines._check_data import fashion, pixel_vectors, png

    imgs = fashion(3, offset=5000)  # unrelated images ...
    imgs = np.concatenate([imgs, fashion(2, offset=1)])  # ... and two that M also holds
    vec = pixel_vectors(list(imgs))
    from curate.manifests import schema as S

    field = S.embedding_field("embedding", vec.shape[1], "float32", model="pixels-7x7")
    table = pa.table(
        {
            "id": [f"eval-{i}" for i in range(len(imgs))],
            "image": pa.array([png(a) for a in imgs], pa.binary()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), vec.shape[1]),
        },
        schema=pa.schema([("id", pa.string()), ("image", pa.binary()), field]),
    )
    ev = write_manifest(table, tmp_path / "eval")
    out = check(planted.path, tmp_path / "c", against=str(ev), **TIGHT).read().to_pandas()
    hits = out[out.leak_source == f"against:{ev}"].set_index("id")
    assert set(hits.index) >= {"train-0001", "train-0002"}
    assert hits.loc["train-0001"].leak_of == "eval-3" and hits.loc["train-0001"].leak_by == "exact"
    checked = out.set_index("id").is_leak
    assert checked.drop(planted.corrupt).notna().all()  # with --against every row is checked
    assert pd_none(checked[planted.corrupt])  # ... that has an image or a vector


def test_neighbours_drop_self_and_link_only_earlier_rows():
    nb = Neighbours.empty(4)
    rows = np.array([0, 1, 2, 3])
    ids = np.array([[1, 0, 2], [0, 1, 3], [2, 3, 0], [2, 3, 1]])
    sims = np.array([[0.99, 0.98, 0.5], [0.99, 0.98, 0.4], [1.0, 0.97, 0.5], [0.97, 0.96, 0.4]])
    nb.update(rows, sims, ids, threshold=0.97, k=2)
    assert nb.dup_of.tolist() == [-1, 0, -1, 2]  # row 0's neighbour 1 is later: not a link
    assert nb.nearest_sim[0] == pytest.approx(0.99) and nb.nearest_sim[2] == pytest.approx(0.97)
    assert nb.outlier[0] == pytest.approx(((1 - 0.99) + (1 - 0.5)) / 2)


def test_progress_lines_cover_the_index_build(planted, tmp_path, capsys):
    # an IVF index trains for minutes at scale before any row is searched: it has its lines
    m = check(planted.path, tmp_path / "c", **{**TIGHT, "progress": "lines"}, exact_max_rows=10)
    err = capsys.readouterr().err
    assert m.run_info["index"]["manifest"]["kind"] == "ivf"
    assert err.index("check: index:") < err.index("check: neighbour search:")
