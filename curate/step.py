"""The step contract: what a step declares and does, whichever engine runs it.

A step never reads or writes a manifest itself and never imports an engine. It is:

- a frozen config (``self.config``), stored by the constructor and nothing else;
- ``setup()``: load models once per process (local engine) or per actor (Ray);
- ``output_schema(schema)``: the output schema for an input schema, known before any row;
- ``process(table)``: one batch in, the same rows in the same order out, columns added;
- ``resources``: what one worker needs (cpus, gpus, memory), mapped by the engine.

A step that must see the whole data first (k-means, per-cluster quotas, a cross-validated
head) is a :class:`FitStep`: the engine calls ``fit(manifest, workers)`` once, which learns
attributes ending in ``_`` and returns self, handing its independent pieces of work to the
engine's ``workers``; the fitted object is then shipped to every worker and runs ``process``
batch by batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from curate.errors import CurateError
from curate.manifests import schema as S

#: ``Step.__call__``'s "not prepared ahead" marker (None may be a stage's result).
NOT_PREPARED: Any = object()


@dataclass(frozen=True)
class Resources:
    """What one worker of a step needs; engines map it (Ray: ``num_cpus``/``num_gpus``).

    Parameters
    ----------
    cpus
        CPU cores per worker (fractions allowed).
    gpus
        GPUs per worker; a step with ``gpus > 0`` runs as a pool of actors under Ray.
    memory
        Bytes of memory per worker, or None when the step does not say.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0 or (self.memory is not None and self.memory < 0):
            raise ValueError(f"Resources must not be negative, got {self}")


@dataclass(frozen=True)
class PrepareStage:
    """CPU-side work a step declares on each batch before ``process`` (decoding images):
    ``fn(table)`` needs nothing :meth:`Step.setup` loads and must pickle. The local engine runs
    it in ``workers`` processes (0: one thread), ``depth`` batches ahead of the model, each
    process first calling ``init`` (e.g. one thread per process); other engines call ``fn``
    in place. The step then gets the result in :meth:`Step.process_prepared`."""

    fn: Callable[[pa.Table], Any]
    workers: int = 1
    depth: int = 2
    init: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.workers < 0 or self.depth < 1:
            raise ValueError(f"PrepareStage needs workers >= 0 and depth >= 1, got {self}")


class StepError(CurateError):
    """A step broke the contract (dropped or reordered rows, wrong schema)."""


