"""``--trainer batched`` vs ``s3prl-emo train`` one run after another vs S3PRL's stock runner, on CPU.

The one-pass benchmark's tiny WavLM and settings (EMO-SUPERB's head, batch 32, 250 steps, dev
and test evaluated every 50 steps, the built-in corpus) for 5 folds x 4 learning rates = 20
runs, all in this process:

(a) one stock-runner run (fold 1, the first learning rate): ``stock_run_s``;
(b) the pooled store built once (one upstream pass per audio file): ``extraction_s``;
(c) the 20 runs one after another with ``s3prl-emo train`` reading that store: ``sequential_s``;
(d) the 20 runs batched, reading it: ``batched_s``.

Every logged training loss and each run's dev-best step and test macro-F1 there are taken
from the expert as it logs them (full precision) and compared between each batched run and
its sequential twin. Step costs are medians of the intervals between optimizer steps (an
evaluation step is one in 50, so the medians are plain training steps). ``protocol``
projects EMO-SUPERB's 522,500 released steps per upstream (31 runs) from them.

    python benchmarks/batched.py [--quick] [--json out.json] [--workdir DIR]
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

from one_pass import QUICK_TINY, SEED, TINY, Bench, corpus, save_wavlm  # noqa: E402

LEARNING_RATES = ("1e-3", "5e-4", "2e-4", "1e-4")
PROTOCOL_STEPS = 522_500
PROTOCOL_RUNS = 31


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

    def step_ms(self, since: int) -> float:
        times = self.step_times[since:]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return statistics.median(gaps) * 1000 if gaps else float("nan")


def dev_best(expdir: Path) -> int | None:
    best = None
    for line in (expdir / "log.log").read_text().splitlines():
        match = re.match(r"dev at step (\d+):", line)
        if match and line.endswith("(new best)"):
            best = int(match.group(1))
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 utterances, 2 folds x 2 rates, few steps (tests)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--workdir", help="keep corpus and experiments here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-stock", action="store_true", help="take stock_run_s from --stock-s instead")
    parser.add_argument("--stock-s", type=float, help="with --skip-stock: a stock run's seconds measured before")
    args = parser.parse_args(argv)

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
    mark = len(probe.step_times)
    started = time.perf_counter()
    for fold, lr in pairs:
        run_train(argv_of("seq", fold, lr), options)
    results["sequential_s"] = round(time.perf_counter() - started, 2)
    runner_step = probe.step_ms(mark)

    mark = len(probe.step_times)
    started = time.perf_counter()
    outcomes = train_batched([argv_of("bat", fold, lr) for fold, lr in pairs], options)
    results["batched_s"] = round(time.perf_counter() - started, 2)
    batched_step = probe.step_ms(mark)
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"batched runs did not finish: {failed}")

    loss_diffs, best_equal, f1_diffs = [], 0, []
    for fold, lr in pairs:
        seq, bat = f"seq_f{fold}_lr{lr}", f"bat_f{fold}_lr{lr}"
        a, b = probe.losses[seq], probe.losses[bat]
        if set(a) != set(b):
            raise SystemExit(f"{seq} and {bat} logged different steps: {sorted(a)} vs {sorted(b)}")
        loss_diffs += [abs(a[s] - b[s]) for s in a]
        best_a, best_b = dev_best(workdir / seq), dev_best(workdir / bat)
        best_equal += best_a == best_b
        f1_diffs.append(abs(probe.scores[seq][("test", best_a)][1] - probe.scores[bat][("test", best_b)][1]))
    stock_total = results["runs"] * results["stock_run_s"]
    results.update(
        ratio_vs_sequential=round(results["sequential_s"] / results["batched_s"], 1),
        ratio_vs_stock=round(stock_total / (results["extraction_s"] + results["batched_s"]), 1),
        runner_step_ms=round(runner_step, 2),
        batched_step_ms=round(batched_step, 2),
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
        "runner_hours": round(PROTOCOL_STEPS * runner_step / 1000 / 3600, 2),
        "batched_hours": round(105_040 * batched_step * PROTOCOL_RUNS / results["runs"] / 1000 / 3600, 2),
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
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


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
    p = r["protocol"]
    lines.append(
        f"EMO-SUPERB's released recipes, {p['steps']:,} steps per upstream: {p['runner_hours']:.2f} h one Runner "
        f"step at a time, {p['batched_hours']:.2f} h with the 31 runs batched (projected from the step costs above)"
    )
    if r["settings"]["quick"]:
        lines.append("(--quick: a smoke run; the targets apply to the full run)")
    lines.append("targets: " + ", ".join(f"{name} {'met' if ok else 'NOT MET'}" for name, ok in r["targets"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
