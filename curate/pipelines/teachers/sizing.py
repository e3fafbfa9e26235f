"""The teacher's input size, chosen from the images when not given.

ReLabel's 480 px (a 15 x 15 map at stride 32) is for ImageNet-sized photos; a 28 px digit
upscaled to 480 px costs ~20x the compute of 128 px for no information. So:

- the pixel CNN sees the images at their own size (rounded up to its stride, 4);
- a pretrained stride-32 backbone (ImageNet features) sees them at their own size rounded up
  to 32, at least :data:`MIN_BACKBONE_SIDE` (ImageNet features of tiny inputs are poor:
  measured in BENCHMARKS.md, Relabel) and at most :data:`MAX_BACKBONE_SIDE` (ReLabel's
  15 x 15);
- a user's classifier, trained on the task, sees them at their own size rounded up to 32
  (at most :data:`MAX_BACKBONE_SIDE`): pass ``image_size`` for the size it was trained at.

The images' size is the median longest side of the first :data:`PROBE_ROWS` decodable images
(headers only).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from curate.manifests import schema as S
from curate.manifests.io import Manifest

#: Images probed for their size.
PROBE_ROWS = 32
#: Backbone input bounds (pixels): below the lower one ImageNet features degrade; the upper
#: one is ReLabel's 15 x 15 map.
MIN_BACKBONE_SIDE = 128
MAX_BACKBONE_SIDE = 480
BACKBONE_STRIDE = 32
#: Images up to this side count as small: the pixel CNN applies (as in label-issues).
MAX_PIXEL_SIDE = 64
PIXEL_STRIDE = 4


@dataclass(frozen=True)
class ImageGeometry:
    """The probed images: median longest side, and whether they are grayscale."""

    side: int
    grayscale: bool
    probed: int

    @property
    def small(self) -> bool:
        return self.side <= MAX_PIXEL_SIDE


def _round_up(x: int, step: int) -> int:
    return -(-x // step) * step


def _header(row: tuple, base: str) -> tuple[int, bool] | None:
    """``(longest side, grayscale)`` of one row's image from its header; None if unreadable."""
    from PIL import Image

    from curate.pipelines.embed.decode import read_source

    try:
        with Image.open(io.BytesIO(read_source(*row, base_dir=base))) as im:
            return max(im.size), im.mode in ("1", "L", "LA", "I", "I;16", "F")
    except Exception:  # an unreadable image is skipped here; the step reports it per row
        return None


def probe_images(m: Manifest) -> ImageGeometry | None:
    """Size and mode of the first decodable images (headers only); None when none decodes."""
    cols = [c for c in (S.IMAGE, S.PATH, S.URL) if c in m.schema.names]
    base = str(m.path.parent if m.path.is_file() else m.path)
    found: list[tuple[int, bool]] = []
    for batch in m.iter_batches(cols, batch_size=PROBE_ROWS):
        n = batch.num_rows
        values = [batch.column(c).to_pylist() if c in cols else [None] * n
                  for c in (S.IMAGE, S.PATH, S.URL)]  # fmt: skip
        headers = (_header(row, base) for row in zip(*values, strict=True))
        found += [h for h in headers if h is not None]
        if len(found) >= PROBE_ROWS:
            break
    if not found:
        return None
    sides = sorted(side for side, _ in found[:PROBE_ROWS])
    gray = all(g for _, g in found[:PROBE_ROWS])
    return ImageGeometry(side=int(sides[len(sides) // 2]), grayscale=gray, probed=len(sides))


def backbone_side(side: int) -> int:
    """A stride-32 backbone's input for images of ``side`` pixels."""
    return min(MAX_BACKBONE_SIDE, max(MIN_BACKBONE_SIDE, _round_up(side, BACKBONE_STRIDE)))


def classifier_side(side: int) -> int:
    """A user classifier's input for images of ``side`` pixels (stride 32, no minimum)."""
    return min(MAX_BACKBONE_SIDE, _round_up(side, BACKBONE_STRIDE))


def pixel_side(side: int) -> int:
    """The pixel CNN's input: the images' own side, rounded up to its stride."""
    return _round_up(side, PIXEL_STRIDE)


def size_reason(kind: str, geometry: ImageGeometry | None, chosen: int, *, given: bool = False
                ) -> str:  # fmt: skip
    """One line saying why ``chosen`` pixels (for run.json and the CLI)."""
    if given:
        return f"{chosen} px: given (image_size)"
    if geometry is None:
        return f"{chosen} px (no decodable image to probe)"
    own = f"images {geometry.side} px (median longest side of {geometry.probed})"
    if kind == "cnn":
        return f"{chosen} px: the pixel CNN at the images' own size; {own}"
    if kind == "classifier":
        return f"{chosen} px: the images' own size, rounded up to the stride 32; {own}"
    if chosen == MIN_BACKBONE_SIDE and geometry.side < MIN_BACKBONE_SIDE:
        why = f"raised to the backbone's minimum {MIN_BACKBONE_SIDE}"
    elif chosen == MAX_BACKBONE_SIDE and geometry.side > MAX_BACKBONE_SIDE:
        why = f"capped at {MAX_BACKBONE_SIDE} (ReLabel's 15 x 15 map)"
    else:
        why = "the images' own size, rounded up to the stride 32"
    return f"{chosen} px: {why}; {own}"
