"""The one helper that runs S3PRL's own runner (``python -m s3prl.run_downstream``) in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_downstream(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the runner with ``args``; with ``check``, a non-zero exit fails the test with its stderr."""
    result = subprocess.run([sys.executable, "-m", "s3prl.run_downstream", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"runner failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def train_downstream(
    repo_root: Path,
    root: Path,
    expdir: Path,
    *overrides: str,
    upstream: tuple[str, ...] = ("-u", "fbank"),
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Train ``emotion_multilabel`` with SYNTH.yaml on the corpora under ``root`` on the CPU;
    ``overrides`` are extra ``-o`` items (joined with S3PRL's ``,,``)."""
    options = ",,".join([f"config.downstream_expert.datarc.root='{root}/'", *overrides])
    return run_downstream(
        "-m",
        "train",
        *upstream,
        "-d",
        "emotion_multilabel",
        "-c",
        str(repo_root / "downstream_configs" / "SYNTH.yaml"),
        "-p",
        str(expdir),
        "--device",
        "cpu",
        "-o",
        options,
        check=check,
    )
