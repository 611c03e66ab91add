"""S3PRL's stock runner vs ``s3prl-emo train`` (one upstream pass per audio file), on CPU.

Both run in this process with the same config, seed and thread count, on the built-in
corpus; upstream forward calls are counted by wrapping S3PRL's ``UpstreamBase.__call__``.
Reported F1 is the expert's own log: dev and test macro-F1 at the dev-best step (the
checkpoint ``dev-best.ckpt`` holds). Parts:

1. single fold, tiny random WavLM (the tests' shape, see TINY): stock vs one-pass with an empty store;
2. all five folds: stock x5 vs one-pass x5 sharing one store (fold 1 of part 2 is part 1);
3. a base-sized random WavLM (12 layers, 768 dims) on a short run;
4. upstream passes of the full EMO-SUPERB protocol (recipe table, published corpus sizes).

    python benchmarks/one_pass.py [--quick] [--json out.json] [--workdir DIR]

Defaults: SYNTH.yaml with EMO-SUPERB's head and batch size (32), 250 steps, dev and test
evaluated every 50 steps; the base-sized part on the 60-utterance corpus (batch 8, 30 steps,
2 evaluations). About 20 minutes on a 2-core CPU, nearly all of it in the stock runner.

The crop is the shortest file of the corpus (0.44 s for the built-in one), so S3PRL's runner
pads no batch. Its padding changes the features of a batch's shorter utterances (a partly
padded frame enters the attention and the mean), so a stock run's scores depend on which
utterances share a batch: at the recipe's 10 s crop, stock and one-pass runs whose losses
agreed to 3-4 digits ended up to 0.025 apart in macro-F1 (60 dev and 60 test utterances: one
prediction crossing 1/C moves it that much), and evaluating one stock checkpoint in batches of
32 instead of 1 moved its dev macro-F1 by 0.011. Without padding, both paths log the same
losses and F1 at every evaluation.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = 1337

# The tests' tiny WavLM (3 layers, 64 dims) with WavLM Large's input handling (the waveform
# layer-normed, so another fold's train statistics provably change nothing) and a conv
# extractor 256 channels wide (WavLM's are 512): as with real upstreams, the upstream, not
# the runner's Python, dominates a stock training step.
TINY = {
    "extractor_mode": "layer_norm",
    "layer_norm_first": True,
    "conv_feature_layers": "[(256, 10, 5)] + [(256, 3, 2)] * 4 + [(256, 2, 2)] * 2",
    "encoder_layers": 3,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 32,
    "max_distance": 64,
    "gru_rel_pos": True,
    "normalize": True,
}
# WavLM Base's shape (12 layers, 768 dims, 512-channel group-norm extractor), random weights.
BASE = {
    **TINY,
    "extractor_mode": "default",
    "layer_norm_first": False,
    "normalize": False,
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "num_buckets": 320,
    "max_distance": 800,
}
# --quick: smaller stand-ins, only to exercise the code path.
QUICK_TINY = {**TINY, "conv_feature_layers": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2"}
QUICK_BASE = {
    **BASE,
    "conv_feature_layers": "[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2",
    "encoder_layers": 2,
    "encoder_embed_dim": 128,
    "encoder_ffn_embed_dim": 256,
    "encoder_attention_heads": 4,
}

# EMO-SUPERB's five cross-validated conditions: (corpus, utterances, sessions = folds,
# total_steps, batch, eval_step); IMPROV P and S share their audio.
PROTOCOL = (
    ("IEMOCAP", 10_039, 5, 7_240, 32, 181),
    ("CREMA-D", 7_442, 5, 15_510, 32, 141),
    ("IMPROV", 8_385, 6, 7_785, 32, 173),
    ("IMPROV", 8_385, 6, 10_380, 32, 173),
    ("NNIME", 5_028, 5, 4_450, 32, 89),
)


def protocol_passes() -> dict:
    """Upstream passes: stock runner (every step and evaluation), once per utterance per fold,
    once per audio file. Dev and test are taken as one session each (N / sessions)."""
    stock = per_fold = 0
    corpora = {}
    for corpus, n, folds, steps, batch, eval_step in PROTOCOL:
        evals = steps // eval_step
        stock += folds * (steps * batch + evals * 2 * n / folds)
        per_fold += folds * n
        corpora[corpus] = n
    return {"stock_passes": round(stock), "per_fold_passes": per_fold, "per_file_passes": sum(corpora.values())}


class CallCounter:
    """Counts every S3PRL upstream forward call in this process."""

    def __init__(self):
        from s3prl.upstream.interfaces import UpstreamBase

        self.calls = self.passes = 0
        original = UpstreamBase.__call__

        def counted(module, wavs, *args, **kwargs):
            self.calls += 1
            self.passes += len(wavs)
            return original(module, wavs, *args, **kwargs)

        UpstreamBase.__call__ = counted


def save_wavlm(cfg: dict, path: Path) -> Path:
    import torch
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    torch.manual_seed(0)
    torch.save({"cfg": cfg, "model": WavLM(WavLMConfig(cfg)).state_dict()}, path)
    return path


def best_f1(expdir: Path) -> tuple[float, float]:
    """Dev and test macro-F1 at the dev-best step, from the expert's log."""
    dev, test, best = {}, {}, None
    for line in (expdir / "log.log").read_text().splitlines():
        match = re.match(r"(dev|test) at step (\d+): loss [\d.]+(?: \(batch mean [\d.]+\))?, macro-F1 ([\d.]+)", line)
        if match:
            split, step, f1 = match.group(1), int(match.group(2)), float(match.group(3))
            (dev if split == "dev" else test)[step] = f1
            if split == "dev" and line.endswith("(new best)"):
                best = step
    return dev[best], test[best]


