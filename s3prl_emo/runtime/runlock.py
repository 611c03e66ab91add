"""One training per experiment folder: a lock file holding the owner's PID.

Taken before anything is written, released when the process exits; a lock whose process is
gone (killed, crashed) is stale and broken by the next run. The lock is created only where
nothing is (``guards.create_exclusive``) and read without following links: a symbolic link,
FIFO or other non-file at its name is no lock, so it is removed (never its target).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import stat
import time
from pathlib import Path

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

LOCK_NAME = ".s3prl-emo.lock"
_held: set[Path] = set()
_created: set[Path] = set()  # experiment folders that acquire() made: removed again if left empty


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody has reaped yet is a zombie: it runs nothing
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _holder(path: Path) -> dict | None:
    """The lock's owner, or None when the lock is unreadable, not a regular file, or a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        holder = json.loads(os.read(fd, 4096))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:  # 0 and -1 mean process groups
        return None
    return holder


def _is_stale(holder: dict | None) -> bool:
    if holder is None:  # unreadable: a writer killed between create and write
        return True
    if holder.get("host") != socket.gethostname():
        return False  # cannot tell from here
    return not process_alive(holder["pid"])


def acquire(expdir: str | os.PathLike) -> Path:
    """Lock ``expdir`` for this process (re-entrant); ``InvalidInputError`` if a live run holds it."""
    from .guards import create_exclusive

    expdir = Path(expdir)
    path = expdir / LOCK_NAME
    if path in _held:
        return path
    if not expdir.exists():
        expdir.mkdir(parents=True, exist_ok=True)
        _created.add(expdir)
    for _ in range(3):
        try:
            fd = create_exclusive(path)
        except FileExistsError:
            holder = _holder(path)
            if holder and holder["pid"] == os.getpid() and holder.get("host") == socket.gethostname():
                _held.add(path)
                return path
            if not _is_stale(holder):
                raise InvalidInputError(
                    f"{expdir}: another training (PID {holder['pid']} on {holder.get('host')}, started "
                    f"{holder.get('started', '?')}) is using this experiment folder; wait for it to end or use "
                    f"another -p. If no such run exists, delete {path}"
                ) from None
            if path.is_dir() and not path.is_symlink():
                raise InvalidInputError(f"{path}: a folder where the experiment lock goes; remove it") from None
            logger.warning("%s: breaking the stale or unreadable lock of a run that is gone (%s)", path, holder)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            json.dump(owner, handle)
        _held.add(path)
        atexit.register(release, path)
        return path
    raise InvalidInputError(f"{path}: could not take the experiment lock (other runs keep taking it)")


def release(path: Path) -> None:
    """Remove the lock if this process holds it (it may already be gone with its folder)."""
    _held.discard(path)
    holder = _holder(path)
    if holder and holder["pid"] == os.getpid():
        path.unlink(missing_ok=True)
    if path.parent in _created:
        _created.discard(path.parent)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only if nothing else was written there
