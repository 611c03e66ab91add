import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from s3prl_emo.data.audit import check_splits
from s3prl_emo.data.labels import soft_labels
from s3prl_emo.data.layout import read_config, read_labels
from s3prl_emo.data.synth import CLASSES, make_synthetic_corpus
from s3prl_emo.runtime.guards import OUTPUT_MARKER


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path):
    a = make_synthetic_corpus(tmp_path / "a", seed=3, utterances_per_speaker=3)
    b = make_synthetic_corpus(tmp_path / "b", seed=3, utterances_per_speaker=3)
    c = make_synthetic_corpus(tmp_path / "c", seed=4, utterances_per_speaker=3)
    assert digest(a) == digest(b) != digest(c)


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory):
    """``s3prl-emo synth --out DIR`` as a newcomer runs it (seed 0, full size): DIR/SYNTH, read only."""
    from s3prl_emo.cli import main

    out = tmp_path_factory.mktemp("default")
    assert main(["synth", "--out", str(out)]) == 0
    return out / "SYNTH"


def test_full_corpus_has_the_promised_properties(default_corpus):
    corpus = default_corpus
    config = read_config(corpus / "Primary")
    assert config.classes == CLASSES
    frame = read_labels(corpus / "Primary" / "labels_consensus_1.csv", config.classes)
    assert 200 <= len(frame) <= 500

    speakers = frame.groupby("SpkrID")["Gender"].first()
    sessions = {s[:5] for s in speakers.index}
    assert len(sessions) >= 5
    for session in sessions:  # dyads: one female and one male speaker each
        assert sorted(speakers[[s for s in speakers.index if s.startswith(session)]]) == ["Female", "Male"]

    infos = [sf.info(str(corpus / "Audios" / n)) for n in frame["FileName"]]
    durations = np.array([i.duration for i in infos])
    assert durations.min() < 1.0
    assert durations.max() > 10.0
    assert {i.samplerate for i in infos} == {16_000, 44_100}
    assert {i.channels for i in infos} == {1, 2}

    truth = json.loads((corpus / "acted_emotions.json").read_text())
    counts = pd.Series([t["acted"] for t in truth.values()]).value_counts()
    assert counts.min() < 0.1 * len(frame)  # one rare class
    assert all(3 <= len(t["votes"]) <= 10 for t in truth.values())
    # the label rule: soft labels are the annotators' votes through labels.soft_labels
    for _, row in frame.head(20).iterrows():
        expected = soft_labels(truth[row["FileName"]]["votes"], CLASSES)
        assert row[list(CLASSES)].to_numpy(dtype=float) == __import__("pytest").approx(expected, abs=1e-5)
    # annotators disagree sometimes, but mostly hear the acted emotion
    agree = np.mean([t["votes"].count(t["acted"]) / len(t["votes"]) for t in truth.values()])
    assert 0.5 < agree < 0.95

    report = check_splits(corpus / "Primary")
    assert report.violations == []
    assert sorted(report_folds(report)) == [1, 2, 3, 4, 5]


def report_folds(report):
    return {row.fold for row in report.rows}


def test_emotions_are_carried_by_acoustics_not_by_a_marker(tmp_path):
    """Acted angry speech is louder and brighter than sad speech of the same speakers."""
    corpus = make_synthetic_corpus(tmp_path, seed=1, utterances_per_speaker=12)
    truth = json.loads((corpus / "acted_emotions.json").read_text())

    def features(name):
        wav, rate = sf.read(corpus / "Audios" / name, always_2d=True)
        wav = wav.mean(axis=1)
        spectrum = np.abs(np.fft.rfft(wav)) ** 2
        freqs = np.fft.rfftfreq(len(wav), 1 / rate)
        return 10 * np.log10(np.mean(wav**2)), spectrum[freqs > 1000].sum() / spectrum.sum()

    by_emotion = {e: [features(n) for n, t in truth.items() if t["acted"] == e] for e in ("angry", "sad")}
    energy = {e: np.median([f[0] for f in v]) for e, v in by_emotion.items()}
    brightness = {e: np.median([f[1] for f in v]) for e, v in by_emotion.items()}
    assert energy["angry"] > energy["sad"] + 6
    assert brightness["angry"] > brightness["sad"]


