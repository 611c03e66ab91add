"""Cross-corpus evaluation: a trained model scored on another condition's test utterances.

The protocol (EmoBox, arXiv 2406.07162, tests across corpora on the classes they share;
SER Evals, arXiv 2408.07851, reports in- and out-of-domain scores side by side):

1. Utterances: the target condition's test sets, pooled over its folds (each utterance once;
   a cross-validated corpus thus contributes every utterance, a PODCAST-style corpus its
   Test set). Another corpus's speakers are never the model's, so every utterance is
   speaker-independent. On the model's *own* corpus (same corpus folder, e.g. IMPROV_S for a
   model of IMPROV_P) only the test set of the model's fold is used, since the other folds'
   test sets hold its training speakers: that is the diagonal of a train x test matrix.
2. Classes (``match_classes``): those both sides share, matched by name through the label
   policy's aliases (``labels.canonical_class``: "Anger" and "angry" are one class), or as a
   class map says (``read_class_map``: ``excited = "happy"`` scores the target's excited
   column against the model's happy output). Several target classes may map onto one model
   class; their soft labels are added. Fewer than two shared classes is an error.
3. Restriction (``restrict_rows``): the model's probabilities and the target's soft labels
   keep the shared columns only, and each row is divided by its sum over them. A row whose
   sum is 0 becomes uniform (1/C' each), which the 1/C' rule reads as "no class": such an
   utterance counts only through the false positives a model predicts for it. (Smoothed
   soft labels never sum to 0; an utterance voted only for classes outside the shared set
   comes out uniform, hence "no class", in the same way.) A side whose every column is kept
   in place (all of the model's classes are shared) is used as it is: its rows already sum
   to 1 up to rounding, and dividing again could only move a value across 1/C'.
4. Scores (``metrics.score``): binarised by the package's rule, value > 1/C' with C' the
   number of shared classes, in truth and prediction alike; macro-F1 over the shared classes,
   per-class, micro, weighted and samples F1 as the expert reports them.

Audio is read as the expert reads it (the checkpoint's crop and train-split waveform
statistics, batches of the run's ``eval_batch_size`` in label-file order), so a model
evaluated on its own condition reproduces its own test figures. A one-pass run
(``s3prl-emo train``) is evaluated from its feature store (``stored_inference``), as its
own test figures were.

Output folder (``write_cross_eval``; default ``EXP/cross/<condition>/``): ``metrics.json``,
``probs.csv`` and ``labels.csv`` (FileName + shared classes: the model's probabilities and
the target's soft labels, restricted and renormalised), and EMO-SUPERB's ``predict.txt`` /
``truth.txt`` (``FileName emo1;emo2``).
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import canonical_class
from ..data.layout import fold_name, parse_fold
from ..errors import InvalidInputError
from ..metrics import binarize, score
from ..runtime.paths import Pathlike

logger = logging.getLogger(__name__)

COMMAND = "cross-eval"
METRICS_FILE = "metrics.json"
PROBS_FILE = "probs.csv"
LABELS_FILE = "labels.csv"
PREDICT_FILE = "predict.txt"
TRUTH_FILE = "truth.txt"
CROSS_DIR = "cross"


# -- classes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMatch:
    """Which target columns are scored against which model output.

    ``shared`` are model class names in the model's column order; ``model_columns[j]`` is
    the model column of ``shared[j]`` and ``target_columns[j]`` the target columns whose
    soft labels are added for it. ``mapping`` is target class -> model class for every
    target class that is scored.
    """

    model_classes: tuple[str, ...]
    target_classes: tuple[str, ...]
    shared: tuple[str, ...]
    model_columns: tuple[int, ...]
    target_columns: tuple[tuple[int, ...], ...]
    mapping: dict[str, str] = field(default_factory=dict)
    mapped_by_file: tuple[str, ...] = ()  # target classes the class map placed

    def to_json(self) -> dict:
        """The mapping as ``metrics.json`` records it, with the classes left unscored on each side."""
        return {
            "model_classes": list(self.model_classes),
            "target_classes": list(self.target_classes),
            "shared_classes": list(self.shared),
            "mapping": dict(self.mapping),
            "mapped_by_map_file": list(self.mapped_by_file),
            "unscored_target_classes": [c for c in self.target_classes if c not in self.mapping],
            "unscored_model_classes": [c for c in self.model_classes if c not in self.shared],
        }


def _same_class(a: str, b: str) -> bool:
    """One class spelled two ways: either name is an alias (or case variant) of the other."""
    return canonical_class(a, [b]) is not None or canonical_class(b, [a]) is not None


def match_classes(
    model_classes: Sequence[str],
    target_classes: Sequence[str],
    class_map: Mapping[str, str] | None = None,
    *,
    only: Sequence[str] | None = None,
    map_source: str = "--map",
    minimum: int = 2,
) -> ClassMatch:
    """The classes a model and a target condition share, by name, aliases or ``class_map``.

    Args:
        model_classes: the model's output classes, in column order.
        target_classes: the target's label columns, in order.
        class_map: target class -> model class; it decides for every target class it names
            (names match case-insensitively), the others match by name through the label
            policy's aliases (``labels.COMMON_ALIASES``).
        only: score only these of the shared classes (model names), e.g. to put a model's
            in-corpus score on the classes its cross-corpus scores share.
        map_source: where ``class_map`` came from, for messages.
        minimum: the fewest shared classes accepted (a plan counts them with 0).

    Returns:
        a ``ClassMatch``; several target classes may feed one model class.

    Raises:
        InvalidInputError: ``class_map`` names a class that neither list has (both lists
            are named), ``only`` names a class that is not shared, or fewer than two classes
            (``minimum``) are shared.

    Examples:
        >>> m = match_classes(["angry", "sad", "neutral", "happy", "fear"],
        ...                   ["Anger", "happy", "sad", "neutral", "surprise"])
        >>> m.shared, m.mapping
        (('angry', 'sad', 'neutral', 'happy'), {'Anger': 'angry', 'happy': 'happy', 'sad': 'sad', 'neutral': 'neutral'})
        >>> match_classes(["angry", "happy"], ["angry", "happy", "excited"], {"excited": "happy"}).target_columns
        ((0,), (1, 2))
    """
    model_classes, target_classes = tuple(model_classes), tuple(target_classes)
    chosen: dict[str, str] = {}
    for raw_target, raw_model in (class_map or {}).items():
        target = next((c for c in target_classes if c.lower() == str(raw_target).strip().lower()), None)
        model = next((c for c in model_classes if c.lower() == str(raw_model).strip().lower()), None)
        if target is None:
            raise InvalidInputError(
                f"{map_source}: {raw_target!r} is not a class of the target condition; its classes are "
                f"{list(target_classes)} (keys are target classes, values model classes)"
            )
        if model is None:
            raise InvalidInputError(
                f"{map_source}: {raw_target} = {raw_model!r}: {raw_model!r} is not a class of the model; its classes "
                f"are {list(model_classes)}"
            )
        chosen[target] = model
    mapped_by_file = tuple(chosen)
    for target in target_classes:
        if target not in chosen:
            model = next((m for m in model_classes if _same_class(target, m)), None)
            if model is not None:
                chosen[target] = model
    shared = tuple(m for m in model_classes if m in chosen.values())
    if only is not None:
        wanted = [next((m for m in shared if m.lower() == str(c).strip().lower()), c) for c in only]
        missing = [c for c in wanted if c not in shared]
        if missing:
            raise InvalidInputError(
                f"--classes: {missing} are not shared by the model's classes {list(model_classes)} and the "
                f"target's classes {list(target_classes)}; the shared classes are {list(shared)}"
            )
        shared = tuple(m for m in shared if m in wanted)
        chosen = {t: m for t, m in chosen.items() if m in shared}
    if len(shared) < minimum:
        raise InvalidInputError(
            f"cross-eval: the model's classes {list(model_classes)} and the target's classes {list(target_classes)} "
            f"share {len(shared)} class(es) {list(shared)}; at least 2 are needed. Map target classes onto model "
            f'classes with --map MAP.toml (lines such as excited = "happy")'
        )
    mapping = {t: chosen[t] for t in target_classes if t in chosen}
    return ClassMatch(
        model_classes=model_classes,
        target_classes=target_classes,
        shared=shared,
        model_columns=tuple(model_classes.index(m) for m in shared),
        target_columns=tuple(
            tuple(target_classes.index(t) for t, m in mapping.items() if m == model) for model in shared
        ),
        mapping=mapping,
        mapped_by_file=mapped_by_file,
    )


def read_class_map(path: Pathlike) -> dict[str, str]:
    """Read a class map: a TOML file of ``target_class = "model_class"`` lines.

    Example file::

        # IEMOCAP's excited counts as the model's happy; surprise as its fear
        excited = "happy"
        surprise = "fear"

    Raises:
        InvalidInputError: the file is missing or not TOML, or a value is not a class name
            (a string); the message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"--map {path}: no such file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"--map {path}: not valid TOML ({err})") from err
    for key, value in raw.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(
                f"--map {path}: {key} = {value!r}; each value must be a model class name in quotes, "
                f'e.g. {key} = "happy"'
            )
    return {key: value.strip() for key, value in raw.items()}


