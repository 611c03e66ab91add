"""Number for number with EMO-SUPERB's released code: audio, statistics, binarisation, weights."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl_emo.data.audio import load_audio, to_mono_16k
from s3prl_emo.data.fold import AudioStore, Normalizer, normalisation_stats
from s3prl_emo.downstream.expert import _label_lines
from s3prl_emo.loss import class_balanced_weights
from s3prl_emo.metrics import binarize, multilabel_macro_f1

librosa = pytest.importorskip("librosa", reason="librosa is the reference EMO-SUPERB reads audio with")

CROP = 10 * 16_000


def write_noise(path, seconds, rate, channels, seed=0, subtype="PCM_16"):
    rng = np.random.default_rng(seed)
    wav = (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    sf.write(path, wav, rate, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("rate", "channels", "seconds"),
    [
        (16_000, 1, 3.0),
        (16_000, 2, 12.0),
        (8_000, 1, 2.5),
        (22_050, 2, 11.3),
        (44_100, 2, 13.0),
        (48_000, 4, 0.7),
        (44_100, 1, 0.05),
        (11_025, 3, 10.0),
    ],
)
def test_audio_is_read_as_librosa_load_reads_it_bit_for_bit(tmp_path, rate, channels, seconds):
    path = write_noise(tmp_path / "x.wav", seconds, rate, channels, seed=rate + channels)
    reference = librosa.load(path, sr=16_000)[0]  # what EMO-SUPERB's extract_wav does
    assert np.array_equal(load_audio(path, 10), reference[:CROP])
    assert np.array_equal(load_audio(path), reference)
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    assert np.array_equal(to_mono_16k(data, rate), reference)


def test_float_files_and_odd_lengths_match_too(tmp_path):
    path = write_noise(tmp_path / "f.wav", 1.2345, 44_100, 2, subtype="FLOAT")
    assert np.array_equal(load_audio(path), librosa.load(path, sr=16_000)[0])


def test_statistics_use_the_uncropped_audio_and_the_normaliser_adds_1e6(tmp_path):
    audio = tmp_path / "Audios"
    audio.mkdir()
    names = []
    for i, (seconds, rate) in enumerate([(12.5, 44_100), (3.0, 16_000), (10.8, 16_000)]):
        name = f"u{i}.wav"
        write_noise(audio / name, seconds, rate, 1 + i % 2, seed=i)
        names.append(name)
    full = np.concatenate([librosa.load(audio / n, sr=16_000)[0] for n in names]).astype(np.float64)
    store = AudioStore(audio, 10.0, pre_load=True, cache_dir=None)
    store.load_all(names, "train")
    mean, std = normalisation_stats(store, names, tmp_path / "stats.json")
    assert mean == pytest.approx(full.mean(), rel=1e-9, abs=1e-12)
    assert std == pytest.approx(full.std(), rel=1e-9)
    assert normalisation_stats(store, names, tmp_path / "stats.json") == (mean, std)  # from the cache
    wav = store.get(names[0])
    assert len(wav) == CROP
    np.testing.assert_allclose(Normalizer(mean, std)(wav), (wav - mean) / (std + 1e-6), rtol=1e-6)


def test_a_value_equal_to_one_over_k_is_not_above_it():
    # MSP-IMPROV Secondary-like rows: K = 10, labels of exactly 0.1 (float32 0.1 > 0.1 in float64)
    improv = np.array(
        [[0.1] * 10, [0.55] + [0.05] * 9, [0.1, 0.1, 0.3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]], dtype=np.float32
    )
    assert float(improv[0, 0]) > 0.1  # the trap: float64 says it exceeds 1/K
    assert binarize(improv).astype(int).tolist() == [[0] * 10, [1] + [0] * 9, [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]
    # the built-in corpus: K = 5, labels of exactly 0.2
    synth = np.array([[0.2, 0.2, 0.4, 0.1, 0.1], [0.2, 0.6, 0.1, 0.05, 0.05]], dtype=np.float32)
    assert binarize(synth).astype(int).tolist() == [[0, 0, 1, 0, 0], [0, 1, 0, 0, 0]]
    assert binarize(synth.astype(np.float64)).tolist() == binarize(synth).tolist()  # whatever the dtype


def test_torch_agrees_with_the_rule():
    """EMO-SUPERB: torch.where(tensor > 1/K): the python float is cast to the tensor's float32."""
    rng = np.random.default_rng(0)
    values = rng.choice([0.1, 0.2, 0.05, 0.3, 0.25], size=(200, 5)).astype(np.float32)
    values[::7] = 0.2
    torch_rule = (torch.from_numpy(values) > 1 / 5).numpy()
    assert np.array_equal(binarize(values), torch_rule)


def emo_superb_weights(labels: np.ndarray) -> np.ndarray:
    """EMO-SUPERB's expert.py weight computation, restated: float32 torch throughout."""
    labels_pt = torch.tensor(labels, dtype=torch.float32)
    k = labels.shape[1]
    samples_per_cls = torch.where(labels_pt > 1 / k, 1.0, 0.0).sum(dim=0)
    beta = (labels.shape[0] - 1) / labels.shape[0]
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, samples_per_cls))
    return (weights / torch.sum(weights) * k).numpy()


def test_cbce_weights_equal_emo_superb_with_labels_at_one_over_k():
    rng = np.random.default_rng(3)
    labels = rng.dirichlet(np.full(10, 0.5), size=300).astype(np.float32)
    labels[::9, :] = 0.1  # uniform rows: all at 1/K
    labels[1::9, :2] = 0.1
    labels[1::9, 2:] = 0.8 / 8
    weights = class_balanced_weights(labels)
    assert weights.dtype == np.float32
    assert np.array_equal(weights, emo_superb_weights(labels))
    # counting in float64 instead (the old behaviour) gives other weights
    wrong = (labels.astype(np.float64) > 0.1).sum(axis=0)
    right = binarize(labels).sum(axis=0)
    assert (wrong != right).any()


def test_per_batch_macro_f1_equals_emo_superb_classification_report():
    from sklearn.metrics import classification_report

    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(5), size=29).astype(np.float32)
    labels = rng.choice([0.2, 0.6, 0.1, 0.05], size=(29, 5)).astype(np.float32)
    labels /= labels.sum(axis=1, keepdims=True)
    labels[::4] = 0.2
    expected = []
    for i in range(0, 29, 8):
        truth = torch.where(torch.from_numpy(labels[i : i + 8]) > 1 / 5, 1.0, 0.0).numpy()
        pred = torch.where(torch.from_numpy(probs[i : i + 8]) > 1 / 5, 1.0, 0.0).numpy()
        report = classification_report(truth, pred, output_dict=True, zero_division=0)
        expected.append(report["macro avg"]["f1-score"])
    got = multilabel_macro_f1(probs, labels, reduction="batch_mean", batch_size=8)
    assert got == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_predict_lines_empty_when_no_class_clears_one_over_c_unless_asked():
    classes = ("a", "b", "c", "d", "e")
    values = np.array([[0.2] * 5, [0.5, 0.3, 0.1, 0.05, 0.05]], dtype=np.float32)
    assert _label_lines(["x.wav", "y.wav"], values, classes) == "x.wav \ny.wav a;b\n"
    assert _label_lines(["x.wav", "y.wav"], values, classes, top_class=True) == "x.wav a\ny.wav a;b\n"
