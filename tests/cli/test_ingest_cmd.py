"""``curate ingest`` as a user runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from curate.cli.app import app, main
from curate.cli.ingest_cmd import parse_map
from curate.errors import InputError
from curate.manifests import open_manifest
from tests.manifests.ingest_data import DIGIT_NAMES, digits, digits_folder, write_laion

runner = CliRunner()


def test_ingest_a_folder_prints_a_summary_with_failures(tmp_path: Path) -> None:
    src = digits_folder(tmp_path / "d", 30)
    good = bytearray((src / "zero" / "0000.png").read_bytes())
    good[len(good) // 2] ^= 0xFF  # one flipped byte: the chunk CRC no longer matches
    (src / "three" / "bad.png").write_bytes(bytes(good))
    out = tmp_path / "m"
    result = runner.invoke(app, ["ingest", str(src), "-o", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "ingested 31 rows (imagefolder)" in result.output
    assert "1 rows kept with an error (corrupt_image: 1)" in result.output
    assert f"wrote {out}" in result.output
    assert open_manifest(out).num_rows == 31


def test_map_embeddings_and_overwrite(tmp_path: Path) -> None:
    src = write_laion(tmp_path / "l.parquet", 12)
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(12, 8)).astype(np.float16))
    out = tmp_path / "m.parquet"
    args = ["ingest", str(src), "-o", str(out), "--map", "similarity=clip_score",
            "--map", "TEXT=caption_text", "--embeddings", str(tmp_path / "e.npy")]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    m = open_manifest(out)
    assert {"clip_score", "caption_text", "embedding"} <= set(m.schema.names)
    assert "text" not in m.schema.names
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, Exception)
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_numpy_with_class_names(tmp_path: Path) -> None:
    images, labels = digits(20)
    np.savez(tmp_path / "d.npz", x=images, y=labels)
    args = ["ingest", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m"), "-j", "1",
            "--class-names", ",".join(DIGIT_NAMES)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "10 classes: zero, one" in result.output
    assert open_manifest(tmp_path / "m").class_names == DIGIT_NAMES


def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(tmp_path / "missing"), "-o", str(tmp_path / "m")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "missing: input does not exist" in err and "Traceback" not in err


def test_parse_map_rejects_malformed_items() -> None:
    assert parse_map(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(InputError, match="expected old=new"):
        parse_map(["caption"])
