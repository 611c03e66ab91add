"""``--trainer batched`` vs ``s3prl-emo train`` one run after another vs S3PRL's stock runner, on CPU.

The one-pass benchmark's tiny WavLM and settings (EMO-SUPERB's head, batch 32, 250 steps, dev
and test evaluated every 50 steps, the built-in corpus) for 5 folds x 4 learning rates = 20
runs, all in this process:

(a) one stock-runner run (fold 1, the first learning rate): ``stock_run_s``;
(b) the pooled store built once (one upstream pass per audio file): ``extraction_s``;
(c) the 20 runs one after another with ``s3prl-emo train`` reading that store: ``sequential_s``,
    their total;
(d) the 20 runs batched, reading it, ``--repeats`` times (fresh folders each time):
    ``batched_s``, the median (each one in ``batched_s_each``).

(c) and (d) are interleaved: the sequential runs in ``--repeats`` consecutive parts, each part
followed by one batched repetition, so both are timed over the same stretch of a shared
machine. A sequential total spans a minute and evens out the machine's slow spells; a single
batched run lasts a few seconds and one slow spell can double it, hence the median.

Every logged training loss and each run's dev-best step and test macro-F1 there are taken
from the expert as it logs them (full precision) and compared between each batched run (of
every repetition) and its sequential twin. Step costs are medians of the intervals between
optimizer steps (an evaluation step is one in 50, so the medians are plain training steps).
``protocol`` projects EMO-SUPERB's 522,500 released steps per upstream (31 runs) from them.

    python benchmarks/batched.py [--quick] [--json out.json] [--workdir DIR] [--repeats N]

``--protocol`` instead times one step of each path at EMO-SUPERB's scale, with no corpus and
no upstream: pooled features shaped like WavLM Large's (25 hidden states of 1024 dims, random)
and the heads, optimizers and batch sizes of the released recipes (``downstream_configs``; the
folds and class counts from the corpus registry and ``data_splits``: 9 conditions, 31 runs,
522,500 steps per upstream). Neither path reads the disk: both take their batches from one
random tensor in memory.

* Runner step, per condition: one iteration of S3PRL ``Runner.train``'s loop as it runs on a
  pooled store (``s3prl-emo train``): the batch collated as ``StoredFeatures`` does,
  ``StoredUpstream``, S3PRL's ``Featurizer`` (25 layer weights, built on ``ShapeProbe``), the
  expert's own ``forward`` (its head and CBCE; the expert is built without its corpus: only
  what that forward reads is set), backward, ``clip_grad_norm_``, the AdamW step of S3PRL's
  optimizer factory, ``zero_grad``. ``runner_step_ms`` is their mean weighted by each
  condition's steps (folds x total_steps).
* Batched step: the batched trainer's ``Trainer`` built by its own ``_build`` for the 31 runs
  (a stand-in for its ``Shared`` hands each run a fold of random pooled features, the
  Featurizer and a random state), so the runs are stacked as a real group is (7 stacks, one
  per class count); ``batched_step_ms`` is one ``Trainer._tick``: every run's batch, stacked
  forward, CBCE, one backward, per-run clipping, one AdamW update per stack.

Times are medians over ``--timed`` steps after ``--warmup`` steps (``torch.cuda.synchronize``
around each on CUDA). ``runner_hours`` = 522,500 x the Runner step; ``batched_hours`` = the
longest run's steps (PODCAST (S), 105,040) x the 31-run batched step: an upper bound, since runs
leave the stack as they finish and later steps stack fewer runs. ``batched_hours_as_runs_leave``
follows them: the tick is timed again after each set of runs of one length has left the stack
(the trainer's own ``_leave``), and each segment's steps are multiplied by its tick (``segments``).

    python benchmarks/batched.py --protocol [--quick] [--json out.json] [--device cuda] [--warmup N] [--timed N]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from one_pass import QUICK_TINY, REPO, SEED, TINY, Bench, corpus, save_wavlm  # noqa: E402

LEARNING_RATES = ("1e-3", "5e-4", "2e-4", "1e-4")
PROTOCOL_STEPS = 522_500
PROTOCOL_RUNS = 31
# --protocol: WavLM Large's hidden states (the CNN's output and 24 transformer layers, 1024 dims),
# pooled; rows of the one random train split every run draws its batches from.
LARGE_LAYERS, LARGE_DIM = 25, 1024
TRAIN_ROWS = 256
WARMUP, TIMED = 20, 50
QUICK_WARMUP, QUICK_TIMED = 1, 2


class Probe:
    """Takes what the expert logs (train losses, dev/test scores) and the times of optimizer steps
    (``AdamW.step`` of a Runner, ``RunStack.update`` of the batched trainer)."""

    def __init__(self):
        import torch

        from s3prl_emo.downstream.expert import DownstreamExpert
        from s3prl_emo.training.batched.engine import RunStack

        self.losses = defaultdict(dict)  # expdir name -> step -> train loss
        self.scores = defaultdict(dict)  # expdir name -> (split, step) -> (loss, macro_f1)
        self.step_times: list[float] = []
        log_records, dump, step = DownstreamExpert.log_records, DownstreamExpert._dump, torch.optim.AdamW.step
        probe = self

        def logged(expert, split, records, logger, global_step, **kwargs):
            if split == "train" and records["names"]:
                import numpy as np

                loss = float(np.average(np.asarray(records["batch_loss"]), weights=records["batch_size"]))
                probe.losses[expert.expdir.name][global_step] = loss
            return log_records(expert, split, records, logger, global_step, **kwargs)

        def dumped(expert, split, names, probs, labels, scores, values=None):
            probe.scores[expert.expdir.name][(split, scores["step"])] = (scores["loss"], scores["macro_f1"])
            return dump(expert, split, names, probs, labels, scores, values)

        @functools.wraps(step)
        def timed(optimizer, *args, **kwargs):
            probe.step_times.append(time.perf_counter())
            return step(optimizer, *args, **kwargs)

        DownstreamExpert.log_records, DownstreamExpert._dump, torch.optim.AdamW.step = logged, dumped, timed
        update = RunStack.update

        @functools.wraps(update)
        def timed_update(stack, *args, **kwargs):  # the batched trainer's one update for all runs of a stack
            probe.step_times.append(time.perf_counter())
            return update(stack, *args, **kwargs)

        RunStack.update = timed_update

    def gaps(self, since: int) -> list[float]:
        """Intervals between the optimizer steps taken since the ``since``-th."""
        return [b - a for a, b in itertools.pairwise(self.step_times[since:])]


def median_gap_ms(gaps: list[float]) -> float:
    return statistics.median(gaps) * 1000 if gaps else float("nan")


def dev_best(expdir: Path) -> int | None:
    best = None
    for line in (expdir / "log.log").read_text().splitlines():
        match = re.match(r"dev at step (\d+):", line)
        if match and line.endswith("(new best)"):
            best = int(match.group(1))
    return best


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    return protocol(args) if args.protocol else sweep(args)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 utterances, 2 folds x 2 rates, few steps (tests)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--workdir", help="keep corpus and experiments here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-stock", action="store_true", help="take stock_run_s from --stock-s instead")
    parser.add_argument("--stock-s", type=float, help="with --skip-stock: a stock run's seconds measured before")
    parser.add_argument("--repeats", type=int, default=5, help="batched repetitions, interleaved (--quick: 1)")
    parser.add_argument("--protocol", action="store_true", help="time one step of each path at EMO-SUPERB's scale")
    parser.add_argument("--warmup", type=int, help=f"--protocol: untimed steps first (default {WARMUP}, --quick 1)")
    parser.add_argument("--timed", type=int, help=f"--protocol: timed steps, medians (default {TIMED}, --quick 2)")
    return parser


def sweep(args: argparse.Namespace) -> dict:
    """The default mode: see the module docstring."""

    import logging
    import resource

    import torch

    import s3prl_emo.downstream.expert  # noqa: F401  (registers the downstream with S3PRL)
    from s3prl_emo.runtime.runner_guard import run_downstream
    from s3prl_emo.training.batched import train_batched
    from s3prl_emo.training.batched import trainer as batched_trainer
    from s3prl_emo.training.one_pass import OnePassRunner, StoreOptions, run_train

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="batched_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    for old in [*workdir.glob("*_f*"), workdir / "feature_cache"]:
        shutil.rmtree(old, ignore_errors=True)
    data = corpus(workdir, small=args.quick)
    tiny = save_wavlm(QUICK_TINY if args.quick else TINY, workdir / "tiny.pt")
    if args.quick:
        bench, folds, rates = Bench(None, workdir, data, steps=10, eval_step=5, batch=8), 2, LEARNING_RATES[:2]
    else:
        bench, folds, rates = Bench(None, workdir, data, steps=250, eval_step=50, batch=32), 5, LEARNING_RATES
    options = StoreOptions(cache_dir=str(workdir / "feature_cache"))
    probe = Probe()

    def argv_of(prefix: str, fold: int, lr: str) -> list[str]:
        line = bench.argv(tiny, workdir / f"{prefix}_f{fold}_lr{lr}", fold)
        line[-1] += f",,config.optimizer.lr={lr}"
        return [*line[:-4], "--device", args.device, *line[-2:]]

    results: dict = {"runs": folds * len(rates)}
    if args.skip_stock:
        results["stock_run_s"] = args.stock_s
    else:
        started = time.perf_counter()
        run_downstream(argv_of("stock", 1, rates[0]))
        results["stock_run_s"] = round(time.perf_counter() - started, 2)

    class BuildOnly(OnePassRunner):
        def train(self):
            return None

    started = time.perf_counter()
    run_downstream(argv_of("store", 1, rates[0]), runner=functools.partial(BuildOnly, options=options))
    results["extraction_s"] = round(time.perf_counter() - started, 2)

    pairs = [(fold, lr) for lr in rates for fold in range(1, folds + 1)]
    repeats = 1 if args.quick else max(1, args.repeats)
    parts = [pairs[len(pairs) * i // repeats : len(pairs) * (i + 1) // repeats] for i in range(repeats)]
    sequential, batched, runner_gaps, batched_gaps = 0.0, [], [], []
    for repeat, part in enumerate(parts):
        for fold, lr in part:
            mark, started = len(probe.step_times), time.perf_counter()
            run_train(argv_of("seq", fold, lr), options)
            sequential += time.perf_counter() - started
            runner_gaps += probe.gaps(mark)
        mark, started = len(probe.step_times), time.perf_counter()
        outcomes = train_batched([argv_of(f"bat{repeat}", fold, lr) for fold, lr in pairs], options)
        batched.append(round(time.perf_counter() - started, 2))
        batched_gaps += probe.gaps(mark)
        failed = [o for o in outcomes if o.status != "done"]
        if failed:
            raise SystemExit(f"batched runs did not finish: {failed}")
    results["sequential_s"] = round(sequential, 2)
    results["batched_s"] = round(statistics.median(batched), 2)
    results["batched_s_each"] = batched

    loss_diffs, best_equal, f1_diffs = compare(probe, workdir, pairs, repeats)
    stock_total = results["runs"] * results["stock_run_s"]
    results.update(
        ratio_vs_sequential=round(results["sequential_s"] / results["batched_s"], 1),
        ratio_vs_stock=round(stock_total / (results["extraction_s"] + results["batched_s"]), 1),
        runner_step_ms=round(median_gap_ms(runner_gaps), 2),
        batched_step_ms=round(median_gap_ms(batched_gaps), 2),
        max_abs_loss_diff=float(f"{max(loss_diffs):.3g}"),
        dev_best_steps_equal=best_equal,
        max_test_f1_diff=float(f"{max(f1_diffs):.3g}"),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        batched_peak_rss_mb=round(batched_trainer.Trainer.last_peak_mb),
    )
    # The released protocol: 522,500 steps over 31 runs; one Runner step at a time, or the 31 runs
    # stacked, where the longest run (PODCAST (S), 105,040 steps) sets the number of batched steps.
    results["protocol"] = {
        "steps": PROTOCOL_STEPS,
        "runner_hours": round(PROTOCOL_STEPS * results["runner_step_ms"] / 1000 / 3600, 2),
        "batched_hours": round(105_040 * results["batched_step_ms"] * PROTOCOL_RUNS / results["runs"] / 1000 / 3600, 2),
    }
    results["targets"] = targets(results)
    results["settings"] = {
        "quick": args.quick,
        "threads": args.threads,
        "device": args.device,
        "folds": folds,
        "learning_rates": list(rates),
        "steps": 10 if args.quick else 250,
        "seed": SEED,
        "stock_measured": not args.skip_stock,
        "repeats": repeats,
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def compare(probe: Probe, workdir: Path, pairs: list[tuple], repeats: int) -> tuple[list[float], int, list[float]]:
    """Each batched run of every repetition against its sequential twin: the differences of the
    logged training losses, the runs whose dev-best step is the same in all, the test F1 differences."""
    loss_diffs, best_equal, f1_diffs = [], 0, []
    for fold, lr in pairs:
        seq = f"seq_f{fold}_lr{lr}"
        best_seq, equal = dev_best(workdir / seq), True
        for repeat in range(repeats):
            bat = f"bat{repeat}_f{fold}_lr{lr}"
            a, b = probe.losses[seq], probe.losses[bat]
            if set(a) != set(b):
                raise SystemExit(f"{seq} and {bat} logged different steps: {sorted(a)} vs {sorted(b)}")
            loss_diffs += [abs(a[s] - b[s]) for s in a]
            best_bat = dev_best(workdir / bat)
            equal = equal and best_seq == best_bat
            f1_diffs.append(abs(probe.scores[seq][("test", best_seq)][1] - probe.scores[bat][("test", best_bat)][1]))
        best_equal += equal
    return loss_diffs, best_equal, f1_diffs


def targets(results: dict) -> dict[str, bool]:
    """The issue's targets."""
    return {
        "ratio_vs_sequential_at_least_10x": results["ratio_vs_sequential"] >= 10,
        "ratio_vs_stock_at_least_200x": results["ratio_vs_stock"] >= 200,
        "losses_within_1e-4": results["max_abs_loss_diff"] <= 1e-4,
        "dev_best_steps_all_equal": results["dev_best_steps_equal"] == results["runs"],
        "test_f1_within_1e-4": results["max_test_f1_diff"] <= 1e-4,
        "batched_step_at_most_2x_runner_step": results["batched_step_ms"] <= 2 * results["runner_step_ms"],
    }


