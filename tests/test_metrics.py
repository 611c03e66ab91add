import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import f1_score, precision_recall_fscore_support

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import (
    binarize,
    js_divergence,
    macro_f1_at_thresholds,
    multilabel_macro_f1,
    prior_baseline,
    score,
    tune_thresholds,
)

CLASSES = ["angry", "sad", "neutral", "happy", "fear"]


def random_case(seed, n=40, c=5):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(c), size=n), rng.dirichlet(np.full(c, 0.4), size=n)


def independent_macro_f1(probs, labels):
    """EMO-SUPERB's evaluation (classes above 1/C, macro-F1) with explicit per-class counts."""
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


@pytest.mark.parametrize("seed", range(8))
def test_the_f1_family_is_scikit_learns_exactly(seed):
    """Counted here for speed, equal to scikit-learn's to the last bit: sparse and empty
    classes, utterances with no class on in the truth, the prediction, or both."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 60)), int(rng.integers(2, 9))
    probs, labels = rng.dirichlet(np.full(c, 0.3), size=n), rng.dirichlet(np.full(c, 0.3), size=n)
    labels[:, 0] = 0.0  # a class never on in the truth
    probs[rng.random(n) < 0.3] = 1.0 / c  # utterances with no class predicted
    truth, pred = binarize(labels), binarize(probs)
    names = [f"c{j}" for j in range(c)]
    scores = score(probs, labels, names)
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    for j, name in enumerate(names):
        assert (scores[f"precision/{name}"], scores[f"recall/{name}"]) == (precision[j], recall[j])
        assert (scores[f"f1/{name}"], scores[f"support/{name}"]) == (f1[j], support[j])
    for average in ("macro", "micro", "samples"):
        assert scores[f"{average}_f1"] == f1_score(truth, pred, average=average, zero_division=0), average
    thresholds = rng.random(c)
    expected = f1_score(truth, binarize(probs, thresholds), average="macro", zero_division=0)
    assert macro_f1_at_thresholds(probs, labels, thresholds) == expected
    assert multilabel_macro_f1(probs, labels) == f1_score(truth, pred, average="macro", zero_division=0)


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


# -- figures beside the headline: JS divergence and dev-tuned thresholds --------------------------


def direct_js_bits(p, q):
    """Mean over rows of (KL(p||m) + KL(q||m)) / 2 in bits, 0 log 0 = 0."""
    m = (p + q) / 2

    def kl(a, b):
        return np.sum(np.where(a > 0, a * np.log2(np.where(a > 0, a, 1.0) / b), 0.0), axis=1)

    return float(np.mean((kl(p, m) + kl(q, m)) / 2))


@pytest.mark.parametrize("seed", range(4))
def test_js_divergence_is_the_mean_divergence_in_bits(seed):
    probs, labels = random_case(seed)
    labels[::4] = np.eye(5)[np.arange(len(labels[::4])) % 5]  # one-hot rows: zeros in the sum
    got = js_divergence(probs, labels)
    assert got == pytest.approx(direct_js_bits(probs, labels), abs=1e-12)
    assert got == pytest.approx(np.mean(jensenshannon(probs, labels, base=2, axis=1) ** 2), abs=1e-12)
    assert score(probs, labels, CLASSES)["js_divergence"] == got


def test_js_divergence_bounds():
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert js_divergence(p, p) == 0.0
    assert js_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="sums to 0"):
        js_divergence(np.zeros((1, 3)), np.full((1, 3), 1 / 3))


def brute_force_thresholds(probs, labels):
    """Every candidate (0, 1/C and each distinct value) scored with scikit-learn; ties to the closest to 1/C, then
    the larger."""
    c = probs.shape[1]
    default = float(np.float32(1 / c))
    truth = labels.astype(np.float32) > np.float32(1 / c)
    chosen = []
    for j in range(c):
        values = probs[:, j].astype(np.float32)
        best = None
        for t in sorted(set(values.tolist()) | {0.0, default}):
            f1 = f1_score(truth[:, j], values > np.float32(t), zero_division=0)
            key = (f1, -abs(t - default), t)
            if best is None or key > best[0]:
                best = (key, t)
        chosen.append(best[1])
    return np.array(chosen)


@pytest.mark.parametrize("seed", range(6))
def test_tuned_thresholds_equal_a_brute_force_search(seed):
    probs, labels = random_case(seed, n=50)
    if seed % 2:
        probs = np.round(probs, 1)  # many tied values
    if seed >= 4:
        labels[:, 2] = 0.0  # a class never on in the reference: F1 is 0 everywhere, 1/C kept
        labels /= labels.sum(axis=1, keepdims=True)
    thresholds = tune_thresholds(probs, labels)
    assert thresholds.tolist() == brute_force_thresholds(probs, labels).tolist()
    if seed >= 4:
        assert thresholds[2] == np.float32(1 / 5)
    tuned = macro_f1_at_thresholds(probs, labels, thresholds)
    truth, values = labels.astype(np.float32) > np.float32(0.2), probs.astype(np.float32)
    per_class = [f1_score(truth[:, j], values[:, j] > np.float32(thresholds[j]), zero_division=0) for j in range(5)]
    assert tuned == pytest.approx(np.mean(per_class), abs=1e-12)
    assert tuned >= multilabel_macro_f1(probs, labels)  # 1/C is a candidate: tuning never loses on its own data


def test_thresholds_at_one_over_c_give_the_headline_macro_f1():
    probs, labels = random_case(9)
    assert macro_f1_at_thresholds(probs, labels, np.full(5, 0.2)) == multilabel_macro_f1(probs, labels)
    with pytest.raises(InvalidInputError, match="expected 5 finite values"):
        macro_f1_at_thresholds(probs, labels, np.full(4, 0.2))


def test_binarize_takes_one_threshold_per_class():
    values = np.array([[0.3, 0.3, 0.4], [0.1, 0.6, 0.3]])
    assert binarize(values, np.array([0.2, 0.5, 0.35])).tolist() == [[True, False, True], [False, True, False]]
    with pytest.raises(InvalidInputError, match="one per class"):
        binarize(values, np.array([0.2, 0.5]))
