"""``s3prl-emo train``: exactness of the pooled store, store integrity and invalidation,
SIGKILL and resume, and checkpoints that S3PRL's runner and torch.hub read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from s3prl_emo.training.feature_store import FeatureStore, exclusive

CONFIG_OVERRIDE = (
    "config.downstream_expert.datarc.root='{root}/',,config.downstream_expert.datarc.train_batch_size=8,,"
    "config.downstream_expert.datarc.max_duration_s={crop},,config.runner.total_steps={steps},,"
    "config.runner.log_step=5,,config.runner.eval_step=5,,config.runner.save_step=5"
)


@pytest.fixture(scope="module")
def pooled_config(repo_root, tmp_path_factory):
    """SYNTH.yaml with EMO-SUPERB's head (projector + UtteranceLevel/MeanPooling)."""
    path = tmp_path_factory.mktemp("cfg") / "pooled.yaml"
    text = (repo_root / "downstream_configs" / "SYNTH.yaml").read_text()
    path.write_text(text.replace("select: DeepModel", "select: UtteranceLevel"))
    return path


def train_cli(config, root, expdir, cache, *extra, steps=10, crop=10, upstream=None, check=True, env=None):
    args = [sys.executable, "-m", "s3prl_emo.cli", "train", "-c", str(config), "-p", str(expdir), "--device", "cpu"]
    args += ["--cache-dir", str(cache), "-o", CONFIG_OVERRIDE.format(root=root, crop=crop, steps=steps)]
    if upstream:
        args += ["-u", "wavlm_local", "-k", str(upstream)]
    result = subprocess.run([*args, *extra], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"s3prl-emo train failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def report(expdir):
    return json.loads((expdir / "one_pass.json").read_text())


@pytest.mark.parametrize("select", ["UtteranceLevel", "PooledMLP"])
@pytest.mark.parametrize("normalize", [False, True])
def test_pooled_store_gives_the_stock_paths_logits(tiny_wavlm, synth_root, select, normalize):
    from s3prl import hub
    from s3prl.upstream.interfaces import Featurizer

    from s3prl_emo.data.audio import load_audio
    from s3prl_emo.downstream.model import EmotionHead
    from s3prl_emo.training.extraction import features_of
    from s3prl_emo.training.one_pass import StoredUpstream

    torch.manual_seed(0)
    upstream = hub.wavlm_local(ckpt=str(tiny_wavlm)).eval()
    featurizer = Featurizer(upstream, upstream_device="cpu", normalize=normalize)
    featurizer.weights.data = torch.randn_like(featurizer.weights)
    head = EmotionHead(featurizer.output_dim, 5, {"select": select, "UtteranceLevel": {"pooling": "MeanPooling"}})
    head.eval()
    wavs = [torch.from_numpy(load_audio(p, 3.0)) for p in sorted((synth_root / "SYNTH" / "Audios").iterdir())[:4]]
    rate = featurizer.downsample_rate
    with torch.no_grad():
        stock = []
        for wav in wavs:  # the runner's path, one utterance per batch
            features = featurizer([wav], upstream([wav]))
            stock.append(head(torch.stack(features), torch.tensor([len(features[0])])))
        entries = [torch.from_numpy(features_of(upstream, featurizer, [w], rate, pooled=True)[0]) for w in wavs]
        featurizer.normalize, featurizer.downsample_rate = False, 1  # as OnePassRunner sets them
        stored = StoredUpstream(featurizer.feature_selection, as_list=True)
        features = featurizer(entries, stored(entries))
        fast = head(torch.stack(features), torch.ones(len(entries), dtype=torch.long))
    assert entries[0].shape == (1, featurizer.layer_num, featurizer.output_dim)
    assert torch.cat(stock).shape == fast.shape == (4, 5)
    assert torch.allclose(torch.cat(stock), fast, atol=1e-4, rtol=0)


def test_truncated_or_partial_shards_are_never_read(tmp_path):
    meta = {"layers": 2, "dim": 3, "dtype": "float32"}
    store = FeatureStore.open(tmp_path / "s", meta, repair=True)
    with exclusive(tmp_path):
        store.add((f"k{i}", np.full((i + 1, 2, 3), i, dtype=np.float32)) for i in range(3))
    reopened = FeatureStore.open(tmp_path / "s")
    assert np.array_equal(reopened.get("k2"), np.full((3, 2, 3), 2, dtype=np.float32))
    (data,) = (tmp_path / "s").glob("shard-*.bin")
    with open(data, "r+b") as handle:  # a disk that filled up, a copy cut short
        handle.truncate(data.stat().st_size - 4)
    (tmp_path / "s" / ".shard-x.bin.123.tmp").write_bytes(b"\0" * 10)  # a writer killed mid-shard
    (tmp_path / "s" / "shard-orphan.bin").write_bytes(b"\0" * 24)  # killed between the two renames
    assert FeatureStore.open(tmp_path / "s").missing(["k0", "k1", "k2"]) == ["k0", "k1", "k2"]
    FeatureStore.open(tmp_path / "s", repair=True)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["meta.json"]
    store = FeatureStore.open(tmp_path / "s", repair=True)
    with exclusive(tmp_path):
        store.add([("k0", np.zeros((1, 2, 3), dtype=np.float32))])
    (data,) = (tmp_path / "s").glob("shard-*.bin")
    data.write_bytes(b"\1" * data.stat().st_size)  # same size, other bytes
    assert "k0" not in FeatureStore.open(tmp_path / "s")


def test_a_second_builder_waits_for_the_first(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from s3prl_emo.training.feature_store import exclusive\n"
        "print('started', flush=True)\nwith exclusive(Path(sys.argv[1])): print(time.time())"
    )
    with exclusive(tmp_path):
        waiter = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert waiter.stdout.readline().strip() == "started"
        time.sleep(1)
        assert waiter.poll() is None  # still waiting for the lock
        released = time.time()
    out, _ = waiter.communicate(timeout=60)
    assert float(out) >= released


@pytest.mark.slow
def test_train_evaluate_hub_resume_and_store_sharing(repo_root, synth_copy, tiny_wavlm, pooled_config, tmp_path):
    """One end-to-end story through the CLI, on the 60-utterance corpus and the tiny WavLM."""
    cache, exp1 = tmp_path / "cache", tmp_path / "exp1"
    sotamlp = tmp_path / "mlp.yaml"
    sotamlp.write_text(pooled_config.read_text().replace("select: UtteranceLevel", "select: PooledMLP"))
    train_cli(sotamlp, synth_copy, exp1, cache, upstream=tiny_wavlm)
    first = report(exp1)
    assert first["mode"] == "pooled store"
    assert first["extracted"] == 60
    assert first["upstream_calls"] <= 61

    # S3PRL's own evaluation of dev-best.ckpt (one utterance per batch, as the store was built)
    # reproduces the test macro-F1 the run logged at its dev-best step.
    log = (exp1 / "log.log").read_text().splitlines()
    best = max(int(line.split()[3].rstrip(":")) for line in log if line.endswith("(new best)"))
    logged = next(float(line.split()[-1]) for line in log if line.startswith(f"test at step {best}:"))
    one_by_one = f"args.upstream_ckpt='{tiny_wavlm}',,config.downstream_expert.datarc.eval_batch_size=1"
    subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", "-m", "evaluate", "-e", str(exp1 / "dev-best.ckpt"),
         "--device", "cpu", "-o", one_by_one],
        check=True, capture_output=True,
    )  # fmt: skip
    evaluated = json.loads((exp1 / "test_fold1_metrics.json").read_text())["macro_f1"]
    assert evaluated == pytest.approx(logged, abs=5e-5)  # the log rounds to 4 digits
    model = torch.hub.load(str(repo_root), "emotion_multilabel", ckpt=str(exp1 / "dev-best.ckpt"), source="local",
                           upstream_ckpt=str(tiny_wavlm))  # fmt: skip
    first_test = (exp1 / "test_fold1_probs.csv").read_text().splitlines()[1].split(",")
    probs = model.predict_file(synth_copy / "SYNTH" / "Audios" / first_test[0])
    assert list(probs.values()) == pytest.approx([float(v) for v in first_test[1:]], abs=1e-4)

    # Resume from the states of step 5 to a new total: no upstream call, states-15 written.
    train_cli(pooled_config, synth_copy, exp1, cache, "-e", str(exp1 / "states-5.ckpt"), "-o",
              f"config.runner.total_steps=15,,args.upstream_ckpt='{tiny_wavlm}'")  # fmt: skip
    from s3prl_emo.runtime.checkpoints import load_checkpoint

    assert load_checkpoint(exp1 / "states-15.ckpt")["Step"] == 15
    assert report(exp1)["upstream_calls"] == 0

    # Another fold: other waveform statistics, which the tiny WavLM's group norm over time
    # provably cancels: no upstream call at all.
    exp2 = tmp_path / "exp2"
    train_cli(pooled_config, synth_copy, exp2, cache, "-v", "fold2", upstream=tiny_wavlm, steps=2)
    second = report(exp2)
    assert second["case"].startswith("reused (provably invariant: its first layer")
    assert second["extracted"] == 0
    assert second["upstream_calls"] == 0

    # One test-split file changes: exactly that file is extracted again.
    test_file = first_test[0]
    audio = synth_copy / "SYNTH" / "Audios" / test_file
    import soundfile as sf

    wav, rate = sf.read(str(audio))
    audio.unlink()
    sf.write(str(audio), 0.5 * wav, rate)
    exp3 = tmp_path / "exp3"
    train_cli(pooled_config, synth_copy, exp3, cache, upstream=tiny_wavlm, steps=2)
    assert report(exp3)["extracted"] == 1
    assert report(exp3)["case"] == "store built under these statistics"

    # Another crop length, or other upstream weights: a new store.
    exp4 = tmp_path / "exp4"
    train_cli(pooled_config, synth_copy, exp4, cache, upstream=tiny_wavlm, steps=2, crop=5)
    assert report(exp4)["extracted"] == 60
    assert report(exp4)["store"] != first["store"]
    other = tmp_path / "other.pt"
    state = torch.load(tiny_wavlm, weights_only=True)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, other)
    exp5 = tmp_path / "exp5"
    train_cli(pooled_config, synth_copy, exp5, cache, upstream=other, steps=2)
    assert report(exp5)["extracted"] == 60
    assert report(exp5)["store"] not in (first["store"], report(exp4)["store"])


