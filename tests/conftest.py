"""Shared fixtures: a small synthetic corpus and a tiny randomly initialised WavLM."""

from __future__ import annotations

from pathlib import Path

import pytest

# Never set TQDM_DISABLE here: S3PRL's runner counts its steps with a tqdm bar, and a
# disabled bar never advances, so training would never end.


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """ROOT with ROOT/SYNTH (60 utterances, 5 sessions): read-only for tests."""
    from s3prl_emo.data.synth import make_synthetic_corpus

    root = tmp_path_factory.mktemp("synth")
    make_synthetic_corpus(root, seed=7, utterances_per_speaker=6)
    return root


@pytest.fixture
def synth_copy(synth_root, tmp_path) -> Path:
    """A private copy of the small corpus that a test may break (audio is symlinked)."""
    import shutil

    root = tmp_path / "data"
    (root / "SYNTH").mkdir(parents=True)
    shutil.copytree(synth_root / "SYNTH" / "Primary", root / "SYNTH" / "Primary")
    (root / "SYNTH" / "Audios").mkdir()
    for wav in (synth_root / "SYNTH" / "Audios").iterdir():
        (root / "SYNTH" / "Audios" / wav.name).symlink_to(wav)
    return root


@pytest.fixture(scope="session")
def tiny_wavlm(tmp_path_factory) -> Path:
    """A 3-layer, 64-dim WavLM with random weights, saved as `wavlm_local -k` expects."""
    import torch
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = {
        "extractor_mode": "default",
        "conv_feature_layers": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
        "encoder_layers": 3,
        "encoder_embed_dim": 64,
        "encoder_ffn_embed_dim": 128,
        "encoder_attention_heads": 4,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "relative_position_embedding": True,
        "num_buckets": 32,
        "max_distance": 64,
        "gru_rel_pos": True,
        "normalize": False,
    }
    torch.manual_seed(0)
    model = WavLM(WavLMConfig(cfg))
    path = tmp_path_factory.mktemp("wavlm") / "tiny.pt"
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
