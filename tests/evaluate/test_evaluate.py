"""``curate.evaluate`` on real digits: random at equal budget, seeds, subset specs, exclusions."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import curate
from curate.evaluation.harness import draw_random
from curate.manifests.io import open_manifest, write_manifest
from tests.evaluate._data import digits_table


def _strip_timings(result) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.results]


def test_dropping_flipped_labels_beats_random_at_equal_budget(digits_pool, tmp_path):
    out = tmp_path / "r.json"
    result = curate.evaluate(
        digits_pool, subsets={"clean": "NOT flipped", "all": "TRUE"}, test_split="test", out=out
    )
    clean, everything = result["clean"], result["all"]
    assert (
        clean["rows"]
        == clean["random_rows"]
        == 1400 - int(pc.sum(open_manifest(digits_pool).read(["flipped"])["flipped"]).as_py())
    )
    assert clean["delta_vs_random"] > 0.05  # several times its std
    assert clean["delta_vs_random"] > 3 * clean["delta_std"]
    # the whole train split and a random draw of all of it are the same rows
    assert everything["rows"] == 1400 and abs(everything["delta_vs_random"]) < 1e-9
    saved = json.loads(out.read_text())
    first = saved["results"][0]
    for key in ("subset", "rows", "accuracy_mean", "accuracy_std", "random_accuracy_mean",
                "random_accuracy_std", "delta_vs_random", "per_class_accuracy"):  # fmt: skip
        assert key in first
    assert 0 <= first["accuracy_mean"] <= 1 and set(first["per_class_accuracy"]) == set(
        "0123456789"
    )
    assert saved["test"]["rows"] == 397


def test_random_rows_are_drawn_at_the_subset_size_from_usable_non_test_rows():
    labels = np.repeat(np.arange(4), 50)
    candidates = np.arange(0, 200, 2)  # the usable rows
    subset = candidates[labels[candidates] == 1][:7]
    for seed in range(3):
        rows = draw_random(candidates, subset, labels, seed=seed, mode="uniform")
        assert len(rows) == len(np.unique(rows)) == 7 and np.isin(rows, candidates).all()
        strat = draw_random(candidates, subset, labels, seed=seed, mode="stratified")
        assert np.isin(strat, candidates).all() and (labels[strat] == 1).sum() == 7
    a, b = (draw_random(candidates, subset, labels, seed=s, mode="uniform") for s in (0, 1))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, draw_random(candidates, subset, labels, seed=0, mode="uniform"))


def test_seeds_make_it_reproducible(digits_pool):
    spec = {"small": "label < 7 AND NOT flipped"}
    a = curate.evaluate(digits_pool, subsets=spec, test_split="test", seeds=2)
    b = curate.evaluate(digits_pool, subsets=spec, test_split="test", seeds=2)
    assert _strip_timings(a) == _strip_timings(b)
    assert len(a["small"]["random_accuracies"]) == 2
    assert a["small"]["random_accuracies"][0] != a["small"]["random_accuracies"][1]


def test_stratified_random_matches_the_subsets_class_counts(digits_pool):
    r = curate.evaluate(
        digits_pool, subsets={"low": "label < 3"}, test_split="test", random="stratified"
    )
    low = r["low"]
    assert low["random"] == "stratified" and low["random_rows"] == low["rows"]
    # random rows from the same three classes: a 3-class test set is out of reach for both
    assert abs(low["delta_vs_random"]) < 0.1 and low["random_accuracy_mean"] < 0.5


def test_prune_output_and_its_kept_manifest_select_the_same_rows(digits_pool, tmp_path):
    from curate.pipelines.prune import prune

    m = prune(digits_pool, tmp_path / "p", keep=0.5, method="dbp", k=10,
              kept_out=tmp_path / "kept", overwrite=True)  # fmt: skip
    kept = int(pc.sum(m.read(["keep"])["keep"]).as_py())
    r = curate.evaluate(
        digits_pool,
        subsets=[f"dbp={tmp_path / 'p'}", f"ids={tmp_path / 'kept'}"],
        test_split="test",
    )
    assert r["dbp"]["selected"] == r["ids"]["selected"] == kept
    # the prune ran on every row, test rows included: those are counted, not trained on
    assert r["dbp"]["rows"] + r["dbp"]["excluded"]["test"] == kept
    assert r["dbp"]["accuracy_mean"] == r["ids"]["accuracy_mean"]


def test_separate_test_manifest_and_held_out_fraction(digits_pool, tmp_path):
    table = digits_table()
    is_test = pc.equal(table["split"], "test")
    test = write_manifest(table.filter(is_test), tmp_path / "test")
    r = curate.evaluate(digits_pool, subsets={"clean": "NOT flipped"}, test=test)
    # the pool's rows that are the test set's ids are never trained on
    assert r.info["test"]["pool_rows_shared"] == 397 and r["clean"]["excluded"] == {"test": 397}
    f = curate.evaluate(digits_pool, subsets={"all": "TRUE"}, test_fraction=0.2)
    assert f.info["test"]["rows"] == round(0.2 * 1797)
    assert f["all"]["rows"] == 1797 - round(0.2 * 1797)
    other_seed = curate.evaluate(
        digits_pool, subsets={"all": "TRUE"}, test_fraction=0.2, test_seed=1
    )
    assert other_seed["all"]["accuracy_mean"] != f["all"]["accuracy_mean"]


def test_rows_with_an_error_or_no_embedding_are_counted_as_excluded(tmp_path):
    table = digits_table()
    n = table.num_rows
    error = pa.array(["decode: broken" if i < 5 else None for i in range(n)], pa.string())
    emb = table["embedding"].combine_chunks()
    nulls = pa.array([5 <= i < 9 for i in range(n)])
    emb = pc.if_else(nulls, pa.scalar(None, emb.type), emb)
    table = table.set_column(
        table.schema.get_field_index("embedding"), table.schema.field("embedding"), emb
    )
    pool = write_manifest(table.append_column("error", error), tmp_path / "pool")
    r = curate.evaluate(pool, subsets={"first": "id < 'd0100'"}, test_split="test", seeds=1)
    first = r["first"]
    assert first["excluded"] == {"error": 5, "invalid_embedding:null": 4}
    assert first["rows"] == first["random_rows"] == 91
    assert r.info["usable_pool_rows"] == 1400 - 9
