"""Checkpoints are untrusted: read weights-only, and no edit of one picks a loader, a file or code."""

import argparse
import os

import pytest
import torch

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.inference.recognizer import EmotionRecognizer
from s3prl_emo.runtime.checkpoints import (
    FEATURE_UPSTREAMS,
    SAFE_UPSTREAMS,
    build_upstream,
    load_checkpoint,
    save_checkpoint,
    upstream_spec,
)

CLASSES = ["angry", "sad", "neutral", "happy", "fear"]
MODELRC = {"projector_dim": 8, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}


class Payload:
    """Unpickling this writes a marker file: proof that a checkpoint ran code."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def runner_args(**changes) -> argparse.Namespace:
    args = dict(
        upstream="fbank",
        upstream_ckpt=None,
        upstream_model_config=None,
        upstream_feature_selection="hidden_states",
        upstream_layer_selection=None,
        upstream_feature_normalize=False,
        hub="torch",
        downstream="emotion_multilabel",
    )
    args.update(changes)
    return argparse.Namespace(**args)


@pytest.fixture
def fbank_checkpoint(tmp_path):
    """A complete emotion_multilabel checkpoint over fbank, as S3PRL's runner lays it out."""
    from s3prl.upstream.interfaces import Featurizer

    from s3prl_emo.downstream.model import EmotionHead

    args = runner_args()
    upstream = build_upstream(args)
    featurizer = Featurizer(upstream, upstream_device="cpu")
    head = EmotionHead(featurizer.output_dim, len(CLASSES), MODELRC)
    downstream = {f"head.{k}": v for k, v in head.state_dict().items()}
    downstream["_extra_state"] = {
        "classes": CLASSES,
        "wav_mean": 0.0,
        "wav_std": 0.1,
        "fold": "fold1",
        "max_duration_s": 10.0,
    }
    state = {
        "Args": args,
        "Config": {"downstream_expert": {"modelrc": MODELRC}},
        "Featurizer": featurizer.state_dict(),
        "Downstream": downstream,
        "Step": 10,
    }
    path = tmp_path / "dev-best.ckpt"
    save_checkpoint(state, path)
    return path, state


def test_a_written_checkpoint_loads_and_predicts(fbank_checkpoint):
    path, _ = fbank_checkpoint
    model = EmotionRecognizer.from_checkpoint(path)
    probs = model.predict(torch.randn(8000).numpy() * 0.1, 16_000)
    assert list(probs) == CLASSES
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_save_is_atomic_and_leaves_no_partial_file(fbank_checkpoint):
    path, _ = fbank_checkpoint
    assert sorted(p.name for p in path.parent.iterdir()) == ["dev-best.ckpt"]


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_checkpoints_name_the_file(fbank_checkpoint, tmp_path, keep):
    path, _ = fbank_checkpoint
    data = path.read_bytes()
    cut = tmp_path / "states-20.ckpt"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(InvalidInputError, match=r"states-20\.ckpt: .*truncated") as err:
        load_checkpoint(cut)
    assert str(cut) in str(err.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(InvalidInputError, match=r"nothere\.ckpt: no such checkpoint"):
        load_checkpoint(tmp_path / "nothere.ckpt")


def test_a_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    path = tmp_path / "evil.ckpt"
    torch.save({"Args": Payload()}, path)
    with pytest.raises(InvalidInputError, match=r"evil\.ckpt: refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"upstream": "mockingjay_local"}, r"upstream 'mockingjay_local' is not one this package loads"),
        ({"upstream": "distiller_local"}, r"upstream 'distiller_local' is not one"),
        ({"upstream": "wavlm_url", "upstream_ckpt": "http://x/y.pt"}, r"upstream 'wavlm_url' is not one"),
        ({"upstream": "hubert_custom"}, r"upstream 'hubert_custom' is not one"),
        ({"upstream": "__class__"}, r"upstream '__class__' is not one"),
        ({"upstream": 3}, r"upstream 3 is not one"),
        ({"hub": "huggingface", "upstream": "evil/repo"}, r"Hugging Face Hub .* refused"),
        ({"upstream": "wavlm_large", "upstream_model_config": "/etc/passwd"}, r"upstream_model_config '/etc/passwd'"),
        (
            {"upstream": "wavlm_local", "upstream_ckpt": "/somewhere/w.pt"},
            r"'wavlm_local' reads a local weights file.*upstream_ckpt=PATH.*'/somewhere/w.pt'",
        ),
    ],
)
def test_checkpoint_args_never_pick_an_unsafe_loader_or_file(changes, message):
    with pytest.raises(InvalidInputError, match=message):
        upstream_spec(runner_args(**changes))


