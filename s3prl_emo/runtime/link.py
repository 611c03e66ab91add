"""Write (or remove) a forwarding package ``<s3prl>/downstream/emotion_multilabel/``.

For S3PRL forks that run where the installed import hook does not apply (a different
interpreter, a frozen environment): the files only re-export ``s3prl_emo.downstream``,
so the code itself stays in this package and upgrades with it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from _s3prl_emo_hook import DOWNSTREAM_NAME, FORWARDS

from .. import __version__
from ..errors import InvalidInputError
from ..runtime.paths import Pathlike

MARKER = "S3PRL_EMO_LINK"


def _target_dir(s3prl_root: Pathlike) -> Path:
    root = Path(s3prl_root)
    if not (root / "downstream" / "runner.py").is_file():
        raise InvalidInputError(
            f"--s3prl-root {root}: no downstream/runner.py there; pass the fork's s3prl/ package "
            "directory (the one holding run_downstream.py and downstream/)"
        )
    return root / "downstream" / DOWNSTREAM_NAME


def _files() -> dict[str, str]:
    files = {}
    for name, target in FORWARDS.items():
        module = name.rsplit(".", 1)[-1]
        filename = "__init__.py" if module == DOWNSTREAM_NAME else f"{module}.py"
        files[filename] = (
            f'"""Forwarding module written by `s3prl-emo link`; remove with `s3prl-emo unlink`."""\n'
            f"from {target} import *  # noqa: F401,F403\n"
        )
    files["expert.py"] += "from s3prl_emo.downstream.expert import DownstreamExpert  # noqa: F401\n"
    files[MARKER] = f"s3prl-emo {__version__}\n"
    return files


def link(s3prl_root: Pathlike) -> Path:
    """Write the forwarding package; refuse to touch a folder this command did not write."""
    target = _target_dir(s3prl_root)
    if target.exists() and not (target / MARKER).is_file():
        raise InvalidInputError(f"{target} exists and was not written by s3prl-emo link; not overwriting it")
    target.mkdir(exist_ok=True)
    for filename, text in _files().items():
        (target / filename).write_text(text)
    return target


def unlink(s3prl_root: Pathlike) -> bool:
    """Remove the forwarding package; False when there was none."""
    target = _target_dir(s3prl_root)
    if not target.exists():
        return False
    if not (target / MARKER).is_file():
        raise InvalidInputError(f"{target} was not written by s3prl-emo link; not removing it")
    shutil.rmtree(target)
    return True
