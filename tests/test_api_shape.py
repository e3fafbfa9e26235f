"""One shape for every step: ``import curate`` alone, one signature, a Manifest back."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import curate
from curate.manifests.io import write_manifest
from tests.conftest import embedded_table

#: Steps with the full shape: (manifest, out=None, *, config, engine, ray_address, progress,
#: overwrite, **options).
SHAPED = ("embed", "cluster", "prune", "check", "relabel", "reinforce", "distill", "export")
SHAPE = {
    "config": None,
    "engine": "local",
    "ray_address": None,
    "progress": "auto",
    "overwrite": False,
}


def test_every_step_is_exported_from_curate():
    for verb in (
        "ingest", "embed", "cluster", "prune", "check", "label_issues", "relabel", "mistakes",
        "reinforce", "distill", "evaluate", "report", "serve", "export",
        "find_label_issues", "soft_labels",
    ):  # fmt: skip
        assert verb in curate.__all__ and callable(getattr(curate, verb)), verb


@pytest.mark.parametrize("verb", SHAPED)
def test_a_step_has_the_one_signature(verb):
    params = inspect.signature(getattr(curate, verb)).parameters
    names = list(params)
    assert names[:2] == ["manifest", "out"] and params["out"].default is None
    for name, default in SHAPE.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (verb, name)
        assert params[name].default == default, (verb, name)
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_a_notebook_chain_with_import_curate_alone(tmp_path):
    src = write_manifest(embedded_table(300, 16), tmp_path / "pool")
    clustered = curate.cluster(src, k=4, progress="off")
    assert isinstance(clustered, curate.Manifest)
    assert clustered.path == tmp_path / "pool-clustered"  # written beside the input
    pruned = curate.prune(clustered, keep=0.5, method="dbp", progress="off")
    assert pruned.path == tmp_path / "pool-clustered-pruned"
    kept = curate.sql(f"SELECT count(*) AS n FROM '{pruned.path}/*.parquet' WHERE keep")
    assert 0 < kept.column("n")[0].as_py() < 300


def test_an_option_means_the_same_everywhere(tmp_path):
    src = write_manifest(embedded_table(120, 8), tmp_path / "m")
    with pytest.raises(TypeError, match="valid options"):
        curate.cluster(src, kk=3)
    with pytest.raises(ValueError, match="progress"):
        curate.cluster(src, k=3, progress="loud")


def test_array_level_functions_take_labels_and_pred_probs():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    probs = np.full((300, 3), 0.05)
    probs[np.arange(300), labels] = 0.9
    flipped = np.arange(0, 300, 10)
    probs[flipped] = np.roll(probs[flipped], 1, axis=1)  # the model disagrees on every 10th
    ranking = curate.find_label_issues(labels, probs)
    assert set(np.flatnonzero(ranking.is_label_issue)) == set(flipped)
    soft = curate.soft_labels(labels, probs)
    assert soft.shape == (300, 3) and np.allclose(soft.sum(axis=1), 1.0)
    agree = np.setdiff1d(np.arange(300), flipped)
    assert (soft[agree].argmax(axis=1) == labels[agree]).all()
