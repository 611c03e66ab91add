"""``s3prl-emo prepare`` against hostile and careless input: refused with one line, nothing written or removed."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import pytest
from helpers.corpus_checks import assert_nothing_written
from helpers.raw_fixtures import GENERIC_CLASSES, write_csv, write_wav

from s3prl_emo.cli import main
from s3prl_emo.data.corpora.builder import prepare_corpus
from s3prl_emo.data.corpora.types import Condition, Reading, Recipe, Utterance
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.runtime.guards import OUTPUT_MARKER

Raw = tuple[Path, Path, Path]  # audio folder, votes.csv, meta.csv


def _prepare(raw: Raw, out: Path, *extra: str, classes: str = GENERIC_CLASSES) -> int:
    audio, votes, meta = raw
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
            classes,
            "--out",
            str(out),
            "--folds",
            "3",
            *extra,
        ]
    )


def _error(caplog: pytest.LogCaptureFixture) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0], errors
    return errors[0]


@pytest.mark.parametrize(
    ("classes", "culprit"),
    [
        ("angry,happy,neutral,Split_Set", "'Split_Set' is a reserved column"),
        ("FileName,happy,neutral,sad", "'FileName' is a reserved column"),
        ("angry,happy,neutral,gender", "'gender' is a reserved column"),  # compared without case
        ("angry,happy,neutral,SpkrID", "'SpkrID' is a reserved column"),
        ("angry,happy,neutral,EmoAct", "'EmoAct' is a reserved column"),
        ("angry,happy,neutral,Unnamed: 4", "'Unnamed: 4' is a reserved column"),
        ("angry,happy,neutral,sad,angry", "['angry'] appear more than once"),
        ("angry,happy,neutral,sad,Angry", "distinct without case, got ['Angry', 'angry']"),
        ("angry,happy,,sad", "at least two non-empty class names"),
        ("angry,happy,ne\x1butral,sad", "control characters"),
    ],
    ids=["Split_Set", "FileName", "gender", "SpkrID", "EmoAct", "Unnamed", "repeated", "case", "empty", "escape"],
)
def test_classes_that_would_corrupt_the_label_file_are_refused(
    generic_raw: Raw, tmp_path: Path, classes: str, culprit: str, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out, classes=classes) == 2
    message = _error(caplog)
    assert message.startswith("--classes"), message
    assert culprit in message, message
    assert_nothing_written(out)


def _rewrite(path: Path, header: list[str], extra: str) -> None:
    """The file again, with ``header`` and each record followed by ``extra``."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    write_csv(path, header, [[*row, extra] for row in rows])


@pytest.mark.parametrize(("target", "column"), [("votes", "emotion"), ("meta", "Gender")])
def test_a_repeated_column_is_refused_naming_file_and_column(
    generic_raw: Raw, tmp_path: Path, target: str, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    _audio, votes, meta = generic_raw
    path = votes if target == "votes" else meta
    with open(path, newline="") as handle:
        header = next(csv.reader(handle))
    _rewrite(path, [*header, column], "sad" if column == "emotion" else "Male")  # pandas would say "emotion.1"
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out) == 2
    assert f"{path}, line 1: the" in _error(caplog)
    assert f"column {column!r} twice" in _error(caplog)
    assert_nothing_written(out)


def test_a_relabel_file_with_a_repeated_class_column_is_refused(
    generic_raw: Raw, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relabel = tmp_path / "relabel.csv"
    relabel.write_text("FileName,angry,happy,neutral,sad,sad\ng01.wav,0.25,0.25,0.25,0.25,0\n")
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out, "--relabel", str(relabel)) == 2
    assert f"{relabel}, line 1: the relabel header names column 'sad' twice" in _error(caplog)
    assert_nothing_written(out)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../evil.wav", "contains a folder separator"),
        ("/etc/evil.wav", "contains a folder separator"),
        ("..", "is empty, '.' or '..'"),
        ("my clip.wav", "contains white space"),
        ("a\nb.wav", "contains white space"),
        ("a\x1b[2Jb.wav", "contains control characters"),
    ],
    ids=["dotdot", "absolute", "parent", "space", "newline", "escape"],
)
def test_file_names_that_leave_audios_or_break_the_formats_are_refused_naming_the_row(
    generic_raw: Raw, tmp_path: Path, name: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    _audio, votes, meta = generic_raw
    with open(votes, "a", newline="") as handle:
        csv.writer(handle).writerow([name, "r1", "happy"])
    with open(meta, "a", newline="") as handle:
        csv.writer(handle).writerow([name, "spkZ", "Male", "s5"])
    with open(votes, newline="") as handle:
        line = len(list(csv.reader(handle))) + name.count("\n")  # the record's last line
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out) == 2
    message = _error(caplog)
    assert f"{votes}, line {line}: FileName {name!r} {problem}" in message, message
    assert_nothing_written(out)
    assert not (tmp_path / "evil.wav").exists()
    assert not (tmp_path.parent / "evil.wav").exists()


