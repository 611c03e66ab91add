"""A batched run's files: the runner's checkpoint layout, the expert's own writers, tensorboard scalars.

``expert_view`` gives each run a view of its fold's expert with its own head, experiment
folder, best dev loss and dev thresholds, so ``log_records`` writes that run's log,
predict/truth/probs/metrics files and tensorboard scalars as it does under the Runner, and
``state_dict`` is the runner's ``Downstream`` entry. Checkpoints hold what the Runner saves
(``Optimizer``, ``Step``, ``Epoch``, ``Args``, ``Config``, ``Featurizer``, ``Downstream``,
``Scheduler``), so stock ``-m evaluate -e`` and torch.hub read them, plus ``BatchedTrainer``
(the run's sampler order and position, its random state, the training records since the
last log) for a resume that ends where an uninterrupted run would.

Writes are a temporary hidden sibling renamed into place, without fsync: a SIGKILL leaves
the page cache to the kernel, so a renamed file is complete; only a power loss could lose
the last save, after which the run resumes from the one before.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import io
import math
import os
import socket
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn as nn

from ...runtime.guards import open_new

TRAINER_KEY = "BatchedTrainer"


def expert_view(expert: nn.Module, expdir: Path, head: nn.Module) -> nn.Module:
    """``expert`` for one run: shares its data and loss, owns head, folder, best score and thresholds."""
    view = copy.copy(expert)
    view._modules = dict(expert._modules)
    view._buffers = dict(expert._buffers)
    view._parameters = dict(expert._parameters)
    view.head = head
    view.best_score = torch.full((1,), math.inf)
    view.expdir = Path(expdir)
    view.dev_thresholds = None
    return view


class ScalarLog:
    """A run's tensorboard scalars: the ``events.out.tfevents.*`` file and records tensorboardX's
    ``SummaryWriter`` writes, written by the calling thread and closed without fsync.

    ``SummaryWriter`` hands every event to two threads of its own (a multiprocessing queue's
    feeder and a logger): with dozens of runs in one process, dozens of threads wake at each
    scalar and take the interpreter lock from the training loop.

    Examples:
        >>> log = ScalarLog(Path("exp"))  # doctest: +SKIP
        >>> log.add_scalar("emotion_multilabel-fold1/dev-loss", 0.61, global_step=50)  # doctest: +SKIP
        >>> log.close()  # doctest: +SKIP
    """

    def __init__(self, logdir: Path):
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.record_writer import RecordWriter

        Path(logdir).mkdir(parents=True, exist_ok=True)
        # tensorboardX's EventsWriter: this file name, and a first record naming the format
        name = f"events.out.tfevents.{str(time.time())[:10]}.{socket.gethostname()}"
        self._records = RecordWriter(str(Path(logdir) / name))
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar

        event = Event(summary=scalar(tag, scalar_value), wall_time=time.time())
        if global_step is not None:
            event.step = int(global_step)
        self._write(event)

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def close(self) -> None:
        self._records.close()


def _write_atomic(path: Path, data: bytes) -> None:
    """``data`` written aside, then renamed into place (no fsync: see the module docstring)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open_new(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def serialised(state: dict) -> bytes:
    """``torch.save(state)``'s bytes: serialised once however many names a save writes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write_checkpoints(expdir: Path, data: bytes, names: list[str], max_keep: int, best: tuple | None = None) -> None:
    """One save of a run: a serialised state written under each of ``names``.

    Before a ``states-N.ckpt``, the oldest states make room (``max_keep``). With ``best``
    (``(fold, splits, step)``), this step's evaluation files are kept as dev-best's
    (``snapshot_best_scores``), tied to the checkpoint by the SHA-256 of the bytes written.

    Examples:
        >>> data = serialised({"Step": 50})
        >>> write_checkpoints(Path("exp"), data, ["dev-best.ckpt", "states-50.ckpt"], 2)  # doctest: +SKIP
    """
    if any(name.startswith("states-") for name in names):
        make_room(expdir, max_keep)
    for name in names:
        _write_atomic(expdir / name, data)
    if best is not None:
        snapshot_best_scores(expdir, *best, digest=hashlib.sha256(data).hexdigest())


def make_room(expdir: Path, max_keep: int) -> None:
    """The Runner's ``check_ckpt_num``: remove the oldest states so that one more makes ``max_keep``."""
    paths = glob.glob(f"{expdir}/states-*.ckpt")
    if len(paths) >= max_keep:
        paths = sorted(paths, key=lambda p: int(p.split("-")[-1].split(".")[0]))
        for path in paths[: len(paths) - max_keep + 1]:
            os.remove(path)


def optimizer_state(optimizer: torch.optim.Optimizer, params: dict[str, nn.Parameter], state: dict | None) -> dict:
    """The run's own optimizer's ``state_dict`` (torch.optim's format) holding ``state``, its Adam state by name.

    The stacked update keeps the state; the run's optimizer (built by S3PRL's factory, its
    ``param_groups`` moved by its scheduler) holds it only while its ``state_dict`` is taken.

    Examples:
        >>> p = nn.Parameter(torch.zeros(2)); opt = torch.optim.AdamW([p])
        >>> state = {"w": {"step": torch.tensor(1.0), "exp_avg": torch.ones(2), "exp_avg_sq": torch.ones(2)}}
        >>> sorted(optimizer_state(opt, {"w": p}, state)["state"][0])
        ['exp_avg', 'exp_avg_sq', 'step']
    """
    optimizer.state = defaultdict(dict)
    for name, p in params.items():
        if state and name in state:
            optimizer.state[p] = state[name]
    try:
        return optimizer.state_dict()
    finally:
        optimizer.state = defaultdict(dict)


def load_optimizer_state(optimizer: torch.optim.Optimizer, params: dict[str, nn.Parameter], saved: dict) -> dict:
    """Load a checkpoint's ``Optimizer`` into the run's optimizer (its lr, its groups); its Adam state by name."""
    optimizer.load_state_dict(saved)
    state = {name: dict(optimizer.state[p]) for name, p in params.items() if p in optimizer.state}
    optimizer.state = defaultdict(dict)
    return state


BEST_SCORES = "dev-best-scores"
BEST_SOURCE = "source.json"
SCORE_FILES = ("metrics.json", "predict.txt", "truth.txt", "probs.csv")


def snapshot_best_scores(expdir: Path, fold: str, splits: list[str], step: int, digest: str | None = None) -> None:
    """Keep the evaluation files of the step that wrote ``dev-best.ckpt`` in ``EXPDIR/dev-best-scores``.

    The expert rewrites ``{split}_{fold}_*`` at every evaluation; the files taken right after
    dev-best is saved (hard links, as the expert replaces a file by renaming a new one over
    it) are what ``-m evaluate -e dev-best.ckpt`` writes (the same head, the same dev
    thresholds), so a sweep can record the run without a stock evaluation. ``source.json``,
    written last, names the checkpoint's step and SHA-256: a snapshot without it, or of another
    checkpoint (a kill between the two writes), is not used. ``digest`` is the checkpoint's
    SHA-256 when the caller has it (else the file is read).

    Examples:
        >>> snapshot_best_scores(Path("exp"), "fold1", ["dev", "test"], 250)  # doctest: +SKIP
    """
    import shutil

    from ...runtime.atomic import write_json_atomically

    folder = Path(expdir) / BEST_SCORES
    folder.mkdir(exist_ok=True)
    (folder / BEST_SOURCE).unlink(missing_ok=True)
    copied = []
    for split in splits:
        for suffix in SCORE_FILES:
            name = f"{split}_{fold}_{suffix}"
            source = Path(expdir) / name
            if not source.is_file():
                continue
            target = folder / name
            # No rename over the old file (ext4 flushes a file renamed over another): source.json,
            # removed first and written last, vouches for the whole set.
            target.unlink(missing_ok=True)
            try:  # the expert replaces its files by renaming, never in place: a link keeps this step's
                os.link(source, target)
            except OSError:  # no hard links on this file system: a copy
                shutil.copyfile(source, target)
            copied.append(name)
    if digest is None:
        with open(Path(expdir) / "dev-best.ckpt", "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    write_json_atomically(folder / BEST_SOURCE, {"step": int(step), "sha256": digest, "files": copied})
