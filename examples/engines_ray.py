"""One step, two engines: a new per-batch step (the mean brightness of each image) and
``curate prune`` run locally and on a local Ray, on 2,000 Fashion-MNIST test images; the
manifests come out equal, row for row.

    python examples/engines_ray.py  (about a minute on 2 CPU cores; needs the [ray] extra)
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

import curate
from curate.engines import run
from curate.engines.ray_engine import ray_session
from curate.manifests import write_manifest
from curate.pipelines.embed import embed
from curate.pipelines.prune import prune
from curate.step import Step, add_columns, extend_schema

DEMO = Path(curate.__file__).parent / "data" / "fashion_mnist_test.parquet"


class Brightness(Step):
    """Adds ``brightness``: the mean pixel value of each image (null where it cannot decode)."""

    name = "brightness"

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [pa.field("brightness", pa.float32())])

    def process(self, table: pa.Table) -> pa.Table:
        values = []
        for data in table.column("image").to_pylist():
            try:
                values.append(float(np.asarray(Image.open(io.BytesIO(data))).mean()))
            except Exception:  # a corrupt image: a null, the row is kept
                values.append(None)
        col = pa.array(values, pa.float32())
        return add_columns(table, {"brightness": col}, self.output_schema(table.schema))


def data(m: curate.Manifest) -> pa.Table:
    return m.read().replace_schema_metadata(None)


with tempfile.TemporaryDirectory() as d, ray_session():  # loopback, no dashboard
    d = Path(d)
    src = write_manifest(pq.read_table(DEMO).slice(0, 2000), d / "fashion", rows_per_shard=500)
    local = run(Brightness(), src, d / "bright-local", progress="off")
    on_ray = run(Brightness(), src, d / "bright-ray", engine="ray", progress="off")
    print(f"brightness: {local.num_rows} rows, local == ray: {data(local).equals(data(on_ray))}")
    print(
        curate.sql(
            "SELECT label, round(avg(brightness), 1) AS mean FROM b GROUP BY label "
            "ORDER BY mean DESC LIMIT 3",
            b=on_ray,
        )
        .to_pandas()
        .to_string(index=False)
    )

    emb = embed(src, d / "emb", model="efficientnet_lite0", image_size=32, progress="off")
    opts = {"method": "semdedup", "keep": 0.5, "k": 20, "progress": "off"}
    p_local = prune(emb, d / "pruned-local", **opts)
    p_ray = prune(emb, d / "pruned-ray", engine="ray", **opts)  # SemDeDup: a groupby on cluster
    kept = p_ray.run_info["counts"]["kept"]
    same = data(p_local).equals(data(p_ray))
    print(f"prune semdedup keep 0.5: {kept} kept; local == ray: {same}")
