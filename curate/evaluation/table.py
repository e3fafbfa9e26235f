"""The evaluate result as a table: rich for the CLI, plain text for logs (one set of rows)."""

from __future__ import annotations

from curate.evaluation.harness import EvaluateResult

COLUMNS = ("subset", "rows", "excluded", "accuracy", "random", "Δ vs random", "reads",
           "worst class")  # fmt: skip
#: A difference counts as better or worse than random when it exceeds this many stds.
NOISE_STDS = 2.0


def verdict(delta: float, std: float) -> str:
    """``better`` / ``worse`` than random when |delta| > 2 std (or std is 0), else ``tie``."""
    if abs(delta) <= NOISE_STDS * std or delta == 0:
        return "tie"
    return "better" if delta > 0 else "worse"


def _worst_class(r: dict) -> str:
    per = {k: v for k, v in r["per_class_accuracy"].items() if v is not None}
    if not per:
        return "-"
    name = min(per, key=per.get)
    return f"{name} {per[name]:.3f} (random {r['random_per_class_accuracy'][name]:.3f})"


def table_rows(result: EvaluateResult) -> list[list[str]]:
    """One row of strings per subset, in :data:`COLUMNS` order."""
    out = []
    for r in result.results:
        excluded = sum(r["excluded"].values())
        out.append(
            [
                r["subset"],
                str(r["rows"]),
                str(excluded) if excluded else "0",
                f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}",
                f"{r['random_accuracy_mean']:.4f} ± {r['random_accuracy_std']:.4f}",
                f"{r['delta_vs_random']:+.4f} ± {r['delta_std']:.4f}",
                verdict(r["delta_vs_random"], r["delta_std"]),
                _worst_class(r),
            ]
        )
    return out


def title(result: EvaluateResult) -> str:
    cfg = result.info["config"]
    return (
        f"{cfg['model']} on {result.info['pool']}: test accuracy, mean ± std over "
        f"{cfg['seeds']} seeds, vs {cfg['random']} random rows at equal budget "
        f"(test: {result.info['test']['rows']} rows)"
    )


def rich_table(result: EvaluateResult):
    """A ``rich.table.Table`` of the result."""
    from rich.table import Table

    t = Table(*COLUMNS, title=title(result))
    styles = {"better": "green", "worse": "red", "tie": ""}
    for row in table_rows(result):
        t.add_row(*row, style=styles[row[6]] or None)
    return t


def text_lines(result: EvaluateResult) -> list[str]:
    """The table as aligned plain-text lines (title first)."""
    rows = [list(COLUMNS), *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [title(result)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def exclusion_notes(result: EvaluateResult) -> list[str]:
    """One line per subset that had rows excluded from training, with the reasons."""
    notes = []
    for r in result.results:
        if r["excluded"]:
            why = ", ".join(f"{n} {k}" for k, n in sorted(r["excluded"].items()))
            notes.append(
                f"{r['subset']}: {sum(r['excluded'].values())} of its {r['selected']} rows not "
                f"trained on ({why}); random drew {r['random_rows']} rows to match."
            )
    return notes
