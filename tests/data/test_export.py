"""export-splits: csv, Kaldi data folders and S3PRL emotion meta-data from a tiny corpus."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import nullcontext
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
from s3prl_emo.runtime.guards import OUTPUT_MARKER

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
        frame = label_frame(names, np.array(labels), classes, assign_splits("crema-d", fold, names), speakers=speakers)
        write_labels(frame, labels_path(primary, fold))
    (corpus / "Audios").mkdir()
    rng = np.random.default_rng(0)
    for name in names:
        sf.write(corpus / "Audios" / name, rng.normal(0, 0.01, 1600), 16000)
    return primary


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "root")


def test_emotion_label_argmax_with_excited_as_happy():
    for row, expected in ROWS:
        assert emotion_label(np.array(row), CLASSES) == expected


def test_export_csv(corpus, tmp_path):
    summary = export_csv(corpus, tmp_path / "csv")
    assert summary.folds == (1, 2, 3, 4, 5)
    names = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert names == [OUTPUT_MARKER] + [f"fold{k}.csv" for k in range(1, 6)]
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
                assert keys == sorted(keys)
                assert len(set(keys)) == len(keys)
            assert [u for u, _ in wav_scp] == [u for u, _ in utt2spk]
            assert all(utt.startswith(f"{spk}-") for utt, spk in utt2spk)
            assert [s for _, s in utt2spk] == sorted(s for _, s in utt2spk)
            # spk2utt is utt2spk inverted
            inverted: dict[str, list[str]] = {}
            for utt, spk in utt2spk:
                inverted.setdefault(spk, []).append(utt)
            assert {line[0]: line[1:] for line in spk2utt} == inverted
            for utt, path in wav_scp:
                assert Path(path).is_absolute()
                assert Path(path).is_file()
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
    assert utt2spk
    assert all(utt == spk for utt, spk in utt2spk)


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
    dataset = dataset_module.IEMOCAPDataset(
        str(corpus.parent / "Audios"), str(tmp_path / "emotion" / "Session1" / "test_meta_data.json"), pre_load=False
    )
    wav, label, name = dataset[0]
    assert wav.shape == (1600,)
    assert label in range(4)
    assert name.endswith("_XX")


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
    first = {"csv": "fold1.csv", "kaldi": "fold1/train/wav.scp", "s3prl-emotion": "Session1/train_meta_data.json"}
    assert (out / first[fmt]).is_file()


def test_export_splits_cli_refuses_to_overwrite(corpus, tmp_path, caplog):
    (tmp_path / "out").mkdir()
    with caplog.at_level(logging.ERROR):
        assert main(["export-splits", str(corpus), "--format", "csv", "--out", str(tmp_path / "out")]) == 2
    assert "already exists" in caplog.text
    assert main(["export-splits", str(corpus), "--format", "csv", "--out", str(tmp_path / "out"), "--overwrite"]) == 0


# -- hostile input: output folders, names other programs interpret -------------------------------

FORMATS = ["csv", "kaldi", "s3prl-emotion"]


def _export(corpus: Path, out: Path, fmt: str = "csv", *extra: str) -> int:
    return main(["export-splits", str(corpus), "--format", fmt, "--out", str(out), *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _set_value(primary: Path, old: str, new: str, column: str = "FileName") -> None:
    """Replace ``old`` by ``new`` in ``column`` of every fold's label file (of the row whose FileName is ``old``)."""
    for k in range(1, 6):
        frame = pd.read_csv(labels_path(primary, k), dtype={"FileName": str, "SpkrID": str})
        frame.loc[frame["FileName"] == old, column] = new
        frame.to_csv(labels_path(primary, k), index=False)


@pytest.mark.parametrize("target", ["primary", "corpus", "root", "audios"])
def test_export_never_replaces_the_corpus(corpus, caplog, target):
    out = {
        "primary": corpus,
        "corpus": corpus.parent,
        "root": corpus.parent.parent,
        "audios": corpus.parent / "Audios",
    }[target]
    before = _snapshot(corpus.parent)
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, out, "csv", "--overwrite") == 2
    assert "would replace the input" in caplog.text
    assert _snapshot(corpus.parent) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_refuses_an_unrelated_folder_even_with_overwrite(corpus, tmp_path, caplog, fmt):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("keep me")
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, docs, fmt, "--overwrite") == 2
    assert "not an earlier output of `s3prl-emo export-splits`" in caplog.text
    assert _snapshot(docs) == {"notes.md": b"keep me"}


