"""Small real data for the relabel tests: the first Fashion-MNIST test images of the demo set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate
from curate.manifests.io import write_manifest
from tests.pipelines._label_data import one_thread  # noqa: F401 (autouse, re-exported)

DEMO = Path(curate.__file__).parent / "data" / "fashion_mnist_test.parquet"
#: Small input for tests: 64 px gives a 2 x 2 map on EfficientNet-Lite0 (stride 32).
SIZE = 64


def fashion_table(n: int = 120) -> pa.Table:
    return pq.read_table(DEMO).slice(0, n)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fashion") / "m"
    write_manifest(fashion_table(), out)
    return out


def assert_whole_map_pools_to_soft_label(rows: list[dict], classes: int = 10, grid: int = 2):
    """Pooling each row's whole label map gives back its soft label (to fp16 storage)."""
    import torch

    from curate.train.labelpool import pool_map
    from curate.train.losses import densify_topk

    for row in rows:
        cls = np.array(row["label_map_classes"]).reshape(classes, grid, grid)
        scores = np.array(row["label_map_scores"], np.float32).reshape(classes, grid, grid)
        pooled = pool_map(cls, scores, (0.0, 0.0, float(grid), float(grid)), classes)
        soft = densify_topk(
            torch.tensor([row["soft_classes"]]), torch.tensor([row["soft_probs"]]), classes
        )[0]
        assert torch.allclose(pooled, soft, atol=5e-3)
