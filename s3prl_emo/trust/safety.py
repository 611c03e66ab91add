"""Adversarial robustness on the waveform: FGSM and PGD with a per-utterance SNR budget.

Attack libraries clamp inputs to [0, 1] and take one scalar epsilon; a waveform needs a
perturbation scaled to each utterance's own loudness. The budget is a target SNR:
rms(delta) = rms(x) / 10^(SNR / 20), both over the utterance's own samples (padding never
enters). The model runs in eval mode; only utterances whose binarised prediction equals
the binarised truth are attacked, and an attack succeeds when the binarised prediction
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..errors import InvalidInputError
from ..metrics import binarize

LogitsFn = Callable[[list[torch.Tensor]], torch.Tensor]
METHODS = ("fgsm", "pgd")


def snr_db(clean: torch.Tensor, perturbation: torch.Tensor) -> float:
    """10 log10(energy of the signal / energy of the perturbation), in float64."""
    signal = clean.detach().double().pow(2).sum()
    noise = perturbation.detach().double().pow(2).sum()
    return float(10 * torch.log10(signal / noise))


def scale_to_snr(clean: torch.Tensor, direction: torch.Tensor, target_db: float) -> torch.Tensor:
    """``direction`` rescaled so that the perturbation sits exactly at ``target_db``."""
    norm = direction.double().norm()
    if norm == 0:
        direction, norm = torch.ones_like(direction), torch.tensor(float(len(direction))).sqrt().double()
    target_norm = clean.double().norm() / 10 ** (target_db / 20)
    return (direction.double() * (target_norm / norm)).to(clean.dtype)


def _loss_gradients(logits_fn: LogitsFn, wavs: list[torch.Tensor], targets: torch.Tensor) -> list[torch.Tensor]:
    """Gradient of each item's soft-label cross-entropy with respect to its waveform."""
    inputs = [w.detach().clone().requires_grad_(True) for w in wavs]
    log_probs = torch.log_softmax(logits_fn(inputs), dim=-1)
    loss = -(targets * log_probs).sum()
    return list(torch.autograd.grad(loss, inputs))


