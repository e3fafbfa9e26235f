"""Bad input to ``curate.evaluate``: one clear error each, naming the subset or file and the fix."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import curate
from curate.errors import InputError, ManifestError
from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names
from tests.evaluate._data import digits_table


def test_subset_with_ids_the_pool_lacks(digits_pool, tmp_path):
    other = write_manifest(pa.table({"id": ["d0001", "zz-unknown"]}), tmp_path / "other")
    with pytest.raises(
        InputError, match=r"subset 'odd'.*1 of its 2 ids are not in the pool.*'zz-unknown'"
    ):
        curate.evaluate(digits_pool, subsets={"odd": str(other)}, test_split="test")


def test_empty_subset_and_bad_sql_and_bad_names(digits_pool):
    with pytest.raises(InputError, match=r"subset 'none'.*selects no row"):
        curate.evaluate(digits_pool, subsets=["none=label > 99"], test_split="test")
    with pytest.raises(InputError, match=r"subset 'typo'.*no valid DuckDB WHERE.*columns"):
        curate.evaluate(digits_pool, subsets=["typo=lable = 3"], test_split="test")
    with pytest.raises(InputError, match=r"subset 'gone'.*no such manifest"):
        curate.evaluate(
            digits_pool, subsets={"gone": digits_pool.parent / "missing"}, test_split="test"
        )
    with pytest.raises(InputError, match=r"NAME=SPEC"):
        curate.evaluate(digits_pool, subsets=["no spec here"], test_split="test")
    with pytest.raises(InputError, match=r"choose one of probe, cnn"):
        curate.evaluate(digits_pool, subsets=["a=TRUE"], test_split="test", model="resnet")


def test_only_test_rows_in_a_subset(digits_pool):
    with pytest.raises(InputError, match=r"subset 'only_test'.*none of its 397 rows.*'test': 397"):
        curate.evaluate(digits_pool, subsets=["only_test=split = 'test'"], test_split="test")


def test_test_set_with_classes_the_pool_lacks(tmp_path):
    table = digits_table()
    pool = write_manifest(table.filter(pc.less(table["label"], 8)), tmp_path / "pool")
    test = write_manifest(table.filter(pc.equal(table["split"], "test")), tmp_path / "test")
    with pytest.raises(InputError, match=r"test set has class\(es\) \['8', '9'\].*pool's classes"):
        curate.evaluate(pool, subsets=["all=TRUE"], test=test)


def test_test_set_with_other_class_names(digits_pool, tmp_path):
    table = digits_table()
    test = table.filter(pc.equal(table["split"], "test"))
    test = test.replace_schema_metadata(
        with_class_names(test.schema, [f"c{k}" for k in range(10)]).metadata
    )
    path = write_manifest(test, tmp_path / "test")
    with pytest.raises(InputError, match=r"class names .* differ from POOL's"):
        curate.evaluate(digits_pool, subsets=["all=TRUE"], test=path)


def test_pool_without_labels_and_subset_without_labels(tmp_path):
    table = digits_table()
    no_label = write_manifest(table.drop_columns(["label"]), tmp_path / "nolabel")
    with pytest.raises(ManifestError, match=r"no 'label' column.*--labels"):
        curate.evaluate(no_label, subsets=["all=TRUE"], test_split="test")
    first = pc.less(pc.cast(pc.utf8_slice_codeunits(table["id"], 1), pa.int64()), 100)
    unlabelled = pc.if_else(first, pa.scalar(None, pa.int64()), table["label"])
    part = write_manifest(
        table.set_column(1, table.schema.field("label"), unlabelled), tmp_path / "p"
    )
    with pytest.raises(InputError, match=r"subset 'first'.*'no_label': 100.*labelled rows"):
        curate.evaluate(part, subsets=["first=id < 'd0100'"], test_split="test")


def test_missing_embedding_for_the_probe(tmp_path):
    path = write_manifest(digits_table().drop_columns(["embedding"]), tmp_path / "noemb")
    with pytest.raises(
        ManifestError, match=r"no embedding column 'embedding' for the probe.*curate embed"
    ):
        curate.evaluate(path, subsets=["all=TRUE"], test_split="test")


def test_test_set_must_be_given_once(digits_pool):
    with pytest.raises(InputError, match="give exactly one test set"):
        curate.evaluate(digits_pool, subsets=["all=TRUE"])
    with pytest.raises(InputError, match="--test-split or --test-fraction, not both"):
        curate.evaluate(digits_pool, subsets=["all=TRUE"], test_split="test", test_fraction=0.2)
