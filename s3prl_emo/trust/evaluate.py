"""``trust``: every axis of one checkpoint on its own fold's test split.

The results go into trust.json and profile.png. An axis that cannot run is skipped with its reason; one that fails is
named in ``failed`` and the others are still written.

OUT is claimed before the checkpoint is read (``guards.claim_output_dir``): new, empty or an
earlier trust output, never the checkpoint's folder, the corpus or a folder holding them.
Everything is written into a staging folder that replaces OUT only when complete.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.fold import AudioStore, FoldData, load_fold
from ..downstream.expert import DEFAULT_DATARC
from ..downstream.settings import check_datarc
from ..errors import InvalidInputError
from ..inference.recognizer import EmotionRecognizer
from ..metrics import multilabel_macro_f1
from ..runtime.atomic import write_json_atomically, write_text_atomically
from ..runtime.checkpoints import load_checkpoint
from ..runtime.guards import claim_output_dir, spreadsheet_safe, staged_output
from ..runtime.paths import Pathlike
from . import model_io
from .calibration import calibration
from .fairness import fairness
from .plots import radar, reliability_diagram
from .privacy import privacy
from .profile import profile
from .safety import safety
from .sustainability import sustainability

logger = logging.getLogger(__name__)

COMMAND = "trust"

AXES = ("fairness", "privacy", "safety", "sustainability", "calibration")


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
    predictions the figures come from, so they can be checked).

    Examples:
        >>> report = run_trust("exp/dev-best.ckpt", "trust/", axes=("fairness", "calibration"))  # doctest: +SKIP
    """
    ckpt, out_dir = Path(ckpt), Path(out_dir)
    state, fold, model, inputs = _checkpoint_and_fold(ckpt, out_dir, upstream_ckpt, root, device)
    classes = list(model.classes)

    skipped: dict[str, str] = {}
    gender_problem = _group_column(fold, "Gender")
    for axis in ("fairness", "privacy"):
        if axis in axes and gender_problem:
            skipped[axis] = f"no gender groups: {gender_problem}"
    store = AudioStore(fold.audio_dir, model.max_duration_s, pre_load=True, cache_dir=None)
    frames = {split: fold.split(split) for split in ("train", "dev", "test")}
    needed = ["dev", "test"] + (["train"] if "privacy" in axes and "privacy" not in skipped else [])
    wavs = {}
    for split in needed:
        store.load_all(frames[split]["FileName"].tolist(), split)
        wavs[split] = [store.get(name) for name in frames[split]["FileName"]]
    labels = {split: frames[split][classes].to_numpy(dtype=np.float64) for split in frames}

    def logits_fn(batch: list[torch.Tensor]) -> torch.Tensor:
        return model_io.logits(model, batch)

    probs = {split: model_io.predict_probs(model, wavs[split], batch_size, desc=split) for split in ("dev", "test")}
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
    report["performance"] = {
        "macro_f1": multilabel_macro_f1(probs["test"], labels["test"]),
        "n_items": len(probs["test"]),
        "definition": "test macro-F1 over binarised truths and predictions (value > 1/C), whole split",
    }
    failed: dict[str, str] = {}
    runners = {
        "calibration": lambda: calibration(probs["test"], labels["test"], classes, probs["dev"], labels["dev"]),
        "fairness": lambda: fairness(
            probs["test"],
            labels["test"],
            frames["test"]["Gender"].astype(str).to_numpy(),
            classes,
            speakers=frames["test"]["SpkrID"].astype(str).to_numpy() if "SpkrID" in frames["test"] else None,
        ),
        "privacy": lambda: _privacy(model, wavs, frames, batch_size),
        "safety": lambda: safety(
            logits_fn, wavs["test"], labels["test"], snrs_db, pgd_steps=pgd_steps, batch_size=batch_size, device=device
        ),
        "sustainability": lambda: sustainability(model, logits_fn, wavs["test"], seconds=6.0, device=device),
    }
    for axis in AXES:
        if axis not in axes or axis in skipped:
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
    report["failed"] = failed
    report["profile"] = profile(report)
    with staged_output(out_dir, command=COMMAND, inputs=inputs) as stage:
        if "calibration" in report:
            reliability_diagram(probs["test"], labels["test"], classes, stage / "reliability.png")
        radar({ckpt.parent.name or str(ckpt): report["profile"]}, stage / "profile.png")
        _write_predictions(stage / "test_probs.csv", frames["test"], probs["test"], classes)
        write_json(stage / "trust.json", report)
    return report


def _write_predictions(path: Path, frame, probs: np.ndarray, classes: list[str]) -> None:
    """The test probabilities every figure was computed from, to check them independently.

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
