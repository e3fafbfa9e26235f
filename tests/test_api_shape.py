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
SHAPED = (
    "ingest", "embed", "cluster", "prune", "check", "label_issues", "relabel", "mistakes",
    "reinforce", "distill", "evaluate", "report", "export",
)  # fmt: skip
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
    first = "src" if verb == "ingest" else "manifest"  # ingest reads a source, not a manifest
    assert names[:2] == [first, "out"] and params["out"].default is None
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


def test_ingest_evaluate_and_report_take_the_shape_too(tmp_path, capsys):
    from tests.cli.test_errors import write_laion

    src = write_laion(tmp_path / "laion.parquet", 40)
    m = curate.ingest(src, progress="lines")
    assert m.path == tmp_path / "laion-ingested.parquet" and m.num_rows == 40
    assert "ingest parquet: 40 rows to process" in capsys.readouterr().err
    with pytest.raises(curate.errors.InputError, match="local engine only"):
        curate.ingest(src, tmp_path / "x", engine="ray")
    embedded = write_manifest(embedded_table(200, 8), tmp_path / "pool")
    r = curate.evaluate(embedded, subsets={"half": "label < 5"}, test_fraction=0.2, seeds=1,
                        progress="lines")  # fmt: skip
    assert (
        r["half"]["rows"] > 0 and "evaluate probe: 1 subsets to process" in capsys.readouterr().err
    )
    assert not list(tmp_path.glob("pool-*"))  # evaluate writes only where out is given
    with pytest.raises(curate.errors.InputError, match="local engine only"):
        curate.evaluate(embedded, subsets=["all=TRUE"], engine="ray")
    page = curate.report(embedded, progress="off")
    assert page == tmp_path / "pool-report.html" and page.exists()
    with pytest.raises(curate.errors.OutputExistsError, match="--overwrite"):
        curate.report([embedded], page)


@pytest.mark.parametrize(
    ("labels", "probs", "says"),
    [
        ([0, 1, 5], np.full((3, 3), 1 / 3), "class indices 0..2"),
        (["cat", "dog", "cat"], np.full((3, 3), 1 / 3), "map class names to indices"),
        ([0, 1, 2], np.full((2, 3), 1 / 3), "one row of class probabilities per label"),
        ([0, 1, 2], np.where(np.eye(3), np.nan, 0.5), "row 0 (and 2 more) is not finite"),
    ],
)
def test_array_functions_name_what_is_wrong_with_their_input(labels, probs, says):
    for fn in (curate.find_label_issues, curate.soft_labels):
        with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
            fn(np.asarray(labels), probs)