def table(results: dict) -> str:
    if results.get("mode") == "protocol":
        return protocol_table(results)
    r = results
    lines = [
        "| runs | stock run s | extraction s | sequential s | batched s | vs sequential | vs stock "
        "| Runner step ms | batched step ms | max loss diff | dev-best equal | max test F1 diff | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['runs']} | {r['stock_run_s']:.1f} | {r['extraction_s']:.1f} | {r['sequential_s']:.1f} "
        f"| {r['batched_s']:.1f} | {r['ratio_vs_sequential']:.1f}x | {r['ratio_vs_stock']:.0f}x "
        f"| {r['runner_step_ms']:.2f} | {r['batched_step_ms']:.2f} | {r['max_abs_loss_diff']:.1e} "
        f"| {r['dev_best_steps_equal']}/{r['runs']} | {r['max_test_f1_diff']:.1e} | {r['peak_rss_mb']} |",
        "",
    ]
    if r.get("batched_s_each"):
        each = ", ".join(f"{t:.1f}" for t in r["batched_s_each"])
        lines.append(f"batched s: the median of {len(r['batched_s_each'])} repetitions ({each})")
    p = r["protocol"]
    lines.append(
        f"EMO-SUPERB's released recipes, {p['steps']:,} steps per upstream: {p['runner_hours']:.2f} h one Runner "
        f"step at a time, {p['batched_hours']:.2f} h with the 31 runs batched (projected from the step costs above)"
    )
    if r["settings"]["quick"]:
        lines.append("(--quick: a smoke run; the targets apply to the full run)")
    lines.append("targets: " + ", ".join(f"{name} {'met' if ok else 'NOT MET'}" for name, ok in r["targets"].items()))
    return "\n".join(lines)


