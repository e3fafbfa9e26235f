"""``curate export`` as a user runs it: the summary names what was written and skipped."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curate.cli.app import main
from curate.manifests import write_manifest
from tests.manifests.ingest_data import digits, png_bytes


def test_export_prints_counts_skips_and_how_to_read_it(tmp_path: Path, capsys) -> None:
    images, digit = digits(20)
    data = [png_bytes(x) for x in images]
    data[3] = None  # a row without an image
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(20)],
            "image": pa.array(data, pa.binary()),
            "label": digit.tolist(),
            "keep": [i % 2 == 1 for i in range(20)],
        }
    )
    m = write_manifest(table, tmp_path / "m")
    main(["export", str(m), "-o", str(tmp_path / "wds"), "-f", "webdataset", "--shard-size", "4"])
    out = capsys.readouterr().out
    assert "exported 9 of 20 rows (10 selected: keep = true) as webdataset" in out
    assert "skipped 1 row (no_image: 1)" in out
    assert f"3 shard(s): {tmp_path / 'wds'}/shard-{{000000..000002}}.tar" in out
    main(["export", str(m), "-o", str(tmp_path / "all"), "-f", "imagefolder", "--all"])
    out = capsys.readouterr().out
    assert "exported 19 of 20 rows (20 selected: all rows) as imagefolder" in out
    assert "10 class folders" in out
