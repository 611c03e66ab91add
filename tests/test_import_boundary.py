"""The data-preparation side, the metrics and the CLI import no torch (a fresh interpreter)."""

import subprocess
import sys

TORCH_FREE = (
    "s3prl_emo.data.corpora",
    "s3prl_emo.data.partitions",
    "s3prl_emo.data.audit",
    "s3prl_emo.data.labels",
    "s3prl_emo.data.audio",
    "s3prl_emo.data.layout",
    "s3prl_emo.data.fold",
    "s3prl_emo.metrics",
    "s3prl_emo.data.export",
    "s3prl_emo.cli",
)


def test_modules_that_need_no_torch_import_none():
    code = (
        f"import sys, {', '.join(TORCH_FREE)}; "
        "heavy = sorted(m for m in ('torch', 'torchaudio', 's3prl') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"
