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

import functools
import json
import logging
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call, vmap

from ...errors import InvalidInputError
from ...runtime import runlock
from ...runtime.checkpoints import load_checkpoint
from ..feature_store import StoreOptions
from .engine import PooledForward, RunStack, adam_recipe, run_parameters
from .files import (
    TRAINER_KEY,
    ScalarLog,
    expert_view,
    load_optimizer_state,
    optimizer_state,
    serialised,
    write_checkpoints,
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
    runner: dict
    step: int = 0
    epoch: int = 0
    order: list[torch.Tensor] | None = None
    position: int = 0
    backward_steps: int = 0
    records: dict = field(default_factory=lambda: defaultdict(list))
    pending: list = field(default_factory=list)  # (tick entry, row in it, batch) since the last log
    writer: object = None
    signature: tuple = ()
    state: dict | None = None  # the Adam state by name until the stack takes it
    stack: RunStack | None = None
    row: int = 0

    @functools.cached_property
    def name(self) -> str:
        return str(self.setup.expdir)

    @property
    def seed(self) -> int:
        return int(self.setup.args.seed)

    @property
    def total(self) -> int:
        return int(self.runner["total_steps"])

    @property
    def accumulate(self) -> int:
        return int(self.runner.get("gradient_accumulate_steps") or 1)


class _Entry:
    """One tick's training outputs of a group of runs, read back only when a run logs or saves."""

    __slots__ = ("losses", "probs")

    def __init__(self, losses: torch.Tensor, probs: torch.Tensor):
        self.losses, self.probs = losses, probs

    def read(self) -> None:
        if isinstance(self.losses, torch.Tensor):
            self.losses, self.probs = self.losses.tolist(), self.probs.cpu().numpy()


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
        for setup in setups:
            try:
                run = self._build(setup)
                self._resume(run)
                self.runs.append(run)
            except (InvalidInputError, RuntimeError, ValueError, KeyError, OSError) as err:
                self._fail(setup, err)
        self.shared.share_features()
        self.stacks: list[RunStack] = []
        by_key: dict[tuple, list[_Run]] = defaultdict(list)
        for run in self.runs:
            if run.step < run.total:
                by_key[(run.signature, adam_recipe(run.optimizer))].append(run)
        for (_, recipe), runs in by_key.items():
            # runs of one learning rate and weight decay side by side: one fused update each
            runs.sort(key=lambda r: tuple(float(r.optimizer.param_groups[0][k]) for k in ("lr", "weight_decay")))
            self.stacks.append(self._stack(runs, recipe))

    def _stack(self, runs: list[_Run], recipe: tuple) -> RunStack:
        stack = RunStack(
            runs[0].module,
            [r.params for r in runs],
            [r.state or {} for r in runs],
            recipe,
            lr=[float(r.optimizer.param_groups[0]["lr"]) for r in runs],
            weight_decay=[float(r.optimizer.param_groups[0]["weight_decay"]) for r in runs],
            max_norm=[float(r.runner["gradient_clipping"]) for r in runs],
        )
        for row, run in enumerate(runs):
            run.stack, run.row, run.state = stack, row, None
        _members(stack, runs)
        return stack

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
        params = run_parameters(feat_holder, head)
        recipe = adam_recipe(optimizer)
        if isinstance(recipe, str):  # fallback_reason refuses these first
            raise InvalidInputError(f"batched trainer: {recipe}")
        if [id(p) for p in optimizer.param_groups[0]["params"]] != [id(p) for p in params.values()]:
            raise InvalidInputError("batched trainer: the optimizer holds parameters other than Featurizer and head")
        scheduler = None
        if setup.config.get("scheduler"):
            scheduler = get_scheduler(optimizer, runner["total_steps"], setup.config["scheduler"])
        optimizer._opt_called = True  # the stack steps for it: the scheduler's order check holds
        generator = torch.Generator()
        generator.set_state(after)
        run = _Run(setup, fold, view, module, params, optimizer, scheduler, generator, runner)
        run.writer = ScalarLog(setup.expdir)
        run.feat_holder = feat_holder
        run.signature = _signature(module)
        if not hasattr(fold, "loss"):  # the fold's objective over runs: one call for all its runs
            fold.loss = vmap(expert.objective)
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
        run.state = load_optimizer_state(run.optimizer, run.params, state["Optimizer"])
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
        for run in self.runs:
            if run.step >= run.total:
                self._finish(run)
        ticks = 0
        while self.stacks:
            self._tick()
            ticks += 1
            self._leave()
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

    def _leave(self) -> None:
        """Runs that are done or failed leave their stack (the stack keeps the others' rows)."""
        kept = []
        for stack in self.stacks:
            staying = []
            for run in stack.runs:
                if run.name in self.outcomes:
                    continue
                if run.step >= run.total:
                    self._finish(run)
                else:
                    staying.append(run)
            if len(staying) < len(stack.runs) and staying:
                stack.keep([r.row for r in staying])
                for row, run in enumerate(staying):
                    run.row = row
                _members(stack, staying)
            stack.runs = staying
            if staying:
                kept.append(stack)
        self.stacks = kept

    def _finish(self, run: _Run) -> None:
        run.writer.close()
        report = {"trainer": "batched", "steps": run.step, "dev_best_loss": float(run.view.best_score.item())}
        (run.setup.expdir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        runlock.release(run.setup.expdir / runlock.LOCK_NAME)
        self.outcomes[run.name] = RunOutcome(run.setup.argv, run.name, "done", steps=run.step)

    def _tick(self) -> None:
        """One batch for every active run; then the optimizer step of those whose accumulation is complete."""
        stepping = []
        for stack in self.stacks:
            rows = self._forward_backward(stack)
            if rows:
                stepping += self._optimize(stack, rows)
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
            if saves[run.name] or run.step % int(run.runner["save_step"]) == 0:
                self._guarded(run, lambda r: self._save(r, saves[r.name]))

    def _forward_backward(self, stack: RunStack) -> list[int]:
        """Each run's batch through the stacked forward (runs with batches of one size together), its
        loss by its fold's objective, one backward; the rows whose gradient accumulation is complete."""
        runs = stack.runs
        batches = [_next_batch(r) for r in runs]
        sizes: dict[int, list[int]] = defaultdict(list)
        for row, batch in enumerate(batches):
            sizes[len(batch)].append(row)
        total = 0
        for rows in sizes.values():
            groups = _by_fold(runs, rows)  # one gather per fold
            order = [row for group in groups for row in group]
            index = [torch.stack([batches[r] for r in group]) for group in groups]
            stored = torch.cat([runs[g[0]].fold.stored("train", i) for g, i in zip(groups, index, strict=True)])
            targets = torch.cat([runs[g[0]].fold.labels["train"][i] for g, i in zip(groups, index, strict=True)])
            position = None if order == rows else torch.as_tensor([order.index(r) for r in rows])
            if position is not None:  # back to the stack's order
                stored, targets = stored[position], targets[position]
            everything = len(rows) == len(runs)
            logits = stack.logits(stored, None if everything else rows)
            if stack.objective is not None:  # one call for all runs: each with its fold's class weights
                buffers = stack.objective_buffers
                if not everything:
                    buffers = {name: value[rows] for name, value in buffers.items()}
                loss = stack.objective(buffers, logits, targets)
            else:
                losses = []
                for group in groups:
                    at = [rows.index(r) for r in group]
                    losses.append(runs[group[0]].fold.loss(logits[at], targets[at]))
                loss = torch.cat(losses) if position is None else torch.cat(losses)[position]
            accumulate = stack.accumulate if everything else stack.accumulate[rows]
            total = total + (loss / accumulate).sum()
            entry = _Entry(loss.detach(), torch.softmax(logits.detach(), dim=-1))
            for i, row in enumerate(rows):
                runs[row].pending.append((entry, i, batches[row]))
        total.backward()
        stepping = []
        for row, run in enumerate(runs):
            run.backward_steps += 1
            if run.backward_steps % run.accumulate == 0:
                stepping.append(row)
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

    def _optimize(self, stack: RunStack, rows: list[int]) -> list[_Run]:
        """Clip each run by its own norm, step the runs whose norm is a number, zero, schedule."""
        runs = stack.runs
        mask = None
        if len(rows) < len(runs):
            mask = torch.zeros(len(runs), dtype=torch.bool)
            mask[rows] = True
        norms = stack.clip(mask)
        nan = torch.isnan(norms)
        if mask is None and not bool(nan.any()):
            stack.update(None)
        else:
            updating = []
            for row in rows:
                if nan[row]:
                    print(f"[Runner] - grad norm is NaN at step {runs[row].step + 1} ({runs[row].name})")
                else:
                    updating.append(row)
            if updating:
                stack.update(torch.tensor(updating))
        stack.zero_grad(mask)
        scheduled = [row for row in rows if runs[row].scheduler is not None]
        for row in scheduled:
            runs[row].scheduler.step()
        if scheduled:
            lrs = [float(runs[row].optimizer.param_groups[0]["lr"]) for row in scheduled]
            stack.lr[scheduled] = torch.tensor(lrs, dtype=stack.lr.dtype)
        return [runs[row] for row in rows]

    def _read_pending(self, run: _Run) -> None:
        """The training records since the last log, from the ticks' outputs (read now, not at every step):
        per batch its loss and size, and the batches' probabilities, labels and names as one block."""
        if not run.pending:
            return
        records = run.records
        for entry, _, _ in run.pending:
            entry.read()
        records["batch_loss"] += [entry.losses[i] for entry, i, _ in run.pending]
        records["batch_size"] += [len(batch) for _, _, batch in run.pending]
        records["probs"].append(np.concatenate([entry.probs[i] for entry, i, _ in run.pending]))
        index = torch.cat([batch for _, _, batch in run.pending]).numpy()
        records["labels"].append(run.fold.label_arrays["train"][index])
        names = run.fold.names["train"]
        records["names"] += [names[j] for j in index.tolist()]
        run.pending = []

    def _log_train(self, run: _Run) -> None:
        self._read_pending(run)
        run.view.log_records("train", records=run.records, logger=run.writer, global_step=run.step)
        run.records = defaultdict(list)

    def _evaluate(self, runs: list[_Run], split: str, saves: dict) -> None:
        """``Runner.evaluate(split)`` for the runs of one fold at once: their random state re-seeded,
        one stacked forward per stack, then each run's records in eval batches for its expert."""
        runs = [r for r in runs if r.name not in self.outcomes]
        if not runs:
            return
        fold = runs[0].fold
        logits = {}
        with torch.no_grad():
            by_stack: dict[int, list[_Run]] = defaultdict(list)
            for run in runs:
                by_stack[id(run.stack)].append(run)
            for group in by_stack.values():
                stack = group[0].stack
                rows = [r.row for r in group]
                out = stack.logits(fold.stored(split), None if rows == list(range(len(stack))) else rows, shared=True)
                logits.update({id(r): out[i] for i, r in enumerate(group)})
        for run in runs:
            run.generator.manual_seed(run.seed)
            _draw(run.generator)  # the evaluation DataLoader's base seed

            def job(r: _Run, split=split) -> None:
                saves[r.name] += self._records_and_log(r, split, logits[id(r)])

            self._guarded(run, job)

    def _records_and_log(self, run: _Run, split: str, logits: torch.Tensor) -> list[str]:
        _sync(run)  # the expert keys its dev thresholds by its head's weights
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
            names = [*names, f"states-{run.step}.ckpt"]
        if not names:
            return
        _sync(run)
        self._read_pending(run)
        state = {
            "Optimizer": optimizer_state(run.optimizer, run.params, run.stack.run_state(run.row)),
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
        # dev-best's evaluation files are this step's: kept for the sweep
        best = (run.view.fold, list(run.runner["eval_dataloaders"]), run.step) if "dev-best.ckpt" in names else None
        write_checkpoints(run.setup.expdir, serialised(state), names, int(run.runner["max_keep"]), best)


def _sync(run: _Run) -> None:
    """The run's own modules take its row of the stack (the weights its checkpoints and expert read)."""
    with torch.no_grad():
        for name, value in run.stack.run_values(run.row).items():
            run.params[name].copy_(value)


def _objective_key(objective: nn.Module) -> tuple:
    settings = {k: repr(v) for k, v in vars(objective).items() if not k.startswith("_") and k != "training"}
    return type(objective), tuple(sorted(settings.items())), tuple(name for name, _ in objective.named_buffers())


def _members(stack: RunStack, runs: list[_Run]) -> None:
    """What the stack needs of its runs each tick: their accumulation, and their objectives as one call
    (``functional_call`` of one objective with each run's buffers, e.g. its fold's class weights,
    directly on the (R, B, C) logits when the objective reduces its last two dimensions only, else
    under ``vmap``) when the runs' objectives differ in buffers only; else the per-fold objectives
    are called in turn."""
    stack.runs = runs
    stack.accumulate = torch.tensor([float(r.accumulate) for r in runs])
    objectives = [r.fold.expert.objective for r in runs]
    stack.objective = None
    if len({_objective_key(o) for o in objectives}) == 1 and not list(objectives[0].parameters()):
        template = objectives[0]
        stack.objective_buffers = {
            name: torch.stack([dict(o.named_buffers())[name] for o in objectives])
            for name, _ in template.named_buffers()
        }

        def one(buffers: dict, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return functional_call(template, buffers, (logits, targets))

        def over_runs(buffers: dict, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            rows = {name: value.unsqueeze(1) for name, value in buffers.items()}  # (R, 1, ...) against (R, B, C)
            return functional_call(template, rows, (logits, targets))

        stack.objective = over_runs if getattr(template, "leading_dims", False) else vmap(one)


def _by_fold(runs: list[_Run], rows: list[int]) -> list[list[int]]:
    """``rows`` grouped by their runs' fold, each group in row order."""
    groups: dict[int, list[int]] = {}
    for row in rows:
        groups.setdefault(id(runs[row].fold), []).append(row)
    return list(groups.values())


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
