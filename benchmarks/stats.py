"""Time ``bootstrap_ci`` and ``paired_test`` at test-split scale, on one CPU thread.

10,000 resamples of 10,000 utterances x 10 classes (random soft labels and two systems
that are right to different degrees), macro-F1; each function is timed ``--repeats`` times
and the median reported, with the interval and p-value it produced (the same every repeat:
the draws are seeded).

    python benchmarks/stats.py [--quick] [--repeats 3] [--json out.json]

Set OMP_NUM_THREADS/OPENBLAS_NUM_THREADS=1 to time one thread: the per-resample counts
are a matrix product, which BLAS parallelises otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from s3prl_emo.stats import bootstrap_ci, paired_test

SEED = 0


def data(n: int, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    truth = rng.dirichlet(np.full(classes, 0.5), size=n)
    a = 0.6 * truth + 0.4 * rng.dirichlet(np.ones(classes), size=n)
    b = 0.5 * truth + 0.5 * rng.dirichlet(np.ones(classes), size=n)
    return truth, a, b


def timed(fn, repeats: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def table(results: dict) -> str:
    """The Markdown the docs show (``benchmarks/docs.py``)."""
    s = results["settings"]
    return "\n".join(
        [
            "| function | median s | runs s |",
            "|---|---|---|",
            *(
                f"| `{name}` | {results[name]['median_s']:.2f} | "
                + ", ".join(f"{t:.2f}" for t in results[name]["runs_s"])
                + " |"
                for name in ("bootstrap_ci", "paired_test")
            ),
            "",
            f"{s['resamples']:,} resamples of {s['utterances']:,} utterances x {s['classes']} classes, "
            f"{s['metric']}, medians of {s['repeats']} calls; interval {results['interval'][0]:.4f}-"
            f"{results['interval'][1]:.4f}, p = {results['p_value']:.5f}.",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 resamples of 1,000 utterances (for a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per function (median reported)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    n = resamples = 1_000 if args.quick else 10_000
    classes = 10
    truth, a, b = data(n, classes)
    boot_s, interval = timed(lambda: bootstrap_ci(truth, a, n_resamples=resamples, seed=SEED), args.repeats)
    test_s, p_value = timed(lambda: paired_test(truth, a, b, n_resamples=resamples, seed=SEED), args.repeats)
    results = {
        "bootstrap_ci": {"median_s": round(statistics.median(boot_s), 3), "runs_s": [round(s, 3) for s in boot_s]},
        "paired_test": {"median_s": round(statistics.median(test_s), 3), "runs_s": [round(s, 3) for s in test_s]},
        "interval": list(interval),
        "p_value": p_value,
        "settings": {
            "utterances": n,
            "classes": classes,
            "resamples": resamples,
            "metric": "macro_f1",
            "repeats": args.repeats,
            "seed": SEED,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"),
        },
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
