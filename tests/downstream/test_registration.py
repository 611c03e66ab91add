import importlib
import subprocess
import sys

import pytest

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.runtime.link import MARKER, link, unlink


def test_s3prl_finds_the_downstream_through_the_installed_hook():
    expert = importlib.import_module("s3prl.downstream.emotion_multilabel.expert")
    from s3prl_emo.downstream.expert import DownstreamExpert

    assert expert.DownstreamExpert is DownstreamExpert


def test_hook_is_active_in_a_fresh_interpreter_and_allows_namespace_checkpoints(tmp_path):
    """What run_downstream.py relies on: no import of ours, weights_only left on."""
    code = (
        "import argparse, torch, s3prl, importlib;"
        f"torch.save({{'Args': argparse.Namespace(a=1)}}, r'{tmp_path / 'c.ckpt'}');"
        f"print(torch.load(r'{tmp_path / 'c.ckpt'}')['Args'].a);"
        "print(importlib.import_module('s3prl.downstream.emotion_multilabel.expert').DownstreamExpert.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "s3prl_emo.downstream.expert"]


@pytest.mark.parametrize(
    ("imports", "obj"),
    [
        ("import argparse", "argparse.Namespace(a=1)"),  # s3prl not imported: no change to torch
        ("import decimal, s3prl", "decimal.Decimal(1)"),
    ],  # s3prl imported: nothing beyond Namespace
)
def test_weights_only_stays_strict(tmp_path, imports, obj):
    ckpt = tmp_path / "c.ckpt"
    code = f"{imports}, torch; torch.save({{'x': {obj}}}, r'{ckpt}'); torch.load(r'{ckpt}')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "Weights only load failed" in out.stderr


@pytest.fixture
def fork(tmp_path):
    root = tmp_path / "s3prl"
    (root / "downstream").mkdir(parents=True)
    (root / "downstream" / "runner.py").write_text("# runner\n")
    return root


def test_link_writes_forwarding_package_and_is_idempotent(fork):
    target = link(fork)
    assert target == fork / "downstream" / "emotion_multilabel"
    assert link(fork) == target  # again: same files, no error
    assert (target / MARKER).is_file()
    assert "from s3prl_emo.downstream.expert import" in (target / "expert.py").read_text()
    namespace: dict = {}
    exec((target / "expert.py").read_text(), namespace)
    assert namespace["DownstreamExpert"].__module__ == "s3prl_emo.downstream.expert"
    assert unlink(fork) is True
    assert not target.exists()
    assert unlink(fork) is False


def test_link_refuses_a_folder_it_did_not_write(fork):
    own = fork / "downstream" / "emotion_multilabel"
    own.mkdir()
    (own / "expert.py").write_text("# somebody's own downstream\n")
    with pytest.raises(InvalidInputError, match="not written by s3prl-emo link"):
        link(fork)
    with pytest.raises(InvalidInputError, match="not written by s3prl-emo link"):
        unlink(fork)
    assert (own / "expert.py").read_text() == "# somebody's own downstream\n"


def test_link_names_the_flag_when_the_root_is_wrong(tmp_path):
    from s3prl_emo.cli import main

    assert main(["link", "--s3prl-root", str(tmp_path)]) == 2
    with pytest.raises(InvalidInputError, match="--s3prl-root"):
        link(tmp_path)
