"""``s3prl-emo predict``, ``synth``, ``demo`` and the torch.hub entry against hostile and careless input.

Every case here is refused before the checkpoint is read (the checkpoint file is a placeholder),
with one line naming the flag or file, and nothing is written or removed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.runtime.guards import OUTPUT_MARKER


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """(a placeholder checkpoint nobody reads, a folder with one short wav)."""
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"never read: every case below is refused first")
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", np.zeros(1600, dtype="float32"), 16_000)
    return ckpt, audio


def _error(caplog: pytest.LogCaptureFixture) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0], errors
    return errors[0]


def _predict(ckpt: Path, *args: str, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        code = main(["predict", "-e", str(ckpt), *args])
    return code, _error(caplog)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-4", "0.01"])
def test_window_must_be_finite_and_long_enough(inputs, tmp_path, value, caplog):
    ckpt, audio = inputs
    out = tmp_path / "labels.csv"
    code, message = _predict(ckpt, str(audio), f"--window-s={value}", "--out", str(out), caplog=caplog)
    assert code == 2, message
    assert message.startswith(f"--window-s {float(value)!r}: expected a finite number"), message
    assert not out.exists()


def test_batch_size_must_be_at_least_one(inputs, caplog):
    ckpt, audio = inputs
    code, message = _predict(ckpt, str(audio), "--batch-size", "0", caplog=caplog)
    assert code == 2
    assert message.startswith("--batch-size 0:")


def test_out_that_is_a_folder_or_below_a_file_or_an_input_is_refused_before_any_work(inputs, tmp_path, caplog):
    ckpt, audio = inputs
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    code, message = _predict(ckpt, str(audio), "--out", str(folder), caplog=caplog)
    assert code == 2
    assert message == f"--out {folder}: is a folder; name a file to write"
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    caplog.clear()
    blocker = tmp_path / "notes.txt"
    blocker.write_text("notes")
    code, message = _predict(ckpt, str(audio), "--out", str(blocker / "deeper" / "labels.csv"), caplog=caplog)
    assert code == 2
    assert f"{blocker} is a file, not a folder" in message
    assert blocker.read_text() == "notes"
    for victim in (audio / "a.wav", ckpt):  # writing the table there would destroy the input
        before = victim.read_bytes()
        caplog.clear()
        code, message = _predict(ckpt, str(audio), "--out", str(victim), caplog=caplog)
        assert code == 2
        assert "is an input of this command" in message
        assert victim.read_bytes() == before


def _predict_with_deadline(ckpt: Path, *args: str, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    """``_predict`` in a daemon thread with a deadline: a FIFO opened for reading would block forever."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(_predict(ckpt, *args, caplog=caplog)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "predict blocked on a FIFO"
    return result[0]


@pytest.mark.parametrize("where", ["given", "in a folder", "as --ckpt"])
def test_fifos_and_devices_are_refused_without_opening_them(inputs, tmp_path, where, caplog):
    ckpt, audio = inputs
    fifo = (audio if where == "in a folder" else tmp_path) / "stream.wav"
    os.mkfifo(fifo)
    if where == "as --ckpt":
        code, message = _predict_with_deadline(fifo, str(audio), caplog=caplog)
        expected = f"--ckpt {fifo}: not a regular file"
    else:
        code, message = _predict_with_deadline(ckpt, str(fifo if where == "given" else audio), caplog=caplog)
        expected = f"{fifo}{'' if where == 'given' else f' (in {audio})'}: not a regular file"
    assert code == 2, message
    assert message.startswith(expected), message


def test_a_device_file_is_refused(inputs, caplog):
    ckpt, _ = inputs
    code, message = _predict(ckpt, os.devnull, caplog=caplog)
    assert code == 2
    assert message.startswith(f"{os.devnull}: not a regular file")


# -- synth and demo: outputs they did not write are never replaced ---------------------------------


def test_synth_replaces_only_its_own_earlier_output(tmp_path, caplog):
    foreign = tmp_path / "out" / "SYNTH"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("mine")
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(["synth", "--out", str(tmp_path / "out")]) == 2
    assert "not an earlier output of `s3prl-emo synth`" in _error(caplog)
    assert [p.name for p in foreign.iterdir()] == ["mine.txt"]
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(["synth", "--out", str(tmp_path / "out"), "--seed", "-1"]) == 2
    assert _error(caplog).startswith("--seed -1:")


