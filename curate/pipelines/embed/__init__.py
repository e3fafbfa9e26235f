"""Embed images (and texts) into a manifest with open_clip, timm or EfficientNet-Lite0 encoders.

``embed(manifest, out, model=...)`` is the step; ``load_encoder`` gives the encoder alone;
``check_same_embedding_model`` guards comparisons between embedding columns.
"""

from curate.pipelines.embed.compat import check_same_embedding_model, embedding_model
from curate.pipelines.embed.config import EmbedConfig
from curate.pipelines.embed.decode import Preprocess
from curate.pipelines.embed.encoders import Encoder
from curate.pipelines.embed.registry import ENCODERS, list_models, load_encoder
from curate.pipelines.embed.runner import embed, format_summary

__all__ = [
    "ENCODERS",
    "EmbedConfig",
    "Encoder",
    "Preprocess",
    "check_same_embedding_model",
    "embed",
    "embedding_model",
    "format_summary",
    "list_models",
    "load_encoder",
]
