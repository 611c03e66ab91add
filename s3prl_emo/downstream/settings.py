"""Validate the whole ``downstream_expert`` block and the runner schedule before any work.

Every message names the config key (``downstream_expert.datarc.max_duration_s``) and what
it accepts, so a typo or a wrong type fails at once instead of deep inside torch or after
all audio is loaded.
"""

from __future__ import annotations

import math
from numbers import Real

from ..data.audio import SAMPLE_RATE
from ..data.layout import SPLITS, parse_fold
from ..errors import InvalidInputError
from ..runtime.guards import finite_number

DATARC_KEYS = frozenset(
    {
        "root", "corpus", "p_or_s", "test_fold", "label_file", "audio_dir", "pre_load", "train_batch_size",
        "eval_batch_size", "num_workers", "max_duration_s", "allow_leakage",
        "valid_ratio",  # EMO-SUPERB's, accepted and unused: dev comes from the partition file
    }
)  # fmt: skip
LOSS_NAMES = ("cbce", "ce")
LOSS_WEIGHTINGS = ("sample", "class")
BLOCKS = ("datarc", "modelrc", "loss")
# Options with a fixed set of values; the first is the default.
CHOICES = {
    # How the dev loss that selects dev-best is averaged: over utterances (each weighs the
    # same), or over batches as EMO-SUPERB's released code does (the last, smaller batch
    # weighs more).
    "dev_loss_average": ("utterance", "batch"),
    # What a *_predict.txt line holds when no class clears 1/C: nothing, which is what the
    # metric scored (and what EMO-SUPERB writes), or the top class, for people reading it.
    "predict_fallback": ("none", "top_class"),
    # What the head learns: the classes (soft labels, CBCE), the attributes of the label file
    # (EmoAct, EmoVal, EmoDom, scored by CCC), or both from one head.
    "task": ("categorical", "attributes", "both"),
    # The attribute loss: 1 - mean CCC over attributes per batch (the MSP-Podcast challenge
    # baseline's), or the mean squared error of standardised values.
    "attribute_loss": ("ccc", "mse"),
}
# Options of the attribute task that take a value rather than a choice.
ATTRIBUTE_KEYS = ("attributes", "attribute_weight")
# The crop's range in seconds: one sample at 16 kHz, and a bound that no recording reaches.
MIN_CROP_S = 1 / SAMPLE_RATE
MAX_CROP_S = 1e6


def _fail(key: str, expected: str, value) -> InvalidInputError:
    return InvalidInputError(f"{key}: expected {expected}, got {value!r}")


def _integer(block: dict, key: str, where: str, minimum: int) -> None:
    if key not in block:
        return
    value = block[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(f"{where}.{key}", f"an integer >= {minimum}", value)


def _boolean(block: dict, key: str, where: str) -> None:
    if key in block and not isinstance(block[key], bool):
        raise _fail(f"{where}.{key}", "true or false", block[key])


def _text(block: dict, key: str, where: str) -> None:
    if key in block and block[key] is not None and (not isinstance(block[key], str) or not block[key].strip()):
        raise _fail(f"{where}.{key}", "a non-empty string", block[key])


def _positive_number(block: dict, key: str, where: str) -> None:
    if key not in block:
        return
    value = block[key]
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise _fail(f"{where}.{key}", "a number > 0", value)


def _crop(block: dict, key: str, where: str) -> None:
    """A crop holds at least one sample (a shorter one would empty every file) and stays a count
    of samples that fits in memory arithmetic (``max_duration_s * 16000`` is finite)."""
    if key not in block:
        return
    value = block[key]
    number = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if not number or not MIN_CROP_S <= value <= MAX_CROP_S:
        raise _fail(
            f"{where}.{key}",
            f"a number of seconds in [{MIN_CROP_S:g}, {MAX_CROP_S:g}] (one sample at 16 kHz or more)",
            value,
        )


def check_datarc(datarc, where: str = "downstream_expert.datarc") -> None:
    if not isinstance(datarc, dict):
        raise _fail(where, "a mapping", datarc)
    unknown = sorted(set(datarc) - DATARC_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(DATARC_KEYS)}")
    for key in ("root", "corpus", "p_or_s", "label_file", "audio_dir"):
        _text(datarc, key, where)
    if datarc.get("test_fold") is not None:
        try:
            parse_fold(datarc["test_fold"])
        except InvalidInputError as err:
            raise InvalidInputError(f"{where}.test_fold: {err}") from None
    for key in ("pre_load", "allow_leakage"):
        _boolean(datarc, key, where)
    for key in ("train_batch_size", "eval_batch_size"):
        _integer(datarc, key, where, 1)
    _integer(datarc, "num_workers", where, 0)
    _crop(datarc, "max_duration_s", where)


def check_loss(lossrc, where: str = "downstream_expert.loss") -> None:
    if not isinstance(lossrc, dict):
        raise _fail(where, "a mapping", lossrc)
    unknown = sorted(set(lossrc) - {"name", "weighting", "beta"})
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown}; allowed: ['beta', 'name', 'weighting']")
    if lossrc.get("name", "cbce") not in LOSS_NAMES:
        raise _fail(f"{where}.name", f"one of {list(LOSS_NAMES)}", lossrc["name"])
    if lossrc.get("weighting", "sample") not in LOSS_WEIGHTINGS:
        raise _fail(f"{where}.weighting", f"one of {list(LOSS_WEIGHTINGS)}", lossrc["weighting"])
    beta = lossrc.get("beta")
    if beta is not None and (isinstance(beta, bool) or not isinstance(beta, Real) or not 0.0 <= beta < 1.0):
        raise _fail(f"{where}.beta", "a number in [0, 1), or null for (N - 1) / N", beta)


