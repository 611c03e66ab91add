"""CCC (Lin, 1989) and the attribute scores, against an independent NumPy formula and on edge cases."""

import numpy as np
import pytest
import torch

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.loss import AttributeLoss, batch_ccc
from s3prl_emo.metrics import attribute_scores, concordance_cc, pearson_r


def reference_ccc(x, y):
    """Lin's CCC written out with explicit sums over population moments (divide by N)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x) / n
    syy = sum((b - my) ** 2 for b in y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / n
    return 2 * sxy / (sxx + syy + (mx - my) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_the_written_out_formula(seed):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(1, 5, 50)
    pred = 0.6 * truth + rng.normal(0, 0.5, 50) + rng.uniform(-1, 1)
    assert concordance_cc(pred, truth) == pytest.approx(reference_ccc(list(pred), list(truth)), abs=1e-12)
    # population, not sample, moments: numpy's cov with bias=True gives the same covariance
    cov = np.cov(pred, truth, bias=True)
    expected = 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (pred.mean() - truth.mean()) ** 2)
    assert concordance_cc(pred, truth) == pytest.approx(expected, abs=1e-12)


def test_ccc_is_pearson_penalised_for_shift_and_scale():
    truth = np.array([1.0, 2.0, 4.0, 5.0])
    assert concordance_cc(truth, truth) == 1.0
    assert concordance_cc(-truth, truth) < 0
    assert pearson_r(truth + 1, truth) == pytest.approx(1.0)
    assert concordance_cc(truth + 1, truth) < 1.0
    assert concordance_cc(2 * truth, truth) < 1.0


def test_ccc_vectorised_over_leading_axes_equals_one_at_a_time():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 7, 30)), rng.normal(size=(4, 7, 30))
    stacked = concordance_cc(x, y)
    assert stacked.shape == (4, 7)
    assert stacked[2, 5] == pytest.approx(reference_ccc(list(x[2, 5]), list(y[2, 5])), abs=1e-12)


def test_ccc_edge_cases():
    truth = np.array([1.0, 2.0, 3.0])
    assert concordance_cc(np.full(3, 2.0), truth) == 0.0  # constant predictions: no covariance
    assert np.isnan(concordance_cc(np.full(3, 2.0), np.full(3, 2.0)))  # 0 / 0: undefined
    assert concordance_cc(np.array([2.0]), np.array([3.0])) == 0.0  # N = 1, values differ
    assert np.isnan(concordance_cc(np.array([3.0]), np.array([3.0])))  # N = 1, equal: 0 / 0
    with pytest.raises(InvalidInputError, match="NaN"):
        concordance_cc(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(InvalidInputError, match="truth"):
        concordance_cc(np.array([1.0, 2.0]), np.array([1.0, np.inf]))
    with pytest.raises(InvalidInputError, match="same shape"):
        concordance_cc(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InvalidInputError, match="same shape"):
        concordance_cc(np.array([]), np.array([]))


def test_attribute_scores_keys_and_undefined_values():
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 5, (40, 2))
    pred = truth + rng.normal(0, 0.3, (40, 2))
    scores = attribute_scores(pred, truth, ["EmoAct", "EmoVal"])
    assert scores["ccc/EmoAct"] == pytest.approx(reference_ccc(list(pred[:, 0]), list(truth[:, 0])))
    assert scores["ccc_mean"] == pytest.approx((scores["ccc/EmoAct"] + scores["ccc/EmoVal"]) / 2)
    assert scores["pearson/EmoVal"] == pytest.approx(np.corrcoef(pred[:, 1], truth[:, 1])[0, 1])
    assert scores["mae/EmoAct"] == pytest.approx(np.abs(pred[:, 0] - truth[:, 0]).mean())
    constant = attribute_scores(np.full((3, 1), 2.0), np.full((3, 1), 2.0), ["EmoAct"])
    assert constant["ccc/EmoAct"] is None
    assert constant["ccc_mean"] is None
    assert constant["pearson/EmoAct"] is None
    with pytest.raises(InvalidInputError, match="shape"):
        attribute_scores(pred, truth, ["EmoAct"])


def test_torch_batch_ccc_equals_the_metric_and_the_loss_trains():
    rng = np.random.default_rng(1)
    truth, pred = rng.normal(size=(16, 3)), rng.normal(size=(16, 3))
    values = batch_ccc(torch.tensor(pred), torch.tensor(truth), eps=0.0).numpy()
    assert values == pytest.approx([concordance_cc(pred[:, j], truth[:, j]) for j in range(3)], abs=1e-12)
    loss = AttributeLoss("ccc")(torch.tensor(pred), torch.tensor(truth))
    assert float(loss) == pytest.approx(1 - values.mean(), abs=1e-6)
    mse = AttributeLoss("mse")(torch.tensor(pred), torch.tensor(truth))
    assert float(mse) == pytest.approx(((pred - truth) ** 2).mean())
    # constant predictions keep a finite gradient
    constant = torch.zeros(8, 1, requires_grad=True)
    AttributeLoss("ccc")(constant, torch.zeros(8, 1)).backward()
    assert torch.isfinite(constant.grad).all()
    with pytest.raises(InvalidInputError, match="ccc"):
        AttributeLoss("l1")
