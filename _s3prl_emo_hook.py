"""Lets S3PRL's own runner find the ``emotion_multilabel`` downstream.

Installed with the package as ``s3prl_emo.pth``, so it runs at interpreter start: it adds
one meta-path finder and imports nothing heavy. S3PRL looks a downstream up as
``s3prl.downstream.<name>.expert``; the finder answers those names with forwarding modules
over ``s3prl_emo.downstream``, so no file is copied into s3prl. When s3prl is first
imported, it also allows ``argparse.Namespace`` (the one non-tensor type S3PRL
checkpoints hold) in torch's weights-only unpickler, so ``-e ckpt`` works on torch >= 2.6
without turning the protection off, and fills in the two torchaudio names S3PRL 0.4.18
needs that torchaudio >= 2.9 removed (``s3prl_emo.runtime.torchaudio_fills``; nothing on <= 2.8).

Two more hands on S3PRL's runner, both in ``s3prl_emo.runtime.runner_guard``: when
``s3prl.downstream.runner`` is imported, its checkpoint saves become atomic, its loads
weights-only, and a run resumed from a checkpoint builds only an upstream that
``s3prl_emo.runtime.checkpoints`` allows; when ``python -m s3prl.run_downstream`` starts, its ``-e``
checkpoint is checked (truncated, unsafe upstream, wrong types, NaN weights), a training
takes the experiment lock, and a checkpoint's recorded experiment folder is replaced by the
folder that holds it, before S3PRL writes anything.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

from s3prl_emo.downstream import NAME as DOWNSTREAM_NAME  # light: the package imports nothing at start

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


class _PatchingLoader(importlib.abc.Loader):
    """The real loader of a module, then ``patch(module)``."""

    def __init__(self, loader, patch):
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)


def _patch_runner(module) -> None:
    from s3prl_emo.runtime.runner_guard import patch_runner

    patch_runner(module)


class S3prlDownstreamFinder(importlib.abc.MetaPathFinder):
    def __init__(self):
        self._checkpoints_allowed = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "s3prl" and not self._checkpoints_allowed:
            self._checkpoints_allowed = True
            with contextlib.suppress(ImportError):  # torch missing: s3prl itself will say so
                allow_s3prl_checkpoints()
            from s3prl_emo.runtime.torchaudio_fills import fill_missing

            fill_missing()
            return None
        if fullname == "s3prl.run_downstream" and sys.argv[:1] == ["-m"]:
            # ``python -m s3prl.run_downstream``: runpy is locating the script it will run.
            from s3prl_emo.runtime.runner_guard import run_preflight

            run_preflight()
            return None
        if fullname == "s3prl.downstream.runner":
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, _patch_runner)
            return spec
        if fullname not in FORWARDS:
            return None
        is_package = fullname.count(".") == 2
        return importlib.util.spec_from_loader(fullname, _ForwardingLoader(FORWARDS[fullname]), is_package=is_package)


def install() -> None:
    if not any(isinstance(f, S3prlDownstreamFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, S3prlDownstreamFinder())