def check_modelrc_block(modelrc, where: str = "downstream_expert.modelrc") -> None:
    from .model import MODEL_ZOO, check_modelrc

    if not isinstance(modelrc, dict):
        raise _fail(where, "a mapping", modelrc)
    select = modelrc.get("select", "UtteranceLevel")
    if select not in MODEL_ZOO:
        raise _fail(f"{where}.select", f"one of {sorted(MODEL_ZOO)}", select)
    _integer(modelrc, "projector_dim", where, 1)
    if not isinstance(modelrc.get(select, {}), dict):
        raise _fail(f"{where}.{select}", "a mapping of the model's options", modelrc[select])
    check_modelrc(modelrc, where)


def check_runner(runner, where: str = "runner") -> None:
    """The keys S3PRL's training loop reads; ``total_steps`` 0 would train nothing and exit 0."""
    if runner is None:
        return
    if not isinstance(runner, dict):
        raise _fail(where, "a mapping", runner)
    for key in ("total_steps", "log_step", "eval_step", "save_step", "max_keep", "gradient_accumulate_steps"):
        _integer(runner, key, where, 1)
    if "gradient_clipping" in runner:
        _positive_number(runner, "gradient_clipping", where)
    splits = runner.get("eval_dataloaders", [])
    if not isinstance(splits, list) or any(split not in SPLITS for split in splits):
        raise _fail(f"{where}.eval_dataloaders", f"a list drawn from {list(SPLITS)}", splits)


def check_attribute_options(downstream_expert: dict, where: str = "downstream_expert") -> None:
    """``attributes``: null (every ``Emo*`` column) or a list of distinct column names;
    ``attribute_weight``: a number > 0 (the attribute loss's weight next to CBCE in ``both``)."""
    names = downstream_expert.get("attributes")
    if names is not None and (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n.strip() == n and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise _fail(f"{where}.attributes", "null (every Emo* column) or a list of distinct column names", names)
    _positive_number(downstream_expert, "attribute_weight", where)


def check_expert_config(downstream_expert, runner=None) -> None:
    """All of the above; raises ``InvalidInputError`` naming the first bad key."""
    if not isinstance(downstream_expert, dict):
        raise _fail("downstream_expert", "a mapping with datarc, modelrc and loss", downstream_expert)
    allowed_keys = [*BLOCKS, *CHOICES, *ATTRIBUTE_KEYS]
    unknown = sorted(set(downstream_expert) - set(allowed_keys))
    if unknown:
        raise InvalidInputError(f"downstream_expert: unknown key(s) {unknown}; allowed: {allowed_keys}")
    for key, allowed in CHOICES.items():
        if downstream_expert.get(key, allowed[0]) not in allowed:
            raise _fail(f"downstream_expert.{key}", f"one of {list(allowed)}", downstream_expert[key])
    check_attribute_options(downstream_expert)
    check_datarc(downstream_expert.get("datarc", {}))
    check_modelrc_block(downstream_expert.get("modelrc", {}))
    check_loss(downstream_expert.get("loss", {}))
    check_runner(runner)


def attribute_state(task: str, attributes, mean, std) -> dict:
    """The extra state of the attribute task (absent from categorical checkpoints)."""
    return {
        "task": task,
        "attributes": list(attributes),
        "attribute_mean": [float(m) for m in mean],
        "attribute_std": [float(s) for s in std],
    }


def checked_attribute_state(state: dict, where: str) -> tuple[str, tuple[str, ...], list[float], list[float]]:
    """A checkpoint's task, attributes and attribute mean and std; a checkpoint without them is categorical.

    Raises:
        InvalidInputError: naming the entry that is not what ``attribute_state`` writes.
    """
    task = state.get("task", CHOICES["task"][0])
    if task not in CHOICES["task"]:
        raise InvalidInputError(f"{where}.task: {task!r}; expected one of {list(CHOICES['task'])}")
    if task == "categorical":
        return task, (), [], []
    attributes = state.get("attributes")
    if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) and a for a in attributes):
        raise InvalidInputError(f"{where}.attributes: expected a list of column names, got {attributes!r}")
    out = []
    for key, low in (("attribute_mean", -math.inf), ("attribute_std", 0.0)):
        values = state.get(key)
        if not isinstance(values, list) or len(values) != len(attributes):
            raise InvalidInputError(f"{where}.{key}: expected {len(attributes)} numbers, got {values!r}")
        numbers = [finite_number(v, where=f"{where}.{key}", low=low) for v in values]
        if key == "attribute_std" and min(numbers) <= 0:
            raise InvalidInputError(f"{where}.{key}: a standard deviation must be > 0, got {values!r}")
        out.append(numbers)
    return task, tuple(attributes), out[0], out[1]
