"""CREMA-D recipe: voice-only rows of finishedResponses.csv -> CREMA-D/Primary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import raw_fixtures
from helpers.corpus_checks import assert_frame_matches, assert_nothing_written

from s3prl_emo.data.corpora import crema_d
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

# actor-id session -> split per fold (published table; sessions 1, 2, 4, 5 are in the fixture)
SESSION_OF_ACTOR = {"1037": 1, "1001": 2, "1002": 2, "1058": 4, "1067": 4, "1019": 5}
SPLITS = {
    1: {1: "Train", 2: "Test", 4: "Train", 5: "Development"},
    2: {1: "Development", 2: "Train", 4: "Train", 5: "Test"},
    3: {1: "Test", 2: "Train", 4: "Development", 5: "Train"},
    4: {1: "Train", 2: "Train", 4: "Test", 5: "Train"},
    5: {1: "Train", 2: "Development", 4: "Train", 5: "Train"},
}


def test_prepare_reproduces_the_hand_written_fold(crema_raw: Path, tmp_path: Path) -> None:
    crema_d.prepare_crema_d(crema_raw, tmp_path / "out")
    folder = tmp_path / "out" / "CREMA-D" / "Primary"
    config = read_config(folder)
    assert config.classes == crema_d.CLASSES_PRIMARY
    assert config.dimensional == {"max_score": 5, "min_score": 1}  # as published
    assert_frame_matches(read_labels(folder / "labels_consensus_3.csv", config.classes), "crema_d_primary_fold3.csv")


def test_every_fold_follows_the_actor_ranges(crema_raw: Path) -> None:
    frames = crema_d.prepare_crema_d(crema_raw).conditions["Primary"].frames
    for fold, frame in frames.items():
        expected = [SPLITS[fold][SESSION_OF_ACTOR[name[:4]]] for name in frame["FileName"]]
        assert list(frame["Split_Set"]) == expected, fold


def test_only_voice_only_ratings_count(crema_raw: Path) -> None:
    by_name = {u.file_name: u for u in crema_d.read_crema_d(crema_raw)}
    # 10 voice-only answers; the 4 face-only / audio-visual answers of the fixture are ignored
    assert by_name["1037_IWL_HAP_XX.wav"].votes == {"Primary": tuple("AAAAHHHHHH")}
    utterance = by_name["1037_IWL_HAP_XX.wav"]
    assert (utterance.speaker, utterance.gender, utterance.session) == ("1037", "Female", "1037")


def test_manifest(crema_raw: Path, tmp_path: Path) -> None:
    crema_d.prepare_crema_d(crema_raw, tmp_path / "out", audio="copy")
    manifest = json.loads((tmp_path / "out" / "CREMA-D" / "manifest.json").read_text())
    assert [s["path"] for s in manifest["source_files"]] == ["VideoDemographics.csv", "finishedResponses.csv"]
    assert manifest["rules"]["response_time_filter"].startswith("none")
    assert manifest["audio"] == "copy"
    copied = tmp_path / "out" / "CREMA-D" / "Audios" / "1037_IWL_HAP_XX.wav"
    assert copied.is_file()
    assert not copied.is_symlink()


def _rewrite_responses(corpus: Path, old: str, new: str) -> int:
    path = corpus / crema_d.RESPONSES_FILE
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if old in line)
    lines[number] = lines[number].replace(old, new)
    path.write_text("\n".join(lines) + "\n")
    return number + 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (',"A",50,"H"', ',"X",50,"H"'),  # unknown respEmo
        (',"A",50,"H"', ',"",50,"H"'),  # a rating with no answer
        (',"A",50,"H","XX","50"', ',"A"'),  # truncated line
    ],
    ids=["unknown-emotion", "no-label", "truncated"],
)
def test_bad_rows_name_file_and_line(crema_raw: Path, tmp_path: Path, old: str, new: str) -> None:
    line = _rewrite_responses(crema_raw, old, new)
    with pytest.raises(InvalidInputError) as info:
        crema_d.prepare_crema_d(crema_raw, tmp_path / "out")
    assert f"{crema_raw / crema_d.RESPONSES_FILE}, line {line}" in str(info.value)
    assert_nothing_written(tmp_path / "out")


def test_missing_audio_and_unknown_actor(crema_raw: Path, tmp_path: Path) -> None:
    (crema_raw / "AudioWAV" / "1019_TIE_NEU_XX.wav").unlink()
    with pytest.raises(CorpusLayoutError, match=r"Responses\.csv, line \d+: no audio for 1019_TIE_NEU_XX"):
        crema_d.prepare_crema_d(crema_raw, tmp_path / "out")
    raw_fixtures.write_wav(crema_raw / "AudioWAV" / "1019_TIE_NEU_XX.wav")
    demographics = crema_raw / crema_d.DEMOGRAPHICS_FILE
    demographics.write_text(
        "\n".join(line for line in demographics.read_text().splitlines() if not line.startswith("1058")) + "\n"
    )
    with pytest.raises(InvalidInputError, match="actor 1058 of 1058_ITS_FEA_XX is not in"):
        crema_d.prepare_crema_d(crema_raw, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")
