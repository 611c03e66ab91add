"""The batched training loop: S3PRL Runner's ``train`` for many runs at once.

Per run, what ``Runner.train`` does, in its order: a batch from the sampler (a fresh
``RandomSampler`` order per epoch, drawn from the run's own copy of the global random state,
which ``Runner.evaluate`` re-seeds at every evaluation), forward and backward (the loss
divided by ``gradient_accumulate_steps``), every ``gradient_accumulate_steps`` batches
clipping by the run's gradient norm, the optimizer step (skipped on a NaN norm), the
scheduler step, then the train log, the evaluation of ``eval_dataloaders`` and the saves
at their cadence. Runs of any length, batch size, accumulation and cadence share the loop;
a run that is done, or fails, leaves it. See the package docstring for the parts.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ...errors import InvalidInputError
from ...runtime import runlock
from ...runtime.checkpoints import load_checkpoint
from ..feature_store import StoreOptions
from .engine import PooledForward, Stack, run_parameters
from .files import (
    TRAINER_KEY,
    expert_view,
    load_optimizer_state,
    make_room,
    optimizer_state,
    save_atomic,
    snapshot_best_scores,
)
from .setup import FoldData, RunSetup, Shared, fallback_reason, head_for, read_run

logger = logging.getLogger(__name__)
REPORT_FILE = "batched.json"


@dataclass
class RunOutcome:
    """How one run of a batched group ended: ``done`` or ``failed`` (with the error), or the fallback reason."""

    argv: list[str]
    expdir: str
    status: str  # done | failed | fallback
    detail: str = ""
    steps: int = 0


@dataclass
class _Run:
    setup: RunSetup
    fold: FoldData
    view: nn.Module
    module: PooledForward
    params: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: object
    generator: torch.Generator
    seed: int
    total: int
    runner: dict
    step: int = 0
    epoch: int = 0
    order: list[torch.Tensor] | None = None
    position: int = 0
    backward_steps: int = 0
    records: dict = field(default_factory=lambda: defaultdict(list))
    writer: object = None
    signature: tuple = ()

    @property
    def name(self) -> str:
        return str(self.setup.expdir)


def _draw(generator: torch.Generator) -> int:
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def _epoch_batches(run: _Run) -> list[torch.Tensor]:
    """A ``DataLoader(shuffle=True)`` epoch as the Runner iterates it from the global random state:
    the loader's base seed, then the ``RandomSampler``'s seed, then its permutation."""
    _draw(run.generator)
    permutation = torch.Generator()
    permutation.manual_seed(_draw(run.generator))
    order = torch.randperm(len(run.fold.names["train"]), generator=permutation)
    size = int(run.view.datarc["train_batch_size"])
    return list(order.split(size))


def _next_batch(run: _Run) -> torch.Tensor:
    if run.order is None:
        run.order, run.position = _epoch_batches(run), 0
    elif run.position >= len(run.order):
        run.epoch += 1
        run.order, run.position = _epoch_batches(run), 0
    batch = run.order[run.position]
    run.position += 1
    return batch


def _signature(module: PooledForward) -> tuple:
    return (repr(module), *tuple((n, tuple(p.shape)) for n, p in module.named_parameters()))


class Trainer:
    """Builds the runs of one group and trains them together; see the module docstring."""

    last_peak_mb: float = 0.0

    def __init__(self, setups: list[RunSetup], options: StoreOptions):
        self.shared = Shared(options)
        self.runs: list[_Run] = []
        self.outcomes: dict[str, RunOutcome] = {}
        self.stacks: dict[tuple, Stack] = {}
        for setup in setups:
            try:
                self.runs.append(self._build(setup))
            except (InvalidInputError, RuntimeError, ValueError, KeyError, OSError) as err:
                self._fail(setup, err)
        groups = [g for r in self.runs for g in r.optimizer.param_groups]
        kinds = {type(r.optimizer) for r in self.runs}
        self.combined = None
        if len(kinds) == 1:
            kind = kinds.pop()
            accepted = inspect.signature(kind.__init__).parameters
            defaults = {k: v for k, v in self.runs[0].optimizer.defaults.items() if k in accepted}
            self.combined = kind(groups, **defaults)
            for group in groups:  # the multi-tensor update: the same elementwise arithmetic, fewer calls
                if group.get("foreach") is None and "foreach" in accepted:
                    group["foreach"] = True
        elif kinds:
            raise InvalidInputError(
                f"batched trainer: one optimizer class per group, got {sorted(k.__name__ for k in kinds)}"
            )
        for run in self.runs:
            self._resume(run)

    def _fail(self, setup: RunSetup, err: BaseException) -> None:
        message = f"{type(err).__name__}: {err}"
        logger.error("%s: failed: %s", setup.expdir, message)
        self.outcomes[str(setup.expdir)] = RunOutcome(setup.argv, str(setup.expdir), "failed", message)

    def _build(self, setup: RunSetup) -> _Run:
        from s3prl.optimizers import get_optimizer
        from s3prl.schedulers import get_scheduler

        runlock.acquire(setup.expdir)
        fold = self.shared.fold(setup)
        expert = fold.expert
        featurizer = self.shared.featurizer(setup)
        modelrc = setup.config["downstream_expert"].get("modelrc", {})
        upstream_dim = int(featurizer.output_dim)
        head, after = head_for(upstream_dim, len(expert.classes), modelrc, self.shared.rng_before_expert(setup))
        layers = int(featurizer.layer_num) if isinstance(getattr(featurizer, "weights", None), nn.Parameter) else None
        module = PooledForward(head, layers)
        if layers:
            module.weights.data.copy_(featurizer.weights.detach())
        view = expert_view(expert, setup.expdir, head)
        feat_holder = nn.Module()
        if layers:
            feat_holder.weights = module.weights
        runner = setup.config["runner"]
        optimizer = get_optimizer([feat_holder, view], runner["total_steps"], setup.config["optimizer"])
        scheduler = None
        if setup.config.get("scheduler"):
            scheduler = get_scheduler(optimizer, runner["total_steps"], setup.config["scheduler"])
        generator = torch.Generator()
        generator.set_state(after)
        from tensorboardX import SummaryWriter

        run = _Run(
            setup=setup,
            fold=fold,
            view=view,
            module=module,
            params=run_parameters(feat_holder, head),
            optimizer=optimizer,
            scheduler=scheduler,
            generator=generator,
            seed=int(setup.args.seed),
            total=int(runner["total_steps"]),
            runner=runner,
            writer=SummaryWriter(str(setup.expdir)),
        )
        run.feat_holder = feat_holder
        run.signature = _signature(module)
        return run

    def _resume(self, run: _Run) -> None:
        """From ``args.init_ckpt`` (S3PRL's ``-a``/``-e``): weights, optimizer, scheduler, step; and the
        sampler position and random state when a batched run wrote it (else the Runner's restart of the epoch)."""
        path = getattr(run.setup.args, "init_ckpt", None)
        if not path:
            return
        state = load_checkpoint(path)
        if "weights" in run.params and "Featurizer" in state:
            run.feat_holder.load_state_dict(state["Featurizer"])
        run.view.load_state_dict(state["Downstream"])
        load_optimizer_state(run.optimizer, self.combined, state["Optimizer"])
        if run.scheduler is not None and "Scheduler" in state:
            run.scheduler.load_state_dict(state["Scheduler"])
        run.step, run.epoch = int(state.get("Step", 0)), int(state.get("Epoch", 0))
        extra = state.get(TRAINER_KEY)
        if isinstance(extra, dict):
            run.generator.set_state(extra["generator"])
            run.order = [torch.as_tensor(b) for b in extra["order"]] if extra.get("order") is not None else None
            run.position = int(extra["position"])
            run.backward_steps = int(extra["backward_steps"])
            for key, value in (extra.get("records") or {}).items():
                run.records[key] = list(value)

    # --- the loop ---
    def train(self) -> list[RunOutcome]:
        started = time.perf_counter()
        active = [r for r in self.runs if r.step < r.total]
        for run in self.runs:
            if run.step >= run.total:
                self._finish(run)
        ticks = 0
        while active:
            self._tick(active)
            ticks += 1
            for run in [r for r in active if r.step >= r.total or r.name in self.outcomes]:
                active.remove(run)
                if run.name not in self.outcomes:
                    self._finish(run)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Trainer.last_peak_mb = peak
        self.report = {
            "runs": len(self.runs),
            "ticks": ticks,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": peak,
        }
        logger.info("batched: %d runs, %d ticks, peak RSS %.0f MB", len(self.runs), ticks, peak)
        return list(self.outcomes.values())

    def _finish(self, run: _Run) -> None:
        run.writer.close()
        report = {"trainer": "batched", "steps": run.step, "dev_best_loss": float(run.view.best_score.item())}
        (run.setup.expdir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        runlock.release(run.setup.expdir / runlock.LOCK_NAME)
        self.outcomes[run.name] = RunOutcome(run.setup.argv, run.name, "done", steps=run.step)

    def _stack(self, run: _Run) -> Stack:
        if run.signature not in self.stacks:
            self.stacks[run.signature] = Stack(run.module)
        return self.stacks[run.signature]

    def _tick(self, active: list[_Run]) -> None:
        """One batch for every active run; then the optimizer step of those whose accumulation is complete."""
        stepping = self._forward_backward(active)
        if stepping:
            self._optimize(stepping)
        evaluations: dict[int, list[_Run]] = defaultdict(list)
        for run in stepping:
            run.step += 1
            if run.step % int(run.runner["log_step"]) == 0:
                self._guarded(run, self._log_train)
            if run.step % int(run.runner["eval_step"]) == 0 and run.name not in self.outcomes:
                evaluations[id(run.fold)].append(run)
        saves = {run.name: [] for run in stepping}
        for runs in evaluations.values():
            for split in runs[0].runner["eval_dataloaders"]:
                self._evaluate(runs, split, saves)
        for run in stepping:
            self._guarded(run, lambda r: self._save(r, saves[r.name]))

    def _forward_backward(self, active: list[_Run]) -> list[_Run]:
        """Each run's batch through the stacked forward, its loss by its own objective, one backward;
        the runs whose gradient accumulation is complete."""
        batches = {id(r): _next_batch(r) for r in active}
        groups: dict[tuple, list[_Run]] = defaultdict(list)
        for run in active:
            groups[(run.signature, len(batches[id(run)]))].append(run)
        losses = []
        for runs in groups.values():
            stored = torch.stack([r.fold.features["train"][batches[id(r)]] for r in runs])
            logits = self._stack(runs[0]).logits([r.params for r in runs], stored, shared=False)
            probs = torch.softmax(logits.detach(), dim=-1).numpy()
            for i, run in enumerate(runs):
                index = batches[id(run)]
                losses.append((run, run.view.objective(logits[i], run.fold.labels["train"][index])))
                names = run.fold.names["train"]
                run.records["batch_size"].append(len(index))
                run.records["probs"].append(probs[i])
                run.records["labels"].append(run.fold.label_arrays["train"][index.numpy()])
                run.records["names"].extend(names[j] for j in index.tolist())
        values = torch.stack([loss for _, loss in losses]).tolist()
        total = sum(loss / float(run.runner.get("gradient_accumulate_steps")) for run, loss in losses)
        total.backward()
        stepping = []
        for (run, _), value in zip(losses, values, strict=True):
            run.records["batch_loss"].append(value)
            run.backward_steps += 1
            if run.backward_steps % int(run.runner.get("gradient_accumulate_steps")) == 0:
                stepping.append(run)
        return stepping

    def _guarded(self, run: _Run, job) -> None:
        if run.name in self.outcomes:
            return
        try:
            job(run)
        except Exception as err:  # one run's failure (its files, its values) ends that run only
            self._fail(run.setup, err)
            run.writer.close()
            runlock.release(run.setup.expdir / runlock.LOCK_NAME)

    def _optimize(self, stepping: list[_Run]) -> None:
        """Clip each run by its own norm, step the runs whose norm is a number, zero, schedule."""
        updating = []
        for run in stepping:
            params = list(run.params.values())
            norm = float(torch.nn.utils.clip_grad_norm_(params, run.runner["gradient_clipping"]))
            if math.isnan(norm):
                print(f"[Runner] - grad norm is NaN at step {run.step + 1} ({run.name})")
            else:
                updating.append(run)
        if updating:
            saved = self.combined.param_groups
            self.combined.param_groups = [g for r in updating for g in r.optimizer.param_groups]
            try:
                self.combined.step()
            finally:
                self.combined.param_groups = saved
        for run in stepping:
            for p in run.params.values():
                p.grad = None
            if run.scheduler is not None:
                run.scheduler.step()

    def _log_train(self, run: _Run) -> None:
        run.view.log_records("train", records=run.records, logger=run.writer, global_step=run.step)
        run.records = defaultdict(list)

    def _evaluate(self, runs: list[_Run], split: str, saves: dict) -> None:
        """``Runner.evaluate(split)`` for the runs of one fold at once: their random state re-seeded,
        one stacked forward, then each run's records in eval batches for its expert."""
        runs = [r for r in runs if r.name not in self.outcomes]
        if not runs:
            return
        fold = runs[0].fold
        with torch.no_grad():
            by_signature: dict[tuple, list[_Run]] = defaultdict(list)
            for run in runs:
                by_signature[run.signature].append(run)
            logits = {}
            for group in by_signature.values():
                out = self._stack(group[0]).logits([r.params for r in group], fold.features[split], shared=True)
                logits.update({id(r): out[i] for i, r in enumerate(group)})
        for run in runs:
            run.generator.manual_seed(run.seed)
            _draw(run.generator)  # the evaluation DataLoader's base seed

            def job(r: _Run, split=split) -> None:
                saves[r.name] += self._records_and_log(r, split, logits[id(r)])

            self._guarded(run, job)

    def _records_and_log(self, run: _Run, split: str, logits: torch.Tensor) -> list[str]:
        size = int(run.view.datarc["eval_batch_size"])
        labels, arrays, names = run.fold.labels[split], run.fold.label_arrays[split], run.fold.names[split]
        records = defaultdict(list)
        probs = torch.softmax(logits, dim=-1).numpy()
        with torch.no_grad():
            for start in range(0, len(names), size):
                end = min(start + size, len(names))
                records["batch_loss"].append(run.view.objective(logits[start:end], labels[start:end]).item())
                records["batch_size"].append(end - start)
                records["probs"].append(probs[start:end])
                records["labels"].append(arrays[start:end])
                records["names"].extend(names[start:end])
        saved = run.view.log_records(split, records=records, logger=run.writer, global_step=run.step)
        return list(saved) if isinstance(saved, list) else []

    def _save(self, run: _Run, names: list[str]) -> None:
        if run.step % int(run.runner["save_step"]) == 0:
            make_room(run.setup.expdir, int(run.runner["max_keep"]))
            names = [*names, f"states-{run.step}.ckpt"]
        if not names:
            return
        state = {
            "Optimizer": optimizer_state(run.optimizer, self.combined),
            "Step": run.step,
            "Epoch": run.epoch,
            "Args": run.setup.args,
            "Config": run.setup.config,
        }
        if "weights" in run.params:
            state["Featurizer"] = {"weights": run.params["weights"].detach().clone()}
        state["Downstream"] = run.view.state_dict()
        if run.scheduler is not None:
            state["Scheduler"] = run.scheduler.state_dict()
        state[TRAINER_KEY] = {
            "generator": run.generator.get_state(),
            "order": None if run.order is None else [b.clone() for b in run.order],
            "position": run.position,
            "backward_steps": run.backward_steps,
            "records": _portable(run.records),
        }
        for name in names:
            save_atomic(state, run.setup.expdir / name)
        if "dev-best.ckpt" in names:  # this step's evaluation files are dev-best's: kept for the sweep
            snapshot_best_scores(run.setup.expdir, run.view.fold, list(run.runner["eval_dataloaders"]), run.step)


def _portable(records: dict) -> dict:
    """Training records since the last log, as lists and tensors (what a weights-only load reads)."""
    out = {}
    for key, value in records.items():
        if key in ("probs", "labels"):
            out[key] = [torch.from_numpy(np.ascontiguousarray(v)) for v in value]
        else:
            out[key] = list(value)
    return out


def train_batched(argvs: list[list[str]], options: StoreOptions) -> list[RunOutcome]:
    """Train each ``s3prl-emo train ARGV`` of ``argvs`` together; runs the batched path cannot honour
    are returned as ``fallback`` with the reason (train them with ``s3prl-emo train``).

    Examples:
        >>> outcomes = train_batched([argv_fold1, argv_fold2], StoreOptions(cache_dir="cache"))  # doctest: +SKIP
        >>> [o.status for o in outcomes]  # doctest: +SKIP
        ['done', 'done']
    """
    setups, outcomes = [], []
    for argv in argvs:
        setup = read_run(argv)
        reason = fallback_reason(setup.config, setup.args, options)
        if reason:
            logger.warning("%s: trained as --trainer fast trains it: %s", setup.expdir, reason)
            outcomes.append(RunOutcome(argv, str(setup.expdir), "fallback", reason))
        else:
            setups.append(setup)
    if setups:
        trainer = Trainer(setups, options)
        for run in trainer.runs:
            if run.records and "probs" in run.records:  # resumed records hold tensors: back to arrays
                run.records["probs"] = [np.asarray(p) for p in run.records["probs"]]
                run.records["labels"] = [np.asarray(p) for p in run.records["labels"]]
        outcomes += trainer.train()
        train_batched.last_report = trainer.report
    return outcomes
