"""The distill step's configuration: a frozen, validated dataclass shared by Python and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from curate.errors import InputError

INITS = ("real", "noise")
PRECISIONS = ("auto", "fp32", "bf16")
#: Fields a resumed run must share with the checkpoint (the rest may change between runs).
RESUME_FIELDS = (
    "method",
    "ipc",
    "init",
    "fyi",
    "real_per_class",
    "seed",
    "width",
    "depth",
    "split",
    "image_size",
    "dsa",
    "embed_weight",
    "attention_power",
)


@dataclass(frozen=True)
class DistillConfig:
    """Options of :func:`curate.pipelines.distill.distill` (the CLI has the same names).

    Parameters
    ----------
    method
        ``dm`` (distribution matching) or ``datadam`` (attention matching); see ``METHODS``.
    ipc
        Synthetic images per class (1, 10, 50 in the papers).
    iterations
        Optimisation steps on the synthetic pixels (20,000 in the DM paper).
    real_per_class
        Real images per class sampled each iteration (256 in the DM paper).
    init
        ``real``: start from random real images of the class; ``noise``: from Gaussian noise.
    fyi
        Flip Your Images: match each class's synthetic batch joined with its horizontal flips.
    lr, momentum
        SGD on the pixels (1.0 and 0.5 in the DM paper).
    width, depth
        The ConvNet sampled each iteration (128 and 3 in the protocol).
    dsa
        Apply one differentiable augmentation per class and iteration (same parameters for
        real and synthetic).
    embed_weight, attention_power
        DataDAM: weight of the final-embedding term and the power p in sum_c |f_c|^p.
    split
        Use only rows of this ``split`` when the manifest has a split column (None: all rows).
    image_size
        Resize every image to this side; None requires one common size.
    checkpoint_every
        Save the synthetic images and optimiser state every this many iterations.
    device, precision
        ``auto`` picks CUDA when present; ``auto`` precision is bf16 autocast on CUDA for the
        network, fp32 on CPU (the pixels and their updates stay fp32).
    seed
        Seeds the initial draw, every iteration's network, real batch and augmentation.
    """

    method: str = "dm"
    ipc: int = 10
    iterations: int = 20_000
    real_per_class: int = 256
    init: str = "real"
    fyi: bool = False
    lr: float = 1.0
    momentum: float = 0.5
    width: int = 128
    depth: int = 3
    dsa: bool = True
    embed_weight: float = 0.01
    attention_power: int = 4
    split: str | None = "train"
    image_size: int | None = None
    checkpoint_every: int = 100
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        from curate.pipelines.distill.methods import METHODS, UnknownMethodError

        if self.method not in METHODS:
            raise UnknownMethodError(
                f"unknown distillation method {self.method!r}; choose one of {', '.join(METHODS)}"
            )
        for name in ("ipc", "iterations", "real_per_class", "checkpoint_every", "width", "depth"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if not self.lr > 0 or not 0 <= self.momentum < 1:
            raise InputError(f"need lr > 0 and 0 <= momentum < 1, got {self.lr}, {self.momentum}")
        if self.image_size is not None and self.image_size < 8:
            raise InputError(f"image_size must be >= 8, got {self.image_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    def resume_key(self) -> dict:
        """The fields a checkpoint must match to be resumed."""
        d = self.to_dict()
        return {k: d[k] for k in RESUME_FIELDS}