@pytest.mark.slow
def test_sigkill_during_extraction_then_rerun(synth_root, tiny_wavlm, pooled_config, tmp_path):
    cache, expdir = tmp_path / "cache", tmp_path / "exp"
    env = {**os.environ, "S3PRL_EMO_SHARD_ENTRIES": "8"}
    args = [sys.executable, "-m", "s3prl_emo.cli", "train", "-c", str(pooled_config), "-p", str(expdir),
            "--device", "cpu", "--cache-dir", str(cache), "-u", "wavlm_local", "-k", str(tiny_wavlm),
            "-o", CONFIG_OVERRIDE.format(root=synth_root, crop=10, steps=2)]  # fmt: skip
    job = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(cache.glob("*/stats-*/shard-*.json"))) < 2:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    shards = list(cache.glob("*/stats-*/shard-*.json"))
    assert 2 <= len(shards) < 8, "killed after some shards, before the end of extraction"
    kept = sum(len(json.loads(p.read_text())["entries"]) for p in shards)
    train_cli(pooled_config, synth_root, expdir, cache, upstream=tiny_wavlm, steps=2, env=env)
    assert report(expdir)["extracted"] == 60 - kept
    assert (expdir / "dev-best.ckpt").is_file()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-f"], "run_downstream -m train -f"),
        (["-d", "emotion"], "emotion_multilabel downstream only"),
        (["--hub", "huggingface"], "s3prl.hub upstreams"),
    ],
)
def test_flags_the_one_pass_trainer_cannot_honour_are_refused(pooled_config, tmp_path, caplog, flags, message):
    from s3prl_emo.cli import main

    expdir = tmp_path / "exp"
    assert main(["train", "-c", str(pooled_config), "-p", str(expdir), *flags]) == 2
    assert message in caplog.text
    assert not expdir.exists()


