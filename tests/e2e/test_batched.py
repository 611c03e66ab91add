"""The batched trainer against its sequential twins (``s3prl-emo train``), end to end on the quick benchmark."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    for run in tmp_path.glob("bat_*"):  # the runner's layout, read back weights-only
        from s3prl_emo.runtime.checkpoints import load_checkpoint

        state = load_checkpoint(run / "dev-best.ckpt")
        assert {"Optimizer", "Step", "Epoch", "Args", "Config", "Featurizer", "Downstream"} <= set(state)
        assert (run / "log.log").read_text().count("test at step") == 2
