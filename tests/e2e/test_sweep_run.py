"""A real sweep on the built-in corpus: fbank and a tiny WavLM x 3 folds with the local launcher,
killed mid-way and resumed, then its report opened in headless Chromium. The data root's folder
name is code that S3PRL would run if it were spliced into ``-o``: it must stay a name."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers.sweeps import SMALL, chromium

from s3prl_emo.cli import main

pytestmark = pytest.mark.slow

RUNS = 6  # 2 upstreams x 3 folds
RESULTS_GLOB = "*/SYNTH/default/fold*/result.json"
PAYLOAD = "x,,args.seed=__import__('pathlib').Path('PWNED').touch() or 1,,args.y="  # creates PWNED if run


@pytest.fixture(scope="module")
def hostile_root(synth_root, tmp_path_factory):
    """The corpus under a data root named PAYLOAD; the sweeps run in its parent, where PWNED would appear."""
    root = tmp_path_factory.mktemp("hostile") / PAYLOAD
    root.mkdir()
    (root / "SYNTH").symlink_to(synth_root / "SYNTH")
    return root


def _sweep_command(out, root, tiny_wavlm) -> list[str]:
    return [
        sys.executable, "-m", "s3prl_emo.cli", "sweep", "--upstreams", "fbank,wavlm_local",
        "--upstream-ckpt", f"wavlm_local={tiny_wavlm}", "--conditions", "SYNTH", "--folds", "1,2,3",
        "--root", str(root), "--out", str(out), "-o", SMALL, "--jobs", "2",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def swept(hostile_root, tiny_wavlm, tmp_path_factory):
    """First invocation killed (SIGKILL, whole process group) once two runs are done; then two more."""
    out = tmp_path_factory.mktemp("sweep") / "results"
    command = _sweep_command(out, hostile_root, tiny_wavlm)
    cwd = hostile_root.parent
    with open(out.parent / "first.log", "w") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        deadline = time.monotonic() + 1200
        while len(list(out.glob(RESULTS_GLOB))) < 2:
            if first.poll() is not None or time.monotonic() > deadline:
                os.killpg(first.pid, signal.SIGKILL)
                raise AssertionError((out.parent / "first.log").read_text()[-3000:])
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = {p: p.stat().st_mtime_ns for p in out.glob(RESULTS_GLOB)}
    second = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    third = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    return out, before, second, third


def test_a_data_root_named_as_code_stays_a_name(swept, hostile_root):
    out = swept[0]
    assert not (hostile_root.parent / "PWNED").exists()
    config = (out / "fbank/SYNTH/default/fold1/config.yaml").read_text()
    assert "__import__" in config  # the root, as data, in the run's config


def test_killed_sweep_completes_the_rest_without_redoing_finished_runs(swept):
    out, before, second, _ = swept
    assert 2 <= len(before) < RUNS
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{RUNS - len(before)} of {RUNS} runs to do" in second.stderr
    assert len(list(out.glob(RESULTS_GLOB))) == RUNS
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished runs untouched
    assert f"done {RUNS} / running 0 / failed 0 / to do 0" in second.stdout


def test_second_invocation_runs_nothing(swept):
    _, _, _, third = swept
    assert third.returncode == 0
    assert f"nothing to do: {RUNS} of {RUNS} runs are done" in third.stdout


def test_result_json_records_scores_layer_weights_and_versions(swept):
    out = swept[0]
    fbank = json.loads((out / "fbank/SYNTH/default/fold3/result.json").read_text())
    wavlm = json.loads((out / "wavlm_local/SYNTH/default/fold3/result.json").read_text())
    assert (fbank["upstream"], fbank["condition"], fbank["fold"], fbank["grid"]) == ("fbank", "SYNTH", 3, {})
    for result in (fbank, wavlm):
        assert 0 <= result["dev"]["macro_f1"] <= 1
        assert 0 <= result["test"]["macro_f1"] <= 1
        assert result["dev"]["split"] == "dev"
        assert result["test"]["num_utterances"] == 12
        assert result["versions"]["s3prl"]
        assert result["versions"]["s3prl_emo"]
        assert result["wall_time_s"]["total"] > 0
        assert sum(map(sum, result["cooccurrence"])) > 0
    assert fbank["layer_weights"] is None
    assert len(wavlm["layer_weights"]) == 4  # 3 layers + the CNN output
    assert (out / "wavlm_local/SYNTH/default/fold3/exp/dev-best.ckpt").is_file()


def test_report_opens_in_headless_chromium(swept, tmp_path):
    out = swept[0]
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report)]) == 0
    browser, profile = chromium()
    try:
        browser.set_window_size(1200, 2400)
        browser.get((report / "index.html").as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        rows = [r.text for r in browser.find_elements("css selector", "#leaderboard tbody tr.measured")]
        browser.save_screenshot(str(tmp_path / "index.png"))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    # conditions, then per upstream: per-class F1 and co-occurrence, plus layer weights for the WavLM
    assert len(images) == 1 + 2 + 3
    assert all(complete and width > 0 for _, complete, width in images), images
    assert [row.split()[0] for row in rows] == ["fbank", "wavlm_local"]
    assert all("(3)" in row and "incomplete" not in row for row in rows), rows
    assert "Incomplete" not in (report / "index.html").read_text()


def test_fast_trainer_runs_share_one_feature_store(hostile_root, tiny_wavlm, tmp_path):
    """`--trainer fast`: each run is `s3prl-emo train`; the second fold reads the first one's store."""
    out = tmp_path / "results"
    command = [
        sys.executable, "-m", "s3prl_emo.cli", "sweep", "--upstreams", "wavlm_local", "--trainer", "fast",
        "--upstream-ckpt", f"wavlm_local={tiny_wavlm}", "--conditions", "SYNTH", "--folds", "1,2",
        "--root", str(hostile_root), "--out", str(out), "-o", SMALL,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=hostile_root.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (hostile_root.parent / "PWNED").exists()
    runs = [out / "wavlm_local" / "SYNTH" / "default" / f"fold{k}" for k in (1, 2)]
    results = [json.loads((run / "result.json").read_text()) for run in runs]
    assert [r["fold"] for r in results] == [1, 2]
    assert all(0 <= r["test"]["macro_f1"] <= 1 for r in results)
    first, second = (json.loads((run / "exp" / "one_pass.json").read_text()) for run in runs)
    assert first["extracted"] == 60
    assert second["extracted"] == 0
    assert first["store"] == second["store"]
    assert first["store"].startswith(str(out / "feature_cache"))
