"""``s3prl-emo prepare`` end to end, relabelling, and split checks on the prepared corpora."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from helpers import raw_fixtures
from helpers.corpus_checks import assert_nothing_written

from s3prl_emo.cli import main
from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.layout import read_config, read_labels, write_labels

BUILDERS = {
    "iemocap": (raw_fixtures.build_iemocap, "IEMOCAP", ("Secondary",)),
    "crema-d": (raw_fixtures.build_crema_d, "CREMA-D", ("Primary",)),
    "msp-improv": (raw_fixtures.build_msp_improv, "IMPROV", ("Primary", "Secondary")),
}


@pytest.mark.parametrize("corpus", sorted(BUILDERS))
def test_prepare_then_check_splits_then_leak(corpus: str, tmp_path: Path) -> None:
    build, folder, annotations = BUILDERS[corpus]
    raw, out = build(tmp_path / "raw"), tmp_path / "out"
    assert main(["prepare", corpus, "--raw", str(raw), "--out", str(out)]) == 0
    for annotation in annotations:
        condition = out / folder / annotation
        report = check_splits(condition)
        assert report.clean, report.violations
        # move one speaker's first row into another split: the check must catch the leak
        labels = condition / "labels_consensus_1.csv"
        frame = read_labels(labels, read_config(condition).classes)
        speaker = frame["SpkrID"].iat[0]
        assert (frame["SpkrID"] == speaker).sum() > 1
        frame.loc[0, "Split_Set"] = "Test" if frame["Split_Set"].iat[0] != "Test" else "Train"
        write_labels(frame, labels)
        leaked = check_splits(condition)
        assert not leaked.clean
        assert any(f"speaker {speaker!r} is in several splits" in v for v in leaked.violations)


CLIP = "MSP-IMPROV-S06H-F01-S-FF02.wav"  # 2 x happy in the fixture
EXCLUDED = "MSP-IMPROV-S03S-M02-S-MF02.wav"  # all primary votes "Other"


def _prepare_improv(raw: Path, out: Path, relabel: Path) -> int:
    return main(["prepare", "msp-improv", "--raw", str(raw), "--out", str(out), "--relabel", str(relabel)])


def _relabel(tmp_path: Path, rows: list[str], header: str = "FileName,neutral,angry,sad,happy") -> Path:
    path = tmp_path / "relabel.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_relabel_replaces_rows_and_is_recorded(improv_raw: Path, tmp_path: Path) -> None:
    relabel = _relabel(tmp_path, [f"{CLIP},0.1,0.2,0.3,0.4"])
    out = tmp_path / "out"
    assert _prepare_improv(improv_raw, out, relabel) == 0
    folder = out / "IMPROV" / "Primary"
    primary = read_labels(folder / "labels_consensus_2.csv", read_config(folder).classes)
    row = primary.set_index("FileName").loc[CLIP]
    assert [row["angry"], row["sad"], row["neutral"], row["happy"]] == pytest.approx([0.2, 0.3, 0.1, 0.4])
    untouched = primary.set_index("FileName").loc["MSP-IMPROV-S02H-M01-P-FM01.wav", "happy"]
    assert untouched == pytest.approx(0.95)
    manifest = json.loads((out / "IMPROV" / "manifest.json").read_text())
    assert manifest["relabel"]["condition"] == "Primary"
    assert manifest["conditions"]["Primary"]["relabelled"] == [CLIP]
    assert manifest["conditions"]["Secondary"]["relabelled"] == []


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["MSP-IMPROV-S99A-F01-S-FF02.wav,0.1,0.2,0.3,0.4"], None, "line 2: unknown FileName"),
        (
            [f"{CLIP},0.1,0.2,0.3,0.4", f"{EXCLUDED},0.25,0.25,0.25,0.25"],
            None,
            f"line 3: unknown FileName '{EXCLUDED}': it was excluded",
        ),
        ([f"{CLIP},0.5,0.2,0.3,0.4"], None, f"line 2 ({CLIP}): values"),
        ([f"{CLIP},x,0.2,0.3,0.5"], None, f"line 2 ({CLIP}): non-numeric"),
        ([f"{CLIP},0.5,0.5"], "FileName,neutral,angry", "line 1: class columns"),
    ],
    ids=["unknown-file", "excluded-file", "bad-sum", "non-numeric", "wrong-classes"],
)
def test_bad_relabel_file_is_an_error(
    improv_raw: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    rows: list[str],
    header: str | None,
    message: str,
) -> None:
    relabel = _relabel(tmp_path, rows, *([header] if header else []))
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        code = _prepare_improv(improv_raw, out, relabel)
    assert code == 2
    assert f"{relabel}, {message}" in caplog.text
    assert_nothing_written(out)


def test_copy_mode_existing_output_and_generic_only_options(
    iemocap_raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    args = ["prepare", "iemocap", "--raw", str(iemocap_raw), "--out", str(out), "--audio", "copy"]
    assert main(args) == 0
    audio = out / "IEMOCAP" / "Audios" / "Ses01F_impro01_F000.wav"
    assert audio.is_file()
    assert not audio.is_symlink()
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert main(args) == 2
        assert "already exists" in caplog.text
        assert main([*args, "--overwrite"]) == 0
    # generic-only options do not exist on the other recipes' subcommands: argparse refuses them
    with pytest.raises(SystemExit) as refused:
        main([*args, "--overwrite", "--classes", "a,b"])
    assert refused.value.code == 2
    assert "unrecognized arguments: --classes a,b" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["IEMOCAP"]  # no staging folder left behind


def test_failed_run_leaves_nothing(iemocap_raw: Path, tmp_path: Path) -> None:
    (iemocap_raw / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav").unlink()
    out = tmp_path / "out"
    assert main(["prepare", "iemocap", "--raw", str(iemocap_raw), "--out", str(out)]) == 2
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("corpus", "tree_line"),
    [
        ("iemocap", "<corpus_dir>/Session<N>/dialog/EmoEvaluation/<dialog>.txt"),
        ("crema-d", "<corpus_dir>/finishedResponses.csv"),
        ("msp-improv", "<corpus_dir>/Evalution.txt"),
        ("msp-podcast", "<corpus_dir>/Labels/labels_detailed.csv"),
        ("biic-podcast", "<corpus_dir>/Labels/labels_detailed.csv"),
        ("nnime", "<corpus_dir>/annotations.csv"),
        ("generic", "<corpus_dir>/**/<FileName>"),
    ],
)
def test_each_recipe_has_its_own_help_with_the_raw_tree(
    corpus: str, tree_line: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["prepare", corpus, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert tree_line in text
    assert "--corpus-dir CORPUS_DIR, --raw CORPUS_DIR" in text
    assert "--output-dir OUTPUT_DIR, --out OUTPUT_DIR" in text
    assert ("--votes" in text) == (corpus == "generic")


def test_library_names_and_old_aliases_prepare_the_same(crema_raw: Path, tmp_path: Path) -> None:
    assert main(["prepare", "crema-d", "--corpus-dir", str(crema_raw), "--output-dir", str(tmp_path / "a")]) == 0
    assert main(["prepare", "crema-d", "--raw", str(crema_raw), "--out", str(tmp_path / "b")]) == 0
    for fold in range(1, 6):
        name = f"CREMA-D/Primary/labels_consensus_{fold}.csv"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
