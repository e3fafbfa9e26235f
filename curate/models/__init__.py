"""Models the steps share: the predictors label-issues, relabel's teachers and evaluate fit on
embeddings (:mod:`~curate.models.predictors`), reading features from a manifest
(:mod:`~curate.models.features`) and the small pixel CNN (:mod:`~curate.models.cnn`)."""
