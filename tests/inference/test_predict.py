"""``s3prl-emo predict`` and the torch.hub model's ``predict_files`` on generated audio."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from s3prl_emo.cli import main

pytestmark = pytest.mark.slow
CLASSES = ["angry", "sad", "neutral", "happy", "fear"]


@pytest.fixture(scope="module")
def ckpt(repo_root, synth_root, tmp_path_factory):
    """dev-best.ckpt of a two-step fbank run through S3PRL's runner (crop: 10 s)."""
    expdir = tmp_path_factory.mktemp("predict") / "exp"
    override = (
        f"config.downstream_expert.datarc.root='{synth_root}/',,config.runner.total_steps=2,,"
        "config.downstream_expert.datarc.train_batch_size=4"
    )
    result = subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", "-m", "train", "-u", "fbank", "-d", "emotion_multilabel",
         "-c", str(repo_root / "downstream_configs" / "SYNTH.yaml"), "-p", str(expdir), "--device", "cpu",
         "-o", override],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return expdir / "dev-best.ckpt"


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wav = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype("float32")
    return wav if channels == 1 else np.stack([wav, 0.5 * wav], axis=1)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    sf.write(folder / "a8k.wav", _tone(2.0, 8_000), 8_000)
    sf.write(folder / "b16k_stereo.flac", _tone(1.5, 16_000, 2), 16_000)
    sf.write(folder / "c44k_stereo.wav", _tone(3.0, 44_100, 2), 44_100)
    sf.write(folder / "d30s.wav", _tone(30.0, 16_000), 16_000)
    nested = folder / "more"
    nested.mkdir()
    sf.write(nested / "e44k.wav", _tone(1.0, 44_100), 44_100)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    return folder


def test_cli_labels_every_readable_file_and_names_the_corrupt_one(ckpt, audio, tmp_path, capsys, caplog):
    out = tmp_path / "labels.csv"
    code = main(["predict", "-e", str(ckpt), str(audio / "a8k.wav"), str(audio / "broken.wav"),
                 str(audio / "more"), str(audio / "d30s.wav"), "--out", str(out)])  # fmt: skip
    assert code == 1  # one file failed, the others were labelled
    assert f"{audio / 'broken.wav'}" in caplog.text
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table["file"]) == [str(audio / n) for n in ("a8k.wav", "broken.wav", "more/e44k.wav", "d30s.wav")]
    labelled = table[table["error"] == ""]
    assert len(labelled) == 3
    assert "broken.wav" in table.loc[1, "error"]
    assert labelled[CLASSES].astype(float).sum(axis=1).to_numpy() == pytest.approx(np.ones(3), abs=1e-5)
    assert list(labelled["windows"]) == [1, 1, 3]  # 30 s in windows of the 10 s training crop
    assert all(set(labels.split(";")) <= set(CLASSES) for labels in labelled["labels"])
    printed = capsys.readouterr().out
    assert "ERROR" in printed
    assert "d30s.wav" in printed


def test_json_output_and_window_length(ckpt, audio, tmp_path):
    out = tmp_path / "labels.json"
    assert main(["predict", "-e", str(ckpt), str(audio / "d30s.wav"), "--window-s", "4", "--format", "json",
                 "--out", str(out)]) == 0  # fmt: skip
    [entry] = json.loads(out.read_text())
    assert entry["windows"] == 8  # 7 x 4 s, and the 2 s tail (>= 1 s) is its own window
    assert sum(entry["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_torch_hub_predict_files_matches_the_cli(ckpt, audio, repo_root, tmp_path):
    model = torch.hub.load(str(repo_root), "emotion_multilabel", ckpt=str(ckpt), source="local")
    results = model.predict_files([audio], batch_size=3)
    names = [r.path.rsplit("/", 1)[-1] for r in results]
    assert names == ["a8k.wav", "b16k_stereo.flac", "broken.wav", "c44k_stereo.wav", "d30s.wav", "e44k.wav"]
    by_name = dict(zip(names, results, strict=True))
    assert by_name["broken.wav"].error
    assert "broken.wav" in by_name["broken.wav"].error
    for name, result in by_name.items():
        if name != "broken.wav":
            assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5), name
    # a short file is one window: the same as predict() on its waveform
    single = model.predict(*sf.read(audio / "c44k_stereo.wav", dtype="float32"))
    assert by_name["c44k_stereo.wav"].probabilities == pytest.approx(single, abs=1e-4)
    out = tmp_path / "cli.csv"
    main(["predict", "-e", str(ckpt), str(audio), "--out", str(out)])
    table = pd.read_csv(out, keep_default_na=False).set_index("file")
    row = table.loc[str(audio / "d30s.wav")]
    assert [float(row[c]) for c in CLASSES] == pytest.approx(
        [by_name["d30s.wav"].probabilities[c] for c in CLASSES], abs=1e-5
    )


FORMULAS = ["=HYPERLINK(1).wav", "+1.wav", "-2.wav", "@SUM(1).wav", "\tx.wav", "a,\nb.wav"]


def test_csv_neutralises_formulas_keeps_names_and_probabilities(ckpt, tmp_path, monkeypatch, capsys):
    """Relative names that a spreadsheet would run get a leading ' in the CSV only; numbers are unchanged."""
    for name in FORMULAS:
        sf.write(tmp_path / name, _tone(1.0, 16_000), 16_000)
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "no_frames.wav", np.zeros(0, dtype="float32"), 16_000)
    monkeypatch.chdir(tmp_path)
    names = [*FORMULAS, "empty.wav", "no_frames.wav"]
    assert main(["predict", "-e", str(ckpt), "--out", "p.csv", "--", *names]) == 1
    printed = capsys.readouterr().out
    assert main(["predict", "-e", str(ckpt), "--out", "p.json", "--format", "json", "--", *names]) == 1
    table = pd.read_csv("p.csv", keep_default_na=False, dtype=str)
    shown = ["'" + n if n[0] in "=+-@\t" else n for n in FORMULAS]
    assert list(table["file"]) == [*shown, "empty.wav", "no_frames.wav"]  # "a,\nb.wav" round-trips, quoted
    entries = json.loads(Path("p.json").read_text())
    assert [e["file"] for e in entries] == names  # JSON keeps every name as it is
    for entry, (_, row) in zip(entries[: len(FORMULAS)], table.iterrows(), strict=False):
        assert [float(row[c]) for c in CLASSES] == pytest.approx([entry["probabilities"][c] for c in CLASSES], abs=1e-6)
    errors = dict(zip(table["file"], table["error"], strict=True))
    assert errors["empty.wav"] == "empty.wav: empty file (0 bytes)"
    assert errors["no_frames.wav"].startswith("no_frames.wav: ")
    # the printed table has one line per file: the newline and tab are shown escaped
    lines = printed.splitlines()
    assert len(lines) == 1 + len(names) + 1
    assert lines[-1] == "wrote p.csv"
    assert any(line.startswith("a,\\nb.wav") for line in lines)
    assert any(line.startswith("\\tx.wav") for line in lines)
