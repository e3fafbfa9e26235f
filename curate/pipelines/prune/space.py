"""The scratch directory of a prune: where it goes, whether it is writable, whether it has room."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from curate.errors import InputError


def default_scratch(out: str | os.PathLike) -> Path:
    """``.NAME.prune-scratch`` beside the output ``NAME`` (a directory or a ``.parquet``)."""
    out = Path(out)
    return out.with_name(f".{out.name}.prune-scratch")


def check_writable(scratch: Path) -> None:
    """Create ``scratch`` and write a probe file there, or fail naming the path and the fix."""
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        probe = scratch / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"{scratch}: the prune scratch directory is not writable ({exc.strerror or exc}); "
            "pass --scratch DIR (scratch= in Python) on a disk with room."
        ) from None


def check_room(scratch: Path, need: int) -> None:
    """Fail before anything is spilled when ``scratch``'s disk has less than ``need`` bytes
    free (plus 5%): better than a disk filled halfway through."""
    free = shutil.disk_usage(scratch).free
    if free < need * 1.05:
        raise InputError(
            f"{scratch}: the prune needs about {_gb(need)} of scratch space for this manifest "
            f"and its disk has {_gb(free)} free; pass --scratch DIR on a disk with room "
            "(the spill is removed when the prune succeeds)."
        )


def disk_full_error(exc: OSError, scratch: Path) -> Exception:
    """A clear error for a write that ran out of room; other errors pass through."""
    if exc.errno == errno.ENOSPC:
        return InputError(
            f"{scratch}: the scratch disk filled up during the prune; free space or pass "
            "--scratch DIR on a larger disk, then rerun the same command to resume."
        )
    return exc


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