def restrict_rows(values: np.ndarray, columns: Sequence[Sequence[int]]) -> np.ndarray:
    """Keep (and add up) ``columns`` of each row, then divide each row by its sum.

    ``columns[j]`` lists the input columns that make output column j (one for a model's
    probabilities; one or more for a target's soft labels). A row whose kept sum is 0 is
    uniform, 1/C' per column: under the 1/C' rule it has no class.

    Returns:
        float64 array of shape (N, len(columns)), each row summing to 1.

    Examples:
        >>> restrict_rows(np.array([[0.5, 0.2, 0.3], [0.0, 0.0, 1.0]]), [[0], [1]]).round(4).tolist()
        [[0.7143, 0.2857], [0.5, 0.5]]
        >>> restrict_rows(np.array([[0.1, 0.2, 0.7]]), [[0], [1, 2]]).round(4).tolist()
        [[0.1, 0.9]]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or len(columns) < 2:
        raise InvalidInputError(f"restrict_rows: expected an (N, K) matrix and >= 2 columns, got {values.shape}")
    kept = np.stack([values[:, list(cols)].sum(axis=1) for cols in columns], axis=1)
    totals = kept.sum(axis=1, keepdims=True)
    uniform = np.full_like(kept, 1.0 / kept.shape[1])
    return np.divide(kept, totals, out=uniform, where=totals > 0)


def cross_scores(
    probs: np.ndarray, soft_labels: np.ndarray, match: ClassMatch, *, batch_size: int | None = None
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Score model probabilities against target soft labels over the classes both share.

    ``probs`` is (N, model classes) and ``labels`` (N, target classes); both are restricted to
    the shared classes (and renormalised) before scoring, and the restricted matrices are
    returned too so that they can be written next to the scores.

    Returns:
        ``(scores, probs_shared, labels_shared)``: ``metrics.score`` of the restricted,
        renormalised matrices (binarised at 1/C', C' = ``len(match.shared)``), plus
        ``threshold`` and ``num_no_shared_truth`` (utterances with no shared class on); with
        ``batch_size``, also EMO-SUPERB's per-batch average ``macro_f1_batch_mean``.

    Examples:
        >>> m = match_classes(["angry", "sad", "happy"], ["angry", "sad", "surprise"])
        >>> s, p, t = cross_scores(np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]),
        ...                        np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]), m)
        >>> s["macro_f1"], s["threshold"]
        (1.0, 0.5)
    """
    probs = np.asarray(probs, dtype=np.float64)
    soft_labels = np.asarray(soft_labels, dtype=np.float64)
    model_columns = [(c,) for c in match.model_columns]
    probs_shared = probs if _kept_in_place(model_columns, probs.shape[1]) else restrict_rows(probs, model_columns)
    labels_shared = (
        soft_labels
        if _kept_in_place(match.target_columns, soft_labels.shape[1])
        else restrict_rows(soft_labels, match.target_columns)
    )
    scores = score(probs_shared, labels_shared, match.shared, batch_size=batch_size)
    scores["threshold"] = 1.0 / len(match.shared)
    scores["num_no_shared_truth"] = int((~binarize(labels_shared).any(axis=1)).sum())
    return scores, probs_shared, labels_shared


