"""``s3prl-emo train``: ``run_downstream.py -m train`` with one upstream pass per audio file."""

from __future__ import annotations

import argparse
import re

from ..downstream import NAME as DOWNSTREAM_NAME
from ..errors import InvalidInputError
from ..training.feature_store import DTYPES, STORE_KINDS, StoreOptions
from .parsing import add_command


def _flag_table(text: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    """Lines of flags, two or more spaces, then the help -> ``((flags...), help)`` rows."""
    rows = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.strip().splitlines())
    return tuple((tuple(flags.split()), help_text) for flags, help_text in rows)


# run_downstream.py's training flags this command honours, forwarded unchanged: options with a value ...
VALUE_FLAGS = _flag_table("""
    -c --config                      config yaml (e.g. downstream_configs/IEMOCAP.yaml)
    -o --override                    S3PRL overrides, e.g. "config.runner.total_steps=100,,args.seed=1"
    -e --past_exp                    resume from EXP/states-N.ckpt (or the latest in EXP)
    -d --downstream                  only emotion_multilabel
    -v --downstream_variant          fold, e.g. fold2 (beats datarc.test_fold)
    -u --upstream                    s3prl.hub upstream name
    -k --upstream_ckpt               upstream weights (for *_local upstreams)
    -g --upstream_model_config       upstream model config
    -s --upstream_feature_selection  feature key (default hidden_states)
    -l --upstream_layer_selection    one layer of the selected features
    -n --expname                     experiment at result/downstream/EXPNAME
    -p --expdir                      experiment folder
    --seed                           random seed (default 1337)
    --device                         cuda or cpu (default cuda)
    --cache_dir                      S3PRL's download cache for upstream weights (torch.hub dir)
""")
# ... and switches.
SWITCHES = _flag_table("""
    --upstream_feature_normalize     layer-norm each layer before the weighted sum
    -a --auto_resume                 resume when EXP holds states-*.ckpt
    -r --upstream_refresh            re-download upstream weights
    --verbose                        print model information
    --disable_cudnn                  disable cuDNN
""")


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", run, formatter_class=argparse.HelpFormatter)
    for flags, text in VALUE_FLAGS:
        parser.add_argument(*flags, help=text)
    for flags, text in SWITCHES:
        parser.add_argument(*flags, action="store_true", help=text)
    parser.add_argument("-f", "--upstream_trainable", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hub", help=argparse.SUPPRESS)
    parser.add_argument("--local_rank", help=argparse.SUPPRESS)
    store = parser.add_argument_group("feature store")
    defaults = StoreOptions()
    store.add_argument(
        "--feature-cache-dir",
        "--cache-dir",
        dest="feature_cache_dir",
        help="where stores live, shared by runs (default $S3PRL_EMO_FEATURE_CACHE, else feature_cache/ "
        "next to the experiment folder)",
    )
    store.add_argument(
        "--store",
        choices=STORE_KINDS,
        default=defaults.store,
        help="pooled (per-layer means, exact for heads that mean-pool first) or sequence; auto picks by the head",
    )
    store.add_argument("--store-dtype", choices=sorted(DTYPES), default=defaults.dtype, help="sequence store dtype")
    store.add_argument(
        "--cache-budget-gb",
        type=float,
        default=defaults.budget_gb,
        help="largest sequence store to build; above it the run falls back to per-step upstream calls",
    )
    store.add_argument(
        "--invariance-tolerance",
        type=float,
        default=defaults.tolerance,
        help="max relative feature difference under which a store built with other waveform statistics is reused",
    )


def forwarded_argv(args: argparse.Namespace) -> list[str]:
    """The run_downstream.py command line for ``args``; refuses what the fast path cannot honour."""
    if args.upstream_trainable:
        raise InvalidInputError(
            "-f/--upstream_trainable: fine-tuning runs the upstream at every step, so features cannot be stored; "
            "use `python -m s3prl.run_downstream -m train -f ...`"
        )
    if args.hub not in (None, "torch"):
        raise InvalidInputError(f"--hub {args.hub}: only s3prl.hub upstreams; use `python -m s3prl.run_downstream`")
    if args.local_rank is not None:
        raise InvalidInputError("--local_rank: distributed training is not supported here; use run_downstream.py")
    if args.downstream not in (None, DOWNSTREAM_NAME):
        raise InvalidInputError(f"-d {args.downstream}: s3prl-emo train runs the {DOWNSTREAM_NAME} downstream only")
    if not args.past_exp and not args.auto_resume and not args.config:
        raise InvalidInputError("-c/--config is required for a new experiment (e.g. downstream_configs/IEMOCAP.yaml)")
    argv = ["-m", "train"]
    if not args.past_exp:
        argv += ["-d", DOWNSTREAM_NAME]
    for flags, _ in VALUE_FLAGS:
        dest = flags[-1].lstrip("-")
        value = getattr(args, dest)
        if value is not None and not (dest == "downstream" and not args.past_exp):
            argv += [flags[0], str(value)]
    for flags, _ in SWITCHES:
        if getattr(args, flags[-1].lstrip("-")):
            argv.append(flags[0])
    return argv


def run(args: argparse.Namespace) -> int:
    """train like `run_downstream.py -m train`, with one upstream pass per audio file (feature store)

    S3PRL's runner on stored upstream features: the same flags, configs, overrides and experiment
    files as `python -m s3prl.run_downstream -m train -d emotion_multilabel`; every audio file goes
    through the frozen upstream once, into a store that later folds and runs share.
    """
    argv = forwarded_argv(args)
    from ..training.one_pass import StoreOptions, run_train

    options = StoreOptions(
        cache_dir=args.feature_cache_dir,
        store=args.store,
        dtype=args.store_dtype,
        budget_gb=args.cache_budget_gb,
        tolerance=args.invariance_tolerance,
    )
    run_train(argv, options)
    return 0
