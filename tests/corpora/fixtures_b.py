"""Tiny raw corpora for the MSP-PODCAST, BIIC-PODCAST, NNIME and generic recipes.

Each builder writes a few short generated wavs and the annotation files in the corpus's raw
format into a folder and returns it. The expected soft labels in the tests are computed by
hand from the EMO-SUPERB rule (facts §2): every selected class is a vote, "other" is dropped,
q = counts / total, p = (1 - a) q + a / K with a = 0.05 K / (K - 1); off-class entries are
0.05 / (K - 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from s3prl_emo.layout import read_config, read_labels

SAMPLE_RATE = 16_000


def write_wav(path: Path, seconds: float = 0.1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0.0, 0.05, int(SAMPLE_RATE * seconds)).astype(np.float32)
    sf.write(path, noise, SAMPLE_RATE)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def row_of(frame: pd.DataFrame, file_name: str) -> pd.Series:
    rows = frame[frame["FileName"] == file_name]
    assert len(rows) == 1, f"{file_name}: {len(rows)} rows"
    return rows.iloc[0]


# --- MSP-PODCAST / BIIC-PODCAST ------------------------------------------------------------

# (worker, primary, secondary list, EmoAct, EmoVal, EmoDom) per file; consensus: set, speaker, gender.
PODCAST_ANNOTATIONS = {
    "MSP-PODCAST_0001_0001.wav": [
        ("WORKER01", "Angry", "Frustrated,Annoyed", 5, 2, 5),
        ("WORKER02", "Angry", "Angry", 6, 2, 5),
        ("WORKER03", "Sad", "", 3, 3, 3),
        ("WORKER04", "A", "Annoyed", 5, 1, 4),  # one-letter code of Angry
        ("WORKER05", "Other-bored, tired", "Frustrated", 4, 2, 4),
    ],
    "MSP-PODCAST_0001_0002.wav": [(f"WORKER0{i}", "Neutral", "", 4, 4, 4) for i in range(1, 6)],
    "MSP-PODCAST_0002_0001.wav": [
        *[(f"WORKER0{i}", "Happy", "", 5, 6, 5) for i in range(1, 5)],
        ("WORKER05", "Surprise", "", 6, 5, 5),
    ],
    "MSP-PODCAST_0002_0002.wav": [
        ("WORKER01", "Sad", "Disappointed", 2, 2, 2),
        *[(f"WORKER0{i}", "Sad", "Sad", 2, 2, 2) for i in range(2, 6)],
    ],
    "MSP-PODCAST_0003_0001.wav": [
        ("WORKER01", "Contempt", "", 4, 3, 5), ("WORKER02", "Contempt", "", 4, 3, 5),
        ("WORKER03", "Disgust", "", 4, 3, 5), ("WORKER04", "Disgust", "", 4, 3, 5),
        ("WORKER05", "Neutral", "", 4, 3, 5),
    ],
    "MSP-PODCAST_0003_0002.wav": [(f"WORKER0{i}", "Other-calm", "Concerned", 3, 4, 4) for i in range(1, 4)],
    "MSP-PODCAST_0004_0001.wav": [(f"WORKER0{i}", "Fear", "", 6, 2, 2) for i in range(1, 4)],
}
PODCAST_META = {  # FileName -> (set, SpkrID, Gender); Test3 has no public labels
    "MSP-PODCAST_0001_0001.wav": ("Train", "101", "Female"),
    "MSP-PODCAST_0001_0002.wav": ("Train", "101", "Female"),
    "MSP-PODCAST_0002_0001.wav": ("Development", "202", "Male"),
    "MSP-PODCAST_0002_0002.wav": ("Development", "202", "Male"),
    "MSP-PODCAST_0003_0001.wav": ("Test1", "303", "Female"),
    "MSP-PODCAST_0003_0002.wav": ("Test1", "303", "Female"),
    "MSP-PODCAST_0004_0001.wav": ("Test2", "Unknown", "Unknown"),
    "MSP-PODCAST_0004_0002.wav": ("Test3", "Unknown", "Unknown"),
}


def _consensus_rows(meta: dict[str, tuple[str, str, str]]) -> list[list[object]]:
    return [[name, "X", 4.0, 4.0, 4.0, spk, gender, split] for name, (split, spk, gender) in meta.items()]


def build_podcast(root: Path, *, shape: str = "columns", prefix: str = "MSP-PODCAST",
                  sets: dict[str, str] | None = None, codes: bool = True) -> Path:
    """A release laid out like MSP-PODCAST v1.11.

    shape "columns": labels_detailed.csv with one column per field + labels_consensus.csv;
    shape "detail": the EmoDetail form + Partitions.txt + Speaker_ids.txt (no consensus file).
    ``prefix`` renames the files (BIIC-PODCAST); ``sets`` renames corpus sets; ``codes=False``
    spells the one primary emotion given as a one-letter code ("A") as a word.
    """
    def rename(name: str) -> str:
        return name.replace("MSP-PODCAST", prefix)

    meta = {rename(n): ((sets or {}).get(s, s), spk, g) for n, (s, spk, g) in PODCAST_META.items()}
    for i, name in enumerate(meta):
        write_wav(root / "Audios" / name, seed=i)
    annotations = {n: [(w, p if codes or p != "A" else "Angry", *rest) for (w, p, *rest) in items]
                   for n, items in PODCAST_ANNOTATIONS.items()}
    if shape == "columns":
        rows = [[rename(n), w, p, s, a, v, d] for n, items in annotations.items()
                for (w, p, s, a, v, d) in items]
        write_csv(root / "Labels" / "labels_detailed.csv",
                  ["FileName", "WorkerID", "EmoClass_Major", "EmoClass_Second", "EmoAct", "EmoVal", "EmoDom"],
                  rows)
        write_csv(root / "Labels" / "labels_consensus.csv",
                  ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"],
                  _consensus_rows(meta))
    elif shape == "detail":
        rows = [[rename(n), f"{w}; {p}; {s}; A:{a}.0; V:{v}.0; D:{d}.0;"]
                for n, items in annotations.items() for (w, p, s, a, v, d) in items]
        write_csv(root / "Labels" / "labels_detailed.csv", ["FileName", "EmoDetail"], rows)
        lines = ["Partitions of the corpus", ""] + [f"{s}; {n}" for n, (s, _, _) in meta.items()]
        (root / "Partitions.txt").write_text("\n".join(lines) + "\n")
        speakers = ["Speaker information", "Speaker_101; Female", "Speaker_202; Male", "Speaker_303; Female"]
        speakers += [f"{n}; {spk}" for n, (_, spk, _) in meta.items()]
        (root / "Speaker_ids.txt").write_text("\n".join(speakers) + "\n")
    else:
        raise ValueError(shape)
    return root


# Expected output of build_podcast (MSP-PODCAST names; BIIC tests rename them).
PRIMARY = ("angry", "sad", "disgust", "contempt", "fear", "neutral", "surprise", "happy")  # facts §1
SECONDARY = ("angry", "frustrated", "annoyed", "disappointed", "sad", "disgust", "depressed", "contempt",
             "confused", "concerned", "fear", "neutral", "surprise", "amused", "excited", "happy")
OFF = {8: 0.05 / 7, 16: 0.05 / 15}  # a class nobody chose gets 0.05 / (K - 1)

# Hand-computed (facts §2). K = 8: p = (1 - 0.4/7) q + 0.05/7; K = 16: p = (1 - 0.8/15) q + 0.05/15.
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


def read_str_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_podcast_condition(folder: Path, classes: tuple[str, ...], expected: dict[str, dict[str, float]],
                             *, prefix: str = "MSP-PODCAST", description: str = "MSP-Podcast v1.11") -> None:
    """One condition of a prepared podcast corpus equals the hand-computed rows (names renamed
    to ``prefix``)."""
    config = read_config(folder)
    assert config.classes == classes
    assert config.description == f"{description} - {len(classes)} classes"
    assert config.dimensional == {"max_score": 7, "min_score": 1}
    read_labels(folder / "labels_consensus_1.csv", classes)  # validates rows, splits, names
    frame = read_str_csv(folder / "labels_consensus_1.csv")
    assert list(frame.columns) == ["FileName", *classes, "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                                   "Split_Set"]
    assert sorted(frame["FileName"]) == sorted(n.replace("MSP-PODCAST", prefix) for n in expected)
    assert not (folder / "labels_consensus_2.csv").exists()  # one fold: the corpus's own sets
    for name, values in expected.items():
        row = row_of(frame, name.replace("MSP-PODCAST", prefix))
        want = [values.get(c, OFF[len(classes)]) for c in classes]
        np.testing.assert_allclose(row[list(classes)].astype(float), want, atol=1e-6, err_msg=name)
        act, val, dom, speaker, gender, split = EXPECTED_META[name]
        np.testing.assert_allclose(row[["EmoAct", "EmoVal", "EmoDom"]].astype(float), [act, val, dom])
        assert (row["SpkrID"], row["Gender"], row["Split_Set"]) == (speaker, gender, split), name


# --- NNIME ---------------------------------------------------------------------------------

# FileName -> one emotion answer per rater (";" joins several options)
NNIME_ANNOTATIONS = {
    "neutral_01_A_001.wav": ["neutral", "neutral;relax", "neutral"],
    "happy_01_A_011.wav": ["happy", "happy", "happiness"],
    "angry_01_B_002.wav": ["anger", "angry", "frustration"],
    "happy_05_A_003.wav": ["happy", "joy", "excited;happy", "other"],
    "sad_09_B_004.wav": ["sad", "sadness", "sad", "sad"],
    "surprise_13_A_005.wav": ["surprise", "surprise", "fear"],
    "frustration_17_B_006.wav": ["frustrated", "disappointed", "disappointment"],
    "neutral_22_A_007.wav": ["neutral", "neutral", "neutral"],
    "neutral_22_B_008.wav": ["neutral", "relax", "relaxation"],
    "angry_05_B_009.wav": ["other", "other:生氣", "other"],  # all "other": excluded
    "happy_13_B_010.wav": ["happy", "happy"],  # two raters: excluded
}


def build_nnime(root: Path, annotations: dict[str, list[str]] | None = None) -> Path:
    """Audios/<dialog folder>/<turn>.wav plus annotations.csv with EmoAct/EmoVal for every rater."""
    annotations = NNIME_ANNOTATIONS if annotations is None else annotations
    rows = []
    for i, (name, answers) in enumerate(annotations.items()):
        write_wav(root / "Audios" / f"dialog{name.split('_')[1]}" / name, seed=i)
        rows += [[name, f"rater{j}", answer, 1 + j, 3] for j, answer in enumerate(answers, start=1)]
    write_csv(root / "annotations.csv", ["FileName", "annotator", "emotion", "EmoAct", "EmoVal"], rows)
    return root


# --- generic -------------------------------------------------------------------------------

GENERIC_CLASSES = "angry,happy,neutral,sad"
GENERIC_VOTES = [  # FileName, annotator, emotion
    ("s1/g01.wav", "r1", "happy"), ("s1/g01.wav", "r2", "happy;neutral"), ("s1/g01.wav", "r3", "happy"),
    ("s1/g02.wav", "r1", "angry"), ("s1/g02.wav", "r2", "angry"), ("s1/g02.wav", "r3", "other"),
    ("s2/g03.wav", "r1", "other"), ("s2/g03.wav", "r2", "other"),
    ("s2/g04.wav", "r1", "sad"), ("s2/g04.wav", "r2", "Sad"),
    ("s3/g05.wav", "r1", "neutral"), ("s3/g06.wav", "r1", "neutral"), ("s3/g07.wav", "r1", "happy"),
    ("s4/g08.wav", "r1", "sad"), ("s5/g09.wav", "r1", "angry"), ("s5/g10.wav", "r2", "angry"),
]
GENERIC_META = {  # FileName -> (SpkrID, Gender, Session)
    "g01.wav": ("spkA", "Female", "s1"), "g02.wav": ("spkA", "Female", "s1"),
    "g03.wav": ("spkB", "Male", "s2"), "g04.wav": ("spkB", "male", "s2"),
    "g05.wav": ("spkC", "Female", "s3"), "g06.wav": ("spkC", "Female", "s3"),
    "g07.wav": ("spkD", "Male", "s3"), "g08.wav": ("spkE", "Female", "s4"),
    "g09.wav": ("spkF", "Male", "s5"), "g10.wav": ("spkF", "Male", "s5"),
}


def build_generic(root: Path) -> tuple[Path, Path, Path]:
    """(audio folder with sub-folders, votes.csv, meta.csv); the CSVs sit outside the audio folder."""
    audio = root / "raw"
    for i, path in enumerate(dict.fromkeys(v[0] for v in GENERIC_VOTES)):
        write_wav(audio / path, seed=i)
    votes = write_csv(root / "votes.csv", ["FileName", "annotator", "emotion"],
                      [(p.split("/")[1], a, e) for p, a, e in GENERIC_VOTES])
    meta = write_csv(root / "meta.csv", ["FileName", "SpkrID", "Gender", "Session"],
                     [(n, *m) for n, m in GENERIC_META.items()])
    return audio, votes, meta
