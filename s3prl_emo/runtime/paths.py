"""Paths: the type every path argument accepts, and the data folders shipped with the package
(``data_splits``, ``downstream_configs``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CorpusLayoutError

Pathlike = str | os.PathLike
"""A path as a string or any ``os.PathLike``; functions turn it into a ``Path`` at the boundary."""


def resource_dir(name: str) -> Path:
    """The folder inside the installed package, else the one in the source checkout."""
    package = Path(__file__).resolve().parents[1]  # s3prl_emo/
    packaged = package / name
    if packaged.is_dir():
        return packaged
    checkout = package.parent / name
    if checkout.is_dir():
        return checkout
    raise CorpusLayoutError(f"no {name} folder at {packaged} or {checkout}; reinstall s3prl-emo (the build copies it)")