def test_export_refuses_a_file_as_out_in_one_line(corpus, tmp_path, caplog):
    out = tmp_path / "out.txt"
    out.write_text("x")
    for extra in ((), ("--overwrite",)):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert _export(corpus, out, "kaldi", *extra) == 2
        assert caplog.records[-1].getMessage() == f"--out {out}: is a file, not a folder"
    assert out.read_text() == "x"


def test_export_overwrite_replaces_only_its_own_output(corpus, tmp_path, caplog):
    out = tmp_path / "out"
    assert _export(corpus, out, "kaldi") == 0
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, out, "csv") == 2
    assert "already exists; pass --overwrite" in caplog.text
    assert (out / "fold1" / "train" / "wav.scp").is_file()
    assert _export(corpus, out, "csv", "--overwrite") == 0  # another format, same command: replaced
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER] + [f"fold{k}.csv" for k in range(1, 6)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "root"]  # no staging folder left


NAME = "1037_IEO_X0_XX.wav"  # an utterance of write_corpus, speaker 1037


@pytest.mark.parametrize(
    ("column", "value", "no_speakers"),
    [
        ("FileName", "evil.wav|", False),  # wav.scp would run it as a command
        ("FileName", "|evil.wav", True),  # without speakers the utterance id starts with '|'
        ("FileName", "a b.wav", False),  # whitespace splits the table
        ("FileName", "clip.wav:123", False),  # read as an offset into clip.wav
        ("FileName", "-", True),  # standard input
        ("SpkrID", "-", False),
        ("SpkrID", "10 37", False),
    ],
)
def test_export_kaldi_refuses_tokens_kaldi_would_interpret(corpus, tmp_path, caplog, column, value, no_speakers):
    _set_value(corpus, NAME, value, column)
    if no_speakers:
        for k in range(1, 6):
            pd.read_csv(labels_path(corpus, k)).drop(columns="SpkrID").to_csv(labels_path(corpus, k), index=False)
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, tmp_path / "kaldi", "kaldi") == 2
    message = caplog.records[-1].getMessage()
    utterance = value if column == "FileName" else NAME
    assert f"utterance {utterance!r}" in message
    assert "cannot be written to a Kaldi table" in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing written, no staging folder


