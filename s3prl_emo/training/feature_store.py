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
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = 1
DTYPES = {"float16": np.float16, "float32": np.float32}
# Entries per shard: a kill loses at most one shard's worth of extraction.
SHARD_ENTRIES = int(os.environ.get("S3PRL_EMO_SHARD_ENTRIES", "256"))
CACHE_ENV = "S3PRL_EMO_FEATURE_CACHE"


def digest(data: bytes | str) -> str:
    return hashlib.blake2b(data.encode() if isinstance(data, str) else data, digest_size=16).hexdigest()


def json_key(value: object) -> str:
    return digest(json.dumps(value, sort_keys=True, default=str))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def file_hashes(paths: list[Path], cache_file: Path | None) -> list[str]:
    """Content hash of each file, remembered by (path, size, mtime) so unchanged files are not re-read."""
    known = {}
    if cache_file is not None and cache_file.is_file():
        try:
            known = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            known = {}
    out, changed = [], False
    for path in paths:
        stat = path.stat()
        stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if stamp not in known:
            known[stamp] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            changed = True
        out.append(known[stamp])
    if changed and cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_file, json.dumps(known))
    return out


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively; wait (and say so) while another job holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            logger.info("feature store %s: another job is building it (%s); waiting", folder, handle.read().strip())
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
        """The store at ``root`` (created with ``meta`` when given and absent); None if absent.

        ``repair`` (only under the lock) removes unusable shards and leftovers of killed writers.
        """
        root = Path(root)
        meta_file = root / "meta.json"
        if meta_file.is_file():
            try:
                stored = json.loads(meta_file.read_text())
            except ValueError:
                stored = None
            if meta is not None and stored != meta:
                raise RuntimeError(f"{root}: meta.json does not match its key (edited by hand?)")
            meta = stored
        elif meta is not None:
            root.mkdir(parents=True, exist_ok=True)
            write_atomic(meta_file, json.dumps(meta, indent=2, sort_keys=True))
        else:
            return None
        store = cls(root, meta)
        store._load_index(repair)
        return store

    def _load_index(self, repair: bool) -> None:
        if repair:
            for leftover in self.root.glob(".*.tmp"):
                logger.info("feature store %s: removing %s, left by an interrupted build", self.root, leftover.name)
                leftover.unlink(missing_ok=True)
        for index_file in sorted(self.root.glob("shard-*.json")):
            problem = self._check_shard(index_file)
            if problem is None:
                shard = json.loads(index_file.read_text())
                for key, start, rows in shard["entries"]:
                    self.index[key] = (index_file.stem, int(start), int(rows))
                continue
            logger.warning(
                "feature store %s: %s is %s: never read, its files are extracted again",
                self.root,
                index_file.stem,
                problem,
            )
            if repair:
                index_file.unlink(missing_ok=True)
                index_file.with_suffix(".bin").unlink(missing_ok=True)
        if repair:
            for data in self.root.glob("shard-*.bin"):
                if not data.with_suffix(".json").exists():  # killed between the two renames
                    data.unlink(missing_ok=True)

    def _check_shard(self, index_file: Path) -> str | None:
        try:
            shard = json.loads(index_file.read_text())
        except (OSError, ValueError):
            return "unreadable"
        data = index_file.with_suffix(".bin")
        if not data.is_file():
            return "missing its data file"
        if data.stat().st_size != shard["nbytes"]:
            return f"truncated ({data.stat().st_size} of {shard['nbytes']} bytes)"
        hasher = hashlib.blake2b(digest_size=16)
        with open(data, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                hasher.update(block)
        if hasher.hexdigest() != shard["blake2b"]:
            return "corrupt (digest mismatch)"
        return None

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
        added, batch = 0, []
        for key, array in entries:
            batch.append((key, array))
            if len(batch) == SHARD_ENTRIES:
                added += self._write_shard(batch)
                batch = []
        if batch:
            added += self._write_shard(batch)
        return added

    def _write_shard(self, batch: list[tuple[str, np.ndarray]]) -> int:
        name = f"shard-{uuid.uuid4().hex[:12]}"
        data_tmp = self.root / f".{name}.bin.{os.getpid()}.tmp"
        hasher, entries, start = hashlib.blake2b(digest_size=16), [], 0
        with open(data_tmp, "wb") as handle:
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
