"""``curate.distill_eval``: synthetic sets against random real images under one protocol."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

import curate
from curate.errors import InputError, ManifestError
from curate.evaluation.distill_eval import RANDOM, WHOLE, EvalProtocol
from tests.pipelines._distill_data import FAST, fashion_table, one_thread, write  # noqa: F401

TINY = dict(epochs=3, nets=2, draws=2, width=8, depth=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("e")
    real = write(fashion_table(3, 20, test_per_class=10), d / "real.parquet")
    dm = curate.distill(real, d / "dm", ipc=1, iterations=2, **FAST)
    dd = curate.distill(
        real, d / "dd", method="datadam", fyi=True, ipc=1, iterations=2, lr=1.0, **FAST
    )
    return real, dm, dd


def test_table_compares_each_set_with_random_real_at_the_same_ipc(tmp_path, data):
    real, dm, dd = data
    table = curate.distill_eval([dm.path, dd.path], real=real, out=tmp_path / "ev", **TINY)
    rows = table.to_pylist()
    assert [r["method"] for r in rows] == [RANDOM, "dm", "datadam+fyi"]
    assert all(r["ipc"] == 1 and r["nets"] == 2 and len(r["accuracies"]) == 2 for r in rows)
    assert rows[0]["diff_from_random"] is None
    for r in rows[1:]:
        assert r["diff_from_random"] == pytest.approx(r["accuracy_mean"] - rows[0]["accuracy_mean"])
    meta = json.loads(table.schema.metadata[b"curate.distill_eval"])
    assert "epochs=3 (full: 1000)" in meta["reduced"] and meta["test_rows"] == 30
    # the random baseline's draws are kept as a manifest of real train ids
    draws = curate.open_manifest(tmp_path / "ev" / "random_draws.parquet").read().to_pydict()
    assert draws["draw"] == [0, 0, 0, 1, 1, 1] and sorted(set(draws["label"])) == [0, 1, 2]
    splits = curate.sql("SELECT id, split FROM r", r=real).to_pydict()
    split_of = dict(zip(splits["id"], splits["split"], strict=True))
    assert {split_of[i] for i in draws["id"]} == {"train"}
    assert (tmp_path / "ev" / "results.parquet").exists()
    assert (tmp_path / "ev" / "run.json").exists()


def test_same_seed_same_numbers_and_whole_dataset_row(data):
    real, dm, _ = data
    a = curate.distill_eval(dm.path, real=real, whole=True, **TINY).to_pylist()
    b = curate.distill_eval(dm.path, real=real, whole=True, **TINY).to_pylist()
    assert [r["accuracies"] for r in a] == [r["accuracies"] for r in b]
    assert a[-1]["method"] == WHOLE and a[-1]["ipc"] is None


def test_the_full_protocol_is_not_labelled_reduced():
    assert EvalProtocol().reductions() == []
    assert EvalProtocol(nets=3, test_rows=500).reductions() == [
        "nets=3 (full: 10)",
        "test_rows=500 (full: None)",
    ]


def test_bad_input(tmp_path, data):
    real, dm, _ = data
    no_split = write(fashion_table(3, 5).drop(["split"]), tmp_path / "ns.parquet")
    with pytest.raises(ManifestError, match="no 'split' column"):
        curate.distill_eval(dm.path, real=no_split, **TINY)
    with pytest.raises(ManifestError, match="no 'pixels' column"):
        curate.distill_eval(real, real=real, **TINY)
    with pytest.raises(InputError, match="epochs must be a positive integer"):
        curate.distill_eval(dm.path, real=real, epochs=0)
    small = curate.distill(real, tmp_path / "i5", ipc=5, iterations=1, **FAST)
    with pytest.raises(InputError, match="differ in ipc"):
        curate.distill_eval([dm.path, small.path], real=real, **TINY)
