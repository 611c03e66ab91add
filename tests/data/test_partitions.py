"""Partitions: published fold tables, session rules, custom folds, leakage checks, CLI."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from s3prl_emo.cli import main
from s3prl_emo.data import partitions
from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.layout import CorpusConfig, label_frame, labels_path, write_config, write_labels
from s3prl_emo.data.partitions import (
    Fold,
    assign_splits,
    balanced_session_folds,
    corpus_key,
    fold_table,
    fold_violations,
    partitioned_corpora,
    session_of,
    split_of_corpus_set,
)
from s3prl_emo.errors import InvalidInputError

# The fold -> session table of the published EMO-SUPERB labels_consensus_<k>.csv files,
# written out here independently of data_splits/ (read off EMO-SUPERB's published label files).
PUBLISHED = """
| IEMOCAP | 1 | 1,2,3 | 5 | 4 |
| IEMOCAP | 2 | 1,2,5 | 4 | 3 |
| IEMOCAP | 3 | 1,4,5 | 3 | 2 |
| IEMOCAP | 4 | 3,4,5 | 2 | 1 |
| IEMOCAP | 5 | 2,3,4 | 1 | 5 |
| CREMA-D | 1 | 1,3,4 | 5 | 2 |
| CREMA-D | 2 | 2,3,4 | 1 | 5 |
| CREMA-D | 3 | 2,3,5 | 4 | 1 |
| CREMA-D | 4 | 1,2,5 | 3 | 4 |
| CREMA-D | 5 | 1,4,5 | 2 | 3 |
| MSP-IMPROV | 1 | 1,2,5,6 | 3 | 4 |
| MSP-IMPROV | 2 | 1,4,5,6 | 2 | 3 |
| MSP-IMPROV | 3 | 3,4,5,6 | 1 | 2 |
| MSP-IMPROV | 4 | 2,3,4,5 | 6 | 1 |
| MSP-IMPROV | 5 | 1,2,3,4 | 5 | 6 |
| MSP-IMPROV | 6 | 1,2,3,6 | 4 | 5 |
| NNIME | 1 | 1,2,3 | 4 | 5 |
| NNIME | 2 | 2,3,4 | 5 | 1 |
| NNIME | 3 | 3,4,5 | 1 | 2 |
| NNIME | 4 | 1,4,5 | 2 | 3 |
| NNIME | 5 | 1,2,5 | 3 | 4 |
"""


def _published() -> dict[str, dict[int, tuple[set[int], set[int], set[int]]]]:
    tables: dict[str, dict[int, tuple[set[int], set[int], set[int]]]] = {}
    for line in PUBLISHED.strip().splitlines():
        corpus, fold, *splits = [cell.strip() for cell in line.strip("| ").split("|")]
        sessions = tuple({int(s) for s in cell.split(",")} for cell in splits)
        tables.setdefault(corpus.lower(), {})[int(fold)] = sessions
    return tables


@pytest.mark.parametrize("corpus", ["iemocap", "crema-d", "msp-improv", "nnime"])
def test_fold_tables_reproduce_the_published_partition(corpus):
    expected = _published()[corpus]
    table = fold_table(corpus)
    assert sorted(table) == sorted(expected)
    for k, fold in table.items():
        assert isinstance(fold, Fold)
        assert (set(fold.train), set(fold.dev), set(fold.test)) == expected[k], f"{corpus} fold {k}"


def test_synth_rotates_like_iemocap():
    assert fold_table("synth") == fold_table("iemocap")


def test_every_corpus_has_a_partition_file_with_its_source():
    folder = partitions.data_splits_dir()
    assert partitioned_corpora() == (
        "biic-podcast",
        "crema-d",
        "iemocap",
        "msp-improv",
        "msp-podcast",
        "nnime",
        "synth",
    )
    for corpus in partitioned_corpora():
        text = (folder / f"{corpus}.toml").read_text()
        assert text.startswith("#")
        assert "Source:" in text


@pytest.mark.parametrize(
    ("corpus", "name", "session"),
    [
        ("iemocap", "Ses01F_impro01_F000.wav", 1),
        ("iemocap", "Ses05M_script02_2_M041.wav", 5),
        ("iemocap", "Ses03F_impro05a_F012.wav", 3),
        ("msp-improv", "MSP-IMPROV-S01A-F02-R-FF01.wav", 2),
        ("msp-improv", "MSP-IMPROV-S08H-M06-S-MF12.wav", 6),
        ("msp-improv", "MSP-IMPROV-S15S-F01-P-FM03.wav", 1),
        ("crema-d", "1037_IWL_HAP_XX.wav", 1),
        ("crema-d", "1058_ITS_FEA_XX.wav", 4),
        ("nnime", "neutral_11_B_034.wav", 3),
        ("nnime", "frustration_22_A_001.wav", 1),
        ("nnime", "sad_17_B_100.wav", 5),
        ("synth", "Ses03M_s03_u012.wav", 3),
    ],
)
def test_session_of_realistic_names(corpus, name, session):
    assert session_of(corpus, name) == session


def test_crema_d_actor_ranges_and_nnime_dialog_groups():
    crema = {
        1: range(1037, 1055),
        2: range(1001, 1019),
        3: range(1073, 1092),
        4: range(1055, 1073),
        5: range(1019, 1037),
    }
    for session, actors in crema.items():
        for actor in actors:
            assert session_of("crema-d", f"{actor}_DFA_ANG_XX.wav") == session
    nnime = {1: [1, 2, 3, 4, 22], 2: [5, 6, 7, 8], 3: [9, 10, 11, 12], 4: [13, 14, 15, 16], 5: [17, 18, 19, 20, 21]}
    for session, dialogs in nnime.items():
        for dialog in dialogs:
            assert session_of("nnime", f"happy_{dialog:02d}_A_001.wav") == session


def test_session_of_rejects_what_no_rule_matches():
    with pytest.raises(InvalidInputError, match=re.escape("'my_recording.wav'")):
        session_of("iemocap", "my_recording.wav")
    with pytest.raises(InvalidInputError, match="actor id 1099"):
        session_of("crema-d", "1099_IWL_HAP_XX.wav")
    with pytest.raises(InvalidInputError, match="split_of_corpus_set"):
        session_of("msp-podcast", "MSP-PODCAST_0001_0008.wav")
    with pytest.raises(InvalidInputError, match="unknown corpus 'timit'"):
        session_of("timit", "a.wav")


def test_assign_splits_follows_the_fold_table():
    names = [f"Ses0{s}F_impro01_F000.wav" for s in range(1, 6)]
    assert assign_splits("iemocap", 1, names) == ["Train", "Train", "Train", "Test", "Development"]
    assert assign_splits("iemocap", "fold4", names) == ["Test", "Development", "Train", "Train", "Train"]


def test_assign_splits_names_the_bad_fold_and_the_bad_file():
    with pytest.raises(InvalidInputError, match=r"unknown fold 7; expected 1\.\.6"):
        assign_splits("msp-improv", 7, ["MSP-IMPROV-S01A-F02-R-FF01.wav"])
    with pytest.raises(InvalidInputError, match=r"unknown fold 0; expected 1\.\.5"):
        assign_splits("iemocap", 0, [])
    with pytest.raises(InvalidInputError, match=r"'oops\.wav'.*and 1 more"):
        assign_splits("iemocap", 1, ["Ses01F_impro01_F000.wav", "oops.wav", "also_bad.wav"])
    with pytest.raises(InvalidInputError, match="session 6"):
        assign_splits("iemocap", 1, ["Ses06F_impro01_F000.wav"])
    with pytest.raises(InvalidInputError, match="own sets"):
        assign_splits("biic-podcast", 1, ["x.wav"])


@pytest.mark.parametrize("corpus", ["msp-podcast", "biic-podcast"])
def test_corpus_sets_map_to_splits(corpus):
    expected = {
        "Train": "Train",
        "Development": "Development",
        "Test1": "Test",
        "Test2": "Test",
        "Test3": "Test",
        "test1": "Test",
        " Train ": "Train",
    }
    for corpus_set, split in expected.items():
        assert split_of_corpus_set(corpus, corpus_set) == split
    with pytest.raises(InvalidInputError, match="'Validation'"):
        split_of_corpus_set(corpus, "Validation")


def test_corpus_sets_only_for_podcasts():
    with pytest.raises(InvalidInputError, match="assign_splits"):
        split_of_corpus_set("iemocap", "Train")
    with pytest.raises(InvalidInputError, match="split_of_corpus_set"):
        fold_table("msp-podcast")


def test_corpus_key_maps_emo_superb_folders():
    expected = {
        "IEMOCAP": "iemocap",
        "CREMA-D": "crema-d",
        "IMPROV": "msp-improv",
        "PODCAST": "msp-podcast",
        "NNIME": "nnime",
        "BIIC_PODCAST": "biic-podcast",
        "SYNTH": "synth",
        "improv": "msp-improv",
    }
    for folder, key in expected.items():
        assert corpus_key(folder) == key
    assert corpus_key(Path("/data/emo/IMPROV")) == "msp-improv"
    assert corpus_key("MY_CORPUS") is None


def _random_sessions(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 60, size=17)
    sessions = [f"s{i:02d}" for i, n in enumerate(sizes) for _ in range(n)]
    return [sessions[i] for i in rng.permutation(len(sessions))]


def test_balanced_session_folds_is_deterministic_and_leak_free():
    sessions = _random_sessions(0)
    folds = balanced_session_folds(sessions, 5, seed=3)
    assert folds == balanced_session_folds(list(sessions), 5, seed=3)
    assert sorted(folds) == [1, 2, 3, 4, 5]
    tested: dict[str, int] = {}
    for k, splits in folds.items():
        assert len(splits) == len(sessions)
        per_session = pd.Series(splits).groupby(pd.Series(sessions)).nunique()
        assert (per_session == 1).all(), f"fold {k}: a session is in two splits"
        for session, split in zip(sessions, splits, strict=True):
            if split == "Test":
                tested.setdefault(session, k)
                assert tested[session] == k
    assert set(tested) == set(sessions)


def test_balanced_session_folds_balances_utterance_counts():
    sessions = _random_sessions(1)
    largest = max(pd.Series(sessions).value_counts())
    folds = balanced_session_folds(sessions, 5, seed=0)
    test_sizes = [splits.count("Test") for splits in folds.values()]
    assert max(test_sizes) - min(test_sizes) <= largest
    assert sum(test_sizes) == len(sessions)
    # dev of fold k is the test group of fold k + 1
    for k in range(1, 5):
        assert folds[k].count("Development") == folds[k + 1].count("Test")


def test_balanced_session_folds_seed_only_breaks_ties():
    sessions = [s for s in "abcdef" for _ in range(4)]  # six equal sessions: all ties
    by_seed = {seed: tuple(balanced_session_folds(sessions, 3, seed=seed)[1]) for seed in range(8)}
    assert len(set(by_seed.values())) > 1
    for splits in by_seed.values():
        assert splits.count("Test") == splits.count("Development") == splits.count("Train") == 8


def test_balanced_session_folds_rejects_too_few_sessions_or_folds():
    with pytest.raises(InvalidInputError, match=">= 3"):
        balanced_session_folds(["a", "b", "c"], 2)
    with pytest.raises(InvalidInputError, match="2 distinct session"):
        balanced_session_folds(["a", "a", "b"], 3)


def _fold_frame(names, speakers, splits) -> pd.DataFrame:
    return pd.DataFrame({"FileName": names, "neutral": 1.0, "SpkrID": speakers, "Split_Set": splits})


def test_fold_violations_clean_frame():
    names = ["Ses01F_impro01_F000.wav", "Ses01M_impro01_M000.wav", "Ses02F_impro01_F000.wav"]
    frame = _fold_frame(names, ["01F", "01M", "02F"], ["Train", "Train", "Test"])
    assert fold_violations(frame) == []
    assert fold_violations(frame, corpus="iemocap") == []


def test_fold_violations_catches_a_leaking_speaker_and_session():
    names = ["Ses01F_impro01_F000.wav", "Ses01F_impro01_F001.wav", "Ses01M_impro01_M000.wav"]
    speaker_leak = _fold_frame(names, ["01F", "01F", "01M"], ["Train", "Test", "Test"])
    problems = fold_violations(speaker_leak)
    assert problems == ["speaker '01F' is in several splits: Train (1), Test (1)"]
    # distinct speakers, but both halves of dyad 1 are split apart: only the session rule sees it
    session_leak = _fold_frame(names, ["01F", "01F", "01M"], ["Train", "Train", "Development"])
    assert fold_violations(session_leak) == []
    assert fold_violations(session_leak, corpus="iemocap") == [
        "iemocap session 1 is in several splits: Train (2), Development (1)"
    ]
    assert fold_violations(session_leak, corpus="IEMOCAP") == fold_violations(session_leak, corpus="iemocap")


def test_fold_violations_duplicates_unmatched_names_and_nnime_header():
    frame = _fold_frame(["a.wav", "a.wav"], ["1", "1"], ["Train", "Train"])
    assert fold_violations(frame) == ["FileName 'a.wav' is listed 2 times; each utterance belongs in one row"]
    assert "match no iemocap session rule: 'a.wav'" in fold_violations(frame, corpus="iemocap")[1]
    nnime = pd.DataFrame(
        {"Unnamed: 0": ["sad_01_A_001.wav", "sad_22_B_002.wav"], "SpkrID": ["1", "2"], "Split_Set": ["Train", "Test"]}
    )
    expected = ["nnime session 1 is in several splits: Train (1), Test (1)"]
    assert fold_violations(nnime, corpus="nnime") == expected
    with pytest.raises(InvalidInputError, match="Split_Set"):
        fold_violations(pd.DataFrame({"FileName": ["a.wav"]}))


# --- a tiny IEMOCAP-named corpus in the EMO-SUPERB layout -----------------------------------

CLASSES = ("neutral", "happy", "angry", "sad")


def write_tiny_corpus(root: Path, *, leak: bool = False, audio: bool = True) -> Path:
    """``root/IEMOCAP/{Audios,Primary}``: 5 sessions x 2 speakers x 2 utterances, 5 published folds."""
    names = [f"Ses0{s}{g}_impro01_{g}{i:03d}.wav" for s in range(1, 6) for g in "FM" for i in range(2)]
    speakers = [f"0{n[4]}{n[5]}" for n in names]
    rng = np.random.default_rng(0)
    labels = np.full((len(names), len(CLASSES)), 0.05 / 3)
    labels[np.arange(len(names)), rng.integers(0, len(CLASSES), len(names))] = 0.95
    corpus = root / "IEMOCAP"
    primary = corpus / "Primary"
    primary.mkdir(parents=True)
    write_config(CorpusConfig(CLASSES, description="tiny"), primary)
    for fold in fold_table("iemocap"):
        splits = assign_splits("iemocap", fold, names)
        if leak and fold == 2:
            splits[names.index("Ses03F_impro01_F001.wav")] = "Train"  # session 3 is fold 2's Test
        frame = label_frame(names, labels, CLASSES, splits, speakers=speakers)
        write_labels(frame, labels_path(primary, fold))
    if audio:
        (corpus / "Audios").mkdir()
        for name in names:
            sf.write(corpus / "Audios" / name, rng.normal(0, 0.01, 9000), 16000)  # 0.5625 s
    return primary


def test_check_splits_on_a_clean_corpus(tmp_path):
    report = check_splits(write_tiny_corpus(tmp_path))
    assert report.clean
    assert report.violations == []
    assert report.corpus == "iemocap"
    assert [(r.fold, r.split) for r in report.rows][:3] == [(1, "Train"), (1, "Development"), (1, "Test")]
    assert len(report.rows) == 15
    fold1 = {r.split: r for r in report.rows if r.fold == 1}
    assert (fold1["Train"].utterances, fold1["Train"].speakers) == (12, 6)
    assert fold1["Test"].hours == pytest.approx(4 * 9000 / 16000 / 3600)


def test_check_splits_reports_leakage_and_test_coverage(tmp_path):
    report = check_splits(write_tiny_corpus(tmp_path, leak=True))
    text = "\n".join(report.violations)
    assert "fold 2: speaker '03F' is in several splits: Train (1), Test (1)" in text
    assert "fold 2: iemocap session 3 is in several splits" in text
    assert "1 utterance(s) are in no fold's Test split: 'Ses03F_impro01_F001.wav'" in text


def test_check_splits_cli(tmp_path, capsys):
    clean = write_tiny_corpus(tmp_path / "clean", audio=False)
    assert main(["check-splits", str(clean)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("no leakage")
    assert re.search(r"^\s+1\s+Train\s+12\s+6\s+\?$", out, re.M), out  # no audio: hours are "?"
    leaking = write_tiny_corpus(tmp_path / "leaking", leak=True)
    assert main(["check-splits", str(leaking)]) == 1
    out = capsys.readouterr().out
    assert "violation(s):" in out
    assert "speaker '03F'" in out
    assert "no leakage" not in out


def test_check_splits_missing_folder_is_a_user_error(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["check-splits", str(tmp_path / "nope" / "Primary")]) == 2
    assert "no such folder" in caplog.text


# --- the splits command --------------------------------------------------------------------

IEMOCAP_NAMES = ["Ses01F_impro01_F000.wav", "Ses04M_script01_1_M010.wav", "", "Ses05F_impro03_F004.wav"]


def test_splits_cli_writes_stdout(tmp_path, capsys):
    listing = tmp_path / "utts.txt"
    listing.write_text("\n".join(IEMOCAP_NAMES) + "\n\n")
    assert main(["splits", "iemocap", "--fold", "1", "--utterances", str(listing)]) == 0
    assert capsys.readouterr().out == (
        "FileName,Split_Set\n"
        "Ses01F_impro01_F000.wav,Train\n"
        "Ses04M_script01_1_M010.wav,Test\n"
        "Ses05F_impro03_F004.wav,Development\n"
    )


def test_splits_cli_writes_out_file(tmp_path):
    listing = tmp_path / "utts.txt"
    listing.write_text("1037_IWL_HAP_XX.wav\n1001_DFA_ANG_XX.wav\n1019_IEO_SAD_HI.wav\n")
    out = tmp_path / "sub" / "fold1.csv"
    assert main(["splits", "crema-d", "--fold", "1", "--utterances", str(listing), "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == ["FileName", "Split_Set"]
    assert frame["Split_Set"].tolist() == ["Train", "Test", "Development"]
    assert [p.name for p in out.parent.iterdir()] == ["fold1.csv"]  # no temp file left


def test_splits_cli_rejects_an_unknown_name_and_writes_nothing(tmp_path, caplog, capsys):
    listing = tmp_path / "utts.txt"
    listing.write_text("Ses01F_impro01_F000.wav\nrecording_7.wav\n")
    out = tmp_path / "fold1.csv"
    with caplog.at_level(logging.ERROR):
        code = main(["splits", "iemocap", "--fold", "1", "--utterances", str(listing), "--out", str(out)])
    assert code == 2
    assert "'recording_7.wav'" in caplog.text
    assert list(tmp_path.iterdir()) == [listing]
    assert capsys.readouterr().out == ""


def test_splits_cli_rejects_an_unknown_fold_and_a_missing_list(tmp_path, caplog):
    listing = tmp_path / "utts.txt"
    listing.write_text("neutral_11_B_034.wav\n")
    with caplog.at_level(logging.ERROR):
        assert main(["splits", "nnime", "--fold", "9", "--utterances", str(listing)]) == 2
        assert main(["splits", "nnime", "--fold", "1", "--utterances", str(tmp_path / "none.txt")]) == 2
    assert "unknown fold 9; expected 1..5" in caplog.text
    assert "none.txt: no such file" in caplog.text


def test_splits_cli_offers_only_session_corpora(capsys):
    with pytest.raises(SystemExit):
        main(["splits", "msp-podcast", "--fold", "1", "--utterances", "x"])
    assert "invalid choice" in capsys.readouterr().err
