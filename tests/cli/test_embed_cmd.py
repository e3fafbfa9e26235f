"""``curate embed`` and ``curate models`` as a user runs them."""

from __future__ import annotations

from typer.testing import CliRunner

from curate.cli.app import app, main
from curate.manifests.io import Manifest
from tests.pipelines import _embed_data as D

runner = CliRunner()


def test_embed_prints_a_summary_with_failures_by_kind(tmp_path):
    src = D.write_images(tmp_path / "in", [D.png(), D.jpeg(), b"", D.corrupt()])
    model = D.tiny_clip_config(tmp_path)
    out = tmp_path / "out"
    args = ["embed", str(src), "-o", str(out), "--model", model, "--dtype", "float32"]
    r = runner.invoke(app, [*args, "--workers", "0", "--progress", "off"])
    assert r.exit_code == 0, r.output
    assert "embedded 2 of 4 rows" in r.output
    assert "failed 2 (corrupt: 1, empty: 1)" in r.output and "images/s" in r.output
    assert Manifest(out).run_info["counts"]["failed_by_kind"] == {"corrupt": 1, "empty": 1}
    r = runner.invoke(app, [*args, "--progress", "off"])
    assert r.exit_code != 0 and "--overwrite" in str(r.exception)


def test_bad_option_exits_2_with_one_line(tmp_path, capsys):
    src = D.write_images(tmp_path / "in", [D.png()])
    try:
        main(["embed", str(src), "-o", str(tmp_path / "o"), "--dtype", "float8"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "dtype='float8'" in err and "float16, float32" in err


def test_models_lists_the_offline_encoder():
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    assert "efficientnet_lite0" in r.output and "timm:<name>" in r.output
    assert "ViT-B-32" in r.output
    r = runner.invoke(app, ["models", "lite0"])
    assert "efficientnet_lite0" in r.output and "ViT-B-32" not in r.output
