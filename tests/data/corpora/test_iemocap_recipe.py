"""IEMOCAP recipe: EmoEvaluation blocks -> IEMOCAP/Secondary, checked against hand-computed rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import raw_fixtures
from helpers.corpus_checks import assert_frame_matches, assert_nothing_written

from s3prl_emo import __version__
from s3prl_emo.data.corpora import iemocap
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

# session -> split, per fold, from the published fold table (sessions 1 and 2 only)
SPLITS = {
    1: {"01": "Train", "02": "Train"},
    2: {"01": "Train", "02": "Train"},
    3: {"01": "Train", "02": "Test"},
    4: {"01": "Test", "02": "Development"},
    5: {"01": "Development", "02": "Train"},
}


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def test_prepare_reproduces_the_hand_written_fold(iemocap_raw: Path, tmp_path: Path) -> None:
    prepared = iemocap.prepare_iemocap(iemocap_raw, tmp_path / "out")
    folder = tmp_path / "out" / "IEMOCAP" / "Secondary"
    config = read_config(folder)
    assert config.classes == iemocap.CLASSES_SECONDARY
    assert config.dimensional is None  # as in the published config.json
    assert_frame_matches(read_labels(folder / "labels_consensus_4.csv", config.classes), "iemocap_secondary_fold4.csv")
    assert sorted(prepared.conditions["Secondary"].frames) == [1, 2, 3, 4, 5]


def test_every_fold_follows_the_published_session_table(iemocap_raw: Path) -> None:
    frames = iemocap.prepare_iemocap(iemocap_raw).conditions["Secondary"].frames
    for fold, frame in frames.items():
        expected = [SPLITS[fold][name[3:5]] for name in frame["FileName"]]
        assert list(frame["Split_Set"]) == expected, fold


def test_self_evaluations_count_as_in_the_published_files(iemocap_raw: Path) -> None:
    """Published Ses01F_impro01_F001: 0.76125 neutral, 0.195 angry (C-F1 adds 'Anger')."""
    frame = iemocap.prepare_iemocap(iemocap_raw).conditions["Secondary"].frames[1].set_index("FileName")
    assert frame.loc["Ses01F_impro01_F001.wav", "neutral"] == pytest.approx(0.76125)
    assert frame.loc["Ses01F_impro01_F001.wav", "angry"] == pytest.approx(0.195)
    without = iemocap.prepare_iemocap(iemocap_raw, self_evaluations=False)
    frame = without.conditions["Secondary"].frames[1].set_index("FileName")
    assert frame.loc["Ses01F_impro01_F001.wav", "neutral"] == pytest.approx(0.95)
    assert frame.loc["Ses01F_impro01_F000.wav", "EmoDom"] == pytest.approx(2.5)  # A-E3, A-E4 only


def test_read_keeps_raw_votes_without_policy(iemocap_raw: Path) -> None:
    by_name = {u.file_name: u for u in iemocap.read_iemocap(iemocap_raw)}
    m000 = by_name["Ses01F_impro01_M000.wav"]
    assert m000.votes["Secondary"] == (("Frustration", "Anger"), "Frustration", "Other:sarcastic", "Anger")
    assert (m000.speaker, m000.gender, m000.session) == ("01M", "Male", "01")
    assert m000.dimensional == {"EmoAct": 4.0, "EmoVal": 1.5, "EmoDom": 4.0}  # "dom  ;" skipped


def test_manifest_records_sources_rules_and_version(iemocap_raw: Path, tmp_path: Path) -> None:
    iemocap.prepare_iemocap(iemocap_raw, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "IEMOCAP" / "manifest.json").read_text())
    assert manifest["version"] == __version__
    sources = {s["path"]: s["sha256"] for s in manifest["source_files"]}
    dialog = "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    assert sources[dialog] == hashlib.sha256((iemocap_raw / dialog).read_bytes()).hexdigest()
    assert len(sources) == 4
    assert manifest["rules"]["self_evaluations_counted"] is True
    assert manifest["rules"]["smoothing"] == 0.05
    assert manifest["rules"]["alias_table"] == dict(iemocap.ALIASES)  # the recipe's own table
    assert manifest["rules"]["alias_table"]["neutral state"] == "neutral"
    assert manifest["conditions"]["Secondary"]["utterances"] == 8
    assert manifest["conditions"]["Secondary"]["excluded_counts"] == {}
    assert manifest["audio"] == "symlink"
    assert (tmp_path / "out" / "IEMOCAP" / "Audios" / "Ses01F_impro01_F000.wav").is_symlink()


DIALOG = "Session2/dialog/EmoEvaluation/Ses02F_impro02.txt"


@pytest.mark.parametrize(
    ("old", "new", "marker"),
    [
        ("\tSes02F_impro02_M000\txxx\t[2.5000, 2.5000, 2.5000]", "\tSes02F_impro02_M000", "Ses02F_impro02_M000"),
        ("C-E2:\tSadness;", "C-E2:\tBoredom;", "Boredom"),
        ("C-E3:\tSurprise;\t()", "C-E3:\t;\t()", "C-E3:\t;"),
        ("A-E1:\tval 1; act 2; dom  2;", "A-E1:\tval 1; act two; dom  2;", "act two"),
        ("C-E1:\tFear;\t()", "CE1 Fear", "CE1 Fear"),
    ],
    ids=["truncated-summary", "unknown-emotion", "no-label", "bad-score", "garbled-line"],
)
def test_malformed_lines_name_file_and_line(iemocap_raw: Path, tmp_path: Path, old: str, new: str, marker: str) -> None:
    path = iemocap_raw / DIALOG
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(InvalidInputError) as info:
        iemocap.prepare_iemocap(iemocap_raw, tmp_path / "out")
    assert f"{path}, line {line_of(path, marker)}:" in str(info.value)
    assert_nothing_written(tmp_path / "out")


def test_missing_audio_names_the_annotation(iemocap_raw: Path, tmp_path: Path) -> None:
    (iemocap_raw / "Session2/sentences/wav/Ses02F_impro02/Ses02F_impro02_M001.wav").unlink()
    expected = r"Ses02F_impro02\.txt, line \d+: no audio for Ses02F_impro02_M001"
    with pytest.raises(CorpusLayoutError, match=expected):
        iemocap.prepare_iemocap(iemocap_raw, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_duplicate_utterance_is_an_error(iemocap_raw: Path, tmp_path: Path) -> None:
    other = iemocap_raw / "Session2/dialog/EmoEvaluation/Ses02M_impro03.txt"
    block = raw_fixtures.iemocap_block("Ses02F_impro02_F000", ["C-E1:\tSadness;\t()"], 40.0)
    other.write_text(other.read_text() + "\n" + block)
    expected = rf"{other}, line {line_of(other, '40.0000')}: .* second time"
    with pytest.raises(InvalidInputError, match=expected):
        iemocap.prepare_iemocap(iemocap_raw, tmp_path / "out")


def test_missing_release_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusLayoutError, match="EmoEvaluation"):
        iemocap.prepare_iemocap(tmp_path, tmp_path / "out")