def test_synth_twice_replaces_its_own_output(tmp_path):
    from s3prl_emo.data.synth import make_synthetic_corpus

    first = make_synthetic_corpus(tmp_path, seed=1, utterances_per_speaker=1)
    (first / "stale.txt").write_text("from the first run")
    again = make_synthetic_corpus(tmp_path, seed=1, utterances_per_speaker=1)
    assert again == first
    assert not (again / "stale.txt").exists()
    assert json.loads((again / OUTPUT_MARKER).read_text()) == {"command": "synth"}


def test_demo_works_only_in_its_own_folder(tmp_path, caplog):
    home = tmp_path / "home"
    home.mkdir()
    (home / "exp").mkdir()
    (home / "exp" / "paper.tex").write_text("precious")
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(["demo", "--workdir", str(home)]) == 2
    assert _error(caplog).startswith(f"--workdir {home}: the folder holds files that are not an earlier output")
    assert (home / "exp" / "paper.tex").read_text() == "precious"
    # a folder marked as the demo's whose exp/ leads elsewhere: the link is not followed into rmtree
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / OUTPUT_MARKER).write_text(json.dumps({"command": "demo"}))
    (demo / "exp").symlink_to(home / "exp")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(["demo", "--workdir", str(demo)]) == 2
    assert "exp is a link or a file" in _error(caplog)
    assert (home / "exp" / "paper.tex").read_text() == "precious"


def test_demo_workdir_is_passed_to_s3prl_as_data_or_refused(tmp_path, caplog):
    hostile = tmp_path / "x,,args.expdir=__import__('os').getcwd()"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(["demo", "--workdir", str(hostile)]) == 2
    assert _error(caplog).startswith("--workdir: the value")
    assert "cannot be handed to S3PRL as data" in _error(caplog)
    assert list(tmp_path.iterdir()) == []


# -- torch.hub ----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``os.makedirs(target)``: proof that a loader executed the file's code."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return os.makedirs, (self.target,)


def test_torch_hub_entry_reads_checkpoints_weights_only(repo_root, tmp_path):
    ran = tmp_path / "code-ran"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"Args": _Payload(ran)}, ckpt)
    with pytest.raises(InvalidInputError, match=str(ckpt)):
        torch.hub.load(str(repo_root), "emotion_multilabel", ckpt=str(ckpt), source="local")
    assert not ran.exists()


@pytest.mark.parametrize("device", ["gpu", "cuda:99"])
def test_device_must_exist(inputs, device, caplog):
    ckpt, audio = inputs
    code, message = _predict(ckpt, str(audio), "--device", device, caplog=caplog)
    assert code == 2
    assert message.startswith(f"--device {device!r}:")


def test_csv_header_and_text_cells_are_neutralised_numbers_are_not(tmp_path):
    """Class names come from a checkpoint: a formula in one is neutralised in the CSV header too."""
    from s3prl_emo.inference.predict import FilePrediction, write_output

    classes = ["=1+1", "sad"]
    results = [
        FilePrediction("@x.wav", {"=1+1": 0.75, "sad": 0.25}, windows=1, duration_s=1.0),
        FilePrediction("-y.wav", error="-y.wav: empty file (0 bytes)"),
    ]
    out = tmp_path / "p.csv"
    write_output(results, classes, out)
    lines = out.read_text().splitlines()
    assert lines == [
        "file,windows,duration_s,'=1+1,sad,labels,error",
        "'@x.wav,1,1.0,0.750000,0.250000,'=1+1,",
        "'-y.wav,0,0.0,,,,'-y.wav: empty file (0 bytes)",
    ]


def test_the_hub_models_predict_file_refuses_a_fifo(tmp_path):
    from s3prl_emo.inference.recognizer import EmotionRecognizer

    fifo = tmp_path / "stream.wav"
    os.mkfifo(fifo)
    model = EmotionRecognizer.__new__(EmotionRecognizer)  # no weights needed: refused before reading
    raised: list[BaseException] = []

    def call() -> None:
        try:
            model.predict_file(fifo)
        except BaseException as err:  # handed to the test thread
            raised.append(err)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "predict_file blocked on a FIFO"
    assert isinstance(raised[0], InvalidInputError)
    assert "not a regular file" in str(raised[0])
