"""Thumbnails for the report: image bytes (or a local path) to a small JPEG, or a reason why not."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path

#: The longest side of a thumbnail, in pixels; smaller images are kept at their own size.
THUMB_PX = 96
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Thumb:
    """A thumbnail as JPEG bytes, or the reason there is none (``error``) for a placeholder."""

    jpeg: bytes | None = None
    error: str | None = None

    def as_json(self) -> str | dict:
        """A ``data:`` URI for the page, or ``{"err": reason}`` for a marked placeholder."""
        if self.jpeg is None:
            return {"err": self.error or "no image"}
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg).decode()


def make_thumb(data: bytes | None, *, px: int = THUMB_PX, quality: int = JPEG_QUALITY) -> Thumb:
    """Decode ``data`` and shrink it to at most ``px`` on its longest side, as a JPEG.

    Bytes that do not decode give a :class:`Thumb` with ``error`` set (``decode: ...``) so the
    page can show a marked placeholder instead of a broken image.
    """
    if data is None:
        return Thumb(error="no image bytes")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (px, px))  # JPEG: decode at reduced scale, much cheaper
            img = img.convert("L" if img.mode in ("1", "L", "I;16", "I") else "RGB")
            img.thumbnail((px, px))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality)
    except Exception as exc:  # PIL raises many kinds for corrupt bytes
        detail = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc)).strip()
        return Thumb(error=f"decode: {detail or type(exc).__name__}"[:200])
    return Thumb(jpeg=buf.getvalue())


def thumb_from_row(row: dict, *, px: int = THUMB_PX) -> Thumb:
    """A thumbnail from a row's ``image`` bytes, else its local ``path``; ``url`` alone has none.

    A row with its own ``error`` keeps that message on the placeholder, since it says why.
    """
    if row.get("image") is not None:
        thumb = make_thumb(row["image"], px=px)
    elif row.get("path"):
        path = Path(row["path"])
        try:
            thumb = make_thumb(path.read_bytes(), px=px)
        except OSError as exc:
            thumb = Thumb(error=f"read: {exc.strerror or exc}: {path}")
    elif row.get("url"):
        thumb = Thumb(error="url only (not fetched)")
    else:
        thumb = Thumb(error="no image")
    if thumb.jpeg is None and row.get("error"):
        return Thumb(error=str(row["error"])[:200])
    return thumb
