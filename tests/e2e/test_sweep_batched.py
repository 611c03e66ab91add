"""``sweep --trainer batched`` end to end on the built-in corpus: fbank and a tiny WavLM x 5 folds
x 2 grid points trained in one process per upstream, read back by ``--status`` and ``report``,
checked against S3PRL's own evaluation of a dev-best; a twin sweep SIGKILLed mid-way and rerun;
a run whose loss turns NaN failing alone."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3prl_emo.cli import main

pytestmark = pytest.mark.slow

# Pooled heads (EMO-SUPERB's UtteranceLevel + MeanPooling), a few steps, one utterance per
# evaluation batch (as the pooled store is built: S3PRL's evaluation pads nothing either).
SMALL = (
    "config.runner.total_steps=20,,config.runner.log_step=5,,config.runner.eval_step=5,,config.runner.save_step=5,,"
    "config.downstream_expert.datarc.train_batch_size=4,,config.downstream_expert.datarc.eval_batch_size=1,,"
    "config.downstream_expert.modelrc.select=UtteranceLevel"
)
GRID = "optimizer.lr=1e-3,1e-4"
RESULTS = "*/SYNTH/*/fold*/result.json"


def _sweep(out: Path, root: Path, tiny_wavlm: Path, *extra: str, upstreams: str = "fbank,wavlm_local") -> list[str]:
    ckpt = ["--upstream-ckpt", f"wavlm_local={tiny_wavlm}"] if "wavlm_local" in upstreams else []
    return [
        sys.executable, "-m", "s3prl_emo.cli", "sweep", "--trainer", "batched", "--upstreams", upstreams, *ckpt,
        "--conditions", "SYNTH", "--folds", "all", "--root", str(root), "--out", str(out), "-o", SMALL, *extra,
    ]  # fmt: skip


def _f1(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out).parent): json.loads(p.read_text())["test"]["macro_f1"] for p in out.glob(RESULTS)}


@pytest.fixture(scope="module")
def swept(synth_root, tiny_wavlm, tmp_path_factory):
    """20 runs, uninterrupted: the two upstreams' groups side by side."""
    out = tmp_path_factory.mktemp("batched") / "results"
    done = subprocess.run(
        _sweep(out, synth_root, tiny_wavlm, "--grid", GRID, "--jobs", "2"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_twenty_runs_recorded_with_the_batched_trainer(swept):
    out, _ = swept
    results = [json.loads(p.read_text()) for p in out.glob(RESULTS)]
    assert len(results) == 20
    assert {r["trainer"] for r in results} == {"batched"}
    assert {r["scores_from"] for r in results} == {"training"}  # no stock evaluation per run
    assert {(r["upstream"], r["fold"], r["grid_name"]) for r in results} == {
        (u, k, g)
        for u in ("fbank", "wavlm_local")
        for k in range(1, 6)
        for g in ("optimizer.lr=1e-3", "optimizer.lr=1e-4")
    }
    assert all(0 <= r["test"]["macro_f1"] <= 1 for r in results)
    sources = [json.loads(p.read_text()) for p in out.glob("*/SYNTH/*/fold*/exp/dev-best-scores/source.json")]
    assert len(sources) == 20
    assert all(0 < s["step"] <= 20 for s in sources)  # dev-best's own evaluation, kept during training
    logs = [p.read_text() for p in out.glob("*/SYNTH/optimizer.lr=1e-3/fold1/run.log")]
    assert len(logs) == 2  # one group log per upstream
    assert all("10 runs trained together, peak RSS" in log for log in logs)
    status = subprocess.run(
        [sys.executable, "-m", "s3prl_emo.cli", "sweep", "--status", "--out", str(out)], capture_output=True, text=True
    )
    lines = status.stdout.strip().splitlines()
    assert sum("  done  " in line and line.endswith("trainer batched") for line in lines) == 20
    assert lines[-1] == "done 20 / running 0 / failed 0 / to do 0"


def test_report_reads_the_folder(swept, tmp_path):
    out, _ = swept
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "fbank" in html
    assert "wavlm_local" in html


def test_recorded_scores_are_what_stock_evaluate_writes(swept, tiny_wavlm):
    """S3PRL's ``-m evaluate -e dev-best.ckpt`` rewrites the files the sweep recorded from training:
    the same predictions and truth, the same scores (within float noise of the stored features)."""
    out, _ = swept
    run = out / "wavlm_local/SYNTH/optimizer.lr=1e-3/fold2"
    recorded = json.loads((run / "result.json").read_text())
    exp = run / "exp"
    before = {p.name: p.read_text() for p in exp.glob("*_fold2_*")}
    for split in ("dev", "test"):
        override = f"config.downstream_expert.datarc.eval_batch_size=1,,args.upstream_ckpt='{tiny_wavlm}'"
        subprocess.run(
            [sys.executable, "-m", "s3prl.run_downstream", "-m", "evaluate", "-e", str(exp / "dev-best.ckpt"),
             "-t", split, "--device", "cpu", "-o", override],
            check=True, capture_output=True,
        )  # fmt: skip
    after = {p.name: p.read_text() for p in exp.glob("*_fold2_*")}
    assert set(after) == set(before)
    assert len(after) == 8
    for split in ("dev", "test"):
        assert after[f"{split}_fold2_predict.txt"] == before[f"{split}_fold2_predict.txt"]
        assert after[f"{split}_fold2_truth.txt"] == before[f"{split}_fold2_truth.txt"]
        old, new = (json.loads(files[f"{split}_fold2_metrics.json"]) for files in (before, after))
        assert set(old) == set(new)
        for key, value in old.items():
            if isinstance(value, float):
                assert new[key] == pytest.approx(value, abs=1e-4), key
            else:
                assert new[key] == value, key
        probs, kept = (
            [float(v) for line in files[f"{split}_fold2_probs.csv"].splitlines()[1:] for v in line.split(",")[1:]]
            for files in (after, before)
        )
        assert len(probs) == 12 * 5
        assert probs == pytest.approx(kept, abs=1e-4)
    evaluated = json.loads(after["test_fold2_metrics.json"])["macro_f1"]
    assert evaluated == pytest.approx(recorded["test"]["macro_f1"], abs=1e-4)


def _mid_training(out: Path) -> list[Path]:
    """Runs with states but neither finished training nor a result."""
    return [
        run
        for run in out.glob("fbank/SYNTH/*/fold*")
        if list(run.glob("exp/states-*.ckpt"))
        and not (run / "train.done").exists()
        and not (run / "result.json").exists()
    ]


def _fingerprint(run: Path) -> dict:
    files = [run / "result.json", *sorted(run.glob("exp/*.ckpt"))]
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def test_killed_batched_sweep_resumes_and_matches_the_uninterrupted_one(swept, synth_root, tiny_wavlm, tmp_path):
    """fbank's 10 runs in groups of 5, one at a time: SIGKILL (the whole process group) once the
    first group is recorded and the second is training; the same command then finishes the rest."""
    out = tmp_path / "results"
    command = _sweep(out, synth_root, tiny_wavlm, "--grid", GRID, "--batched-max-runs", "5", upstreams="fbank")
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while not (len(list(out.glob(RESULTS))) == 5 and _mid_training(out)):
            if first.poll() is not None or time.monotonic() > deadline:
                if first.poll() is None:
                    os.killpg(first.pid, signal.SIGKILL)
                raise AssertionError((tmp_path / "first.log").read_text()[-3000:])
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finished = [p.parent for p in out.glob(RESULTS)]
    interrupted = _mid_training(out)
    assert len(finished) == 5
    assert interrupted
    before = {run: _fingerprint(run) for run in finished}
    saved = {run: max(int(p.stem.split("-")[1]) for p in run.glob("exp/states-*.ckpt")) for run in interrupted}
    second = subprocess.run(command, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "5 of 10 runs to do" in second.stderr
    assert {run: _fingerprint(run) for run in finished} == before  # untouched
    for run, step in saved.items():  # resumed from its newest states, not restarted: no evaluation logged twice
        log = (run / "exp" / "log.log").read_text()
        assert all(log.count(f"dev at step {s}:") == 1 for s in range(5, step + 1, 5)), log
    reference = {k: v for k, v in _f1(swept[0]).items() if k.startswith("fbank/")}
    assert _f1(out).keys() == reference.keys()
    for key, value in _f1(out).items():
        assert value == pytest.approx(reference[key], abs=1e-4), key


def test_a_run_whose_loss_turns_nan_fails_alone(synth_root, tiny_wavlm, tmp_path):
    out = tmp_path / "results"
    command = _sweep(
        out, synth_root, tiny_wavlm, "--grid", "optimizer.lr=1e-3,1e30", "--folds", "1,2", upstreams="fbank"
    )
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2  # the two runs of the huge learning rate
    assert "2 run(s) failed" in done.stdout
    bad = [out / f"fbank/SYNTH/optimizer.lr=1e30/fold{k}" for k in (1, 2)]
    good = [out / f"fbank/SYNTH/optimizer.lr=1e-3/fold{k}" for k in (1, 2)]
    assert all((run / "result.json").is_file() for run in good)
    assert not any((run / "result.json").exists() for run in bad)
    log = (good[0] / "run.log").read_text()  # the group's log
    assert all(f"FAILED {run}:" in log for run in bad)
    assert "grad norm is NaN" in log
    status = subprocess.run(
        [sys.executable, "-m", "s3prl_emo.cli", "sweep", "--status", "--out", str(out)], capture_output=True, text=True
    )
    lines = status.stdout.strip().splitlines()
    states = {line.split()[0]: line.split()[1] for line in lines[:-1]}
    assert states == {str(run.relative_to(out)): "failed" for run in bad} | {
        str(run.relative_to(out)): "done" for run in good
    }
    assert lines[-1] == "done 2 / running 0 / failed 2 / to do 0"
