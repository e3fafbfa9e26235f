"""label_issues end to end on small real data: predictors, audits, multi-label, zero-shot."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pytest

import curate
from curate.manifests.io import open_manifest, write_manifest
from curate.manifests.schema import with_class_names
from curate.pipelines.label_issues import LabelIssuesConfig, label_issues
from tests.pipelines._label_data import (
    digits_table,
    fresh_out,
    noisy_pred_probs,
    one_thread,
    write_digits,
)

pytest.importorskip("cleanlab")
pytest.importorskip("sklearn")

__all__ = ["one_thread"]  # the autouse fixture


def _flagged(result: pa.Table) -> np.ndarray:
    return np.flatnonzero(result.column("is_label_issue").fill_null(False).to_numpy())


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits") / "digits.parquet")


@pytest.fixture(scope="module")
def digits_embedded(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits_emb") / "digits.parquet"
    return write_digits(path, embedding=True)


def test_logreg_cross_validation_finds_flipped_digits(digits, tmp_path):
    path, flipped = digits
    result = curate.label_issues(path, tmp_path / "out", features="pixels")
    found = set(_flagged(result))
    precision = len(found & set(flipped)) / len(found)
    recall = len(found & set(flipped)) / len(flipped)
    assert precision > 0.6 and recall > 0.7, (precision, recall)
    out = open_manifest(tmp_path / "out")
    assert out.num_rows == result.num_rows
    assert {"label_quality", "is_label_issue", "suggested_label", "suggested_confidence"} <= set(
        out.schema.names
    )
    assert out.class_names == open_manifest(path).class_names
    quality = result.column("label_quality").to_numpy()
    assert quality[flipped].mean() < np.delete(quality, flipped).mean()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["counts"]["label_issues"] == len(found)
    assert run["counts"]["agreement"] > 0.8


def test_embedding_column_is_used_and_ensemble_averages(digits_embedded):
    path, flipped = digits_embedded
    logs: list[str] = []
    result = label_issues(path, fresh_out(), predictor="logreg+mlp", folds=3, log=logs.append)
    assert any("embedding (pixels)" in line for line in logs)
    found = set(_flagged(result))
    assert len(found & set(flipped)) / len(flipped) > 0.6
    assert len(found & set(flipped)) / len(found) > 0.5


def test_folds_and_seed_make_runs_reproducible(digits_embedded):
    path, _ = digits_embedded
    a = label_issues(path, fresh_out(), folds=3, seed=7)
    b = label_issues(path, fresh_out(), folds=3, seed=7)
    np.testing.assert_array_equal(a.column("label_quality"), b.column("label_quality"))


def test_audit_split_fits_on_train_and_scores_only_the_audit_rows(digits, tmp_path):
    path, flipped = digits
    result = label_issues(path, fresh_out(), audit_split="test", features="pixels")
    split = np.asarray(digits_table()[0].column("split").to_pylist())
    quality = result.column("label_quality")
    assert quality.null_count == (split == "train").sum()
    assert np.all(np.isnan(quality.to_numpy(zero_copy_only=False)[split == "train"]))
    test_flips = {int(i) for i in flipped if split[i] == "test"}
    found = set(_flagged(result))
    assert found <= set(np.flatnonzero(split == "test"))
    assert len(found & test_flips) / len(test_flips) > 0.7
    with_cv = label_issues(path, fresh_out(), audit_split="test", audit_cv=True, features="pixels")
    assert with_cv.column("label_quality").null_count == quality.null_count


def test_multilabel_uses_cleanlab_multilabel(tmp_path):
    from cleanlab.multilabel_classification.filter import find_label_issues

    rng = np.random.default_rng(0)
    n, k = 400, 5
    truth = rng.random((n, k)) < 0.3
    truth[np.arange(n), rng.integers(0, k, n)] = True
    pp = np.clip(truth * 0.8 + rng.normal(0, 0.12, (n, k)) + 0.1, 0.01, 0.99).astype(np.float32)
    given = truth.copy()
    noisy = rng.choice(n, 40, replace=False)
    given[noisy, rng.integers(0, k, 40)] ^= True
    labels = [np.flatnonzero(row).tolist() for row in given]
    table = pa.table({"id": [f"m{i}" for i in range(n)], "labels": labels})
    table = table.replace_schema_metadata(with_class_names(table.schema, list("abcde")).metadata)
    write_manifest(table, tmp_path / "ml.parquet")
    result = label_issues(tmp_path / "ml.parquet", tmp_path / "out", pred_probs=pp)
    want = find_label_issues(labels, pp)
    np.testing.assert_array_equal(result.column("is_label_issue").to_numpy(), want)
    out = open_manifest(tmp_path / "out").read()
    assert out.column("suggested_labels").type == pa.list_(pa.int64())
    assert len(set(_flagged(result)) & set(noisy)) / len(noisy) > 0.5


def test_multilabel_builtin_predictor_on_embeddings(tmp_path):
    table, _ = digits_table(n=600, flips=0, embedding=True)
    digit = np.asarray(table.column("label"))
    labels = [[int(d), 10] if d % 2 else [int(d)] for d in digit]  # 10 = "odd"
    labels[:20] = [[int(d)] for d in digit[:20]]  # "odd" missing on some odd digits
    table = table.drop_columns(["label"]).append_column("labels", pa.array(labels))
    names = [f"digit_{k}" for k in range(10)] + ["odd"]
    table = table.replace_schema_metadata(with_class_names(table.schema, names).metadata)
    write_manifest(table, tmp_path / "ml.parquet")
    result = label_issues(tmp_path / "ml.parquet", fresh_out(), folds=3)
    found = set(_flagged(result))
    missing_odd = {i for i in range(20) if digit[i] % 2}
    assert len(found & missing_odd) >= len(missing_odd) // 2
    audit = label_issues(tmp_path / "ml.parquet", fresh_out(), audit_split="test")
    is_test = np.asarray(table.column("split").to_pylist()) == "test"
    assert audit.column("label_quality").null_count == (~is_test).sum()


def test_config_validates_names():
    with pytest.raises(ValueError, match="valid methods"):
        LabelIssuesConfig(method="nope")
    with pytest.raises(ValueError, match="logreg"):
        LabelIssuesConfig(predictor="logreg+svm")
    with pytest.raises(ValueError, match="folds"):
        LabelIssuesConfig(folds=1)
    with pytest.raises(TypeError, match="valid"):
        label_issues("x", fresh_out(), fold=3)


def test_cnn_on_pixels(tmp_path):
    pytest.importorskip("torch")
    path, flipped = write_digits(tmp_path / "d.parquet", n=500, flips=25)
    result = label_issues(path, fresh_out(), predictor="cnn", folds=2, features="pixels")
    quality = result.column("label_quality").to_numpy()
    assert quality[flipped].mean() < np.delete(quality, flipped).mean()


def test_zero_shot_plumbing_with_random_clip_weights(tmp_path):
    """Random weights only check the plumbing: no CLIP weights are available offline."""
    pytest.importorskip("open_clip")
    from curate.pipelines.label_issues.zero_shot import RandomWeightsWarning

    path, _ = write_digits(tmp_path / "d.parquet", n=24, flips=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.warns(RandomWeightsWarning):
            result = label_issues(path, fresh_out(), predictor="zero_shot", model="ViT-S-32")
    assert result.column("label_quality").null_count == 0
    conf = result.column("suggested_confidence").to_numpy()
    assert ((conf > 0) & (conf <= 1)).all()


def test_pred_probs_from_a_parquet_column(tmp_path):
    labels, pp = noisy_pred_probs(300, 3, seed=9)
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(300)],
            "label": labels,
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(pp.ravel()), 3),
        }
    )
    write_manifest(table, tmp_path / "m.parquet")
    column = f"{tmp_path / 'm.parquet'}:probs"
    a = label_issues(tmp_path / "m.parquet", fresh_out(), pred_probs=column)
    np.save(tmp_path / "pp.npy", pp)
    b = label_issues(tmp_path / "m.parquet", fresh_out(), pred_probs=tmp_path / "pp.npy")
    assert a.read().equals(b.read())


def test_embeds_first_when_features_are_needed_and_missing(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    path, _ = write_digits(tmp_path / "d.parquet", n=60, flips=3)
    logs: list[str] = []
    result = label_issues(path, tmp_path / "out", folds=2, predictor="logreg", log=logs.append)
    assert any("embedding with efficientnet_lite0 first" in line for line in logs)
    assert result.column("label_quality").null_count == 0
    out = open_manifest(tmp_path / "out")
    assert out.schema.field("embedding").type.list_size == 1280


def test_demo_stage_falls_back_to_pixels_and_logs_the_worst_ten(tmp_path):
    from curate import demo

    write_digits(tmp_path / "ingested", n=300, flips=15)
    logs: list[str] = []
    out = dict(demo.stages())["label-issues"](tmp_path, logs.append)
    assert out == tmp_path / "label-issues" and open_manifest(out).num_rows == 300
    assert any("pixel features" in line for line in logs)
    header = next(i for i, line in enumerate(logs) if line.startswith("id "))
    assert len(logs[header + 1 : header + 11]) == 10
    assert all(line.startswith("d0") for line in logs[header + 1 : header + 11])


def test_auto_predictor_is_the_pixel_cnn_for_small_images_without_an_embedding(tmp_path):
    path, _ = write_digits(tmp_path / "d.parquet", n=200, flips=10)
    logs: list[str] = []
    result = label_issues(path, fresh_out(), folds=2, log=logs.append)
    assert any("predictor auto -> cnn: no embedding column and small images" in x for x in logs)
    assert not any("embedding with" in x for x in logs)  # no embedding pass
    assert result.schema.metadata[b"curate.predictor"] == b"cnn"
    emb, _ = write_digits(tmp_path / "e.parquet", n=200, flips=10, embedding=True)
    logs.clear()
    result = label_issues(emb, fresh_out(), folds=2, log=logs.append)
    assert any("predictor auto -> logreg (an embedding column)" in x for x in logs)
    assert result.schema.metadata[b"curate.predictor"] == b"logreg"
