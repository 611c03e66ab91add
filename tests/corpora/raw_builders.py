"""Tiny corpora written in each release's own raw format (hand-made, 7-8 utterances each).

Every builder returns the release folder. The votes are chosen so that the expected soft
labels can be computed by hand; some rows repeat published EMO-SUPERB rows exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000


def write_wav(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    noise = 0.01 * rng.standard_normal(int(SAMPLE_RATE * seconds))
    soundfile.write(path, noise.astype("float32"), SAMPLE_RATE)


# --- IEMOCAP ---------------------------------------------------------------------------------

# dialog file -> list of (turn, evaluator lines); the summary line is generated.
IEMOCAP_DIALOGS = {
    "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": [
        # published row: 0.95 neutral; EmoAct 2.333333, EmoVal 2.666667, EmoDom 2.0
        ("Ses01F_impro01_F000", [
            "C-E2:\tNeutral;\t()", "C-E3:\tNeutral;\t()", "C-E4:\tNeutral;\t()", "C-F1:\tNeutral;\t(curious)",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)",
            "A-F1:\tval 3; act 2; dom  1;\t()",
        ]),
        # published row: the self-evaluation C-F1 counts -> 0.76125 neutral, 0.195 angry
        ("Ses01F_impro01_F001", [
            "C-E2:\tNeutral;\t()", "C-E3:\tNeutral;\t()", "C-E4:\tNeutral;\t()", "C-F1:\tNeutral; Anger;\t()",
            "A-E3:\tval 3; act 2; dom  2;\t()", "A-E4:\tval 2; act 3; dom  3;\t(guarded, tense, ready)",
            "A-F1:\tval 2; act 3; dom  2;\t()",
        ]),
        # 2 x frustrated + 2 x angry (+ one "Other" that gives no vote); dom missing on one line
        ("Ses01F_impro01_M000", [
            "C-E1:\tFrustration; Anger;\t()", "C-E2:\tFrustration;\t()", "C-E3:\tOther:sarcastic;\t()",
            "C-M1:\tAnger;\t()",
            "A-E1:\tval 2; act 4; dom  ;\t()", "A-E2:\tval 1; act 4; dom  4;\t()",
        ]),
    ],
    "Session1/dialog/EmoEvaluation/Ses01M_script01_1.txt": [
        ("Ses01M_script01_1_F000", [
            "C-E1:\tExcited;\t()", "C-E2:\tHappiness;\t()", "C-E3:\tExcited;\t()",
            "A-E1:\tval 4; act 4; dom  3;\t()", "A-E2:\tval 5; act 4; dom  3;\t()",
        ]),
    ],
    "Session2/dialog/EmoEvaluation/Ses02F_impro02.txt": [
        ("Ses02F_impro02_F000", [
            "C-E1:\tSadness;\t()", "C-E2:\tSadness;\t()", "C-E3:\tSadness;\t()",
            "A-E1:\tval 1; act 2; dom  2;\t()",
        ]),
        ("Ses02F_impro02_M000", [
            "C-E1:\tNeutral state;\t()", "C-E2:\tNeutral state;\t()", "C-E3:\tSurprise;\t()",
            "A-E1:\tval 3; act 3; dom  3;\t()",
        ]),
        ("Ses02F_impro02_M001", [
            "C-E1:\tFear;\t()", "C-E2:\tDisgust;\t()", "C-E3:\tAnger; Frustration;\t()",
            "A-E1:\tval 2; act 4; dom  2;\t()",
        ]),
    ],
    "Session2/dialog/EmoEvaluation/Ses02M_impro03.txt": [
        ("Ses02M_impro03_F000", [
            "C-E1:\tAnger;\t()", "C-E2:\tAnger;\t()", "C-E3:\tAnger;\t()", "C-F1:\tOther;\t()",
            "A-E1:\tval 1; act 5; dom  5;\t()",
        ]),
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
CREMA_DEMOGRAPHICS = {"1001": "Male", "1002": "Female", "1019": "Male", "1037": "Female",
                      "1058": "Female", "1067": "Male", "1090": "Male"}


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
