"""The batched trainer's parts: sampler emulation, fallback rules, per-run views, clipping, checkpoints."""

import argparse
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from s3prl_emo.training.batched import fallback_reason
from s3prl_emo.training.batched.engine import PooledForward, RunStack, adam_recipe, linear_chain, run_parameters
from s3prl_emo.training.batched.files import (
    expert_view,
    load_optimizer_state,
    optimizer_state,
    serialised,
    write_checkpoints,
)
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


@pytest.mark.parametrize("task", ["attributes", "both"])
def test_a_run_with_attribute_outputs_falls_back(task):
    config = {"runner": {}, "downstream_expert": {"task": task, "modelrc": {"select": "UtteranceLevel"}}}
    assert f"task {task!r}" in fallback_reason(config, argparse.Namespace(), StoreOptions())


def test_a_run_on_a_gpu_falls_back():
    config = {"runner": {}, "downstream_expert": {"modelrc": {"select": "UtteranceLevel"}}}
    assert "--device cuda" in fallback_reason(config, argparse.Namespace(device="cuda"), StoreOptions())
    assert fallback_reason(config, argparse.Namespace(device="cpu"), StoreOptions()) is None


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


def _modules(count, seed=0):
    from s3prl_emo.downstream.model import EmotionHead

    modelrc = {"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}
    torch.manual_seed(seed)
    modules = [PooledForward(EmotionHead(6, 3, modelrc), 4) for _ in range(count)]
    for i, m in enumerate(modules):
        m.weights.data.fill_(0.1 * i)
    return modules


def _stack(modules, optimizers, max_norm=1.0, states=None):
    rows = [run_parameters(m, m.head) for m in modules]
    groups = [o.param_groups[0] for o in optimizers]
    return RunStack(
        modules[0],
        rows,
        states or [{} for _ in modules],
        adam_recipe(optimizers[0]),
        lr=[g["lr"] for g in groups],
        weight_decay=[g["weight_decay"] for g in groups],
        max_norm=[max_norm] * len(modules),
    )


def test_stacked_logits_equal_each_runs_own_forward():
    modules = _modules(3)
    stored = torch.randn(3, 5, 4, 6)
    stack = _stack(modules, [torch.optim.AdamW(m.parameters()) for m in modules])
    stacked = stack.logits(stored)
    for i, m in enumerate(modules):
        # the head as the Runner runs it: weighted sum over layers, one frame, mean pooling
        pooled = (torch.softmax(m.weights, -1)[:, None, None] * stored[i].transpose(0, 1)).sum(0)
        own = m.head(pooled.unsqueeze(1), torch.ones(5, dtype=torch.long))
        assert torch.allclose(stacked[i], own, atol=1e-6)
    assert torch.allclose(stack.logits(stored[1:], [1, 2]), stacked[1:], atol=1e-6)
    assert next(iter(run_parameters(modules[0], modules[0].head))) == "weights"


def _frame_level(hiddens, activation):
    return {"select": "FrameLevel", "FrameLevel": {"hiddens": hiddens, "activation": activation}}


@pytest.mark.parametrize(
    ("modelrc", "layers", "chained"),
    [
        ({"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}, 4, True),
        ({"select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}, None, True),
        ({"select": "UtteranceLevel", "UtteranceLevel": {"post_net": _frame_level([7, 5], "GELU")}}, 4, True),
        ({"select": "PooledMLP", "PooledMLP": {"hidden_dim": 8, "dropout": 0.0}}, 4, True),
        ({"select": "UtteranceLevel", "UtteranceLevel": {"post_net": _frame_level([7], "Softmax")}}, 4, False),
    ],
)
def test_the_matrix_product_forward_equals_the_vmapped_module(modelrc, layers, chained):
    from s3prl_emo.downstream.model import EmotionHead

    torch.manual_seed(0)
    modules = [PooledForward(EmotionHead(6, 3, modelrc), layers) for _ in range(3)]
    if layers:
        for i, m in enumerate(modules):
            m.weights.data.fill_(0.1 * i)
    stack = _stack(modules, [torch.optim.AdamW(m.parameters()) for m in modules])
    assert (linear_chain(modules[0]) is not None) == chained
    own, shared = torch.randn(3, 5, layers or 1, 6), torch.randn(5, layers or 1, 6)
    outputs = {}
    for path, chain in (("chain", stack.chain), ("vmap", None)):
        stack.chain = chain
        logits = [stack.logits(own), stack.logits(shared, shared=True), stack.logits(own[1:], [1, 2])]
        logits[0].square().sum().backward()
        outputs[path] = [*logits, *(leaf.grad.clone() for leaf in stack.leaves.values())]
        stack.zero_grad(None)
    for a, b in zip(outputs["chain"], outputs["vmap"], strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    for i, m in enumerate(modules):  # and each run's module on its own batch
        assert torch.allclose(outputs["chain"][0][i], m(own[i]), atol=1e-6)


@pytest.mark.parametrize("kind", [torch.optim.AdamW, torch.optim.Adam])
def test_the_stacked_step_is_each_runs_own_clipped_adam_step(kind):
    """Several steps of 3 runs (own lr, weight decay) against torch's optimizer and clip_grad_norm_ per run;
    the third run accumulates (steps every other tick) to exercise the masked update."""
    modules = _modules(3)
    twins = [_modules(3)[i] for i in range(3)]
    settings = [(1e-2, 0.01), (5e-3, 0.0), (1e-3, 0.1)]
    twin_optimizers = [kind(t.parameters(), lr=a, weight_decay=b) for t, (a, b) in zip(twins, settings, strict=True)]
    optimizers = [kind(m.parameters(), lr=a, weight_decay=b) for m, (a, b) in zip(modules, settings, strict=True)]
    stack = _stack(modules, optimizers)
    stored, target = torch.randn(3, 5, 4, 6), torch.softmax(torch.randn(3, 5, 3), -1)
    for tick in range(6):
        loss = -(target * torch.log_softmax(stack.logits(stored), -1)).sum(-1).mean(-1)
        loss.sum().backward()
        stepping = torch.tensor([True, True, tick % 2 == 1])
        norms = stack.clip(stepping)
        stack.update(torch.tensor([i for i in range(3) if stepping[i]]))
        stack.zero_grad(stepping)
        for i, (twin, optimizer) in enumerate(zip(twins, twin_optimizers, strict=True)):
            own = -(target[i] * torch.log_softmax(twin(stored[i]), -1)).sum(-1).mean()
            assert own.item() == pytest.approx(loss[i].item(), abs=1e-6)
            own.backward()
            if stepping[i]:
                norm = torch.nn.utils.clip_grad_norm_(list(twin.parameters()), 1.0)
                assert norms[i].item() == pytest.approx(norm.item(), rel=1e-5)
                optimizer.step()
                optimizer.zero_grad()
    for i, (twin, optimizer) in enumerate(zip(twins, twin_optimizers, strict=True)):
        values, state = stack.run_values(i), stack.run_state(i)
        for name, p in run_parameters(twin, twin.head).items():
            assert torch.allclose(values[name], p, atol=1e-6)
            assert state[name]["step"].item() == optimizer.state[p]["step"].item()
            assert torch.allclose(state[name]["exp_avg_sq"], optimizer.state[p]["exp_avg_sq"], atol=1e-9)


def test_a_nan_norm_run_is_not_updated_and_a_run_can_leave():
    modules = _modules(2)
    stack = _stack(modules, [torch.optim.AdamW(m.parameters()) for m in modules], max_norm=0.5)
    before = stack.run_values(1)
    for leaf in stack.leaves.values():
        leaf.grad = torch.full_like(leaf, 3.0)
        leaf.grad[1] = float("nan")
    size = sum(leaf[0].numel() for leaf in stack.leaves.values())
    norms = stack.clip(None)
    assert norms[0].item() == pytest.approx(3.0 * size**0.5, rel=1e-5)
    clipped = torch.cat([leaf.grad[0].flatten() for leaf in stack.leaves.values()])
    assert torch.linalg.vector_norm(clipped).item() == pytest.approx(0.5, rel=1e-4)
    assert torch.isnan(norms[1])
    stack.update(torch.tensor([0]))
    stack.zero_grad(None)
    assert stack.run_state(1) is None
    assert stack.run_state(0)["weights"]["step"].item() == 1
    assert all(torch.equal(before[n], v) for n, v in stack.run_values(1).items())
    kept = stack.run_values(0)
    stack.keep([0])
    assert len(stack) == 1
    assert all(torch.equal(kept[n], v) for n, v in stack.run_values(0).items())


def test_only_torch_adam_without_extras_is_stacked():
    p = nn.Parameter(torch.zeros(1))
    assert adam_recipe(torch.optim.Adam([p], betas=(0.8, 0.9), eps=1e-6)) == (False, 0.8, 0.9, 1e-6)
    assert "SGD" in adam_recipe(torch.optim.SGD([p], lr=0.1))
    assert "amsgrad" in adam_recipe(torch.optim.AdamW([p], amsgrad=True))
    config = {"runner": {"total_steps": 10}, "downstream_expert": {"modelrc": {"select": "UtteranceLevel"}}}
    config["optimizer"] = {"name": "TorchOptim", "torch_optim_name": "SGD", "lr": 0.1}
    assert "SGD" in fallback_reason(config, argparse.Namespace(), StoreOptions())
    config["optimizer"] = {"name": "TorchOptim", "torch_optim_name": "AdamW", "lr": 0.1}
    assert fallback_reason(config, argparse.Namespace(), StoreOptions()) is None


def test_a_runs_optimizer_state_round_trips_in_torchs_format():
    modules = _modules(1)
    params = run_parameters(modules[0], modules[0].head)
    optimizer = torch.optim.AdamW(list(params.values()), lr=1e-3)
    stack = _stack(modules, [optimizer])
    for leaf in stack.leaves.values():
        leaf.grad = torch.full_like(leaf, 0.1)
    stack.update(None)
    saved = optimizer_state(optimizer, params, stack.run_state(0))
    assert not optimizer.state  # the run's optimizer holds no copy between saves
    twin = torch.optim.AdamW(list(params.values()), lr=1e-3)
    twin.load_state_dict(saved)  # stock torch reads it
    assert twin.state[params["weights"]]["step"].item() == 1
    state = load_optimizer_state(optimizer, params, saved)
    assert torch.equal(state["weights"]["exp_avg"], stack.run_state(0)["weights"]["exp_avg"])


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
    for step in (10, 20, 30):  # the third makes room first: one more would make three
        write_checkpoints(tmp_path, serialised({"Step": step}), [f"states-{step}.ckpt"], 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["states-20.ckpt", "states-30.ckpt"]
    assert torch.load(tmp_path / "states-30.ckpt")["Step"] == 30


def test_a_scalar_log_writes_what_a_summary_writer_writes(tmp_path):
    from helpers.tensorboard import events, scalars
    from tensorboardX import SummaryWriter

    from s3prl_emo.training.batched.files import ScalarLog

    logged = [("emotion_multilabel-fold1/dev-loss", 0.5, 50), ("emotion_multilabel-fold1/dev-macro_f1", 0.25, 50)]
    for folder, writer in ((tmp_path / "runner", SummaryWriter), (tmp_path / "batched", ScalarLog)):
        log = writer(folder)
        for tag, value, step in logged:
            log.add_scalar(tag, value, global_step=step)
        log.close()
    assert scalars(tmp_path / "batched") == scalars(tmp_path / "runner") == {(t, s): v for t, v, s in logged}
    first = [events(tmp_path / folder)[0].file_version for folder in ("batched", "runner")]
    assert first == ["brain.Event:2", "brain.Event:2"]