class Step:
    """A per-batch step. Subclasses set ``name`` and implement ``output_schema`` and
    ``process``; they may override ``setup``, ``resources``, ``count`` and ``run_info``.

    Parameters
    ----------
    config
        The step's frozen, validated config dataclass (or None for a step without options).
    """

    #: The step's name in run.json, progress lines and errors.
    name: ClassVar[str] = "step"
    #: What one worker needs; override as a class attribute or a property.
    resources: Resources = Resources()
    #: Whether ``process`` may run on several threads of one process at once (steps whose
    #: work releases the GIL: Arrow, numpy, FAISS); the local engine then uses threads.
    thread_safe: ClassVar[bool] = False
    #: Cut shards at exactly ``shard_rows`` rows rather than at row-group starts: for a step
    #: whose rows cost far more than reading them (a model on every image), where a shard is
    #: the unit of resume, however large the input's row groups.
    exact_shards: ClassVar[bool] = False
    #: Columns the input must have (a step that derives ids itself needs none).
    requires: ClassVar[tuple[str, ...]] = (S.ID,)

    def __init__(self, config: Any = None) -> None:
        self.config = config

    # -- what a subclass writes ------------------------------------------------------------
    def setup(self) -> None:
        """Load what ``process`` needs (a model, a table); called once per process/actor."""

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema ``process`` returns for batches of ``schema`` (metadata kept)."""
        raise NotImplementedError

    def process(self, table: pa.Table) -> pa.Table:
        """One batch in, the same rows in the same order out, with the step's columns."""
        raise NotImplementedError

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        """``process`` for a step that needs the batch's place in the manifest: ``rows`` are
        its rows in manifest order (a fit step looking up what it learned per row). Engines
        always call this one; the default ignores ``rows``."""
        return self.process(table)

    def prepare_stage(self) -> PrepareStage | None:
        """The step's CPU-side stage, or None (the default: ``process`` does everything).
        Called after ``setup``; a step with a stage implements :meth:`process_prepared`."""
        return None

    def process_prepared(self, table: pa.Table, prepared: Any) -> pa.Table:
        """``process`` for a step with a :class:`PrepareStage`: ``prepared`` is
        ``stage.fn(table)``, computed ahead (local engine) or in place."""
        raise NotImplementedError

    def count(self, table: pa.Table) -> dict[str, int]:
        """Counts for run.json from one output batch (summed over batches by the engine)."""
        return {}

    def run_info(self) -> dict[str, Any]:
        """Extra run.json fields (a model's name and checkpoint hash, fitted tables)."""
        return {}

    def finish(self) -> None:
        """Called once after every row is written (release what ``fit`` left on disk)."""

    def config_record(self) -> dict[str, Any]:
        """The config as run.json and the resume check see it."""
        cfg = self.config
        return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}

    # -- what engines call -----------------------------------------------------------------
    def __call__(
        self,
        batch: pa.Table | pa.RecordBatch,
        rows: slice | None = None,
        prepared: Any = NOT_PREPARED,
    ) -> pa.Table:
        """``process_rows`` (or ``process_prepared``, the stage run here unless ``prepared`` is
        given) with the contract checked: every row kept, in order."""
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if rows is None:
            rows = slice(0, table.num_rows)
        if prepared is not NOT_PREPARED:  # the engine ran the step's stage ahead
            out = self.process_prepared(table, prepared)
        elif (stage := self.prepare_stage()) is not None:
            out = self.process_prepared(table, stage.fn(table))
        else:
            out = self.process_rows(table, rows)
        if out.num_rows != table.num_rows:
            raise StepError(
                f"step {self.name!r} returned {out.num_rows} rows for a batch of "
                f"{table.num_rows}; a step must keep every row (mark failures in 'error')."
            )
        if S.ID in table.column_names and out.num_rows:
            for i in (0, out.num_rows - 1):
                if out.column(S.ID)[i] != table.column(S.ID)[i]:
                    raise StepError(f"step {self.name!r} reordered rows (row {i}'s id changed).")
        return out


class FitStep(Step):
    """A step that learns from the whole manifest before its per-batch ``process``.

    ``fit(manifest, workers=None)`` reads what it needs through the
    :class:`~curate.manifests.Manifest` API (a sample, one column, grouped rows), sets
    attributes ending in ``_`` and returns self. Independent pieces of work inside the fit (a
    range of rows, a batch of clusters) go to ``workers`` (:mod:`curate.engines.workers`: the
    engine's threads, or Ray tasks), never to a loop of the step's own. The fitted object
    must pickle: the Ray engine ships it to every actor.
    """

    def fit(self, manifest, workers=None) -> FitStep:
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        """True once ``fit`` has set learned (``*_``) attributes."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))


def add_columns(table: pa.Table, columns: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """``table`` with ``columns`` replaced or appended, cast to ``schema``'s order and types.

    The usual body of ``process``: compute the new columns, then ``add_columns``.
    """
    arrays = []
    for field in schema:
        if field.name in columns:
            col = columns[field.name]
        elif field.name in table.column_names:
            col = table.column(field.name)
        else:
            raise StepError(f"output column {field.name!r} was neither computed nor input")
        arrays.append(col if col.type == field.type else col.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def extend_schema(schema: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
    """``schema`` with ``fields`` replacing same-named columns in place, else appended."""
    new = {f.name: f for f in fields}
    out = [new.pop(f.name, f) for f in schema]
    out.extend(f for f in fields if f.name in new)
    return pa.schema(out, metadata=schema.metadata)