def tree_digest(folder):
    """SHA-256 over (relative path, SHA-256 of the bytes) of every file, in path order; the
    output marker (which command wrote the folder) is not part of the corpus."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != OUTPUT_MARKER:
            h.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


# tree_digest of SYNTH/ and of SYNTH/Primary/ as written by the synthesiser before it learned
# --name and --classes (`s3prl-emo synth --out X`, and seed=7, utterances_per_speaker=6 as the
# tests' shared fixture): the built-in corpus, its audio, labels and splits must not change.
DEFAULT_CORPUS_DIGEST = "894b98dbda6dc3cb7e3f0ab7e1d02c97dc2f21bd317187a998ab5d2d676b846c"
DEFAULT_LABELS_DIGEST = "26064aa11e94bdf23c6f07c2ef19efb8775f1a96a2736f75631a181c6979c80a"
FIXTURE_CORPUS_DIGEST = "b7e9bab9df3c5fa3d7cb359dbb4da6f787083e2847fd8c368aad51d00bc00e5a"


# The same, now that every label file carries EmoAct, EmoVal and EmoDom and config.json its
# "dimensional" range: without them (``without_attributes``) the bytes are those above.
DEFAULT_LABELS_WITH_ATTRIBUTES_DIGEST = "cc312874432c74172ae2f870ec9d9a25b023711cf91a8a7776ee14fc9207e96c"


def without_attributes(corpus, out):
    """A copy of ``corpus`` with the attribute columns and config.json's "dimensional" entry taken out."""
    shutil.copytree(corpus, out)
    config = json.loads((out / "Primary" / "config.json").read_text())
    assert config.pop("dimensional") == {"min_score": 1, "max_score": 5}
    (out / "Primary" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for path in (out / "Primary").glob("labels_consensus_*.csv"):
        rows = [line.split(",") for line in path.read_text().splitlines()]
        keep = [i for i, name in enumerate(rows[0]) if name not in ("EmoAct", "EmoVal", "EmoDom")]
        assert len(keep) == len(rows[0]) - 3
        path.write_text("".join(",".join(row[i] for i in keep) + "\n" for row in rows))
    return out


def test_default_invocation_writes_the_same_bytes_as_before(default_corpus, tmp_path):
    assert tree_digest(default_corpus / "Primary") == DEFAULT_LABELS_WITH_ATTRIBUTES_DIGEST
    stripped = without_attributes(default_corpus, tmp_path / "stripped")
    assert tree_digest(stripped / "Primary") == DEFAULT_LABELS_DIGEST
    assert tree_digest(stripped) == DEFAULT_CORPUS_DIGEST


def test_the_shared_fixture_corpus_is_unchanged(synth_root, tmp_path):
    assert tree_digest(without_attributes(synth_root / "SYNTH", tmp_path / "stripped")) == FIXTURE_CORPUS_DIGEST


def test_attributes_follow_how_the_audio_was_voiced(synth_root):
    """Arousal with energy, tempo and pitch range; valence with the emotion; on the 1-5 range."""
    frame = read_labels(synth_root / "SYNTH" / "Primary" / "labels_consensus_1.csv", CLASSES)
    truth = json.loads((synth_root / "SYNTH" / "acted_emotions.json").read_text())
    frame["acted"] = [truth[name]["acted"] for name in frame["FileName"]]
    means = frame.groupby("acted")[["EmoAct", "EmoVal", "EmoDom"]].mean()
    assert means.loc["angry", "EmoAct"] > means.loc["neutral", "EmoAct"] > means.loc["sad", "EmoAct"]
    assert means.loc["happy", "EmoVal"] > means.loc["neutral", "EmoVal"] > means.loc["angry", "EmoVal"]
    assert means.loc["angry", "EmoDom"] > means.loc["sad", "EmoDom"]
    values = frame[["EmoAct", "EmoVal", "EmoDom"]].to_numpy()
    assert values.min() >= 1
    assert values.max() <= 5


def test_a_second_corpus_has_its_name_classes_and_other_speakers(synth_root, tmp_path):
    from s3prl_emo.cli import main

    classes = ("angry", "happy", "sad", "neutral", "surprise")
    argv = ["synth", "--out", str(tmp_path), "--name", "SYNTH_B", "--classes", ",".join(classes), "--seed", "7",
            "--utterances-per-speaker", "6"]  # fmt: skip
    assert main(argv) == 0
    corpus = tmp_path / "SYNTH_B"
    config = read_config(corpus / "Primary")
    assert config.classes == classes
    assert config.description.startswith("SYNTH_B corpus")
    frame = read_labels(corpus / "Primary" / "labels_consensus_1.csv", config.classes)
    base = read_labels(synth_root / "SYNTH" / "Primary" / "labels_consensus_1.csv", CLASSES)
    assert len(frame) == len(base) == 60
    assert set(frame["SpkrID"]).isdisjoint(base["SpkrID"])
    assert all(s.endswith("_SYNTH_B") for s in frame["SpkrID"])
    # same seed, but other voices: no file of the second corpus equals one of the first
    first = {hashlib.sha256(p.read_bytes()).digest() for p in (synth_root / "SYNTH" / "Audios").iterdir()}
    assert first.isdisjoint(hashlib.sha256(p.read_bytes()).digest() for p in (corpus / "Audios").iterdir())
    truth = json.loads((corpus / "acted_emotions.json").read_text())
    assert {t["acted"] for t in truth.values()} <= set(classes)
    assert "surprise" in {t["acted"] for t in truth.values()}
    assert check_splits(corpus / "Primary").violations == []


def test_unvoiced_classes_and_unsafe_names_are_refused_before_writing(tmp_path, caplog):
    from s3prl_emo.cli import main

    assert main(["synth", "--out", str(tmp_path), "--classes", "angry,joy"]) == 2
    assert "'joy'" in caplog.text
    assert "surprise" in caplog.text
    assert main(["synth", "--out", str(tmp_path), "--name", "../up"]) == 2
    assert main(["synth", "--out", str(tmp_path), "--classes", "angry,angry"]) == 2
    assert list(tmp_path.iterdir()) == []
