"""``--relabel`` with EMO-SUPERB's released ChatGPT relabel file, read as it is.

``data/emo_superb_chatgpt_output_train_head400.csv`` is the first 400 lines, unchanged, of
``chatGPT/output_train.csv`` in the EMO-SUPERB repository: an unnamed file-name column, the
eight MSP-PODCAST primary classes, a quoted free-text ``reason``; two of its rows sum to 0.7 and
0.9 (and one to 0.999, at the edge of the 1e-3 tolerance).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from corpus_checks import assert_nothing_written
from raw_fixtures import write_csv, write_wav

from s3prl_emo.cli import main
from s3prl_emo.corpora import generic
from s3prl_emo.corpora.podcast_release import CLASSES_PRIMARY
from s3prl_emo.corpora.relabel import EMO_SUPERB_CHATGPT, read_relabel
from s3prl_emo.errors import InvalidInputError

RELEASED = Path(__file__).parent / "data" / "emo_superb_chatgpt_output_train_head400.csv"
# rows 2, 3 and 38 (off sum 0.7) of the file, and two of the sessions' other rows
IN_CORPUS = ["MSP-PODCAST_0001_0028.wav", "MSP-PODCAST_0001_0141.wav", "MSP-PODCAST_1628_0029_0007.wav",
             "MSP-PODCAST_0003_0038.wav", "MSP-PODCAST_0003_0081.wav", "MSP-PODCAST_0003_0084.wav"]
ABSENT = "MSP-PODCAST_9999_0001.wav"  # in the corpus, not in the file: keeps its computed row


def _released() -> pd.DataFrame:
    return pd.read_csv(RELEASED, index_col=0)


def _policy(released: pd.DataFrame, name: str) -> np.ndarray:
    """The documented policy, written out: a row off 1 by more than 1e-3 is divided by its sum."""
    row = released.loc[name, list(CLASSES_PRIMARY)].to_numpy(float)
    return row / row.sum() if abs(row.sum() - 1) > 1e-3 else row


@pytest.fixture
def podcast_named_corpus(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A generic corpus holding some of the file's names, with the eight primary classes."""
    audio = tmp_path / "audio"
    names = [*IN_CORPUS, ABSENT]
    for i, name in enumerate(names):
        write_wav(audio / name, seed=i)
    votes = write_csv(tmp_path / "votes.csv", ["FileName", "annotator", "emotion"],
                      [(n, f"r{j}", "neutral") for n in names for j in range(2)])
    meta = write_csv(tmp_path / "meta.csv", ["FileName", "SpkrID", "Gender", "Session"],
                     [(n, n.split("_")[1], "Female", n.split("_")[1]) for n in names])
    return audio, votes, meta


def test_released_file_is_read_as_it_is() -> None:
    table = read_relabel(RELEASED, CLASSES_PRIMARY)
    released = _released()
    assert table.form == EMO_SUPERB_CHATGPT
    assert list(table.rows) == list(released.index) and len(table.rows) == 399
    sums = released[list(CLASSES_PRIMARY)].sum(axis=1)
    clearly_off = set(sums[(sums - 1).abs() > 2e-3].index)
    assert len(clearly_off) == 2 and set(table.renormalised) == clearly_off
    assert all(abs(sums[n] - 1) <= 1e-3 + 1e-9 for n in set(table.rows) - clearly_off)
    for name, dist in table.rows.items():
        np.testing.assert_allclose(dist, _policy(released, name), err_msg=name)


def test_prepare_generic_relabels_with_the_released_file(podcast_named_corpus, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    audio, votes, meta = podcast_named_corpus
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = main(["prepare", "generic", "--corpus-dir", str(audio), "--votes", str(votes), "--meta", str(meta),
                     "--classes", ",".join(CLASSES_PRIMARY), "--folds", "3", "--output-dir", str(out),
                     "--relabel", str(RELEASED)])
    assert code == 0
    assert "renormalised 2 row(s)" in caplog.text and "line 38 (MSP-PODCAST_1628_0029_0007.wav)" in caplog.text
    released = _released()
    for fold in (1, 2, 3):
        frame = pd.read_csv(out / "GENERIC" / "Primary" / f"labels_consensus_{fold}.csv").set_index("FileName")
        for name in IN_CORPUS:
            np.testing.assert_allclose(frame.loc[name, list(CLASSES_PRIMARY)].to_numpy(float),
                                       _policy(released, name), atol=1e-6, err_msg=name)  # not smoothed
        assert frame.loc[ABSENT, "neutral"] == pytest.approx(0.95)  # computed and smoothed as usual
    manifest = json.loads((out / "GENERIC" / "manifest.json").read_text())
    assert manifest["relabel"]["form"] == EMO_SUPERB_CHATGPT
    assert (manifest["relabel"]["rows"], manifest["relabel"]["renormalised"]) == (399, 2)
    assert manifest["relabel"]["not_in_corpus"] == 399 - len(IN_CORPUS)
    assert manifest["conditions"]["Primary"]["relabelled"] == [n for n in released.index if n in IN_CORPUS]


@pytest.mark.parametrize("edit, message", [
    (lambda v: "-0.1", "line 2 (MSP-PODCAST_0001_0028.wav): values"),
    (lambda v: "nan", "line 2 (MSP-PODCAST_0001_0028.wav): values"),
    (lambda v: "x", "line 2 (MSP-PODCAST_0001_0028.wav): non-numeric"),
    (None, "line 2 (MSP-PODCAST_0001_0028.wav): values [0.0, 0.0"),
], ids=["negative", "nan", "non-numeric", "all-zero"])
def test_bad_rows_of_the_released_form_name_the_line(podcast_named_corpus, tmp_path: Path, edit,
                                                     message: str) -> None:
    released = pd.read_csv(RELEASED, dtype=str, keep_default_na=False)
    if edit is None:
        released.loc[0, list(CLASSES_PRIMARY)] = "0"
    else:
        released.loc[0, "neutral"] = edit(released.loc[0, "neutral"])
    broken = tmp_path / "broken.csv"
    released.to_csv(broken, index=False)
    audio, votes, meta = podcast_named_corpus
    with pytest.raises(InvalidInputError, match=re.escape(f"{broken}, {message}")):
        generic.prepare_generic(audio, tmp_path / "out", votes=votes, meta=meta, classes=CLASSES_PRIMARY,
                                folds=3, relabel=broken)
    assert_nothing_written(tmp_path / "out")
