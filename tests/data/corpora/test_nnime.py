"""NNIME recipe on a tiny corpus in the documented annotations.csv form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.corpus_checks import read_str_csv, row_of
from helpers.raw_fixtures import write_wav

from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.corpora import nnime
from s3prl_emo.data.labels import EXCLUDED_FEW_ANNOTATORS, EXCLUDED_OTHER
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

CLASSES = (
    "angry",
    "frustrated",
    "disappointed",
    "sad",
    "fear",
    "neutral",
    "surprise",
    "excited",
    "happy",
    "relax",
    "joy",
)  # published column order
OFF = 0.005  # 0.05 / (K - 1), K = 11
# Hand-computed (EMO-SUPERB's soft-label rule), K = 11: p = 0.945 q + 0.005.
EXPECTED = {  # FileName -> (soft label, SpkrID, Gender, session, EmoAct mean)
    "neutral_01_A_001.wav": ({"neutral": 0.71375, "relax": 0.24125}, "1", "Female", 1, 3.0),  # 3 : 1
    "happy_01_A_011.wav": ({"happy": 0.95}, "1", "Female", 1, 3.0),  # happy, happy, happiness
    # anger, angry, frustration: angry 2, frustrated 1
    "angry_01_B_002.wav": ({"angry": 0.635, "frustrated": 0.32}, "2", "Male", 1, 3.0),
    # happy, joy, excited;happy, other (dropped): happy 2, joy 1, excited 1
    "happy_05_A_003.wav": ({"happy": 0.4775, "joy": 0.24125, "excited": 0.24125}, "9", "Female", 2, 3.5),
    "sad_09_B_004.wav": ({"sad": 0.95}, "18", "Female", 3, 3.5),
    "surprise_13_A_005.wav": ({"surprise": 0.635, "fear": 0.32}, "25", "Female", 4, 3.0),
    "frustration_17_B_006.wav": ({"disappointed": 0.635, "frustrated": 0.32}, "34", "Male", 5, 3.0),
    "neutral_22_A_007.wav": ({"neutral": 0.95}, "8", "Male", 1, 3.0),  # dialog 22 re-uses actor 8
    "neutral_22_B_008.wav": ({"relax": 0.635, "neutral": 0.32}, "43", "Female", 1, 3.0),
}
# fold -> session -> split, from the published NNIME files
FOLDS = {
    1: {1: "Train", 2: "Train", 3: "Train", 4: "Development", 5: "Test"},
    2: {2: "Train", 3: "Train", 4: "Train", 5: "Development", 1: "Test"},
    3: {3: "Train", 4: "Train", 5: "Train", 1: "Development", 2: "Test"},
    4: {1: "Train", 4: "Train", 5: "Train", 2: "Development", 3: "Test"},
    5: {1: "Train", 2: "Train", 5: "Train", 3: "Development", 4: "Test"},
}


def test_prepare_writes_secondary_with_five_folds(nnime_raw: Path, tmp_path: Path) -> None:
    nnime.prepare_nnime(nnime_raw, tmp_path / "out")
    folder = tmp_path / "out" / "NNIME" / "Secondary"
    config = read_config(folder)
    assert config.classes == CLASSES
    assert config.dimensional == {"max_score": 5, "min_score": 1}
    assert not (tmp_path / "out" / "NNIME" / "Primary").exists()
    for fold, split_of_session in FOLDS.items():
        path = folder / f"labels_consensus_{fold}.csv"
        read_labels(path, CLASSES)
        frame = read_str_csv(path)
        assert list(frame.columns) == ["FileName", *CLASSES, "EmoAct", "EmoVal", "SpkrID", "Gender", "Split_Set"]
        assert sorted(frame["FileName"]) == sorted(EXPECTED)
        for name, (label, speaker, gender, session, act) in EXPECTED.items():
            row = row_of(frame, name)
            np.testing.assert_allclose(
                row[list(CLASSES)].astype(float), [label.get(c, OFF) for c in CLASSES], atol=1e-6, err_msg=name
            )
            np.testing.assert_allclose(row[["EmoAct", "EmoVal"]].astype(float), [act, 3.0])
            assert (row["SpkrID"], row["Gender"]) == (speaker, gender), name
            assert row["Split_Set"] == split_of_session[session], (fold, name)
    assert not (folder / "labels_consensus_6.csv").exists()


def test_exclusions_are_counted_in_the_manifest(nnime_raw: Path, tmp_path: Path) -> None:
    nnime.prepare_nnime(nnime_raw, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "NNIME" / "manifest.json").read_text())
    secondary = manifest["conditions"]["Secondary"]
    assert secondary["excluded"] == {
        EXCLUDED_OTHER: ["angry_05_B_009.wav"],
        EXCLUDED_FEW_ANNOTATORS: ["happy_13_B_010.wav"],
    }
    assert secondary["min_annotators"] == 3
    assert [f["path"] for f in manifest["source_files"]] == ["annotations.csv"]


def test_read_applies_no_policy(nnime_raw: Path) -> None:
    utterances = {u.file_name: u for u in nnime.read_nnime(nnime_raw)}
    assert len(utterances) == 11  # the two excluded turns are still read
    votes = utterances["neutral_01_A_001.wav"].votes["Secondary"]
    assert votes == ("neutral", ("neutral", "relax"), "neutral")
    assert utterances["angry_05_B_009.wav"].votes["Secondary"] == ("other", "other:生氣", "other")
    assert utterances["sad_09_B_004.wav"].session == "3"


def test_check_splits_passes_and_catches_a_moved_speaker(nnime_raw: Path, tmp_path: Path) -> None:
    nnime.prepare_nnime(nnime_raw, tmp_path / "out")
    folder = tmp_path / "out" / "NNIME" / "Secondary"
    report = check_splits(folder)
    assert report.clean, report.violations
    labels = folder / "labels_consensus_1.csv"
    frame = read_str_csv(labels)
    frame.loc[frame["FileName"] == "happy_01_A_011.wav", "Split_Set"] = "Test"  # actor 1, session 1
    frame.to_csv(labels, index=False)
    violations = check_splits(folder).violations
    assert any("speaker '1'" in v for v in violations), violations
    assert any("session 1" in v for v in violations), violations


def _append(path: Path, line: str) -> int:
    text = path.read_text()
    path.write_text(text + line + "\n")
    return len(text.splitlines()) + 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sad_09_B_004.wav,rater9,angy,3,3", "unknown emotion 'angy'"),
        ("sad_09_B_004.wav,rater9,,3,3", "has no emotion"),
        ("sad_09_B_004.wav,rater9,sad", "truncated"),
        ("sad_09_B_004.wav,rater1,sad,3,3", "labels 'sad_09_B_004.wav' twice (also line"),
        ("sad_09_004.wav,rater9,sad,3,3", "not an NNIME turn name"),
        ("sad_23_A_004.wav,rater9,sad,3,3", "dialog number 23 is in no session"),
        ("sad_09_B_004.wav,rater9,sad,high,3", "EmoAct 'high' is not a number"),
    ],
    ids=["unknown-emotion", "no-label", "truncated", "duplicate-rater", "bad-name", "unknown-dialog", "bad-score"],
)
def test_malformed_rows_name_file_and_line(nnime_raw: Path, tmp_path: Path, line: str, message: str) -> None:
    path = nnime_raw / "annotations.csv"
    number = _append(path, line)
    with pytest.raises(InvalidInputError) as err:
        nnime.prepare_nnime(nnime_raw, tmp_path / "out")
    assert f"{path}, line {number}: " in str(err.value), str(err.value)
    assert message in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_audio_names_the_annotation_line(nnime_raw: Path, tmp_path: Path) -> None:
    path = nnime_raw / "annotations.csv"
    number = _append(path, "sad_10_B_001.wav,rater1,sad,3,3")
    with pytest.raises(CorpusLayoutError, match=rf"{path}, line {number}: no audio 'sad_10_B_001.wav'"):
        nnime.prepare_nnime(nnime_raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_duplicate_audio_file_names_are_an_error(nnime_raw: Path, tmp_path: Path) -> None:
    write_wav(nnime_raw / "Audios" / "copy" / "sad_09_B_004.wav")
    with pytest.raises(InvalidInputError, match="duplicate audio file name"):
        nnime.prepare_nnime(nnime_raw, tmp_path / "out")