@pytest.mark.slow
def test_sequence_store_for_other_heads_and_fallback_over_the_budget(synth_root, tiny_wavlm, repo_root, tmp_path):
    """SYNTH.yaml's DeepModel does not mean-pool first: frames are stored; a budget too small for
    them leaves the run on per-step upstream calls (S3PRL's runner unchanged), and it says so."""
    config, cache = repo_root / "downstream_configs" / "SYNTH.yaml", tmp_path / "cache"
    train_cli(config, synth_root, tmp_path / "seq", cache, upstream=tiny_wavlm, steps=5)
    stored = report(tmp_path / "seq")
    assert stored["mode"] == "sequence store"
    assert stored["extracted"] == 60
    assert stored["upstream_calls"] <= 61
    (entry,) = {p.parent for p in cache.glob("*/stats-*/shard-*.bin")}
    assert json.loads((entry / "meta.json").read_text())["kind"] == "sequence"

    run = train_cli(config, synth_root, tmp_path / "over", cache, "--cache-budget-gb", "1e-6", upstream=tiny_wavlm,
                    steps=5)  # fmt: skip
    over = report(tmp_path / "over")
    assert over["mode"].startswith("per-step upstream")
    assert "store" not in over
    assert over["upstream_calls"] >= 5 + 2  # a call per training step and per evaluation batch
    assert "falling back to per-step upstream calls" in run.stderr
    assert (tmp_path / "over" / "dev-best.ckpt").is_file()


