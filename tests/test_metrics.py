import numpy as np
import pytest
from sklearn.metrics import f1_score

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import multilabel_macro_f1, prior_baseline, score

CLASSES = ["angry", "sad", "neutral", "happy", "fear"]


def random_case(seed, n=40, c=5):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(c), size=n), rng.dirichlet(np.full(c, 0.4), size=n)


def independent_macro_f1(probs, labels):
    """Facts §6 with explicit per-class counts."""
    c = probs.shape[1]
    pred, true = probs > 1 / c, labels > 1 / c
    f1s = []
    for j in range(c):
        tp = np.sum(pred[:, j] & true[:, j])
        fp = np.sum(pred[:, j] & ~true[:, j])
        fn = np.sum(~pred[:, j] & true[:, j])
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


@pytest.mark.parametrize("seed", range(6))
def test_macro_f1_matches_independent_computation(seed):
    probs, labels = random_case(seed)
    scores = score(probs, labels, CLASSES)
    assert scores["macro_f1"] == pytest.approx(independent_macro_f1(probs, labels))
    assert scores["micro_f1"] == pytest.approx(f1_score(labels > 0.2, probs > 0.2, average="micro", zero_division=0))
    assert scores["macro_f1"] == pytest.approx(np.mean([scores[f"f1/{c}"] for c in CLASSES]))
    truth, pred = labels > 0.2, probs > 0.2
    for average in ("macro", "weighted", "samples"):
        expected = f1_score(truth, pred, average=average, zero_division=0)
        assert scores[f"{average}_f1"] == pytest.approx(expected, abs=1e-12)


def test_batch_mean_is_the_mean_over_consecutive_batches():
    probs, labels = random_case(3, n=37)
    expected = np.mean([independent_macro_f1(probs[i : i + 8], labels[i : i + 8]) for i in range(0, 37, 8)])
    assert multilabel_macro_f1(probs, labels, reduction="batch_mean", batch_size=8) == pytest.approx(expected)
    assert score(probs, labels, CLASSES, batch_size=8)["macro_f1_batch_mean"] == pytest.approx(expected)


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
def test_batch_mean_equals_scikit_learn_per_batch(batch_size):
    probs, labels = random_case(11, n=45)
    labels[:, 4] = 0.0  # a class never on in truth
    labels /= labels.sum(axis=1, keepdims=True)
    probs[::3, 1] = 1.0  # and one often on in predictions only
    probs /= probs.sum(axis=1, keepdims=True)
    truth, pred = labels > 0.2, probs > 0.2
    expected = np.mean(
        [
            f1_score(truth[i : i + batch_size], pred[i : i + batch_size], average="macro", zero_division=0)
            for i in range(0, 45, batch_size)
        ]
    )
    got = multilabel_macro_f1(probs, labels, reduction="batch_mean", batch_size=batch_size)
    assert got == pytest.approx(expected, abs=1e-12)


def test_threshold_is_strictly_above_one_over_c():
    labels = np.array([[0.5, 0.5], [0.9, 0.1]])
    probs = np.array([[0.5, 0.5], [0.9, 0.1]])
    # 0.5 is not above 1/2: class 1 is never on in truth or prediction.
    assert score(probs, labels, ["a", "b"])["f1/b"] == 0.0


def test_logits_and_shape_mismatches_are_rejected():
    with pytest.raises(InvalidInputError, match="softmax"):
        score(np.array([[2.0, -1.0]]), np.array([[0.9, 0.1]]), ["a", "b"])
    with pytest.raises(InvalidInputError, match="same shape"):
        score(np.ones((2, 3)) / 3, np.ones((3, 3)) / 3, ["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="class names"):
        score(np.ones((2, 3)) / 3, np.ones((2, 3)) / 3, ["a", "b"])


def test_prior_baseline_repeats_the_train_mean():
    train = np.array([[0.8, 0.2], [0.4, 0.6]])
    assert prior_baseline(train, 3) == pytest.approx(np.array([[0.6, 0.4]] * 3))
