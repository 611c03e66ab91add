"""The flags of a trained model that ``predict``, ``cross-eval`` and ``trust`` share: one help, one check.

Every bad value is refused with one line naming the flag, before the checkpoint (a placeholder
nobody reads) is opened and before anything is written.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from s3prl_emo.cli import build_parser, main

COMMANDS = ("predict", "cross-eval", "trust")


def _argv(command: str, ckpt: Path, tmp_path: Path) -> list[str]:
    """A command line that would run ``command`` on ``ckpt``, were the checkpoint real."""
    if command == "predict":
        audio = tmp_path / "a.wav"
        sf.write(audio, np.zeros(1600, dtype="float32"), 16_000)
        return ["predict", "-e", str(ckpt), str(audio), "--out", str(tmp_path / "out" / "labels.csv")]
    if command == "cross-eval":
        return ["cross-eval", "-e", str(ckpt), "--root", str(tmp_path), "--condition", "SYNTH"]
    return ["trust", "-e", str(ckpt)]


def _run(argv: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    if argv[0] != "predict":
        argv = [*argv, "--out", str(tmp_path / "out")]
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        code = main(argv)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0], errors
    assert not (tmp_path / "out").exists()
    return code, errors[0]


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"never read: every case below is refused first")
    return path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--batch-size", "0"], "--batch-size 0: expected a whole number >= 1"),
        (["--device", "gpu"], "--device 'gpu': not a torch device"),
        (["--device", "cuda:99"], "--device 'cuda:99': no such CUDA device on this machine"),
    ],
)
def test_bad_values_are_refused_alike(command, extra, expected, ckpt, tmp_path, caplog):
    code, message = _run([*_argv(command, ckpt, tmp_path), *extra], tmp_path, caplog)
    assert code == 2, message
    assert message.startswith(expected), message


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["missing", "folder", "fifo"])
@pytest.mark.parametrize("flag", ["-e", "-k"])
def test_checkpoints_must_be_regular_files(command, kind, flag, ckpt, tmp_path, caplog):
    bad = tmp_path / f"{kind}.ckpt"
    if kind == "folder":
        bad.mkdir()
    elif kind == "fifo":
        os.mkfifo(bad)
    argv = _argv(command, bad if flag == "-e" else ckpt, tmp_path)
    if flag == "-k":
        argv += ["-k", str(bad)]
    code, message = _run(argv, tmp_path, caplog)
    name = {"-k": "--upstream-ckpt", "-e": "--expert" if command == "trust" else "--ckpt"}[flag]
    problem = {"missing": "no such file", "folder": "a folder", "fifo": "not a regular file"}[kind]
    assert code == 2, message
    assert message.startswith(f"{name} {bad}: {problem}"), message


def test_the_three_commands_describe_the_shared_flags_alike():
    parsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    helps = {}
    for command in COMMANDS:
        (group,) = [g for g in parsers[command]._action_groups if g.title == "model"]
        helps[command] = {a.option_strings[0]: a.help for a in group._group_actions}
    assert [list(h) for h in helps.values()] == [["-e", "-k", "--device", "--batch-size"]] * 3
    for flag in ("-e", "-k", "--device"):
        assert len({h[flag] for h in helps.values()}) == 1, flag
