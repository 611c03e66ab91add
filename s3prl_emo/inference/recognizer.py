"""Label new audio with a trained ``emotion_multilabel`` checkpoint.

A checkpoint written by S3PRL's runner holds the run's arguments (which upstream, which
layers), the config (the head), the featurizer and head weights, and, through the expert's
extra state, the class names and the train-split waveform statistics. That is all that is
needed: no corpus, no config file.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from s3prl.upstream.interfaces import Featurizer
from torch.nn.utils.rnn import pad_sequence

from ..data.audio import SAMPLE_RATE, load_audio, require_finite, to_mono_16k
from ..data.fold import Normalizer
from ..data.layout import check_class_names
from ..downstream.model import EmotionHead
from ..downstream.settings import checked_attribute_state
from ..errors import InvalidInputError
from ..runtime.checkpoints import build_upstream, load_checkpoint
from ..runtime.paths import Pathlike

__all__ = ["EmotionRecognizer", "check_sample_rate", "load_checkpoint", "waveform_16k"]


def _emotion_parts(ckpt: Pathlike, state: dict) -> tuple[argparse.Namespace, dict, dict, dict]:
    """``Args``, ``Config``, ``Downstream`` and the expert's extra state, checked."""
    try:
        args, config, downstream = state["Args"], state["Config"], state["Downstream"]
        extra = downstream["_extra_state"]
    except (KeyError, TypeError) as err:
        raise InvalidInputError(f"{ckpt}: not an emotion_multilabel checkpoint (missing {err})") from err
    if (
        not isinstance(args, argparse.Namespace)
        or not isinstance(config, dict)
        or not isinstance(config.get("downstream_expert", {}), dict)
        or not isinstance(extra, dict)
    ):
        raise InvalidInputError(f"{ckpt}: not an emotion_multilabel checkpoint (unexpected Args/Config types)")
    classes = extra.get("classes")
    if not isinstance(classes, list | tuple) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise InvalidInputError(f"{ckpt}: extra state 'classes' must list at least 2 class names, got {classes!r}")
    check_class_names(classes, where=f"{ckpt}: extra state 'classes'")
    for key, positive in (("wav_mean", False), ("wav_std", True), ("max_duration_s", True)):
        value = extra.get(key)
        if not isinstance(value, int | float) or not math.isfinite(value) or (positive and value <= 0):
            raise InvalidInputError(
                f"{ckpt}: extra state {key!r} must be a finite{' positive' if positive else ''} number, got {value!r}"
            )
    return args, config, downstream, extra


def _load_weights(module: nn.Module, weights, ckpt: Pathlike, part: str) -> None:
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError, KeyError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidInputError(f"{ckpt}: {part} weights do not fit the described model ({reason})") from err


