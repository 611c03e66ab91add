"""s3prl-emo: EMO-SUPERB speech emotion recognition as an S3PRL downstream.

The public API, importable from the package itself::

    from s3prl_emo import soft_labels, score, CORPORA, ClassBalancedCrossEntropy

Every name is loaded on first use (PEP 562), so ``import s3prl_emo`` and the command line
start without torch; the torch-backed names (the loss, the recogniser) import it when they
are first touched. The wings behind it:

- ``s3prl_emo.data``: labels, partitions, the corpus layout, audio, corpora, exports (no torch);
- ``s3prl_emo.downstream``: the S3PRL contract (expert, dataset, model);
- ``s3prl_emo.training``: the one-pass trainer and its feature stores;
- ``s3prl_emo.inference``: the recogniser and ``predict``;
- ``s3prl_emo.runtime``: S3PRL glue, checkpoints, locks, atomic writes, untrusted-input rules;
- ``s3prl_emo.sweep``, ``s3prl_emo.report``, ``s3prl_emo.trust``: evaluation at scale;
- ``s3prl_emo.metrics``, ``s3prl_emo.loss``: the maths.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "CorpusLayoutError": "s3prl_emo.errors",
    "InvalidInputError": "s3prl_emo.errors",
    # label policy
    "DEFAULT_SMOOTHING": "s3prl_emo.data.labels",
    "soft_labels": "s3prl_emo.data.labels",
    "canonical_class": "s3prl_emo.data.labels",
    # partitions and the corpus layout
    "Fold": "s3prl_emo.data.partitions",
    "fold_table": "s3prl_emo.data.partitions",
    "assign_splits": "s3prl_emo.data.partitions",
    "balanced_session_folds": "s3prl_emo.data.partitions",
    "fold_violations": "s3prl_emo.data.partitions",
    "read_config": "s3prl_emo.data.layout",
    "read_labels": "s3prl_emo.data.layout",
    "label_files": "s3prl_emo.data.layout",
    "check_splits": "s3prl_emo.data.audit",
    # corpora
    "CORPORA": "s3prl_emo.data.corpora",
    "prepare_iemocap": "s3prl_emo.data.corpora.iemocap",
    "prepare_crema_d": "s3prl_emo.data.corpora.crema_d",
    "prepare_msp_improv": "s3prl_emo.data.corpora.msp_improv",
    "prepare_msp_podcast": "s3prl_emo.data.corpora.msp_podcast",
    "prepare_biic_podcast": "s3prl_emo.data.corpora.biic_podcast",
    "prepare_nnime": "s3prl_emo.data.corpora.nnime",
    "prepare_generic": "s3prl_emo.data.corpora.generic",
    "make_synthetic_corpus": "s3prl_emo.data.synth",
    # exports
    "export_csv": "s3prl_emo.data.export",
    "export_kaldi": "s3prl_emo.data.export",
    "export_s3prl_emotion": "s3prl_emo.data.export",
    "export_lhotse": "s3prl_emo.data.export",
    "export_audiofolder": "s3prl_emo.data.export",
    # metrics and statistics
    "binarize": "s3prl_emo.metrics",
    "concordance_cc": "s3prl_emo.metrics",
    "attribute_scores": "s3prl_emo.metrics",
    "js_divergence": "s3prl_emo.metrics",
    "tune_thresholds": "s3prl_emo.metrics",
    "bootstrap_ci": "s3prl_emo.stats",
    "paired_test": "s3prl_emo.stats",
    "holm": "s3prl_emo.stats",
    "multilabel_macro_f1": "s3prl_emo.metrics",
    "score": "s3prl_emo.metrics",
    "prior_baseline": "s3prl_emo.metrics",
    # the loss (torch)
    "class_balanced_weights": "s3prl_emo.loss",
    "ClassBalancedCrossEntropy": "s3prl_emo.loss",
    "SoftCrossEntropy": "s3prl_emo.loss",
    # inference (torch)
    "EmotionRecognizer": "s3prl_emo.inference.recognizer",
    "predict_files": "s3prl_emo.inference.predict",
    "cross_evaluate": "s3prl_emo.inference.cross_eval",
    "match_classes": "s3prl_emo.inference.cross_eval",
    # trust
    "run_trust": "s3prl_emo.trust.evaluate",
    "trust_profile": "s3prl_emo.trust.profile",
}
_RENAMED = {"trust_profile": "profile"}

__all__ = [
    "CORPORA",
    "DEFAULT_SMOOTHING",
    "ClassBalancedCrossEntropy",
    "CorpusLayoutError",
    "EmotionRecognizer",
    "Fold",
    "InvalidInputError",
    "SoftCrossEntropy",
    "__version__",
    "assign_splits",
    "attribute_scores",
    "balanced_session_folds",
    "binarize",
    "bootstrap_ci",
    "canonical_class",
    "check_splits",
    "class_balanced_weights",
    "concordance_cc",
    "cross_evaluate",
    "export_audiofolder",
    "export_csv",
    "export_kaldi",
    "export_lhotse",
    "export_s3prl_emotion",
    "fold_table",
    "fold_violations",
    "holm",
    "js_divergence",
    "label_files",
    "make_synthetic_corpus",
    "match_classes",
    "multilabel_macro_f1",
    "paired_test",
    "predict_files",
    "prepare_biic_podcast",
    "prepare_crema_d",
    "prepare_generic",
    "prepare_iemocap",
    "prepare_msp_improv",
    "prepare_msp_podcast",
    "prepare_nnime",
    "prior_baseline",
    "read_config",
    "read_labels",
    "run_trust",
    "score",
    "soft_labels",
    "trust_profile",
    "tune_thresholds",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's3prl_emo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and the API reference; never run
    from .data.audit import check_splits
    from .data.corpora import CORPORA
    from .data.corpora.biic_podcast import prepare_biic_podcast
    from .data.corpora.crema_d import prepare_crema_d
    from .data.corpora.generic import prepare_generic
    from .data.corpora.iemocap import prepare_iemocap
    from .data.corpora.msp_improv import prepare_msp_improv
    from .data.corpora.msp_podcast import prepare_msp_podcast
    from .data.corpora.nnime import prepare_nnime
    from .data.export import export_audiofolder, export_csv, export_kaldi, export_lhotse, export_s3prl_emotion
    from .data.labels import DEFAULT_SMOOTHING, canonical_class, soft_labels
    from .data.layout import label_files, read_config, read_labels
    from .data.partitions import Fold, assign_splits, balanced_session_folds, fold_table, fold_violations
    from .data.synth import make_synthetic_corpus
    from .errors import CorpusLayoutError, InvalidInputError
    from .inference.cross_eval import cross_evaluate, match_classes
    from .inference.predict import predict_files
    from .inference.recognizer import EmotionRecognizer
    from .loss import ClassBalancedCrossEntropy, SoftCrossEntropy, class_balanced_weights
    from .metrics import binarize, js_divergence, multilabel_macro_f1, prior_baseline, score, tune_thresholds
    from .stats import bootstrap_ci, holm, paired_test
    from .trust.evaluate import run_trust
    from .trust.profile import profile as trust_profile
