"""The distill step's configuration: a frozen, validated dataclass shared by Python and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from curate.errors import InputError

INITS = ("real", "noise")
PRECISIONS = ("auto", "fp32", "bf16")
LR_CHOICES = ("auto", "select")
#: Fewest validation rows per class from which a learning rate may be chosen: below it the
#: accuracy of a candidate has a standard error over ~3 points (10 classes), too coarse to rank.
MIN_VAL_PER_CLASS = 20
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
    "validation",
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
    lr
        SGD learning rate on the pixels: a number; ``select`` (chosen among ``lr_grid`` on a
        validation split cut from the training rows); or ``auto``, the method's own default:
        DM's paper value 1.0, and ``select`` for DataDAM (whose loss is ~50x smaller than
        DM's, so no fixed value carries over).
    momentum
        SGD momentum on the pixels (0.5 in the DM paper).
    lr_grid
        Learning rates tried when choosing (empty: the method's ``lr_grid``).
    val_per_class
        Validation rows cut (seeded) from each class's training rows when choosing a learning
        rate (at most half a class); they are then left out of the distillation. Fewer than
        ``MIN_VAL_PER_CLASS`` (20) in any class is an error.
    select_iterations
        Iterations each candidate runs (capped at ``iterations``); the winner continues from
        there, so the search costs ``(len(lr_grid) - 1) * select_iterations`` extra iterations.
    select_epochs, select_nets
        Each candidate's images train ``select_nets`` fresh ConvNets for ``select_epochs``
        (the evaluation protocol otherwise); the mean validation accuracy ranks them.
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
    lr: float | str = "auto"
    momentum: float = 0.5
    lr_grid: tuple[float, ...] = ()
    val_per_class: int = 100
    select_iterations: int = 500
    select_epochs: int = 300
    select_nets: int = 2
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
        ints = ("ipc", "iterations", "real_per_class", "checkpoint_every", "width", "depth")
        for name in (*ints, "select_iterations", "select_epochs", "select_nets"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.precision not in PRECISIONS:
            raise InputError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        self._check_lr()
        if self.image_size is not None and self.image_size < 8:
            raise InputError(f"image_size must be >= 8, got {self.image_size}")

    def _check_lr(self) -> None:
        object.__setattr__(self, "lr_grid", tuple(float(v) for v in self.lr_grid))
        if isinstance(self.lr, str):
            if self.lr not in LR_CHOICES:
                raise InputError(f"lr must be a number, 'auto' or 'select', got {self.lr!r}")
        elif isinstance(self.lr, bool) or not self.lr > 0:
            raise InputError(f"need lr > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise InputError(f"need 0 <= momentum < 1, got {self.momentum}")
        if any(isinstance(v, bool) or not v > 0 for v in self.lr_grid):
            raise InputError(f"every lr_grid value must be > 0, got {self.lr_grid}")
        if self.selects_lr and self.val_per_class < MIN_VAL_PER_CLASS:
            raise InputError(
                f"val_per_class={self.val_per_class}: choosing a learning rate needs at least "
                f"{MIN_VAL_PER_CLASS} validation rows per class; raise it, or pass a fixed lr."
            )

    @property
    def selects_lr(self) -> bool:
        """Whether the learning rate is chosen on a validation split."""
        from curate.pipelines.distill.methods import METHODS

        default = METHODS[self.method].default_lr
        return self.lr == "select" or (self.lr == "auto" and default is None)

    def fixed_lr(self) -> float:
        """The learning rate when none is chosen: the number given, or the method's default."""
        from curate.pipelines.distill.methods import METHODS

        if isinstance(self.lr, str):
            default = METHODS[self.method].default_lr
            if self.selects_lr or default is None:
                raise InputError(f"lr={self.lr!r} for {self.method}: the lr is chosen, not fixed")
            return float(default)
        return float(self.lr)

    def to_dict(self) -> dict:
        return asdict(self)

    def resume_key(self) -> dict:
        """The fields a checkpoint must match to be resumed."""
        d = self.to_dict()
        d["validation"] = self.val_per_class if self.selects_lr else None  # the distilled pool
        return {k: d[k] for k in RESUME_FIELDS}
