"""``describe``: the figures ``curate info`` prints."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curate.manifests import write_manifest
from curate.manifests.info import describe
from curate.manifests.runinfo import make_run_info
from curate.manifests.schema import with_class_names


def test_describe_counts_labels_errors_and_steps(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "label": pa.array([0, 1, 1, None], pa.int64()),
            "error": [None, "corrupt image: truncated", None, "missing file: x.jpg"],
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, ["cat", "dog"]).metadata)
    out = write_manifest(table, tmp_path / "m", run_info=make_run_info("ingest", config={}))
    info = describe(out)
    assert info.rows == 4
    assert info.class_names == ["cat", "dog"]
    assert (1, "dog", 2) in info.label_counts
    assert info.error_rows == 2
    assert dict(info.error_kinds) == {"corrupt image": 1, "missing file": 1}
    assert [s["step"] for s in info.steps] == ["ingest"]
    assert ("label", "int64") in info.columns
