"""curate's chunked and streaming ranking against cleanlab, and the published predictions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.manifests.io import open_manifest, write_manifest
from curate.pipelines.label_issues import label_issues, rank_chunked, rank_parquet
from curate.pipelines.label_issues.config import CHUNKED_METHODS
from curate.pipelines.label_issues.ranking import array_chunks
from tests.pipelines._label_data import (
    LABEL_ERRORS,
    labels_manifest,
    noisy_pred_probs,
    one_thread,
    published,
)

cleanlab_filter = pytest.importorskip("cleanlab.filter")
cleanlab_rank = pytest.importorskip("cleanlab.rank")


@pytest.mark.parametrize("method", CHUNKED_METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [97, 5000])
def test_chunked_ranking_matches_cleanlab(method, dtype, rows):
    labels, pp = noisy_pred_probs(3000, 12, seed=1, dtype=dtype)
    got = rank_chunked(array_chunks(labels, pp, rows), len(labels), 12, method=method)
    want = cleanlab_filter.find_label_issues(labels, pp, filter_by=method)
    assert got.num_issues == want.sum() > 0
    np.testing.assert_array_equal(got.is_label_issue, want)
    np.testing.assert_array_equal(
        got.label_quality, cleanlab_rank.get_label_quality_scores(labels, pp)
    )


__all__ = ["one_thread"]  # the autouse fixture


def test_chunked_normalized_margin_matches_cleanlab():
    labels, pp = noisy_pred_probs(2000, 7, seed=2)
    got = rank_chunked(
        array_chunks(labels, pp, 300),
        2000,
        7,
        method="confident_learning",
        rank_by="normalized_margin",
    )
    want = cleanlab_rank.get_label_quality_scores(labels, pp, method="normalized_margin")
    np.testing.assert_allclose(got.label_quality, want, rtol=0, atol=1e-7)


def test_missing_class_matches_cleanlab():
    labels, pp = noisy_pred_probs(1500, 6, seed=3)
    labels[labels == 5] = 4  # class 5 has no given examples
    got = rank_chunked(array_chunks(labels, pp, 200), 1500, 6, method="low_self_confidence")
    want = cleanlab_filter.find_label_issues(labels, pp, filter_by="low_self_confidence")
    np.testing.assert_array_equal(got.is_label_issue, want)


def test_streaming_parquet_matches_cleanlab(tmp_path):
    labels, pp = noisy_pred_probs(4000, 20, seed=4)
    table = pa.table(
        {
            "label": labels,
            "pred_probs": pa.FixedSizeListArray.from_arrays(pa.array(pp.ravel()), 20),
        }
    )
    write_manifest(table, tmp_path / "pp", rows_per_shard=1500)
    got = rank_parquet(tmp_path / "pp", batch_size=333)
    want = cleanlab_filter.find_label_issues(labels, pp, filter_by="low_self_confidence")
    np.testing.assert_array_equal(got.is_label_issue, want)
    np.testing.assert_array_equal(got.label_quality, pp[np.arange(4000), labels])


@pytest.mark.skipif(not LABEL_ERRORS.exists(), reason="published predictions not present")
@pytest.mark.parametrize("name", ["mnist", "cifar10"])
@pytest.mark.parametrize("method", ["prune_by_noise_rate", "both", "low_self_confidence"])
def test_published_predictions_flag_exactly_cleanlabs_set(tmp_path, name, method):
    """`curate label-issues --pred-probs` on the paper's predictions == cleanlab, same settings."""
    from typer.testing import CliRunner

    from curate.cli.app import app

    pp, labels = published(name)
    manifest = labels_manifest(tmp_path / "m.parquet", labels)
    result = CliRunner().invoke(
        app,
        [
            "label-issues",
            str(manifest),
            "-o",
            str(tmp_path / "out"),
            "--pred-probs",
            str(LABEL_ERRORS / f"{name}_test_set_pyx.npy"),
            "--method",
            method,
        ],
    )
    assert result.exit_code == 0, result.output
    out = open_manifest(tmp_path / "out").read().column("is_label_issue").to_numpy()
    renormalised = pp / pp.sum(axis=1, keepdims=True)
    want = cleanlab_filter.find_label_issues(labels, renormalised, filter_by=method)
    np.testing.assert_array_equal(out, want)
    # the rows were only off by quantisation: the raw array flags the same set
    np.testing.assert_array_equal(
        want, cleanlab_filter.find_label_issues(labels, pp, filter_by=method)
    )


def test_issues_out_worst_first_and_pair_table(tmp_path):
    pp, labels = noisy_pred_probs(600, 4, seed=5)[::-1]
    manifest = labels_manifest(tmp_path / "m.parquet", labels, ["cat", "dog", "fox", "owl"])
    result = label_issues(
        manifest, tmp_path / "out", pred_probs=pp, issues_out=tmp_path / "issues.parquet"
    )
    issues = pa.parquet.read_table(tmp_path / "issues.parquet")
    flagged = result.column("is_label_issue").to_numpy()
    assert issues.num_rows == flagged.sum() > 0
    quality = issues.column("label_quality").to_numpy()
    assert (np.diff(quality) >= 0).all()
    import json

    run = json.loads((tmp_path / "out" / "run.json").read_text())
    pairs = run["label_pairs"]
    assert sum(p["count"] for p in pairs) == flagged.sum()
    assert {p["given_name"] for p in pairs} <= {"cat", "dog", "fox", "owl"}
    given = labels[flagged]
    suggested = pp[flagged].argmax(axis=1)
    top = pairs[0]
    assert top["count"] == np.sum((given == top["given"]) & (suggested == top["suggested"]))
    assert json.loads(result.schema.metadata[b"curate.label_pairs"]) == pairs
