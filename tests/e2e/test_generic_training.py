"""A corpus brought through `prepare generic` trains with S3PRL's runner."""

import csv
import json

import pytest
from helpers.s3prl_runner import train_downstream

from s3prl_emo.cli import main


@pytest.mark.slow
def test_downstream_trains_on_a_generic_prepared_corpus(synth_root, repo_root, tmp_path):
    audio = synth_root / "SYNTH" / "Audios"
    truth = json.loads((synth_root / "SYNTH" / "acted_emotions.json").read_text())
    with open(tmp_path / "votes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["FileName", "annotator", "emotion"])
        for name, item in truth.items():
            writer.writerows([name, f"rater{i}", vote] for i, vote in enumerate(item["votes"]))
    with open(tmp_path / "meta.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["FileName", "SpkrID", "Gender", "Session"])
        for name in truth:
            speaker = name.split("_")[0]
            writer.writerow([name, speaker, {"F": "Female", "M": "Male"}[speaker[-1]], speaker[:5]])
    root = tmp_path / "data"
    assert (
        main(
            [
                "prepare",
                "generic",
                "--raw",
                str(audio),
                "--votes",
                str(tmp_path / "votes.csv"),
                "--meta",
                str(tmp_path / "meta.csv"),
                "--classes",
                "angry,sad,neutral,happy,fear",
                "--folds",
                "5",
                "--name",
                "MINE",
                "--out",
                str(root),
            ]
        )
        == 0
    )
    assert main(["check-splits", str(root / "MINE" / "Primary")]) == 0

    expdir = tmp_path / "exp"
    result = train_downstream(
        repo_root,
        root,
        expdir,
        "config.downstream_expert.datarc.corpus='MINE'",
        "config.downstream_expert.datarc.test_fold='fold3'",
        "config.runner.total_steps=10",
        "config.runner.log_step=5",
        "config.runner.eval_step=5",
        "config.runner.save_step=5",
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((expdir / "test_fold3_metrics.json").read_text())
    assert metrics["label_file"].endswith("MINE/Primary/labels_consensus_3.csv")
    assert metrics["num_utterances"] > 0
