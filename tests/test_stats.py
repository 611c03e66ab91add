"""Resampling statistics: equal to a slow pure-Python reference, calibrated by simulation."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import binarize, score
from s3prl_emo.stats import bootstrap_ci, holm, paired_test

CLASSES = ["angry", "sad", "neutral", "happy", "fear"]


def case(seed, n=30, c=5, noise=0.5):
    """Soft labels and the probabilities of a system that is right to a degree."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(c, 0.5), size=n)
    return truth, (1 - noise) * truth + noise * rng.dirichlet(np.ones(c), size=n)


# -- the slow reference: Python lists and loops, the documented draws ----------------------------


def reference_f1(truth_rows, pred_rows, metric):
    classes = len(truth_rows[0])
    tp, fp, fn = [0] * classes, [0] * classes, [0] * classes
    for t_row, p_row in zip(truth_rows, pred_rows, strict=True):
        for c in range(classes):
            tp[c] += t_row[c] and p_row[c]
            fp[c] += (not t_row[c]) and p_row[c]
            fn[c] += t_row[c] and not p_row[c]

    def f1(t, p, n):
        return 2 * t / (2 * t + p + n) if 2 * t + p + n else 0.0

    if metric == "micro_f1":
        return f1(sum(tp), sum(fp), sum(fn))
    return sum(f1(tp[c], fp[c], fn[c]) for c in range(classes)) / classes


def reference_quantile(values, q):
    values = sorted(values)
    h = (len(values) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(values) - 1)
    return values[low] + (h - low) * (values[high] - values[low])


def reference_bootstrap(truth, probs, metric, confidence, n_resamples, seed):
    truth_rows, pred_rows = binarize(truth).tolist(), binarize(probs).tolist()
    n = len(truth_rows)
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n).tolist()
        scores.append(reference_f1([truth_rows[i] for i in idx], [pred_rows[i] for i in idx], metric))
    tail = (1 - confidence) / 2
    return reference_quantile(scores, tail), reference_quantile(scores, 1 - tail)


def reference_paired(truth, probs_a, probs_b, metric, n_resamples, seed):
    truth_rows = binarize(truth).tolist()
    a_rows, b_rows = binarize(probs_a).tolist(), binarize(probs_b).tolist()
    n = len(truth_rows)
    observed = reference_f1(truth_rows, a_rows, metric) - reference_f1(truth_rows, b_rows, metric)
    rng = np.random.default_rng(seed)
    extreme = 0
    for _ in range(n_resamples):
        swap = rng.integers(0, 2, size=n, dtype=bool).tolist()
        a_star = [b_rows[i] if swap[i] else a_rows[i] for i in range(n)]
        b_star = [a_rows[i] if swap[i] else b_rows[i] for i in range(n)]
        d = reference_f1(truth_rows, a_star, metric) - reference_f1(truth_rows, b_star, metric)
        extreme += abs(d) >= abs(observed) - 1e-12 * max(1.0, abs(observed))
    return (1 + extreme) / (1 + n_resamples)


@pytest.mark.parametrize("metric", ["macro_f1", "micro_f1"])
@pytest.mark.parametrize("seed", range(4))
def test_bootstrap_equals_the_reference(seed, metric):
    truth, probs = case(seed, n=17 + seed, c=3 + seed)
    expected = reference_bootstrap(truth, probs, metric, 0.9, 300, seed)
    assert bootstrap_ci(truth, probs, metric=metric, confidence=0.9, n_resamples=300, seed=seed) == pytest.approx(
        expected, abs=1e-9
    )


@pytest.mark.parametrize("metric", ["macro_f1", "micro_f1"])
@pytest.mark.parametrize("seed", range(4))
def test_paired_test_equals_the_reference(seed, metric):
    truth, probs_a = case(seed, n=20 + seed, noise=0.3)
    _, probs_b = case(seed + 100, n=20 + seed, noise=0.6)
    probs_b = 0.5 * probs_b + 0.5 * truth  # the same utterances, another system
    expected = reference_paired(truth, probs_a, probs_b, metric, 300, seed)
    assert paired_test(truth, probs_a, probs_b, metric=metric, n_resamples=300, seed=seed) == pytest.approx(
        expected, abs=1e-12
    )


