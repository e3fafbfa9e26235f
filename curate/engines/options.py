"""Options every engine takes: output handling, shard size, batch size, threads, progress."""

from __future__ import annotations

from dataclasses import dataclass

from curate.errors import OptionValueError
from curate.manifests.io import DEFAULT_BATCH_ROWS

#: Rows per output shard by default: the unit of resume.
DEFAULT_SHARD_ROWS = 100_000
PROGRESS_MODES = ("auto", "bar", "lines", "off")
#: Rows per shard for steps that run a model on every row (embed, relabel, reinforce): a
#: shard is minutes of work there, and the unit a resumed run does not redo.
MODEL_SHARD_ROWS = 10_000


def progress_mode(value: bool | str) -> str:
    """A step's ``progress`` argument as an engine mode: ``True`` is ``"auto"``, ``False``
    ``"off"``; a string must be one of :data:`PROGRESS_MODES`."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if value not in PROGRESS_MODES:
        raise OptionValueError(f"progress={value!r}: valid values are {', '.join(PROGRESS_MODES)}.")
    return value


@dataclass(frozen=True)
class RunOptions:
    """How an engine runs a step (not what the step computes: that is the step's config).

    Parameters
    ----------
    overwrite
        Replace an existing output.
    resume
        Finish an interrupted run into the output, skipping its finished shards; it must
        have the same step, config and input.
    shard_rows
        Rows per output shard: the unit of resume.
    batch_size
        Rows per call of ``step.process``.
    workers
        Local engine: threads for a ``thread_safe`` step (None: the cores this process may
        use). Ray: actors (None: as many as the cluster's resources allow, at most 8).
    progress
        ``auto`` (a bar on a terminal, one line per shard otherwise), ``bar``, ``lines``,
        ``off``.
    """

    overwrite: bool = False
    resume: bool = True
    shard_rows: int = DEFAULT_SHARD_ROWS
    batch_size: int = DEFAULT_BATCH_ROWS
    workers: int | None = None
    progress: str | bool = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "progress", progress_mode(self.progress))
        for name in ("shard_rows", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers={self.workers!r}: use a positive integer or None.")