def test_export_kaldi_keeps_a_pipe_that_is_not_at_either_end(corpus, tmp_path):
    _set_value(corpus, NAME, "|odd|name.wav")
    assert _export(corpus, tmp_path / "kaldi", "kaldi") == 0
    scp = [
        line
        for k in range(1, 6)
        for split in ("train", "dev", "test")
        for line in (tmp_path / "kaldi" / f"fold{k}" / split / "wav.scp").read_text().splitlines()
    ]
    assert sum(line.startswith("1037-|odd|name ") and line.endswith("/Audios/|odd|name.wav") for line in scp) == 5


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("FileName", "two\nlines.wav"),
        ("FileName", "two\u2028lines.wav"),
        ("SpkrID", "10\n37"),
        ("Gender", "F\n"),
        ("FileName", "../outside.wav"),
    ],
)
def test_export_refuses_line_breaks_and_paths_outside_the_audio(corpus, tmp_path, caplog, fmt, column, value):
    if column == "Gender":
        for k in range(1, 6):
            frame = pd.read_csv(labels_path(corpus, k), dtype={"SpkrID": str})
            frame.insert(len(frame.columns) - 1, "Gender", "F")
            frame.to_csv(labels_path(corpus, k), index=False)
    _set_value(corpus, NAME, value, column)
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, tmp_path / "out", fmt) == 2
    message = caplog.records[-1].getMessage()
    utterance = value if column == "FileName" else NAME
    assert message.startswith(f"{labels_path(corpus, 1)}: utterance {utterance!r}: {column}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_export_csv_writes_formula_like_names_as_they_are(corpus, tmp_path, caplog):
    _set_value(corpus, NAME, "=HYPERLINK(1).wav")
    with caplog.at_level(logging.WARNING):
        assert _export(corpus, tmp_path / "csv", "csv") == 0
    assert "1 FileName/SpkrID value(s) start with = + - or @" in caplog.text
    table = pd.read_csv(tmp_path / "csv" / "fold1.csv", dtype=str)
    assert "=HYPERLINK(1).wav" in set(table["FileName"])  # a key to join on: not quoted


# -- lhotse and Hugging Face audiofolder, on the built-in synthetic corpus --------------------------

SPLIT_FOLDER = {"Train": "train", "Development": "dev", "Test": "test"}


def _synth_with_attributes(root: Path) -> Path:
    """The synthetic corpus's Primary folder with its attribute columns replaced by EmoAct and EmoVal
    alone (one EmoVal left empty)."""
    primary = root / "SYNTH" / "Primary"
    names = sorted(pd.read_csv(labels_path(primary, 1))["FileName"])
    activation = dict(zip(names, np.round(np.random.default_rng(0).uniform(1, 7, len(names)), 3), strict=True))
    for k in range(1, 6):
        frame = pd.read_csv(labels_path(primary, k), dtype={"SpkrID": str})
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Emo")])
        frame.insert(len(frame.columns) - 3, "EmoAct", frame["FileName"].map(activation))
        frame.insert(len(frame.columns) - 3, "EmoVal", 8 - frame["EmoAct"])
        frame.loc[frame["FileName"] == names[0], "EmoVal"] = np.nan
        frame.to_csv(labels_path(primary, k), index=False)
    return primary


def _classes(primary: Path) -> list[str]:
    return list(json.loads((primary / "config.json").read_text())["categorical"]["emo_type"])


def _above(row: np.ndarray) -> list[str]:
    from s3prl_emo.metrics import binarize

    return [int(j) for j in np.flatnonzero(binarize(row[None, :])[0])]


def test_export_lhotse_round_trips_through_lhotse(synth_copy, tmp_path):
    lhotse = pytest.importorskip("lhotse", reason="lhotse is not installed (pip install 's3prl-emo[lhotse]')")
    primary = _synth_with_attributes(synth_copy)
    classes = _classes(primary)
    out = tmp_path / "lhotse"
    assert _export(primary, out, "lhotse") == 0
    audio = primary.parent / "Audios"
    rates, channels = set(), set()
    for k in range(1, 6):
        source = pd.read_csv(labels_path(primary, k), dtype={"SpkrID": str}).set_index("FileName")
        speakers_by_split = {}
        for split, folder in SPLIT_FOLDER.items():
            recordings = lhotse.load_manifest(out / f"fold{k}" / f"recordings_{folder}.jsonl.gz")
            supervisions = lhotse.load_manifest(out / f"fold{k}" / f"supervisions_{folder}.jsonl.gz")
            assert isinstance(recordings, lhotse.RecordingSet)
            assert isinstance(supervisions, lhotse.SupervisionSet)
            part = source[source["Split_Set"] == split]
            assert len(supervisions) == len(recordings) == len(part) > 0
            assert {s.id for s in supervisions} == set(part.index) == {r.id for r in recordings}
            lhotse.validate_recordings_and_supervisions(recordings, supervisions)
            for rec in recordings:
                info = sf.info(audio / rec.id)
                assert abs(rec.duration - info.duration) < 1e-3
                assert (rec.sampling_rate, rec.num_channels) == (info.samplerate, info.channels)
                assert Path(rec.sources[0].source) == (audio / rec.id).absolute()
                rates.add(rec.sampling_rate)
                channels.add(rec.num_channels)
            for sup in supervisions:
                row = part.loc[sup.id]
                expected = row[classes].to_numpy(dtype=float)
                assert list(sup.custom["soft_label"]) == classes
                np.testing.assert_allclose(list(sup.custom["soft_label"].values()), expected, rtol=0, atol=1e-6)
                assert sup.custom["labels"] == [classes[j] for j in _above(expected)]
                assert sup.custom["EmoAct"] == pytest.approx(row["EmoAct"], abs=1e-9)
                assert sup.custom["EmoVal"] is None if np.isnan(row["EmoVal"]) else sup.EmoVal == row["EmoVal"]
                assert (sup.speaker, sup.gender) == (row["SpkrID"], row["Gender"])
                assert sup.start == 0
                assert sup.duration == recordings[sup.recording_id].duration
            speakers_by_split[split] = {s.speaker for s in supervisions}
            cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
            assert len(cuts) == len(part)
            assert all(c.supervisions[0].soft_label == part.loc[c.recording_id, classes].to_dict() for c in cuts)
        train, dev, test = speakers_by_split.values()
        assert not (train & dev)
        assert not (train & test)
        assert not (dev & test)
    assert rates == {16000, 44100}
    assert channels == {1, 2}


def test_export_lhotse_without_lhotse_says_how_to_install_it(synth_copy, tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "lhotse", None)  # import lhotse now fails as if it were not installed
    with caplog.at_level(logging.ERROR):
        assert _export(synth_copy / "SYNTH" / "Primary", tmp_path / "lhotse", "lhotse") == 2
    assert caplog.records[-1].getMessage() == (
        "--format lhotse needs lhotse, which is not installed: pip install 's3prl-emo[lhotse]'"
    )
    assert not (tmp_path / "lhotse").exists()


@pytest.mark.parametrize(("fmt", "damage"), [("lhotse", "missing"), ("audiofolder", "missing"), ("lhotse", "corrupt")])
def test_export_with_audio_refuses_a_missing_or_unreadable_file(synth_copy, tmp_path, caplog, fmt, damage):
    if fmt == "lhotse":
        pytest.importorskip("lhotse", reason="lhotse is not installed")
    primary = synth_copy / "SYNTH" / "Primary"
    name = pd.read_csv(labels_path(primary, 1))["FileName"].iat[3]
    (primary.parent / "Audios" / name).unlink()
    if damage == "corrupt":
        (primary.parent / "Audios" / name).write_bytes(b"not audio")
    with caplog.at_level(logging.ERROR):
        assert _export(primary, tmp_path / "out", fmt) == 2
    message = caplog.records[-1].getMessage()
    assert f"utterance {name!r}: " + ("no audio file" if damage == "missing" else "cannot read") in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def _metadata(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"file_name": str, "labels": str, "speaker": str}, keep_default_na=False)