def test_blocks_do_not_change_the_draws(monkeypatch):
    truth, probs = case(0, n=40)
    _, other = case(1, n=40)
    whole = bootstrap_ci(truth, probs, n_resamples=50), paired_test(truth, probs, other, n_resamples=50)
    monkeypatch.setattr("s3prl_emo.stats._BLOCK_ENTRIES", 3 * 40)  # 3 resamples a block
    assert (bootstrap_ci(truth, probs, n_resamples=50), paired_test(truth, probs, other, n_resamples=50)) == whole


def sklearn_macro(truth_bin, pred_bin):
    return f1_score(truth_bin, pred_bin, average="macro", zero_division=0)


def sklearn_micro(truth_bin, pred_bin):
    return f1_score(truth_bin, pred_bin, average="micro", zero_division=0)


@pytest.mark.parametrize(("name", "callable_metric"), [("macro_f1", sklearn_macro), ("micro_f1", sklearn_micro)])
def test_counts_path_scores_every_resample_as_scikit_learn(name, callable_metric):
    """The vectorised counts and the per-resample slow path (scikit-learn) draw and score alike."""
    truth, probs = case(3, n=25, c=6)
    probs[:, 5] = 0.0  # a class never predicted: zero_division on many resamples
    _, other = case(4, n=25, c=6)
    for confidence in (0.5, 0.95):
        fast = bootstrap_ci(truth, probs, metric=name, confidence=confidence, n_resamples=200, seed=7)
        slow = bootstrap_ci(truth, probs, metric=callable_metric, confidence=confidence, n_resamples=200, seed=7)
        assert fast == pytest.approx(slow, abs=1e-12)
    fast = paired_test(truth, probs, other, metric=name, n_resamples=200, seed=7)
    assert fast == paired_test(truth, probs, other, metric=callable_metric, n_resamples=200, seed=7)


@pytest.mark.parametrize("seed", range(3))
def test_full_sample_score_is_the_package_macro_f1(seed):
    """A bootstrap of one utterance repeated N times is that sample's score, as metrics.score has it."""
    truth, probs = case(seed, n=1)
    full = score(probs, truth, CLASSES)
    assert bootstrap_ci(truth, probs, n_resamples=3) == (full["macro_f1"], full["macro_f1"])
    assert bootstrap_ci(truth, probs, metric="micro_f1", n_resamples=3) == (full["micro_f1"], full["micro_f1"])
    truth, probs = case(seed, n=60)
    # The counts path and scikit-learn agree on every resample (above); the interval brackets the score.
    low, high = bootstrap_ci(truth, probs, n_resamples=400, seed=seed)
    assert low <= score(probs, truth, CLASSES)["macro_f1"] <= high


def test_seed_reproduces_and_varies():
    truth, probs = case(5, n=50)
    assert bootstrap_ci(truth, probs, seed=1, n_resamples=100) == bootstrap_ci(truth, probs, seed=1, n_resamples=100)
    assert bootstrap_ci(truth, probs, seed=1, n_resamples=100) != bootstrap_ci(truth, probs, seed=2, n_resamples=100)


