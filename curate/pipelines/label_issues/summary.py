"""What a label-issues run says in one line: the issue count next to the predictor's accuracy,
and a warning when that accuracy is too low for the flags to mean label errors.

Confident learning flags the rows where the out-of-sample predictions confidently disagree with
the given label. If the predictor itself disagrees with the given labels on many more rows than
a dataset holds label errors (published test sets average ~3.3%, "Pervasive Label Errors in
Test Sets"), most of its flags are its own mistakes: an 85%-accurate Fashion-MNIST predictor
flags its Shirt / T-shirt / Coat / Pullover confusions, not wrong labels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S

#: Below this out-of-sample accuracy against the given labels, flags are mostly model errors.
MIN_TRUSTED_ACCURACY = 0.95
#: The predictor's name, in the schema metadata of the table ``label_issues`` returns.
PREDICTOR_KEY = b"curate.predictor"


class WeakPredictorWarning(UserWarning):
    """The predictor agrees with too few given labels for its flags to mean label errors."""


def predictor_accuracy(result: pa.Table) -> float | None:
    """Share of audited rows whose suggested label (the predictor's top-1) is the given label.

    None for multi-label results or when no row was audited.
    """
    if S.LABEL not in result.column_names or "suggested_label" not in result.column_names:
        return None
    given = result.column(S.LABEL).to_numpy(zero_copy_only=False)
    suggested = result.column("suggested_label")
    audited = np.asarray(suggested.is_valid()) & ~np.isnan(given.astype(np.float64))
    if not audited.any():
        return None
    sugg = suggested.fill_null(-1).to_numpy(zero_copy_only=False)
    return float(np.mean(sugg[audited] == given[audited]))


def predictor_name(result: pa.Table) -> str:
    meta = result.schema.metadata or {}
    return meta.get(PREDICTOR_KEY, b"the predictor").decode()


def weak_predictor_message(accuracy: float | None, predictor: str) -> str | None:
    """The warning for an accuracy below :data:`MIN_TRUSTED_ACCURACY`, else None."""
    if accuracy is None or accuracy >= MIN_TRUSTED_ACCURACY:
        return None
    others = ["your model's out-of-sample --pred-probs"]
    if "cnn" not in predictor.split("+"):
        others.append("--predictor cnn for small images")
    others.append("an ensemble such as logreg+mlp+cnn")
    return (
        f"warning: {predictor} agrees with only {100 * accuracy:.1f}% of the given labels out "
        f"of sample (under {100 * MIN_TRUSTED_ACCURACY:.0f}%). Unless the labels really are "
        "that noisy, most flags are then its own mistakes, not label errors. Compare with a "
        f"stronger predictor ({', '.join(others[:-1])} or {others[-1]}): if the accuracy "
        "rises, trust its flags."
    )


def summary_lines(result: pa.Table) -> list[str]:
    """``N label issues among M audited rows (predictor: A% ...)`` and the warning, if any."""
    flags = result.column("is_label_issue")
    audited = len(flags) - flags.null_count
    flagged = int(np.sum(flags.fill_null(False).to_numpy(zero_copy_only=False)))
    accuracy, predictor = predictor_accuracy(result), predictor_name(result)
    line = f"{flagged:,} label issues among {audited:,} audited rows"
    if accuracy is not None:
        line += f" ({predictor}: {100 * accuracy:.1f}% out-of-sample accuracy vs the given labels)"
    warning = weak_predictor_message(accuracy, predictor)
    return [line] if warning is None else [line, warning]


def warn_if_weak(result: pa.Table) -> None:
    """Emit :class:`WeakPredictorWarning` when the predictor's accuracy is too low."""
    message = weak_predictor_message(predictor_accuracy(result), predictor_name(result))
    if message is not None:
        warnings.warn(message.removeprefix("warning: "), WeakPredictorWarning, stacklevel=3)
