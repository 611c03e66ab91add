"""The trainable head: a linear projector, then a model from S3PRL's downstream zoo.

``modelrc`` is written as in EMO-SUPERB's configs: ``projector_dim``, ``select`` and one
sub-block per model, e.g. ``UtteranceLevel: {pooling: MeanPooling}``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from s3prl.downstream.emotion.model import DeepModel
from s3prl.downstream.model import UtteranceLevel

from ..errors import InvalidInputError

# Utterance-level models of S3PRL that map (B, T, H) features to (B, C) logits.
MODEL_ZOO: dict[str, type[nn.Module]] = {
    "UtteranceLevel": UtteranceLevel,
    "DeepModel": DeepModel,
}


class EmotionHead(nn.Module):
    """(features_BxTxH, lengths_B) -> logits_BxC."""

    def __init__(self, upstream_dim: int, num_classes: int, modelrc: dict):
        super().__init__()
        select = modelrc.get("select", "UtteranceLevel")
        if select not in MODEL_ZOO:
            raise InvalidInputError(f"modelrc.select: unknown model {select!r}; expected one of {sorted(MODEL_ZOO)}")
        projector_dim = int(modelrc.get("projector_dim", 256))
        self.projector = nn.Linear(upstream_dim, projector_dim)
        self.model = MODEL_ZOO[select](projector_dim, num_classes, **modelrc.get(select, {}))

    def forward(self, features_BxTxH: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(self.projector(features_BxTxH), lengths_B)
        return logits