def _kept_in_place(columns: Sequence[Sequence[int]], width: int) -> bool:
    """Does the restriction keep every column, each alone and in order (the identity)?"""
    return [tuple(c) for c in columns] == [(j,) for j in range(width)]


# -- the model and the target ------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What a checkpoint says about the run that made it."""

    classes: tuple[str, ...]
    corpus: str | None
    p_or_s: str | None
    fold: int
    audio_dir: Path | None
    eval_batch_size: int
    max_duration_s: float
    predict_fallback: str


def model_info(ckpt: Pathlike, state: dict) -> ModelInfo:
    """The run's corpus, fold, classes and evaluation batch size from a loaded checkpoint."""
    from ..downstream.settings import checked_attribute_state
    from .recognizer import _emotion_parts

    _, config, _, extra = _emotion_parts(ckpt, state)
    task = checked_attribute_state(extra, f"{ckpt}: extra state")[0]
    if task == "attributes":
        raise InvalidInputError(
            f"{ckpt}: an attributes-only checkpoint (downstream_expert.task: attributes) has no class head, and "
            "cross-eval scores classes; its attribute CCCs are in the run's *_metrics.json (a 'both' checkpoint "
            "is cross-evaluated on its classes)"
        )
    expert = config.get("downstream_expert", {}) or {}
    datarc = expert.get("datarc", {}) or {}
    batch = datarc.get("eval_batch_size", 32)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInputError(f"{ckpt}: datarc.eval_batch_size must be a positive integer, got {batch!r}")
    audio_dir = datarc.get("audio_dir")
    if not audio_dir and datarc.get("root") and datarc.get("corpus"):
        audio_dir = Path(str(datarc["root"])) / str(datarc["corpus"]) / "Audios"
    return ModelInfo(
        classes=tuple(extra["classes"]),
        corpus=str(datarc["corpus"]) if datarc.get("corpus") else None,
        p_or_s=str(datarc["p_or_s"]) if datarc.get("p_or_s") else None,
        fold=parse_fold(extra.get("fold", datarc.get("test_fold", "fold1"))),
        audio_dir=Path(audio_dir) if audio_dir else None,
        eval_batch_size=batch,
        max_duration_s=float(extra["max_duration_s"]),
        predict_fallback=str(expert.get("predict_fallback", "none")),
    )


