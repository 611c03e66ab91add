"""Atomic writes: nothing half-written is ever left where a reader looks.

A folder is staged in a temporary sibling and moved into place when complete
(``staged_dir``); a single file is written to a temporary sibling and renamed into place
(``write_text_atomically``). Output folders of commands are staged this way
(``guards.staged_output``), and files read back by later runs (plans, states, results,
stores' indexes) are written atomically; the files written inside a staging folder, and
binary files with their own writers (checkpoints, store shards), need neither.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidInputError
from .paths import Pathlike
from .runlock import process_alive


@contextlib.contextmanager
def staged_dir(final: Pathlike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``final``; move it into place only if the block succeeds.

    Nothing half-written is ever left at ``final``: on error the staging folder is removed,
    and staging folders of killed runs (whose process is gone) are removed by the next run.
    ``overwrite`` replaces a folder only, never a file or a symbolic link.
    """
    final = Path(final)
    if os.path.lexists(final):
        if not overwrite:
            raise InvalidInputError(f"{final} already exists; remove it or pass overwrite")
        if final.is_symlink() or not final.is_dir():
            kind = "a symbolic link" if final.is_symlink() else "a file"
            raise InvalidInputError(f"{final} is {kind}, not a folder: overwrite replaces only a folder; remove it")
    if os.path.lexists(final.parent) and not final.parent.is_dir():
        raise InvalidInputError(f"{final.parent} is not a folder; the output goes inside one")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_stages(final)
    owner = f"{os.getpid()}@{socket.gethostname()}"
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{owner}-", suffix=".partial", dir=final.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if final.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.{owner}-", suffix=".partial", dir=final.parent))
        os.replace(final, old)  # renames are quick: ``final`` is missing only between the two
        os.replace(stage, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, final)


def remove_stale_stages(final: Pathlike) -> list[Path]:
    """Remove ``.<NAME>.<pid>@<host>-*.partial`` siblings of ``final`` whose process is gone
    (and old unnamed ones); returns what was removed."""
    final = Path(final)
    removed = []
    prefix = f".{final.name}."
    for path in final.parent.glob(f".{glob.escape(final.name)}.*.partial"):
        owner = path.name[len(prefix) : -len(".partial")].rsplit("-", 1)[0]
        pid, _, host = owner.partition("@")
        if pid.isdigit() and host == socket.gethostname() and process_alive(int(pid)):
            continue
        if pid.isdigit() and host and host != socket.gethostname():
            continue  # another machine's run: cannot tell
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def write_text_atomically(path: Pathlike, text: str, *, replace: bool = True) -> None:
    """Write to a temporary sibling, then rename it into place: never a half-written file.

    Args:
        path: The file to (re)write.
        text: Its whole new content.
        replace: Rename the new file over the old one, so that a reader always finds one.
            ``False`` removes the old file first: for an instant a reader finds none (never a
            half-written one). ext4 starts writing a file back when it is renamed over another
            (its ``auto_da_alloc`` safeguard), which makes a rewrite several times slower: too
            slow for the files every evaluation rewrites while nothing else reads them.

    Examples:
        >>> write_text_atomically("exp/dev_fold1_metrics.json", "{}", replace=False)  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if not replace:
            path.unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: Pathlike, data: object) -> None:
    """``write_text_atomically`` of ``data`` as strict JSON (NaN or infinity is refused, never written)."""
    write_text_atomically(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
