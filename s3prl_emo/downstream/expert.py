"""S3PRL downstream expert ``emotion_multilabel``: EMO-SUPERB's recipe as an adapter.

The runner builds it as ``DownstreamExpert(upstream_dim=, upstream_rate=, **config,
**vars(args))``, asks it for dataloaders, calls ``forward`` per batch for the loss and
``log_records`` per split for metrics and checkpoint names. The maths lives in
``s3prl_emo.loss`` and ``s3prl_emo.metrics``; the data side in ``dataset``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import itertools
import json
import logging
import math
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from s3prl.utility.data import get_ddp_sampler
from s3prl.utility.helper import is_leader_process
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from ..data.audio import load_audio
from ..data.fold import (
    AudioStore,
    FoldData,
    Normalizer,
    check_audio,
    fold_attributes,
    load_fold,
    normalisation_stats,
)
from ..data.layout import SPLITS
from ..data.partitions import corpus_key, fold_violations
from ..errors import CorpusLayoutError, InvalidInputError
from ..loss import AttributeLoss, ClassBalancedCrossEntropy, SoftCrossEntropy
from ..metrics import attribute_scores, binarize, macro_f1_at_thresholds, score, tune_thresholds
from ..runtime import runlock
from ..runtime.atomic import write_text_atomically
from ..runtime.guards import finite_number
from . import NAME
from .dataset import EmotionDataset
from .model import EmotionHead
from .settings import CHOICES, attribute_state, check_expert_config, checked_attribute_state

logger = logging.getLogger(__name__)

DEFAULT_DATARC = {
    "test_fold": "fold1",
    "pre_load": True,
    "train_batch_size": 32,
    "eval_batch_size": 32,
    "num_workers": 0,
    "max_duration_s": 10,
    "allow_leakage": False,
}


class DownstreamExpert(nn.Module):
    """Soft-label multi-label emotion recognition on one fold of a prepared corpus."""

    def __init__(self, upstream_dim: int, downstream_expert: dict, expdir: str, **kwargs):
        super().__init__()
        self.expdir = Path(expdir)
        try:
            check_expert_config(downstream_expert, kwargs.get("runner"))
            if kwargs.get("mode", "train") == "train" and is_leader_process():
                runlock.acquire(self.expdir)  # before anything is written here
                _remove_partial_files(self.expdir)
            self._build(upstream_dim, downstream_expert, **kwargs)
        except (InvalidInputError, CorpusLayoutError):
            runlock.release(self.expdir / runlock.LOCK_NAME)
            remove_runner_leftovers(self.expdir)
            raise

    def _build(self, upstream_dim: int, downstream_expert: dict, **kwargs) -> None:
        self.datarc = {**DEFAULT_DATARC, **downstream_expert.get("datarc", {})}
        # -v on the command line beats the config's test_fold (S3PRL's emotion does the opposite).
        self.fold = str(kwargs.get("downstream_variant") or self.datarc["test_fold"])
        self.dev_loss_average = downstream_expert.get("dev_loss_average", CHOICES["dev_loss_average"][0])
        self.predict_fallback = downstream_expert.get("predict_fallback", CHOICES["predict_fallback"][0])
        self.task = downstream_expert.get("task", CHOICES["task"][0])
        self.attribute_weight = float(downstream_expert.get("attribute_weight", 1.0))
        self.attributes: tuple[str, ...] = ()
        self.data = self._load_data(downstream_expert.get("attributes"))
        self.classes = self.data.classes

        train = self.data.split("train")
        self.store = AudioStore(
            self.data.audio_dir,
            float(self.datarc["max_duration_s"]),
            pre_load=bool(self.datarc["pre_load"]),
            cache_dir=self.expdir / "cache" / "audio16k",
        )
        if kwargs.get("mode", "train") == "train":  # evaluation reads the statistics from the checkpoint
            self.store.load_all(train["FileName"].tolist(), "train")
        mean, std = normalisation_stats(
            self.store, train["FileName"].tolist(), self.expdir / "cache" / f"wav_stats_{self.fold}.json"
        )
        self.normalize = Normalizer(mean, std)
        self.datasets = {
            split: EmotionDataset(self.data.split(split), self.classes, self.store, self.normalize, self.attributes)
            for split in SPLITS
        }
        for split in ("dev", "test"):
            self.store.load_all(self.datasets[split].names, split)

        outputs = (0 if self.task == "attributes" else len(self.classes)) + len(self.attributes)
        self.head = EmotionHead(upstream_dim, outputs, downstream_expert.get("modelrc", {}))
        train_labels = self.datasets["train"].labels[:, : len(self.classes)]
        self.objective = _build_loss(downstream_expert.get("loss", {}), train_labels)
        # Attributes are learnt standardised by the train split's mean and std (carried in
        # checkpoints) and reported on the corpus's scale; CCC does not change under the same
        # affine map of both sides, so the loss is the CCC of the corpus-scale values.
        train_values = train[list(self.attributes)].to_numpy(dtype=float)
        self.attribute_mean = train_values.mean(axis=0).tolist() if self.attributes else []
        self.attribute_std = [float(s) or 1.0 for s in train_values.std(axis=0)] if self.attributes else []
        self.attribute_objective = AttributeLoss(downstream_expert.get("attribute_loss", CHOICES["attribute_loss"][0]))
        self.register_buffer("best_score", torch.full((1,), math.inf))  # lowest dev loss so far
        self.dev_thresholds: dict | None = None  # chosen on the last dev evaluation, see _tuned_threshold_scores
        _fit_schedule(kwargs.get("runner"))
        logger.info(
            "%s: fold %s of %s, %s",
            NAME,
            self.fold,
            self.data.label_file,
            ", ".join(f"{s} {len(d)}" for s, d in self.datasets.items()),
        )

    def _load_data(self, attributes: list[str] | None) -> FoldData:
        data = load_fold(self.datarc, self.fold)
        if self.task != "categorical":  # every value checked before the audio is
            self.attributes, values = fold_attributes(data, attributes)
            data.frame[list(self.attributes)] = values
        violations = fold_violations(data.frame, corpus=corpus_key(data.corpus or ""))
        if violations and not self.datarc["allow_leakage"]:
            raise InvalidInputError(
                f"{data.label_file}: the fold leaks between splits: {'; '.join(violations[:5])}. "
                "Fix the partition, or set downstream_expert.datarc.allow_leakage: true to accept it."
            )
        for message in violations:
            logger.warning("%s: %s", data.label_file, message)
        check_audio(data)
        return data

    # Carried in checkpoints so that inference needs neither the corpus nor the config.
    def get_extra_state(self) -> dict:
        state = {
            "classes": list(self.classes),
            "wav_mean": self.normalize.mean,
            "wav_std": self.normalize.std,
            "fold": self.fold,
            "max_duration_s": float(self.datarc["max_duration_s"]),
            "dev_thresholds": self.dev_thresholds,
        }
        if self.task != "categorical":
            state.update(attribute_state(self.task, self.attributes, self.attribute_mean, self.attribute_std))
        return state

    def set_extra_state(self, state: dict) -> None:
        where = "checkpoint Downstream._extra_state"
        if not isinstance(state, dict):
            raise InvalidInputError(f"{where}: expected a mapping, got {type(state).__name__}")
        classes = state.get("classes")
        if not isinstance(classes, list | tuple) or list(classes) != list(self.classes):
            raise InvalidInputError(
                f"checkpoint classes {classes!r} differ from the corpus classes {list(self.classes)}"
            )
        mean = finite_number(state.get("wav_mean"), where=f"{where}.wav_mean")
        std = finite_number(state.get("wav_std"), where=f"{where}.wav_std", low=0)
        if std == 0:
            raise InvalidInputError(f"{where}.wav_std: 0 is not a standard deviation > 0")
        self.normalize.mean, self.normalize.std = mean, std
        self.dev_thresholds = _checked_dev_thresholds(state.get("dev_thresholds"), len(self.classes))
        task, attributes, attribute_mean, attribute_std = checked_attribute_state(state, where)
        if (task, attributes) != (self.task, self.attributes):
            raise InvalidInputError(
                f"{where}: the checkpoint was trained for task {task!r} with attributes {list(attributes)}; the "
                f"config asks for task {self.task!r} with {list(self.attributes)}"
            )
        self.attribute_mean, self.attribute_std = attribute_mean, attribute_std

    # Used by the runner's ``-m inference -t FILE``.
    def load_audio(self, path) -> torch.Tensor:
        wav = load_audio(path, float(self.datarc["max_duration_s"]))
        return torch.from_numpy(self.normalize(wav))

    def inference(self, features, filenames) -> None:
        """Print and save (``EXP/inference_<name>.json``) the class probabilities of one file
        (with the attribute task, the attribute values on the corpus's scale beside them)."""
        outputs = self._logits(features)
        k = 0 if self.task == "attributes" else len(self.classes)
        probs = torch.softmax(outputs[:, :k], dim=-1) if k else outputs[:, :0]
        values = self._attribute_values(outputs)
        for name, row, attrs in zip(filenames, probs.tolist(), values.tolist(), strict=True):
            result = dict(zip(self.classes, row, strict=True)) if k else {}
            line = {"file": name, "probabilities": result} if k else {"file": name}
            if self.attributes:
                line["attributes"] = dict(zip(self.attributes, attrs, strict=True))
                result = {**result, **line["attributes"]}
            print(json.dumps(line))
            write_text_atomically(self.expdir / f"inference_{name}.json", json.dumps(result, indent=2) + "\n")

    # Interface
    def get_dataloader(self, split: str, epoch: int = 0) -> DataLoader:
        if split not in self.datasets:
            raise InvalidInputError(f"{NAME}: unknown split {split!r}; expected one of {list(self.datasets)}")
        dataset = self.datasets[split]
        train = split == "train"
        sampler = get_ddp_sampler(dataset, epoch) if train else None
        return DataLoader(
            dataset,
            batch_size=int(self.datarc["train_batch_size" if train else "eval_batch_size"]),
            shuffle=train and sampler is None,
            sampler=sampler,
            num_workers=int(self.datarc["num_workers"]),
            collate_fn=EmotionDataset.collate,
            drop_last=False,
        )

    # Interface
    def forward(self, split, features, labels, names, records, **kwargs):
        """Return the loss of one batch (not detached); keep what ``log_records`` needs."""
        if self.task != "categorical":
            return self._forward_attributes(features, labels, names, records)
        logits = self._logits(features)
        targets = torch.as_tensor(labels, device=logits.device)
        loss = self.objective(logits, targets)
        records["batch_loss"].append(loss.item())
        records["batch_size"].append(len(names))
        records["probs"].append(torch.softmax(logits.detach(), dim=-1).cpu().numpy())
        records["labels"].append(np.asarray(labels))
        records["names"].extend(names)
        return loss

    def _forward_attributes(self, features, labels, names, records):
        """``forward`` of the ``attributes`` and ``both`` tasks: the head's last A outputs regress
        the standardised attributes; in ``both`` its first K are the class logits (CBCE), and the
        loss is CBCE + ``attribute_weight`` x the attribute loss."""
        outputs = self._logits(features)
        targets = torch.as_tensor(labels, device=outputs.device)
        k, a = len(self.classes), len(self.attributes)
        mean = torch.as_tensor(self.attribute_mean, dtype=outputs.dtype, device=outputs.device)
        std = torch.as_tensor(self.attribute_std, dtype=outputs.dtype, device=outputs.device)
        attribute_loss = self.attribute_objective(outputs[:, -a:], (targets[:, k:] - mean) / std)
        loss = attribute_loss
        records["batch_loss_attributes"].append(attribute_loss.item())
        if self.task == "both":
            categorical_loss = self.objective(outputs[:, :k], targets[:, :k])
            loss = categorical_loss + self.attribute_weight * attribute_loss
            records["batch_loss_categorical"].append(categorical_loss.item())
            records["probs"].append(torch.softmax(outputs[:, :k].detach(), dim=-1).cpu().numpy())
            records["labels"].append(np.asarray(labels)[:, :k])
        records["attribute_values"].append(self._attribute_values(outputs.detach()))
        records["batch_loss"].append(loss.item())
        records["batch_size"].append(len(names))
        records["names"].extend(names)
        return loss

    def _attribute_values(self, outputs: torch.Tensor) -> np.ndarray:
        """(B, A) float64 attribute values on the corpus's scale from the head's outputs."""
        if not self.attributes:
            return np.zeros((len(outputs), 0))
        raw = outputs[:, -len(self.attributes) :].detach().cpu().double().numpy()
        return raw * np.asarray(self.attribute_std) + np.asarray(self.attribute_mean)

    def _logits(self, features: list[torch.Tensor]) -> torch.Tensor:
        lengths = torch.as_tensor([len(f) for f in features], device=features[0].device)
        return self.head(pad_sequence(features, batch_first=True), lengths)

    # Interface
    def log_records(self, split, records, logger, global_step, **kwargs):
        """Score the whole split, log it, dump predictions; name the checkpoint to save."""
        if not records["names"]:
            return []
        if self.task != "categorical":
            return self._log_attribute_records(split, records, logger, global_step)
        probs, labels = np.concatenate(records["probs"]), np.concatenate(records["labels"])
        batch_losses = np.asarray(records["batch_loss"])
        losses = {
            "utterance": float(np.average(batch_losses, weights=records["batch_size"])),
            "batch": float(np.mean(batch_losses)),
        }
        batch = int(self.datarc["train_batch_size" if split == "train" else "eval_batch_size"])
        scores = {
            "loss": losses["utterance"],
            "loss_batch_mean": losses["batch"],
            **score(probs, labels, self.classes, batch_size=batch),
        }
        if split != "train":
            scores.update(self._tuned_threshold_scores(split, probs, labels))
        prefix = f"{NAME}-{self.fold}/{split}"
        for key in ("loss", "loss_batch_mean", "macro_f1", "macro_f1_batch_mean", "micro_f1", "weighted_f1"):
            logger.add_scalar(f"{prefix}-{key}", scores[key], global_step=global_step)
        loss = losses[self.dev_loss_average]
        message = (
            f"{split} at step {global_step}: loss {losses['utterance']:.4f} (batch mean {losses['batch']:.4f}), "
            f"macro-F1 {scores['macro_f1']:.4f}"
        )
        return self._select_and_dump(split, loss, message, records["names"], probs, labels, scores, global_step)

    def _select_and_dump(self, split, loss, message, names, probs, labels, scores, global_step, values=None):
        """Dev-best by the task's dev ``loss``, the log line and the split's files; returns the
        checkpoints to save (``dev-best.ckpt`` on a new best)."""
        save_names = []
        if split == "dev" and loss < self.best_score.item():
            self.best_score.fill_(loss)
            save_names.append(f"{split}-best.ckpt")
            message += " (new best)"
        _append(self.expdir / "log.log", message + "\n")
        if split != "train":
            self._dump(split, names, probs, labels, {**scores, "step": global_step}, values)
        return save_names

    def _log_attribute_records(self, split, records, logger, global_step) -> list[str]:
        """``log_records`` of the ``attributes`` and ``both`` tasks: the task's loss (and its parts),
        CCC, Pearson's r and MAE per attribute, and in ``both`` the categorical scores too."""
        sizes = records["batch_size"]
        losses = {
            "utterance": float(np.average(records["batch_loss"], weights=sizes)),
            "batch": float(np.mean(records["batch_loss"])),
        }
        scores: dict = {"loss": losses["utterance"], "loss_batch_mean": losses["batch"]}
        parts = ["attributes", *(["categorical"] if self.task == "both" else [])]
        for part in parts:
            scores[f"loss_{part}"] = float(np.average(records[f"batch_loss_{part}"], weights=sizes))
        names = records["names"]
        values = np.concatenate(records["attribute_values"])
        truth = self.data.frame.set_index("FileName").loc[names, list(self.attributes)].to_numpy(dtype=float)
        scores.update(attribute_scores(values, truth, self.attributes))
        probs = labels = None
        if self.task == "both":
            probs, labels = np.concatenate(records["probs"]), np.concatenate(records["labels"])
            batch = int(self.datarc["train_batch_size" if split == "train" else "eval_batch_size"])
            scores.update(score(probs, labels, self.classes, batch_size=batch))
            if split != "train":
                scores.update(self._tuned_threshold_scores(split, probs, labels))
        prefix = f"{NAME}-{self.fold}/{split}"
        keys = ["loss", "loss_batch_mean", *(f"loss_{p}" for p in parts), "ccc_mean"]
        keys += [f"{m}/{a}" for m in ("ccc", "pearson", "mae") for a in self.attributes]
        if self.task == "both":
            keys += ["macro_f1", "macro_f1_batch_mean", "micro_f1", "weighted_f1"]
        for key in keys:
            if scores[key] is not None:
                logger.add_scalar(f"{prefix}-{key}", scores[key], global_step=global_step)
        ccc = "undefined" if scores["ccc_mean"] is None else f"{scores['ccc_mean']:.4f}"
        message = (
            f"{split} at step {global_step}: loss {losses['utterance']:.4f} (batch mean {losses['batch']:.4f}), "
            f"CCC mean {ccc}" + (f", macro-F1 {scores['macro_f1']:.4f}" if self.task == "both" else "")
        )
        loss = losses[self.dev_loss_average]
        return self._select_and_dump(split, loss, message, names, probs, labels, scores, global_step, values)

    def _tuned_threshold_scores(self, split: str, probs: np.ndarray, labels: np.ndarray) -> dict:
        """``macro_f1_tuned_thresholds``: macro-F1 with per-class thresholds chosen on dev.

        A dev evaluation chooses them (``metrics.tune_thresholds``) and scores dev with them:
        in-sample, so optimistic. They are kept with a digest of the head's weights and travel
        in checkpoints; a test evaluation of the same model (the runner evaluates dev before
        test, and a checkpoint saved at an evaluation step carries that step's choice) applies
        them. Otherwise, e.g. a checkpoint written before thresholds were kept, the figure is
        null and ``tuned_thresholds_from`` says why.
        """
        model = self._head_digest()
        if split == "dev":
            self.dev_thresholds = {"model": model, "thresholds": [float(t) for t in tune_thresholds(probs, labels)]}
            source = "dev (this split: chosen and scored on the same utterances, an optimistic figure)"
        elif self.dev_thresholds is not None and self.dev_thresholds["model"] == model:
            source = "dev, evaluated with the same model"
        else:
            return {
                "macro_f1_tuned_thresholds": None,
                "tuned_thresholds_from": "none: no dev evaluation of this model (evaluate dev first with the same "
                "runner, or a checkpoint saved at an evaluation step)",
                **{f"tuned_threshold/{c}": None for c in self.classes},
            }
        thresholds = np.asarray(self.dev_thresholds["thresholds"])
        return {
            "macro_f1_tuned_thresholds": macro_f1_at_thresholds(probs, labels, thresholds),
            "tuned_thresholds_from": source,
            **{f"tuned_threshold/{c}": float(t) for c, t in zip(self.classes, thresholds, strict=True)},
        }

    def _head_digest(self) -> str:
        """Identifies the head's weights: every training step changes them."""
        digest = hashlib.sha256()
        for name, tensor in self.head.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
        return digest.hexdigest()

    def _dump(
        self,
        split: str,
        names: list[str],
        probs: np.ndarray | None,
        labels: np.ndarray | None,
        scores: dict,
        attribute_values: np.ndarray | None = None,
    ) -> None:
        files = {}
        if probs is not None:
            top_class = self.predict_fallback == "top_class"
            files["predict.txt"] = _label_lines(names, probs, self.classes, top_class=top_class)
            files["truth.txt"] = _label_lines(names, labels, self.classes)
            files["probs.csv"] = _probs_csv(names, probs, self.classes)
        if attribute_values is not None:
            # The MSP-Podcast challenge's format, FileName,EmoAct,EmoVal,EmoDom; every digit kept,
            # so the CCC of this file equals the metrics file's.
            table = pd.DataFrame(attribute_values, columns=list(self.attributes))
            table.insert(0, "FileName", names)
            files["attributes.csv"] = table.to_csv(index=False)
            # The label file's values of the same utterances, so that the report can resample
            # the pooled test utterances without reading a label file outside the results.
            truth = self.data.frame.set_index("FileName").loc[names, list(self.attributes)].reset_index()
            files["attributes_truth.csv"] = truth.to_csv(index=False)
        meta = {
            "split": split,
            "fold": self.fold,
            "num_utterances": len(names),
            "label_file": str(self.data.label_file),
        }
        if self.task != "categorical":
            meta.update(task=self.task, attributes=list(self.attributes))
        files["metrics.json"] = json.dumps({**meta, **scores}, indent=2) + "\n"
        for suffix, text in files.items():
            # rewritten at every evaluation, read by no other process meanwhile: the old file goes first
            write_text_atomically(self.expdir / f"{split}_{self.fold}_{suffix}", text, replace=False)


# S3PRL deletes the oldest states-*.ckpt before it writes the next one: keeping one fewer
# than two would leave nothing to resume from while the next one is being written.
MIN_MAX_KEEP = 2


def _fit_schedule(runner: dict | None) -> None:
    """A run shorter than eval_step/save_step would end without any checkpoint: evaluate and
    save at its last step instead. ``max_keep`` is raised to 2 so that a kill during a save
    always leaves the previous states to resume from. (The runner reads these keys from this
    very dict.)"""
    if not runner:
        return
    if int(runner.get("max_keep", MIN_MAX_KEEP)) < MIN_MAX_KEEP:
        logger.info(
            "%s: max_keep %s -> %s, so that a kill during a save leaves states to resume from",
            NAME,
            runner["max_keep"],
            MIN_MAX_KEEP,
        )
        runner["max_keep"] = MIN_MAX_KEEP
    if "total_steps" not in runner:
        return
    total = int(runner["total_steps"])
    for key in ("log_step", "eval_step", "save_step"):
        if int(runner.get(key, 0)) > total:
            logger.info("%s: %s %s > total_steps %s; using %s", NAME, key, runner[key], total, total)
            runner[key] = total
        elif key != "log_step" and total % int(runner.get(key, 1)):
            logger.warning(
                "%s: total_steps %s is not a multiple of %s %s: the last steps are neither evaluated nor saved",
                NAME,
                total,
                key,
                runner[key],
            )


def _build_loss(lossrc: dict, train_labels: np.ndarray) -> nn.Module:
    kind = lossrc.get("name", "cbce")
    if kind == "cbce":
        return ClassBalancedCrossEntropy(
            train_labels, weighting=lossrc.get("weighting", "sample"), beta=lossrc.get("beta")
        )
    if kind == "ce":
        return SoftCrossEntropy()
    raise InvalidInputError(f"downstream_expert.loss.name: unknown loss {kind!r}; expected 'cbce' or 'ce'")


def _label_lines(names: list[str], values: np.ndarray, classes: tuple[str, ...], *, top_class: bool = False) -> str:
    """EMO-SUPERB's ``FileName emo1;emo2`` lines: every class above 1/C.

    A line with no such class ends after the space, as EMO-SUPERB writes it, unless
    ``top_class`` names the largest value instead.
    """
    on = binarize(values)
    if top_class:
        empty = ~on.any(axis=1)
        on[empty, np.argmax(values[empty], axis=1)] = True
    rows = zip(names, on.tolist(), strict=True)
    return "".join(f"{name} {';'.join(itertools.compress(classes, flags))}\n" for name, flags in rows)


def _probs_csv(names: list[str], probs: np.ndarray, classes: tuple[str, ...]) -> str:
    """``FileName,<class>,...`` with six decimals: pandas' ``to_csv(index=False, float_format="%.6f")``,
    byte for byte (NaN as an empty field), without building a DataFrame at every evaluation."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["FileName", *classes])
    rows = zip(names, probs.tolist(), strict=True)
    writer.writerows([name, *("" if math.isnan(p) else f"{p:.6f}" for p in row)] for name, row in rows)
    return out.getvalue()


def _checked_dev_thresholds(value: object, n_classes: int) -> dict | None:
    """A checkpoint's ``dev_thresholds`` (absent in older ones), checked like the rest of its extra state."""
    if value is None:
        return None
    where = "checkpoint extra state 'dev_thresholds'"
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("model"), str)
        or not isinstance(value.get("thresholds"), list)
        or len(value["thresholds"]) != n_classes
    ):
        raise InvalidInputError(f"{where}: expected {{'model': str, 'thresholds': [{n_classes} numbers]}}")
    thresholds = [finite_number(t, where=f"{where}.thresholds", low=0.0, high=1.0) for t in value["thresholds"]]
    return {"model": value["model"], "thresholds": thresholds}


