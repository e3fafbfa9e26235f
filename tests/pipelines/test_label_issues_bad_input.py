"""label_issues on bad input: each case fails with a message naming the rows and the fix."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError, OutputExistsError
from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names
from curate.pipelines.label_issues import label_issues
from curate.pipelines.label_issues.audit import SmallClassWarning
from curate.pipelines.label_issues.validate import RenormalisedWarning
from tests.pipelines._label_data import (
    fresh_out,
    labels_manifest,
    noisy_pred_probs,
    one_thread,
    write_digits,
)

__all__ = ["one_thread"]  # the autouse fixture

pytest.importorskip("cleanlab")


@pytest.fixture
def case(tmp_path):
    labels, pp = noisy_pred_probs(200, 4, seed=0)
    return labels_manifest(tmp_path / "m.parquet", labels), labels, pp


def test_rows_not_summing_to_one_are_renormalised_with_a_warning(case):
    path, labels, pp = case
    scaled = pp.copy()
    scaled[[3, 7]] *= 1.5
    with pytest.warns(RenormalisedWarning, match="2 of 200 rows"):
        got = label_issues(path, fresh_out(), pred_probs=scaled)
    want = label_issues(path, fresh_out(), pred_probs=pp)
    np.testing.assert_allclose(got.column("label_quality"), want.column("label_quality"), 1e-6)
    assert got.column("is_label_issue").equals(want.column("is_label_issue"))


@pytest.mark.parametrize("value", [np.nan, -0.1, np.inf])
def test_nan_or_negative_probabilities_name_the_rows(case, value):
    path, _, pp = case
    bad = pp.copy()
    bad[17, 2] = value
    bad[150, 0] = value
    with pytest.raises(InputError, match=r"row\(s\) 17 \(id 'r00017'\), 150 \(id 'r00150'\)"):
        label_issues(path, fresh_out(), pred_probs=bad)


def test_nan_in_a_npy_file_streamed_in_chunks_names_the_row(case, tmp_path):
    path, _, pp = case
    bad = pp.copy()
    bad[123, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(InputError, match="123"):
        label_issues(
            path,
            fresh_out(),
            pred_probs=tmp_path / "bad.npy",
            method="low_self_confidence",
            batch_size=50,
        )


def test_shape_mismatch_with_rows(case):
    path, _, pp = case
    with pytest.raises(InputError, match="199 rows but the manifest has 200"):
        label_issues(path, fresh_out(), pred_probs=pp[:-1])


def test_shape_mismatch_with_classes(case):
    path, _, pp = case
    with pytest.raises(InputError, match="3 columns but the manifest has 4 classes"):
        label_issues(path, fresh_out(), pred_probs=pp[:, :3] / pp[:, :3].sum(1, keepdims=True))


def test_labels_outside_the_class_list(tmp_path):
    labels, pp = noisy_pred_probs(50, 3, seed=1)
    labels[[4, 9]] = 3
    table = pa.table({"id": [f"x{i}" for i in range(50)], "label": labels})
    schema = with_class_names(table.schema, ["a", "b", "c"])
    write_manifest(table.replace_schema_metadata(schema.metadata), tmp_path / "m.parquet")
    with pytest.raises(InputError, match=r"4 \(id 'x4'\), 9 \(id 'x9'\).*outside the 3 classes"):
        label_issues(tmp_path / "m.parquet", fresh_out(), pred_probs=pp)


def test_class_with_fewer_examples_than_folds_still_works(tmp_path):
    path, _ = write_digits(tmp_path / "d.parquet", n=300, flips=0)
    table = pa.parquet.read_table(path)
    labels = np.asarray(table.column("label")).copy()
    labels[np.flatnonzero(labels == 9)[2:]] = 8  # class 9 keeps two examples
    table = table.set_column(2, "label", pa.array(labels))
    write_manifest(table, tmp_path / "few.parquet")
    with pytest.warns(SmallClassWarning, match=r"digit_9 \(2\).*lower --folds to 2"):
        result = label_issues(tmp_path / "few.parquet", fresh_out(), folds=5, features="pixels")
    assert result.column("label_quality").null_count == 0


def test_audit_split_with_no_rows(tmp_path):
    path, _ = write_digits(tmp_path / "d.parquet", n=100, flips=0)
    with pytest.raises(InputError, match=r"split == 'valid'.*splits present: \['test', 'train'\]"):
        label_issues(path, fresh_out(), audit_split="valid", features="pixels")
    with pytest.raises(InputError, match="split == 'training'"):
        label_issues(
            path, fresh_out(), audit_split="test", train_split="training", features="pixels"
        )


def test_manifest_without_labels(tmp_path):
    write_manifest(pa.table({"id": ["a", "b"]}), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="no 'label'"):
        label_issues(tmp_path / "m.parquet", fresh_out(), pred_probs=np.eye(2))


def test_rows_without_a_label_or_with_an_error_are_kept_unscored(tmp_path):
    labels, pp = noisy_pred_probs(60, 3, seed=2)
    label_col = pa.array(labels, mask=np.arange(60) == 5)
    errors = pa.array([None] * 10 + ["decode failed"] + [None] * 49, pa.string())
    table = pa.table({"id": [f"x{i}" for i in range(60)], "label": label_col, "error": errors})
    write_manifest(table, tmp_path / "m.parquet")
    result = label_issues(tmp_path / "m.parquet", fresh_out(), pred_probs=pp)
    quality = result.column("label_quality")
    assert result.num_rows == 60 and quality.null_count == 2
    assert not quality[5].is_valid and not quality[10].is_valid


def test_existing_output_is_refused_before_any_work(case, tmp_path):
    path, _, pp = case
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputExistsError):
        label_issues(path, tmp_path / "out", pred_probs=pp)