@dataclass(frozen=True)
class TargetSet:
    """The utterances a model is scored on: names, audio paths and soft labels, in order."""

    condition: str
    corpus: str
    classes: tuple[str, ...]
    names: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: np.ndarray
    folds: tuple[int, ...]
    label_files: tuple[str, ...]
    in_corpus: bool

    @property
    def protocol(self) -> str:
        """One sentence that says which test sets were scored, for the report and ``metrics.json``."""
        folds = ", ".join(fold_name(k) for k in self.folds)
        if self.in_corpus:
            return f"the model's own corpus: the test set of its {folds} (the other folds' hold its training speakers)"
        return f"pooled test sets of {folds}, each utterance once"


def same_corpus(model: ModelInfo, corpus: str, audio_dir: Path) -> bool:
    """Is the target the model's own corpus (same corpus folder name, or the same audio folder)?"""
    if model.corpus is not None and model.corpus == corpus:
        return True
    if model.audio_dir is not None and model.audio_dir.is_dir() and audio_dir.is_dir():
        return model.audio_dir.resolve() == audio_dir.resolve()
    return False


def load_target(condition: str, root: Pathlike, model: ModelInfo) -> TargetSet:
    """Read a condition's label files under ``root`` and pick the utterances to score.

    ``condition`` is a name of ``downstream_configs/`` or a YAML path (``sweep.plan.
    resolve_condition``). Every fold is read and validated as the expert reads it
    (``data.fold.load_fold``); their test sets are pooled, each file once, unless
    the target is the model's own corpus (``same_corpus``): then only the model's fold.
    """
    from ..data.fold import load_fold
    from ..sweep.plan import available_folds, resolve_condition

    spec = resolve_condition(condition)
    datarc = {"root": str(root), "corpus": spec.corpus, "p_or_s": spec.p_or_s}
    folds = available_folds(spec, root)
    in_corpus = same_corpus(model, spec.corpus, Path(root) / spec.corpus / "Audios")
    if in_corpus:
        if model.fold not in folds:
            raise InvalidInputError(
                f"cross-eval: {spec.name} is the model's own corpus, whose test set is that of its "
                f"{fold_name(model.fold)}, but {Path(root) / spec.corpus / spec.p_or_s} has folds {folds}"
            )
        folds = [model.fold]
    data = [load_fold(datarc, fold_name(k)) for k in folds]
    first = data[0]
    pooled = pd.concat([d.split("test") for d in data], ignore_index=True)
    repeated = pooled["FileName"].duplicated()
    if repeated.any():
        logger.info("%s: %d test utterance(s) appear in several folds; each is scored once", spec.name, repeated.sum())
    pooled = pooled[~repeated].reset_index(drop=True)
    names = tuple(pooled["FileName"])
    return TargetSet(
        condition=spec.name,
        corpus=spec.corpus,
        classes=first.classes,
        names=names,
        paths=tuple(first.audio_dir / n for n in names),
        labels=pooled[list(first.classes)].to_numpy(dtype=np.float64),
        folds=tuple(folds),
        label_files=tuple(str(d.label_file) for d in data),
        in_corpus=in_corpus,
    )


