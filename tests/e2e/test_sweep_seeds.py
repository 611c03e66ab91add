"""A real sweep with a seed axis: fbank and a tiny WavLM x 5 folds x 2 seeds on the built-in corpus,
trained by the batched trainer (each upstream's 10 runs in one process, every run with its own
seed), then its report: intervals, seeds, ties, the paired test, and the intervals drawn in
headless Chromium."""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from helpers.sweeps import SMALL, chromium

from s3prl_emo.cli import main
from s3prl_emo.report.tables import SIGNIFICANCE_COLUMNS

pytestmark = pytest.mark.slow

UPSTREAMS, SEEDS, FOLDS = ("fbank", "wavlm_local"), (1, 2), 5
RESULTS_GLOB = "*/SYNTH/default+seed=*/fold*/result.json"


@pytest.fixture(scope="module")
def swept(synth_root, tiny_wavlm, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "results"
    command = [
        sys.executable, "-m", "s3prl_emo.cli", "sweep", "--upstreams", ",".join(UPSTREAMS),
        "--upstream-ckpt", f"wavlm_local={tiny_wavlm}", "--conditions", "SYNTH", "--folds", "all",
        "--seeds", ",".join(map(str, SEEDS)), "--root", str(synth_root), "--out", str(out), "--trainer", "batched",
        "-o", SMALL + ",,config.downstream_expert.modelrc.select=UtteranceLevel",
        "--jobs", str(min(4, max(2, os.cpu_count() or 2))),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.parent / "report"
    assert main(["report", str(out), "--out", str(report)]) == 0
    return out, report


def test_one_run_per_upstream_seed_and_fold_each_trained_with_its_seed(swept):
    out, _ = swept
    results = [json.loads(p.read_text()) for p in out.glob(RESULTS_GLOB)]
    assert len(results) == len(UPSTREAMS) * len(SEEDS) * FOLDS
    assert {(r["upstream"], r["seed"], r["fold"]) for r in results} == {
        (u, s, k) for u in UPSTREAMS for s in SEEDS for k in range(1, FOLDS + 1)
    }
    assert all(r["test_predictions"]["probs"] == f"exp/test_fold{r['fold']}_probs.csv" for r in results)
    assert {r["trainer"] for r in results} == {"batched"}
    first, second = (
        (out / "wavlm_local" / "SYNTH" / f"default+seed={s}" / "fold2" / "exp" / "test_fold2_probs.csv").read_text()
        for s in SEEDS
    )
    assert first != second  # another seed, another model


def test_report_has_intervals_seeds_ties_and_one_paired_test(swept):
    _, report = swept
    board = pd.read_csv(report / "leaderboard.csv", dtype=str, keep_default_na=False).set_index("upstream")
    assert list(board.index) == list(UPSTREAMS)
    for upstream in UPSTREAMS:
        low, high = float(board.loc[upstream, "SYNTH ci_low"]), float(board.loc[upstream, "SYNTH ci_high"])
        assert 0 <= low <= float(board.loc[upstream, "SYNTH pooled"]) <= high <= 1
        assert board.loc[upstream, "SYNTH seeds"] == "2"
        assert board.loc[upstream, "SYNTH folds"] == "5"
        assert board.loc[upstream, "SYNTH tied_with_best"] in ("true", "false")
        assert board.loc[upstream, "Average ci_low"] != ""
    significance = pd.read_csv(report / "significance.csv")
    assert list(significance.columns) == list(SIGNIFICANCE_COLUMNS)
    assert len(significance) == 1
    row = significance.iloc[0]
    assert {row["upstream"], row["best"]} == set(UPSTREAMS)
    assert row["metric_best"] >= row["metric_upstream"]
    assert 0 <= row["p_value"] <= 1
    assert row["p_value"] <= row["p_holm"] <= 1
    assert board.loc[row["best"], "SYNTH tied_with_best"] == "true"
    assert board.loc[row["upstream"], "SYNTH tied_with_best"] == str(bool(row["tied_with_best"])).lower()


def test_report_draws_the_intervals_in_headless_chromium(swept, tmp_path):
    _, report = swept
    browser, profile = chromium()
    try:
        browser.set_window_size(1200, 3000)
        browser.get((report / "index.html").as_uri())
        drawn = browser.execute_script(
            "return Array.from(document.querySelectorAll('svg.forest line.ci')).map(l => {"
            " const r = l.getBoundingClientRect(); return [r.width, r.height, l.getAttribute('data-low')]; })"
        )
        rows = [r.text for r in browser.find_elements("css selector", "#leaderboard tbody tr.measured")]
        bold = browser.find_elements("css selector", "#leaderboard td.tied strong")
        browser.save_screenshot(str(tmp_path / "index.png"))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert len(drawn) == len(UPSTREAMS) * 2  # SYNTH and the average
    assert all(width > 0 and height >= 0 for width, height, _ in drawn), drawn
    assert all("(5 × 2 seeds" in row and "pooled" in row for row in rows), rows
    assert len(bold) >= 1  # at least the best
