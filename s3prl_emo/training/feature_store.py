"""Upstream features on disk, computed once per audio file and shared by runs.

A store is a folder ``<cache>/<key>/<stats>/`` where ``key`` hashes everything that
changes the features except the waveform statistics (upstream name and weights, s3prl
version, feature/layer selection and normalisation, store kind and dtype, crop length, the
audio reader) and ``stats`` hashes the train-split mean and std the waveforms were
normalised with. Inside, entries are keyed by the audio file's content hash, so editing one
file re-extracts exactly that file.

Entries live in immutable shards: ``shard-*.bin`` (rows x layers x dim, fp16 or fp32,
memory-mapped when read) and ``shard-*.json`` (where each entry starts, how many rows, the
byte size and a BLAKE2 digest of the .bin). A shard is written under a temporary name,
synced and renamed, the .bin before its .json: a shard without its .json, of the wrong
size or with the wrong digest is never read (it is removed and its files re-extracted).
Builders take an exclusive ``flock`` on ``<cache>/<key>/.lock`` (released by the kernel
even on SIGKILL), so two jobs never write the same store: the second waits, then finds the
entries present.

Everything in a store is read as untrusted: ``meta.json`` must hold positive whole layer and
dimension counts, a known dtype and finite waveform statistics (``check_meta``); a shard
index must describe its data file exactly (whole entries laid end to end, non-negative
offsets, no row past the data) and the data must be finite (``check_index``). A store or
shard that fails is named in a warning and never read; under the lock it is removed and
extracted again. A symbolic link where a store file, shard or lock should be is never
followed: it is removed (its target untouched) or ignored.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..runtime.guards import create_exclusive_opener, finite_number
from ..runtime.paths import file_fingerprints

logger = logging.getLogger(__name__)

FORMAT = 1
DTYPES = {"float16": np.float16, "float32": np.float32}
SHARD_ENTRIES_ENV = "S3PRL_EMO_SHARD_ENTRIES"
CACHE_ENV = "S3PRL_EMO_FEATURE_CACHE"


def shard_entries() -> int:
    """Entries per shard: ``$S3PRL_EMO_SHARD_ENTRIES`` when it is a whole number >= 1, else 256.

    A kill loses at most one shard's worth of extraction.

    Examples:
        >>> shard_entries() >= 1
        True
    """
    text = os.environ.get(SHARD_ENTRIES_ENV, "256")
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    logger.warning("%s=%r is not a whole number >= 1: using 256 entries per shard", SHARD_ENTRIES_ENV, text)
    return 256


def digest(data: bytes | str) -> str:
    return hashlib.blake2b(data.encode() if isinstance(data, str) else data, digest_size=16).hexdigest()


def json_key(value: object) -> str:
    return digest(json.dumps(value, sort_keys=True, default=str))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a new hidden sibling (never an existing file or link), sync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", opener=create_exclusive_opener) as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> object | None:
    """The JSON value of ``path``, or None when it is absent, not a regular file (a symbolic link,
    a FIFO), unreadable or not JSON: callers treat that as "not there" and rebuild.

    Examples:
        >>> read_json(Path("/nonexistent/meta.json")) is None
        True
    """
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def file_hashes(paths: list[Path], cache_file: Path | None) -> list[str]:
    """Content hash of each file, remembered by (path, size, mtime) so unchanged files are not re-read."""
    known = read_json(cache_file) if cache_file is not None else None
    if not isinstance(known, dict) or not all(isinstance(v, str) and v for v in known.values()):
        if known is not None:
            logger.warning("%s: not a map of file stamps to content hashes; hashing every file again", cache_file)
        known = {}
    out, changed = [], False
    for path, fingerprint in zip(paths, file_fingerprints(paths), strict=True):
        stamp = "|".join(map(str, fingerprint))
        if stamp not in known:
            known[stamp] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            changed = True
        out.append(known[stamp])
    if changed and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_file, json.dumps(known))
    return out


def _open_lock(path: Path) -> int:
    """``path`` opened for locking, as a regular file with one name that this open did not reach
    through a link. Anything else there (a symbolic link, a hard link to another file, a FIFO) was
    not made by a builder: it is removed (a link's target is never touched) and the lock made anew."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as err:  # ELOOP: a symbolic link; ENXIO: a socket; EISDIR: a folder
            if not os.path.lexists(path) or (path.is_dir() and not path.is_symlink()):
                raise
            logger.warning(
                "feature store lock %s is not a plain file (%s): removing it (what it points to is left as it is)",
                path,
                err,
            )
            path.unlink(missing_ok=True)
            continue
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            os.set_blocking(fd, True)
            return fd
        os.close(fd)
        logger.warning(
            "feature store lock %s is not a plain file with one name: removing it (what it points to is left as it is)",
            path,
        )
        path.unlink(missing_ok=True)
    raise OSError(f"{path}: could not create the feature store lock (something keeps replacing it)")


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively; wait (and say so) while another job holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with os.fdopen(_open_lock(folder / ".lock"), "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            logger.info("feature store %s: another job is building it (%s); waiting", folder, handle.read(200).strip())
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _count(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_meta(meta: object) -> str | None:
    """What is wrong with a store's ``meta.json`` value, or None when a reader can trust it.

    Examples:
        >>> check_meta({"layers": 2, "dim": 3, "dtype": "float32", "wav_mean": 0.0, "wav_std": 0.1}) is None
        True
        >>> check_meta({"layers": 2, "dim": -3, "dtype": "float32"})
        'dim is -3, not a whole number >= 1'
    """
    if not isinstance(meta, dict):
        return f"not a JSON object ({type(meta).__name__})"
    for key in ("layers", "dim"):
        if not _count(meta.get(key), 1):
            return f"{key} is {meta.get(key)!r}, not a whole number >= 1"
    if meta.get("dtype") not in DTYPES:
        return f"dtype is {meta.get('dtype')!r}, not one of {sorted(DTYPES)}"
    for key, low in (("wav_mean", -math.inf), ("wav_std", 0.0)):
        if key not in meta:
            continue
        value = meta[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= low:
            return f"{key} is {value!r}, not a finite number" + (" > 0" if low == 0.0 else "")
    return None


def check_index(shard: object, row_bytes: int) -> str | None:
    """What is wrong with a shard's index, or None when it describes its data exactly.

    A writer lays the entries end to end from offset 0 (``[key, start, rows]``, rows >= 1)
    and records the data's byte size: anything else would slice past the data or into
    another entry.

    Examples:
        >>> check_index({"format": 1, "entries": [["a", 0, 2], ["b", 2, 1]], "nbytes": 36, "blake2b": "0" * 32}, 12)
        >>> check_index({"format": 1, "entries": [["a", -1, 2]], "nbytes": 24, "blake2b": "0" * 32}, 12)
        "entry 0 ('a'): starts at row -1, expected 0"
    """
    if not isinstance(shard, dict):
        return f"not a JSON object ({type(shard).__name__})"
    if shard.get("format") != FORMAT:
        return f"format {shard.get('format')!r}, expected {FORMAT}"
    digest_ = shard.get("blake2b")
    if not isinstance(digest_, str) or len(digest_) != 32:
        return f"blake2b {digest_!r} is not a 32-digit digest"
    entries, nbytes = shard.get("entries"), shard.get("nbytes")
    if not isinstance(entries, list) or not entries:
        return "entries is not a non-empty list"
    if not _count(nbytes, 0):
        return f"nbytes {nbytes!r} is not a whole number >= 0"
    seen, row = set(), 0
    for number, entry in enumerate(entries):
        if not isinstance(entry, list) or len(entry) != 3:
            return f"entry {number} is {entry!r}, not [key, start, rows]"
        key, start, rows = entry
        if not isinstance(key, str) or not key or key in seen:
            return f"entry {number}: key {key!r} is not a new non-empty string"
        if not _count(start, 0) or start != row:
            return f"entry {number} ({key!r}): starts at row {start!r}, expected {row}"
        if not _count(rows, 1):
            return f"entry {number} ({key!r}): {rows!r} rows, expected a whole number >= 1"
        seen.add(key)
        row += rows
    if row * row_bytes != nbytes:
        return f"its entries hold {row} rows ({row * row_bytes} bytes), its data {nbytes} bytes"
    return None


class FeatureStore:
    """One store folder: entries (rows, layers, dim) by content hash; see the module docstring."""

    def __init__(self, root: Path, meta: dict):
        self.root = Path(root)
        self.meta = meta
        self.layers, self.dim = int(meta["layers"]), int(meta["dim"])
        self.dtype = np.dtype(DTYPES[meta["dtype"]])
        self.index: dict[str, tuple[str, int, int]] = {}
        self._maps: dict[str, np.memmap] = {}

    @classmethod
    def open(cls, root: Path, meta: dict | None = None, *, repair: bool = False) -> FeatureStore | None:
        """The store at ``root`` (created with ``meta`` when given and absent); None if absent or unusable.

        ``meta.json`` that fails ``check_meta``, or differs from ``meta``, is named in a warning:
        with ``repair`` and ``meta`` the store is emptied and made anew (its files are extracted
        again), otherwise None. ``repair`` (only under the lock) also removes unusable shards and
        leftovers of killed writers.
        """
        root = Path(root)
        meta_file = root / "meta.json"
        present = os.path.lexists(meta_file)
        stored = read_json(meta_file) if present else None
        problem = check_meta(stored) if present else None
        if problem is None and present and meta is not None and stored != meta:
            problem = "does not match its key (edited by hand, or another store's)"
        if present and problem is None:
            meta = stored
        elif present:
            why = (
                "a symbolic link"
                if meta_file.is_symlink()
                else "unreadable"
                if stored is None
                else f"wrong ({problem})"
            )
            logger.warning("feature store %s: meta.json is %s: never read, its files are extracted again", root, why)
            if not (repair and meta is not None):
                return None
            _empty(root)
        if meta is None:
            return None
        if not present or problem is not None:
            problem = check_meta(meta)
            if problem is not None:
                raise ValueError(f"feature store {root}: its own meta {problem}")
            root.mkdir(parents=True, exist_ok=True)
            write_atomic(meta_file, json.dumps(meta, indent=2, sort_keys=True))
        store = cls(root, meta)
        store._load_index(repair)
        return store

    def _load_index(self, repair: bool) -> None:
        if repair:
            for leftover in self.root.glob(".*.tmp"):
                logger.info("feature store %s: removing %s, left by an interrupted build", self.root, leftover.name)
                _remove(leftover)
        for index_file in sorted(self.root.glob("shard-*.json")):
            problem, shard = self._check_shard(index_file)
            if problem is None:
                for key, start, rows in shard["entries"]:
                    self.index[key] = (index_file.stem, start, rows)
                continue
            logger.warning(
                "feature store %s: %s is %s: never read, its files are extracted again",
                self.root,
                index_file.stem,
                problem,
            )
            if repair:
                _remove(index_file)
                _remove(index_file.with_suffix(".bin"))
        if repair:
            for data in self.root.glob("shard-*.bin"):
                if not data.with_suffix(".json").exists():  # killed between the two renames
                    _remove(data)

    def _check_shard(self, index_file: Path) -> tuple[str | None, dict | None]:
        data = index_file.with_suffix(".bin")
        if index_file.is_symlink() or data.is_symlink():
            return "a symbolic link", None
        shard = read_json(index_file)
        if shard is None:
            return "unreadable", None
        row_bytes = self.dtype.itemsize * self.layers * self.dim
        problem = check_index(shard, row_bytes)
        if problem is not None:
            return f"an inconsistent index ({problem})", None
        if not data.is_file():
            return "missing its data file", None
        if data.stat().st_size != shard["nbytes"]:
            return f"truncated ({data.stat().st_size} of {shard['nbytes']} bytes)", None
        hasher, finite = hashlib.blake2b(digest_size=16), True
        with open(data, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                hasher.update(block)
                finite = finite and bool(np.isfinite(np.frombuffer(block, dtype=self.dtype)).all())
        if hasher.hexdigest() != shard["blake2b"]:
            return "corrupt (digest mismatch)", None
        if not finite:
            return "holding NaN or infinite features", None
        return None, shard

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def missing(self, keys: Iterable[str]) -> list[str]:
        return sorted({k for k in keys if k not in self.index})

    def get(self, key: str) -> np.ndarray:
        """Entry ``key`` as float32, shape (rows, layers, dim)."""
        shard, start, rows = self.index[key]
        data = self._maps.get(shard)
        if data is None:
            path = self.root / f"{shard}.bin"
            total = path.stat().st_size // (self.dtype.itemsize * self.layers * self.dim)
            data = np.memmap(path, dtype=self.dtype, mode="r", shape=(total, self.layers, self.dim))
            self._maps[shard] = data
        return np.asarray(data[start : start + rows], dtype=np.float32)

    def add(self, entries: Iterable[tuple[str, np.ndarray]]) -> int:
        """Write ``(key, array(rows, layers, dim))`` pairs in shards; call under ``exclusive``."""
        added, batch, per_shard = 0, [], shard_entries()
        for key, array in entries:
            batch.append((key, array))
            if len(batch) == per_shard:
                added += self._write_shard(batch)
                batch = []
        if batch:
            added += self._write_shard(batch)
        return added

    def _write_shard(self, batch: list[tuple[str, np.ndarray]]) -> int:
        name = f"shard-{uuid.uuid4().hex[:12]}"
        data_tmp = self.root / f".{name}.bin.{os.getpid()}.tmp"
        hasher, entries, start = hashlib.blake2b(digest_size=16), [], 0
        with open(data_tmp, "wb", opener=create_exclusive_opener) as handle:
            for key, array in batch:
                if array.ndim != 3 or array.shape[1:] != (self.layers, self.dim):
                    raise ValueError(f"entry {key}: shape {array.shape}, expected (rows, {self.layers}, {self.dim})")
                block = np.ascontiguousarray(array, dtype=self.dtype).tobytes()
                handle.write(block)
                hasher.update(block)
                entries.append([key, start, int(array.shape[0])])
                start += int(array.shape[0])
            handle.flush()
            os.fsync(handle.fileno())
        nbytes = data_tmp.stat().st_size
        os.replace(data_tmp, self.root / f"{name}.bin")
        shard = {"format": FORMAT, "entries": entries, "nbytes": nbytes, "blake2b": hasher.hexdigest()}
        write_atomic(self.root / f"{name}.json", json.dumps(shard))
        for key, first, rows in entries:
            self.index[key] = (name, first, rows)
        return len(entries)

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("shard-*.bin"))


def _remove(path: Path) -> None:
    """Remove a file or a link (never its target); leave a folder that has a store file's name."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)


def _empty(root: Path) -> None:
    """Remove a store's own files (meta, shards, leftovers), nothing else: it is built again."""
    for pattern in ("meta.json", "shard-*.json", "shard-*.bin", ".*.tmp"):
        for path in root.glob(pattern):
            _remove(path)


STORE_KINDS = ("auto", "pooled", "sequence")


@dataclass
class StoreOptions:
    """How ``s3prl-emo train`` stores features; the command line takes its defaults from here."""

    cache_dir: str | None = None
    store: str = "auto"  # auto | pooled | sequence
    dtype: str = "float16"  # sequence store; pooled entries are always float32
    budget_gb: float = 50.0
    tolerance: float = 1e-4

    def __post_init__(self):
        if self.store not in STORE_KINDS:
            raise InvalidInputError(f"--store {self.store!r}: expected auto, pooled or sequence")
        if self.dtype not in DTYPES:
            raise InvalidInputError(f"--store-dtype {self.dtype!r}: expected one of {sorted(DTYPES)}")
        self.budget_gb = finite_number(self.budget_gb, where="--cache-budget-gb", low=0)
        self.tolerance = finite_number(self.tolerance, where="--invariance-tolerance", low=0)
