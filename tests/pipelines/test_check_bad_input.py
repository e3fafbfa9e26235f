"""curate check on input it cannot fully use: no images, no embeddings, another model in
--against, a test split no row has, nothing to check at all."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import InputError, ManifestError, OptionError
from curate.manifests import schema as S
from curate.manifests.io import open_manifest, write_manifest
from curate.pipelines.check import check
from tests.pipelines._check_data import build

pytest.importorskip("faiss")
pytest.importorskip("imagehash")
OFF = {"progress": "off", "near_dup_threshold": 0.9995}


def test_no_images_skips_pixel_checks_with_one_note(tmp_path):
    planted = build(tmp_path / "m", images=False)
    m = check(planted.path, tmp_path / "c", **OFF)
    notes = m.run_info["plan"]["notes"]
    assert len(notes) == 1 and notes[0].startswith("no image or path column: pixel checks skipped")
    cols = set(m.schema.names)
    assert {"near_dup_of", "outlier_score", "leak_of"} <= cols
    assert not cols & {"pixel_hash", "phash", "dark_score", "is_exact_dup"}
    t = m.read(["id", "leak_of", "leak_by"]).to_pandas().set_index("id")
    for test_id, copy in planted.exact_leaks.items():  # the copies' vectors are equal
        assert t.loc[test_id].leak_of == copy and t.loc[test_id].leak_by == "embedding"


def test_no_embeddings_skips_embedding_checks_naming_curate_embed(tmp_path):
    planted = build(tmp_path / "m", embeddings=False)
    m = check(planted.path, tmp_path / "c", **OFF)
    notes = " ".join(m.run_info["plan"]["notes"])
    assert "embedding checks skipped" in notes and "curate embed" in notes
    assert "near_dup_of" not in m.schema.names and "outlier_score" not in m.schema.names
    t = m.read(["id", "leak_of", "leak_by"]).to_pandas().set_index("id")
    for test_id, copy in planted.exact_leaks.items():  # pixels still find the exact copies
        assert t.loc[test_id].leak_of == copy and t.loc[test_id].leak_by == "exact"


def test_nothing_to_check_is_an_error(tmp_path):
    write_manifest(pa.table({"id": ["a", "b"], "label": [0, 1]}), tmp_path / "m")
    with pytest.raises(ManifestError, match="nothing to check.*curate embed"):
        check(tmp_path / "m", tmp_path / "c")


def test_unknown_test_split_lists_the_splits_present(tmp_path):
    planted = build(tmp_path / "m", n_train=20, n_test=6)
    with pytest.raises(InputError, match=r"no row has split 'val'.*'test', 'train'"):
        check(planted.path, tmp_path / "c", test_split="val")
    assert not (tmp_path / "c").exists()  # refused before any work


def test_no_test_split_by_default_is_a_note_not_an_error(tmp_path):
    planted = build(tmp_path / "m", n_train=20, n_test=6)
    t = open_manifest(planted.path).read()
    t = t.set_column(t.schema.get_field_index("split"), "split", pa.array(["a"] * t.num_rows))
    write_manifest(t, tmp_path / "m2")
    m = check(tmp_path / "m2", tmp_path / "c", **OFF)
    assert "leak_of" not in m.schema.names
    assert any("split leakage not checked" in n for n in m.run_info["plan"]["notes"])


def _eval(tmp_path, dim: int, model: str):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    field = S.embedding_field("embedding", dim, "float32", model=model)
    table = pa.table(
        {
            "id": list("abcd"),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), dim),
        },
        schema=pa.schema([("id", pa.string()), field]),
    )
    return write_manifest(table, tmp_path / f"eval-{model}-{dim}")


@pytest.mark.parametrize(("dim", "model"), [(49, "other-model"), (32, "pixels-7x7")])
def test_against_another_model_or_dimension_names_both(tmp_path, dim, model):
    planted = build(tmp_path / "m", n_train=20, n_test=6)
    ev = _eval(tmp_path, dim, model)
    with pytest.raises(ManifestError, match="different models") as err:
        check(planted.path, tmp_path / "c", against=str(ev))
    assert str(planted.path) in str(err.value) and str(ev) in str(err.value)


def test_bad_options_fail_before_work(tmp_path):
    planted = build(tmp_path / "m", n_train=20, n_test=6)
    with pytest.raises(OptionError, match="valid options"):
        check(planted.path, tmp_path / "c", near_dup=0.9)
    with pytest.raises(ValueError, match="phash_max_distance"):
        check(planted.path, tmp_path / "c", phash_max_distance=70)
    check(planted.path, tmp_path / "c", **OFF)
    with pytest.raises(Exception, match="--overwrite"):
        check(planted.path, tmp_path / "c", **OFF)


def test_check_without_out_writes_beside_its_input_and_the_cli_keeps_only_a_summary(tmp_path):
    from typer.testing import CliRunner

    from curate.cli.app import app

    planted = build(tmp_path / "pool", images=False)
    src = planted.path
    m = check(src, **OFF)
    assert m.path == tmp_path / "pool-checked" and m.num_rows == open_manifest(src).num_rows
    res = CliRunner().invoke(app, ["check", str(src), "--progress", "off"])
    assert res.exit_code == 0, res.output
    assert "no --out" in res.output and sorted(p.name for p in tmp_path.iterdir()) == [
        "pool",
        "pool-checked",
    ]
