"""The label-issues configuration: where predictions come from and how issues are found."""

from __future__ import annotations

from dataclasses import dataclass

#: cleanlab ``filter_by`` methods; the first group needs the whole ``pred_probs`` in memory
#: (cleanlab itself runs), the second runs in bounded memory over chunks (curate's two-pass
#: implementation, checked against cleanlab in the tests).
IN_MEMORY_METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "low_normalized_margin")
CHUNKED_METHODS = ("low_self_confidence", "confident_learning", "predicted_neq_given")
METHODS = IN_MEMORY_METHODS + CHUNKED_METHODS

#: cleanlab ``rank.get_label_quality_scores`` methods; the chunked path supports the first two.
RANK_BY = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
CHUNKED_RANK_BY = ("self_confidence", "normalized_margin")

#: Built-in predictors for out-of-sample predicted probabilities; ``a+b`` averages an ensemble.
PREDICTORS = ("logreg", "mlp", "cnn", "zero_shot")


def parse_predictor(spec: str) -> tuple[str, ...]:
    """Split ``"logreg+mlp"`` into its members, checking each name (``auto`` stands alone)."""
    if spec == "auto":
        return ("auto",)
    parts = tuple(p.strip() for p in spec.split("+") if p.strip())
    bad = [p for p in parts if p not in PREDICTORS]
    if not parts or bad:
        raise ValueError(
            f"predictor={spec!r}: unknown {bad or 'empty'}; valid names are {list(PREDICTORS)}, "
            "joined with '+' for an ensemble (e.g. 'logreg+mlp')."
        )
    return parts


@dataclass(frozen=True)
class LabelIssuesConfig:
    """Settings of one label-issues run (the CLI and Python build the same object).

    Parameters
    ----------
    method
        cleanlab ``filter_by``: how the set of issues is chosen (see ``METHODS``).
    rank_by
        cleanlab label-quality score written to ``label_quality`` (lower is worse).
    predictor
        Built-in predictor(s) when no ``pred_probs`` are given: ``logreg``, ``mlp``, ``cnn``
        (torch, pixels of small images), ``zero_shot`` (open_clip text prompts), or an ensemble
        like ``logreg+mlp`` (probabilities averaged). ``auto`` (default): ``cnn`` for small
        images without an embedding, else ``logreg`` (see ``label_issues.choose``).
    folds
        K of the stratified K-fold cross-validation.
    seed
        Seeds the fold split and the predictors.
    audit_split, train_split
        Audit the rows whose ``split`` is ``audit_split`` with models fit on ``train_split``.
    audit_cv
        In an audit, also cross-validate inside the audit split and average both predictions.
    zero_shot
        Add open_clip zero-shot predictions (text prompts for the class names) to the ensemble.
    model
        Encoder used to embed first when a predictor needs vectors and there is no
        ``embedding`` column (as in ``curate embed``); for zero-shot, an open_clip model name.
    pretrained
        open_clip pretrained tag or checkpoint path for zero-shot (None: random weights).
    features
        ``auto`` (the embedding column, else pixels of small images, else embed first),
        ``embedding``, ``pixels``.
    batch_size
        Rows per chunk when scoring; bounds memory for large ``pred_probs``.
    """

    method: str = "prune_by_noise_rate"
    rank_by: str = "self_confidence"
    predictor: str = "auto"
    folds: int = 5
    seed: int = 0
    audit_split: str | None = None
    train_split: str = "train"
    audit_cv: bool = False
    features: str = "auto"
    zero_shot: bool = False
    model: str = "efficientnet_lite0"
    pretrained: str | None = None
    batch_size: int = 65_536

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}: valid methods are {list(METHODS)}.")
        if self.rank_by not in RANK_BY:
            raise ValueError(f"rank_by={self.rank_by!r}: valid names are {list(RANK_BY)}.")
        parse_predictor(self.predictor)
        if self.folds < 2:
            raise ValueError(f"folds={self.folds}: cross-validation needs folds >= 2.")
        if self.features not in ("auto", "embedding", "pixels"):
            raise ValueError(
                f"features={self.features!r}: valid values are 'auto', 'embedding', 'pixels'."
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: must be a positive number of rows.")
        if self.audit_split is not None and self.audit_split == self.train_split:
            raise ValueError(
                f"audit_split and train_split are both {self.audit_split!r}: an audit needs "
                "models fit on other rows; pick a different --train-split."
            )

    @property
    def predictors(self) -> tuple[str, ...]:
        members = parse_predictor(self.predictor)
        if self.zero_shot and "zero_shot" not in members:
            members = (*members, "zero_shot")
        return members