class EmotionRecognizer(nn.Module):
    """Frozen upstream + featurizer + trained head; ``predict`` returns class probabilities.

    Build it with ``from_checkpoint``; the constructor takes the parts already built.

    Args:
        upstream: The self-supervised model (S3PRL upstream), kept frozen.
        featurizer: S3PRL's featurizer: the learnt weighted sum of the upstream's layers.
        head: The trained classification head.
        classes: Class names, in the order of the head's outputs.
        normalize: The feature statistics training used, applied before the head.
        max_duration_s: Seconds of audio used per utterance, the training crop.

    Examples:
        >>> recognizer = EmotionRecognizer.from_checkpoint("exp/dev-best.ckpt")  # doctest: +SKIP
        >>> recognizer.predict_file("clip.wav")  # doctest: +SKIP
        {'Angry': 0.05, 'Sad': 0.71, 'Happy': 0.09, 'Neutral': 0.15}
    """

    def __init__(
        self,
        upstream: nn.Module,
        featurizer: nn.Module,
        head: EmotionHead,
        classes: list[str],
        normalize: Normalizer,
        max_duration_s: float,
        attributes: dict | None = None,
    ):
        """Hold the parts as submodules, so that ``.to(device)`` and ``.eval()`` reach all of them."""
        super().__init__()
        self.upstream, self.featurizer, self.head = upstream, featurizer, head
        self.classes = list(classes)
        self.normalize = normalize
        self.max_duration_s = max_duration_s
        attributes = attributes or {"task": "categorical", "names": [], "mean": [], "std": []}
        self.task = attributes["task"]
        self.attributes = list(attributes["names"])
        self.attribute_mean = np.asarray(attributes["mean"], dtype=float)
        self.attribute_std = np.asarray(attributes["std"], dtype=float)
        # The classes the head gives probabilities for: none when it only regresses attributes.
        self.output_classes = [] if self.task == "attributes" else list(self.classes)

    @classmethod
    def from_checkpoint(cls, ckpt: Pathlike, upstream_ckpt: str | None = None, device: str = "cpu"):
        """Build the recogniser from an S3PRL checkpoint, treated as untrusted input.

        The upstream comes from ``s3prl_emo.runtime.checkpoints.build_upstream``: a loader that reads
        a local weights file needs ``upstream_ckpt``; the path the checkpoint records is never read.
        """
        return cls.from_state(load_checkpoint(ckpt), ckpt, upstream_ckpt, device=device)

    @classmethod
    def from_state(cls, state: dict, ckpt: Pathlike, upstream_ckpt: str | None = None, device: str = "cpu"):
        """``from_checkpoint`` for a checkpoint the caller has loaded (``load_checkpoint``) already.

        ``ckpt`` only names the file in errors. Callers that read other parts of the checkpoint
        (the trust profile reads its fold) load it once and pass it here.
        """
        args, config, downstream, extra = _emotion_parts(ckpt, state)
        upstream = build_upstream(args, upstream_ckpt, device="cpu")
        if "Upstream" in state:
            _load_weights(upstream, state["Upstream"], ckpt, "Upstream")
        featurizer = Featurizer(
            upstream,
            feature_selection=args.upstream_feature_selection,
            layer_selection=args.upstream_layer_selection,
            upstream_device=device,
            normalize=args.upstream_feature_normalize,
        )
        _load_weights(featurizer, state.get("Featurizer"), ckpt, "Featurizer")
        modelrc = config.get("downstream_expert", {}).get("modelrc", {})
        task, names, mean, std = checked_attribute_state(extra, f"{ckpt}: extra state")
        outputs = (0 if task == "attributes" else len(extra["classes"])) + len(names)
        head = EmotionHead(featurizer.output_dim, outputs, modelrc)
        head_weights = {k[len("head.") :]: v for k, v in downstream.items() if k.startswith("head.")}
        _load_weights(head, head_weights, ckpt, "Downstream head")
        model = cls(
            upstream,
            featurizer,
            head,
            extra["classes"],
            Normalizer(extra["wav_mean"], extra["wav_std"]),
            extra["max_duration_s"],
            {"task": task, "names": names, "mean": mean, "std": std},
        )
        return model.to(device).eval()

    def _split_outputs(self, outputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, C) class probabilities and (N, A) attribute values (the corpus's scale) from the head's outputs."""
        k = len(self.output_classes)
        probs = torch.softmax(outputs[:, :k], dim=-1).cpu().numpy() if k else np.zeros((len(outputs), 0))
        raw = outputs[:, k:].cpu().double().numpy()
        return probs, raw * self.attribute_std + self.attribute_mean

    @torch.no_grad()
    def predict(self, wav: np.ndarray | torch.Tensor, sample_rate: int) -> dict[str, float]:
        """Class probabilities (and attribute values, where the task has them) for one waveform.

        The waveform is (T,), (T, channels) or (channels, T), float in [-1, 1] or integer PCM.
        Like training, only the first ``max_duration_s`` seconds are used (cropped before
        resampling).

        Args:
            wav: The samples.
            sample_rate: Their rate in Hz; they are resampled to 16 kHz.

        Returns:
            Class name -> probability, in the order of ``classes``; with an ``attributes`` or
            ``both`` checkpoint, each attribute (``EmoAct``, ...) -> its value on the training
            corpus's scale, after the classes (an ``attributes`` checkpoint has no classes here).
        """
        wav = waveform_16k(wav, sample_rate, self.max_duration_s)
        device = next(self.head.parameters()).device
        wavs = [torch.from_numpy(self.normalize(wav)).to(device)]
        features = self.featurizer(wavs, self.upstream(wavs))
        lengths = torch.as_tensor([len(f) for f in features], device=device)
        probs, values = self._split_outputs(self.head(torch.stack(features), lengths))
        return {
            **dict(zip(self.output_classes, probs[0].tolist(), strict=True)),
            **dict(zip(self.attributes, values[0].tolist(), strict=True)),
        }

    def predict_file(self, path: Pathlike) -> dict[str, float]:
        """Class probabilities of one audio file (a FIFO or device is refused, never opened)."""
        from .predict import refuse_special_file

        refuse_special_file(Path(path))
        return self.predict(load_audio(path, self.max_duration_s), 16_000)

    @torch.no_grad()
    def predict_batch(self, wavs: list[np.ndarray]) -> np.ndarray:
        """(N, C) class probabilities of N mono 16 kHz waveforms, one upstream call for all."""
        if self.task == "attributes":
            raise InvalidInputError(
                "this checkpoint regresses attributes only and gives no class probabilities; use predict_outputs"
            )
        return self.predict_outputs(wavs)[0]

    @torch.no_grad()
    def predict_outputs(self, wavs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and attribute values of N mono 16 kHz waveforms, one upstream call for all.

        Returns (N, C) probabilities (C = 0 for an ``attributes`` checkpoint) and (N, A) values on
        the training corpus's scale (A = 0 for a categorical one).
        """
        device = next(self.head.parameters()).device
        batch = [torch.from_numpy(self.normalize(np.asarray(w, dtype=np.float32))).to(device) for w in wavs]
        features = self.featurizer(batch, self.upstream(batch))
        lengths = torch.as_tensor([len(f) for f in features], device=device)
        return self._split_outputs(self.head(pad_sequence(features, batch_first=True), lengths))

    def predict_files(self, paths, *, window_s: float | None = None, batch_size: int = 8, progress=None):
        """Label files and folders as ``s3prl-emo predict`` does.

        Returns one ``FilePrediction`` per file (``probabilities``, ``windows``, or ``error`` for
        a file that cannot be read); see ``s3prl_emo.inference.predict.predict_files`` for the
        arguments.
        """
        from .predict import predict_files

        return predict_files(self, paths, window_s=window_s, batch_size=batch_size, progress=progress)


MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 64
# Integer PCM -> [-1, 1): divide by full scale (unsigned 8-bit is offset by 128, as in WAV).
PCM_SCALE = {np.dtype(np.int8): (0, 2**7), np.dtype(np.int16): (0, 2**15), np.dtype(np.int32): (0, 2**31),
             np.dtype(np.uint8): (128, 2**7)}  # fmt: skip


def check_sample_rate(sample_rate) -> int:
    """A positive whole number of Hz (``44100`` or ``44100.0``), else ``InvalidInputError``.

    Checked before resampling, where a NaN, a fraction or an absurd rate would otherwise fail
    deep inside the resampler with a message that does not name the value.

    Examples:
        >>> check_sample_rate(44100.0)
        44100
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.integer | np.floating):
        raise InvalidInputError(f"predict: sample_rate must be a number of Hz, got {sample_rate!r}")
    if not math.isfinite(sample_rate) or float(sample_rate) != int(sample_rate):
        raise InvalidInputError(f"predict: sample_rate must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise InvalidInputError(f"predict: sample_rate {sample_rate!r} Hz is outside [{MIN_RATE}, {MAX_RATE}]")
    return int(sample_rate)


def waveform_16k(wav, sample_rate, max_seconds: float | None) -> np.ndarray:
    """Validate one waveform and return its first ``max_seconds`` as mono float32 at 16 kHz.

    The channel axis is the shorter one of a 2-D array, so (channels, T) as torchaudio
    returns it and (T, channels) as soundfile returns it both work. The array is cut before
    any conversion or resampling, so a long array costs only the kept seconds; one second
    more than the crop is resampled, so the kept samples equal those of a file read whole.
    """
    rate = check_sample_rate(sample_rate)
    wav = _time_major(_as_array(wav))
    if max_seconds is not None:
        wav = wav[: math.ceil(max_seconds * rate) + rate]
    wav = require_finite(_float_samples(wav), "predict: waveform", rate)
    wav = to_mono_16k(wav, rate)
    return wav[: round(max_seconds * SAMPLE_RATE)] if max_seconds is not None else wav


def _as_array(wav):
    """A tensor (detached) or a NumPy array of the samples."""
    if isinstance(wav, torch.Tensor):
        return wav.detach()
    if isinstance(wav, np.ndarray):
        return wav
    try:
        return np.asarray(wav)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(f"predict: not an array of samples ({err})") from err


def _time_major(wav):
    """``wav`` as (T,) or (T, channels): the channel axis of a 2-D array is the shorter one."""
    if wav.ndim in (1, 2) and 0 in wav.shape:
        raise InvalidInputError(f"predict: empty waveform (0 samples, shape {tuple(wav.shape)})")
    if wav.ndim == 1:
        return wav
    if wav.ndim != 2:
        raise InvalidInputError(
            f"predict: expected a waveform of shape (T,), (T, channels) or (channels, T), got {tuple(wav.shape)}"
        )
    if wav.shape[0] == wav.shape[1]:
        raise InvalidInputError(f"predict: ambiguous shape {tuple(wav.shape)}; pass (T,) or (T, channels)")
    if wav.shape[0] < wav.shape[1]:
        wav = wav.T  # (channels, T)
    if wav.shape[1] > MAX_CHANNELS:
        raise InvalidInputError(
            f"predict: shape {tuple(wav.shape)} has no plausible channel axis (at most {MAX_CHANNELS} channels)"
        )
    return wav


def _float_samples(wav) -> np.ndarray:
    """Float32 samples: floats as they are, integer PCM scaled by its full scale (uint8 offset by 128)."""
    if isinstance(wav, torch.Tensor):
        if wav.is_complex() or wav.dtype == torch.bool:
            raise InvalidInputError(f"predict: samples must be real numbers, got {wav.dtype}")
        wav = wav.cpu().numpy() if not wav.is_floating_point() else wav.cpu().float().numpy()
    if len(wav) == 0:
        raise InvalidInputError("predict: empty waveform (0 samples)")
    if wav.dtype in PCM_SCALE:
        offset, scale = PCM_SCALE[wav.dtype]
        wav = (wav.astype(np.float32) - offset) / scale
    elif wav.dtype.kind != "f":
        raise InvalidInputError(
            f"predict: samples of type {wav.dtype} are not audio; pass float in [-1, 1] or int8/int16/int32/uint8 PCM"
        )
    return np.asarray(wav, dtype=np.float32)
