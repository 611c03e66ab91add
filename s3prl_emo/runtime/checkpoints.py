"""Checkpoints are untrusted input: read them weights-only, and never let one pick the upstream.

A checkpoint written by S3PRL's runner holds the run's ``Args``; ``Args.upstream`` names an
``s3prl.hub`` loader and ``Args.upstream_ckpt`` the file it reads. Some loaders unpickle that
file with ``weights_only=False`` (``mockingjay_local``, ``distiller_local``, ...), others
download whatever URL they are given (``*_url``, ``*_gdriveid``), and ``Args.hub ==
"huggingface"`` imports code from a downloaded repository. So an edited checkpoint could run
code. Every loading path of this package goes through this module:

``load_checkpoint(path)``
    ``torch.load(..., weights_only=True)`` (``argparse.Namespace`` allowed, nothing else).
    A missing, truncated or corrupt file, one holding other objects, or one whose runner
    fields have the wrong type (``Args``, ``Config``, ``Step``, ``Epoch``, the model
    entries) or whose weights are NaN or infinite, raises ``InvalidInputError`` naming the
    file and the field.
``upstream_spec(args, upstream_ckpt=None)``
    Decides which ``s3prl.hub`` loader runs, and on which file, for a checkpoint's ``Args``:
    only loaders in ``SAFE_UPSTREAMS``; a local weights file only when the caller names it
    (``upstream_ckpt``), never the path the checkpoint records. Raises ``InvalidInputError``
    saying what to pass otherwise.
``build_upstream(args, upstream_ckpt=None, device="cpu")``
    ``upstream_spec`` followed by the loader call: the upstream model, ready for a
    ``Featurizer``.
``save_checkpoint(state, path)``
    ``torch.save`` to a new hidden sibling (created exclusively, never through a link),
    then an atomic rename: a kill never leaves a truncated checkpoint under the final name
    (``PARTIAL_GLOB`` matches the leftovers).

S3PRL's own ``run_downstream.py -e`` goes through the same ``upstream_spec``, via the
import hook (``_s3prl_emo_hook``), where the user names a local upstream file with
``-o args.upstream_ckpt=PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from .guards import open_new
from .paths import Pathlike

# Loaders that read no file: the features are computed from the waveform.
FEATURE_UPSTREAMS = frozenset({"fbank", "fbank_no_cmvn", "mfcc", "mel", "spectrogram", "linear", "baseline"})
# Loaders that read one local weights file with torch's default torch.load, which is
# weights-only from torch 2.6 on (they refuse URLs only through ``upstream_spec``).
LOCAL_FILE_UPSTREAMS = frozenset(
    {"wavlm_local", "hubert_local", "wav2vec2_local", "unispeech_sat_local", "data2vec_local"}
)
# Loaders that download a converted checkpoint from a URL written in S3PRL's source (the
# checkpoint cannot change it) and read it with the same weights-only torch.load.
PINNED_UPSTREAMS = frozenset(
    {
        "wavlm", "wavlm_base", "wavlm_base_plus", "wavlm_large",
        "hubert", "hubert_base", "hubert_large_ll60k", "hubert_base_robust_mgr", "mhubert_base_vp_en_es_fr_it3",
        "contentvec", "contentvec_km100", "contentvec_km500", "ms_hubert",
        "wav2vec2", "wav2vec2_base_960", "wav2vec2_large_960", "wav2vec2_large_ll60k",
        "wav2vec2_large_lv60_cv_swbd_fsh", "wav2vec2_large_voxpopuli_100k", "wav2vec2_conformer_relpos",
        "wav2vec2_conformer_rope", "xlsr_53", "xls_r_300m", "xls_r_1b", "xls_r_2b",
        "unispeech_sat", "unispeech_sat_base", "unispeech_sat_base_plus", "unispeech_sat_large",
        "data2vec", "data2vec_base_960", "data2vec_large_ll60k",
    }
)  # fmt: skip
SAFE_UPSTREAMS = FEATURE_UPSTREAMS | LOCAL_FILE_UPSTREAMS | PINNED_UPSTREAMS


@dataclass(frozen=True)
class UpstreamSpec:
    """Which ``s3prl.hub`` loader to call, with which keyword arguments."""

    name: str
    kwargs: dict = field(default_factory=dict)


def _torch_loads_weights_only_by_default() -> bool:
    import torch

    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 6)


# Leftovers of an interrupted ``save_checkpoint``: hidden, and never matching states-*.ckpt.
PARTIAL_GLOB = ".*.ckpt.*.partial"


def save_checkpoint(state: object, path: Pathlike) -> None:
    """``torch.save`` that is all-or-nothing: written and synced aside, then renamed into place."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:  # a leftover of an earlier process with this PID, or a link, is removed, never followed
        with open_new(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Pathlike) -> dict:
    """Read a checkpoint with ``weights_only=True``; any failure names the file and why."""
    import torch

    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InvalidInputError(f"checkpoint: expected a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path}: empty checkpoint file (truncated: its save was interrupted)")
    # The context manager removes what it added on exit, even an allowance made before it
    # (the import hook's): enter it only when Namespace is not allowed already.
    already = argparse.Namespace in torch.serialization.get_safe_globals()
    allowance = contextlib.nullcontext() if already else torch.serialization.safe_globals([argparse.Namespace])
    try:
        with allowance:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            raise InvalidInputError(
                f"{path}: refused: the checkpoint holds objects other than tensors and S3PRL's "
                f"arguments, which are never unpickled ({str(err).splitlines()[0]})"
            ) from err
        raise InvalidInputError(f"{path}: truncated or corrupt checkpoint ({err})") from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidInputError(
            f"{path}: truncated or corrupt checkpoint, cannot be read ({reason}); "
            "use an earlier states-*.ckpt of the experiment"
        ) from err
    if not isinstance(state, dict):
        raise InvalidInputError(f"{path}: not an S3PRL checkpoint (holds a {type(state).__name__}, not a dict)")
    check_fields(state, path)
    return state


