"""export-splits: csv, Kaldi data folders and S3PRL emotion meta-data from a tiny corpus."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from s3prl_emo.cli import main
from s3prl_emo.data.export import (
    emotion_label,
    export_csv,
    export_kaldi,
    export_s3prl_emotion,
    s3prl_emotion_audio_problem,
)
from s3prl_emo.data.layout import CorpusConfig, label_frame, labels_path, write_config, write_labels
from s3prl_emo.data.partitions import assign_splits, fold_table
from s3prl_emo.errors import InvalidInputError

CLASSES = ("neutral", "happy", "excited", "angry", "sad", "fear")
LOW = 0.01  # 0.05 / (K - 1): what a unanimous utterance has on every other class


def _row(**mass: float) -> list[float]:
    rest = (1.0 - sum(mass.values())) / (len(CLASSES) - len(mass))
    return [mass.get(c, rest) for c in CLASSES]


# (label row, the S3PRL emotion label it must get, None = left out)
ROWS = [
    (_row(neutral=0.95), "neu"),
    (_row(happy=0.95), "hap"),
    (_row(excited=0.95), "hap"),  # excited merges into happy
    (_row(angry=0.95), "ang"),
    (_row(sad=0.95), "sad"),
    (_row(fear=0.95), None),  # outside the four classes
    (_row(happy=0.47, excited=0.47), "hap"),  # a tie inside one label
    (_row(angry=0.47, sad=0.47), None),  # a tie between two labels
]


def write_corpus(root: Path, classes=CLASSES) -> Path:
    """``root/CREMA-D/{Audios,Primary}``: 2 actors per session, published folds 1..5."""
    actors = [1037, 1038, 1001, 1002, 1073, 1074, 1055, 1056, 1019, 1020]
    names, speakers, labels = [], [], []
    for i, actor in enumerate(actors):
        for j in range(4):
            row, _ = ROWS[(i + j) % len(ROWS)]
            names.append(f"{actor}_IEO_X{j}_XX.wav")
            speakers.append(str(actor))
            labels.append(row)
    corpus = root / "CREMA-D"
    primary = corpus / "Primary"
    primary.mkdir(parents=True)
    write_config(CorpusConfig(tuple(classes)), primary)
    for fold in fold_table("crema-d"):
        frame = label_frame(names, np.array(labels), classes, assign_splits("crema-d", fold, names),
                            speakers=speakers)
        write_labels(frame, labels_path(primary, fold))
    (corpus / "Audios").mkdir()
    rng = np.random.default_rng(0)
    for name in names:
        sf.write(corpus / "Audios" / name, rng.normal(0, 0.01, 1600), 16000)
    return primary


@pytest.fixture()
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "root")


def test_emotion_label_argmax_with_excited_as_happy():
    for row, expected in ROWS:
        assert emotion_label(np.array(row), CLASSES) == expected


def test_export_csv(corpus, tmp_path):
    summary = export_csv(corpus, tmp_path / "csv")
    assert summary.folds == (1, 2, 3, 4, 5)
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [f"fold{k}.csv" for k in range(1, 6)]
    for k in range(1, 6):
        out = pd.read_csv(tmp_path / "csv" / f"fold{k}.csv", dtype=str)
        source = pd.read_csv(labels_path(corpus, k), dtype=str)
        assert list(out.columns) == ["FileName", "SpkrID", "Split_Set"]
        pd.testing.assert_frame_equal(out, source[["FileName", "SpkrID", "Split_Set"]])
    assert summary.written[1] == {"Train": 24, "Development": 8, "Test": 8}


def _pairs(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]


def test_export_kaldi(corpus, tmp_path):
    export_kaldi(corpus, tmp_path / "kaldi")
    audio = (corpus.parent / "Audios").resolve()
    for k in range(1, 6):
        source = pd.read_csv(labels_path(corpus, k), dtype=str)
        seen = []
        for split, folder in (("Train", "train"), ("Development", "dev"), ("Test", "test")):
            data = tmp_path / "kaldi" / f"fold{k}" / folder
            wav_scp, utt2spk = _pairs(data / "wav.scp"), _pairs(data / "utt2spk")
            spk2utt = [line.split() for line in (data / "spk2utt").read_text().splitlines()]
            part = source[source["Split_Set"] == split]
            assert len(wav_scp) == len(utt2spk) == len(part)
            # every file sorted in C order, utterance ids prefixed by their speaker
            for lines in (wav_scp, utt2spk, spk2utt):
                keys = [line[0] for line in lines]
                assert keys == sorted(keys) and len(set(keys)) == len(keys)
            assert [u for u, _ in wav_scp] == [u for u, _ in utt2spk]
            assert all(utt.startswith(f"{spk}-") for utt, spk in utt2spk)
            assert [s for _, s in utt2spk] == sorted(s for _, s in utt2spk)
            # spk2utt is utt2spk inverted
            inverted: dict[str, list[str]] = {}
            for utt, spk in utt2spk:
                inverted.setdefault(spk, []).append(utt)
            assert {line[0]: line[1:] for line in spk2utt} == inverted
            for utt, path in wav_scp:
                assert Path(path).is_absolute() and Path(path).is_file()
                assert Path(path).resolve().parent == audio
                assert utt == f"{utt.split('-')[0]}-{Path(path).stem}"
            assert {Path(p).name for _, p in wav_scp} == set(part["FileName"])
            seen += [Path(p).name for _, p in wav_scp]
        assert sorted(seen) == sorted(source["FileName"])


def test_export_kaldi_without_speakers_uses_the_utterance(tmp_path):
    primary = write_corpus(tmp_path / "root")
    for k in range(1, 6):
        frame = pd.read_csv(labels_path(primary, k)).drop(columns="SpkrID")
        frame.to_csv(labels_path(primary, k), index=False)
    export_kaldi(primary, tmp_path / "kaldi")
    utt2spk = _pairs(tmp_path / "kaldi" / "fold1" / "test" / "utt2spk")
    assert utt2spk and all(utt == spk for utt, spk in utt2spk)


def test_export_s3prl_emotion(corpus, tmp_path):
    summary = export_s3prl_emotion(corpus, tmp_path / "emotion")
    expected = {Path(n).name: label for n, label in _expected_labels(corpus).items()}
    for k in range(1, 6):
        source = pd.read_csv(labels_path(corpus, k), dtype=str)
        split_of = dict(zip(source["FileName"], source["Split_Set"], strict=True))
        folder = tmp_path / "emotion" / f"Session{k}"
        train = json.loads((folder / "train_meta_data.json").read_text())
        test = json.loads((folder / "test_meta_data.json").read_text())
        for data, splits in ((train, {"Train", "Development"}), (test, {"Test"})):
            assert data["labels"] == {"neu": 0, "hap": 1, "ang": 2, "sad": 3}
            assert {e["label"] for e in data["meta_data"]} <= set(data["labels"])
            for entry in data["meta_data"]:
                assert entry["label"] == expected[entry["path"]]
                assert split_of[entry["path"]] in splits
                assert entry["speaker"] == entry["path"][:4]
                assert (corpus.parent / "Audios" / entry["path"]).is_file()
            wanted = {n for n, s in split_of.items() if s in splits and expected[n] is not None}
            assert {e["path"] for e in data["meta_data"]} == wanted
        assert summary.left_out[k] == sum(label is None for label in expected.values()) == 8
        assert summary.written[k]["train"] + summary.written[k]["test"] == 32


def _expected_labels(corpus: Path) -> dict[str, str | None]:
    frame = pd.read_csv(labels_path(corpus, 1))
    by_row = {tuple(np.round(row, 4)): label for row, label in ROWS}
    values = frame[list(CLASSES)].to_numpy()
    return {n: by_row[tuple(np.round(r, 4))] for n, r in zip(frame["FileName"], values, strict=True)}


@pytest.mark.filterwarnings("ignore::UserWarning:torchaudio")
def test_s3prl_emotion_output_loads_in_s3prl(corpus, tmp_path):
    dataset_module = pytest.importorskip("s3prl.downstream.emotion.dataset")
    problem = s3prl_emotion_audio_problem()
    if problem:
        pytest.skip(problem)
    export_s3prl_emotion(corpus, tmp_path / "emotion")
    dataset = dataset_module.IEMOCAPDataset(str(corpus.parent / "Audios"),
                                            str(tmp_path / "emotion" / "Session1" / "test_meta_data.json"),
                                            pre_load=False)
    wav, label, name = dataset[0]
    assert wav.shape == (1600,) and label in range(4) and name.endswith("_XX")


def test_exports_are_staged_and_never_half_written(tmp_path):
    unmappable = ("fear", "disgust", "contempt", "surprise", "calm", "other")
    primary = write_corpus(tmp_path / "root", classes=unmappable)
    with pytest.raises(InvalidInputError, match="maps to S3PRL"):
        export_s3prl_emotion(primary, tmp_path / "emotion")
    assert not (tmp_path / "emotion").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["root"]
    export_csv(primary, tmp_path / "csv")
    with pytest.raises(InvalidInputError, match="already exists"):
        export_csv(primary, tmp_path / "csv")
    export_csv(primary, tmp_path / "csv", overwrite=True)


def test_s3prl_emotion_refuses_an_empty_test_set(tmp_path):
    primary = write_corpus(tmp_path / "root")
    frame = pd.read_csv(labels_path(primary, 1), dtype={"SpkrID": str})
    frame.loc[frame["Split_Set"] == "Test", list(CLASSES)] = _row(fear=0.95)  # fold 1's Test: all fear
    frame.to_csv(labels_path(primary, 1), index=False)
    with pytest.raises(InvalidInputError, match="fold 1: no Test utterance"):
        export_s3prl_emotion(primary, tmp_path / "emotion")
    assert not (tmp_path / "emotion").exists()


@pytest.mark.parametrize("fmt", ["csv", "kaldi", "s3prl-emotion"])
def test_export_splits_cli(corpus, tmp_path, capsys, fmt):
    out = tmp_path / fmt
    assert main(["export-splits", str(corpus), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {fmt} for fold(s) 1, 2, 3, 4, 5" in printed
    assert ("left out" in printed) == (fmt == "s3prl-emotion")
    first = {"csv": "fold1.csv", "kaldi": "fold1/train/wav.scp",
             "s3prl-emotion": "Session1/train_meta_data.json"}
    assert (out / first[fmt]).is_file()


def test_export_splits_cli_refuses_to_overwrite(corpus, tmp_path, caplog):
    (tmp_path / "out").mkdir()
    with caplog.at_level(logging.ERROR):
        assert main(["export-splits", str(corpus), "--format", "csv", "--out", str(tmp_path / "out")]) == 2
    assert "already exists" in caplog.text
    assert main(["export-splits", str(corpus), "--format", "csv", "--out", str(tmp_path / "out"),
                 "--overwrite"]) == 0
