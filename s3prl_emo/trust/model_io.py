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


def logits(model, wavs: list[torch.Tensor]) -> torch.Tensor:
    """(B, C) logits of raw cropped 16 kHz waveforms; gradients reach the waveforms."""
    inputs = _normalized(model, wavs)
    features = model.featurizer(inputs, model.upstream(inputs))
    lengths = torch.as_tensor([len(f) for f in features], device=features[0].device)
    return model.head(pad_sequence(features, batch_first=True), lengths)


def _batches(wavs: list[np.ndarray], batch_size: int, desc: str):
    for start in tqdm(range(0, len(wavs), batch_size), desc=desc, leave=False):
        yield wavs[start : start + batch_size]


def device_of(model) -> torch.device:
    return next(model.head.parameters()).device


@torch.no_grad()
def predict_probs(model, wavs: list[np.ndarray], batch_size: int = 8, desc: str = "predict") -> np.ndarray:
    """(N, C) class probabilities."""
    device = device_of(model)
    out = [
        torch.softmax(logits(model, [torch.as_tensor(w, device=device) for w in batch]), dim=-1).cpu().numpy()
        for batch in _batches(wavs, batch_size, desc)
    ]
    return np.concatenate(out).astype(np.float64)


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
