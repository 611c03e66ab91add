"""MSP-PODCAST recipe on a tiny release in the v1.11 layout (both labels_detailed.csv shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.corpus_checks import (
    EXPECTED_META,
    EXPECTED_PRIMARY,
    EXPECTED_SECONDARY,
    PRIMARY,
    SECONDARY,
    assert_podcast_condition,
    read_str_csv,
)
from helpers.raw_fixtures import build_podcast

from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.corpora import msp_podcast
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError


@pytest.mark.parametrize("shape", ["columns", "detail"])
def test_prepare_writes_primary_and_secondary(tmp_path: Path, shape: str) -> None:
    raw = build_podcast(tmp_path / "raw", shape=shape)
    msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    corpus = tmp_path / "out" / "PODCAST"
    assert_podcast_condition(corpus / "Primary", PRIMARY, EXPECTED_PRIMARY)
    assert_podcast_condition(corpus / "Secondary", SECONDARY, EXPECTED_SECONDARY)
    assert sorted(p.name for p in (corpus / "Audios").iterdir()) == sorted(EXPECTED_PRIMARY)


def test_manifest_counts_what_was_left_out(tmp_path: Path) -> None:
    msp_podcast.prepare_msp_podcast(build_podcast(tmp_path / "raw"), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "PODCAST" / "manifest.json").read_text())
    for condition in ("Primary", "Secondary"):
        excluded = manifest["conditions"][condition]["excluded"]
        assert excluded == {
            msp_podcast.EXCLUDED_ALL_OTHER: ["MSP-PODCAST_0003_0002.wav"],  # only "Other-calm" primaries
            msp_podcast.EXCLUDED_UNLABELLED_SET.format("Test3"): ["MSP-PODCAST_0004_0002.wav"],
        }
    assert {f["path"] for f in manifest["source_files"]} == {
        "Labels/labels_detailed.csv",
        "Labels/labels_consensus.csv",
    }


def test_read_keeps_raw_votes_without_policy(tmp_path: Path) -> None:
    utterances = {u.file_name: u for u in msp_podcast.read_msp_podcast(build_podcast(tmp_path / "raw"))}
    assert "MSP-PODCAST_0004_0002.wav" not in utterances  # Test3: no public labels
    first = utterances["MSP-PODCAST_0001_0001.wav"]
    assert first.votes["Primary"] == ("Angry", "Angry", "Sad", "A", "Other-bored, tired")
    assert first.votes["Secondary"][0] == ("Angry", "Frustrated", "Annoyed")
    assert first.votes["Secondary"][4] == ("Other-bored, tired", "Frustrated")
    assert (first.corpus_set, first.session, first.gender) == ("Train", "0001", "Female")
    assert utterances["MSP-PODCAST_0003_0002.wav"].votes["Primary"] == ("Other-calm",) * 3
    assert (utterances["MSP-PODCAST_0004_0001.wav"].speaker, utterances["MSP-PODCAST_0004_0001.wav"].gender) == (
        "Unknown",
        None,
    )


def test_check_splits_passes_and_catches_a_moved_speaker(tmp_path: Path) -> None:
    msp_podcast.prepare_msp_podcast(build_podcast(tmp_path / "raw"), tmp_path / "out")
    for condition in ("Primary", "Secondary"):
        report = check_splits(tmp_path / "out" / "PODCAST" / condition)
        assert report.clean, report.violations
    labels = tmp_path / "out" / "PODCAST" / "Primary" / "labels_consensus_1.csv"
    frame = read_str_csv(labels)
    frame.loc[frame["FileName"] == "MSP-PODCAST_0002_0001.wav", "Split_Set"] = "Train"  # speaker 202
    frame.to_csv(labels, index=False)
    report = check_splits(labels.parent)
    assert not report.clean
    assert any("'202'" in v for v in report.violations), report.violations


def test_unknown_speakers_in_several_splits_are_no_leakage(tmp_path: Path) -> None:
    raw = build_podcast(tmp_path / "raw")
    consensus = raw / "Labels" / "labels_consensus.csv"
    frame = read_str_csv(consensus)  # Train speaker 101 becomes unknown: "Unknown" is in Train and Test
    frame.loc[frame["SpkrID"] == "101", ["SpkrID", "Gender"]] = ["Unknown", "Unknown"]
    frame.to_csv(consensus, index=False)
    msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    report = check_splits(tmp_path / "out" / "PODCAST" / "Primary")
    assert report.clean, report.violations


def test_partition_without_consensus_file_uses_partitions_and_speaker_ids(tmp_path: Path) -> None:
    raw = build_podcast(tmp_path / "raw", shape="detail")
    assert not (raw / "Labels" / "labels_consensus.csv").exists()
    prepared = msp_podcast.prepare_msp_podcast(raw)  # no output_dir: nothing written
    frame = prepared.conditions["Primary"].frames[1]
    assert list(frame["Split_Set"]) == [EXPECTED_META[n][5] for n in frame["FileName"]]
    assert list(frame["Gender"]) == [EXPECTED_META[n][4] for n in frame["FileName"]]
    assert not (tmp_path / "PODCAST").exists()


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


def _replace_line(path: Path, needle: str, new: str) -> int:
    lines = path.read_text().splitlines()
    number = _line_of(path, needle)
    lines[number - 1] = new
    path.write_text("\n".join(lines) + "\n")
    return number


@pytest.mark.parametrize(
    "case",
    ["truncated", "unknown-primary", "unknown-secondary", "no-label", "bad-set", "duplicate", "bad-detail"],
)
def test_malformed_raw_files_name_file_and_line(tmp_path: Path, case: str) -> None:
    raw = build_podcast(tmp_path / "raw", shape="detail" if case == "bad-detail" else "columns")
    detailed = raw / "Labels" / "labels_detailed.csv"
    consensus = raw / "Labels" / "labels_consensus.csv"
    if case == "truncated":
        path, line = (
            detailed,
            _replace_line(detailed, "MSP-PODCAST_0002_0001.wav,WORKER03", "MSP-PODCAST_0002_0001.wav,WORKER03,Happy"),
        )
        message = "truncated"
    elif case == "unknown-primary":
        path, line = (
            detailed,
            _replace_line(
                detailed, "MSP-PODCAST_0001_0001.wav,WORKER03", "MSP-PODCAST_0001_0001.wav,WORKER03,Sadd,,3,3,3"
            ),
        )
        message = "unknown primary emotion 'Sadd'"
    elif case == "unknown-secondary":
        path, line = (
            detailed,
            _replace_line(
                detailed, "MSP-PODCAST_0001_0001.wav,WORKER02", "MSP-PODCAST_0001_0001.wav,WORKER02,Angry,Grumpy,6,2,5"
            ),
        )
        message = "unknown secondary emotion 'Grumpy'"
    elif case == "no-label":
        path, line = (
            detailed,
            _replace_line(detailed, "MSP-PODCAST_0002_0002.wav,WORKER04", "MSP-PODCAST_0002_0002.wav,WORKER04,,,2,2,2"),
        )
        message = "no primary emotion"
    elif case == "bad-set":
        path, line = (
            consensus,
            _replace_line(
                consensus, "MSP-PODCAST_0002_0002.wav", "MSP-PODCAST_0002_0002.wav,X,4,4,4,202,Male,Validation"
            ),
        )
        message = "unknown corpus set 'Validation'"
    elif case == "duplicate":
        text = consensus.read_text()
        consensus.write_text(text + text.splitlines()[1] + "\n")
        path, line = consensus, len(text.splitlines()) + 1
        message = "duplicate FileName"
    else:
        path, line = (
            detailed,
            _replace_line(detailed, "WORKER03; Fear", "MSP-PODCAST_0004_0001.wav,WORKER03; Fear; ; A:6.0"),
        )
        message = "EmoDetail"
    with pytest.raises(InvalidInputError) as err:
        msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    assert f"{path}, line {line}" in str(err.value), str(err.value)
    assert message in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_audio_of_a_labelled_file_is_an_error(tmp_path: Path) -> None:
    raw = build_podcast(tmp_path / "raw")
    (raw / "Audios" / "MSP-PODCAST_0002_0001.wav").unlink()
    detailed = raw / "Labels" / "labels_detailed.csv"
    with pytest.raises(
        CorpusLayoutError,
        match=rf"line {_line_of(detailed, 'MSP-PODCAST_0002_0001.wav')}: "
        r"labelled file 'MSP-PODCAST_0002_0001.wav' has no audio",
    ):
        msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    raw = build_podcast(tmp_path / "raw")
    msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    with pytest.raises(InvalidInputError, match="already exists"):
        msp_podcast.prepare_msp_podcast(raw, tmp_path / "out")
    msp_podcast.prepare_msp_podcast(raw, tmp_path / "out", overwrite=True, audio="copy")
    assert not (tmp_path / "out" / "PODCAST" / "Audios" / "MSP-PODCAST_0001_0001.wav").is_symlink()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["PODCAST"]
