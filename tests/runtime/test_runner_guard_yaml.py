"""``run_downstream`` hands S3PRL's main libyaml's parser and emitter: the same config, the same files."""

import yaml

from s3prl_emo.runtime import runner_guard


def test_main_reads_and_writes_what_pure_python_yaml_does(tmp_path, monkeypatch, repo_root):
    assert yaml.__with_libyaml__  # PyYAML's wheels carry libyaml: else the test would compare yaml with itself
    configs, texts = {}, {}

    class Capture:
        def __init__(self, args, config):
            configs[label] = config

        def train(self):
            return None

    for label in ("pure", "libyaml"):
        with monkeypatch.context() as patch:
            if label == "pure":
                patch.setattr(runner_guard, "_libyaml", lambda: yaml)
            expdir = tmp_path / label
            argv = ["-m", "train", "-u", "fbank", "-d", "emotion_multilabel", "-p", str(expdir)]
            runner_guard.run_downstream(
                [*argv, "-c", str(repo_root / "downstream_configs" / "IEMOCAP.yaml")], runner=Capture
            )
        written = sorted(expdir.glob("*.yaml"))
        assert [p.name.split("_")[0] for p in written] == ["args", "config"]
        texts[label] = [p.read_text().replace(str(expdir), "EXPDIR") for p in written]
    assert configs["pure"] == configs["libyaml"]
    assert texts["pure"] == texts["libyaml"]
    import s3prl.run_downstream

    assert s3prl.run_downstream.yaml is yaml  # left as it was
