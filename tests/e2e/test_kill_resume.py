"""S3PRL's stock runner, killed with SIGKILL in the middle of checkpoint saves, always resumes;
a second training on the same folder is refused; -e refuses truncated or edited checkpoints."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from s3prl_emo.runtime.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow

SCHEDULE = "config.runner.log_step=10,,config.runner.eval_step=10,,config.runner.save_step=10"

# The stock runner, with torch.save slowed down in the middle of the file named by
# PAUSE_ON: the test kills the process there, half-way through writing a checkpoint.
SLOW_SAVE_RUNNER = r"""
import io, os, runpy, sys, time
import torch

real_save = torch.save

def slow_save(obj, f, *args, **kwargs):
    name = os.path.basename(getattr(f, "name", str(f)))
    if os.environ["PAUSE_ON"] not in name:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    open(os.environ["PAUSED_FLAG"], "w").write(name)
    time.sleep(600)
    f.write(data[len(data) // 2 :])

torch.save = slow_save
sys.argv[0] = "-m"  # as `python -m MODULE` sees it
runpy.run_module(os.environ.get("RUN_MODULE", "s3prl.run_downstream"), run_name="__main__", alter_sys=True)
"""


def runner(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "s3prl.run_downstream", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"runner failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def start_and_kill_during_save(args, pause_on, flag, module="s3prl.run_downstream"):
    env = {**os.environ, "PAUSE_ON": pause_on, "PAUSED_FLAG": str(flag), "RUN_MODULE": module}
    log = flag.with_suffix(".log")
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SLOW_SAVE_RUNNER, *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    deadline = time.time() + 400
    while not flag.exists():
        if process.poll() is not None:
            raise AssertionError(f"run ended before the save: {log.read_text()[-3000:]}")
        if time.time() > deadline:
            process.kill()
            raise AssertionError("the save was never reached")
        time.sleep(0.2)
    return process


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()


def states(expdir):
    return sorted(p.name for p in expdir.glob("states-*.ckpt"))


def test_sigkill_during_saves_leaves_a_resumable_run(repo_root, synth_root, tmp_path):
    expdir = tmp_path / "exp"
    train = [
        "-m", "train", "-u", "fbank", "-d", "emotion_multilabel", "-c",
        str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir), "--device", "cpu", "-o",
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.downstream_expert.datarc.train_batch_size=8,,"
        f"config.runner.total_steps=30,,config.runner.eval_dataloaders=['dev'],,{SCHEDULE}",
    ]  # fmt: skip
    # Killed half-way through writing states-30, after S3PRL deleted the oldest states (10).
    first = start_and_kill_during_save(train, "states-30", tmp_path / "paused")

    # While it is paused mid-save, a second training on the same folder is refused.
    files_before = sorted(p.name for p in expdir.iterdir())
    second = runner(*train, check=False)
    assert second.returncode != 0
    assert "another training (PID" in second.stderr
    assert str(expdir) in second.stderr
    assert sorted(p.name for p in expdir.iterdir()) == files_before

    kill(first)
    assert states(expdir) == ["states-20.ckpt"]
    assert load_checkpoint(expdir / "states-20.ckpt")["Step"] == 20
    load_checkpoint(expdir / "dev-best.ckpt")  # complete, whatever the moment
    assert list(expdir.glob(".states-30.ckpt.*.partial"))  # the interrupted write, under a hidden name

    # Resume: the stale lock and the partial file are cleared, training reaches its end.
    runner("-m", "train", "-e", str(expdir / "states-20.ckpt"), "--device", "cpu")
    assert states(expdir) == ["states-20.ckpt", "states-30.ckpt"]
    assert load_checkpoint(expdir / "states-30.ckpt")["Step"] == 30
    assert not list(expdir.glob(".*.partial"))
    assert not (expdir / ".s3prl-emo.lock").exists()

    # A truncated checkpoint given to -e is named as such, before S3PRL reads it.
    data = (expdir / "states-30.ckpt").read_bytes()
    cut = tmp_path / "states-40.ckpt"
    cut.write_bytes(data[: len(data) // 3])
    result = runner("-m", "evaluate", "-e", str(cut), "--device", "cpu", check=False)
    assert result.returncode == 2
    assert f"{cut}: truncated or corrupt checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_pass_trainer_killed_during_a_save_resumes_from_its_states(repo_root, synth_root, tmp_path):
    expdir, cache = tmp_path / "exp", tmp_path / "cache"
    train = [
        "train", "-u", "fbank", "-c", str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir),
        "--device", "cpu", "--cache-dir", str(cache), "-o",
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.downstream_expert.datarc.train_batch_size=8,,"
        f"config.runner.total_steps=30,,config.runner.eval_dataloaders=['dev'],,{SCHEDULE}",
    ]  # fmt: skip
    kill(start_and_kill_during_save(train, "states-30", tmp_path / "paused", module="s3prl_emo.cli"))
    assert states(expdir) == ["states-20.ckpt"]
    load_checkpoint(expdir / "dev-best.ckpt")
    assert list(expdir.glob(".states-30.ckpt.*.partial"))

    resumed = subprocess.run(
        [sys.executable, "-m", "s3prl_emo.cli", "train", "-e", str(expdir / "states-20.ckpt"), "--device", "cpu",
         "--cache-dir", str(cache)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert states(expdir) == ["states-20.ckpt", "states-30.ckpt"]
    assert load_checkpoint(expdir / "states-30.ckpt")["Step"] == 30
    assert not list(expdir.glob(".*.partial"))
    report = json.loads((expdir / "one_pass.json").read_text())
    assert report["extracted"] == 0
    assert report["upstream_calls"] == 0


class Payload:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_runner_e_refuses_an_edited_checkpoint_and_a_config_error_leaves_no_folder(repo_root, synth_root, tmp_path):
    expdir = tmp_path / "exp"
    result = runner(
        "-m", "train", "-u", "fbank", "-d", "emotion_multilabel", "-c",
        str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir), "--device", "cpu", "-o",
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.runner.total_steps=0",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "runner.total_steps: expected an integer >= 1, got 0" in result.stderr
    assert not expdir.exists()

    # A checkpoint edited to name an unpickling upstream loader and an attacker's file.
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    evil_upstream = tmp_path / "upstream.ckpt"
    torch.save({"Settings": Payload()}, evil_upstream)
    args = argparse.Namespace(
        upstream="mockingjay_local", upstream_ckpt=str(evil_upstream), upstream_model_config=None, hub="torch",
        downstream="emotion_multilabel", expdir=str(expdir), mode="evaluate", local_rank=None,
    )  # fmt: skip
    edited = tmp_path / "edited.ckpt"
    torch.save({"Args": args, "Config": {"runner": {}}, "Step": 1}, edited)
    result = runner("-m", "evaluate", "-e", str(edited), "--device", "cpu", check=False)
    assert result.returncode == 2
    assert "upstream 'mockingjay_local' is not one this package loads" in result.stderr
    assert not marker.exists()
    shutil.rmtree(expdir, ignore_errors=True)
