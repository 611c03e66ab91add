"""A deterministic synthetic emotional-speech corpus in the EMO-SUPERB layout.

It exists so that the whole recipe (labels, partitions, training, evaluation, inference)
can run on a fresh machine without a licensed corpus. Speech is a source-filter
synthesis of vowel-like syllables: each speaker has their own pitch, formant scale and
loudness; each emotion moves pitch level and range, energy, tempo, spectral tilt and
breathiness (the cues listeners and SSL models use), scaled by a per-utterance intensity.
Annotators confuse emotions the way people do (low-intensity angry is heard as neutral,
fear as sad, ...), and their votes become soft labels by ``s3prl_emo.data.labels``.
Each utterance is also rated for arousal, valence and dominance (``EmoAct``, ``EmoVal``,
``EmoDom`` on 1-5, ``attributes``), following the style and intensity it was voiced with.

A second corpus for cross-corpus tests and demos comes from the same synthesiser with
another ``name`` (its folder, its config.json, and other speakers: voices are drawn from a
stream seeded by the seed and the name, and speaker ids carry the name) and another
``classes`` (any emotions of ``STYLES``, e.g. with ``surprise`` in place of ``fear``).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..errors import InvalidInputError
from ..runtime.guards import staged_output
from ..runtime.paths import Pathlike
from .labels import soft_labels
from .layout import CorpusConfig, label_frame, labels_path, write_config, write_labels
from .partitions import assign_splits, fold_table

NAME = "SYNTH"
CLASSES = ("angry", "sad", "neutral", "happy", "fear")
# How often each emotion is acted: imbalanced on purpose, fear is the rare class.
PRIOR = np.array([0.20, 0.18, 0.34, 0.22, 0.06])
# Emotions a corpus may ask for beyond CLASSES, with how often each is acted (on PRIOR's scale;
# a corpus's priors are renormalised over its classes).
EXTRA_PRIOR = {"surprise": 0.10, "disgust": 0.08}
NOISE_FLOOR = 3e-3


@dataclass(frozen=True)
class Style:
    """Acoustic realisation of an emotion at full intensity, relative to neutral speech."""

    pitch: float  # f0 multiplier
    pitch_range: float  # relative f0 excursion within a syllable
    gain_db: float
    tempo: float  # syllables per second multiplier
    tilt_db_per_octave: float  # harmonic roll-off
    breath: float  # aspiration noise level
    jitter: float  # fast f0 wobble


STYLES = {
    "neutral": Style(1.00, 0.06, 0.0, 1.00, -12.0, 0.02, 0.00),
    "angry": Style(1.15, 0.18, 9.0, 1.20, -6.0, 0.03, 0.01),
    "happy": Style(1.30, 0.35, 4.0, 1.15, -9.0, 0.02, 0.00),
    "sad": Style(0.85, 0.03, -7.0, 0.70, -17.0, 0.06, 0.00),
    "fear": Style(1.45, 0.12, -3.0, 1.35, -11.0, 0.12, 0.06),
    "surprise": Style(1.40, 0.45, 5.0, 1.10, -8.0, 0.05, 0.02),
    "disgust": Style(0.92, 0.10, 2.0, 0.80, -10.0, 0.09, 0.04),
}

# Who hears what: row = acted emotion, columns = CONFUSION_COLUMNS ("other" is dropped later).
# A corpus uses the columns of its own classes plus "other".
CONFUSION_COLUMNS = (*CLASSES, "other", "surprise", "disgust")
CONFUSION = {
    "angry": [0.00, 0.02, 0.18, 0.12, 0.03, 0.05, 0.03, 0.06],
    "sad": [0.02, 0.00, 0.25, 0.01, 0.08, 0.04, 0.00, 0.02],
    "neutral": [0.05, 0.10, 0.00, 0.10, 0.02, 0.03, 0.02, 0.02],
    "happy": [0.06, 0.01, 0.20, 0.00, 0.02, 0.04, 0.10, 0.00],
    "fear": [0.06, 0.20, 0.10, 0.02, 0.00, 0.05, 0.10, 0.01],
    "surprise": [0.04, 0.01, 0.12, 0.18, 0.08, 0.04, 0.00, 0.01],
    "disgust": [0.15, 0.06, 0.15, 0.01, 0.02, 0.06, 0.01, 0.00],
}

VOWELS = {  # F1, F2, F3 in Hz for an adult male; females scale them up
    "a": (730, 1090, 2440),
    "i": (270, 2290, 3010),
    "u": (300, 870, 2240),
    "e": (530, 1840, 2480),
    "o": (570, 840, 2410),
}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: the voice parameters every utterance of that speaker shares.

    Attributes:
        speaker_id: The ``SpkrID`` written to the label tables.
        gender: ``"F"`` or ``"M"``.
        session: The session (1-based) the speaker records in; folds are built from sessions.
        f0: Fundamental frequency in Hz.
        formant_scale: Factor on the formant frequencies (vocal tract length).
        gain_db: Loudness offset in dB.
    """

    speaker_id: str
    gender: str
    session: int
    f0: float
    formant_scale: float
    gain_db: float


