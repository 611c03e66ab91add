"""Tiny corpora written in each release's own raw format (hand-made, 7-11 utterances each).

Every ``build_<corpus>`` writes short generated wavs and the annotation files of the release
into a folder and returns it (generic: the audio folder and its two CSV files). The votes are
chosen so that the expected soft labels can be computed by hand (``corpus_checks``); some rows
repeat published EMO-SUPERB rows exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16_000


def write_wav(path: Path, seconds: float = 0.1, seed: int | None = None) -> Path:
    """0.1 s of quiet noise (seeded by ``seed``, else by the file name's length)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name) if seed is None else seed)
    noise = 0.01 * rng.standard_normal(int(SAMPLE_RATE * seconds))
    soundfile.write(path, noise.astype("float32"), SAMPLE_RATE)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- IEMOCAP ---------------------------------------------------------------------------------

# dialog file -> list of (turn, evaluator lines); the summary line is generated.
IEMOCAP_DIALOGS = {
    "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": [
        # published row: 0.95 neutral; EmoAct 2.333333, EmoVal 2.666667, EmoDom 2.0
        (
            "Ses01F_impro01_F000",
            [
                "C-E2:\tNeutral;\t()",
                "C-E3:\tNeutral;\t()",
                "C-E4:\tNeutral;\t()",
                "C-F1:\tNeutral;\t(curious)",
                "A-E3:\tval 3; act 2; dom  2;\t()",
                "A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)",
                "A-F1:\tval 3; act 2; dom  1;\t()",
            ],
        ),
        # published row: the self-evaluation C-F1 counts -> 0.76125 neutral, 0.195 angry
        (
            "Ses01F_impro01_F001",
            [
                "C-E2:\tNeutral;\t()",
                "C-E3:\tNeutral;\t()",
                "C-E4:\tNeutral;\t()",
                "C-F1:\tNeutral; Anger;\t()",
                "A-E3:\tval 3; act 2; dom  2;\t()",
                "A-E4:\tval 2; act 3; dom  3;\t(guarded, tense, ready)",
                "A-F1:\tval 2; act 3; dom  2;\t()",
            ],
        ),
        # 2 x frustrated + 2 x angry (+ one "Other" that gives no vote); dom missing on one line
        (
            "Ses01F_impro01_M000",
            [
                "C-E1:\tFrustration; Anger;\t()",
                "C-E2:\tFrustration;\t()",
                "C-E3:\tOther:sarcastic;\t()",
                "C-M1:\tAnger;\t()",
                "A-E1:\tval 2; act 4; dom  ;\t()",
                "A-E2:\tval 1; act 4; dom  4;\t()",
            ],
        ),
    ],
    "Session1/dialog/EmoEvaluation/Ses01M_script01_1.txt": [
        (
            "Ses01M_script01_1_F000",
            [
                "C-E1:\tExcited;\t()",
                "C-E2:\tHappiness;\t()",
                "C-E3:\tExcited;\t()",
                "A-E1:\tval 4; act 4; dom  3;\t()",
                "A-E2:\tval 5; act 4; dom  3;\t()",
            ],
        ),
    ],
    "Session2/dialog/EmoEvaluation/Ses02F_impro02.txt": [
        (
            "Ses02F_impro02_F000",
            [
                "C-E1:\tSadness;\t()",
                "C-E2:\tSadness;\t()",
                "C-E3:\tSadness;\t()",
                "A-E1:\tval 1; act 2; dom  2;\t()",
            ],
        ),
        (
            "Ses02F_impro02_M000",
            [
                "C-E1:\tNeutral state;\t()",
                "C-E2:\tNeutral state;\t()",
                "C-E3:\tSurprise;\t()",
                "A-E1:\tval 3; act 3; dom  3;\t()",
            ],
        ),
        (
            "Ses02F_impro02_M001",
            [
                "C-E1:\tFear;\t()",
                "C-E2:\tDisgust;\t()",
                "C-E3:\tAnger; Frustration;\t()",
                "A-E1:\tval 2; act 4; dom  2;\t()",
            ],
        ),
    ],
    "Session2/dialog/EmoEvaluation/Ses02M_impro03.txt": [
        (
            "Ses02M_impro03_F000",
            [
                "C-E1:\tAnger;\t()",
                "C-E2:\tAnger;\t()",
                "C-E3:\tAnger;\t()",
                "C-F1:\tOther;\t()",
                "A-E1:\tval 1; act 5; dom  5;\t()",
            ],
        ),
    ],
}


def iemocap_block(turn: str, lines: list[str], start: float = 1.0) -> str:
    summary = f"[{start:.4f} - {start + 2:.4f}]\t{turn}\txxx\t[2.5000, 2.5000, 2.5000]"
    return "\n".join([summary, *lines]) + "\n"


def build_iemocap(root: Path, dialogs: dict[str, list[tuple[str, list[str]]]] | None = None) -> Path:
    corpus = root / "IEMOCAP_full_release"
    for rel, blocks in (dialogs or IEMOCAP_DIALOGS).items():
        path = corpus / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        text += "\n".join(iemocap_block(turn, lines, 2.0 * i) for i, (turn, lines) in enumerate(blocks))
        path.write_text(text)
        session = rel.split("/")[0]
        for turn, _ in blocks:
            write_wav(corpus / session / "sentences" / "wav" / turn.rsplit("_", 1)[0] / f"{turn}.wav")
    return corpus


# --- CREMA-D ---------------------------------------------------------------------------------

CREMA_HEADER = (
    '"","localid","pos","ans","ttr","queryType","numTries","clipNum","questNum","subType",'
    '"clipName","sessionNums","respEmo","respLevel","dispEmo","dispVal","dispLevel"'
)
# clip -> (voice-only answers, answers of the other modalities that must be ignored)
CREMA_VOTES = {
    "1037_IWL_HAP_XX": ("AAAAHHHHHH", "SSSN"),  # published row: angry 0.386, happy 0.574
    "1037_ITS_FEA_XX": ("FFN", ""),
    "1001_DFA_ANG_XX": ("AAAD", "H"),
    "1002_IEO_SAD_LO": ("SSNN", ""),
    "1058_ITS_FEA_XX": ("FFFFN", "A"),  # published row: fear 0.762, neutral 0.198
    "1067_WSI_HAP_XX": ("AASDFFFNNN", ""),  # published row: 0.198,0.104,0.104,0.292,0.292,0.01
    "1019_TIE_NEU_XX": ("NNNNN", ""),
}
CREMA_DEMOGRAPHICS = {
    "1001": "Male",
    "1002": "Female",
    "1019": "Male",
    "1037": "Female",
    "1058": "Female",
    "1067": "Male",
    "1090": "Male",
}


def crema_rows(votes: dict[str, tuple[str, str]] | None = None) -> list[str]:
    rows = []
    for clip_num, (clip, (voice, others)) in enumerate((votes or CREMA_VOTES).items(), start=1):
        displayed = clip.split("_")[2][0]
        half = len(others) // 2 + 1
        for query_type, answers in ((1, voice), (2, others[:half]), (3, others[half:])):
            for answer in answers:
                n = len(rows) + 1
                rows.append(
                    f'"{n}","r{n % 5}",{n},"{answer}_50",1200,{query_type},0,{clip_num},{n % 30},4,'
                    f'"{clip}",{1000 + n},"{answer}",50,"{displayed}","XX","50"'
                )
    return rows


def build_crema_d(root: Path, rows: list[str] | None = None) -> Path:
    corpus = root / "CREMA-D"
    corpus.mkdir(parents=True)
    (corpus / "finishedResponses.csv").write_text("\n".join([CREMA_HEADER, *(rows or crema_rows())]) + "\n")
    demographics = ['"ActorID","Age","Sex","Race","Ethnicity"'] + [
        f'{actor},30,"{sex}","Caucasian","Not Hispanic"' for actor, sex in CREMA_DEMOGRAPHICS.items()
    ]
    (corpus / "VideoDemographics.csv").write_text("\n".join(demographics) + "\n")
    for clip in CREMA_VOTES:
        write_wav(corpus / "AudioWAV" / f"{clip}.wav")
    return corpus


# --- MSP-IMPROV ------------------------------------------------------------------------------

# clip id (after "UTD-IMPROV-") -> rater lines "<rater>; <primary>; <secondary>; A:..; V:..; D:..; N:..;"
IMPROV_CLIPS = {
    "S01A-F01-R-FF01": [  # hand-computed case, see the expected files
        "mspimprov-p001; Angry; Frustrated,Disgusted; A:3.000000; V:2.000000; D:3.000000; N:4.000000;",
        "mspimprov-p002; Angry; Frustrated; A:4.000000; V:1.000000; D:4.000000; N:3.000000;",
        "mspimprov-p003; Neutral; ; A:2.000000; V:3.000000; D:NaN; N:3.000000;",
    ],
    "S01A-F03-R-FF01": [  # published row: Primary 6 x angry + sad; Secondary adds 10 secondary votes
        "mspimprov-p011; Angry; Frustrated,Disgusted; A:3.000000; V:2.000000; D:5.000000; N:4.000000;",
        "mspimprov-p012; Angry; Frustrated,Surprised; A:3.000000; V:2.000000; D:4.000000; N:4.000000;",
        "mspimprov-p013; Angry; Frustrated,Disgusted; A:3.000000; V:1.000000; D:4.000000; N:4.000000;",
        "mspimprov-p014; Angry; Frustrated; A:3.000000; V:1.000000; D:4.000000; N:4.000000;",
        "mspimprov-p015; Angry; Frustrated,Excited; A:3.000000; V:2.000000; D:5.000000; N:4.000000;",
        "mspimprov-p016; Angry; Surprised; A:3.000000; V:1.000000; D:4.000000; N:4.000000;",
        "mspimprov-p017; Sad; ; A:3.000000; V:1.000000; D:4.000000; N:4.000000;",
    ],
    "S02H-M01-P-FM01": [
        "mspimprov-p021; Happy; Excited; A:4.000000; V:4.000000; D:3.000000; N:4.000000;",
        "mspimprov-p022; Happy; ; A:4.000000; V:5.000000; D:3.000000; N:4.000000;",
        "mspimprov-p023; Happy; Surprised; A:5.000000; V:4.000000; D:3.000000; N:4.000000;",
    ],
    "S03S-M02-S-MF02": [  # every primary emotion is "Other": excluded from both conditions
        "mspimprov-p031; Other; Depressed; A:2.000000; V:2.000000; D:2.000000; N:4.000000;",
        "mspimprov-p032; Other; ; A:2.000000; V:2.000000; D:2.000000; N:4.000000;",
    ],
    "S04N-F02-T-MF03": [  # the repeated rater line is dropped
        "mspimprov-p041; Neutral; ; A:3.000000; V:3.000000; D:3.000000; N:4.000000;",
        "mspimprov-p042; Neutral; ; A:3.000000; V:3.000000; D:3.000000; N:4.000000;",
        "mspimprov-p042; Neutral; ; A:3.000000; V:3.000000; D:3.000000; N:4.000000;",
        "mspimprov-p043; Sad; Depressed; A:2.000000; V:2.000000; D:2.000000; N:4.000000;",
    ],
    "S05A-M03-P-FM04": [
        "mspimprov-p051; Angry; Other-annoyed; A:4.000000; V:2.000000; D:4.000000; N:4.000000;",
        "mspimprov-p052; Sad; Depressed,Fearful; A:2.000000; V:2.000000; D:2.000000; N:4.000000;",
    ],
    "S06H-F01-S-FF02": [
        "mspimprov-p061; Happy; ; A:4.000000; V:4.000000; D:4.000000; N:4.000000;",
        "mspimprov-p062; Happy; ; A:4.000000; V:4.000000; D:4.000000; N:4.000000;",
    ],
    "S06H-M03-S-FM05": [
        "mspimprov-p071; Neutral; ; A:3.000000; V:3.000000; D:3.000000; N:4.000000;",
        "mspimprov-p072; Happy; ; A:3.000000; V:4.000000; D:3.000000; N:4.000000;",
    ],
}


def improv_text(clips: dict[str, list[str]] | None = None) -> str:
    header = "UTD-IMPROV-{}.avi; X; A:3.000000; V:3.000000; D:3.000000 ; N:4.000000;"
    clips = IMPROV_CLIPS if clips is None else clips
    blocks = ["\n".join([header.format(clip), *lines]) + "\n" for clip, lines in clips.items()]
    return "\n".join(blocks)


def build_msp_improv(root: Path, text: str | None = None) -> Path:
    corpus = root / "MSP-IMPROV"
    corpus.mkdir(parents=True)
    (corpus / "Evalution.txt").write_text(improv_text() if text is None else text)
    for clip in IMPROV_CLIPS:
        sentence, speaker, kind = clip.split("-")[:3]
        folder = corpus / "Audio" / f"session{int(speaker[1:])}" / sentence / kind
        write_wav(folder / f"MSP-IMPROV-{clip}.wav")
    return corpus


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
        ("WORKER01", "Contempt", "", 4, 3, 5),
        ("WORKER02", "Contempt", "", 4, 3, 5),
        ("WORKER03", "Disgust", "", 4, 3, 5),
        ("WORKER04", "Disgust", "", 4, 3, 5),
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


def build_podcast(
    root: Path,
    *,
    shape: str = "columns",
    prefix: str = "MSP-PODCAST",
    sets: dict[str, str] | None = None,
    codes: bool = True,
) -> Path:
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
    annotations = {
        n: [(w, p if codes or p != "A" else "Angry", *rest) for (w, p, *rest) in items]
        for n, items in PODCAST_ANNOTATIONS.items()
    }
    if shape == "columns":
        rows = [[rename(n), w, p, s, a, v, d] for n, items in annotations.items() for (w, p, s, a, v, d) in items]
        write_csv(
            root / "Labels" / "labels_detailed.csv",
            ["FileName", "WorkerID", "EmoClass_Major", "EmoClass_Second", "EmoAct", "EmoVal", "EmoDom"],
            rows,
        )
        write_csv(
            root / "Labels" / "labels_consensus.csv",
            ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"],
            _consensus_rows(meta),
        )
    elif shape == "detail":
        rows = [
            [rename(n), f"{w}; {p}; {s}; A:{a}.0; V:{v}.0; D:{d}.0;"]
            for n, items in annotations.items()
            for (w, p, s, a, v, d) in items
        ]
        write_csv(root / "Labels" / "labels_detailed.csv", ["FileName", "EmoDetail"], rows)
        lines = ["Partitions of the corpus", ""] + [f"{s}; {n}" for n, (s, _, _) in meta.items()]
        (root / "Partitions.txt").write_text("\n".join(lines) + "\n")
        speakers = ["Speaker information", "Speaker_101; Female", "Speaker_202; Male", "Speaker_303; Female"]
        speakers += [f"{n}; {spk}" for n, (_, spk, _) in meta.items()]
        (root / "Speaker_ids.txt").write_text("\n".join(speakers) + "\n")
    else:
        raise ValueError(shape)
    return root


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
    ("s1/g01.wav", "r1", "happy"),
    ("s1/g01.wav", "r2", "happy;neutral"),
    ("s1/g01.wav", "r3", "happy"),
    ("s1/g02.wav", "r1", "angry"),
    ("s1/g02.wav", "r2", "angry"),
    ("s1/g02.wav", "r3", "other"),
    ("s2/g03.wav", "r1", "other"),
    ("s2/g03.wav", "r2", "other"),
    ("s2/g04.wav", "r1", "sad"),
    ("s2/g04.wav", "r2", "Sad"),
    ("s3/g05.wav", "r1", "neutral"),
    ("s3/g06.wav", "r1", "neutral"),
    ("s3/g07.wav", "r1", "happy"),
    ("s4/g08.wav", "r1", "sad"),
    ("s5/g09.wav", "r1", "angry"),
    ("s5/g10.wav", "r2", "angry"),
]
GENERIC_META = {  # FileName -> (SpkrID, Gender, Session)
    "g01.wav": ("spkA", "Female", "s1"),
    "g02.wav": ("spkA", "Female", "s1"),
    "g03.wav": ("spkB", "Male", "s2"),
    "g04.wav": ("spkB", "male", "s2"),
    "g05.wav": ("spkC", "Female", "s3"),
    "g06.wav": ("spkC", "Female", "s3"),
    "g07.wav": ("spkD", "Male", "s3"),
    "g08.wav": ("spkE", "Female", "s4"),
    "g09.wav": ("spkF", "Male", "s5"),
    "g10.wav": ("spkF", "Male", "s5"),
}


def build_generic(root: Path) -> tuple[Path, Path, Path]:
    """(audio folder with sub-folders, votes.csv, meta.csv); the CSVs sit outside the audio folder."""
    audio = root / "raw"
    for i, path in enumerate(dict.fromkeys(v[0] for v in GENERIC_VOTES)):
        write_wav(audio / path, seed=i)
    votes = write_csv(
        root / "votes.csv", ["FileName", "annotator", "emotion"], [(p.split("/")[1], a, e) for p, a, e in GENERIC_VOTES]
    )
    meta = write_csv(
        root / "meta.csv", ["FileName", "SpkrID", "Gender", "Session"], [(n, *m) for n, m in GENERIC_META.items()]
    )
    return audio, votes, meta