def padding_free_crop(data: Path) -> float:
    """The longest crop (a whole number of 20 ms frames) that every file of the corpus fills."""
    import soundfile as sf

    shortest = min(sf.info(str(path)).duration for path in (data / "SYNTH" / "Audios").iterdir())
    return int(shortest * 16_000 // 320) * 320 / 16_000


class Bench:
    def __init__(self, counter, workdir: Path, data: Path, steps: int, eval_step: int, batch: int):
        self.counter, self.workdir, self.data = counter, workdir, data
        self.crop = padding_free_crop(data)
        self.files = len(list((data / "SYNTH" / "Audios").iterdir()))
        self.override = (
            f"config.downstream_expert.datarc.root='{data}/',,config.downstream_expert.datarc.max_duration_s={self.crop},,"
            f"config.downstream_expert.datarc.train_batch_size={batch},,config.runner.total_steps={steps},,"
            f"config.runner.log_step={eval_step},,config.runner.eval_step={eval_step},,"
            f"config.runner.save_step={eval_step},,args.seed={SEED}"
        )
        self.config = workdir / "bench.yaml"
        text = (REPO / "downstream_configs" / "SYNTH.yaml").read_text()
        self.config.write_text(text.replace("select: DeepModel", "select: UtteranceLevel"))  # EMO-SUPERB's head
        self.store = workdir / "feature_cache"

    def argv(self, upstream: Path, expdir: Path, fold: int) -> list[str]:
        return ["-m", "train", "-u", "wavlm_local", "-k", str(upstream), "-d", "emotion_multilabel",
                "-c", str(self.config), "-p", str(expdir), "-v", f"fold{fold}", "--device", "cpu",
                "-o", self.override]  # fmt: skip

    def stock(self, upstream: Path, name: str, fold: int) -> dict:
        from s3prl_emo.runtime.runner_guard import run_downstream

        expdir = self.workdir / f"stock_{name}_fold{fold}"
        return self._timed(lambda: run_downstream(self.argv(upstream, expdir, fold)), expdir)

    def fast(self, upstream: Path, name: str, fold: int) -> dict:
        from s3prl_emo.training.one_pass import StoreOptions, run_train

        expdir = self.workdir / f"fast_{name}_fold{fold}"
        options = StoreOptions(cache_dir=str(self.store / name))
        return self._timed(lambda: run_train(self.argv(upstream, expdir, fold), options), expdir)

    def _timed(self, job, expdir: Path) -> dict:
        before, passes = self.counter.calls, self.counter.passes
        started = time.perf_counter()
        job()
        seconds = time.perf_counter() - started
        dev, test = best_f1(expdir)
        calls, passes = self.counter.calls - before, self.counter.passes - passes
        return {"s": seconds, "calls": calls, "passes": passes, "dev_f1": dev, "test_f1": test}


def compare(stock: list[dict], fast: list[dict], files: int) -> dict:
    stock_s, fast_s = sum(r["s"] for r in stock), sum(r["s"] for r in fast)
    one = len(stock) == 1
    pairs = lambda key: [[s[key], f[key]] for s, f in zip(stock, fast, strict=True)]  # noqa: E731
    return {
        "stock_s": round(stock_s, 2),
        "fast_s": round(fast_s, 2),
        "ratio": round(stock_s / fast_s, 1),
        "stock_calls_per_file": round(sum(r["calls"] for r in stock) / files, 2),
        "fast_calls_per_file": round(sum(r["calls"] for r in fast) / files, 3),
        "stock_passes_per_file": round(sum(r["passes"] for r in stock) / files, 2),
        "fast_passes_per_file": round(sum(r["passes"] for r in fast) / files, 3),
        "dev_f1": pairs("dev_f1")[0] if one else pairs("dev_f1"),
        "test_f1": pairs("test_f1")[0] if one else pairs("test_f1"),
        "max_f1_gap": round(max(abs(a - b) for key in ("dev_f1", "test_f1") for a, b in pairs(key)), 4),
        "fast_fold_s_median": round(statistics.median(r["s"] for r in fast), 2),
        "stock_fold_s_median": round(statistics.median(r["s"] for r in stock), 2),
    }


def targets(results: dict) -> dict[str, bool]:
    """The issue's targets: time ratios, upstream calls per file, per-fold F1 agreement."""
    five, one = results["five_folds"], results["single_fold"]
    return {
        "five_folds_ratio_at_least_30x": five["ratio"] >= 30,
        "five_folds_at_most_1.1_calls_per_file": five["fast_calls_per_file"] <= 1.1,
        "five_folds_f1_within_0.01": five["max_f1_gap"] <= 0.01,
        "single_fold_ratio_at_least_10x": one["ratio"] >= 10,
    }


def table(results: dict) -> str:
    lines = [
        "| part | stock s | one-pass s | ratio | upstream calls/file: stock | one-pass "
        "| waveforms/file: stock | one-pass | max F1 gap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for part in ("single_fold", "five_folds", "base_sized"):
        r = results[part]
        lines.append(
            f"| {part} | {r['stock_s']:.1f} | {r['fast_s']:.1f} | {r['ratio']:.1f}x | {r['stock_calls_per_file']:.2f} "
            f"| {r['fast_calls_per_file']:.3f} | {r['stock_passes_per_file']:.1f} | {r['fast_passes_per_file']:.3f} "
            f"| {r['max_f1_gap']:.4f} |"
        )
    p = results["protocol"]
    lines.append("")
    lines.append(
        f"EMO-SUPERB, five cross-validated conditions: stock {p['stock_passes']:,} upstream passes; "
        f"one per utterance per fold {p['per_fold_passes']:,}; one per audio file {p['per_file_passes']:,}"
    )
    r = results["five_folds"]
    lines.append("per-fold [stock, one-pass] dev F1: " + ", ".join(f"[{a:.3f}, {b:.3f}]" for a, b in r["dev_f1"]))
    lines.append("per-fold [stock, one-pass] test F1: " + ", ".join(f"[{a:.3f}, {b:.3f}]" for a, b in r["test_f1"]))
    if results["settings"]["quick"]:
        lines.append("(--quick: a smoke run; the targets apply to the full run)")
    lines.append(
        "targets: " + ", ".join(f"{name} {'met' if ok else 'NOT MET'}" for name, ok in results["targets"].items())
    )
    return "\n".join(lines)


def corpus(workdir: Path, *, small: bool) -> Path:
    """The built-in corpus (300 utterances), or the tests' 60-utterance version of it."""
    from s3prl_emo.data.synth import make_synthetic_corpus

    data = workdir / ("data_quick" if small else "data")
    if not (data / "SYNTH" / "Primary").is_dir():
        make_synthetic_corpus(data, seed=0, **({"utterances_per_speaker": 6} if small else {}))
    return data


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 utterances, 2 folds, few steps (for tests)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--workdir", help="keep corpus and experiments here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both paths")
    args = parser.parse_args(argv)

    import logging

    import torch

    import s3prl_emo.downstream.expert  # noqa: F401  (registers the downstream with S3PRL)

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="one_pass_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("*_fold*"):
        shutil.rmtree(old)
    shutil.rmtree(workdir / "feature_cache", ignore_errors=True)
    data = corpus(workdir, small=args.quick)
    tiny = save_wavlm(QUICK_TINY if args.quick else TINY, workdir / "tiny.pt")
    counter = CallCounter()
    if args.quick:
        bench, folds = Bench(counter, workdir, data, steps=10, eval_step=5, batch=8), 2
    else:
        bench, folds = Bench(counter, workdir, data, steps=250, eval_step=50, batch=32), 5

    stock, fast = [], []
    for fold in range(1, folds + 1):
        stock.append(bench.stock(tiny, "tiny", fold))
        fast.append(bench.fast(tiny, "tiny", fold))
        print(f"fold {fold}: stock {stock[-1]}, one-pass {fast[-1]}", file=sys.stderr)
    results = {
        "single_fold": compare(stock[:1], fast[:1], bench.files),
        "five_folds": compare(stock, fast, bench.files),
    }

    # The base-sized model on the tests' 60-utterance corpus.
    base = save_wavlm(QUICK_BASE if args.quick else BASE, workdir / "base.pt")
    small = Bench(
        counter,
        workdir,
        corpus(workdir, small=True),
        steps=4 if args.quick else 30,
        eval_step=2 if args.quick else 15,
        batch=8,
    )
    results["base_sized"] = compare([small.stock(base, "base", 1)], [small.fast(base, "base", 1)], small.files)
    results["protocol"] = protocol_passes()
    results["targets"] = targets(results)
    results["settings"] = {
        "quick": args.quick,
        "threads": args.threads,
        "files": bench.files,
        "folds": folds,
        "crop_s": bench.crop,
        "base_sized_crop_s": small.crop,
        "seed": SEED,
        "device": "cpu",
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