# -- evaluation --------------------------------------------------------------------------------


@dataclass
class CrossEvaluation:
    """One model on one target: scores and what they were computed from."""

    target: TargetSet
    match: ClassMatch
    scores: dict
    probs_shared: np.ndarray
    labels_shared: np.ndarray
    meta: dict
    predict_fallback: str = "none"

    def metrics(self) -> dict:
        """The content of ``metrics.json``."""
        return {
            "condition": self.target.condition,
            "corpus": self.target.corpus,
            "protocol": self.target.protocol,
            "in_corpus": self.target.in_corpus,
            "folds": list(self.target.folds),
            "label_files": list(self.target.label_files),
            "num_utterances": len(self.target.names),
            **self.meta,
            **self.match.to_json(),
            **self.scores,
        }


def upstream_probabilities(recognizer, paths: Sequence[Path], *, batch_size: int, desc: str) -> np.ndarray:
    """(N, C) class probabilities of ``paths``, in order, ``batch_size`` files at a time.

    The batches are built as the expert's test loader feeds the runner (same crop, statistics,
    padding and head), so the scores match what ``evaluate`` reports on the same files.
    """
    from tqdm import tqdm

    from ..data.audio import load_audio

    out = []
    with tqdm(total=len(paths), desc=desc, unit="utt") as bar:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            wavs = [load_audio(p, recognizer.max_duration_s) for p in chunk]
            out.append(recognizer.predict_batch(wavs))
            bar.update(len(chunk))
    return np.concatenate(out).astype(np.float64)


def evaluate(
    ckpt: Pathlike,
    root: Pathlike,
    condition: str,
    *,
    class_map: Mapping[str, str] | None = None,
    map_source: str = "--map",
    only: Sequence[str] | None = None,
    upstream_ckpt: Pathlike | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    use_store: bool = True,
) -> CrossEvaluation:
    """Score the model of ``ckpt`` on ``condition``'s test utterances under ``root``.

    Classes are matched (and a too-small overlap refused) before any audio is read.
    ``only`` restricts the scored classes to some of the shared ones (``match_classes``).
    ``batch_size`` defaults to the run's ``eval_batch_size``; ``use_store`` evaluates a
    one-pass run from its feature store (see ``stored_inference``).
    """
    from ..runtime.checkpoints import load_checkpoint
    from .predict import check_batch_size
    from .recognizer import EmotionRecognizer

    state = load_checkpoint(ckpt)
    model = model_info(ckpt, state)
    target = load_target(condition, root, model)
    match = match_classes(model.classes, target.classes, class_map, only=only, map_source=map_source)
    batch = model.eval_batch_size if batch_size is None else check_batch_size(batch_size)
    recognizer = EmotionRecognizer.from_checkpoint(ckpt, upstream_ckpt=upstream_ckpt, device=device)
    desc = f"cross-eval {target.condition}"
    store = None
    if use_store:
        from .stored_features import run_store

        store = run_store(ckpt, recognizer, state)
    if store is not None:
        probs = store.probabilities(target.paths, batch_size=batch, device=device, desc=desc)
        features = f"feature store {store.root}"
    else:
        probs = upstream_probabilities(recognizer, target.paths, batch_size=batch, desc=desc)
        features = "upstream"
    scores, probs_shared, labels_shared = cross_scores(probs, target.labels, match, batch_size=batch)
    meta = {
        "checkpoint": str(Path(ckpt).resolve()),
        "model_corpus": model.corpus,
        "model_p_or_s": model.p_or_s,
        "model_fold": model.fold,
        "features": features,
        "batch_size": batch,
        "map_file": map_source if class_map else None,
    }
    return CrossEvaluation(target, match, scores, probs_shared, labels_shared, meta, model.predict_fallback)


