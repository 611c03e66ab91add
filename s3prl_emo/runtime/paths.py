"""Paths: the type every path argument accepts, and the data folders shipped with the package
(``data_splits``, ``downstream_configs``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
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


def resolve_all(paths: Iterable[Pathlike]) -> list[Path]:
    """``Path(p).resolve()`` of each path, each folder resolved once.

    A path whose last part is not a symbolic link resolves to its folder's resolution joined
    with its name: one ``lstat`` per file instead of one per part of its path, which counts
    for the thousands of audio files of one folder that cache keys name.

    Examples:
        >>> resolve_all(["/tmp/a.wav", "b.wav"]) == [Path("/tmp/a.wav").resolve(), Path("b.wav").resolve()]
        True
    """
    folders: dict[Path, Path] = {}
    out = []
    for path in map(Path, paths):
        if path.name in ("", "..") or path.is_symlink():
            out.append(path.resolve())
            continue
        if path.parent not in folders:
            folders[path.parent] = path.parent.resolve()
        out.append(folders[path.parent] / path.name)
    return out


def file_fingerprints(paths: list[Path]) -> list[list]:
    """``[resolved path, size, modification time in ns]`` of each file: a cache key that changes
    with the file (folders resolved once, as ``resolve_all``).

    Examples:
        >>> file_fingerprints([Path("/")])[0][0]
        '/'
    """
    stats = [path.stat() for path in paths]
    return [[str(r), s.st_size, s.st_mtime_ns] for r, s in zip(resolve_all(paths), stats, strict=True)]
