"""Small real data for the relabel tests: the first Fashion-MNIST test images of the demo set."""

from __future__ import annotations

from pathlib import Path

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