# --- --protocol ---


def released_protocol() -> list[dict]:
    """EMO-SUPERB's conditions as the project ships them: per condition its released config
    (``downstream_configs/NAME.yaml``), its folds (``data_splits``) and its class count (the corpus registry)."""
    import yaml

    from s3prl_emo.data import partitions
    from s3prl_emo.data.corpora import published_conditions

    conditions = []
    for name, (corpus_record, published) in published_conditions().items():
        config = yaml.safe_load((REPO / "downstream_configs" / f"{name}.yaml").read_text())
        (classes,) = [len(c.classes) for c in corpus_record.conditions if c.annotation == published.annotation]
        cross = partitions.is_cross_validated(corpus_record.key)
        conditions.append(
            {
                "name": name,
                "folds": len(partitions.fold_table(corpus_record.key)) if cross else 1,
                "steps": int(config["runner"]["total_steps"]),
                "batch": int(config["downstream_expert"]["datarc"]["train_batch_size"]),
                "classes": classes,
                "config": config,
            }
        )
    return conditions


def soft_labels(rows: int, classes: int, device):
    """Random (rows, classes) soft labels (each row sums to 1), as a fold's train split has them."""
    import torch

    return torch.softmax(3 * torch.randn(rows, classes), dim=-1).to(device)


def bare_expert(config: dict, labels):
    """The ``emotion_multilabel`` expert without its corpus: what its training ``forward`` reads on a
    categorical run (head, CBCE from ``labels``) and the ``datarc`` the batched trainer's sampler reads."""
    import torch.nn as nn

    from s3prl_emo.downstream.expert import DEFAULT_DATARC, DownstreamExpert, _build_loss
    from s3prl_emo.downstream.model import EmotionHead

    rc = config["downstream_expert"]
    expert = DownstreamExpert.__new__(DownstreamExpert)
    nn.Module.__init__(expert)
    classes = labels.shape[1]
    expert.task, expert.classes = "categorical", tuple(f"class{j}" for j in range(classes))
    expert.datarc = {**DEFAULT_DATARC, **rc.get("datarc", {})}
    expert.head = EmotionHead(LARGE_DIM, classes, rc.get("modelrc", {}))
    expert.objective = _build_loss(rc.get("loss", {}), labels.cpu().numpy())
    return expert.to(labels.device)


