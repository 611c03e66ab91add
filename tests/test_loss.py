import numpy as np
import pytest
import torch

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.loss import ClassBalancedCrossEntropy, SoftCrossEntropy, class_balanced_weights


def reference_weights(labels, beta=None):
    """CBCE weights as EMO-SUPERB's released code computes them, written out with plain loops."""
    n, k = labels.shape
    beta = (n - 1) / n if beta is None else beta
    w = []
    for j in range(k):
        n_j = sum(1 for i in range(n) if labels[i, j] > 1 / k)
        w.append((1 - beta) / (1 - beta**n_j))
    w = np.array(w)
    return w / w.sum() * k


def reference_loss(logits, targets, w, weighting):
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    if weighting == "sample":
        per = (targets * w).sum(axis=1) * -(targets * log_p).sum(axis=1)
    else:
        per = -(w * targets * log_p).sum(axis=1)
    return per.mean()


def random_soft_labels(rng, n, k):
    return rng.dirichlet(np.full(k, 0.3), size=n)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weighting", ["sample", "class"])
def test_cbce_matches_numpy(seed, weighting):
    rng = np.random.default_rng(seed)
    train = random_soft_labels(rng, 50, 6)
    logits = rng.normal(size=(8, 6)) * 3
    targets = random_soft_labels(rng, 8, 6)
    loss = ClassBalancedCrossEntropy(train, weighting=weighting)
    w = reference_weights(train)
    assert loss.weights.numpy() == pytest.approx(w, rel=1e-5)
    assert loss.weights.sum().item() == pytest.approx(6.0, rel=1e-5)
    value = loss(torch.tensor(logits, dtype=torch.float32), torch.tensor(targets, dtype=torch.float32))
    assert value.item() == pytest.approx(reference_loss(logits, targets, w, weighting), rel=1e-4)


def test_explicit_beta_and_the_rare_class_gets_the_largest_weight():
    labels = np.array([[0.9, 0.05, 0.05]] * 8 + [[0.05, 0.9, 0.05]] * 3 + [[0.05, 0.05, 0.9]])
    w = class_balanced_weights(labels, beta=0.9)
    assert w == pytest.approx(reference_weights(labels, beta=0.9))
    assert w[2] > w[1] > w[0]


def test_class_without_positive_train_utterance_stays_finite():
    labels = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])  # class 2 never above 1/3
    loss = ClassBalancedCrossEntropy(labels)
    assert torch.isfinite(loss.weights).all()
    value = loss(torch.randn(4, 3), torch.tensor([[0.0, 0.0, 1.0]] * 4))
    assert torch.isfinite(value)


def test_gradient_flows_and_soft_ce_is_plain_cross_entropy():
    logits = torch.randn(5, 4, requires_grad=True)
    hard = torch.tensor([0, 1, 2, 3, 0])
    onehot = torch.nn.functional.one_hot(hard, 4).float()
    value = SoftCrossEntropy()(logits, onehot)
    assert value.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, hard).item(), rel=1e-6)
    ClassBalancedCrossEntropy(onehot.numpy())(logits, onehot).backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="weighting"):
        ClassBalancedCrossEntropy(np.eye(3), weighting="bogus")
    with pytest.raises(InvalidInputError, match="shape"):
        class_balanced_weights(np.ones(3))


@pytest.mark.parametrize("weighting", ["sample", "class", None])
def test_leading_dimensions_give_each_runs_batch_mean(weighting):
    """The batched trainer calls one loss on (R, B, C) with each run's weights as (R, 1, C)."""
    from torch.func import functional_call

    rng = np.random.default_rng(0)
    runs = [rng.dirichlet(np.ones(4), size=30).astype(np.float32) for _ in range(3)]
    losses = [ClassBalancedCrossEntropy(r, weighting=weighting) if weighting else SoftCrossEntropy() for r in runs]
    logits, targets = torch.randn(3, 8, 4), torch.softmax(torch.randn(3, 8, 4), dim=-1)
    buffers = {
        name: torch.stack([dict(o.named_buffers())[name] for o in losses])[:, None]
        for name, _ in losses[0].named_buffers()
    }
    together = functional_call(losses[0], buffers, (logits, targets))
    assert together.shape == (3,)
    assert losses[0].leading_dims
    for r, loss in enumerate(losses):
        assert torch.equal(together[r], loss(logits[r], targets[r]))
