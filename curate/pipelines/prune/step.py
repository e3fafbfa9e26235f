"""Pruning as a step on the engine contract: fit = load, cluster and select over the whole
manifest; per batch = the ``keep``/``prune_reason`` (and fresh cluster) columns of its rows."""

from __future__ import annotations

import pyarrow as pa

from curate.engines.base import FitStep, add_columns
from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.manifests.runinfo import Timer
from curate.pipelines.cluster import extended_schema
from curate.pipelines.prune._load import load
from curate.pipelines.prune._write import new_columns
from curate.pipelines.prune.base import DUP, KEPT, PruneConfig


class PruneDecision(FitStep):
    """Decide which rows to keep (``fit``), then annotate every row (``process_rows``).

    Parameters
    ----------
    config
        A :class:`~curate.pipelines.prune.base.PruneConfig`.

    Attributes
    ----------
    selection_, loaded_
        The per-row decision and what the writer needs (clusters, invalid reasons).
    ids_
        The manifest's ids when some row is a duplicate (``dup_of`` names the kept id).
    timings_
        Seconds per fit stage.
    """

    name = "prune"
    thread_safe = True

    def fit(self, manifest: Manifest) -> PruneDecision:
        from curate.pipelines.prune import get_method

        cfg: PruneConfig = self.config
        impl = get_method(cfg.method)
        timer = Timer()
        with timer("load"):
            loaded = load(manifest, impl, cfg)
        if loaded.data.n_valid == 0:
            what = "clip_score" if cfg.method == "clip-score" else repr(cfg.embedding_column)
            raise InputError(
                f"{manifest.path}: no row is usable for {cfg.method}: every {what} is null, "
                "NaN or zero."
            )
        with timer(cfg.method):
            sel = impl.select(loaded.data, cfg)
        loaded.data.vectors = None  # the per-batch part needs no vectors
        invalid = ~loaded.data.valid
        sel.keep[invalid] = False
        sel.reason[invalid] = loaded.invalid_reason[invalid]
        sel.dup_of[invalid] = -1
        assert (sel.reason[sel.keep] == KEPT).all()
        has_dups = bool((sel.reason == DUP).any())
        self.ids_ = manifest.read([S.ID]).column(S.ID) if has_dups else None
        self.selection_, self.loaded_ = sel, loaded
        self.timings_ = {**loaded.timings, **timer.seconds}
        return self

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cache = self.__dict__.setdefault("_schemas", {})
        key = schema.to_string(show_schema_metadata=False)
        if key not in cache:
            sel, loaded, method = self.selection_, self.loaded_, self.config.method
            cache[key] = extended_schema(
                schema, lambda b: new_columns(b, slice(0, 0), sel, loaded, None, method)
            )
        return cache[key].with_metadata(schema.metadata)

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        cols = new_columns(
            table, rows, self.selection_, self.loaded_, self.ids_, self.config.method
        )
        return add_columns(table, cols, self.output_schema(table.schema))
