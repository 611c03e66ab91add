"""What the import hook changes in S3PRL's runner: safe ``-e``, atomic checkpoints, one run per folder.

S3PRL's ``run_downstream.py -e CKPT`` takes ``upstream`` and ``upstream_ckpt`` from the
checkpoint's ``Args``. The hook (``_s3prl_emo_hook``) applies, for every downstream:

* ``patch_runner``: in ``s3prl.downstream.runner`` only, ``torch.save`` becomes
  ``s3prl_emo.runtime.checkpoints.save_checkpoint`` (a kill never leaves a truncated checkpoint) and
  ``torch.load`` becomes ``load_checkpoint`` (weights-only, clear errors); ``Runner``
  refuses, before building anything, an upstream a checkpoint chose that
  ``checkpoints.upstream_spec`` does not allow. A local upstream file is named by the user
  with ``-o args.upstream_ckpt=PATH``.
* ``preflight``: when the runner is started as ``python -m s3prl.run_downstream``, the same
  checks run on ``-e``/``-a`` before S3PRL reads the checkpoint (so a truncated one is named),
  and a training of ``emotion_multilabel`` takes the experiment lock (``runlock``) before
  S3PRL writes anything there.
* ``expdir_next_to_checkpoints``: S3PRL takes ``expdir`` from the checkpoint's ``Args`` with
  ``-e``, so an edited or moved checkpoint would have it write (its args and config, the
  predictions, new checkpoints) into whatever folder the checkpoint records. While it is
  active (from ``preflight`` on, and during ``run_downstream``), a checkpoint read by path
  has ``Args.expdir`` set to the folder that holds it: ``-e EXP/dev-best.ckpt`` writes into
  ``EXP``, wherever EXP was when it was trained. ``-o args.expdir=DIR`` still chooses
  another folder (S3PRL applies it after reading the checkpoint).

``run_downstream`` runs S3PRL's ``run_downstream.py`` main in this process (the sweep worker,
``s3prl-emo train``, the batched trainer, the benchmark) and leaves the interpreter as it
found it. It hands main PyYAML with libyaml's parser and emitter (``CFullLoader``,
``CDumper``) where PyYAML was built with them: the same config, args and config files, in
a few milliseconds instead of about 30 per run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import logging
import os
import sys
from collections.abc import Iterator

from ..downstream import NAME as DOWNSTREAM_NAME
from ..errors import CorpusLayoutError, InvalidInputError
from .checkpoints import load_checkpoint, save_checkpoint, upstream_spec
from .guards import override_keys

_PINS_EXPDIR = "_s3prl_emo_pins_expdir"
logger = logging.getLogger(__name__)


def check_resumed_args(args: argparse.Namespace, where: str) -> None:
    """Refuse the upstream of ``args`` (taken from checkpoint ``where``) unless it loads safely;
    a local file or model config counts only when the user set it with ``-o args.<key>=``."""
    named = override_keys(getattr(args, "override", None))
    user_ckpt = args.upstream_ckpt if "args.upstream_ckpt" in named else None
    checked = argparse.Namespace(**vars(args))
    if "args.upstream_model_config" in named:
        checked.upstream_model_config = None
    try:
        upstream_spec(checked, user_ckpt, where=where)
    except InvalidInputError as err:
        raise InvalidInputError(
            str(err).replace("upstream_ckpt=PATH", "-o args.upstream_ckpt=PATH on the command line")
        ) from None


def check_resumed_config(config, where: str) -> None:
    """S3PRL ``eval``s ``get_<optimizer.name>`` and ``get_<scheduler.name>``: from a checkpoint,
    accept only the names of its own factories."""
    import inspect
    import re

    import s3prl.optimizers
    import s3prl.schedulers

    if not isinstance(config, dict):
        raise InvalidInputError(f"{where}: Config is not a mapping")
    for block, module in (("optimizer", s3prl.optimizers), ("scheduler", s3prl.schedulers)):
        section = config.get(block)
        if not section:
            continue
        name = section.get("name") if isinstance(section, dict) else None
        allowed = sorted(
            n[len("get_") :]
            for n, f in vars(module).items()
            if n.startswith("get_") and inspect.isfunction(f) and f.__module__ == module.__name__
        )
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name not in allowed:
            raise InvalidInputError(f"{where}: Config {block}.name {name!r} is not one of S3PRL's {allowed}")


class _TorchForTheRunner:
    """``torch`` as the runner module sees it: the same, but saves are atomic and loads weights-only."""

    def __init__(self, torch_module):
        self._torch = torch_module

    def __getattr__(self, name):
        return getattr(self._torch, name)

    def save(self, obj, f, *args, **kwargs):
        if isinstance(f, str | os.PathLike) and not args and not kwargs:
            return save_checkpoint(obj, f)
        return self._torch.save(obj, f, *args, **kwargs)

    def load(self, f, *args, **kwargs):
        if isinstance(f, str | os.PathLike):
            return load_checkpoint(f)
        return self._torch.load(f, *args, **kwargs)


def patch_runner(module) -> None:
    """Applied once, right after ``s3prl.downstream.runner`` is imported."""
    if isinstance(module.torch, _TorchForTheRunner):
        return
    module.torch = _TorchForTheRunner(module.torch)
    original_init = module.Runner.__init__

    @functools.wraps(original_init)
    def __init__(self, args, config):
        if getattr(args, "past_exp", None):
            where = str(getattr(args, "init_ckpt", None) or args.past_exp)
            check_resumed_args(args, where)
            check_resumed_config(config, where)
        original_init(self, args, config)

    module.Runner.__init__ = __init__


def checkpoint_expdir(path: str | os.PathLike, recorded: object = None) -> str:
    """The experiment folder of a run started from checkpoint ``path``: the folder that holds it.

    ``recorded`` (the checkpoint's ``Args.expdir``) is kept as it is written when it names that
    same folder, so a checkpoint that was not moved runs exactly as S3PRL would run it.

    Examples:
        >>> checkpoint_expdir("/runs/exp1/dev-best.ckpt", "/elsewhere")
        '/runs/exp1'
    """
    folder = os.path.dirname(os.path.abspath(path))
    if isinstance(recorded, str) and recorded and os.path.realpath(recorded) == os.path.realpath(folder):
        return recorded
    return folder


def pin_expdir(state: object, path: str | os.PathLike) -> None:
    """Set the ``Args.expdir`` of checkpoint ``state``, read from ``path``, to ``checkpoint_expdir``.

    Examples:
        >>> state = {"Args": argparse.Namespace(expdir="/elsewhere")}
        >>> pin_expdir(state, "/runs/exp1/dev-best.ckpt")
        >>> state["Args"].expdir
        '/runs/exp1'
    """
    args = state.get("Args") if isinstance(state, dict) else None
    if not isinstance(args, argparse.Namespace):
        return
    recorded = getattr(args, "expdir", None)
    folder = checkpoint_expdir(path, recorded)
    if folder != recorded:
        logger.warning(
            "%s records the experiment folder %r: writing next to the checkpoint, in %s, instead",
            path,
            recorded,
            folder,
        )
        args.expdir = folder


@contextlib.contextmanager
def expdir_next_to_checkpoints() -> Iterator[None]:
    """While active, every checkpoint ``torch.load`` reads by path gets ``pin_expdir`` (see module doc)."""
    import torch

    original = torch.load
    if getattr(original, _PINS_EXPDIR, False):  # already active
        yield
        return

    @functools.wraps(original)
    def load(f, *args, **kwargs):
        state = original(f, *args, **kwargs)
        if isinstance(f, str | os.PathLike):
            pin_expdir(state, f)
        return state

    setattr(load, _PINS_EXPDIR, True)
    torch.load = load
    try:
        yield
    finally:
        if torch.load is load:
            torch.load = original


_process_pins = contextlib.ExitStack()  # ``python -m s3prl.run_downstream``: active until the process ends


def _step(path: str) -> int:
    """The step S3PRL reads from ``states-<step>.ckpt`` (the same expression, so the same order)."""
    return int(path.split("-")[-1].split(".")[0])


def _latest_states(directory: str) -> str:
    paths = glob.glob(f"{directory}/states-*.ckpt")
    if not paths:
        raise InvalidInputError(f"-e {directory}: no states-*.ckpt in this folder to resume from")
    for path in paths:
        try:
            _step(path)
        except ValueError:
            raise InvalidInputError(
                f"-e {directory}: {os.path.basename(path)} is not named states-<step>.ckpt, so S3PRL cannot tell "
                "which checkpoint is the newest; rename or remove it"
            ) from None
    return max(paths, key=_step)


def _leader() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def preflight(argv: list[str]) -> None:
    """Check ``run_downstream.py``'s command line before S3PRL acts on it (see module doc)."""
    parser = argparse.ArgumentParser(add_help=False)
    for flags, kwargs in (
        (("-m", "--mode"), {}),
        (("-e", "--past_exp"), {}),
        (("-a", "--auto_resume"), {"action": "store_true"}),
        (("-p", "--expdir"), {}),
        (("-n", "--expname"), {}),
        (("-d", "--downstream"), {}),
        (("-o", "--override"), {}),
        (("--local_rank",), {"type": int}),
    ):
        parser.add_argument(*flags, **kwargs)
    try:
        known, _ = parser.parse_known_args(argv)
    except SystemExit:
        return  # S3PRL's own parser will report it
    expdir = known.expdir or (f"result/downstream/{known.expname}" if known.expname else None)
    past_exp = known.past_exp
    if known.auto_resume and expdir and glob.glob(f"{expdir}/states-*.ckpt"):
        past_exp = expdir
    downstream = known.downstream
    if past_exp:
        path = _latest_states(past_exp) if os.path.isdir(past_exp) else past_exp
        state = load_checkpoint(path)
        args = state.get("Args")
        if not isinstance(args, argparse.Namespace):
            raise InvalidInputError(f"{path}: not an S3PRL checkpoint (no Args)")
        merged = argparse.Namespace(**{**vars(args), "override": known.override})
        merged.expdir = checkpoint_expdir(path, getattr(args, "expdir", None))
        for key in ("upstream_ckpt", "upstream_model_config", "expdir"):
            if f"args.{key}" in override_keys(known.override):
                setattr(merged, key, _override_value(known.override, f"args.{key}"))
        check_resumed_args(merged, path)
        check_resumed_config(state.get("Config"), path)
        downstream = getattr(args, "downstream", None)
        expdir = getattr(merged, "expdir", None)
        _process_pins.enter_context(expdir_next_to_checkpoints())
    training_here = known.mode == "train" and downstream == DOWNSTREAM_NAME and expdir
    if training_here and known.local_rank in (None, 0) and _leader():
        from .runlock import acquire

        acquire(expdir)


def _override_value(override: str, key: str):
    """The value S3PRL's ``override`` would set for ``key`` (it evals, falling back to the text)."""
    import ast

    for option in override.split(",,"):
        name, _, text = option.partition("=")
        if name.strip() == key:
            try:
                return ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                return text.strip()
    return None


def run_downstream(argv: list[str], *, prog: str = "run_downstream.py", runner=None) -> None:
    """S3PRL's ``run_downstream.main()`` on ``argv``, building ``runner`` (if given) where it builds
    its Runner. ``sys.argv``, the Runner and ``builtins.isinstance`` are restored afterwards: main()
    wraps isinstance once more on every call (S3PRL's ``hack_isinstance``), which would make each
    later run in the process slower."""
    import builtins

    import s3prl.run_downstream as s3prl_run_downstream

    saved = sys.argv, s3prl_run_downstream.Runner, builtins.isinstance, s3prl_run_downstream.yaml
    sys.argv = [prog, *argv]
    if runner is not None:
        s3prl_run_downstream.Runner = runner
    s3prl_run_downstream.yaml = _libyaml()
    try:
        with expdir_next_to_checkpoints():
            s3prl_run_downstream.main()
    finally:
        sys.argv, s3prl_run_downstream.Runner, builtins.isinstance, s3prl_run_downstream.yaml = saved


def _libyaml():
    """``yaml`` as main uses it (``load`` with ``FullLoader``, ``dump``), with libyaml's parser and
    emitter when PyYAML has them: the constructors and representers are PyYAML's own, so the
    config read and the files written are the same."""
    import types

    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        return yaml
    return types.SimpleNamespace(
        FullLoader=yaml.CFullLoader, load=yaml.load, dump=functools.partial(yaml.dump, Dumper=yaml.CDumper)
    )


def run_preflight() -> None:
    """``preflight`` on ``sys.argv``; a problem ends the process with one line, exit code 2."""
    try:
        preflight(sys.argv[1:])
    except (InvalidInputError, CorpusLayoutError) as err:
        print(f"s3prl-emo: {err}", file=sys.stderr)
        raise SystemExit(2) from None
