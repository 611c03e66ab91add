"""Expected results and assertions shared by the corpus-recipe tests.

Expected soft labels are computed by hand from the EMO-SUPERB paper's soft-label rule: every selected
class is a vote, "other" is dropped, q = counts / total, p = (1 - a) q + a / K with
a = 0.05 K / (K - 1); off-class entries are 0.05 / (K - 1). Hand-written label files are in
``expected/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from s3prl_emo.data.layout import read_config, read_labels

EXPECTED = Path(__file__).resolve().parents[1] / "data" / "corpora" / "expected"


def assert_frame_matches(frame: pd.DataFrame, expected_csv: str) -> None:
    """``frame`` equals the hand-written CSV: same columns and rows, numbers within 1e-5.

    (The label files are written with 6 significant digits, so 2.333333 is stored as 2.33333.)
    """
    expected = pd.read_csv(EXPECTED / expected_csv, dtype={"SpkrID": str})
    assert list(frame.columns) == list(expected.columns)
    assert list(frame["FileName"]) == list(expected["FileName"])
    numeric = [c for c in expected.columns if c not in ("FileName", "SpkrID", "Gender", "Split_Set")]
    np.testing.assert_allclose(frame[numeric].to_numpy(float), expected[numeric].to_numpy(float), atol=1e-5)
    for column in ("SpkrID", "Gender", "Split_Set"):
        assert list(frame[column].astype(str)) == list(expected[column]), column


def assert_nothing_written(out: Path) -> None:
    """A failed run leaves no corpus and no staging folder behind."""
    assert not out.exists() or list(out.iterdir()) == []


def read_str_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def row_of(frame: pd.DataFrame, file_name: str) -> pd.Series:
    rows = frame[frame["FileName"] == file_name]
    assert len(rows) == 1, f"{file_name}: {len(rows)} rows"
    return rows.iloc[0]


# Expected output of build_podcast (MSP-PODCAST names; BIIC tests rename them).
PRIMARY = ("angry", "sad", "disgust", "contempt", "fear", "neutral", "surprise", "happy")  # published column order
SECONDARY = (
    "angry",
    "frustrated",
    "annoyed",
    "disappointed",
    "sad",
    "disgust",
    "depressed",
    "contempt",
    "confused",
    "concerned",
    "fear",
    "neutral",
    "surprise",
    "amused",
    "excited",
    "happy",
)
OFF = {8: 0.05 / 7, 16: 0.05 / 15}  # a class nobody chose gets 0.05 / (K - 1)

# Hand-computed (EMO-SUPERB's soft-label rule). K = 8: p = (1 - 0.4/7) q + 0.05/7; K = 16: p = (1 - 0.8/15) q + 0.05/15.
EXPECTED_PRIMARY = {
    # 3 x angry (one as the code "A"), 1 x sad, 1 x "Other-bored, tired" (dropped): q = 3/4, 1/4
    "MSP-PODCAST_0001_0001.wav": {"angry": 0.714286, "sad": 0.242857},
    "MSP-PODCAST_0001_0002.wav": {"neutral": 0.95},
    "MSP-PODCAST_0002_0001.wav": {"happy": 0.761429, "surprise": 0.195714},  # 4 : 1
    "MSP-PODCAST_0002_0002.wav": {"sad": 0.95},
    "MSP-PODCAST_0003_0001.wav": {"contempt": 0.384286, "disgust": 0.384286, "neutral": 0.195714},  # 2:2:1
    "MSP-PODCAST_0004_0001.wav": {"fear": 0.95},
}
EXPECTED_SECONDARY = {
    # primary + secondary, a class once per worker: {angry, frustrated, annoyed}, {angry}, {sad},
    # {angry, annoyed}, {frustrated}: angry 3, frustrated 2, annoyed 2, sad 1 of 8
    "MSP-PODCAST_0001_0001.wav": {"angry": 0.358333, "frustrated": 0.24, "annoyed": 0.24, "sad": 0.121667},
    "MSP-PODCAST_0001_0002.wav": {"neutral": 0.95},
    "MSP-PODCAST_0002_0001.wav": {"happy": 0.760667, "surprise": 0.192667},
    "MSP-PODCAST_0002_0002.wav": {"sad": 0.792222, "disappointed": 0.161111},  # sad 5, disappointed 1
    "MSP-PODCAST_0003_0001.wav": {"contempt": 0.382, "disgust": 0.382, "neutral": 0.192667},
    "MSP-PODCAST_0004_0001.wav": {"fear": 0.95},
}
# FileName -> (EmoAct, EmoVal, EmoDom means, SpkrID, Gender, Split_Set); Test1 + Test2 -> Test
EXPECTED_META = {
    "MSP-PODCAST_0001_0001.wav": (4.6, 2.0, 4.2, "101", "Female", "Train"),
    "MSP-PODCAST_0001_0002.wav": (4.0, 4.0, 4.0, "101", "Female", "Train"),
    "MSP-PODCAST_0002_0001.wav": (5.2, 5.8, 5.0, "202", "Male", "Development"),
    "MSP-PODCAST_0002_0002.wav": (2.0, 2.0, 2.0, "202", "Male", "Development"),
    "MSP-PODCAST_0003_0001.wav": (4.0, 3.0, 5.0, "303", "Female", "Test"),
    "MSP-PODCAST_0004_0001.wav": (6.0, 2.0, 2.0, "Unknown", "", "Test"),
}


def assert_podcast_condition(
    folder: Path,
    classes: tuple[str, ...],
    expected: dict[str, dict[str, float]],
    *,
    prefix: str = "MSP-PODCAST",
    description: str = "MSP-Podcast v1.11",
) -> None:
    """One condition of a prepared podcast corpus equals the hand-computed rows (names renamed
    to ``prefix``)."""
    config = read_config(folder)
    assert config.classes == classes
    assert config.description == f"{description} - {len(classes)} classes"
    assert config.dimensional == {"max_score": 7, "min_score": 1}
    read_labels(folder / "labels_consensus_1.csv", classes)  # validates rows, splits, names
    frame = read_str_csv(folder / "labels_consensus_1.csv")
    assert list(frame.columns) == ["FileName", *classes, "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
    assert sorted(frame["FileName"]) == sorted(n.replace("MSP-PODCAST", prefix) for n in expected)
    assert not (folder / "labels_consensus_2.csv").exists()  # one fold: the corpus's own sets
    for name, values in expected.items():
        row = row_of(frame, name.replace("MSP-PODCAST", prefix))
        want = [values.get(c, OFF[len(classes)]) for c in classes]
        np.testing.assert_allclose(row[list(classes)].astype(float), want, atol=1e-6, err_msg=name)
        act, val, dom, speaker, gender, split = EXPECTED_META[name]
        np.testing.assert_allclose(row[["EmoAct", "EmoVal", "EmoDom"]].astype(float), [act, val, dom])
        assert (row["SpkrID"], row["Gender"], row["Split_Set"]) == (speaker, gender, split), name