def _speakers(rng: np.random.Generator, n_sessions: int, tag: str = "") -> list[Speaker]:
    """One female and one male speaker per session; ``tag`` ends each id (another corpus's name)."""
    speakers = []
    for session in range(1, n_sessions + 1):
        for gender, f0, scale in (("F", 215.0, 1.17), ("M", 118.0, 1.0)):
            speakers.append(
                Speaker(
                    speaker_id=f"Ses{session:02d}{gender}{tag}",
                    gender={"F": "Female", "M": "Male"}[gender],
                    session=session,
                    f0=f0 * rng.uniform(0.88, 1.12),
                    formant_scale=scale * rng.uniform(0.95, 1.05),
                    gain_db=rng.uniform(-2.0, 2.0),
                )
            )
    return speakers


def synthesize(
    speaker: Speaker, emotion: str, intensity: float, duration: float, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One utterance: vowel-like syllables with pauses, about ``duration`` seconds long."""
    neutral, target = STYLES["neutral"], STYLES[emotion]

    def mix(field: str) -> float:
        return getattr(neutral, field) + intensity * (getattr(target, field) - getattr(neutral, field))

    f0_base = speaker.f0 * mix("pitch")
    syllable_s = 0.22 / mix("tempo")
    pieces = []
    total = 0.0
    while total < duration:
        length = syllable_s * rng.uniform(0.7, 1.3)
        pieces.append(_syllable(speaker, f0_base, mix, length, rate, rng))
        pause = rng.uniform(0.02, 0.12) / mix("tempo")
        pieces.append(np.zeros(int(pause * rate)))
        total += length + pause
    wav = np.concatenate(pieces)[: max(int(duration * rate), 1)]
    gain = 0.5 * 10 ** ((mix("gain_db") + speaker.gain_db - 12.0) / 20.0)  # peak <= 0.45
    wav = gain * wav / (np.abs(wav).max() + 1e-9)
    # A fixed room-noise floor: louder speech has a higher SNR, as in real recordings.
    return (wav + rng.normal(0.0, NOISE_FLOOR, len(wav))).astype(np.float32)


def _syllable(speaker: Speaker, f0_base: float, mix, length: float, rate: int, rng: np.random.Generator):
    n = max(int(length * rate), 32)
    t = np.arange(n) / rate
    excursion = mix("pitch_range") * rng.uniform(-1.0, 1.0)
    contour = f0_base * (1.0 + excursion * np.sin(np.pi * t / length)) * rng.uniform(0.95, 1.05)
    contour *= 1.0 + mix("jitter") * np.sin(2 * np.pi * 7.0 * t)
    phase = 2 * np.pi * np.cumsum(contour) / rate
    formants = np.array(VOWELS[rng.choice(list(VOWELS))]) * speaker.formant_scale
    n_harmonics = int(min(4000.0, rate / 2 - 100) // f0_base)
    harmonics = np.arange(1, n_harmonics + 1)[:, None]
    freqs = harmonics * contour[None, :]
    tilt = 10 ** (mix("tilt_db_per_octave") * np.log2(harmonics) / 20.0)
    envelope = sum(1.0 / (1.0 + ((freqs - f) / (60.0 + 0.1 * f)) ** 2) for f in formants)
    voiced = (tilt * envelope * np.sin(harmonics * phase[None, :])).sum(axis=0)
    voiced /= np.abs(voiced).max() + 1e-9
    noise = rng.normal(0.0, 1.0, n) * mix("breath") * 3.0
    window = np.sin(np.pi * np.arange(n) / n) ** 0.5
    return (voiced + noise) * window


def _votes(emotion: str, intensity: float, rng: np.random.Generator, classes: tuple[str, ...] = CLASSES) -> list[str]:
    names = [*classes, "other"]
    heard = dict(zip(CONFUSION_COLUMNS, CONFUSION[emotion], strict=True))
    confusion = np.array([heard[name] for name in names]) * (1.6 - intensity)
    confusion[classes.index(emotion)] = 0.0
    p_correct = max(1.0 - confusion.sum(), 0.2)
    probs = confusion.copy()
    probs[classes.index(emotion)] = p_correct
    probs /= probs.sum()
    n_annotators = int(rng.integers(3, 11))
    votes = list(rng.choice(names, size=n_annotators, p=probs))
    if all(v == "other" for v in votes):
        votes[0] = emotion
    return votes


# Emotional attributes on the 1-5 scale of the published IEMOCAP and MSP-IMPROV files (3: neutral).
ATTRIBUTE_RANGE = {"min_score": 1, "max_score": 5}
# Where each emotion sits on valence at full intensity (-1..1): a property of the emotion that the
# synthesiser voices through its style as a whole, not of one acoustic cue.
VALENCE = {"neutral": 0.0, "angry": -0.7, "happy": 0.8, "sad": -0.7, "fear": -0.6, "surprise": 0.4, "disgust": -0.6}
RATER_NOISE = 0.2  # standard deviation of the mean rating around the voiced value


def attributes(emotion: str, intensity: float, file_name: str, seed: int = 0) -> dict[str, float]:
    """EmoAct, EmoVal and EmoDom of one utterance, as raters would hear how it was synthesised.

    Arousal follows the style's energy, tempo and pitch range; dominance its energy and spectral
    tilt (a brighter, louder voice); valence the emotion. Each is the neutral value 3 moved by
    the emotion's style at the utterance's intensity (``synthesize`` mixes its parameters the
    same way), plus a small rater disagreement drawn from a stream seeded by the file name, so
    the audio's random stream is untouched. Rounded to 1/1000 and clipped to 1-5.

    Examples:
        >>> attributes("neutral", 0.7, "x.wav")["EmoAct"] == attributes("neutral", 0.7, "x.wav")["EmoAct"]
        True
        >>> attributes("angry", 1.0, "a.wav")["EmoAct"] > attributes("sad", 1.0, "a.wav")["EmoAct"]
        True
    """
    neutral, style = STYLES["neutral"], STYLES[emotion]
    loudness = (style.gain_db - neutral.gain_db) / 9.0
    arousal = (
        0.5 * loudness
        + 0.3 * (style.tempo - neutral.tempo) / 0.35
        + 0.2 * (style.pitch_range - neutral.pitch_range) / 0.39
    )
    dominance = 0.6 * loudness + 0.4 * (style.tilt_db_per_octave - neutral.tilt_db_per_octave) / 6.0
    noise = np.random.default_rng([seed, zlib.crc32(file_name.encode())]).normal(0.0, RATER_NOISE, 3)
    values = 3.0 + 2.0 * intensity * np.array([arousal, VALENCE[emotion], dominance]) + noise
    clipped = np.clip(values, ATTRIBUTE_RANGE["min_score"], ATTRIBUTE_RANGE["max_score"])
    return {name: round(float(v), 3) for name, v in zip(("EmoAct", "EmoVal", "EmoDom"), clipped, strict=True)}


def _duration(rng: np.random.Generator) -> float:
    """Log-normal around 3 s, clipped to [0.4, 13] s: some under 1 s, some over 10 s."""
    return float(np.clip(np.exp(rng.normal(np.log(3.0), 0.75)), 0.4, 13.0))


def check_corpus_spec(name: str, classes: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The corpus name and class tuple of a synthetic corpus, or an error naming the bad value.

    A name becomes a folder and part of every file name: letters, digits, ``_`` and ``-``,
    starting with a letter or digit. Classes are emotions the synthesiser can voice
    (``STYLES``), lower case, at least two, each once.

    Examples:
        >>> check_corpus_spec("SYNTH_B", ["angry", "Happy", " sad ", "neutral", "surprise"])
        ('SYNTH_B', ('angry', 'happy', 'sad', 'neutral', 'surprise'))
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
        raise InvalidInputError(
            f"synth --name {name!r}: expected letters, digits, '_' or '-' (at most 64, starting with a letter or digit)"
        )
    cleaned = tuple(str(c).strip().lower() for c in classes)
    unknown = [c for c in cleaned if c not in STYLES]
    if unknown:
        raise InvalidInputError(f"synth --classes: no voicing for {unknown}; expected some of {sorted(STYLES)}")
    if len(cleaned) < 2 or len(set(cleaned)) != len(cleaned):
        raise InvalidInputError(f"synth --classes {list(cleaned)}: expected at least 2 distinct emotions")
    return name, cleaned


def make_synthetic_corpus(
    out_dir: Pathlike,
    *,
    seed: int = 0,
    n_sessions: int = 5,
    utterances_per_speaker: int = 30,
    name: str = NAME,
    classes: Sequence[str] = CLASSES,
) -> Path:
    """Write ``out_dir/<name>`` (Audios, Primary/config.json, labels_consensus_1..5.csv).

    Deterministic for a seed. Roughly one file in six is written at 44.1 kHz, one in
    eight in stereo. The default name and classes give the built-in corpus, unchanged;
    another ``name`` gives other speakers (ids ending in ``_<name>``, voices drawn from a
    stream seeded by ``seed`` and the name) and ``classes`` the emotions acted and voted
    for, in column order. Returns the corpus folder.

    ``out_dir/<name>`` is staged and gets the marker of ``s3prl-emo synth``; an existing one is
    replaced only if it is such an earlier output or empty (``guards.staged_output``), so a
    folder of other content is never removed.

    Raises:
        InvalidInputError: a count or the seed is not a whole number in range, a name or class
            the synthesiser cannot use, or ``out_dir/<name>`` cannot be this command's output.
    """
    for flag, value, low in (
        ("--seed", seed, 0),
        ("n_sessions", n_sessions, 1),
        ("utterances_per_speaker", utterances_per_speaker, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InvalidInputError(f"{flag} {value!r}: expected a whole number >= {low}")
    name, classes = check_corpus_spec(name, classes)
    built_in = name == NAME
    rng = np.random.default_rng(seed if built_in else [seed, zlib.crc32(name.encode())])
    speakers = _speakers(rng, n_sessions, tag="" if built_in else f"_{name}")
    acted = dict(zip(CLASSES, PRIOR, strict=True)) | EXTRA_PRIOR
    prior = PRIOR if classes == CLASSES else np.array([acted[c] for c in classes]) / sum(acted[c] for c in classes)
    rows = []
    final = Path(out_dir) / name
    with staged_output(final, command="synth") as stage:
        audio_dir = stage / "Audios"
        audio_dir.mkdir()
        jobs = [(s, i) for s in speakers for i in range(utterances_per_speaker)]
        for speaker, index in tqdm(jobs, desc="synthesise"):
            emotion = classes[rng.choice(len(classes), p=prior)]
            intensity = float(rng.uniform(0.4, 1.0))
            rate = 44_100 if rng.random() < 1 / 6 else 16_000
            wav = synthesize(speaker, emotion, intensity, _duration(rng), rate, rng)
            if rng.random() < 1 / 8:
                wav = np.stack([wav, 0.8 * wav], axis=1)
            file_name = f"{speaker.speaker_id}_u{index:03d}.wav"
            sf.write(audio_dir / file_name, wav, rate, subtype="PCM_16")
            rows.append((file_name, speaker, emotion, _votes(emotion, intensity, rng, classes), intensity))
        names = [r[0] for r in rows]
        labels = np.stack([soft_labels(r[3], classes) for r in rows])
        label_dir = stage / "Primary"
        label_dir.mkdir()
        description = f"{name} corpus - {len(classes)} classes, synthetic"
        write_config(CorpusConfig(classes, description=description, dimensional=dict(ATTRIBUTE_RANGE)), label_dir)
        rated = [attributes(r[2], r[4], r[0], seed) for r in rows]
        dimensional = {column: [a[column] for a in rated] for column in ("EmoAct", "EmoVal", "EmoDom")}
        for fold in fold_table("synth"):
            frame = label_frame(
                names,
                labels,
                classes,
                assign_splits("synth", fold, names),
                speakers=[r[1].speaker_id for r in rows],
                genders=[r[1].gender for r in rows],
                dimensional=dimensional,
            )
            write_labels(frame, labels_path(label_dir, fold))
        truth = {r[0]: {"acted": r[2], "votes": [str(v) for v in r[3]]} for r in rows}
        (stage / "acted_emotions.json").write_text(json.dumps(truth, indent=1) + "\n")
    return final
