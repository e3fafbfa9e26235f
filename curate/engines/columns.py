"""A step that attaches per-row columns computed over the whole manifest beforehand."""

from __future__ import annotations

import pyarrow as pa

from curate.step import Step


class AttachColumns(Step):
    """Append ``columns`` (one value per manifest row, in manifest order) to every batch.

    For a decision made over all rows at once (a cross-validated label model, a ranking):
    the caller computes the arrays, the engine writes them beside the input columns. Input
    columns of the same names are dropped first, so a rerun replaces them.

    Parameters
    ----------
    name
        The step's name in run.json and progress lines.
    columns
        Column name to an array as long as the manifest.
    metadata
        Entries added to the output's schema metadata (what the columns were made with).
    """

    thread_safe = True

    def __init__(
        self,
        name: str,
        columns: dict[str, pa.Array],
        metadata: dict[bytes, bytes] | None = None,
    ) -> None:
        super().__init__(None)
        self.name = name
        self.columns = columns
        self.metadata = metadata or {}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        kept = [f for f in schema if f.name not in self.columns]
        new = [pa.field(n, a.type) for n, a in self.columns.items()]
        return pa.schema(kept + new, metadata={**(schema.metadata or {}), **self.metadata})

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        table = table.drop_columns([c for c in self.columns if c in table.column_names])
        for name, arr in self.columns.items():
            table = table.append_column(name, arr.slice(rows.start, rows.stop - rows.start))
        return table

    def config_record(self) -> dict:
        return {"columns": list(self.columns)}
