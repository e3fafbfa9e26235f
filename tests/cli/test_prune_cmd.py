"""``curate cluster`` and ``curate prune`` as a user runs them."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.app import app, main
from curate.manifests.io import Manifest
from tests.pipelines._prune_data import blobs, write_embeddings

runner = CliRunner()


@pytest.fixture
def src(tmp_path):
    x, _ = blobs(6, 50, 16, spread=0.3)
    x[:20] = x[20:40]  # 20 exact duplicates
    return write_embeddings(tmp_path / "in", x)


def test_cluster_then_prune_with_kept_out(tmp_path, src):
    r = runner.invoke(app, ["cluster", str(src), "-o", str(tmp_path / "c"), "--k", "6"])
    assert r.exit_code == 0, r.output
    assert "6 clusters" in r.output and (tmp_path / "c" / "centroids.npy").exists()
    args = [
        "prune",
        str(tmp_path / "c"),
        "-o",
        str(tmp_path / "p"),
        "--keep",
        "0.27",
        "--method",
        "dbp",
        "--kept-out",
        str(tmp_path / "k"),
        "--dedup-eps",
        "0.001",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "kept 81 of 300" in r.output
    assert "semdedup:dup_of" in r.output and "complexity" in r.output and "quota" in r.output
    assert Manifest(tmp_path / "k").num_rows == 81
    assert Manifest(tmp_path / "p").num_rows == 300


def test_semdedup_with_eps(tmp_path, src):
    args = [
        "prune",
        str(src),
        "-o",
        str(tmp_path / "p"),
        "--method",
        "semdedup",
        "--eps",
        "0.001",
        "--k",
        "3",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "kept 280 of 300" in r.output


@pytest.mark.parametrize("keep", ["0", "1.5", "-0.1"])
def test_bad_keep_exits_2_naming_value_and_range(tmp_path, src, keep, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prune", str(src), "-o", str(tmp_path / "p"), "--keep", keep])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "(0, 1]" in err and keep in err


def test_missing_embedding_column_points_to_embed(tmp_path, capsys):
    import pyarrow as pa

    from curate.manifests.io import write_manifest

    m = write_manifest(pa.table({"id": ["a"]}), tmp_path / "m")
    with pytest.raises(SystemExit):
        main(["prune", str(m), "-o", str(tmp_path / "p"), "--keep", "0.5"])
    err = capsys.readouterr().err
    assert "curate embed" in err and "--embedding-column" in err


def test_random_is_reproducible_from_the_cli(tmp_path, src):
    for name in ("a", "b"):
        args = [
            "prune",
            str(src),
            "-o",
            str(tmp_path / name),
            "--keep",
            "0.5",
            "--method",
            "random",
            "--seed",
            "4",
        ]
        assert runner.invoke(app, args).exit_code == 0
    a, b = (Manifest(tmp_path / n).read()["keep"].to_numpy() for n in "ab")
    np.testing.assert_array_equal(a, b)


def test_unknown_engine_is_one_clear_error(tmp_path, src, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prune", str(src), "-o", str(tmp_path / "p"), "--keep", "0.5", "--engine", "spark"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown engine 'spark'" in err and "local, ray" in err
    assert not (tmp_path / "p").exists()


def test_the_design_card_command_works_as_written(tmp_path):
    """``curate prune laion.parquet --keep 0.27``: a LAION-style Parquet (no id column), no -o."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, _ = blobs(6, 50, 16, spread=0.3)
    t = pa.table(
        {
            "url": [f"http://x/{i}.jpg" for i in range(300)],
            "caption": ["a photo"] * 300,
            "embedding": pa.array(x.tolist(), pa.list_(pa.float32())),
        }
    )
    pq.write_table(t, tmp_path / "laion.parquet")
    r = runner.invoke(app, ["prune", str(tmp_path / "laion.parquet"), "--keep", "0.27"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "laion-pruned.parquet"
    assert str(out) in r.output.replace("\n", "") and "kept 81 of 300" in r.output
    m = Manifest(out)
    assert m.num_rows == 300 and m.schema.names[:3] == ["id", "url", "caption"]