def stored_featurizer(device: str):
    """S3PRL's Featurizer for WavLM Large's 25 hidden states, as ``s3prl-emo train`` runs it on a store:
    built on ``ShapeProbe`` (no upstream), then switched to stored entries, with ``StoredUpstream`` before it."""
    import contextlib
    import io

    from s3prl.upstream.interfaces import Featurizer

    from s3prl_emo.training.one_pass import ShapeProbe, StoredUpstream

    record = {"key": "hidden_states", "raw_layers": LARGE_LAYERS, "dim": LARGE_DIM, "downsample_rate": 320}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        featurizer = Featurizer(ShapeProbe(record), "hidden_states", upstream_device="cpu")
    featurizer.normalize, featurizer.downsample_rate = False, 1  # OnePassRunner's switch to the store
    return StoredUpstream("hidden_states", as_list=True), featurizer.to(device)


def median_ms(step, warmup: int, timed: int, device: str) -> float:
    """Median wall time of ``step()`` over ``timed`` calls after ``warmup`` calls, in ms."""
    import torch

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(timed):
        sync()
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def runner_step_ms(condition: dict, features, warmup: int, timed: int, device: str) -> float:
    """One iteration of ``Runner.train``'s loop (accumulation 1, no fp16) on a pooled store, for one
    head of ``condition``'s shape; see the module docstring."""
    import math

    import torch
    from s3prl.optimizers import get_optimizer

    from s3prl_emo.training.one_pass import StoredFeatures

    config, batch = condition["config"], condition["batch"]
    labels = soft_labels(len(features), condition["classes"], "cpu")
    expert = bare_expert(config, labels.to(device))
    upstream, featurizer = stored_featurizer(device)
    runner = config["runner"]
    optimizer = get_optimizer([featurizer, expert], runner["total_steps"], config["optimizer"])
    params = [*featurizer.parameters(), *expert.parameters()]
    items = [  # a pooled store's entries: (1 frame, layers, dim)
        (row[None].cpu().numpy(), label.numpy(), f"utt{i}")
        for i, (row, label) in enumerate(zip(features, labels, strict=True))
    ]
    starts = itertools.cycle(range(0, len(items) - batch + 1, batch))
    records = defaultdict(list)

    def step() -> None:
        start = next(starts)
        wavs, labels, names = StoredFeatures.collate(items[start : start + batch])
        wavs = [torch.FloatTensor(wav).to(device) for wav in wavs]
        with torch.no_grad():
            stored = upstream(wavs)
        loss = expert("train", featurizer(wavs, stored), labels, names, records=records)
        (loss / int(runner["gradient_accumulate_steps"])).backward()
        norm = torch.nn.utils.clip_grad_norm_(params, runner["gradient_clipping"])
        if not math.isnan(norm):
            optimizer.step()
        optimizer.zero_grad()

    return median_ms(step, warmup, timed, device)


