"""The batched trainer's parts: sampler emulation, fallback rules, per-run views, clipping, checkpoints."""

import argparse
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from s3prl_emo.training.batched import fallback_reason
from s3prl_emo.training.batched.engine import PooledForward, Stack, clip_per_run, run_parameters
from s3prl_emo.training.batched.files import expert_view, make_room, save_atomic
from s3prl_emo.training.batched.setup import head_for
from s3prl_emo.training.batched.trainer import _draw, _epoch_batches
from s3prl_emo.training.feature_store import StoreOptions


class _Fold:
    def __init__(self, n):
        self.names = {"train": [f"u{i}" for i in range(n)]}


class _View:
    def __init__(self):
        self.datarc = {"train_batch_size": 4}


class _Run:
    def __init__(self, n, state):
        self.fold, self.view = _Fold(n), _View()
        self.generator = torch.Generator()
        self.generator.set_state(state)


def test_epoch_order_is_the_dataloaders_from_the_global_random_state():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    expected = []
    for _ in range(3):  # three epochs, with an evaluation's re-seed before the third
        expected.append([b.tolist() for b in DataLoader(range(10), batch_size=4, shuffle=True)])
        if len(expected) == 2:
            torch.manual_seed(7)
            iter(DataLoader(range(5), batch_size=4))  # the evaluation loader's base seed
    run = _Run(10, state)
    got = [[b.tolist() for b in _epoch_batches(run)] for _ in range(2)]
    run.generator.manual_seed(7)
    _draw(run.generator)
    got.append([b.tolist() for b in _epoch_batches(run)])
    assert got == expected


@pytest.mark.parametrize(
    ("modelrc", "config", "reason"),
    [
        ({"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}, {}, None),
        ({"select": "DeepModel"}, {}, "does not mean-pool first"),
        ({"select": "PooledMLP"}, {}, "dropout"),
        ({"select": "PooledMLP", "PooledMLP": {"dropout": 0}}, {}, None),
        ({"select": "UtteranceLevel"}, {"specaug": {"x": 1}}, "specaug"),
        ({"select": "UtteranceLevel"}, {"runner": {"fp16": True}}, "fp16"),
    ],
)
def test_fallback_reasons(modelrc, config, reason):
    config = {"runner": {}, **config, "downstream_expert": {"modelrc": modelrc}}
    got = fallback_reason(config, argparse.Namespace(), StoreOptions())
    assert (got is None) if reason is None else (reason in got)


def test_a_run_on_a_sequence_store_falls_back():
    config = {"runner": {}, "downstream_expert": {"modelrc": {"select": "UtteranceLevel"}}}
    assert "sequence" in fallback_reason(config, argparse.Namespace(), StoreOptions(store="sequence"))


def test_the_head_is_built_from_the_given_random_state_and_leaves_the_global_one():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    modelrc = {"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}
    from s3prl_emo.downstream.model import EmotionHead

    torch.manual_seed(3)
    expected = EmotionHead(8, 3, modelrc)
    after_expected = torch.get_rng_state()
    torch.manual_seed(99)
    before = torch.get_rng_state()
    head, after = head_for(8, 3, modelrc, state)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(after, after_expected)
    for a, b in zip(head.parameters(), expected.parameters(), strict=True):
        assert torch.equal(a, b)


def test_stacked_logits_equal_each_runs_own_forward():
    from s3prl_emo.downstream.model import EmotionHead

    modelrc = {"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}
    torch.manual_seed(0)
    modules = [PooledForward(EmotionHead(6, 3, modelrc), 4) for _ in range(3)]
    for i, m in enumerate(modules):
        m.weights.data.fill_(0.1 * i)
    stored = torch.randn(3, 5, 4, 6)
    params = [dict(m.named_parameters()) for m in modules]
    stacked = Stack(modules[0]).logits(params, stored, shared=False)
    for i, m in enumerate(modules):
        # the head as the Runner runs it: weighted sum over layers, one frame, mean pooling
        pooled = (torch.softmax(m.weights, -1)[:, None, None] * stored[i].transpose(0, 1)).sum(0)
        own = m.head(pooled.unsqueeze(1), torch.ones(5, dtype=torch.long))
        assert torch.allclose(stacked[i], own, atol=1e-6)
    assert next(iter(run_parameters(modules[0], modules[0].head))) == "weights"


def test_clipping_is_by_each_runs_own_norm():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.3, 0.4])
    norms = clip_per_run([[a], [b]], 1.0)
    assert norms == pytest.approx([5.0, 0.5])
    assert torch.linalg.vector_norm(a.grad).item() == pytest.approx(1.0, rel=1e-5)
    assert torch.equal(b.grad, torch.tensor([0.3, 0.4]))  # under the limit: untouched


def test_an_expert_view_owns_head_folder_and_best_score(tmp_path):
    expert = nn.Module()
    expert.head = nn.Linear(2, 2)
    expert.register_buffer("best_score", torch.full((1,), math.inf))
    expert.expdir, expert.dev_thresholds = tmp_path / "a", {"x": 1}
    view = expert_view(expert, tmp_path / "b", nn.Linear(2, 2))
    view.best_score.fill_(0.5)
    assert expert.best_score.item() == math.inf
    assert view.head is not expert.head
    assert expert.expdir == tmp_path / "a"
    assert view.dev_thresholds is None
    assert set(view.state_dict()) == set(expert.state_dict())


def test_saves_are_atomic_and_keep_max_keep(tmp_path):
    for step in (10, 20):
        save_atomic({"Step": step}, tmp_path / f"states-{step}.ckpt")
    make_room(tmp_path, 2)  # one more would make three
    save_atomic({"Step": 30}, tmp_path / "states-30.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["states-20.ckpt", "states-30.ckpt"]
    assert torch.load(tmp_path / "states-30.ckpt")["Step"] == 30