def _predicted_sets(logits_fn: LogitsFn, wavs: list[torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return binarize(torch.softmax(logits_fn(wavs), dim=-1).double().cpu().numpy())


def _perturb(method: str, logits_fn: LogitsFn, wavs, targets, target_db: float, steps: int, fgsm_grads):
    """Perturbations of ``wavs`` at exactly ``target_db`` (FGSM; PGD on the SNR sphere)."""
    deltas = [scale_to_snr(w, g.sign(), target_db) for w, g in zip(wavs, fgsm_grads, strict=True)]
    if method == "fgsm":
        return deltas
    for _ in range(steps):
        grads = _loss_gradients(logits_fn, [w + d for w, d in zip(wavs, deltas, strict=True)], targets)
        stepped = []
        for w, d, g in zip(wavs, deltas, grads, strict=True):
            budget = w.double().norm() / 10 ** (target_db / 20)
            step = g.double() / g.double().norm().clamp_min(1e-30) * budget * (2.5 / steps)
            stepped.append(scale_to_snr(w, d.double() + step, target_db))
        deltas = stepped
    return deltas


def safety(
    logits_fn: LogitsFn,
    wavs: Sequence[np.ndarray],
    soft_labels: np.ndarray,
    snrs_db: Sequence[float] = (45.0,),
    methods: Sequence[str] = METHODS,
    pgd_steps: int = 10,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> dict:
    """Success rate of FGSM / PGD at each target SNR on the correctly classified items.

    Args:
        logits_fn: list of raw waveforms (T_i,) -> (B, C) logits; the model in eval mode.
        wavs: the split's cropped 16 kHz waveforms.
        soft_labels: (N, C) reference distributions.

    ``success_rate`` at an SNR counts an item as broken when the attack at that budget or
    at any weaker budget in the list (higher SNR) changed its prediction: an attacker
    allowed a louder perturbation may always use a quieter one, so the figure never falls
    as the SNR drops. ``success_rate_at_budget`` counts the attack at that budget alone.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise InvalidInputError(f"safety: unknown attack(s) {unknown}; expected {list(METHODS)}")
    soft_labels = np.asarray(soft_labels, dtype=float)
    if len(wavs) != len(soft_labels):
        raise InvalidInputError(f"safety: {len(wavs)} waveforms for {len(soft_labels)} labels")
    snrs = sorted({float(s) for s in snrs_db}, reverse=True)  # weakest budget first
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32), device=device) for w in wavs]
    truth = binarize(soft_labels)
    clean = np.concatenate(
        [_predicted_sets(logits_fn, tensors[i : i + batch_size]) for i in range(0, len(tensors), batch_size)]
    )
    attacked = np.flatnonzero((clean == truth).all(axis=1) & np.array([float(t.abs().sum()) > 0 for t in tensors]))
    results: dict = {m: {} for m in methods}
    state = {m: {s: {"own": [], "snr": []} for s in snrs} for m in methods}
    for start in tqdm(range(0, len(attacked), batch_size), desc="attack", leave=False):
        index = attacked[start : start + batch_size]
        batch = [tensors[i] for i in index]
        targets = torch.as_tensor(soft_labels[index], dtype=torch.float32, device=device)
        grads = _loss_gradients(logits_fn, batch, targets)
        for method in methods:
            for snr in snrs:
                deltas = _perturb(method, logits_fn, batch, targets, snr, pgd_steps, grads)
                adversarial = [w + d for w, d in zip(batch, deltas, strict=True)]
                changed = (_predicted_sets(logits_fn, adversarial) != clean[index]).any(axis=1)
                state[method][snr]["own"].extend(changed.tolist())
                state[method][snr]["snr"].extend(snr_db(w, a - w) for w, a in zip(batch, adversarial, strict=True))
    for method in methods:
        broken = np.zeros(len(attacked), dtype=bool)
        for snr in snrs:
            own = np.asarray(state[method][snr]["own"], dtype=bool)
            broken = broken | own if len(own) else broken
            achieved = np.asarray(state[method][snr]["snr"])
            results[method][_snr_key(snr)] = {
                "success_rate": float(broken.mean()) if len(attacked) else None,
                "success_rate_at_budget": float(own.mean()) if len(attacked) else None,
                "n_success": int(broken.sum()),
                "n_attacked": len(attacked),
                "achieved_snr_db": float(achieved.mean()) if len(achieved) else None,
                "achieved_snr_db_min": float(achieved.min()) if len(achieved) else None,
                "achieved_snr_db_max": float(achieved.max()) if len(achieved) else None,
                "target_snr_db": snr,
            }
    results["n_items"] = len(tensors)
    results["n_correct"] = len(attacked)
    results["definitions"] = {
        "budget": "per utterance, rms(delta) = rms(x) / 10^(SNR/20) over its own samples (no padding), on the "
        "raw waveform before the train-split normalisation; no clipping",
        "fgsm": "one step: sign of the gradient of the soft-label cross-entropy, scaled to the budget",
        "pgd": f"{pgd_steps} steps from the FGSM point, each a normalised-gradient step of 2.5/{pgd_steps} of the "
        "budget, projected back onto the budget's sphere",
        "attacked": "test items whose binarised prediction equals the binarised truth (value > 1/C), and not silent",
        "success_rate": "share of attacked items whose binarised prediction changed at this budget or at a weaker "
        "one in the list (monotone in the SNR); success_rate_at_budget: at this budget alone",
        "achieved_snr_db": "mean over attacked items of 10 log10(sum x^2 / sum (x_adv - x)^2) of the float32 inputs",
    }
    return results


def _snr_key(snr: float) -> str:
    return f"{snr:g}"