def write_cross_eval(result: CrossEvaluation, out: Pathlike, *, inputs: Sequence[Pathlike] = ()) -> Path:
    """Write the five result files into ``out`` as one staged folder: all of them, or none.

    The files are ``metrics.json``, ``probs.csv``, ``labels.csv``, ``predict.txt`` and
    ``truth.txt``; the folder is staged with ``guards.staged_output``.

    ``probs.csv`` and ``labels.csv`` hold the restricted, renormalised matrices the scores
    were computed from, at full precision. Restricting them further (and renormalising)
    gives exactly what a run over fewer shared classes would score, since renormalising
    commutes with dropping columns: a report can put any cell on a row's common classes.
    """
    from ..downstream.expert import _label_lines
    from ..runtime.guards import spreadsheet_safe, staged_output

    names = list(result.target.names)
    shared = result.match.shared
    safe_names = [spreadsheet_safe(n) for n in names]
    table = pd.DataFrame(result.probs_shared, columns=list(shared))
    table.insert(0, "FileName", safe_names)
    labels = pd.DataFrame(result.labels_shared, columns=list(shared))
    labels.insert(0, "FileName", safe_names)
    top_class = result.predict_fallback == "top_class"
    with staged_output(out, command=COMMAND, inputs=inputs) as stage:
        (stage / METRICS_FILE).write_text(json.dumps(result.metrics(), indent=2) + "\n", encoding="utf-8")
        (stage / PROBS_FILE).write_text(table.to_csv(index=False), encoding="utf-8")
        (stage / LABELS_FILE).write_text(labels.to_csv(index=False), encoding="utf-8")
        (stage / PREDICT_FILE).write_text(
            _label_lines(names, result.probs_shared, shared, top_class=top_class), encoding="utf-8"
        )
        (stage / TRUTH_FILE).write_text(_label_lines(names, result.labels_shared, shared), encoding="utf-8")
    return Path(out)


def default_out(ckpt: Pathlike, condition_name: str) -> Path:
    """``EXP/cross/<condition>/`` next to the checkpoint (a YAML condition is named by its file stem)."""
    return Path(ckpt).resolve().parent / CROSS_DIR / condition_name


def cross_evaluate(
    ckpt: Pathlike,
    root: Pathlike,
    condition: str,
    *,
    out: Pathlike | None = None,
    map_file: Pathlike | None = None,
    **options,
) -> CrossEvaluation:
    """``s3prl-emo cross-eval``: check the output folder and the class map, evaluate, write.

    Nothing is written when anything fails (bad map, too few shared classes, unreadable audio).

    Args:
        ckpt: the model's checkpoint (``EXP/dev-best.ckpt``).
        root: the folder of the prepared corpora.
        condition: a name of ``downstream_configs/`` or a condition YAML.
        out: the output folder (default: ``default_out``, ``EXP/cross/<condition>/``).
        map_file: a TOML class map (``read_class_map``); without one, classes match by name.
        **options: ``evaluate``'s other keywords, passed on as they are: ``only``,
            ``upstream_ckpt``, ``device``, ``batch_size``, ``use_store``.

    Examples:
        >>> result = cross_evaluate("exp/dev-best.ckpt", "corpora", "CREMA-D", map_file="map.toml")  # doctest: +SKIP
        >>> result.scores["macro_f1"]  # doctest: +SKIP
        0.41
    """
    from ..runtime.guards import claim_output_dir
    from ..sweep.plan import resolve_condition

    spec = resolve_condition(condition)
    out = Path(out) if out is not None else default_out(ckpt, spec.name)
    inputs = [Path(ckpt), Path(root) / spec.corpus]
    claim_output_dir(out, command=COMMAND, inputs=inputs)
    class_map = read_class_map(map_file) if map_file is not None else None
    result = evaluate(
        ckpt,
        root,
        condition,
        class_map=class_map,
        map_source=f"--map {map_file}" if map_file is not None else "--map",
        **options,
    )
    if map_file is not None:
        result.meta["map_file"] = str(map_file)
    write_cross_eval(result, out, inputs=inputs)
    return result