def test_a_local_upstream_needs_the_callers_file(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    spec = upstream_spec(runner_args(upstream="wavlm_local", upstream_ckpt="/recorded/elsewhere.pt"), weights)
    assert spec.name == "wavlm_local"
    assert spec.kwargs == {"ckpt": str(weights)}
    with pytest.raises(InvalidInputError, match=r"upstream_ckpt '.*missing.pt': no such file"):
        upstream_spec(runner_args(upstream="wavlm_local"), tmp_path / "missing.pt")
    with pytest.raises(InvalidInputError, match=r"'fbank' reads no local weights file"):
        upstream_spec(runner_args(), weights)
    assert upstream_spec(runner_args(upstream="wavlm_base_plus", upstream_ckpt="/x")).kwargs == {}


def test_every_allowed_upstream_exists_in_s3prl_hub():
    from s3prl import hub

    assert all(callable(getattr(hub, name, None)) for name in SAFE_UPSTREAMS)
    assert "fbank" in FEATURE_UPSTREAMS
    assert not {"mockingjay_local", "distiller_local"} & SAFE_UPSTREAMS


def test_edited_checkpoint_cannot_load_an_attackers_upstream_file(fbank_checkpoint, tmp_path):
    path, state = fbank_checkpoint
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    evil = tmp_path / "evil_upstream.ckpt"
    torch.save({"Settings": Payload()}, evil)
    state["Args"] = runner_args(upstream="mockingjay_local", upstream_ckpt=str(evil))
    save_checkpoint(state, path)
    with pytest.raises(InvalidInputError, match="mockingjay_local"):
        EmotionRecognizer.from_checkpoint(path)
    with pytest.raises(InvalidInputError, match="mockingjay_local"):
        torch.hub.load(os.fspath(_repo_root()), "emotion_multilabel", ckpt=str(path), source="local")
    assert not marker.exists()


@pytest.mark.parametrize(
    "modelrc",
    [
        {**MODELRC, "UtteranceLevel": {"pooling": "__import__('os').system('touch {marker}') or MeanPooling"}},
        {**MODELRC, "UtteranceLevel": {"pooling": "MeanPooling", "post_net": {"select": "exec('1')"}}},
        {"projector_dim": 8, "select": "DeepModel", "DeepModel": {"model_type": "print", "pooling": 5}},
    ],
)
def test_edited_head_config_cannot_reach_eval(fbank_checkpoint, tmp_path, modelrc):
    path, state = fbank_checkpoint
    marker = tmp_path / "pwned"
    text = repr(modelrc).replace("{marker}", str(marker))
    state["Config"] = {"downstream_expert": {"modelrc": eval(text)}}
    save_checkpoint(state, path)
    with pytest.raises(InvalidInputError, match=r"modelrc\..* is not the name of one of S3PRL's model classes"):
        EmotionRecognizer.from_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_duration_s", -1.0), ("max_duration_s", 0.0), ("wav_std", float("nan")), ("classes", "abc")],
)
def test_edited_extra_state_is_refused(fbank_checkpoint, key, value):
    path, state = fbank_checkpoint
    state["Downstream"]["_extra_state"][key] = value
    save_checkpoint(state, path)
    with pytest.raises(InvalidInputError, match=rf"extra state '{key}'"):
        EmotionRecognizer.from_checkpoint(path)


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def test_loading_keeps_a_global_namespace_allowance(fbank_checkpoint):
    import argparse as argparse_module

    torch.serialization.add_safe_globals([argparse_module.Namespace])
    load_checkpoint(fbank_checkpoint[0])
    assert argparse_module.Namespace in torch.serialization.get_safe_globals()


def test_runner_guard_reads_only_what_the_user_named_on_the_command_line(tmp_path):
    from s3prl_emo.runtime.guards import override_keys
    from s3prl_emo.runtime.runner_guard import check_resumed_args, check_resumed_config

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    assert override_keys(f"args.upstream_ckpt={weights},,config.runner.total_steps=5") == [
        "args.upstream_ckpt",
        "config.runner.total_steps",
    ]
    resumed = runner_args(upstream="wavlm_local", upstream_ckpt=str(weights), override=None)
    with pytest.raises(InvalidInputError, match=r"-o args\.upstream_ckpt=PATH on the command line"):
        check_resumed_args(resumed, "states-10.ckpt")
    resumed.override = f"args.upstream_ckpt={weights}"
    check_resumed_args(resumed, "states-10.ckpt")
    check_resumed_config({"optimizer": {"name": "TorchOptim"}, "scheduler": None}, "x.ckpt")
    for name in ("TorchOptim if __import__('os').system('true') else get_TorchOptim", "nope"):
        with pytest.raises(InvalidInputError, match=r"x\.ckpt: Config optimizer\.name .* is not one of S3PRL's"):
            check_resumed_config({"optimizer": {"name": name}}, "x.ckpt")
    with pytest.raises(InvalidInputError, match=r"scheduler\.name"):
        check_resumed_config({"optimizer": {"name": "AdamW"}, "scheduler": {"name": "x()"}}, "x.ckpt")


def test_weights_that_do_not_fit_are_named(fbank_checkpoint):
    path, state = fbank_checkpoint
    state["Downstream"] = {"_extra_state": state["Downstream"]["_extra_state"]}  # no head weights
    save_checkpoint(state, path)
    with pytest.raises(InvalidInputError, match=r"dev-best\.ckpt: Downstream head weights do not fit the described"):
        EmotionRecognizer.from_checkpoint(path)
    with pytest.raises(InvalidInputError, match="expected a file path, got None"):
        load_checkpoint(None)


@pytest.mark.parametrize(
    "value",
    [
        [0.2] * 5,
        {"model": 1, "thresholds": [0.2] * 5},
        {"model": "abc", "thresholds": [0.2] * 4},
        {"model": "abc", "thresholds": [0.2, 0.2, 0.2, 0.2, float("nan")]},
        {"model": "abc", "thresholds": [0.2, 0.2, 0.2, 0.2, "0.2"]},
        {"model": "abc", "thresholds": [0.2, 0.2, 0.2, 0.2, 7.0]},
    ],
)
def test_edited_dev_thresholds_are_refused(value):
    from s3prl_emo.downstream.expert import _checked_dev_thresholds

    with pytest.raises(InvalidInputError, match="extra state 'dev_thresholds'"):
        _checked_dev_thresholds(value, 5)


def test_dev_thresholds_are_optional():
    from s3prl_emo.downstream.expert import _checked_dev_thresholds

    assert _checked_dev_thresholds(None, 5) is None  # checkpoints written before they were kept
    kept = {"model": "abc", "thresholds": [0.1, 0.2, 0.3, 0.4, 0.5]}
    assert _checked_dev_thresholds(kept, 5) == kept
