"""Fill the two torchaudio names S3PRL 0.4.18 needs that torchaudio 2.9 removed.

S3PRL calls ``torchaudio.set_audio_backend`` at import time (``s3prl.hub`` reaches
``upstream/byol_s``) and in ``run_downstream.py``, and imports ``torchaudio.sox_effects``
from ``upstream/mos_prediction`` (also reached from ``s3prl.hub``) and from the datasets of
some tasks. Without them ``import s3prl.hub`` fails on torchaudio >= 2.9. The registration
hook calls :func:`fill_missing` when s3prl is first imported; on torchaudio <= 2.8, where
both names exist, it changes nothing.

- ``set_audio_backend``: a no-op, as it already was (deprecated) in torchaudio 2.8.
- ``sox_effects``: a placeholder module whose functions raise :class:`SoxEffectsRemovedError`
  naming the S3PRL module that called them. Only upstreams and downstreams that apply sox
  effects (speaker and keyword tasks, MOS prediction, ...) reach them; ``emotion_multilabel``
  does not.
"""

from __future__ import annotations

import logging
import sys
import types

logger = logging.getLogger(__name__)

SOX_EFFECTS = "torchaudio.sox_effects"
SOX_FUNCTIONS = (
    "init_sox_effects",
    "shutdown_sox_effects",
    "effect_names",
    "apply_effects_tensor",
    "apply_effects_file",
)


class SoxEffectsRemovedError(RuntimeError):
    """An S3PRL module asked for sox effects, which torchaudio >= 2.9 no longer has."""


def _set_audio_backend(backend: str | None = None) -> None:
    """No-op stand-in: torchaudio >= 2.9 has a single I/O path and no backend to pick."""


def _calling_s3prl_module() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "s3prl" or name.startswith("s3prl."):
            return name
        frame = frame.f_back
    return "the caller"


def _sox_placeholder(function: str):
    def removed(*args, **kwargs):
        import torchaudio

        raise SoxEffectsRemovedError(
            f"{_calling_s3prl_module()} calls {SOX_EFFECTS}.{function}, which torchaudio "
            f"{torchaudio.__version__} no longer has (removed in 2.9). This S3PRL module needs "
            "torchaudio <= 2.8 with its matching torch (see constraints-torch28.txt)."
        )

    removed.__name__ = removed.__qualname__ = function
    return removed


def _sox_effects_module() -> types.ModuleType:
    module = types.ModuleType(SOX_EFFECTS, "Placeholder for torchaudio.sox_effects (removed in torchaudio 2.9).")
    for function in SOX_FUNCTIONS:
        setattr(module, function, _sox_placeholder(function))
    module.__all__ = list(SOX_FUNCTIONS)
    return module


def _has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def fill_missing() -> list[str]:
    """Add what S3PRL needs and the installed torchaudio lacks; return the names filled.

    Importing torchaudio is left to S3PRL where it fails (not installed, or its CUDA check
    refuses the installed torch), so that the user sees torchaudio's own error.
    """
    try:
        import torchaudio
    except Exception:  # s3prl imports torchaudio next and reports it itself
        return []
    filled = []
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = _set_audio_backend
        filled.append("torchaudio.set_audio_backend")
    if SOX_EFFECTS not in sys.modules and not _has_module(SOX_EFFECTS):
        module = _sox_effects_module()
        sys.modules[SOX_EFFECTS] = module
        torchaudio.sox_effects = module
        filled.append(SOX_EFFECTS)
    for name in filled:
        logger.debug(
            "torchaudio %s lacks %s, which S3PRL 0.4.18 uses: filled in for S3PRL", torchaudio.__version__, name
        )
    return filled
