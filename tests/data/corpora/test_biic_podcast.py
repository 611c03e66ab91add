"""BIIC-PODCAST recipe on a tiny release in the (assumed) MSP-PODCAST layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.corpus_checks import (
    EXPECTED_PRIMARY,
    EXPECTED_SECONDARY,
    PRIMARY,
    SECONDARY,
    assert_podcast_condition,
    read_str_csv,
)
from helpers.raw_fixtures import build_podcast

from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.corpora import biic_podcast
from s3prl_emo.data.corpora.msp_podcast import EXCLUDED_ALL_OTHER, EXCLUDED_NO_ANNOTATIONS
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

PREFIX = "BIIC-PODCAST"
# The release's own sets are Train / Development / Test; the Test file without annotations is left out.
SETS = {"Test1": "Test", "Test2": "Test", "Test3": "Test"}


@pytest.fixture
def biic_raw(tmp_path: Path) -> Path:
    # BIIC's alias table has no one-letter codes, so every emotion is spelled out.
    return build_podcast(tmp_path / "raw", prefix=PREFIX, sets=SETS, codes=False)


def test_prepare_writes_primary_and_secondary(biic_raw: Path, tmp_path: Path) -> None:
    biic_podcast.prepare_biic_podcast(biic_raw, tmp_path / "out")
    corpus = tmp_path / "out" / "BIIC_PODCAST"
    assert_podcast_condition(
        corpus / "Primary", PRIMARY, EXPECTED_PRIMARY, prefix=PREFIX, description="BIIC-Podcast v1.01"
    )
    assert_podcast_condition(
        corpus / "Secondary", SECONDARY, EXPECTED_SECONDARY, prefix=PREFIX, description="BIIC-Podcast v1.01"
    )
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["corpus"] == "biic-podcast"
    assert manifest["conditions"]["Primary"]["excluded"] == {
        EXCLUDED_ALL_OTHER: [f"{PREFIX}_0003_0002.wav"],
        EXCLUDED_NO_ANNOTATIONS: [f"{PREFIX}_0004_0002.wav"],
    }


def test_read_uses_the_corpus_sets(biic_raw: Path) -> None:
    sets = {u.file_name: u.corpus_set for u in biic_podcast.read_biic_podcast(biic_raw)}
    assert sets[f"{PREFIX}_0001_0001.wav"] == "Train"
    assert sets[f"{PREFIX}_0003_0001.wav"] == "Test"


def test_check_splits_passes_and_catches_a_moved_speaker(biic_raw: Path, tmp_path: Path) -> None:
    biic_podcast.prepare_biic_podcast(biic_raw, tmp_path / "out")
    secondary = tmp_path / "out" / "BIIC_PODCAST" / "Secondary"
    assert check_splits(secondary).clean
    labels = secondary / "labels_consensus_1.csv"
    frame = read_str_csv(labels)
    frame.loc[frame["FileName"] == f"{PREFIX}_0001_0002.wav", "Split_Set"] = "Test"  # speaker 101
    frame.to_csv(labels, index=False)
    report = check_splits(secondary)
    assert any("'101'" in v for v in report.violations), report.violations


def test_unknown_set_names_file_and_line(biic_raw: Path, tmp_path: Path) -> None:
    consensus = biic_raw / "Labels" / "labels_consensus.csv"
    lines = consensus.read_text().splitlines()
    lines[3] = lines[3].replace("Development", "Validation")
    consensus.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError, match=rf"{consensus}, line 4: .*'Validation'"):
        biic_podcast.prepare_biic_podcast(biic_raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_label_file_says_what_is_expected(biic_raw: Path, tmp_path: Path) -> None:
    (biic_raw / "Labels" / "labels_detailed.csv").unlink()
    with pytest.raises(CorpusLayoutError, match=r"labels_detailed\.csv"):
        biic_podcast.prepare_biic_podcast(biic_raw, tmp_path / "out")
