"""The trainable head: a linear projector, then a model from S3PRL's downstream zoo.

``modelrc`` is written as in EMO-SUPERB's configs: ``projector_dim``, ``select`` and one
sub-block per model, e.g. ``UtteranceLevel: {pooling: MeanPooling}``.
"""

from __future__ import annotations

import re

import s3prl.downstream.emotion.model as emotion_models
import s3prl.downstream.model as s3prl_models
import torch
import torch.nn as nn
from s3prl.downstream.emotion.model import DeepModel
from s3prl.downstream.model import MeanPooling, UtteranceLevel

from ..errors import InvalidInputError


class PooledMLP(nn.Module):
    """Mean pooling, then two ReLU hidden layers of 1024 with dropout 0.5, then the output
    layer: the fine-tuned SER model the EMO-SUPERB paper compares against (section 5.2)."""

    def __init__(self, input_dim: int, output_dim: int, hidden_dim: int = 1024, dropout: float = 0.5, **kwargs):
        super().__init__()
        self.pooling = MeanPooling()
        self.mlp = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, features_BxTxH: torch.Tensor, lengths_B: torch.Tensor):
        pooled, lengths = self.pooling(features_BxTxH, lengths_B)
        return self.mlp(pooled), lengths


# Utterance-level models that map (B, T, H) features to (B, C) logits: S3PRL's and PooledMLP.
MODEL_ZOO: dict[str, type[nn.Module]] = {
    "UtteranceLevel": UtteranceLevel,
    "DeepModel": DeepModel,
    "PooledMLP": PooledMLP,
}


# modelrc keys whose string values S3PRL's models pass to eval() or getattr(nn, ...).
EVALUATED_KEYS = ("select", "pooling", "model_type", "activation")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_module_class(name: str) -> bool:
    if name in MODEL_ZOO:
        return True
    for namespace in (vars(s3prl_models), vars(emotion_models), vars(nn)):
        value = namespace.get(name)
        if isinstance(value, type) and issubclass(value, nn.Module):
            return True
    return False


def check_modelrc(modelrc, where: str = "modelrc") -> None:
    """S3PRL's models ``eval`` some config strings (pooling, select, model_type): accept only
    names of its model classes there, so no config or checkpoint can run code."""
    if not isinstance(modelrc, dict):
        raise InvalidInputError(f"{where}: expected a mapping, got {modelrc!r}")
    for key, value in modelrc.items():
        if isinstance(value, dict):
            check_modelrc(value, f"{where}.{key}")
        elif (
            key in EVALUATED_KEYS
            and isinstance(value, str)
            and (not _IDENTIFIER.fullmatch(value) or not _is_module_class(value))
        ):
            raise InvalidInputError(f"{where}.{key}: {value!r} is not the name of one of S3PRL's model classes")


class EmotionHead(nn.Module):
    """(features_BxTxH, lengths_B) -> logits_BxC."""

    def __init__(self, upstream_dim: int, num_classes: int, modelrc: dict):
        super().__init__()
        check_modelrc(modelrc)
        select = modelrc.get("select", "UtteranceLevel")
        if select not in MODEL_ZOO:
            raise InvalidInputError(f"modelrc.select: unknown model {select!r}; expected one of {sorted(MODEL_ZOO)}")
        projector_dim = int(modelrc.get("projector_dim", 256))
        self.projector = nn.Linear(upstream_dim, projector_dim)
        self.model = MODEL_ZOO[select](projector_dim, num_classes, **modelrc.get(select, {}))

    def forward(self, features_BxTxH: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(self.projector(features_BxTxH), lengths_B)
        return logits
