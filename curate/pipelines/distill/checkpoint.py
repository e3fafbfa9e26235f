"""Resumable distillation: the synthetic images and optimiser state, saved atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from curate.errors import InputError

CHECKPOINT = "_distill_checkpoint.pt"


@dataclass
class State:
    """Everything a resumed run needs: the pixels, the momentum buffer, where it stopped.

    Each iteration's randomness (network, real batch, augmentation) is derived from the seed
    and the iteration number, so no RNG state has to be carried. ``selection`` records how the
    learning rate was chosen, so a resumed run keeps the choice.
    """

    iteration: int
    syn: object  # float32 tensor (classes * ipc, C, H, W), normalised space
    optimizer: dict
    source_ids: list[str | None]
    resume_key: dict
    losses: list[tuple[int, float]]
    selection: dict | None = None  # the learning-rate choice, when one was made


def checkpoint_path(out: str | os.PathLike) -> Path:
    return Path(out) / CHECKPOINT


def save(out: str | os.PathLike, state: State) -> Path:
    """Write the checkpoint to a temporary file and rename it over the last one."""
    import torch

    path = checkpoint_path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "iteration": state.iteration,
            "syn": state.syn.detach().cpu(),
            "optimizer": state.optimizer,
            "source_ids": state.source_ids,
            "resume_key": state.resume_key,
            "losses": state.losses,
            "selection": state.selection,
        },
        tmp,
    )
    os.replace(tmp, path)
    return path


def load(out: str | os.PathLike, resume_key: dict) -> State | None:
    """The checkpoint in ``out``, or None; one written with other settings is an error."""
    import torch

    path = checkpoint_path(out)
    if not path.exists():
        return None
    raw = torch.load(path, map_location="cpu", weights_only=False)
    if raw["resume_key"] != resume_key:
        diff = {
            k: (raw["resume_key"].get(k), v)
            for k, v in resume_key.items()
            if raw["resume_key"].get(k) != v
        }
        raise InputError(
            f"{out}: holds an interrupted run with other settings ({diff}, as (checkpoint, "
            "now)); rerun with the same settings to resume, or pass --overwrite to start over."
        )
    return State(
        raw["iteration"],
        raw["syn"],
        raw["optimizer"],
        raw["source_ids"],
        raw["resume_key"],
        [tuple(x) for x in raw["losses"]],
        raw.get("selection"),
    )
