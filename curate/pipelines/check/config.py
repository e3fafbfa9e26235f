"""The check step's options and the issues it can flag, validated once for the CLI and Python."""

from __future__ import annotations

from dataclasses import dataclass

from curate.manifests import schema as S

#: Every issue ``check`` flags with a column: its name (``--fail-on``, ``check_issues``) -> flag.
ISSUES: dict[str, str] = {
    "exact_dup": "is_exact_dup",
    "phash_dup": "is_phash_dup",
    "near_dup": "is_near_dup",
    "leak": "is_leak",
    "outlier": "is_outlier",
    "dark": "is_dark",
    "light": "is_light",
    "blurry": "is_blurry",
    "low_information": "is_low_information",
    "odd_size": "is_odd_size",
    "odd_aspect_ratio": "is_odd_aspect_ratio",
    "grayscale": "is_grayscale",
}
#: An image this check could not decode (the row's ``error`` says why; no flag column).
UNDECODABLE = "undecodable"
ISSUE_NAMES = (*ISSUES, UNDECODABLE)

#: The pixel issues with a fixed threshold (score below it is flagged), cleanvision's defaults.
PIXEL_ISSUES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio")


def parse_issues(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"leak,exact_dup"`` or a list of names -> the list, every name checked against ISSUES."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else [n for x in names for n in x.split(",")]
    out = [n.strip() for n in items if n.strip()]
    unknown = [n for n in out if n not in ISSUE_NAMES and n != "any"]
    if unknown:
        raise ValueError(
            f"unknown issue name(s) {unknown} (--fail-on); valid names are "
            f"{', '.join(ISSUE_NAMES)} or any."
        )
    return list(ISSUE_NAMES) if "any" in out else out


def _in_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}: must be in [0, 1].")


@dataclass(frozen=True)
class CheckConfig:
    """What ``check`` computes (how it runs is the engine's options).

    Pixel thresholds are cleanvision's defaults (a score below its threshold is flagged;
    every score is in [0, 1], lower is worse); the duplicate and leak thresholds were chosen
    on a Fashion-MNIST validation slice (BENCHMARKS.md, Check).

    Parameters
    ----------
    test_split
        Rows of this ``split`` are checked for near-duplicates among the reference rows
        (leakage). None: ``test`` when the manifest has such rows, else no split check; a
        name no row has is an error that lists the splits present.
    train_split
        The reference split for leakage; None: every row outside ``test_split``.
    against
        Another manifest (a benchmark's test set): rows of this one that near-duplicate one
        of its rows are leaks (``leak_source = against:<path>``).
    near_dup_threshold
        Embedding cosine similarity at or above which two rows are near-duplicates (and a
        test row leaks). 0.97: the lowest with no false positive on the validation slice
        (0.96 had 0.18%).
    phash_max_distance
        Hamming distance between 64-bit perceptual hashes at or below which two images are
        near-duplicates (``phash_dup_of``; a leak signal when ``phash_leak``). 0, equal
        hashes (cleanvision's near-duplicate rule): at 2 the validation slice's false-positive
        rate rose from 0.36% to 3.4% (distinct 28-px items that look alike share hashes);
        photos usually tolerate more; look at the pairs in the report before raising it.
    phash_leak
        Whether a perceptual-hash match alone marks a leak (exact pixel matches always do).
    outlier_k
        Neighbours in ``outlier_score`` (mean cosine distance to the k nearest rows).
    outlier_percentile
        Rows whose ``outlier_score`` is above this percentile of the manifest are flagged.
    dup_k
        Nearest neighbours searched per row for duplicate links.
    exact_max_rows
        Up to this many rows the neighbour searches are exact (FAISS flat); above it an IVF
        index (``nprobe`` lists of ~4 sqrt(n)) bounds the time, at a recall measured in
        BENCHMARKS.md.
    nprobe
        IVF lists visited per query.
    dark_threshold, light_threshold, blurry_threshold, low_information_threshold,
    odd_aspect_ratio_threshold
        Flag a row when its score is below the threshold (cleanvision's defaults).
    odd_size_iqr
        Sizes (sqrt of the area) outside [Q1 - f IQR, Q3 + f IQR] are odd (cleanvision's).
    grayscale_threshold
        ``grayscale_score`` (99th percentile of the per-pixel channel spread / 255) below
        which an image is grayscale.
    colour_share
        ``is_grayscale`` is flagged only when at least this share of the decoded images is
        in colour (a grayscale set is not an issue).
    embedding_column
        The vector column used by the embedding checks.
    seed
        Seeds the IVF training sample.
    batch_size
        Rows per search batch.
    """

    test_split: str | None = None
    train_split: str | None = None
    against: str | None = None
    near_dup_threshold: float = 0.97
    phash_max_distance: int = 0
    phash_leak: bool = True
    outlier_k: int = 10
    outlier_percentile: float = 99.0
    dup_k: int = 10
    exact_max_rows: int = 50_000
    nprobe: int = 16
    dark_threshold: float = 0.32
    light_threshold: float = 0.05
    blurry_threshold: float = 0.29
    low_information_threshold: float = 0.3
    odd_aspect_ratio_threshold: float = 0.35
    odd_size_iqr: float = 3.0
    grayscale_threshold: float = 0.01
    colour_share: float = 0.5
    embedding_column: str = S.EMBEDDING
    seed: int = 0
    batch_size: int = 4096

    def __post_init__(self) -> None:
        for name in ("outlier_k", "dup_k", "exact_max_rows", "nprobe", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if not isinstance(self.phash_max_distance, int) or not 0 <= self.phash_max_distance < 64:
            raise ValueError(
                f"phash_max_distance={self.phash_max_distance!r}: must be an integer in [0, 63]."
            )
        if not -1.0 <= self.near_dup_threshold <= 1.0:
            raise ValueError(
                f"near_dup_threshold={self.near_dup_threshold!r}: a cosine in [-1, 1]."
            )
        if not 0.0 < self.outlier_percentile <= 100.0:
            raise ValueError(f"outlier_percentile={self.outlier_percentile!r}: in (0, 100].")
        for name in (
            "dark_threshold", "light_threshold", "blurry_threshold",
            "low_information_threshold", "odd_aspect_ratio_threshold",
            "grayscale_threshold", "colour_share",
        ):  # fmt: skip
            _in_unit(name, getattr(self, name))
        if self.odd_size_iqr < 0:
            raise ValueError(f"odd_size_iqr={self.odd_size_iqr!r}: must not be negative.")
        if self.test_split is not None and self.test_split == self.train_split:
            raise ValueError(f"test_split and train_split are both {self.test_split!r}.")

    def pixel_thresholds(self) -> dict[str, float]:
        """The fixed-threshold pixel issues and their thresholds."""
        return {name: getattr(self, f"{name}_threshold") for name in PIXEL_ISSUES}
