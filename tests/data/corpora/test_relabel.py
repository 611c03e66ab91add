"""``--relabel`` with files in the form of EMO-SUPERB's released ChatGPT relabel files.

``released_like`` writes a file shaped as ``chatGPT/output_train.csv`` of the EMO-SUPERB
repository is: an unnamed file-name column, the eight MSP-PODCAST primary classes, a free-text
``reason`` with quoted commas, rows of tenths and elevenths (rounded to 9 digits), two rows
summing to 0.7 (line 38) and 0.9, and one to 0.999, at the edge of the 1e-3 tolerance.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.corpus_checks import assert_nothing_written
from helpers.raw_fixtures import write_csv, write_wav

from s3prl_emo.cli import main
from s3prl_emo.data.corpora import generic
from s3prl_emo.data.corpora.msp_podcast import CLASSES_PRIMARY
from s3prl_emo.data.corpora.relabel import EMO_SUPERB_CHATGPT, read_relabel
from s3prl_emo.errors import InvalidInputError

# lines 2, 3 and 38 (off sum 0.7) of the file, and three other podcasts' rows
IN_CORPUS = [
    "MSP-PODCAST_0001_0028.wav",
    "MSP-PODCAST_0001_0141.wav",
    "MSP-PODCAST_1628_0029_0007.wav",
    "MSP-PODCAST_0003_0038.wav",
    "MSP-PODCAST_0003_0081.wav",
    "MSP-PODCAST_0003_0084.wav",
]
ABSENT = "MSP-PODCAST_9999_0001.wav"  # in the corpus, not in the file: keeps its computed row


# line -> (file name, class values) where the file departs from a plain row of tenths
SPECIAL_ROWS = {
    2: ("MSP-PODCAST_0001_0028.wav", [0, 0, 0, 0, 0, 0.7, 0, 0.3]),
    3: ("MSP-PODCAST_0001_0141.wav", [0, 0.8, 0, 0, 0, 0.2, 0, 0]),
    5: ("MSP-PODCAST_0003_0038.wav", [0, 0, 0, 0, 0, 0.4, 0.1, 0.5]),
    6: ("MSP-PODCAST_0003_0081.wav", [0, 0.1, 0, 0, 0, 0.8, 0, 0.1]),
    7: ("MSP-PODCAST_0003_0084.wav", [0.2, 0, 0, 0, 0, 0.6, 0, 0.2]),
    38: ("MSP-PODCAST_1628_0029_0007.wav", [0.15, 0, 0, 0.35, 0, 0, 0, 0.2]),  # sums to 0.7
    224: ("MSP-PODCAST_1645_0071.wav", [0, 0, 0, 0, 0.272727273, 0.454545455, 0.272727273, 0]),
    234: ("MSP-PODCAST_1645_0110_0023.wav", [0.272727273, 0, 0.181818182, 0.363636364, 0, 0.181818182, 0, 0]),
    319: ("MSP-PODCAST_1649_0134.wav", [0, 0, 0, 0.444, 0, 0.222, 0.111, 0.222]),  # sums to 0.999
    396: ("MSP-PODCAST_1651_0060_0091.wav", [0.35, 0, 0.15, 0.25, 0, 0.05, 0.1, 0]),  # sums to 0.9
}
REASONS = [
    "Interest suggests a positive emotion, increasing 'happy'.",
    "Calm delivery keeps 'neutral' high.",
    "Frustration raises 'angry', and some 'disgust'.",
    "Sighing points to 'sad'.",
]


@pytest.fixture(scope="module")
def released_like(tmp_path_factory) -> Path:
    """399 rows in the released file's form (see the module docstring), seeded."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("relabel") / "output_train.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", *CLASSES_PRIMARY, "reason"])
        for line in range(2, 401):
            name, values = SPECIAL_ROWS.get(line, (f"MSP-PODCAST_{2000 + line:04d}_{line % 97:04d}.wav", None))
            if values is None:
                values = (rng.multinomial(10, rng.dirichlet(np.full(8, 0.3))) / 10).tolist()
            writer.writerow([name, *(f"{v:g}" for v in values), REASONS[line % len(REASONS)]])
    return path


