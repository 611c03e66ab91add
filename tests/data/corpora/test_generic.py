"""``prepare generic``: a user corpus (audio folder + votes.csv + meta.csv) end to end."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from helpers.corpus_checks import read_str_csv, row_of
from helpers.raw_fixtures import GENERIC_CLASSES, write_csv, write_wav

from s3prl_emo.cli import main
from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.corpora import generic
from s3prl_emo.data.export import EXPORTERS
from s3prl_emo.data.labels import EXCLUDED_OTHER
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.data.partitions import balanced_session_folds
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

CLASSES = ("angry", "happy", "neutral", "sad")
OFF = 0.05 / 3  # 0.05 / (K - 1), K = 4
# Hand-computed (EMO-SUPERB's soft-label rule), K = 4: p = (1 - 0.2/3) q + 0.05/3.
EXPECTED = {  # FileName -> (soft label, SpkrID, Gender, Session)
    "g01.wav": ({"happy": 0.716667, "neutral": 0.25}, "spkA", "Female", "s1"),  # happy x3 + neutral x1
    "g02.wav": ({"angry": 0.95}, "spkA", "Female", "s1"),  # angry, angry, other (dropped)
    "g04.wav": ({"sad": 0.95}, "spkB", "Male", "s2"),  # "sad", "Sad"; Gender "male" -> Male
    "g05.wav": ({"neutral": 0.95}, "spkC", "Female", "s3"),
    "g06.wav": ({"neutral": 0.95}, "spkC", "Female", "s3"),
    "g07.wav": ({"happy": 0.95}, "spkD", "Male", "s3"),
    "g08.wav": ({"sad": 0.95}, "spkE", "Female", "s4"),
    "g09.wav": ({"angry": 0.95}, "spkF", "Male", "s5"),
    "g10.wav": ({"angry": 0.95}, "spkF", "Male", "s5"),
}


def _cli(audio: Path, votes: Path, meta: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "prepare",
            "generic",
            "--raw",
            str(audio),
            "--votes",
            str(votes),
            "--meta",
            str(meta),
            "--classes",
            GENERIC_CLASSES,
            "--out",
            str(out),
            *extra,
        ]
    )


Raw = tuple[Path, Path, Path]  # audio folder, votes.csv, meta.csv


def test_cli_prepares_soft_labels_and_session_folds(generic_raw: Raw, tmp_path: Path) -> None:
    out = tmp_path / "root"
    assert _cli(*generic_raw, out, "--folds", "3", "--name", "MYCORPUS", "--seed", "7") == 0
    folder = out / "MYCORPUS" / "Primary"
    config = read_config(folder)
    assert config.classes == CLASSES
    assert config.description == "MYCORPUS corpus - 4 classes"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "labels_consensus_1.csv",
        "labels_consensus_2.csv",
        "labels_consensus_3.csv",
    ]
    assert sorted(p.name for p in (out / "MYCORPUS" / "Audios").iterdir()) == sorted(EXPECTED)
    tested: dict[str, list[int]] = defaultdict(list)
    for fold in (1, 2, 3):
        path = folder / f"labels_consensus_{fold}.csv"
        read_labels(path, CLASSES)
        frame = read_str_csv(path)
        assert list(frame.columns) == ["FileName", *CLASSES, "SpkrID", "Gender", "Split_Set"]
        assert list(frame["FileName"]) == list(EXPECTED)
        split_of_session: dict[str, set[str]] = defaultdict(set)
        for name, (label, speaker, gender, session) in EXPECTED.items():
            row = row_of(frame, name)
            np.testing.assert_allclose(
                row[list(CLASSES)].astype(float), [label.get(c, OFF) for c in CLASSES], atol=1e-6, err_msg=name
            )
            assert (row["SpkrID"], row["Gender"]) == (speaker, gender)
            split_of_session[session].add(row["Split_Set"])
            if row["Split_Set"] == "Test":
                tested[name].append(fold)
        assert all(len(splits) == 1 for splits in split_of_session.values()), split_of_session
        # sessions of 3, 2, 2, 1, 1 utterances deal into three groups of exactly 3 utterances
        assert frame["Split_Set"].value_counts().to_dict() == {"Train": 3, "Development": 3, "Test": 3}
        sessions = [EXPECTED[n][3] for n in frame["FileName"]]
        assert list(frame["Split_Set"]) == balanced_session_folds(sessions, 3, seed=7)[fold]
    assert sorted(tested) == sorted(EXPECTED)
    assert all(len(k) == 1 for k in tested.values())
    manifest = json.loads((out / "MYCORPUS" / "manifest.json").read_text())
    assert manifest["conditions"]["Primary"]["excluded"] == {EXCLUDED_OTHER: ["g03.wav"]}


def test_same_seed_same_folds(generic_raw: tuple[Path, Path, Path], tmp_path: Path) -> None:
    first = generic.prepare_generic(
        generic_raw[0], votes=generic_raw[1], meta=generic_raw[2], classes=GENERIC_CLASSES, folds=3, seed=11
    )
    again = generic.prepare_generic(
        generic_raw[0], votes=generic_raw[1], meta=generic_raw[2], classes=GENERIC_CLASSES, folds=3, seed=11
    )
    for fold in (1, 2, 3):
        assert first.conditions["Primary"].frames[fold].equals(again.conditions["Primary"].frames[fold])
    assert not (tmp_path / "GENERIC").exists()  # no output_dir: nothing written


def test_check_splits_passes_and_catches_a_moved_speaker(generic_raw: tuple[Path, Path, Path], tmp_path: Path) -> None:
    assert _cli(*generic_raw, tmp_path / "root") == 0  # defaults: 5 folds (5 sessions), GENERIC, seed 0
    assert len(list((tmp_path / "root" / "GENERIC" / "Primary").glob("labels_consensus_*.csv"))) == 5
    folder = tmp_path / "root" / "GENERIC" / "Primary"
    report = check_splits(folder)
    assert report.clean, report.violations
    labels = folder / "labels_consensus_1.csv"
    frame = read_str_csv(labels)
    split = frame.loc[frame["FileName"] == "g01.wav", "Split_Set"].item()
    frame.loc[frame["FileName"] == "g02.wav", "Split_Set"] = "Test" if split != "Test" else "Train"
    frame.to_csv(labels, index=False)
    assert any("speaker 'spkA'" in v for v in check_splits(folder).violations)


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_export_splits_of_a_generic_corpus(generic_raw: tuple[Path, Path, Path], tmp_path: Path, fmt: str) -> None:
    assert _cli(*generic_raw, tmp_path / "root", "--folds", "3") == 0
    out = tmp_path / f"export-{fmt}"
    assert (
        main(["export-splits", str(tmp_path / "root" / "GENERIC" / "Primary"), "--format", fmt, "--out", str(out)]) == 0
    )
    assert out.is_dir()
    assert any(out.iterdir())


def _append(path: Path, line: str) -> int:
    text = path.read_text()
    path.write_text(text + line + "\n")
    return len(text.splitlines()) + 1


@pytest.mark.parametrize(
    ("target", "line", "message"),
    [
        ("votes", "g05.wav,r2,", "annotation has no emotion"),
        ("votes", "g05.wav,r2,surprise", "unknown emotion 'surprise'"),
        ("votes", "g05.wav,r2,happy;bored", "unknown emotion 'bored'"),
        ("votes", "g05.wav,r2", "truncated"),
        ("votes", "g05.wav,r1,sad", "annotator 'r1' labels 'g05.wav' twice"),
        ("meta", "g01.wav,spkA,Female,s1", "duplicate row for 'g01.wav' (first on line 2)"),
        ("meta", "g11.wav,spkG,X,s5", "Gender 'X'"),
        ("meta", "g11.wav,spkA,Female,s2", "speaker 'spkA' in session 's2'"),
        ("meta", "g11.wav,,Female,s2", "empty ['SpkrID']"),
    ],
    ids=[
        "no-label",
        "unknown",
        "unknown-in-multi",
        "truncated",
        "duplicate-vote",
        "duplicate-meta",
        "gender",
        "speaker-two-sessions",
        "empty-speaker",
    ],
)
def test_bad_rows_name_file_and_line(
    generic_raw: tuple[Path, Path, Path], tmp_path: Path, target: str, line: str, message: str
) -> None:
    audio, votes, meta = generic_raw
    path = votes if target == "votes" else meta
    number = _append(path, line)
    with pytest.raises(InvalidInputError) as err:
        generic.prepare_generic(audio, tmp_path / "root", votes=votes, meta=meta, classes=GENERIC_CLASSES)
    assert f"{path}, line {number}: " in str(err.value), str(err.value)
    assert message in str(err.value), str(err.value)
    assert not (tmp_path / "root").exists()


def test_voted_file_without_audio_or_meta(generic_raw: tuple[Path, Path, Path], tmp_path: Path) -> None:
    audio, votes, meta = generic_raw
    number = _append(votes, "g99.wav,r1,happy")
    with pytest.raises(CorpusLayoutError, match=rf"{votes}, line {number}: no audio file 'g99.wav'"):
        generic.prepare_generic(audio, tmp_path / "root", votes=votes, meta=meta, classes=GENERIC_CLASSES)
    write_wav(audio / "g99.wav")
    with pytest.raises(InvalidInputError, match=rf"{votes}, line {number}: 'g99.wav' has no row in {meta}"):
        generic.prepare_generic(audio, tmp_path / "root", votes=votes, meta=meta, classes=GENERIC_CLASSES)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"folds": 2}, "--folds 2"),
        ({"folds": 6}, "5 distinct session(s)"),
        ({"classes": "angry,other"}, "'other' cannot be a class"),
        ({"classes": "angry"}, "at least two"),
        ({"name": "a/b"}, "--name 'a/b'"),
    ],
)
def test_bad_options(generic_raw: Raw, tmp_path: Path, options: dict, message: str) -> None:
    audio, votes, meta = generic_raw
    kwargs = {"votes": votes, "meta": meta, "classes": GENERIC_CLASSES, **options}
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generic.prepare_generic(audio, tmp_path / "root", **kwargs)
    assert not (tmp_path / "root").exists()


def test_cli_reports_user_errors_in_one_line(
    generic_raw: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audio, votes, meta = generic_raw
    write_csv(meta, ["FileName", "SpkrID", "Gender"], [["g01.wav", "spkA", "Female"]])
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _cli(audio, votes, meta, tmp_path / "root") == 2
    assert f"{meta}, line 1: metadata header" in caplog.text
    assert "['Session']" in caplog.text
    assert not (tmp_path / "root").exists()