@pytest.mark.parametrize("audio", ["link", "copy"])
def test_export_audiofolder(synth_copy, tmp_path, audio):
    primary = _synth_with_attributes(synth_copy)
    classes = _classes(primary)
    out = tmp_path / "hf"
    assert _export(primary, out, "audiofolder", "--audio", audio) == 0
    audio_dir = primary.parent / "Audios"
    for k in range(1, 6):
        source = pd.read_csv(labels_path(primary, k), dtype={"SpkrID": str}).set_index("FileName")
        speakers = []
        for split, folder in SPLIT_FOLDER.items():
            split_dir = out / f"fold{k}" / folder
            table = _metadata(split_dir / "metadata.csv")
            assert list(table.columns) == ["file_name", *classes, "labels", "speaker", "gender", "EmoAct", "EmoVal"]
            part = source[source["Split_Set"] == split]
            assert sorted(table["file_name"]) == sorted(part.index)
            for _, row in table.iterrows():
                written = split_dir / row["file_name"]
                assert written.is_file()
                assert written.is_symlink() == (audio == "link")
                assert written.read_bytes() == (audio_dir / row["file_name"]).read_bytes()
                expected = part.loc[row["file_name"]]
                values = expected[classes].to_numpy(dtype=float)
                np.testing.assert_allclose(row[classes].to_numpy(dtype=float), values, rtol=0, atol=1e-6)
                assert row["labels"] == ";".join(classes[j] for j in _above(values))
                assert (row["speaker"], row["gender"]) == (expected["SpkrID"], expected["Gender"])
                assert float(row["EmoAct"]) == expected["EmoAct"]
                assert (
                    row["EmoVal"] == "" if np.isnan(expected["EmoVal"]) else float(row["EmoVal"]) == expected["EmoVal"]
                )
            speakers.append(set(table["speaker"]))
            assert sorted(p.name for p in split_dir.iterdir()) == sorted(["metadata.csv", *part.index])
        assert not (speakers[0] & speakers[1])
        assert not (speakers[0] & speakers[2])
        assert not (speakers[1] & speakers[2])


def _rename_audio(primary: Path, renames: dict[str, str]) -> None:
    audio = primary.parent / "Audios"
    for old, new in renames.items():
        (audio / new).parent.mkdir(parents=True, exist_ok=True)
        (audio / old).rename(audio / new)
        _set_value(primary, old, new)


