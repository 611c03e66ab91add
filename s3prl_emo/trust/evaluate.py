"""``trust``: every axis of one checkpoint on its own fold's test split.

The results go into trust.json and profile.png. An axis that cannot run is skipped with its reason; one that fails is
named in ``failed`` and the others are still written.

OUT is claimed before the checkpoint is read (``guards.claim_output_dir``): new, empty or an
earlier trust output, never the checkpoint's folder, the corpus or a folder holding them.
Everything is written into a staging folder that replaces OUT only when complete.

A checkpoint of the attribute task (``downstream_expert.task``) is profiled where an axis has
an attribute counterpart: fairness adds the CCC of each gender group and the gap
(``fairness.attribute_fairness``, under ``fairness.attributes``), and an attributes-only
checkpoint's performance is the test mean CCC. Safety (attacks that flip predicted classes) and
calibration (of class probabilities) have none: for an attributes-only checkpoint they are not
applicable, named in ``not_applicable`` and n/a in the profile. Privacy and sustainability
concern the upstream and the model's cost, whatever the head predicts.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.fold import AudioStore, FoldData, fold_attributes, load_fold
from ..downstream.expert import DEFAULT_DATARC
from ..downstream.settings import check_datarc
from ..errors import InvalidInputError
from ..inference.recognizer import EmotionRecognizer
from ..metrics import attribute_scores, multilabel_macro_f1
from ..runtime.atomic import write_json_atomically, write_text_atomically
from ..runtime.checkpoints import load_checkpoint
from ..runtime.guards import claim_output_dir, spreadsheet_safe, staged_output
from ..runtime.paths import Pathlike
from . import model_io
from .calibration import calibration
from .fairness import attribute_fairness, fairness
from .plots import radar, reliability_diagram
from .privacy import privacy
from .profile import profile
from .safety import safety
from .sustainability import sustainability

logger = logging.getLogger(__name__)

COMMAND = "trust"

AXES = ("fairness", "privacy", "safety", "sustainability", "calibration")
# The axes an attributes-only checkpoint has no counterpart of, and why.
NOT_APPLICABLE_TO_ATTRIBUTES = {
    "safety": "not applicable: no attribute counterpart (the attacks flip predicted classes; an attributes-only "
    "checkpoint has no class outputs)",
    "calibration": "not applicable: no attribute counterpart (calibration concerns class probabilities; an "
    "attributes-only checkpoint has no class outputs)",
}


def parse_axes(text: str) -> list[str]:
    """The ``--axes`` value as axis names in the fixed ``AXES`` order, so runs are comparable.

    Raises:
        InvalidInputError: for an unknown axis or an empty list.

    Examples:
        >>> parse_axes("privacy, fairness")
        ['fairness', 'privacy']
        >>> parse_axes("all") == list(AXES)
        True
    """
    if text.strip() == "all":
        return list(AXES)
    axes = [a.strip() for a in text.split(",") if a.strip()]
    unknown = sorted(set(axes) - set(AXES))
    if unknown or not axes:
        raise InvalidInputError(
            f"--axes: unknown axis {unknown or text!r}; expected 'all' or a comma list of {list(AXES)}"
        )
    return [a for a in AXES if a in axes]


def parse_snrs(text: str) -> list[float]:
    """The ``--snr`` value: the noise levels (dB) of the safety axis, in the order given.

    Raises:
        InvalidInputError: for a value that is not a number, not finite, or an empty list.

    Examples:
        >>> parse_snrs("20,10, 0")
        [20.0, 10.0, 0.0]
    """
    try:
        snrs = [float(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise InvalidInputError(f"--snr: expected comma-separated numbers in dB, got {text!r}") from err
    if not snrs or not all(math.isfinite(s) for s in snrs):
        raise InvalidInputError(f"--snr: expected comma-separated finite numbers in dB, got {text!r}")
    return snrs


def _finite(value):
    """JSON without NaN or infinity (they become null)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` atomically as strict JSON: NaN and infinity become null, which any reader accepts."""
    write_json_atomically(path, _finite(payload))


def _fold_of(state: dict, ckpt: Pathlike, root: Pathlike | None) -> FoldData:
    try:
        datarc = {**DEFAULT_DATARC, **state["Config"]["downstream_expert"].get("datarc", {})}
        fold = state["Downstream"]["_extra_state"]["fold"]
    except (KeyError, TypeError, AttributeError) as err:
        raise InvalidInputError(f"{ckpt}: not an emotion_multilabel checkpoint (missing {err})") from err
    if root is not None:
        datarc["root"] = str(root)
    check_datarc(datarc, where=f"{ckpt}: downstream_expert.datarc")
    return load_fold(datarc, fold)


def _group_column(fold: FoldData, column: str) -> str | None:
    """Why ``column`` cannot split the data into groups, or None when it can."""
    if column not in fold.frame.columns:
        return f"{fold.label_file} has no {column} column"
    values = fold.frame[column]
    if values.isna().any() or (values.astype(str).str.strip() == "").any():
        return f"{fold.label_file}: the {column} column has empty values"
    for split in ("train", "test"):
        groups = sorted(set(fold.split(split)[column].astype(str)))
        if len(groups) < 2:
            return f"{fold.label_file}: the {split} split has only {groups} in its {column} column"
    return None


def _checkpoint_and_fold(
    ckpt: Path, out_dir: Path, upstream_ckpt: str | None, root: Pathlike | None, device: str
) -> tuple[dict, FoldData, EmotionRecognizer, list]:
    """The checkpoint (read once), its test fold, its recogniser and the inputs ``out_dir`` must not replace.

    ``out_dir`` is checked before the checkpoint is read and again once it names its corpus.
    """
    if not ckpt.is_file():
        raise InvalidInputError(f"-e {ckpt}: no such checkpoint")
    inputs = [p for p in (ckpt, upstream_ckpt, root) if p is not None]
    claim_output_dir(out_dir, command=COMMAND, inputs=inputs)
    state = load_checkpoint(ckpt)
    fold = _fold_of(state, ckpt, root)
    inputs += [fold.label_file, fold.audio_dir]
    claim_output_dir(out_dir, command=COMMAND, inputs=inputs)
    model = EmotionRecognizer.from_state(state, ckpt, upstream_ckpt, device=device)
    model.eval().requires_grad_(False)  # attacks take gradients of the inputs only
    if tuple(model.classes) != tuple(fold.classes):
        raise InvalidInputError(
            f"{ckpt}: checkpoint classes {list(model.classes)} differ from {fold.label_file}'s {list(fold.classes)}"
        )
    return state, fold, model, inputs


def run_trust(
    ckpt: Pathlike,
    out_dir: Pathlike,
    *,
    upstream_ckpt: str | None = None,
    axes: Sequence[str] = AXES,
    snrs_db: Sequence[float] = (45.0,),
    device: str = "cpu",
    root: Pathlike | None = None,
    batch_size: int = 8,
    pgd_steps: int = 10,
) -> dict:
    """Evaluate the axes and write the trust profile of ``ckpt`` into ``out_dir``.

    The files are trust.json, profile.png, reliability.png and test_probs.csv (the test
    predictions the figures come from, so they can be checked); a checkpoint of the attribute
    task adds test_attributes.csv (its predicted values), and an attributes-only one has no
    test_probs.csv nor reliability.png.

    Examples:
        >>> report = run_trust("exp/dev-best.ckpt", "trust/", axes=("fairness", "calibration"))  # doctest: +SKIP
    """
    ckpt, out_dir = Path(ckpt), Path(out_dir)
    state, fold, model, inputs = _checkpoint_and_fold(ckpt, out_dir, upstream_ckpt, root, device)
    classes = list(model.classes)
    attributes = list(model.attributes)
    if attributes:  # the label file's values, checked before any work (named file, row and column)
        fold.frame[attributes] = fold_attributes(fold, attributes)[1]
    has_classes = bool(model.output_classes)

    skipped, not_applicable = _skips(fold, axes, has_classes)
    frames = {split: fold.split(split) for split in ("train", "dev", "test")}
    needed = ["dev", "test"] + (["train"] if "privacy" in axes and "privacy" not in skipped else [])
    wavs = _waveforms(fold, model, frames, needed)
    labels = {split: frames[split][classes].to_numpy(dtype=np.float64) for split in frames}

    def logits_fn(batch: list[torch.Tensor]) -> torch.Tensor:
        return model_io.logits(model, batch)

    predicted = {
        split: model_io.predict_outputs(model, wavs[split], batch_size, desc=split)
        for split in (("dev", "test") if has_classes else ("test",))
    }
    probs = {split: p for split, (p, _) in predicted.items() if has_classes}
    values = predicted["test"][1]
    truth = frames["test"][attributes].to_numpy(dtype=np.float64)
    report: dict = {
        "checkpoint": str(ckpt),
        "label_file": str(fold.label_file),
        "fold": state["Downstream"]["_extra_state"]["fold"],
        "split": "test",
        "n_items": {split: len(frames[split]) for split in frames},
        "classes": classes,
        "upstream": state["Args"].upstream,
        "device": device,
    }
    if attributes:
        report["task"] = model.task
        report["attributes"] = attributes
    report["performance"] = _performance(probs.get("test"), labels["test"], values, truth, attributes)
    failed: dict[str, str] = {}
    runners = {
        "calibration": lambda: calibration(probs["test"], labels["test"], classes, probs["dev"], labels["dev"]),
        "fairness": lambda: _fairness(
            probs.get("test"), labels["test"], values, truth, frames["test"], classes, attributes
        ),
        "privacy": lambda: _privacy(model, wavs, frames, batch_size),
        "safety": lambda: safety(
            logits_fn, wavs["test"], labels["test"], snrs_db, pgd_steps=pgd_steps, batch_size=batch_size, device=device
        ),
        "sustainability": lambda: sustainability(
            model, lambda batch: model_io.outputs(model, batch), wavs["test"], seconds=6.0, device=device
        ),
    }
    for axis in AXES:
        if axis not in axes or axis in skipped or axis in not_applicable:
            continue
        logger.info("trust: %s", axis)
        try:
            report[axis] = runners[axis]()
        except Exception as err:  # one axis failing must not lose the others
            failed[axis] = f"{type(err).__name__}: {err}"
            logger.error("trust: the %s axis failed: %s\n%s", axis, failed[axis], traceback.format_exc())
    for axis in AXES:
        if axis not in axes:
            skipped[axis] = "not requested (--axes)"
    report["skipped"] = skipped
    if attributes:
        report["not_applicable"] = not_applicable
    report["failed"] = failed
    report["profile"] = profile(report)
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        name = ckpt.parent.name or str(ckpt)
        _write_files(stage, report, name, frames["test"], probs.get("test"), labels["test"], values)
    return report


def _write_files(stage: Path, report: dict, name: str, frame, probs, soft_labels, values) -> None:
    """The figures, the test predictions they come from and trust.json, into the staging folder."""
    classes, attributes = report["classes"], report.get("attributes", [])
    if "calibration" in report:
        reliability_diagram(probs, soft_labels, classes, stage / "reliability.png")
    radar({name: report["profile"]}, stage / "profile.png")
    if probs is not None:
        _write_predictions(stage / "test_probs.csv", frame, probs, classes)
    if attributes:
        _write_predictions(stage / "test_attributes.csv", frame, values, attributes)
    write_json(stage / "trust.json", report)


def _skips(fold: FoldData, axes: Sequence[str], has_classes: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The requested axes that cannot run here, and those that do not apply to the checkpoint, with why."""
    skipped: dict[str, str] = {}
    gender_problem = _group_column(fold, "Gender")
    for axis in ("fairness", "privacy"):
        if axis in axes and gender_problem:
            skipped[axis] = f"no gender groups: {gender_problem}"
    not_applicable = {} if has_classes else {a: why for a, why in NOT_APPLICABLE_TO_ATTRIBUTES.items() if a in axes}
    return skipped, not_applicable


def _waveforms(fold: FoldData, model, frames: dict, needed: list[str]) -> dict[str, list[np.ndarray]]:
    """The cropped waveforms of the ``needed`` splits, read once."""
    store = AudioStore(fold.audio_dir, model.max_duration_s, pre_load=True, cache_dir=None)
    wavs = {}
    for split in needed:
        store.load_all(frames[split]["FileName"].tolist(), split)
        wavs[split] = [store.get(name) for name in frames[split]["FileName"]]
    return wavs


def _performance(probs, soft_labels, values, truth, attributes: list[str]) -> dict:
    """Test macro-F1 where the checkpoint has class outputs, test CCCs where it has attributes."""
    out: dict = {}
    if probs is not None:
        out["macro_f1"] = multilabel_macro_f1(probs, soft_labels)
    out["n_items"] = len(soft_labels)
    if probs is not None:
        out["definition"] = "test macro-F1 over binarised truths and predictions (value > 1/C), whole split"
    if attributes:
        scores = attribute_scores(values, truth, attributes)
        out["ccc_mean"] = scores["ccc_mean"]
        out["attribute_scores"] = scores
        out["attribute_definition"] = "test CCC (Lin 1989, population moments) per attribute and their mean"
    return out


def _fairness(probs, soft_labels, values, truth, frame, classes: list[str], attributes: list[str]) -> dict:
    """Fairness between genders of the class predictions, and of the attributes' CCC (under ``attributes``)."""
    groups = frame["Gender"].astype(str).to_numpy()
    out: dict = {}
    if probs is not None:
        speakers = frame["SpkrID"].astype(str).to_numpy() if "SpkrID" in frame else None
        out = fairness(probs, soft_labels, groups, classes, speakers=speakers)
    if attributes:
        out["attributes"] = attribute_fairness(values, truth, groups, attributes)
    return out


def _write_predictions(path: Path, frame, probs: np.ndarray, classes: list[str]) -> None:
    """The test probabilities (or attribute values) every figure was computed from, to check them independently.

    Names from the label file that a spreadsheet would run as a formula get a leading ``'``.
    """
    keep = [c for c in ("FileName", "SpkrID", "Gender") if c in frame.columns]
    table = frame[keep].map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)
    for j, name in enumerate(classes):
        table[spreadsheet_safe(name)] = probs[:, j]
    write_text_atomically(path, table.to_csv(index=False))


def _privacy(model, wavs: dict, frames: dict, batch_size: int) -> dict:
    features = {
        split: model_io.pooled_layer_features(model, wavs[split], batch_size, desc=f"{split} features")
        for split in ("train", "dev", "test")
    }
    weights = model_io.layer_weights(model, features["train"].shape[1])
    groups = {split: frames[split]["Gender"].astype(str).to_numpy() for split in features}
    return privacy(
        features["train"], groups["train"], features["dev"], groups["dev"], features["test"], groups["test"], weights
    )
