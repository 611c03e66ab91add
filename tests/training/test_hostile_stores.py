"""Hostile or careless feature stores, locks, checkpoints and configs, through the public commands.

A shared cache, a copied experiment folder or an edited config may hold anything: every case
is named and rebuilt or refused, never followed out of its folder, never written through a
link, never a crash deep in torch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.runtime import runlock
from s3prl_emo.runtime.checkpoints import load_checkpoint, save_checkpoint
from s3prl_emo.training.feature_store import FeatureStore, exclusive, file_hashes
from s3prl_emo.training.one_pass import ShapeProbe

# A folder name that S3PRL would run as code if it were spliced into its -o text.
HOSTILE_NAME = "x,,args.seed=__import__('pathlib').Path('PWNED').touch()"
OVERRIDE = (
    "config.downstream_expert.datarc.root='{root}/',,config.downstream_expert.datarc.train_batch_size=8,,"
    "config.runner.total_steps={steps},,config.runner.log_step={steps},,config.runner.eval_step={steps},,"
    "config.runner.save_step={steps}"
)


@pytest.fixture(scope="module")
def world(synth_root, repo_root, tmp_path_factory):
    """A corpus copy, a pooled config, and a first one-pass run (fbank, 8 entries per shard)."""
    base = tmp_path_factory.mktemp("hostile")
    root = base / "data"
    (root / "SYNTH" / "Audios").mkdir(parents=True)
    shutil.copytree(synth_root / "SYNTH" / "Primary", root / "SYNTH" / "Primary")
    for wav in (synth_root / "SYNTH" / "Audios").iterdir():
        (root / "SYNTH" / "Audios" / wav.name).symlink_to(wav)
    config = base / "pooled.yaml"
    text = (repo_root / "downstream_configs" / "SYNTH.yaml").read_text()
    config.write_text(text.replace("select: DeepModel", "select: UtteranceLevel"))
    world = argparse.Namespace(base=base, root=root, config=config, cache=base / f"cache{HOSTILE_NAME}")
    world.exp = base / f"exp{HOSTILE_NAME}"
    train(world, world.exp)
    return world


def train(world, expdir, *extra, steps=2, check=True, fold=None):
    args = [sys.executable, "-m", "s3prl_emo.cli", "train", "-c", str(world.config), "-p", str(expdir)]
    args += ["--device", "cpu", "-u", "fbank", "--cache-dir", str(world.cache)]
    args += ["-o", OVERRIDE.format(root=world.root, steps=steps), *(["-v", fold] if fold else []), *extra]
    env = {**os.environ, "S3PRL_EMO_SHARD_ENTRIES": "8"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=world.base)
    if check and result.returncode != 0:
        raise AssertionError(f"s3prl-emo train failed ({result.returncode}):\n{result.stderr[-3000:]}")
    assert not list(world.base.rglob("PWNED")), "a path was run as code by S3PRL's -o"
    return result


def runner(world, *args):
    return subprocess.run(
        [sys.executable, "-m", "s3prl.run_downstream", *args], capture_output=True, text=True, cwd=world.base
    )


def report(expdir):
    return json.loads((expdir / "one_pass.json").read_text())


def store_of(expdir) -> Path:
    return Path(report(expdir)["store"])


def victim(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("precious\n")
    return path


# -- stores, shard indexes and locks in a shared cache ------------------------------------------


def rewrite(index_file: Path, edit) -> None:
    shard = json.loads(index_file.read_text())
    edit(shard)
    index_file.write_text(json.dumps(shard))


def nan_data(index_file: Path) -> None:
    """NaN features with a digest and size that match: only the values are wrong."""
    data = index_file.with_suffix(".bin")
    raw = bytearray(data.read_bytes())
    raw[:4] = np.float32(np.nan).tobytes()
    data.write_bytes(bytes(raw))
    rewrite(index_file, lambda s: s.update(blake2b=hashlib.blake2b(bytes(raw), digest_size=16).hexdigest()))


CORRUPTIONS = [
    (lambda s: s["entries"][-1].__setitem__(1, s["entries"][-1][1] + 1000), "starts at row"),  # past the data
    (lambda s: s["entries"][0].__setitem__(1, -1), "starts at row -1"),  # negative offset
    (lambda s: s.update(nbytes=float("nan")), "nbytes nan"),
    (lambda s: s["entries"][0].__setitem__(2, "3"), "'3' rows"),  # wrong type
    (lambda s: s["entries"].__setitem__(0, s["entries"][0][:2]), "not [key, start, rows]"),  # wrong shape
    (lambda s: s["entries"][-1].__setitem__(2, s["entries"][-1][2] + 5), "rows ("),  # rows past the data
    (nan_data, "holding NaN or infinite features"),
]


@pytest.mark.slow
def test_a_hostile_cache_is_named_repaired_and_no_link_is_written_through(world):
    store = store_of(world.exp)
    shards = sorted(store.glob("shard-*.json"))
    assert len(shards) == 8  # 60 files, 8 per shard
    broken, expected = {}, 0
    for index_file, (edit, message) in zip(shards, CORRUPTIONS, strict=False):
        expected += len(json.loads(index_file.read_text())["entries"])
        if edit is nan_data:
            nan_data(index_file)
        else:
            rewrite(index_file, edit)
        broken[index_file.stem] = message
    outside = world.base / "outside"
    outside.mkdir(exist_ok=True)
    store_lock = store.parent / ".lock"
    store_lock.unlink()
    store_lock.symlink_to(victim(outside, "store-lock-target"))
    (world.cache / "file_hashes.json").write_text("[1, 2]")  # the wrong type
    (shapes,) = (world.cache / "shapes").iterdir()
    shapes.write_text(json.dumps({**json.loads(shapes.read_text()), "dim": "64"}))
    expdir = world.base / "exp-links"
    expdir.mkdir()
    (expdir / runlock.LOCK_NAME).symlink_to(victim(outside, "run-lock-target"))
    (expdir / "log.log").symlink_to(victim(outside, "log-target"))

    result = train(world, expdir)

    for stem, message in broken.items():
        line = next((x for x in result.stderr.splitlines() if stem in x and "never read" in x), "")
        assert message in line, (stem, message, line)
    assert report(expdir)["extracted"] == expected  # the entries of the seven broken shards
    assert "file_hashes.json: not a map" in result.stderr
    assert "dim is '64'" in result.stderr
    assert sorted(p.read_text() for p in outside.iterdir()) == ["precious\n"] * 3
    assert not store_lock.is_symlink()
    assert (expdir / "log.log").is_file()
    assert not (expdir / "log.log").is_symlink()
    assert (expdir / "dev-best.ckpt").is_file()
    assert len(list(store.glob("shard-*.json"))) == 1 + 7  # the intact shard and the re-extracted files


@pytest.mark.slow
def test_store_metadata_with_non_finite_statistics_is_rebuilt(world):
    store = store_of(world.exp)
    meta = json.loads((store / "meta.json").read_text())
    (store / "meta.json").write_text(json.dumps({**meta, "wav_std": float("nan")}))
    expdir = world.base / "exp-meta"
    result = train(world, expdir)
    assert f"{store}: meta.json is wrong (wav_std is nan, not a finite number > 0)" in result.stderr
    assert report(expdir)["extracted"] == 60
    assert store_of(expdir) == store
    assert json.loads((store / "meta.json").read_text()) == meta


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["relative", "symlink"])
def test_an_alias_leading_out_of_the_cache_is_named_and_ignored(world, kind):
    """Another fold's statistics: the fold-1 store is checked (tolerance wide open) and an alias
    written; an alias edited to lead out of the cache is never followed."""
    first = world.base / "exp-fold2"
    if not first.exists():
        train(world, first, "--invariance-tolerance", "1e9", fold="fold2")
        assert report(first)["case"] == "reused (invariant)"
    (alias_file,) = (store_of(world.exp).parent / "aliases").iterdir()
    outside = world.base / f"outside-store-{kind}"
    shutil.copytree(store_of(world.exp), outside)
    (outside / "planted").write_text("x")
    if kind == "relative":
        target = os.path.relpath(outside, alias_file.parent.parent)
    else:
        target = "stats-link"
        (alias_file.parent.parent / target).symlink_to(outside, target_is_directory=True)
    alias = json.loads(alias_file.read_text())
    alias_file.write_text(json.dumps({**alias, "target": target}))
    expdir = world.base / f"exp-alias-{kind}"
    result = train(world, expdir, "--invariance-tolerance", "1e9", fold="fold2")
    assert str(alias_file) in result.stderr or "stats-link" in result.stderr
    assert report(expdir)["case"] == "reused (invariant)"
    assert store_of(expdir) == store_of(world.exp)
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        [*(p.name for p in store_of(world.exp).iterdir()), "planted"]
    )


# -- evaluate and resume from a moved or edited checkpoint -------------------------------------


def moved_checkpoint(world, name: str, folder: str, **edits) -> Path:
    state = load_checkpoint(world.exp / name)
    state["Args"].expdir = str(world.base / "elsewhere" / "deep")
    for key, value in edits.items():
        state[key] = value
    (world.base / folder).mkdir(exist_ok=True)
    path = world.base / folder / name
    save_checkpoint(state, path)
    return path


@pytest.mark.slow
def test_evaluate_and_resume_write_next_to_the_checkpoint_not_where_it_points(world):
    ckpt = moved_checkpoint(world, "dev-best.ckpt", "moved")
    moved_checkpoint(world, "states-2.ckpt", "moved")
    before = sorted(p.name for p in world.exp.iterdir())
    result = runner(world, "-m", "evaluate", "-e", str(ckpt), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "writing next to the checkpoint" in result.stderr
    assert len((ckpt.parent / "test_fold1_predict.txt").read_text().splitlines()) == 12
    train(world, world.base / "unused", "-e", str(ckpt.parent / "states-2.ckpt"), "-o", "config.runner.total_steps=4")
    assert load_checkpoint(ckpt.parent / "states-4.ckpt")["Step"] == 4
    assert not (world.base / "elsewhere").exists()
    assert not (world.base / "unused").exists()
    assert sorted(p.name for p in world.exp.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "code", "message"),
    [
        ("nan_weight", 2, "holds NaN or infinite weights"),
        ("step", 2, "Step is '10', not a whole number"),
        ("nan_std", 1, "_extra_state.wav_std: nan is not a finite number"),
    ],
)
def test_a_checkpoint_with_wrong_types_or_non_finite_values_is_refused(world, edit, code, message):
    state = load_checkpoint(world.exp / "dev-best.ckpt")
    downstream = dict(state["Downstream"])
    if edit == "nan_weight":
        key = next(k for k, v in downstream.items() if isinstance(v, torch.Tensor) and v.is_floating_point())
        downstream[key] = torch.full_like(downstream[key], float("nan"))
    elif edit == "nan_std":
        downstream["_extra_state"] = {**downstream["_extra_state"], "wav_std": float("nan")}
    edits = {"Downstream": downstream, **({"Step": "10"} if edit == "step" else {})}
    ckpt = moved_checkpoint(world, "dev-best.ckpt", f"bad-{edit}", **edits)
    result = runner(world, "-m", "evaluate", "-e", str(ckpt), "--device", "cpu")
    assert result.returncode == code
    assert message in result.stderr
    assert not (ckpt.parent / "test_fold1_predict.txt").exists()


# -- configs --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_crop_below_one_sample_names_the_key_and_leaves_no_experiment(world):
    expdir = world.base / "exp-crop"
    result = runner(
        world, "-m", "train", "-u", "fbank", "-d", "emotion_multilabel", "-c", str(world.config), "-p", str(expdir),
        "--device", "cpu", "-o", OVERRIDE.format(root=world.root, steps=2) + ",,"
        "config.downstream_expert.datarc.max_duration_s=1e-5",
    )  # fmt: skip
    assert result.returncode != 0
    assert "downstream_expert.datarc.max_duration_s: expected a number of seconds" in result.stderr
    assert "got 1e-05" in result.stderr
    assert not expdir.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("value", "shown"), [("float('nan')", "got nan"), ("'10'", "got '10'"), ("0", "got 0")])
def test_the_one_pass_trainer_refuses_a_bad_crop_before_any_work(world, value, shown):
    expdir = world.base / "exp-crop-fast"
    result = train(world, expdir, "-o", f"config.downstream_expert.datarc.max_duration_s={value}", check=False)
    assert result.returncode == 2
    assert "datarc.max_duration_s: expected a number of seconds" in result.stderr
    assert shown in result.stderr
    assert "Traceback" not in result.stderr
    assert not expdir.exists()


@pytest.mark.slow
def test_a_corpus_error_with_shared_statistics_leaves_no_experiment(world):
    """The shared statistics are copied into the new folder before the expert reads the corpus:
    a corpus error removes the copy with the folder."""
    labels = world.root / "SYNTH" / "Primary" / "labels_consensus_1.csv"
    original = labels.read_text()
    frame = pd.read_csv(labels, dtype=str)
    frame.loc[5, "angry"] = "0.5"
    frame.to_csv(labels, index=False)
    expdir = world.base / "exp-corpus"
    try:
        result = train(world, expdir, check=False)
    finally:
        labels.write_text(original)
    assert result.returncode == 2
    assert "line 7" in result.stderr
    assert not expdir.exists()


# -- the same rules, one function at a time --------------------------------------------------------

META = {"layers": 2, "dim": 3, "dtype": "float32", "wav_mean": 0.0, "wav_std": 0.1}


def small_store(folder: Path) -> FeatureStore:
    store = FeatureStore.open(folder / "s", META, repair=True)
    with exclusive(folder):
        store.add((f"k{i}", np.full((i + 1, 2, 3), i, dtype=np.float32)) for i in range(3))
    return store


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"layers": "2"}, "layers is '2'"),
        ({"dim": 0}, "dim is 0"),
        ({"dim": True}, "dim is True"),
        ({"dtype": "float64"}, "dtype is 'float64'"),
        ({"wav_mean": float("inf")}, "wav_mean is inf"),
        ({"wav_std": -1.0}, "wav_std is -1.0, not a finite number > 0"),
        ({"wav_std": 0.2}, "does not match its key"),
    ],
)
def test_bad_store_metadata_is_named_and_the_store_rebuilt(tmp_path, caplog, edit, message):
    small_store(tmp_path)
    meta_file = tmp_path / "s" / "meta.json"
    meta_file.write_text(json.dumps({**META, **edit}))
    assert FeatureStore.open(tmp_path / "s") is None or edit == {"wav_std": 0.2}
    rebuilt = FeatureStore.open(tmp_path / "s", META, repair=True)
    assert message in caplog.text
    assert "meta.json" in caplog.text
    assert rebuilt.missing(["k0", "k1", "k2"]) == ["k0", "k1", "k2"]
    assert json.loads(meta_file.read_text()) == META
    assert not list((tmp_path / "s").glob("shard-*"))


def test_store_files_that_are_links_are_never_read_or_removed_through(tmp_path, caplog):
    small_store(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (index_file,) = (tmp_path / "s").glob("shard-*.json")
    shutil.copy(index_file, outside / "index.json")
    index_file.unlink()
    index_file.symlink_to(outside / "index.json")
    assert FeatureStore.open(tmp_path / "s", repair=True).missing(["k0"]) == ["k0"]
    assert "a symbolic link" in caplog.text
    assert (outside / "index.json").is_file()
    assert not index_file.exists()
    meta_file = tmp_path / "s" / "meta.json"
    shutil.copy(meta_file, outside / "meta.json")
    meta_file.unlink()
    meta_file.symlink_to(outside / "meta.json")
    assert FeatureStore.open(tmp_path / "s") is None
    assert FeatureStore.open(tmp_path / "s", META, repair=True) is not None
    assert not meta_file.is_symlink()
    assert (outside / "meta.json").read_text() == meta_file.read_text()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_a_store_lock_that_is_not_a_plain_file_is_replaced_without_touching_its_target(tmp_path, kind):
    target = victim(tmp_path, "target")
    lock = tmp_path / "store" / ".lock"
    lock.parent.mkdir()
    if kind == "symlink":
        lock.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, lock)
    else:
        os.mkfifo(lock)
    with exclusive(lock.parent):
        assert lock.is_file()
        assert not lock.is_symlink()
        assert os.stat(lock).st_nlink == 1
    assert target.read_text() == "precious\n"


def test_the_experiment_lock_is_never_written_through_a_link(tmp_path):
    target = victim(tmp_path, "target")
    expdir = tmp_path / "exp"
    expdir.mkdir()
    (expdir / runlock.LOCK_NAME).symlink_to(target)
    path = runlock.acquire(expdir)
    assert not path.is_symlink()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    runlock.release(path)
    assert target.read_text() == "precious\n"
    (expdir / runlock.LOCK_NAME).write_text(json.dumps({"pid": 2**80, "host": os.uname().nodename}))
    runlock.release(runlock.acquire(expdir))  # an impossible PID is no owner: broken, not a crash


def test_checkpoint_and_audio_cache_temporaries_are_never_written_through_a_link(tmp_path, synth_root):
    target = victim(tmp_path, "target")
    (tmp_path / f".dev-best.ckpt.{os.getpid()}.partial").symlink_to(target)
    save_checkpoint({"Step": 1}, tmp_path / "dev-best.ckpt")
    assert load_checkpoint(tmp_path / "dev-best.ckpt")["Step"] == 1
    assert target.read_text() == "precious\n"

    import soundfile as sf

    from s3prl_emo.data.fold import AudioStore

    audios = synth_root / "SYNTH" / "Audios"
    name = next(p.name for p in sorted(audios.iterdir()) if sf.info(str(p)).samplerate != 16_000)
    store = AudioStore(audios, 1.0, pre_load=False, cache_dir=tmp_path / "cache")
    planned = store._cache_path(audios / name)
    planned.parent.mkdir()
    planned.with_suffix(f".{os.getpid()}.tmp.npy").symlink_to(target)
    assert len(store.get(name)) == 16_000
    assert planned.is_file()
    assert target.read_text() == "precious\n"


def test_a_poisoned_hash_cache_and_shape_record_are_not_trusted(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"abc")
    cache = tmp_path / "file_hashes.json"
    cache.write_text(json.dumps({"stamp": ["not", "a", "hash"]}))
    assert file_hashes([audio], cache) == [hashlib.blake2b(b"abc", digest_size=16).hexdigest()]
    assert ShapeProbe.check({"key": "x", "raw_layers": -1, "dim": 4, "downsample_rate": 1}) == (
        "raw_layers is -1, not a whole number >= 0"
    )
    assert ShapeProbe.check([1]) is not None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cache-budget-gb", "nan"], "--cache-budget-gb: nan is not a finite number"),
        (["--invariance-tolerance", "-1"], "--invariance-tolerance: -1.0 is not a finite number"),
        (["--invariance-tolerance", "inf"], "--invariance-tolerance: inf"),
    ],
)
def test_store_flags_must_be_finite(world_free_config, tmp_path, caplog, flags, message):
    from s3prl_emo.cli import main

    assert main(["train", "-c", str(world_free_config), "-p", str(tmp_path / "exp"), *flags]) == 2
    assert message in caplog.text
    assert not (tmp_path / "exp").exists()


@pytest.fixture
def world_free_config(repo_root):
    return repo_root / "downstream_configs" / "SYNTH.yaml"


def test_a_states_file_s3prl_cannot_order_is_named(tmp_path):
    from s3prl_emo.runtime.runner_guard import preflight

    save_checkpoint({"Step": 1}, tmp_path / "states-1.ckpt")
    (tmp_path / "states-best.ckpt").write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"states-best\.ckpt is not named states-<step>\.ckpt"):
        preflight(["-m", "train", "-e", str(tmp_path)])