class RandomFolds:
    """Stands where the batched trainer's ``Shared`` is: each run gets a fold of its own (as each run
    of the protocol has) whose train split is the shared random features with random soft labels,
    the Featurizer, and one random state for its head."""

    def __init__(self, features, featurizer, classes: dict[str, int]):
        import torch

        self.features, self._featurizer, self.classes = features, featurizer, classes
        self.rng = torch.get_rng_state()
        self.folds: dict[str, object] = {}

    def fold(self, setup):
        import torch

        from s3prl_emo.training.batched.setup import FoldData

        name = str(setup.expdir)
        if name not in self.folds:
            labels = soft_labels(len(self.features), self.classes[name], self.features.device)
            names = [f"utt{i}" for i in range(len(labels))]
            expert = bare_expert(setup.config, labels)
            rows = {"train": torch.arange(len(labels))}
            arrays = {"train": labels.cpu().numpy()}
            self.folds[name] = FoldData(expert, {"train": labels}, {"train": names}, arrays, rows, table=self.features)
        return self.folds[name]

    def featurizer(self, setup):
        return self._featurizer

    def share_features(self) -> None:
        """Every fold's table is the one random feature matrix already: nothing to share."""

    def rng_before_expert(self, setup):
        return self.rng


def stacks_to(trainer, device: str) -> None:
    """The stacks' tensors onto ``device``: the trainer stacks the runs where their heads are built (the CPU)."""
    import torch

    for stack in trainer.stacks:
        with torch.no_grad():
            for store in (stack.leaves, stack.exp_avg, stack.exp_avg_sq):
                for name, value in store.items():
                    store[name] = value.detach().to(device).requires_grad_(store is stack.leaves)
        for attr in ("steps", "lr", "weight_decay", "max_norm", "accumulate"):
            setattr(stack, attr, getattr(stack, attr).to(device))
        if stack.objective is not None:
            stack.objective_buffers = {k: v.to(device) for k, v in stack.objective_buffers.items()}