def test_export_audiofolder_keeps_names_from_subfolders_apart(synth_copy, tmp_path):
    primary = synth_copy / "SYNTH" / "Primary"
    frame = pd.read_csv(labels_path(primary, 1))
    first, second = frame.loc[frame["Split_Set"] == "Train", "FileName"].iloc[:2]
    _rename_audio(primary, {first: "s1/clip.wav", second: "s2/clip.wav"})
    assert _export(primary, tmp_path / "hf", "audiofolder", "--audio", "copy") == 0
    train = tmp_path / "hf" / "fold1" / "train"
    assert {"s1/clip.wav", "s2/clip.wav"} <= set(_metadata(train / "metadata.csv")["file_name"])
    audio = primary.parent / "Audios"
    for name in ("s1/clip.wav", "s2/clip.wav"):
        assert (train / name).read_bytes() == (audio / name).read_bytes()
    assert (train / "s1/clip.wav").read_bytes() != (train / "s2/clip.wav").read_bytes()


def test_export_audiofolder_refuses_names_one_folder_cannot_hold(synth_copy, tmp_path, caplog):
    primary = synth_copy / "SYNTH" / "Primary"
    frame = pd.read_csv(labels_path(primary, 1))
    first, second = frame.loc[frame["Split_Set"] == "Train", "FileName"].iloc[:2]
    _rename_audio(primary, {first: "Clip.wav", second: "sub/x/../clip.wav"})
    _set_value(primary, "sub/x/../clip.wav", "clip.wav")
    (primary.parent / "Audios" / "sub" / "clip.wav").rename(primary.parent / "Audios" / "clip.wav")
    with caplog.at_level(logging.ERROR):
        assert _export(primary, tmp_path / "hf", "audiofolder") == 2
    assert "utterances 'Clip.wav' and 'clip.wav' differ only in case" in caplog.records[-1].getMessage()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_export_audio_option_belongs_to_audiofolder(corpus, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert _export(corpus, tmp_path / "csv", "csv", "--audio", "copy") == 2
    assert "--audio applies to --format audiofolder only" in caplog.text
    assert not (tmp_path / "csv").exists()


def test_audiofolder_export_loads_with_datasets(synth_copy, tmp_path):
    datasets = pytest.importorskip(
        "datasets", reason="datasets is not installed (not a dependency: only a reader of the audiofolder export)"
    )
    major = int(datasets.__version__.split(".")[0])
    if major >= 4:
        try:
            import torchcodec.encoders  # noqa: F401 - datasets >= 4 builds audio columns with it
        except (ImportError, OSError, RuntimeError) as err:
            pytest.skip(f"datasets {datasets.__version__} needs a working torchcodec to build audio data ({err})")
    primary = synth_copy / "SYNTH" / "Primary"
    classes = _classes(primary)
    assert _export(primary, tmp_path / "hf", "audiofolder") == 0
    # datasets 3 predates pandas 3's string dtype and reads file_name as large_string without this
    strings = (
        pd.option_context("future.infer_string", False)
        if major < 4 and int(pd.__version__.split(".")[0]) >= 3
        else nullcontext()
    )
    with strings:
        loaded = datasets.load_dataset(
            "audiofolder", data_dir=str(tmp_path / "hf" / "fold2"), cache_dir=str(tmp_path / "cache")
        )
    source = pd.read_csv(labels_path(primary, 2), dtype={"SpkrID": str}).set_index("FileName")
    for split, name in (("Train", "train"), ("Development", "validation"), ("Test", "test")):
        part = source[source["Split_Set"] == split]
        data = loaded[name].cast_column("audio", datasets.Audio(decode=False))
        assert data.num_rows == len(part)
        assert {*classes, "audio", "labels", "speaker", "gender"} == set(data.column_names)
        files = [Path(a["path"]) for a in data["audio"]]
        assert all(f.is_file() for f in files)
        assert sorted(f.name for f in files) == sorted(part.index)
        by_name = dict(zip((f.name for f in files), data[classes[0]], strict=True))
        np.testing.assert_allclose([by_name[n] for n in part.index], part[classes[0]], rtol=0, atol=1e-6)
