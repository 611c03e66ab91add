"""Hostile, careless or broken input to the downstream, the runner and the shared rules: every case fails
early, names the culprit (file, row, key or flag), and leaves nothing behind."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from helpers.s3prl_runner import train_downstream

from s3prl_emo.data.fold import AudioStore, normalisation_stats
from s3prl_emo.downstream.expert import DownstreamExpert
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError
from s3prl_emo.inference.recognizer import waveform_16k
from s3prl_emo.runtime import runlock
from s3prl_emo.runtime.atomic import remove_stale_stages, staged_dir

MODELRC = {"projector_dim": 8, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}


def build(data_root, expdir, runner=None, loss=None, modelrc=None, **datarc):
    config = {
        "datarc": {"root": str(data_root), "corpus": "SYNTH", "p_or_s": "Primary", "test_fold": "fold1", **datarc},
        "modelrc": modelrc or MODELRC,
    }
    if loss is not None:
        config["loss"] = loss
    extra = {"runner": runner} if runner is not None else {}
    return DownstreamExpert(upstream_dim=4, downstream_expert=config, expdir=str(expdir), **extra)


def label_file(root, fold=1):
    return root / "SYNTH" / "Primary" / f"labels_consensus_{fold}.csv"


def rename_in_labels(root, row, new_name):
    path = label_file(root)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, "FileName"] = new_name
    frame.to_csv(path, index=False)
    return path


# -- file names stay inside Audios/ -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../outside.wav", r"contains '\.\.'"),
        ("sub/../../x.wav", r"contains '\.\.'"),
        ("/etc/hostname", "is an absolute path"),
        (" Ses01F_u000.wav", "leading or trailing white space"),
        ("Ses01F_u000.wav ", "leading or trailing white space"),
        ("", "empty FileName"),
    ],
)
def test_file_names_must_stay_inside_the_audio_folder(synth_copy, tmp_path, name, problem):
    path = rename_in_labels(synth_copy, 2, name)
    with pytest.raises(InvalidInputError, match=problem) as err:
        build(synth_copy, tmp_path / "exp", allow_leakage=True)
    assert f"{path}, line 4" in str(err.value)
    if name.strip():
        assert repr(name) in str(err.value)  # a stray space is visible
    assert not (tmp_path / "exp").exists()


def test_no_cache_is_written_outside_the_experiment(synth_copy, tmp_path):
    audios = synth_copy / "SYNTH" / "Audios"
    nested = audios / "deep" / "er"
    nested.mkdir(parents=True)
    source = next(p for p in sorted(audios.iterdir()) if p.is_symlink() and sf.info(str(p)).samplerate != 16_000)
    os.symlink(os.readlink(source), nested / "x.wav")
    store = AudioStore(audios, 2.0, pre_load=False, cache_dir=tmp_path / "exp" / "cache" / "audio16k")
    store.get("deep/er/x.wav")
    store.get(source.name)
    cached = sorted((tmp_path / "exp" / "cache" / "audio16k").iterdir())
    assert len(cached) == 2
    assert all(p.suffix == ".npy" for p in cached)
    assert not list(audios.rglob("*.npy"))


def test_audio_cache_is_keyed_by_source_and_crop(synth_copy, tmp_path):
    audios = synth_copy / "SYNTH" / "Audios"
    name = next(p.name for p in sorted(audios.iterdir()) if sf.info(str(p)).samplerate != 16_000)
    cache = tmp_path / "cache"
    long = AudioStore(audios, 2.0, pre_load=False, cache_dir=cache).get(name)
    short = AudioStore(audios, 0.5, pre_load=False, cache_dir=cache).get(name)
    assert len(long) > len(short) == 8000
    # Same name, new content (e.g. another root): the old conversion is not reused.
    (audios / name).unlink()
    sf.write(audios / name, np.full(44_100, 0.25, dtype=np.float32), 44_100)
    fresh = AudioStore(audios, 2.0, pre_load=False, cache_dir=cache).get(name)
    assert np.allclose(fresh[1000:-1000], 0.25, atol=1e-2)
    assert len(list(cache.iterdir())) == 3


# -- non-finite audio and statistics ------------------------------------------------------------


def write_with_nan(path, value=np.nan):
    wav, rate = sf.read(str(path), dtype="float32")
    wav[len(wav) // 2] = value
    path.unlink()
    sf.write(path, wav, rate, subtype="FLOAT")


def test_non_finite_audio_is_refused_naming_the_file_and_stats_are_not_cached(synth_copy, tmp_path):
    frame = pd.read_csv(label_file(synth_copy))
    train_name = frame.loc[frame["Split_Set"] == "Train", "FileName"].iloc[0]
    audio = synth_copy / "SYNTH" / "Audios" / train_name
    original = audio.resolve().read_bytes()
    write_with_nan(audio)
    for pre_load in (True, False):
        with pytest.raises(InvalidInputError, match=rf"{train_name}: non-finite samples \(NaN or inf\), the first"):
            build(synth_copy, tmp_path / "exp", pre_load=pre_load)
    assert not list((tmp_path / "exp").rglob("wav_stats_*.json"))
    audio.unlink()
    audio.write_bytes(original)  # repaired: the same experiment folder now works
    expert = build(synth_copy, tmp_path / "exp", pre_load=False)
    assert np.isfinite([expert.normalize.mean, expert.normalize.std]).all()


def test_a_poisoned_stats_cache_is_not_trusted(synth_copy, tmp_path):
    expert = build(synth_copy, tmp_path / "exp")
    stats = tmp_path / "exp" / "cache" / "wav_stats_fold1.json"
    good = json.loads(stats.read_text())
    stats.write_text(json.dumps({**good, "mean": float("nan"), "std": float("inf")}))
    store, train = expert.store, expert.datasets["train"].names
    assert normalisation_stats(store, train, stats) == pytest.approx((good["mean"], good["std"]))
    assert json.loads(stats.read_text())["mean"] == pytest.approx(good["mean"])


def test_stats_are_recomputed_when_a_train_file_changes(synth_copy, tmp_path):
    expert = build(synth_copy, tmp_path / "exp", pre_load=False)
    before = (expert.normalize.mean, expert.normalize.std)
    name = expert.datasets["train"].names[0]
    audio = synth_copy / "SYNTH" / "Audios" / name
    wav, rate = sf.read(str(audio), dtype="float32")
    audio.unlink()
    sf.write(audio, np.clip(wav * 3.0 + 0.1, -1, 1), rate, subtype="FLOAT")
    after = build(synth_copy, tmp_path / "exp", pre_load=False).normalize
    assert (after.mean, after.std) != pytest.approx(before)


# -- the whole downstream_expert block and the runner schedule ---------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runner": {"total_steps": 0}}, r"runner\.total_steps: expected an integer >= 1, got 0"),
        ({"runner": {"total_steps": -5}}, r"runner\.total_steps: expected an integer >= 1"),
        ({"runner": {"total_steps": 10, "eval_step": 0}}, r"runner\.eval_step"),
        ({"runner": {"total_steps": 10, "eval_dataloaders": ["valid"]}}, r"runner\.eval_dataloaders"),
        ({"max_duration_s": 0}, r"datarc\.max_duration_s: expected a number of seconds in .*, got 0$"),
        ({"max_duration_s": -3}, r"datarc\.max_duration_s: expected a number of seconds in .*, got -3$"),
        ({"max_duration_s": 1e-5}, r"datarc\.max_duration_s: .*one sample at 16 kHz or more\), got 1e-05$"),
        ({"max_duration_s": float("nan")}, r"datarc\.max_duration_s: .*, got nan$"),
        ({"max_duration_s": 1e308}, r"datarc\.max_duration_s: .*, got 1e\+308$"),
        ({"max_duration_s": "ten"}, r"datarc\.max_duration_s"),
        ({"train_batch_size": 0}, r"datarc\.train_batch_size: expected an integer >= 1, got 0"),
        ({"eval_batch_size": 2.5}, r"datarc\.eval_batch_size"),
        ({"num_workers": -1}, r"datarc\.num_workers: expected an integer >= 0"),
        ({"pre_load": "yes"}, r"datarc\.pre_load: expected true or false"),
        ({"test_fold": "first"}, r"datarc\.test_fold: unknown fold 'first'"),
        ({"max_duraton_s": 5}, r"datarc: unknown key\(s\) \['max_duraton_s'\]; allowed: .*'max_duration_s'"),
        ({"loss": {"weighting": "classes"}}, r"loss\.weighting: expected one of \['sample', 'class'\]"),
        ({"loss": {"name": "focal"}}, r"loss\.name: expected one of \['cbce', 'ce'\]"),
        ({"loss": {"beta": 1.5}}, r"loss\.beta: expected a number in \[0, 1\)"),
        ({"modelrc": {"select": "Transformer"}}, r"modelrc\.select: expected one of \['DeepModel', 'PooledMLP', 'Utte"),
        ({"modelrc": {**MODELRC, "projector_dim": 0}}, r"modelrc\.projector_dim"),
        ({"root": ""}, r"datarc\.root: expected a non-empty string"),
    ],
)
def test_config_errors_name_the_key_and_leave_no_experiment(synth_copy, tmp_path, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        build(synth_copy, tmp_path / "exp", **kwargs)
    assert not (tmp_path / "exp").exists()


def test_a_missing_or_file_root_is_named(synth_copy, tmp_path):
    with pytest.raises(CorpusLayoutError, match=r"datarc\.root: .*nowhere does not exist"):
        build(tmp_path / "nowhere", tmp_path / "exp")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CorpusLayoutError, match=r"datarc\.root: .*afile is a file, not a folder"):
        build(tmp_path / "afile", tmp_path / "exp")
    with pytest.raises(CorpusLayoutError, match=r"corpus / p_or_s: .*Tertiary is not a folder"):
        build(synth_copy, tmp_path / "exp", p_or_s="Tertiary")
    assert not (tmp_path / "exp").exists()


def test_emo_type_as_a_string_is_refused(synth_copy, tmp_path):
    config = synth_copy / "SYNTH" / "Primary" / "config.json"
    raw = json.loads(config.read_text())
    raw["categorical"]["emo_type"] = "angry"
    config.write_text(json.dumps(raw))
    with pytest.raises(InvalidInputError, match=r"config\.json: .*emo_type must be a list of class names, got 'angry'"):
        build(synth_copy, tmp_path / "exp")


def test_max_keep_is_raised_so_a_save_never_leaves_nothing_to_resume(synth_copy, tmp_path):
    runner = {"total_steps": 20, "log_step": 10, "eval_step": 10, "save_step": 10, "max_keep": 1}
    build(synth_copy, tmp_path / "exp", runner=runner)
    assert runner["max_keep"] == 2


# -- run lock -----------------------------------------------------------------------------------


def test_run_lock_refuses_a_live_owner_and_breaks_a_dead_ones(tmp_path):
    expdir = tmp_path / "exp"
    expdir.mkdir()
    lock = expdir / runlock.LOCK_NAME
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename, "started": "now"}))
        with pytest.raises(InvalidInputError, match=rf"another training \(PID {sleeper.pid}.*{lock.name}"):
            runlock.acquire(expdir)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert runlock.acquire(expdir) == lock  # its owner is gone: stale, broken
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert runlock.acquire(expdir) == lock  # re-entrant
    runlock.release(lock)
    assert not lock.exists()


def test_a_second_expert_on_a_locked_folder_refuses_and_keeps_the_others_files(synth_copy, tmp_path):
    expdir = tmp_path / "exp"
    expdir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (expdir / runlock.LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        (expdir / "args_x.yaml").write_text("a: 1\n")
        with pytest.raises(InvalidInputError, match="another training"):
            build(synth_copy, expdir)
        assert sorted(p.name for p in expdir.iterdir()) == sorted([runlock.LOCK_NAME, "args_x.yaml"])
    finally:
        sleeper.kill()
        sleeper.wait()


# -- staging folders of prepare / synth ---------------------------------------------------------


def test_stale_staging_folders_are_cleaned_and_live_ones_kept(tmp_path):
    host = os.uname().nodename
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".SYNTH.{dead.pid}@{host}-abc.partial"
    old_style = tmp_path / ".SYNTH.k2j3h4.partial"
    live = tmp_path / f".SYNTH.{os.getpid()}@{host}-def.partial"
    other = tmp_path / ".OTHER.123@x-abc.partial"
    for folder in (stale, old_style, live, other):
        (folder / "Audios").mkdir(parents=True)
    with staged_dir(tmp_path / "SYNTH") as stage:
        (stage / "x").write_text("done")
    assert (tmp_path / "SYNTH" / "x").read_text() == "done"
    assert not stale.exists()
    assert not old_style.exists()
    assert live.exists()
    assert other.exists()
    assert remove_stale_stages(tmp_path / "SYNTH") == []


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling symlink"])
def test_overwrite_onto_a_file_or_symlink_fails_before_staging(tmp_path, kind):
    final = tmp_path / "SYNTH"
    target = tmp_path / "elsewhere"
    target.mkdir()
    if kind == "file":
        final.write_text("precious")
    else:
        final.symlink_to(target if kind == "symlink" else tmp_path / "missing")
    expected = "a file" if kind == "file" else "a symbolic link"
    with (
        pytest.raises(InvalidInputError, match=rf"SYNTH is {expected}, not a folder"),
        staged_dir(final, overwrite=True),
    ):
        raise AssertionError("staging must not start")
    assert not list(tmp_path.glob(".SYNTH.*"))


def test_synth_onto_a_file_exits_2_with_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "SYNTH").write_text("not a corpus")
    result = subprocess.run(
        [sys.executable, "-m", "s3prl_emo.cli", "synth", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "SYNTH: is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob(".SYNTH.*"))


# -- predict(wav, sr) input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wav", "rate", "message"),
    [
        (np.zeros(0, dtype=np.float32), 44_100, r"empty waveform \(0 samples"),
        (np.zeros((0, 2), dtype=np.float32), 16_000, r"empty waveform"),
        (np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32), 16_000, r"non-finite samples \(NaN or inf\)"),
        (np.array([0.1, np.inf] * 1000), 16_000, r"non-finite"),
        (np.zeros(16_000), 0, r"sample_rate 0 Hz is outside"),
        (np.zeros(16_000), -16_000, r"sample_rate -16000 Hz is outside"),
        (np.zeros(16_000), "16000", r"sample_rate must be a number of Hz, got '16000'"),
        (np.zeros(16_000), 16_000.5, r"sample_rate must be a whole number of Hz"),
        (np.zeros(16_000), float("nan"), r"sample_rate must be a whole number"),
        (np.zeros(16_000), True, r"sample_rate must be a number of Hz"),
        (np.zeros((4, 4)), 16_000, r"ambiguous shape \(4, 4\)"),
        (np.zeros((100, 5000)), 16_000, r"no plausible channel axis"),
        (np.zeros((1, 2, 16_000)), 16_000, r"expected a waveform of shape"),
        (np.array(["a", "b"]), 16_000, r"samples of type <U1 are not audio"),
        (np.zeros(16_000, dtype=np.int64), 16_000, r"samples of type int64 are not audio"),
    ],
)
def test_predict_input_errors_say_what_is_wrong(wav, rate, message):
    with pytest.raises(InvalidInputError, match=message):
        waveform_16k(wav, rate, 10.0)


def test_integer_pcm_is_scaled_and_channels_first_is_recognised():
    t = np.arange(16_000) / 16_000
    mono = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    as_int16 = np.round(mono * 32767).astype(np.int16)
    assert np.allclose(waveform_16k(as_int16, 16_000, None), mono, atol=1e-4)
    as_uint8 = np.round(mono * 127 + 128).astype(np.uint8)
    assert np.allclose(waveform_16k(as_uint8, 16_000, None), mono, atol=1e-2)
    ten_channels_first = np.tile(mono, (10, 1))  # (10, T): ten channels, not T of them
    assert np.allclose(waveform_16k(ten_channels_first, 16_000, None), mono, atol=1e-6)
    assert np.allclose(waveform_16k(torch.from_numpy(ten_channels_first.T.copy()), 16_000, None), mono, atol=1e-6)
    assert waveform_16k(np.stack([mono[:3], mono[:3]]), 16_000, None).shape == (3,)  # 3 samples, 2 channels


def test_predict_crops_before_resampling():
    hour = np.zeros(44_100 * 3600, dtype=np.int16)  # 318 MB as float64; cropped first, never converted whole
    wav = waveform_16k(hour, 44_100, 2.0)
    assert wav.shape == (32_000,)
    assert wav.dtype == np.float32
    assert waveform_16k(np.zeros(44_100 * 3, dtype=np.float32), 44_100.0, 1.0).shape == (16_000,)


def test_a_cropped_array_gives_the_samples_of_the_file_read_whole(tmp_path):
    """Cutting before resampling must not change the kept samples (a second of margin is resampled)."""
    import soundfile as sf

    from s3prl_emo.data.audio import load_audio

    rng = np.random.default_rng(1)
    stereo = (0.1 * rng.standard_normal((44_100 * 13, 2))).astype(np.float32)
    sf.write(tmp_path / "long.wav", stereo, 44_100, subtype="FLOAT")
    assert np.array_equal(waveform_16k(stereo, 44_100, 10.0), load_audio(tmp_path / "long.wav", 10.0))


# -- label files, audio and folds of a prepared corpus ---------------------------------------------


def edit_labels(root, edit):
    path = label_file(root)
    frame = pd.read_csv(path, dtype=str)
    frame = edit(frame) if callable(edit) else frame
    frame.to_csv(path, index=False)
    return path


def test_a_clean_corpus_builds(synth_copy, tmp_path):
    expert = build(synth_copy, tmp_path / "exp")
    assert {s: len(d) for s, d in expert.datasets.items()} == {"train": 36, "dev": 12, "test": 12}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["sad"]), r"classes differ .* missing column\(s\) \['sad'\]"),
        (lambda f: f.drop(columns=["Split_Set"]), r"missing column\(s\) \['Split_Set'\]"),
        (lambda f: f.drop(columns=["FileName"]), r"missing column\(s\) \['FileName'\]"),
        (lambda f: set_cell(f, 2, "angry", "nan"), r"line 4 \(.*\): empty or non-numeric"),
        (lambda f: set_cell(f, 5, "angry", "0.5"), r"line 7 \(.*\): class values sum to"),
        (lambda f: f.rename(columns={"fear": "fearful"}), r"classes differ .*unexpected column\(s\) \['fearful'\]"),
        (lambda f: set_cell(f, 1, "Split_Set", "Validation"), r"line 3: Split_Set 'Validation'"),
        (lambda f: set_cell(f, f["Split_Set"] == "Development", "Split_Set", "Train"), r"the dev split .* is empty"),
    ],
)
def test_label_file_errors_name_file_and_row(synth_copy, tmp_path, edit, message):
    path = edit_labels(synth_copy, edit)
    with pytest.raises(InvalidInputError, match=message) as err:
        build(synth_copy, tmp_path / "exp")
    assert str(path) in str(err.value)
    assert not (tmp_path / "exp").exists()


def test_classes_of_config_json_must_match_the_csv(synth_copy, tmp_path):
    config = synth_copy / "SYNTH" / "Primary" / "config.json"
    raw = json.loads(config.read_text())
    raw["categorical"]["emo_type"] = ["angry", "sad", "neutral", "happy", "surprise"]
    config.write_text(json.dumps(raw))
    with pytest.raises(InvalidInputError, match=r"classes differ.*\['surprise'\].*\['fear'\]"):
        build(synth_copy, tmp_path / "exp")


def test_unknown_fold(synth_copy, tmp_path):
    with pytest.raises(InvalidInputError, match=r"unknown fold 'fold9'.*labels_consensus_9.csv"):
        build(synth_copy, tmp_path / "exp", test_fold="fold9")
    with pytest.raises(InvalidInputError, match="unknown fold 'first'"):
        build(synth_copy, tmp_path / "exp", test_fold="first")


def set_cell(frame, row, column, value):
    frame.loc[row, column] = value
    return frame


def first_name(root):
    return pd.read_csv(label_file(root))["FileName"].iloc[3]


def test_missing_audio(synth_copy, tmp_path):
    name = first_name(synth_copy)
    (synth_copy / "SYNTH" / "Audios" / name).unlink()
    with pytest.raises(CorpusLayoutError, match=rf"line 5: audio file .*{name} not found"):
        build(synth_copy, tmp_path / "exp")


def test_unreadable_and_zero_length_audio(synth_copy, tmp_path):
    name = first_name(synth_copy)
    audio = synth_copy / "SYNTH" / "Audios" / name
    audio.unlink()
    audio.write_bytes(b"not a wav file at all")
    with pytest.raises(InvalidInputError, match=rf"line 5: unreadable audio .*{name}"):
        build(synth_copy, tmp_path / "exp")
    audio.unlink()
    sf.write(audio, np.zeros(0), 16_000)
    with pytest.raises(InvalidInputError, match=rf"line 5: audio file .*{name} has zero length"):
        build(synth_copy, tmp_path / "exp")


def test_a_leaking_fold_is_refused_unless_allowed(synth_copy, tmp_path):
    def leak(frame):
        return set_cell(frame, frame.index[frame["Split_Set"] == "Test"][0], "Split_Set", "Train")

    edit_labels(synth_copy, leak)
    with pytest.raises(InvalidInputError, match=r"leaks between splits.*several splits"):
        build(synth_copy, tmp_path / "exp")
    assert len(build(synth_copy, tmp_path / "exp", allow_leakage=True).datasets["train"]) == 37


def test_short_audio_is_padded_not_rejected(synth_copy, tmp_path):
    name = first_name(synth_copy)
    audio = synth_copy / "SYNTH" / "Audios" / name
    audio.unlink()
    sf.write(audio, np.full(200, 0.1), 44_100)  # 4.5 ms: fewer samples than one fbank frame
    expert = build(synth_copy, tmp_path / "exp")
    split = next(s for s, d in expert.datasets.items() if name in d.names)
    dataset = expert.datasets[split]
    wav, _, _ = dataset[dataset.names.index(name)]
    assert len(wav) == 1600


@pytest.mark.slow
def test_runner_exits_non_zero_naming_the_culprit_and_leaves_no_experiment(synth_copy, tmp_path, repo_root):
    path = edit_labels(synth_copy, lambda f: set_cell(f, 5, "angry", "0.5"))
    expdir = tmp_path / "exp"
    result = train_downstream(repo_root, synth_copy, expdir, check=False)
    assert result.returncode != 0
    assert f"{path}, line 7" in result.stderr
    assert not expdir.exists()