def batched_segments(conditions: list[dict], features, warmup: int, timed: int, device: str, workdir: Path):
    """``Trainer._tick`` of the 31 runs stacked as the batched trainer stacks them, then again after each
    set of runs of one length has left the stack (``Trainer._leave``): per segment of the protocol, its
    steps, runs, stacks and tick time."""
    import argparse
    import copy
    from unittest import mock

    import torch

    from s3prl_emo.runtime import runlock
    from s3prl_emo.training.batched import trainer as batched_trainer
    from s3prl_emo.training.batched.setup import RunSetup
    from s3prl_emo.training.one_pass import StoreOptions

    setups, classes = [], {}
    for condition in conditions:
        for fold in range(1, condition["folds"] + 1):
            config = copy.deepcopy(condition["config"])
            for key in ("log_step", "eval_step", "save_step"):  # the timed ticks are plain training steps
                config["runner"][key] = 10**9
            expdir = workdir / f"{condition['name']}_f{fold}"
            args = argparse.Namespace(expdir=str(expdir), seed=SEED)
            setups.append(RunSetup([], args, config, torch.get_rng_state()))
            classes[str(expdir)] = condition["classes"]
    folds = RandomFolds(features, stored_featurizer(device)[1], classes)
    with mock.patch.object(batched_trainer, "Shared", return_value=folds):
        trainer = batched_trainer.Trainer(setups, StoreOptions())
    segments, start = [], 0
    try:
        if trainer.outcomes:
            raise SystemExit(f"the batched trainer refused runs: {list(trainer.outcomes.values())}")
        for end in sorted({run.total for run in trainer.runs}):
            if torch.device(device).type != "cpu":
                stacks_to(trainer, device)
            runs = sum(len(stack.runs) for stack in trainer.stacks)
            ms = median_ms(trainer._tick, warmup, timed, device)
            segments.append({"steps": end - start, "runs": runs, "stacks": len(trainer.stacks), "step_ms": ms})
            for run in trainer.runs:
                if run.total == end:
                    run.step = run.total
            trainer._leave()
            start = end
    finally:
        for run in trainer.runs:
            if run.name not in trainer.outcomes:
                run.writer.close()
                runlock.release(run.setup.expdir / runlock.LOCK_NAME)
    return segments


