"""Bad corpora fail when the expert is built, naming the file and row, leaving nothing behind."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from s3prl_runner import train_downstream

from s3prl_emo.downstream.expert import DownstreamExpert
from s3prl_emo.errors import CorpusLayoutError, InvalidInputError

MODELRC = {"projector_dim": 8, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}


def build(root, expdir, **datarc):
    config = {
        "datarc": {"root": str(root), "corpus": "SYNTH", "p_or_s": "Primary", "test_fold": "fold1", **datarc},
        "modelrc": MODELRC,
    }
    return DownstreamExpert(upstream_dim=4, downstream_expert=config, expdir=str(expdir))


def label_file(root, fold=1):
    return root / "SYNTH" / "Primary" / f"labels_consensus_{fold}.csv"


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
