"""A deterministic synthetic emotional-speech corpus in the EMO-SUPERB layout.

It exists so that the whole recipe (labels, partitions, training, evaluation, inference)
can run on a fresh machine without a licensed corpus. Speech is a source-filter
synthesis of vowel-like syllables: each speaker has their own pitch, formant scale and
loudness; each emotion moves pitch level and range, energy, tempo, spectral tilt and
breathiness (the cues listeners and SSL models use), scaled by a per-utterance intensity.
Annotators confuse emotions the way people do (low-intensity angry is heard as neutral,
fear as sad, ...), and their votes become soft labels by ``s3prl_emo.data.labels``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..runtime.atomic import staged_dir
from .labels import soft_labels
from .layout import CorpusConfig, Pathlike, label_frame, labels_path, write_config, write_labels
from .partitions import assign_splits, fold_table

NAME = "SYNTH"
CLASSES = ("angry", "sad", "neutral", "happy", "fear")
# How often each emotion is acted: imbalanced on purpose, fear is the rare class.
PRIOR = np.array([0.20, 0.18, 0.34, 0.22, 0.06])
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
}

# Who hears what: row = acted emotion, columns = CLASSES, plus "other" (dropped later).
CONFUSION = {
    "angry": [0.00, 0.02, 0.18, 0.12, 0.03, 0.05],
    "sad": [0.02, 0.00, 0.25, 0.01, 0.08, 0.04],
    "neutral": [0.05, 0.10, 0.00, 0.10, 0.02, 0.03],
    "happy": [0.06, 0.01, 0.20, 0.00, 0.02, 0.04],
    "fear": [0.06, 0.20, 0.10, 0.02, 0.00, 0.05],
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
    speaker_id: str
    gender: str
    session: int
    f0: float
    formant_scale: float
    gain_db: float


def _speakers(rng: np.random.Generator, n_sessions: int) -> list[Speaker]:
    speakers = []
    for session in range(1, n_sessions + 1):
        for gender, f0, scale in (("F", 215.0, 1.17), ("M", 118.0, 1.0)):
            speakers.append(
                Speaker(
                    speaker_id=f"Ses{session:02d}{gender}",
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


def _votes(emotion: str, intensity: float, rng: np.random.Generator) -> list[str]:
    names = [*CLASSES, "other"]
    confusion = np.array(CONFUSION[emotion]) * (1.6 - intensity)
    confusion[CLASSES.index(emotion)] = 0.0
    p_correct = max(1.0 - confusion.sum(), 0.2)
    probs = confusion.copy()
    probs[CLASSES.index(emotion)] = p_correct
    probs /= probs.sum()
    n_annotators = int(rng.integers(3, 11))
    votes = list(rng.choice(names, size=n_annotators, p=probs))
    if all(v == "other" for v in votes):
        votes[0] = emotion
    return votes


def _duration(rng: np.random.Generator) -> float:
    """Log-normal around 3 s, clipped to [0.4, 13] s: some under 1 s, some over 10 s."""
    return float(np.clip(np.exp(rng.normal(np.log(3.0), 0.75)), 0.4, 13.0))


def make_synthetic_corpus(
    out_dir: Pathlike, *, seed: int = 0, n_sessions: int = 5, utterances_per_speaker: int = 30
) -> Path:
    """Write ``out_dir/SYNTH`` (Audios, Primary/config.json, labels_consensus_1..5.csv).

    Deterministic for a seed. Roughly one file in six is written at 44.1 kHz, one in
    eight in stereo. Returns the corpus folder.
    """
    rng = np.random.default_rng(seed)
    speakers = _speakers(rng, n_sessions)
    rows = []
    final = Path(out_dir) / NAME
    with staged_dir(final, overwrite=True) as stage:
        audio_dir = stage / "Audios"
        audio_dir.mkdir()
        jobs = [(s, i) for s in speakers for i in range(utterances_per_speaker)]
        for speaker, index in tqdm(jobs, desc="synthesise"):
            emotion = CLASSES[rng.choice(len(CLASSES), p=PRIOR)]
            intensity = float(rng.uniform(0.4, 1.0))
            rate = 44_100 if rng.random() < 1 / 6 else 16_000
            wav = synthesize(speaker, emotion, intensity, _duration(rng), rate, rng)
            if rng.random() < 1 / 8:
                wav = np.stack([wav, 0.8 * wav], axis=1)
            name = f"{speaker.speaker_id}_u{index:03d}.wav"
            sf.write(audio_dir / name, wav, rate, subtype="PCM_16")
            rows.append((name, speaker, emotion, _votes(emotion, intensity, rng)))
        names = [r[0] for r in rows]
        labels = np.stack([soft_labels(r[3], CLASSES) for r in rows])
        label_dir = stage / "Primary"
        label_dir.mkdir()
        write_config(CorpusConfig(CLASSES, description=f"{NAME} corpus - {len(CLASSES)} classes, synthetic"), label_dir)
        for fold in fold_table("synth"):
            frame = label_frame(
                names,
                labels,
                CLASSES,
                assign_splits("synth", fold, names),
                speakers=[r[1].speaker_id for r in rows],
                genders=[r[1].gender for r in rows],
            )
            write_labels(frame, labels_path(label_dir, fold))
        truth = {r[0]: {"acted": r[2], "votes": [str(v) for v in r[3]]} for r in rows}
        (stage / "acted_emotions.json").write_text(json.dumps(truth, indent=1) + "\n")
    return final