def protocol(args: argparse.Namespace) -> dict:
    """``--protocol``: see the module docstring."""
    import logging

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    warmup = args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else WARMUP)
    timed = args.timed if args.timed is not None else (QUICK_TIMED if args.quick else TIMED)
    if warmup < 0 or timed < 1:
        raise SystemExit(f"--warmup {warmup} --timed {timed}: expected --warmup >= 0 and --timed >= 1")
    conditions = released_protocol()
    runs = sum(c["folds"] for c in conditions)
    steps = sum(c["folds"] * c["steps"] for c in conditions)
    if (runs, steps) != (PROTOCOL_RUNS, PROTOCOL_STEPS):
        raise SystemExit(f"the released configs give {runs} runs and {steps:,} steps, not 31 and 522,500")
    torch.manual_seed(SEED)
    features = torch.randn(TRAIN_ROWS, LARGE_LAYERS, LARGE_DIM).to(args.device)
    runner_ms = {c["name"]: runner_step_ms(c, features, warmup, timed, args.device) for c in conditions}
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="batched_protocol_"))
    try:
        segments = batched_segments(conditions, features, warmup, timed, args.device, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    runner_step = sum(c["folds"] * c["steps"] * runner_ms[c["name"]] for c in conditions) / steps
    longest = sum(segment["steps"] for segment in segments)
    batched_ms = segments[0]["step_ms"]
    results = {
        "mode": "protocol",
        "device": args.device,
        "runs": runs,
        "runner_step_ms": round(runner_step, 3),
        "batched_step_ms": round(batched_ms, 2),
        "stacks": segments[0]["stacks"],
        "conditions": [
            {
                **{k: c[k] for k in ("name", "folds", "steps", "batch", "classes")},
                "runner_step_ms": round(runner_ms[c["name"]], 3),
            }
            for c in conditions
        ],
        "protocol": {
            "steps": steps,
            "runner_hours": round(steps * runner_step / 1000 / 3600, 2),
            "stacked_steps": longest,
            "batched_hours": round(longest * batched_ms / 1000 / 3600, 2),
            "batched_hours_as_runs_leave": round(sum(g["steps"] * g["step_ms"] for g in segments) / 1000 / 3600, 2),
        },
        "segments": [{**g, "step_ms": round(g["step_ms"], 2)} for g in segments],
        "settings": {
            "quick": args.quick,
            "threads": args.threads,
            "warmup_steps": warmup,
            "timed_steps": timed,
            "layers": LARGE_LAYERS,
            "dim": LARGE_DIM,
            "train_rows": TRAIN_ROWS,
            "seed": SEED,
        },
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


def protocol_table(results: dict) -> str:
    r, p, s = results, results["protocol"], results["settings"]
    lines = [
        "| condition | runs | steps per run | batch | classes | Runner step ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {c['name']} | {c['folds']} | {c['steps']:,} | {c['batch']} | {c['classes']} "
            f"| {c['runner_step_ms']:.2f} |"
            for c in r["conditions"]
        ),
        "",
        "| batched steps | runs stacked | stacks | batched step ms |",
        "|---|---|---|---|",
    ]
    start = 0
    for g in r["segments"]:
        lines.append(f"| {start + 1:,}-{start + g['steps']:,} | {g['runs']} | {g['stacks']} | {g['step_ms']:.1f} |")
        start += g["steps"]
    lines += [
        "",
        f"Pooled features of {s['layers']} x {s['dim']} (WavLM Large's shape), {r['device']}, {s['threads']} torch "
        f"thread(s), medians of {s['timed_steps']} steps after {s['warmup_steps']}: one Runner step "
        f"{r['runner_step_ms']:.2f} ms (mean over the {p['steps']:,} steps), one batched step for all {r['runs']} runs "
        f"{r['batched_step_ms']:.1f} ms",
        f"EMO-SUPERB's released recipes, {p['steps']:,} steps per upstream: {p['runner_hours']:.2f} h one Runner step "
        f"at a time; batched, {p['batched_hours_as_runs_leave']:.2f} h with the runs leaving the stack as they finish "
        f"(the segments above), at most {p['batched_hours']:.2f} h ({p['stacked_steps']:,} steps, the longest run's, "
        f"at the {r['runs']}-run step)",
    ]
    if s["quick"]:
        lines.append("(--quick: a smoke run)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