@pytest.mark.slow
def test_pooled_mlp_fine_tunes_through_the_stock_runner(synth_root, tiny_wavlm, pooled_config, tmp_path):
    """`PooledMLP` with `-f`: S3PRL's runner trains the upstream too (the SOTA_*.yaml recipe)."""
    from s3prl_emo.runtime.checkpoints import load_checkpoint

    config = tmp_path / "mlp.yaml"
    config.write_text(pooled_config.read_text().replace("select: UtteranceLevel", "select: PooledMLP"))
    expdir = tmp_path / "exp"
    subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", "-m", "train", "-f", "-u", "wavlm_local", "-k", str(tiny_wavlm),
         "-d", "emotion_multilabel", "-c", str(config), "-p", str(expdir), "--device", "cpu",
         "-o", CONFIG_OVERRIDE.format(root=synth_root, crop=2, steps=5)],
        check=True, capture_output=True,
    )  # fmt: skip
    states = load_checkpoint(expdir / "states-5.ckpt")
    hidden = [v for k, v in states["Downstream"].items() if k.endswith("mlp.3.weight")]
    assert [tuple(v.shape) for v in hidden] == [(1024, 1024)]  # PooledMLP's second hidden layer
    before = torch.load(tiny_wavlm, weights_only=True)["model"]
    after = {k.split("model.", 1)[-1]: v for k, v in states["Upstream"].items()}
    changed = [k for k, v in before.items() if k in after and v.is_floating_point() and not torch.equal(v, after[k])]
    assert changed, "the upstream was not trained"


@pytest.mark.slow
def test_invariance_is_checked_on_a_sample_when_it_cannot_be_proven(synth_root, pooled_config, tmp_path):
    """A layer-norm conv stack without waveform normalisation cancels a scale but not a shift:
    another fold runs 5 files under both statistics and reuses the store only within tolerance."""
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    torch.manual_seed(0)
    cfg = {"extractor_mode": "layer_norm", "conv_feature_layers": "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2",
           "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
           "conv_pos": 16, "conv_pos_groups": 4, "normalize": False}  # fmt: skip
    upstream = tmp_path / "ln.pt"
    torch.save({"cfg": cfg, "model": WavLM(WavLMConfig(cfg)).state_dict()}, upstream)
    cache = tmp_path / "cache"
    train_cli(pooled_config, synth_root, tmp_path / "f1", cache, upstream=upstream, steps=1)
    train_cli(pooled_config, synth_root, tmp_path / "f2", cache, "-v", "fold2", "--invariance-tolerance", "1",
              upstream=upstream, steps=1)  # fmt: skip
    reused = report(tmp_path / "f2")
    assert reused["case"] == "reused (invariant)"
    assert 0 < reused["max_rel_diff"] <= 1
    assert reused["extracted"] == 0
    assert reused["upstream_calls"] == 5
    assert reused["store"] == report(tmp_path / "f1")["store"]
    train_cli(pooled_config, synth_root, tmp_path / "f3", cache, "-v", "fold3", "--invariance-tolerance", "0",
              upstream=upstream, steps=1)  # fmt: skip
    built = report(tmp_path / "f3")
    assert built["case"] == "built (not invariant)"
    assert built["max_rel_diff"] > 0
    assert built["extracted"] == 60
    assert built["store"] != reused["store"]


@pytest.mark.slow
def test_benchmark_quick_run_reports_every_part(repo_root, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "one_pass.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    keys = {"stock_s", "fast_s", "ratio", "stock_calls_per_file", "fast_calls_per_file", "dev_f1", "test_f1"}
    for part in ("single_fold", "five_folds", "base_sized"):
        assert keys <= set(results[part]), part
    assert len(results["five_folds"]["dev_f1"]) == 2
    assert len(results["single_fold"]["test_f1"]) == 2
    five = results["five_folds"]
    assert five["fast_passes_per_file"] <= 1.1 < five["stock_passes_per_file"]  # waveforms through the upstream
    assert results["protocol"] == {"stock_passes": 12_543_690, "per_fold_passes": 213_165, "per_file_passes": 30_894}
    assert "| five_folds |" in done.stdout
    assert "targets:" in done.stdout