def test_a_release_naming_a_file_outside_audios_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Any recipe: the builder refuses a FileName that would put its link outside ``Audios/``."""
    audio = write_wav(tmp_path / "raw" / "a.wav")
    condition = Condition("Primary", ("angry", "sad"), "two classes")
    utterances = [
        Utterance(
            file_name=name,
            audio_path=audio,
            speaker=f"s{i}",
            gender="Male",
            session=f"s{i}",
            votes={"Primary": ("angry",)},
        )
        for i, name in enumerate(["ok.wav", "../../../x.wav"])
    ]
    reading = Reading(utterances, tmp_path / "raw", [audio])
    refused = r"FileName '\.\./\.\./\.\./x\.wav' \(audio .*a\.wav\) contains a folder"
    with pytest.raises(InvalidInputError, match=refused):
        prepare_corpus(reading, Recipe("custom", "CUSTOM", (condition,), {}), tmp_path / "deep" / "er" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1", "1e309"])
def test_smoothing_must_be_finite_and_in_range(
    generic_raw: Raw, tmp_path: Path, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out, "--smoothing", value) == 2
    assert _error(caplog).startswith("--smoothing ")
    assert "[0, 1)" in _error(caplog)
    assert_nothing_written(out)


def test_a_fifo_as_votes_file_is_refused_without_blocking(
    generic_raw: Raw, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _audio, votes, _meta = generic_raw
    votes.unlink()
    os.mkfifo(votes)  # opening it for reading would wait for a writer forever
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, tmp_path / "out") == 2
    assert f"{votes}: not a regular file" in _error(caplog)


# -- the output folder ----------------------------------------------------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"") for p in sorted(folder.rglob("*"))}


def test_overwrite_replaces_only_an_earlier_prepare_output(
    generic_raw: Raw, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    (out / "GENERIC").mkdir(parents=True)
    (out / "GENERIC" / "thesis.tex").write_text("years of work")
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out, "--overwrite") == 2
    assert "not an earlier output of `s3prl-emo prepare`" in _error(caplog)
    assert _tree(out) == {"GENERIC": b"", "GENERIC/thesis.tex": b"years of work"}
    (out / "GENERIC" / "thesis.tex").unlink()
    assert _prepare(generic_raw, out) == 0  # an empty folder may be used
    assert json.loads((out / "GENERIC" / OUTPUT_MARKER).read_text()) == {"command": "prepare"}
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out) == 2
    assert "already exists" in _error(caplog)
    assert "--overwrite" in _error(caplog)
    assert _prepare(generic_raw, out, "--overwrite") == 0  # its own earlier output: replaced
    assert sorted(p.name for p in out.iterdir()) == ["GENERIC"]


def test_the_raw_corpus_inside_the_output_folder_is_never_replaced(
    generic_raw: Raw, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audio, votes, meta = generic_raw
    out = tmp_path / "out"
    assert _prepare(generic_raw, out) == 0
    # the raw corpus moved into the earlier output (marker and all): --overwrite would delete it
    inside = out / "GENERIC" / "raw"
    audio.rename(inside)
    before = _tree(inside)
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare((inside, votes, meta), out, "--overwrite") == 2
    assert "would replace the input" in _error(caplog)
    assert _error(caplog).startswith("--output-dir ")
    assert _tree(inside) == before


def test_a_symlinked_or_file_output_is_refused(
    generic_raw: Raw, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / OUTPUT_MARKER).write_text(json.dumps({"command": "prepare"}))
    (elsewhere / "keep.txt").write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "GENERIC").symlink_to(elsewhere)
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, out, "--overwrite") == 2
    assert "is a symbolic link" in _error(caplog)
    assert (elsewhere / "keep.txt").read_text() == "keep"
    assert (out / "GENERIC").is_symlink()
    caplog.clear()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, blocker / "sub") == 2
    assert f"{blocker} is a file, not a folder" in _error(caplog)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("name", ["a\nb", "..", "x/y"])
def test_name_must_be_a_plain_folder_name(
    generic_raw: Raw, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="s3prl_emo"):
        assert _prepare(generic_raw, tmp_path / "out", "--name", name) == 2
    assert _error(caplog).startswith(f"--name {name!r}")
    assert_nothing_written(tmp_path / "out")