def _released(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)


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
    votes = write_csv(
        tmp_path / "votes.csv",
        ["FileName", "annotator", "emotion"],
        [(n, f"r{j}", "neutral") for n in names for j in range(2)],
    )
    meta = write_csv(
        tmp_path / "meta.csv",
        ["FileName", "SpkrID", "Gender", "Session"],
        [(n, n.split("_")[1], "Female", n.split("_")[1]) for n in names],
    )
    return audio, votes, meta


def test_released_form_is_read_as_it_is(released_like: Path) -> None:
    table = read_relabel(released_like, CLASSES_PRIMARY)
    released = _released(released_like)
    assert table.form == EMO_SUPERB_CHATGPT
    assert list(table.rows) == list(released.index)
    assert len(table.rows) == 399
    sums = released[list(CLASSES_PRIMARY)].sum(axis=1)
    clearly_off = set(sums[(sums - 1).abs() > 2e-3].index)
    assert len(clearly_off) == 2
    assert set(table.renormalised) == clearly_off
    assert all(abs(sums[n] - 1) <= 1e-3 + 1e-9 for n in set(table.rows) - clearly_off)
    for name, dist in table.rows.items():
        np.testing.assert_allclose(dist, _policy(released, name), err_msg=name)


def test_prepare_generic_relabels_with_a_released_form_file(
    podcast_named_corpus, released_like: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audio, votes, meta = podcast_named_corpus
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = main(
            [
                "prepare",
                "generic",
                "--corpus-dir",
                str(audio),
                "--votes",
                str(votes),
                "--meta",
                str(meta),
                "--classes",
                ",".join(CLASSES_PRIMARY),
                "--folds",
                "3",
                "--output-dir",
                str(out),
                "--relabel",
                str(released_like),
            ]
        )
    assert code == 0
    assert "renormalised 2 row(s)" in caplog.text
    assert "line 38 (MSP-PODCAST_1628_0029_0007.wav)" in caplog.text
    released = _released(released_like)
    for fold in (1, 2, 3):
        frame = pd.read_csv(out / "GENERIC" / "Primary" / f"labels_consensus_{fold}.csv").set_index("FileName")
        for name in IN_CORPUS:
            np.testing.assert_allclose(
                frame.loc[name, list(CLASSES_PRIMARY)].to_numpy(float), _policy(released, name), atol=1e-6, err_msg=name
            )  # not smoothed
        assert frame.loc[ABSENT, "neutral"] == pytest.approx(0.95)  # computed and smoothed as usual
    manifest = json.loads((out / "GENERIC" / "manifest.json").read_text())
    assert manifest["relabel"]["form"] == EMO_SUPERB_CHATGPT
    assert (manifest["relabel"]["rows"], manifest["relabel"]["renormalised"]) == (399, 2)
    assert manifest["relabel"]["not_in_corpus"] == 399 - len(IN_CORPUS)
    assert manifest["conditions"]["Primary"]["relabelled"] == [n for n in released.index if n in IN_CORPUS]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v: "-0.1", "line 2 (MSP-PODCAST_0001_0028.wav): values"),
        (lambda v: "nan", "line 2 (MSP-PODCAST_0001_0028.wav): values"),
        (lambda v: "x", "line 2 (MSP-PODCAST_0001_0028.wav): non-numeric"),
        (None, "line 2 (MSP-PODCAST_0001_0028.wav): values [0.0, 0.0"),
    ],
    ids=["negative", "nan", "non-numeric", "all-zero"],
)
def test_bad_rows_of_the_released_form_name_the_line(
    podcast_named_corpus, released_like: Path, tmp_path: Path, edit, message: str
) -> None:
    released = pd.read_csv(released_like, dtype=str, keep_default_na=False)
    if edit is None:
        released.loc[0, list(CLASSES_PRIMARY)] = "0"
    else:
        released.loc[0, "neutral"] = edit(released.loc[0, "neutral"])
    broken = tmp_path / "broken.csv"
    released.to_csv(broken, index=False)
    audio, votes, meta = podcast_named_corpus
    with pytest.raises(InvalidInputError, match=re.escape(f"{broken}, {message}")):
        generic.prepare_generic(
            audio, tmp_path / "out", votes=votes, meta=meta, classes=CLASSES_PRIMARY, folds=3, relabel=broken
        )
    assert_nothing_written(tmp_path / "out")