def _remove_partial_files(expdir: Path) -> None:
    """Checkpoints and caches a killed run was writing: never complete, never read."""
    # checkpoints (checkpoints.PARTIAL_GLOB) and text files (atomic.write_text_atomically) are
    # written to hidden ``.partial`` siblings; converted audio to ``*.tmp.npy``
    for pattern in (".*.partial", ".*.tmp", "cache/**/.*.partial", "cache/**/*.tmp.npy", "cache/**/*.tmp"):
        for path in expdir.glob(pattern):
            if path.is_file():
                logger.info("%s: removing %s, left by an interrupted run", NAME, path)
                path.unlink(missing_ok=True)


def _append(path: Path, text: str) -> None:
    """Append ``text`` to a log of the experiment folder. What this run did not make there (a
    symbolic link, a second name of another file) is removed, never written through."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            fd = None
        if fd is not None:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                with os.fdopen(fd, "a") as log:
                    log.write(text)
                return
            os.close(fd)
        logger.warning(
            "%s: not a plain file of this experiment: removing it (what it points to is left as it is)", path
        )
        path.unlink(missing_ok=True)
    raise InvalidInputError(f"{path}: cannot be written (something keeps replacing it)")


def remove_runner_leftovers(expdir: Path) -> None:
    """The runner writes args/config yaml before it builds the expert. When the folder holds
    nothing else, no run ever started there: remove it rather than leave a husk behind."""
    if not expdir.is_dir():
        return
    files = list(expdir.iterdir())
    if files and all(p.is_file() and p.name.startswith(("args_", "config_")) and p.suffix == ".yaml" for p in files):
        for path in files:
            path.unlink()
        expdir.rmdir()
