"""Small manifests the benchmarks build (kept here so benchmarks never import from tests/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names


def labels_manifest(path: Path, labels: np.ndarray, names: list[str] | None = None) -> Path:
    """A manifest of ids and labels only (for --pred-probs runs)."""
    table = pa.table(
        {"id": [f"r{i:05d}" for i in range(len(labels))], "label": pa.array(labels, pa.int64())}
    )
    schema = with_class_names(table.schema, names or [f"c{k}" for k in range(labels.max() + 1)])
    write_manifest(table.replace_schema_metadata(schema.metadata), path)
    return path