def test_edge_cases():
    truth, probs = case(0, n=40)
    assert bootstrap_ci(truth, truth) == (1.0, 1.0)  # a perfect system stays perfect on every resample
    assert paired_test(truth, probs, probs) == 1.0  # no difference at all
    assert paired_test(truth, probs, probs, n_resamples=1) == 1.0
    low, high = bootstrap_ci(truth, probs, n_resamples=1)
    assert low == high
    # Rows only differ where the two systems disagree: p counts the identical ones as ties.
    p = paired_test(truth, truth, np.full_like(truth, 1 / truth.shape[1]), n_resamples=999)
    assert p == pytest.approx(1 / 1000)
    wide, narrow = bootstrap_ci(truth, probs, confidence=0.99), bootstrap_ci(truth, probs, confidence=0.5)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t, p: bootstrap_ci(t, p[:, :4]), r"bootstrap_ci: probs has shape \(30, 4\) but truth has \(30, 5\)"),
        (lambda t, p: paired_test(t, p, p[:10]), r"paired_test: probs_b has shape \(10, 5\)"),
        (lambda t, p: bootstrap_ci(t[:0], p[:0]), r"truth has shape \(0, 5\); expected \(N, C\) with N >= 1"),
        (lambda t, p: bootstrap_ci(t[:, :1], p[:, :1]), r"truth has shape \(30, 1\).*C >= 2"),
        (lambda t, p: bootstrap_ci(t, np.where(p > 0.3, np.nan, p)), r"bootstrap_ci: probs holds values outside"),
        (lambda t, p: paired_test(t, p, 3 * p), r"paired_test: probs_b holds values outside \[0, 1\]"),
        (lambda t, p: paired_test(t * np.inf, p, p), r"paired_test: truth holds values"),
        (lambda t, p: bootstrap_ci(t, p, confidence=1.0), r"bootstrap_ci: confidence 1.0; expected a value in \(0, 1"),
        (lambda t, p: bootstrap_ci(t, p, confidence=0), r"confidence 0"),
        (lambda t, p: bootstrap_ci(t, p, confidence=float("nan")), r"confidence nan"),
        (lambda t, p: bootstrap_ci(t, p, confidence="0.9"), r"confidence '0.9' is not a number"),
        (lambda t, p: bootstrap_ci(t, p, n_resamples=0), r"bootstrap_ci: n_resamples 0; expected an integer >= 1"),
        (lambda t, p: paired_test(t, p, p, n_resamples=2.5), r"paired_test: n_resamples 2.5"),
        (lambda t, p: paired_test(t, p, p, n_resamples=True), r"n_resamples True"),
        (lambda t, p: bootstrap_ci(t, p, metric="accuracy"), r"bootstrap_ci: metric 'accuracy' is unknown"),
        (lambda t, p: paired_test(t, p, p, metric="macro"), r"paired_test: metric 'macro' is unknown"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    truth, probs = case(0)
    with pytest.raises(InvalidInputError, match=match):
        call(truth, probs)


# -- Holm ------------------------------------------------------------------------------------------


def reference_holm(p_values):
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize("seed", range(5))
def test_holm_equals_the_step_down_definition(seed):
    rng = np.random.default_rng(seed)
    p = [*rng.uniform(0, 0.3, size=1 + 3 * seed), 0.02, 0.02]  # ties too
    adjusted = holm(p)
    assert adjusted == pytest.approx(reference_holm(p), abs=1e-15)
    assert all(a >= raw for a, raw in zip(adjusted, p, strict=True))
    assert max(adjusted) <= 1.0
    order = np.argsort(p)
    assert np.all(np.diff(np.asarray(adjusted)[order]) >= 0)  # monotone in the raw p-values


def test_holm_edges():
    assert holm([]) == []
    assert holm([0.5]) == [0.5]
    assert holm([0.9, 0.8]) == [1.0, 1.0]
    for bad in ([0.1, 1.5], [float("nan")], [-0.1]):
        with pytest.raises(InvalidInputError, match=r"holm: p_values\[\d\]"):
            holm(bad)


# -- calibration by simulation ---------------------------------------------------------------------

SIMULATIONS = 400


def noisy_system(truth, rng, noise=0.6):
    return (1 - noise) * truth + noise * rng.dirichlet(np.ones(truth.shape[1]), size=len(truth))


def test_paired_test_rejects_a_true_null_at_its_level():
    """Two systems whose errors come from one distribution: rejected at 0.05 in 2-8% of simulations."""
    rng = np.random.default_rng(2024)
    rejections = 0
    for sim in range(SIMULATIONS):
        truth = rng.dirichlet(np.full(4, 0.7), size=200)
        p = paired_test(truth, noisy_system(truth, rng), noisy_system(truth, rng), n_resamples=199, seed=sim)
        rejections += p <= 0.05
    assert 0.02 <= rejections / SIMULATIONS <= 0.08


def test_paired_test_finds_a_real_difference():
    rng = np.random.default_rng(7)
    rejections = 0
    for sim in range(50):
        truth = rng.dirichlet(np.full(4, 0.7), size=200)
        better, worse = noisy_system(truth, rng, noise=0.5), noisy_system(truth, rng, noise=0.8)
        rejections += paired_test(truth, better, worse, n_resamples=199, seed=sim) <= 0.05
    assert rejections >= 40


def test_bootstrap_interval_covers_the_population_score():
    """A finite population of utterances scored by one system: its macro-F1 is known exactly;
    95% intervals from samples of 200 utterances cover it in 92-98% of simulations."""
    rng = np.random.default_rng(11)
    population_truth = rng.dirichlet(np.full(4, 0.7), size=20_000)
    population_probs = noisy_system(population_truth, rng)
    population_f1 = score(population_probs, population_truth, CLASSES[:4])["macro_f1"]
    covered = 0
    for sim in range(SIMULATIONS):
        idx = rng.integers(0, len(population_truth), size=200)
        low, high = bootstrap_ci(population_truth[idx], population_probs[idx], n_resamples=500, seed=sim)
        covered += low <= population_f1 <= high
    assert 0.92 <= covered / SIMULATIONS <= 0.98
