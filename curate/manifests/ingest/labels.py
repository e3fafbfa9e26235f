"""String labels as users have them ("cat", "dog"): mapped to class indices at ingest.

A ``label`` column of strings (most CSV and Parquet exports) becomes integer class indices with
the names recorded in the schema (``curate.class_names``). The order of the names is the one
given (``--class-names``, or names the source itself records), else the sorted distinct values,
as torchvision's ImageFolder numbers its class folders. Finding those values takes one pass over
the label column alone before the rows are read, so memory holds the names, never the rows.
Null labels stay null; labels that are all integer literals ("0", "7") are read as integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError

#: How many ``index=name`` pairs the ingest summary prints.
SHOWN = 20


def is_string_type(t: pa.DataType) -> bool:
    """A column of strings: ``string``, ``large_string`` or a dictionary of strings."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def as_strings(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A string-like column as plain ``string`` (dictionary-encoded columns decoded)."""
    return col if col.type == pa.string() else col.cast(pa.string())


def distinct_values(arrays: Iterable[pa.Array | pa.ChunkedArray]) -> list[str]:
    """The distinct non-null strings over a stream of arrays, sorted (memory: the values)."""
    seen: set[str] = set()
    for arr in arrays:
        seen.update(pc.drop_null(pc.unique(as_strings(arr))).to_pylist())
    return sorted(seen)


_INT = re.compile(r"\s*[+-]?\d+\s*")


def _is_int(text: str) -> bool:
    return _INT.fullmatch(text) is not None


@dataclass(frozen=True)
class StringLabels:
    """How one source's string labels become class indices.

    Parameters
    ----------
    names
        The class names, index ``i`` being ``names[i]``; empty when ``integers``.
    order
        ``"given"`` (``--class-names`` or the source's own names) or ``"sorted"``.
    integers
        Every label is an integer literal: the strings are parsed, no names are recorded.
    """

    names: tuple[str, ...]
    order: str
    integers: bool = False

    @classmethod
    def plan(
        cls,
        given: Sequence[str] | None,
        values: Callable[[], Iterable[pa.Array | pa.ChunkedArray]],
    ) -> StringLabels:
        """The mapping for ``given`` names, else for the distinct ``values()`` (one pass)."""
        if given:
            return cls(tuple(str(n) for n in given), "given")
        distinct = distinct_values(values())
        if distinct and all(_is_int(v) for v in distinct):
            return cls((), "sorted", integers=True)
        return cls(tuple(distinct), "sorted")

    @property
    def class_names(self) -> list[str] | None:
        """The names to record in the schema (None for integer literals)."""
        return None if self.integers else list(self.names)

    def encode(
        self, col: pa.Array | pa.ChunkedArray, *, source: str, row_offset: int
    ) -> pa.Array | pa.ChunkedArray:
        """String labels -> ``int64`` class indices; nulls stay null. A label not among the
        names raises an error naming the value, its row and the fix."""
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        col = as_strings(col)
        if self.integers:
            return self._parse(col, source=source, row_offset=row_offset)
        index = pc.index_in(col, value_set=pa.array(self.names, pa.string()))
        unknown = pc.and_(col.is_valid(), index.is_null())
        if pc.any(unknown).as_py():
            row = pc.indices_nonzero(unknown)[0].as_py()
            shown = ", ".join(repr(n) for n in self.names[:8]) + (
                ", ..." if len(self.names) > 8 else ""
            )
            raise InputError(
                f"{source}: row {row_offset + row} has label {col[row].as_py()!r}, which is not "
                f"one of the {len(self.names)} class names given ({shown}); add it to "
                "--class-names, or leave --class-names out to number the sorted names."
            )
        return index.cast(pa.int64())

    @staticmethod
    def _parse(col: pa.Array | pa.ChunkedArray, *, source: str, row_offset: int):
        try:
            return pc.utf8_trim_whitespace(col).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"{source}: rows {row_offset} onwards hold a label that is not an integer where "
                f"the labels were integers ({exc}); fix it, or give --class-names to read the "
                "labels as names."
            ) from None

    def record(self) -> dict:
        """What run.json says about the mapping."""
        if self.integers:
            return {"from": "strings", "parsed_as": "integers"}
        return {"from": "strings", "order": self.order, "class_names": list(self.names)}


def mapping_line(record: dict) -> str:
    """The line the ingest summary prints for a :meth:`StringLabels.record`: ``0=cat, 1=dog``
    and where the order came from."""
    if record.get("parsed_as") == "integers":
        return "label strings are integers: read as class indices"
    names = record.get("class_names", [])
    pairs = ", ".join(f"{i}={n}" for i, n in enumerate(names[:SHOWN]))
    more = f", ... ({len(names) - SHOWN} more; curate info lists them)"
    why = (
        "in the order given"
        if record.get("order") == "given"
        else "sorted, as ImageFolder numbers its folders; --class-names sets another order"
    )
    return f"label strings mapped to class indices ({why}): {pairs}" + (
        more if len(names) > SHOWN else ""
    )
