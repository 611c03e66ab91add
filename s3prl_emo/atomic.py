"""Atomic writes: nothing half-written is ever left where a reader looks.

A folder is staged in a temporary sibling and moved into place when complete
(``staged_dir``); a single file is written to a temporary sibling and renamed over the
target (``write_text_atomically``). Every writer of the package uses one of the two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InvalidInputError

Pathlike = str | os.PathLike


@contextlib.contextmanager
def staged_dir(final: Pathlike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; move it into place only if the block succeeds.

    Nothing half-written is ever left at ``final``: on error the staging folder is removed.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise InvalidInputError(f"{final} already exists; remove it or pass overwrite")
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)


def write_text_atomically(path: Pathlike, text: str) -> None:
    """Write to a temporary sibling, then rename it over ``path``: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
