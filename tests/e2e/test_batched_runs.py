"""The batched trainer against its sequential twins (``s3prl-emo train``), end to end on the quick benchmark;
the benchmark's ``--protocol`` mode (a few seconds)."""

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest
from helpers.tensorboard import scalars

ROOT = Path(__file__).resolve().parents[2]


def test_the_protocol_mode_times_a_runner_and_a_batched_step_at_emo_superbs_scale(tmp_path, monkeypatch):
    from s3prl_emo.runtime import runlock

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("batched_benchmark", ROOT / "benchmarks" / "batched.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out, runs = tmp_path / "protocol.json", tmp_path / "runs"
    results = bench.main(["--protocol", "--quick", "--json", str(out), "--workdir", str(runs)])
    written = json.loads(out.read_text())
    assert written == results
    assert {"mode", "device", "runs", "runner_step_ms", "batched_step_ms", "protocol", "settings"} <= set(written)
    assert (written["mode"], written["device"], written["runs"], written["stacks"]) == ("protocol", "cpu", 31, 7)
    for key in ("runner_step_ms", "batched_step_ms"):
        assert math.isfinite(written[key]), key
        assert written[key] > 0, key
    protocol = written["protocol"]
    assert (protocol["steps"], protocol["stacked_steps"]) == (522_500, 105_040)
    assert protocol["runner_hours"] == pytest.approx(522_500 * written["runner_step_ms"] / 3.6e6, abs=0.01)
    assert protocol["batched_hours"] == pytest.approx(105_040 * written["batched_step_ms"] / 3.6e6, abs=0.01)
    segments = written["segments"]  # the runs leave the stack as they finish: the shortest (NNIME, 5 folds) first
    assert [g["runs"] for g in segments] == [31, 26, 21, 15, 9, 4, 3, 2, 1]
    assert sum(g["steps"] for g in segments) == 105_040
    assert 0 < protocol["batched_hours_as_runs_leave"] <= protocol["batched_hours"]
    assert sum(c["folds"] for c in written["conditions"]) == 31
    assert {(c["name"], c["batch"], c["classes"]) for c in written["conditions"]} >= {
        ("IEMOCAP", 32, 9),
        ("PODCAST_S", 16, 16),
    }
    assert "| IEMOCAP | 5 | 7,240 | 32 | 9 |" in bench.table(written)
    assert len(list(runs.glob("*/batched.json"))) == 31  # every run left the stack through the trainer
    assert not list(runs.rglob(runlock.LOCK_NAME))


@pytest.mark.slow
def test_batched_runs_match_their_sequential_twins(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("batched_benchmark", ROOT / "benchmarks" / "batched.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--quick", "--skip-stock", "--stock-s", "1", "--workdir", str(tmp_path)])
    assert results["runs"] == 4
    assert results["max_abs_loss_diff"] <= 1e-6
    assert results["dev_best_steps_equal"] == results["runs"]
    assert results["max_test_f1_diff"] <= 1e-4
    batched = sorted(tmp_path.glob("bat0_f*"))
    assert len(batched) == results["runs"]
    for run in batched:  # the runner's layout, read back weights-only
        from s3prl_emo.runtime.checkpoints import load_checkpoint

        # the tensorboard scalars of its sequential twin: the same tags and steps, the same values
        twin, mine = scalars(tmp_path / run.name.replace("bat0_", "seq_")), scalars(run)
        assert sorted(mine) == sorted(twin)
        assert {tag.split("/")[-1] for tag, _ in mine} >= {"train-loss", "dev-macro_f1", "test-macro_f1"}
        assert mine == pytest.approx(twin, abs=1e-6)
        state = load_checkpoint(run / "dev-best.ckpt")
        assert {"Optimizer", "Step", "Epoch", "Args", "Config", "Featurizer", "Downstream"} <= set(state)
        assert (run / "log.log").read_text().count("test at step") == 2
        # dev's thresholds travel keyed by the digest of the head they were chosen with: the saved head's
        # (a stock ``-m evaluate -e dev-best.ckpt -t test`` applies them only then)
        digest = hashlib.sha256()
        for name, tensor in state["Downstream"].items():
            if name.startswith("head."):
                digest.update(name.removeprefix("head.").encode())
                digest.update(tensor.float().numpy().tobytes())
        assert state["Downstream"]["_extra_state"]["dev_thresholds"]["model"] == digest.hexdigest()


@pytest.mark.slow
def test_a_resumed_batched_run_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch):
    """Three runs (two folds, one accumulating 2 batches per step) trained 6 steps, then resumed
    from their step-3 states: each step-6 checkpoint is the same, in torch.optim's format."""
    import torch

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from one_pass import QUICK_TINY, Bench, corpus, save_wavlm

    import s3prl_emo.downstream.expert  # noqa: F401  (registers the downstream with S3PRL)
    from s3prl_emo.training.batched import train_batched
    from s3prl_emo.training.one_pass import StoreOptions

    tiny = save_wavlm(QUICK_TINY, tmp_path / "tiny.pt")
    bench = Bench(None, tmp_path, corpus(tmp_path, small=True), steps=6, eval_step=3, batch=8)
    options = StoreOptions(cache_dir=str(tmp_path / "feature_cache"))
    runs = [(tmp_path / f"run{i}", fold, accumulate) for i, (fold, accumulate) in enumerate([(1, 1), (2, 1), (1, 2)])]
    argvs = []
    for expdir, fold, accumulate in runs:
        line = bench.argv(tiny, expdir, fold)
        line[-1] += f",,config.runner.max_keep=2,,config.runner.gradient_accumulate_steps={accumulate}"
        argvs.append(line)
    from s3prl_emo.training.batched.setup import Shared

    shared, share = [], Shared.share_features
    monkeypatch.setattr(Shared, "share_features", lambda self: (share(self), shared.append(self)))
    assert [o.status for o in train_batched(argvs, options)] == ["done"] * 3
    folds = list(shared[0].folds.values())  # two folds of the 60 files: each file's features held once
    assert len(folds) == 2
    assert folds[0].table is folds[1].table
    assert len(folds[0].table) == 60
    whole = [torch.load(expdir / "states-6.ckpt", weights_only=False) for expdir, _, _ in runs]
    override = f"args.upstream_ckpt={tiny},,args.device=cpu"
    resumed = train_batched(
        [["-m", "train", "-e", str(d / "states-3.ckpt"), "-o", override] for d, _, _ in runs], options
    )
    assert [o.status for o in resumed] == ["done"] * 3
    for (expdir, _, _), before in zip(runs, whole, strict=True):
        after = torch.load(expdir / "states-6.ckpt", weights_only=False)
        assert after["Step"] == 6
        assert sorted(after["Optimizer"]["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
        for key in ("Featurizer", "Downstream", "Optimizer"):
            _assert_same(before[key], after[key], key)


def _assert_same(a, b, where: str) -> None:
    import torch

    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where
