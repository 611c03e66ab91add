"""MSP-IMPROV recipe: Evalution.txt -> IMPROV/Primary and IMPROV/Secondary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import raw_fixtures
from helpers.corpus_checks import assert_frame_matches, assert_nothing_written

from s3prl_emo.data.corpora import msp_improv
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

EXCLUDED = "MSP-IMPROV-S03S-M02-S-MF02.wav"
SPLITS = {  # session -> split per fold (published table; sessions 1-3 are in the fixture)
    1: {"01": "Train", "02": "Train", "03": "Development"},
    2: {"01": "Train", "02": "Development", "03": "Test"},
    3: {"01": "Development", "02": "Test", "03": "Train"},
    4: {"01": "Test", "02": "Train", "03": "Train"},
    5: {"01": "Train", "02": "Train", "03": "Train"},
    6: {"01": "Train", "02": "Train", "03": "Train"},
}


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("Primary", "msp_improv_primary_fold4.csv"),
        ("Secondary", "msp_improv_secondary_fold4.csv"),
    ],
)
def test_prepare_reproduces_the_hand_written_fold(
    improv_raw: Path, tmp_path: Path, annotation: str, expected: str
) -> None:
    msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    folder = tmp_path / "out" / "IMPROV" / annotation
    config = read_config(folder)
    assert config.dimensional == {"max_score": 5, "min_score": 1, "flip_aro": "True"}
    assert_frame_matches(read_labels(folder / "labels_consensus_4.csv", config.classes), expected)


def test_every_fold_follows_the_published_session_table(improv_raw: Path) -> None:
    prepared = msp_improv.prepare_msp_improv(improv_raw)
    for annotation, condition in prepared.conditions.items():
        assert sorted(condition.frames) == [1, 2, 3, 4, 5, 6]
        for fold, frame in condition.frames.items():
            expected = [SPLITS[fold][name.split("-")[3][1:]] for name in frame["FileName"]]
            assert list(frame["Split_Set"]) == expected, (annotation, fold)


def test_all_other_clips_are_excluded_and_counted(improv_raw: Path, tmp_path: Path) -> None:
    prepared = msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    for condition in prepared.conditions.values():
        assert EXCLUDED not in set(condition.frames[1]["FileName"])
        assert condition.excluded == {msp_improv.EXCLUDED_ALL_OTHER: (EXCLUDED,)}
    assert not (tmp_path / "out" / "IMPROV" / "Audios" / EXCLUDED).exists()
    manifest = json.loads((tmp_path / "out" / "IMPROV" / "manifest.json").read_text())
    assert manifest["utterances_read"] == 8
    assert manifest["conditions"]["Secondary"]["excluded_counts"] == {msp_improv.EXCLUDED_ALL_OTHER: 1}
    assert manifest["rules"]["duplicate_rater_lines_dropped"] == 1
    assert [s["path"] for s in manifest["source_files"]] == ["Evalution.txt"]


def test_read_keeps_primary_and_secondary_votes(improv_raw: Path) -> None:
    by_name = {u.file_name: u for u in msp_improv.read_msp_improv(improv_raw)}
    clip = by_name["MSP-IMPROV-S01A-F01-R-FF01.wav"]
    assert clip.votes["Primary"] == ("Angry", "Angry", "Neutral")
    secondary = (("Angry", "Frustrated", "Disgusted"), ("Angry", "Frustrated"), "Neutral")
    assert clip.votes["Secondary"] == secondary
    assert (clip.speaker, clip.gender, clip.session) == ("01F", "Female", "01")
    assert clip.dimensional == {"EmoAct": 3.0, "EmoVal": 2.0, "EmoDom": 3.5}  # D:NaN skipped
    assert len(by_name["MSP-IMPROV-S04N-F02-T-MF03.wav"].votes["Primary"]) == 3  # repeated rater dropped


def _broken(clips: dict[str, list[str]]) -> str:
    return raw_fixtures.improv_text({**raw_fixtures.IMPROV_CLIPS, **clips})


@pytest.mark.parametrize(
    ("clips", "marker"),
    [
        ({"S02H-M01-P-FM01": ["mspimprov-p021; Happy; Bored; A:4.0; V:4.0; D:3.0; N:4.0;"]}, "Bored"),
        ({"S02H-M01-P-FM01": ["mspimprov-p021; Frustrated; ; A:4.0; V:4.0; D:3.0; N:4.0;"]}, "p021; Frustrated"),
        ({"S02H-M01-P-FM01": ["mspimprov-p021; ; Excited; A:4.0; V:4.0; D:3.0; N:4.0;"]}, "p021; ; Excited"),
        ({"S02H-M01-P-FM01": ["mspimprov-p021"]}, "mspimprov-p021"),
        ({"S02H-M01-P-FM01": ["mspimprov-p021; Happy; ; A:high; V:4.0; D:3.0; N:4.0;"]}, "A:high"),
    ],
    ids=["unknown-secondary", "unknown-primary", "no-label", "truncated-rater", "bad-score"],
)
def test_malformed_lines_name_file_and_line(improv_raw: Path, tmp_path: Path, clips: dict, marker: str) -> None:
    path = improv_raw / "Evalution.txt"
    path.write_text(_broken(clips))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), start=1) if marker in text)
    with pytest.raises(InvalidInputError) as info:
        msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    assert f"{path}, line {line}:" in str(info.value)
    assert_nothing_written(tmp_path / "out")


def test_truncated_header_duplicate_clip_and_missing_audio(improv_raw: Path, tmp_path: Path) -> None:
    path = improv_raw / "Evalution.txt"
    text = raw_fixtures.improv_text()
    header = "UTD-IMPROV-S06H-F01-S-FF02.avi; X; A:3.000000; V:3.000000; D:3.000000 ; N:4.000000;"
    path.write_text(text.replace(header, "UTD-IMPROV-S06H-F01-S-FF02.avi"))
    with pytest.raises(InvalidInputError, match=r"Evalution\.txt, line \d+: truncated clip header"):
        msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    path.write_text(text + "\n" + text.split("\n\n")[0])
    with pytest.raises(InvalidInputError, match=r"line 42: clip S01A-F01-R-FF01 is listed a second time"):
        msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    path.write_text(text)
    next(improv_raw.rglob("MSP-IMPROV-S05A-M03-P-FM04.wav")).unlink()
    with pytest.raises(CorpusLayoutError, match=r"line \d+: no audio file MSP-IMPROV-S05A-M03-P-FM04.wav"):
        msp_improv.prepare_msp_improv(improv_raw, tmp_path / "out")
    assert_nothing_written(tmp_path / "out")
