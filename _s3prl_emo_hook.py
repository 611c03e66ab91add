"""Lets S3PRL's own runner find the ``emotion_multilabel`` downstream.

Installed with the package as ``s3prl_emo.pth``, so it runs at interpreter start: it adds
one meta-path finder and imports nothing heavy. S3PRL looks a downstream up as
``s3prl.downstream.<name>.expert``; the finder answers those names with forwarding modules
over ``s3prl_emo.downstream``, so no file is copied into s3prl. When s3prl is first
imported, it also allows ``argparse.Namespace`` (the one non-tensor type S3PRL
checkpoints hold) in torch's weights-only unpickler, so ``-e ckpt`` works on torch >= 2.6
without turning the protection off, and fills in the two torchaudio names S3PRL 0.4.18
needs that torchaudio >= 2.9 removed (``s3prl_emo.torchaudio_fills``; nothing on <= 2.8).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

DOWNSTREAM_NAME = "emotion_multilabel"
# Modules S3PRL (or a user following S3PRL's layout) may import, and where they live.
FORWARDS = {
    f"s3prl.downstream.{DOWNSTREAM_NAME}": "s3prl_emo.downstream",
    **{
        f"s3prl.downstream.{DOWNSTREAM_NAME}.{sub}": f"s3prl_emo.downstream.{sub}"
        for sub in ("expert", "dataset", "model")
    },
}


def allow_s3prl_checkpoints() -> None:
    """Allow exactly the extra type S3PRL's runner pickles into checkpoints."""
    import argparse

    import torch.serialization

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([argparse.Namespace])


class _ForwardingLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        real = importlib.import_module(self.target)
        module.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
        module.__doc__ = real.__doc__


class S3prlDownstreamFinder(importlib.abc.MetaPathFinder):
    def __init__(self):
        self._checkpoints_allowed = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "s3prl" and not self._checkpoints_allowed:
            self._checkpoints_allowed = True
            try:
                allow_s3prl_checkpoints()
            except ImportError:  # torch missing: s3prl itself will say so
                pass
            from s3prl_emo.torchaudio_fills import fill_missing

            fill_missing()
            return None
        if fullname not in FORWARDS:
            return None
        is_package = fullname.count(".") == 2
        return importlib.util.spec_from_loader(fullname, _ForwardingLoader(FORWARDS[fullname]), is_package=is_package)


def install() -> None:
    if not any(isinstance(f, S3prlDownstreamFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, S3prlDownstreamFinder())
