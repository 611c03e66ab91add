"""The sweep's plan, flags and read-back, without training anything."""

import json
import os
import socket

import pytest

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.sweep import plan
from s3prl_emo.sweep.state import sweep_states
from s3prl_emo.sweep.worker import STATE_FILE


def test_one_run_per_upstream_condition_fold_and_grid_point(synth_root):
    grid = plan.parse_grid(["optimizer.lr=1e-3,1e-4", "config.downstream_expert.datarc.train_batch_size=8,16"])
    assert len(grid) == 4
    assert grid[0] == {"optimizer.lr": "1e-3", "downstream_expert.datarc.train_batch_size": "8"}
    runs = plan.build_plan(["fbank", "wavlm_local"], ["SYNTH"], synth_root, grid=grid)
    assert len(runs) == 2 * 5 * 4  # the built-in corpus has five folds
    assert len({r.key for r in runs}) == len(runs)
    first = runs[0]
    assert first.key == "fbank/SYNTH/optimizer.lr=1e-3+downstream_expert.datarc.train_batch_size=8/fold1"
    # the data root, fold and grid point reach S3PRL in the run's config, never through -o (which S3PRL evals)
    config = first.run_config()
    assert config["downstream_expert"]["datarc"]["test_fold"] == "fold1"
    assert config["downstream_expert"]["datarc"]["root"] == f"{synth_root.resolve()}/"
    assert config["downstream_expert"]["datarc"]["train_batch_size"] == 8
    assert config["optimizer"]["lr"] == 1e-3
    assert first.override_string() == ""


def test_chosen_folds_must_exist_in_the_condition(synth_root):
    assert [r.fold for r in plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=plan.parse_folds("2,4"))] == [2, 4]
    with pytest.raises(InvalidInputError, match=r"condition SYNTH has folds \[1, 2, 3, 4, 5\], not \[7\]"):
        plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[7])
    with pytest.raises(InvalidInputError, match="NOPE"):
        plan.build_plan(["fbank"], ["NOPE"], synth_root)
    with pytest.raises(InvalidInputError, match="--grid"):
        plan.parse_grid(["optimizer.lr"])


def test_dry_run_lists_the_runs_and_writes_nothing(synth_root, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["sweep", "--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1,2", "--root", str(synth_root),
                 "--out", str(out), "--dry-run"])  # fmt: skip
    assert code == 0
    assert not out.exists()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "fbank/SYNTH/default/fold1  would run (to do)",
        "fbank/SYNTH/default/fold2  would run (to do)",
        "done 0 / running 0 / failed 0 / to do 2",
    ]


def test_status_reads_the_results_folder_alone(synth_root, tmp_path, capsys):
    out = tmp_path / "results"
    runs = plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1, 2, 3, 4])
    folders = plan.write_plan(out, runs)
    (folders[0] / plan.RESULT_FILE).write_text("{}")
    (folders[1] / STATE_FILE).write_text(json.dumps({"state": "failed", "error": "RuntimeError: out of memory"}))
    here = socket.gethostname()
    (folders[2] / STATE_FILE).write_text(json.dumps({"state": "running", "pid": 2**22 + 7, "host": here}))  # gone
    (folders[3] / STATE_FILE).write_text(json.dumps({"state": "running", "pid": os.getpid(), "host": here}))
    assert [s.state for s in sweep_states(out)] == ["done", "failed", "to do", "running"]
    assert main(["sweep", "--status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "RuntimeError: out of memory" in printed
    assert "interrupted" in printed
    assert printed.rstrip().endswith("done 1 / running 1 / failed 1 / to do 1")


def test_a_run_folder_planned_with_other_arguments_is_refused(synth_root, tmp_path):
    out = tmp_path / "results"
    plan.write_plan(out, plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1]))
    changed = plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1], overrides="config.runner.total_steps=5")
    with pytest.raises(InvalidInputError, match="overrides differ"):
        plan.write_plan(out, changed)


def test_upstream_checkpoint_flag_is_checked(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        plan.parse_upstream_ckpts(["wavlm_local=/nonexistent/tiny.pt"], ["wavlm_local"])
    with pytest.raises(InvalidInputError, match="not in --upstreams"):
        plan.parse_upstream_ckpts([f"hubert_local={tmp_path}"], ["wavlm_local"])