# The runner's entries that hold model weights (S3PRL saves each trainable one under its name).
WEIGHT_ENTRIES = ("Upstream", "Featurizer", "Downstream")


def check_fields(state: dict, where: Pathlike) -> None:
    """Refuse a checkpoint whose runner fields would fail later, deep in S3PRL or torch.

    ``Args`` is S3PRL's ``Namespace``, ``Config`` a mapping, ``Step``/``Epoch`` counts, and
    every floating-point weight of the model entries finite (a run that diverged saves NaN
    weights, which would only ever predict NaN). Absent fields are left to their readers.

    Raises:
        InvalidInputError: naming ``where`` and the field.

    Examples:
        >>> check_fields({"Step": 10, "Config": {}}, "dev-best.ckpt")
    """
    import torch

    expected = {"Args": argparse.Namespace, "Config": dict, "Optimizer": dict, "Scheduler": dict}
    for key, kind in expected.items():
        if key in state and not isinstance(state[key], kind):
            raise InvalidInputError(f"{where}: {key} is a {type(state[key]).__name__}, not a {kind.__name__}")
    for key in ("Step", "Epoch"):
        value = state.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{where}: {key} is {value!r}, not a whole number >= 0")
    for entry in WEIGHT_ENTRIES:
        weights = state.get(entry)
        if weights is None:
            continue
        if not isinstance(weights, dict):
            raise InvalidInputError(f"{where}: {entry} is a {type(weights).__name__}, not a mapping of weights")
        for name, tensor in weights.items():
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise InvalidInputError(
                    f"{where}: {entry}.{name} holds NaN or infinite weights (the run diverged before this save); "
                    "use an earlier states-*.ckpt of the experiment"
                )


def upstream_spec(
    args: argparse.Namespace, upstream_ckpt: Pathlike | None = None, *, where: str = "the checkpoint"
) -> UpstreamSpec:
    """The loader to build for a checkpoint's ``Args``, refusing what could run code or read
    a file the caller did not name. ``where`` names the checkpoint in messages."""
    name = getattr(args, "upstream", None)
    hub_kind = getattr(args, "hub", "torch") or "torch"
    if hub_kind != "torch" or getattr(args, "from_hf_hub", False):
        raise InvalidInputError(
            f"{where}: upstream from the Hugging Face Hub ({name!r}) refused: it would import code "
            "from a downloaded repository; only s3prl.hub upstreams are loaded from checkpoints"
        )
    if not isinstance(name, str) or name not in SAFE_UPSTREAMS:
        raise InvalidInputError(
            f"{where}: upstream {name!r} is not one this package loads from a checkpoint (its loader may "
            f"unpickle or download a file the checkpoint names); allowed: {sorted(SAFE_UPSTREAMS)}"
        )
    recorded_config = getattr(args, "upstream_model_config", None)
    if recorded_config and name not in FEATURE_UPSTREAMS:
        raise InvalidInputError(
            f"{where}: records upstream_model_config {recorded_config!r}, which is never read from a checkpoint"
        )
    if name in FEATURE_UPSTREAMS or name in PINNED_UPSTREAMS:
        if upstream_ckpt is not None:
            raise InvalidInputError(
                f"upstream_ckpt {str(upstream_ckpt)!r}: upstream {name!r} reads no local weights file; leave it unset"
            )
        if name in PINNED_UPSTREAMS and not _torch_loads_weights_only_by_default():
            raise InvalidInputError(f"{where}: upstream {name!r} needs torch >= 2.6 to be read weights-only")
        return UpstreamSpec(name)
    recorded = getattr(args, "upstream_ckpt", None)
    if upstream_ckpt is None:
        raise InvalidInputError(
            f"{where}: upstream {name!r} reads a local weights file, and a checkpoint never chooses it: "
            f"name it yourself (upstream_ckpt=PATH; the checkpoint records {recorded!r})"
        )
    path = Path(upstream_ckpt)
    if not path.is_file():
        raise InvalidInputError(f"upstream_ckpt {str(upstream_ckpt)!r}: no such file (upstream {name!r})")
    if not _torch_loads_weights_only_by_default():
        raise InvalidInputError(f"upstream {name!r}: needs torch >= 2.6 to read {path} weights-only")
    return UpstreamSpec(name, {"ckpt": str(path)})


def build_upstream(args: argparse.Namespace, upstream_ckpt: Pathlike | None = None, device: str = "cpu"):
    """The frozen upstream a checkpoint was trained on, built only as ``upstream_spec`` allows."""
    from s3prl import hub

    spec = upstream_spec(args, upstream_ckpt)
    return getattr(hub, spec.name)(**spec.kwargs).to(device)
