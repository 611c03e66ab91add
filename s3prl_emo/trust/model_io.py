"""Run a loaded recognizer on raw waveforms: logits with gradients, probabilities, and
per-layer pooled upstream features (the only place the privacy probe gets features from).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from ..data.fold import MIN_SAMPLES


def _normalized(model, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The recognizer's train-split normalisation, differentiable; short clips padded as in training."""
    out = []
    for wav in wavs:
        wav = (wav - model.normalize.mean) / model.normalize.std
        out.append(F.pad(wav, (0, MIN_SAMPLES - len(wav))) if len(wav) < MIN_SAMPLES else wav)
    return out


def outputs(model, wavs: list[torch.Tensor]) -> torch.Tensor:
    """(B, C + A) head outputs of raw cropped 16 kHz waveforms: class logits, then standardised
    attribute values (C = 0 for an attributes-only checkpoint, A = 0 for a categorical one)."""
    inputs = _normalized(model, wavs)
    features = model.featurizer(inputs, model.upstream(inputs))
    lengths = torch.as_tensor([len(f) for f in features], device=features[0].device)
    return model.head(pad_sequence(features, batch_first=True), lengths)


def logits(model, wavs: list[torch.Tensor]) -> torch.Tensor:
    """(B, C) class logits of raw cropped 16 kHz waveforms; gradients reach the waveforms.

    A ``both`` checkpoint's attribute outputs are left out: the attacks and the probabilities
    concern the classes only.
    """
    return outputs(model, wavs)[:, : len(model.output_classes)]


def _batches(wavs: list[np.ndarray], batch_size: int, desc: str):
    for start in tqdm(range(0, len(wavs), batch_size), desc=desc, leave=False):
        yield wavs[start : start + batch_size]


def device_of(model) -> torch.device:
    return next(model.head.parameters()).device


@torch.no_grad()
def predict_outputs(
    model, wavs: list[np.ndarray], batch_size: int = 8, desc: str = "predict"
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) class probabilities and (N, A) attribute values on the training corpus's scale.

    The head's outputs are split by the recogniser (``EmotionRecognizer._split_outputs``): the
    softmax covers the class outputs only, never a ``both`` checkpoint's attribute outputs.
    """
    device = device_of(model)
    parts = [
        model._split_outputs(outputs(model, [torch.as_tensor(w, device=device) for w in batch]))
        for batch in _batches(wavs, batch_size, desc)
    ]
    probs = np.concatenate([p for p, _ in parts]).astype(np.float64)
    return probs, np.concatenate([v for _, v in parts]).astype(np.float64)


def predict_probs(model, wavs: list[np.ndarray], batch_size: int = 8, desc: str = "predict") -> np.ndarray:
    """(N, C) class probabilities (of the class outputs only)."""
    return predict_outputs(model, wavs, batch_size, desc)[0]


def layer_weights(model, n_layers: int) -> np.ndarray:
    """The checkpoint's mixture over the upstream's layers: softmax of the Featurizer
    weights, one-hot for a selected layer, or the single feature."""
    featurizer = model.featurizer
    if n_layers == 1:
        return np.ones(1)
    if isinstance(featurizer.layer_selection, int):
        weights = np.zeros(n_layers)
        weights[featurizer.layer_selection] = 1.0
        return weights
    return torch.softmax(featurizer.weights.detach().float().cpu(), dim=0).numpy().astype(np.float64)


@torch.no_grad()
def pooled_layer_features(model, wavs: list[np.ndarray], batch_size: int = 8, desc: str = "features") -> np.ndarray:
    """(N, L, H): each layer of the frozen upstream (as the Featurizer sees it, layer-normed
    when it normalises), averaged over the utterance's own frames."""
    device = device_of(model)
    featurizer = model.featurizer
    rows = []
    for batch in _batches(wavs, batch_size, desc):
        inputs = _normalized(model, [torch.as_tensor(w, device=device) for w in batch])
        selected = model.upstream(inputs)[featurizer.feature_selection]
        if isinstance(selected, dict):
            selected = list(selected.values())
        layers = list(selected) if isinstance(selected, (list, tuple)) else [selected]
        stacked = torch.stack(layers, dim=0)  # (L, B, T, H)
        if featurizer.normalize:
            stacked = F.layer_norm(stacked, (stacked.shape[-1],))
        for b, wav in enumerate(inputs):
            frames = max(1, round(len(wav) / featurizer.downsample_rate))
            rows.append(stacked[:, b, :frames].mean(dim=1).cpu().numpy())
    return np.stack(rows).astype(np.float64)
