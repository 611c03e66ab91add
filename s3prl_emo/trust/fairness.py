"""Fairness between gender groups (and between speakers) of the thresholded predictions.

Multi-label predictions are scored as one binary problem per class, the way fairlearn's
binary metrics are meant to be used for multi-class tasks; TrustSER's single-label
equality-of-opportunity figure (argmax class) is added to compare with its paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import f1_score

from ..errors import InvalidInputError
from ..metrics import binarize

DEFINITIONS = {
    "equalized_odds_difference": "fairlearn equalized_odds_difference (between_groups, worst_case): the larger of "
    "the gaps between groups in true-positive rate and in false-positive rate, one binary problem per class",
    "demographic_parity_difference": "fairlearn demographic_parity_difference (between_groups): gap between groups "
    "in the rate of predicting the class",
    "macro": "mean over the classes whose truth has positives and negatives in every group; max: worst such class",
    "multiclass_equality_of_opportunity": "TrustSER's figure on the argmax class: mean over true classes of the "
    "total-variation distance between the groups' predicted-class distributions (two groups; max over pairs)",
    "speaker_macro_f1_gap": "for each speaker, macro-F1 of the rest minus macro-F1 of that speaker; the worst speaker",
    "binarisation": "value > 1/C (s3prl_emo.metrics.binarize), for truths and predictions",
}


def _check(probs: np.ndarray, soft_labels: np.ndarray, groups: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs, soft_labels = np.asarray(probs, dtype=float), np.asarray(soft_labels, dtype=float)
    groups = np.asarray(groups).astype(str)
    if probs.ndim != 2 or probs.shape != soft_labels.shape or len(groups) != len(probs):
        raise InvalidInputError(
            f"fairness: expected (N, C) probabilities and soft labels and N group labels, got {probs.shape}, "
            f"{soft_labels.shape} and {groups.shape}"
        )
    if len(np.unique(groups)) < 2:
        raise InvalidInputError(f"fairness: needs at least two groups, found {sorted(set(groups))}")
    return probs, soft_labels, groups


def multiclass_equality_of_opportunity(
    true_class: np.ndarray, pred_class: np.ndarray, groups: np.ndarray, n_classes: int
) -> float:
    """TrustSER's "equality of odds": per group, P(pred = i | true = j); the mean over true
    classes of the total-variation distance between groups, worst pair of groups.

    True classes absent from a group are left out of the mean.
    """
    names = sorted(set(groups))
    rates = {}
    for name in names:
        mask = groups == name
        counts = np.zeros((n_classes, n_classes))
        np.add.at(counts, (pred_class[mask], true_class[mask]), 1)
        rates[name] = counts, counts.sum(axis=0)
    worst = 0.0
    for a_index, a in enumerate(names):
        for b in names[a_index + 1 :]:
            (ca, na), (cb, nb) = rates[a], rates[b]
            present = (na > 0) & (nb > 0)
            if not present.any():
                continue
            tv = 0.5 * np.abs(ca[:, present] / na[present] - cb[:, present] / nb[present]).sum(axis=0)
            worst = max(worst, float(tv.mean()))
    return worst


def speaker_gap(truth: np.ndarray, pred: np.ndarray, speakers: np.ndarray) -> dict:
    """The speaker whose macro-F1 falls furthest below that of all other speakers pooled."""
    gaps = {}
    for speaker in sorted(set(speakers)):
        mask = speakers == speaker
        own = f1_score(truth[mask], pred[mask], average="macro", zero_division=0)
        rest = f1_score(truth[~mask], pred[~mask], average="macro", zero_division=0)
        gaps[speaker] = float(rest - own)
    worst = max(gaps, key=gaps.get)
    return {"speaker_macro_f1_gap": gaps[worst], "worst_speaker": worst, "per_speaker_gap": gaps}


def fairness(
    probs: np.ndarray,
    soft_labels: np.ndarray,
    groups: Sequence,
    classes: Sequence[str],
    speakers: Sequence | None = None,
) -> dict:
    """Per-class and macro equalized-odds and demographic-parity differences between ``groups``.

    Args:
        probs: (N, C) predicted class probabilities.
        soft_labels: (N, C) reference distributions.
        groups: N group labels (the label file's Gender column).
        classes: the C class names.
        speakers: optional N speaker ids for the speaker-wise gap.
    """
    probs, soft_labels, groups = _check(probs, soft_labels, groups)
    if len(classes) != probs.shape[1]:
        raise InvalidInputError(f"fairness: {len(classes)} class names for {probs.shape[1]} columns")
    truth, pred = binarize(soft_labels), binarize(probs)
    names = sorted(set(groups))
    per_class = {}
    for j, name in enumerate(classes):
        y, p = truth[:, j].astype(int), pred[:, j].astype(int)
        positives = {g: int(y[groups == g].sum()) for g in names}
        negatives = {g: int((groups == g).sum() - positives[g]) for g in names}
        per_class[name] = {
            "equalized_odds_difference": float(equalized_odds_difference(y, p, sensitive_features=groups)),
            "demographic_parity_difference": float(demographic_parity_difference(y, p, sensitive_features=groups)),
            "positives_per_group": positives,
            "defined": all(positives[g] > 0 and negatives[g] > 0 for g in names),
        }
    defined = [c for c in classes if per_class[c]["defined"]]
    macro: dict = {"classes_used": defined}
    for key in ("equalized_odds_difference", "demographic_parity_difference"):
        values = [per_class[c][key] for c in defined]
        macro[key] = float(np.mean(values)) if values else None
        macro[f"{key}_max"] = float(np.max(values)) if values else None
    out = {
        "per_class": per_class,
        "macro": macro,
        "multiclass_equality_of_opportunity": multiclass_equality_of_opportunity(
            soft_labels.argmax(axis=1), probs.argmax(axis=1), groups, probs.shape[1]
        ),
        "groups": {g: int((groups == g).sum()) for g in names},
        "n_items": len(probs),
        "definitions": DEFINITIONS,
    }
    if speakers is not None:
        speakers = np.asarray(speakers).astype(str)
        if len(set(speakers)) >= 2:
            out["speakers"] = speaker_gap(truth, pred, speakers)
    return out


def attribute_fairness(predictions: np.ndarray, truth: np.ndarray, groups: Sequence, attributes: Sequence[str]) -> dict:
    """Fairness of an attribute regressor between ``groups``: the CCC of each group and the largest gap.

    Equalized odds and demographic parity need predicted classes; for arousal, valence and
    dominance the figure the field ranks by is the CCC, so the gap is taken there: per
    attribute, the CCC of each group's utterances and max - min over groups; ``macro`` is
    the mean gap over the attributes whose CCC is defined in every group (``max``: the worst).

    Args:
        predictions: (N, A) predicted values on the corpus's scale.
        truth: (N, A) the label file's values.
        groups: N group labels (the label file's Gender column).
        attributes: the A attribute names.

    Raises:
        InvalidInputError: shapes differ or fewer than two groups.

    Examples:
        >>> truth = np.array([[1.0], [2.0], [3.0], [1.0], [2.0], [3.0]])
        >>> pred = np.array([[1.0], [2.0], [3.0], [2.0], [2.0], [2.0]])
        >>> attribute_fairness(pred, truth, ["F", "F", "F", "M", "M", "M"], ["EmoAct"])["macro"]["ccc_gap"]
        1.0
    """
    from ..metrics import concordance_cc

    x, y = np.asarray(predictions, dtype=float), np.asarray(truth, dtype=float)
    groups = np.asarray(groups).astype(str)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] != len(attributes) or len(groups) != len(x):
        raise InvalidInputError(
            f"attribute fairness: expected (N, {len(attributes)}) predictions and truth and N group labels, got "
            f"{x.shape}, {y.shape} and {groups.shape}"
        )
    names = sorted(set(groups))
    if len(names) < 2:
        raise InvalidInputError(f"attribute fairness: needs at least two groups, found {names}")
    per_attribute = {}
    for j, attribute in enumerate(attributes):
        per_group = {g: concordance_cc(x[groups == g, j], y[groups == g, j]) for g in names}
        defined = all(np.isfinite(v) for v in per_group.values())
        per_attribute[attribute] = {
            "ccc_per_group": {g: (float(v) if np.isfinite(v) else None) for g, v in per_group.items()},
            "ccc_gap": float(max(per_group.values()) - min(per_group.values())) if defined else None,
        }
    gaps = [v["ccc_gap"] for v in per_attribute.values() if v["ccc_gap"] is not None]
    return {
        "per_attribute": per_attribute,
        "macro": {
            "ccc_gap": float(np.mean(gaps)) if gaps else None,
            "ccc_gap_max": float(np.max(gaps)) if gaps else None,
            "attributes_used": [a for a, v in per_attribute.items() if v["ccc_gap"] is not None],
        },
        "groups": {g: int((groups == g).sum()) for g in names},
        "n_items": len(x),
        "definition": "per attribute: CCC (Lin 1989, population moments) of each group's utterances; gap = max - min "
        "over groups; macro: mean gap over attributes defined in every group",
    }
